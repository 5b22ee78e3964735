// Several CUDA devices, on the simulator configured with two
// (JANUS_SIM_DEVICES=2, set by CTest): every CudaDevice entry point and the
// caching allocator must work on their own device whatever device the
// calling thread has selected, and leave the thread's selection as it was.
// The simulator tags each cudaMalloc block with the device that was current,
// gives each stream its device, and fails a launch that passes another
// device's memory or uses another device's stream (what a GPU without peer
// access does), so a missing cudaSetDevice shows up here.
#include "cuda/cuda_compat.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "cuda/cuda_device.hpp"
#include "janus/device.hpp"
#include "janus/error.hpp"
#include "janus/tensor.hpp"

using namespace janus;

namespace {

__global__ void add_one(float* x, int n) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) x[i] += 1.0f;
}

int current_device() {
  int d = -1;
  EXPECT_EQ(cudaGetDevice(&d), cudaSuccess);
  return d;
}

Tensor random(const Shape& s, uint32_t seed, Device& d) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(s.numel()));
  for (float& x : v) x = u(rng);
  return Tensor::from_host(v, s, d);
}

class TwoDevices : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(cuda_device_count(), 2) << "this test runs with JANUS_SIM_DEVICES=2 (set by CTest)";
    ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
  }
};

TEST_F(TwoDevices, SimulatorCatchesWrongDeviceUse) {
  // Memory of device 0 passed to a kernel while device 1 is current.
  float* p = nullptr;
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&p, 64 * sizeof(float)), cudaSuccess);
  EXPECT_EQ(sim::device_of(p), 0);
  ASSERT_EQ(cudaSetDevice(1), cudaSuccess);
  JANUS_LAUNCH(add_one, 1, 64, 0, nullptr, p, 64);
  const cudaError_t e = cudaGetLastError();
  EXPECT_EQ(e, cudaErrorIllegalAddress);
  EXPECT_NE(std::string(cudaGetErrorString(e)).find("memory of device 0"), std::string::npos)
      << cudaGetErrorString(e);
  // A stream of device 0 used for a launch while device 1 is current.
  cudaStream_t s0 = nullptr;
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
  ASSERT_EQ(cudaStreamCreate(&s0), cudaSuccess);
  ASSERT_EQ(cudaSetDevice(1), cudaSuccess);
  float* q = nullptr;
  ASSERT_EQ(cudaMalloc(&q, 64 * sizeof(float)), cudaSuccess);
  EXPECT_EQ(sim::device_of(q), 1);
  JANUS_LAUNCH(add_one, 1, 64, 0, s0, q, 64);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidResourceHandle);
  // The same launch with the right device current runs.
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
  JANUS_LAUNCH(add_one, 1, 64, 0, s0, p, 64);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(s0), cudaSuccess);
  EXPECT_EQ(cudaFree(p), cudaSuccess);
  EXPECT_EQ(cudaFree(q), cudaSuccess);
  EXPECT_EQ(cudaSetDevice(2), cudaErrorInvalidDevice);
  static_cast<void>(cudaGetLastError());
}

TEST_F(TwoDevices, EachDeviceAllocatesOnItselfWhateverTheThreadSelected) {
  Device& d1 = get_device("cuda:1");
  Device& d0 = get_device("cuda:0");
  for (int selected : {0, 1}) {
    ASSERT_EQ(cudaSetDevice(selected), cudaSuccess);
    Tensor a = Tensor::empty({1000}, d0), b = Tensor::empty({1000}, d1);
    EXPECT_EQ(sim::device_of(a.f32()), 0) << "cuda:0 allocated with device " << selected << " selected";
    EXPECT_EQ(sim::device_of(b.f32()), 1) << "cuda:1 allocated with device " << selected << " selected";
    // The caching allocator's large-block path (a fresh cudaMalloc) too.
    Tensor big = Tensor::empty({1 << 20}, d1);
    EXPECT_EQ(sim::device_of(big.f32()), 1);
    EXPECT_EQ(current_device(), selected) << "an allocation changed the thread's device";
  }
}

TEST_F(TwoDevices, InterleavedOpsMatchTheCpuAndRestoreTheThreadsDevice) {
  Device& cpu = cpu_device();
  Device* gpus[2] = {&get_device("cuda:0"), &get_device("cuda:1")};
  const ConvGeometry g = [] {
    ConvGeometry c;
    c.N = 2, c.H = 6, c.W = 6, c.C = 3, c.KH = 3, c.KW = 3, c.F = 4;
    c.stride_h = c.stride_w = 1, c.pad_h = c.pad_w = 1, c.OH = 6, c.OW = 6;
    return c;
  }();
  Tensor x = random({2, 6, 6, 3}, 1, cpu), w = random({3, 3, 3, 4}, 2, cpu), b = random({4}, 3, cpu);
  Tensor ref = Tensor::empty({2, 6, 6, 4}, cpu);
  cpu.conv2d_forward(g, x, w, b, ref);
  cpu.activation_forward(ActivationKind::ReLU, ref, ref);
  const double ref_sum = cpu.sum(ref);
  // Alternate devices and the thread's selection: cuda:1's work issued right
  // after the thread last used device 0, and the other way round.
  for (int round = 0; round < 4; ++round) {
    const int dev = round % 2, selected = (round / 2 + dev + 1) % 2;
    ASSERT_EQ(cudaSetDevice(selected), cudaSuccess);
    Device& d = *gpus[dev];
    Tensor xg = x.to(d), wg = w.to(d), bg = b.to(d);
    Tensor y = Tensor::empty({2, 6, 6, 4}, d);
    d.conv2d_forward(g, xg, wg, bg, y);
    d.activation_forward(ActivationKind::ReLU, y, y);
    const double s = d.sum(y);
    EXPECT_NEAR(s, ref_sum, 1e-4 * (1.0 + std::fabs(ref_sum))) << d.name();
    const std::vector<float> got = y.to_host_f32(), want = ref.to_host_f32();
    for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-5f) << d.name() << " element " << i;
    EXPECT_EQ(current_device(), selected) << d.name() << " left the thread on another device";
    EXPECT_EQ(sim::device_of(y.f32()), dev);
  }
}

TEST_F(TwoDevices, DevicesAreDistinct) {
  Device& d0 = get_device("cuda:0");
  Device& d1 = get_device("cuda:1");
  EXPECT_NE(&d0, &d1);
  EXPECT_EQ(d1.name().rfind("cuda:1", 0), 0u) << d1.name();
  // A tensor of cuda:0 handed to cuda:1 is refused by name, never used.
  Tensor t = Tensor::zeros({4}, d0);
  try {
    d1.fill(t, 1.0);
    FAIL() << "cuda:1 accepted a tensor of cuda:0";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cuda:0"), std::string::npos) << e.what();
  }
}

}  // namespace
