// Host waits on the CUDA simulator: janus::sim::host_waits() counts the calls
// after which a GPU's host thread would wait for the stream's earlier work.
// Batch uploads (CudaDevice::copy_to_device) go through pinned double
// buffers and must add none, whatever runs on the stream in between; reading
// a result back must (the counter is not blind).
#include "cuda/cuda_compat.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "cuda/cuda_device.hpp"
#include "janus/device.hpp"
#include "janus/tensor.hpp"

using namespace janus;

namespace {

TEST(HostWaits, BatchUploadsDoNotWaitForTheStream) {
  Device& gpu = get_device("cuda");
  const Shape s{64, 3 * 32 * 32};
  Tensor batch = Tensor::empty(s, gpu), acc = Tensor::zeros(s, gpu);
  std::vector<float> host(static_cast<size_t>(s.numel()));
  gpu.synchronize();
  const unsigned long long before = sim::host_waits();
  for (int step = 0; step < 10; ++step) {
    for (size_t i = 0; i < host.size(); ++i) host[i] = static_cast<float>(step) + static_cast<float>(i % 7);
    gpu.copy_to_device(batch.f32(), host.data(), host.size() * sizeof(float));
    host.assign(host.size(), -1.0f);  // the source may be reused at once
    gpu.axpby(1.0, batch, 1.0, acc);  // work queued behind the upload
  }
  EXPECT_EQ(sim::host_waits(), before) << "a batch upload waited for the stream";
  // The data arrived intact: acc = sum over steps of (step + i % 7).
  const std::vector<float> got = acc.to_host_f32();
  for (size_t i = 0; i < got.size(); i += 997)
    ASSERT_EQ(got[i], 45.0f + 10.0f * static_cast<float>(i % 7)) << "element " << i;
  EXPECT_GT(sim::host_waits(), before) << "reading back must count as a host wait";
}

TEST(HostWaits, PageableCopiesAreCounted) {
  float* d = nullptr;
  ASSERT_EQ(cudaMalloc(&d, 64), cudaSuccess);
  std::vector<float> h(16, 1.0f);
  const unsigned long long before = sim::host_waits();
  ASSERT_EQ(cudaMemcpyAsync(d, h.data(), 64, cudaMemcpyHostToDevice, nullptr), cudaSuccess);
  EXPECT_EQ(sim::host_waits(), before + 1);
  float* pinned = nullptr;
  ASSERT_EQ(cudaMallocHost(&pinned, 64), cudaSuccess);
  ASSERT_EQ(cudaMemcpyAsync(d, pinned, 64, cudaMemcpyHostToDevice, nullptr), cudaSuccess);
  EXPECT_EQ(sim::host_waits(), before + 1) << "an upload from pinned memory counted as a wait";
  EXPECT_EQ(cudaFreeHost(pinned), cudaSuccess);
  EXPECT_EQ(cudaFree(d), cudaSuccess);
}

}  // namespace
