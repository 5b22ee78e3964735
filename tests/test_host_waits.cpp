// Host waits on the CUDA simulator: janus::sim::host_waits() counts the calls
// after which a GPU's host thread would wait for the stream's earlier work.
// Batch uploads (CudaDevice::copy_to_device) go through pinned double
// buffers and must add none, whatever runs on the stream in between; reading
// a result back must (the counter is not blind). A whole training step adds
// none either (below).
#include "cuda/cuda_compat.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <iostream>
#include <limits>
#include <memory>
#include <vector>

#include "cuda/cuda_device.hpp"
#include "cuda/pinned_staging.hpp"
#include "janus/device.hpp"
#include "janus/model.hpp"
#include "janus/nlohmann_json.hpp"
#include "janus/optimizer.hpp"
#include "janus/scheduler.hpp"
#include "janus/tensor.hpp"
#include "lagging_device.hpp"
#include "train/running_metrics.hpp"
#include "train/train_step.hpp"

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

// ---- the pinned ring on a device that is behind (lagging_device.hpp) -------------------

using janus::test::LaggingDevice;
using janus::test::OneStepBehind;

// k uploads a step (x, y, the optimizer's list, a CUDA graph's step block ...)
// of sizes that differ, and grow once (a larger batch): no upload waits, and
// no buffer is written while its copy is pending.
class PinnedRing : public ::testing::TestWithParam<int> {};

TEST_P(PinnedRing, NoWaitAndNoOverwriteWithTheDeviceOneStepBehind) {
  const int uploads_per_step = GetParam();
  cuda::PinnedStaging staging;
  cudaStream_t stream = nullptr;
  std::vector<float*> dst(static_cast<size_t>(uploads_per_step));
  constexpr size_t kMaxFloats = 4096;
  for (float*& d : dst) ASSERT_EQ(cudaMalloc(&d, kMaxFloats * sizeof(float)), cudaSuccess);
  const unsigned long long overwrites = sim::pinned_overwrites();
  {
    LaggingDevice lag;
    OneStepBehind device;
    std::vector<float> host(kMaxFloats);
    for (int step = 0; step < 12; ++step) {
      device.begin_step();
      const unsigned long long at_step = sim::host_waits();
      for (int u = 0; u < uploads_per_step; ++u) {
        const size_t n = (step < 6 ? 256 : 1024) * static_cast<size_t>(u + 1);  // grows at step 6
        for (size_t i = 0; i < n; ++i) host[i] = static_cast<float>(step * 100 + u) + static_cast<float>(i);
        staging.upload(dst[static_cast<size_t>(u)], host.data(), n * sizeof(float), stream);
        host.assign(host.size(), -1.0f);  // the source may be reused at once
        // The simulator copied at once, into host-addressable memory.
        const float want = static_cast<float>(step * 100 + u) + static_cast<float>(n - 1);
        ASSERT_EQ(dst[static_cast<size_t>(u)][n - 1], want);
      }
      EXPECT_EQ(sim::host_waits(), at_step) << "step " << step << ": an upload waited for the device";
    }
    EXPECT_EQ(staging.buffers(), 2 * uploads_per_step) << "the ring holds the uploads of the two steps in flight";
  }
  EXPECT_EQ(sim::pinned_overwrites(), overwrites) << "a pinned buffer was written while its copy was pending";
  for (float* d : dst) EXPECT_EQ(cudaFree(d), cudaSuccess);
}

INSTANTIATE_TEST_SUITE_P(UploadsPerStep, PinnedRing, ::testing::Values(1, 2, 3, 4));

// A host far ahead of the device: the ring is bounded (kMaxBuffers), then an
// upload waits for the oldest copy, and never overwrites a pending one.
TEST(PinnedRingBound, AHostFarAheadWaitsForTheOldestCopyOnly) {
  cuda::PinnedStaging staging;
  float* d = nullptr;
  ASSERT_EQ(cudaMalloc(&d, 256 * sizeof(float)), cudaSuccess);
  std::vector<float> host(256);
  const unsigned long long overwrites = sim::pinned_overwrites();
  {
    LaggingDevice lag;
    const unsigned long long before = sim::host_waits();
    for (int i = 0; i < cuda::PinnedStaging::kMaxBuffers; ++i) {
      host.assign(host.size(), static_cast<float>(i));
      staging.upload(d, host.data(), host.size() * sizeof(float), nullptr);
    }
    EXPECT_EQ(sim::host_waits(), before) << "waited before the ring was full";
    host.assign(host.size(), 99.0f);
    staging.upload(d, host.data(), host.size() * sizeof(float), nullptr);
    EXPECT_EQ(sim::host_waits(), before + 1) << "a full ring must wait for its oldest copy";
  }
  EXPECT_EQ(sim::pinned_overwrites(), overwrites);
  EXPECT_EQ(cudaFree(d), cudaSuccess);
}

// The simulator's check is not blind: a pinned buffer rewritten before its
// copy finished is seen.
TEST(PinnedRingBound, TheSimulatorSeesAPinnedBufferRewrittenTooEarly) {
  float* d = nullptr;
  float* pinned = nullptr;
  ASSERT_EQ(cudaMalloc(&d, 64), cudaSuccess);
  ASSERT_EQ(cudaMallocHost(&pinned, 64), cudaSuccess);
  const unsigned long long overwrites = sim::pinned_overwrites();
  {
    LaggingDevice lag;
    pinned[0] = 1.0f;
    ASSERT_EQ(cudaMemcpyAsync(d, pinned, 64, cudaMemcpyHostToDevice, nullptr), cudaSuccess);
    pinned[0] = 2.0f;  // the DMA may not have read it yet
  }
  EXPECT_EQ(sim::pinned_overwrites(), overwrites + 1);
  EXPECT_EQ(cudaFreeHost(pinned), cudaSuccess);
  EXPECT_EQ(cudaFree(d), cudaSuccess);
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

// ---- a training step without host waits ------------------------------------------------
// The steady-state training step (train/train_step.hpp) keeps its loss and
// correct count on the device; the host reads them once per log interval
// (train/running_metrics.hpp). Counted on the simulator: no host wait in N
// steps, exactly one per read, and the sums read equal, bit for bit, those of
// the host-returning path (a twin model trained on the same batches).

using janus::train_detail::EpochTotals;
using janus::train_detail::NonFiniteStep;
using janus::train_detail::RunningMetrics;
using janus::train_detail::TrainStep;

constexpr int kClasses = 5;

// A small CNN with every kind of layer a step runs (convolution, BatchNorm,
// ReLU, pooling, dropout, dense, fused softmax + cross-entropy).
nlohmann::json small_cnn() {
  return nlohmann::json::parse(R"({"seed": 3, "loss": "cross_entropy", "layers": [
      {"type": "conv2d", "n_out": 4, "kernel": 3, "pad": "same", "bias": false},
      {"type": "batchnorm"}, {"type": "relu"},
      {"type": "pool2d", "mode": "max", "kernel": 2, "stride": 2},
      {"type": "flatten"}, {"type": "dropout", "p": 0.25},
      {"type": "fully_connected", "n_out": 5, "activation": "softmax"}]})");
}

// Batch `i` of a fixed synthetic stream: 6 images 8x8x3, labels i + r mod 5.
Batch synthetic_batch(int i) {
  Batch b;
  b.size = 6;
  b.x_shape = Shape{6, 8, 8, 3};
  b.x.resize(6 * 8 * 8 * 3);
  for (size_t k = 0; k < b.x.size(); ++k) b.x[k] = static_cast<float>((k * 37 + static_cast<size_t>(i) * 11) % 17) / 8.0f - 1.0f;
  b.y_onehot.assign(6 * kClasses, 0.0f);
  for (int r = 0; r < 6; ++r) b.y_onehot[static_cast<size_t>(r * kClasses + (i + r) % kClasses)] = 1.0f;
  return b;
}

struct Trainee {
  NeuralNetwork model;
  std::unique_ptr<Optimizer> optimizer;
  std::unique_ptr<Scheduler> schedule;
  explicit Trainee(Device& d, const char* optimizer_json)
      : model(NeuralNetwork::from_config(small_cnn())),
        optimizer(make_optimizer(nlohmann::json::parse(optimizer_json))),
        schedule(make_scheduler(nlohmann::json::parse(R"({"type": "constant", "lr": 0.05})"))) {
    model.build(Shape{6, 8, 8, 3}, d);
  }
};

class StepWithoutHostWaits : public ::testing::TestWithParam<const char*> {};

TEST_P(StepWithoutHostWaits, NoneBetweenReadsOneAtEachRead) {
  Device& gpu = get_device("cuda");
  Trainee t(gpu, GetParam()), twin(gpu, GetParam());
  TrainStep step(t.model, *t.optimizer, *t.schedule, gpu, kClasses, /*check_numerics=*/false);
  RunningMetrics metrics(gpu);
  metrics.reset(EpochTotals{});
  // Two steps first: the first allocates what the steady state reuses.
  step.run(synthetic_batch(0), 0, metrics);
  step.run(synthetic_batch(1), 1, metrics);
  metrics.read();

  // What one device-to-host copy of a value counts (the copy, then the
  // stream synchronisation CudaDevice::copy_to_host adds): a read is one.
  unsigned long long one_copy = sim::host_waits();
  {
    double value = 0;
    gpu.copy_to_host(&value, metrics.device_totals().raw(), sizeof value);
  }
  one_copy = sim::host_waits() - one_copy;
  ASSERT_GE(one_copy, 1u);

  // The steady state on a device one step behind the host (a GPU-bound
  // run): an upload that waited for its staging buffer would count here.
  constexpr int kSteps = 8, kInterval = 4;
  int reads = 0;
  const unsigned long long overwrites = sim::pinned_overwrites();
  LaggingDevice lag;
  OneStepBehind device;
  const unsigned long long before = sim::host_waits();
  for (int i = 2; i < 2 + kSteps; ++i) {
    device.begin_step();
    const unsigned long long at_step = sim::host_waits();
    step.run(synthetic_batch(i), i, metrics);
    EXPECT_EQ(sim::host_waits(), at_step) << "training step " << i << " waited for the device";
    if ((i - 1) % kInterval == 0) {  // a log interval
      const unsigned long long at_read = sim::host_waits();
      metrics.read();
      ++reads;
      EXPECT_EQ(sim::host_waits(), at_read + one_copy) << "a read of the running metrics is one copy";
    }
  }
  EXPECT_EQ(sim::host_waits(), before + one_copy * static_cast<unsigned long long>(reads));
  const EpochTotals got = metrics.read();
  sim::set_device_lag(false);
  EXPECT_EQ(sim::pinned_overwrites(), overwrites) << "a pinned buffer was written while its copy was pending";

  // The twin takes the same steps through the host-returning path (loss and
  // count read back every step: the pre-device-metrics loop) and sums on the host.
  EpochTotals want;
  const unsigned long long twin_before = sim::host_waits();
  for (int i = 0; i < 2 + kSteps; ++i) {
    const Batch b = synthetic_batch(i);
    Tensor x = Tensor::from_host(b.x, b.x_shape, gpu);
    Tensor y = Tensor::from_host(b.y_onehot, Shape{b.size, kClasses}, gpu);
    twin.model.set_step(static_cast<uint64_t>(i));
    Tensor yhat = twin.model.forward(x, Mode::Train);
    const int64_t c = gpu.count_correct(yhat, y);
    const double loss = twin.model.backward(y, yhat);
    twin.optimizer->step(twin.model.named_parameters(), twin.schedule->lr(i));
    want.loss_sum += loss * b.size;
    want.correct += c;
    want.seen += b.size;
  }
  const double copies_per_step_before = static_cast<double>(sim::host_waits() - twin_before) /
                                       static_cast<double>(one_copy) / static_cast<double>(2 + kSteps);
  EXPECT_EQ(copies_per_step_before, 2.0) << "the host-returning path reads the loss and the count every step";
  std::cout << "device-to-host reads per training step: " << copies_per_step_before << " reading back every step, "
            << "0 with device metrics (" << reads << " reads in " << kSteps << " steps, one per log interval; "
            << one_copy << " counted calls per read)\n";
  EXPECT_EQ(got.loss_sum, want.loss_sum);
  EXPECT_EQ(got.correct, want.correct);
  EXPECT_EQ(got.seen, want.seen);
  auto p = t.model.named_parameters(), q = twin.model.named_parameters();
  ASSERT_EQ(p.size(), q.size());
  for (size_t k = 0; k < p.size(); ++k)
    EXPECT_EQ(p[k].parameter->value.to_host_f32(), q[k].parameter->value.to_host_f32()) << p[k].name;
}

INSTANTIATE_TEST_SUITE_P(Optimizers, StepWithoutHostWaits,
                         ::testing::Values(R"({"type": "sgd", "momentum": 0.9, "nesterov": true})",
                                           R"({"type": "adam"})"));

// A non-finite loss is not read back at its step, but the next read names it.
TEST(HostWaits, TheNextReadReportsTheFirstNonFiniteLoss) {
  Device& gpu = get_device("cuda");
  RunningMetrics metrics(gpu);
  metrics.reset(EpochTotals{1.5, 2, 3});
  Tensor loss = Tensor::empty(Shape{1}, gpu, DType::F64);
  auto add = [&](double j, int64_t step) {
    gpu.copy_to_device(loss.raw(), &j, sizeof j);
    gpu.add_loss_into(loss, 4.0, static_cast<double>(step), metrics.device_totals());
    metrics.count_samples(4);
  };
  add(0.25, 7);
  EXPECT_EQ(metrics.read().loss_sum, 2.5);
  add(std::numeric_limits<double>::infinity(), 8);
  add(std::nan(""), 9);
  try {
    metrics.read();
    FAIL() << "a non-finite loss went unreported";
  } catch (const NonFiniteStep& f) {
    EXPECT_EQ(f.step, 8) << "the first non-finite step, not the last";
    EXPECT_EQ(f.what, "the loss became inf");
  }
}

}  // namespace
