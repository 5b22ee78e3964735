// Kernel launches per operation of the CUDA backend, counted by the simulator
// (janus::sim::launch_count()): the fused kernels must keep the memory-bound
// passes to the launches their design says (src/cuda/batchnorm.cu), and fewer
// than the unfused sequences they replace. Numerics are the parity suite's job
// (tests/test_parity_ops.cpp); this counts only.
#include "cuda/cuda_compat.hpp"

#include <gtest/gtest.h>

#include <functional>

#include "cuda/cuda_device.hpp"
#include "janus/device.hpp"
#include "janus/layer.hpp"
#include "janus/optimizer.hpp"
#include "janus/tensor.hpp"

using namespace janus;

namespace {

// Launches made by `op` (everything it queues is counted when it is queued).
unsigned long long launches(const std::function<void()>& op) {
  const unsigned long long before = sim::launch_count();
  op();
  return sim::launch_count() - before;
}

class LaunchCounts : public ::testing::Test {
 protected:
  Device& gpu = get_device("cuda");
  const Shape s{8, 16, 16, 40};  // 2048 rows: several row chunks, two channel tiles
  const int64_t C = s.last();
  Tensor x = Tensor::full(s, 0.5, gpu), dy = Tensor::full(s, 0.25, gpu), y = Tensor::empty(s, gpu);
  Tensor dx = Tensor::empty(s, gpu);
  Tensor gamma = Tensor::full({C}, 1.0, gpu), beta = Tensor::zeros({C}, gpu);
  Tensor rmean = Tensor::zeros({C}, gpu), rvar = Tensor::full({C}, 1.0, gpu);
  Tensor mean = Tensor::empty({C}, gpu), invstd = Tensor::empty({C}, gpu);
  Tensor dgamma = Tensor::empty({C}, gpu), dbeta = Tensor::empty({C}, gpu);
};

// BatchNorm forward in training was five launches (two reduction passes, two
// finalisations, the normalisation) plus one for a following ReLU; now two,
// with or without the ReLU.
TEST_F(LaunchCounts, BatchNormForwardIsTwoLaunchesWithOrWithoutRelu) {
  EXPECT_EQ(launches([&] { gpu.batchnorm_forward_train(x, gamma, beta, 0.1, 1e-5, rmean, rvar, mean, invstd, y); }),
            2u);
  const auto fused = launches(
      [&] { gpu.batchnorm_relu_forward_train(x, gamma, beta, 0.1, 1e-5, rmean, rvar, mean, invstd, y); });
  const auto unfused = launches(
      [&] { gpu.Device::batchnorm_relu_forward_train(x, gamma, beta, 0.1, 1e-5, rmean, rvar, mean, invstd, y); });
  EXPECT_EQ(fused, 2u);
  EXPECT_EQ(unfused, fused + 1) << "the unfused pair is the BatchNorm launches plus one ReLU";
  EXPECT_EQ(launches([&] { gpu.batchnorm_relu_forward_eval(x, gamma, beta, rmean, rvar, 1e-5, y); }), 1u);
}

// Backward was four launches (widening the saved statistics, the partial
// sums, their finalisation, dx) plus one for ReLU's backward; now two.
TEST_F(LaunchCounts, BatchNormBackwardIsTwoLaunchesWithOrWithoutRelu) {
  EXPECT_EQ(launches([&] { gpu.batchnorm_backward(x, dy, gamma, mean, invstd, dx, dgamma, dbeta); }), 2u);
  const auto fused =
      launches([&] { gpu.batchnorm_relu_backward(x, y, dy, gamma, mean, invstd, dx, dgamma, dbeta); });
  const auto unfused =
      launches([&] { gpu.Device::batchnorm_relu_backward(x, y, dy, gamma, mean, invstd, dx, dgamma, dbeta); });
  EXPECT_EQ(fused, 2u);
  EXPECT_EQ(unfused, fused + 1);
}

// Max pooling's backward searched every window for its maximum again (a
// launch of the forward kernel) before the gather; in training the forward
// now keeps the argmax and the backward is the gather alone.
TEST(LaunchCountsPool, MaxPoolBackwardThroughTheSavedArgmaxIsOneLaunch) {
  Device& gpu = get_device("cuda");
  PoolGeometry g;
  g.N = 2;
  g.H = g.W = 8;
  g.C = 16;
  g.KH = g.KW = g.stride_h = g.stride_w = 2;
  g.OH = g.OW = 4;
  const Tensor x = Tensor::full({2, 8, 8, 16}, 1.0, gpu), dy = Tensor::full({2, 4, 4, 16}, 1.0, gpu);
  Tensor y = Tensor::empty(dy.shape(), gpu), dx = Tensor::empty(x.shape(), gpu);
  Tensor argmax;
  EXPECT_EQ(launches([&] { argmax = gpu.max_pool2d_forward_train(g, x, y); }), 1u);
  const auto saved = launches([&] { gpu.max_pool2d_backward_argmax(g, argmax, dy, dx); });
  const auto searched = launches([&] { gpu.pool2d_backward(PoolMode::Max, g, x, dy, dx); });
  EXPECT_EQ(saved, 1u);
  EXPECT_EQ(searched, 2u);
}

// An optimizer step was one launch per parameter; now one for all of them,
// for SGD (with momentum, Nesterov, weight decay) and Adam/AdamW alike.
TEST(LaunchCountsOptimizer, OneLaunchPerStepWhateverTheNumberOfParameters) {
  Device& gpu = get_device("cuda");
  std::vector<Parameter> params(6);
  std::vector<NamedParameter> named;
  for (size_t k = 0; k < params.size(); ++k) {
    const Shape s{static_cast<int64_t>(300 * k + 1), 7};  // up to several blocks each
    params[k].name = "p" + std::to_string(k);
    params[k].value = Tensor::full(s, 1.0, gpu);
    params[k].grad = Tensor::full(s, 0.5, gpu);
    named.push_back({"layer." + params[k].name, &params[k]});
  }
  SGD sgd(0.9, 5e-4, true);
  Adam adamw(0.9, 0.999, 1e-8, 1e-2, true);
  for (Optimizer* opt : std::initializer_list<Optimizer*>{&sgd, &adamw}) {
    opt->step(named, 0.1);  // the first step also creates the state (zero fills)
    EXPECT_EQ(launches([&] { opt->step(named, 0.1); }), 1u) << opt->name() << ", " << named.size() << " parameters";
  }
  // The update did happen: w = 1 - lr * step with g = 0.5 (+ decay), moved down.
  EXPECT_LT(params[1].value.to_host_f32()[0], 1.0f);
}

}  // namespace
