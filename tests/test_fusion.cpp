// BatchNorm + ReLU fusion (fusion.hpp, Device::batchnorm_relu_*). Fusing must
// change the work, never the numbers, so every check here is bit for bit:
// - the fused device operations against the unfused sequence (BatchNorm op,
//   then the ReLU op) on both CPU devices, F32 and F64, for shapes on both
//   sides of the fast device's size threshold and with rows that are not a
//   multiple of its chunk size;
// - a small conv-BN-ReLU-pool-dense network trained with the pass on and off
//   (JANUS_FUSE=0): identical parameters, gradients and running statistics;
// - the pass fuses only a ReLU layer directly after a BatchNorm.
#include <gtest/gtest.h>

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "janus/fusion.hpp"
#include "janus/janus.hpp"
#include "janus/nlohmann_json.hpp"

namespace janus {
namespace {

using nlohmann::json;

Tensor random_tensor(const Shape& s, uint64_t seed, Device& dev, DType dt, double lo = -1.0, double hi = 1.0) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> v(static_cast<size_t>(s.numel()));
  for (auto& e : v) e = u(rng);
  return Tensor::from_host(v, s, dev, dt);
}

Tensor copy_of(const Tensor& t) { return Tensor::from_host(t.to_host(), t.shape(), t.device(), t.dtype()); }

// Bitwise: to_host() widens to double exactly, so equal doubles mean equal bits
// (up to the sign of zero, which EXPECT_EQ on doubles does not see; the
// kernels produce zeros the same way in both forms anyway).
void expect_same(const Tensor& a, const Tensor& b, const std::string& what) {
  const std::vector<double> va = a.to_host(), vb = b.to_host();
  ASSERT_EQ(va.size(), vb.size()) << what;
  size_t diffs = 0;
  for (size_t i = 0; i < va.size(); ++i) diffs += va[i] != vb[i];
  EXPECT_EQ(diffs, 0u) << what << ": " << diffs << " of " << va.size() << " elements differ";
}

// ---- device operations --------------------------------------------------------

void check_device_ops(Device& dev, DType dt, const Shape& shape) {
  SCOPED_TRACE(dev.name() + " " + dtype_name(dt) + " " + shape.str());
  const Shape c{shape.last()};
  const Tensor x = random_tensor(shape, 1, dev, dt, -2.0, 3.0);
  const Tensor gamma = random_tensor(c, 2, dev, dt, 0.5, 1.5);
  const Tensor beta = random_tensor(c, 3, dev, dt, -0.5, 0.5);
  const Tensor dy = random_tensor(shape, 4, dev, dt);

  // Training forward: unfused (BatchNorm, then ReLU in place, as the layers
  // run it) and fused, from the same running statistics.
  Tensor rm_u = random_tensor(c, 5, dev, dt), rv_u = random_tensor(c, 6, dev, dt, 0.5, 2.0);
  Tensor rm_f = copy_of(rm_u), rv_f = copy_of(rv_u);
  Tensor sm_u = Tensor::zeros(c, dev, dt), si_u = Tensor::zeros(c, dev, dt);
  Tensor sm_f = Tensor::zeros(c, dev, dt), si_f = Tensor::zeros(c, dev, dt);
  Tensor z = Tensor::empty(shape, dev, dt), y_u = Tensor::empty(shape, dev, dt);
  Tensor y_f = Tensor::empty(shape, dev, dt);
  dev.batchnorm_forward_train(x, gamma, beta, 0.1, 1e-5, rm_u, rv_u, sm_u, si_u, z);
  dev.activation_forward(ActivationKind::ReLU, z, y_u);
  dev.batchnorm_relu_forward_train(x, gamma, beta, 0.1, 1e-5, rm_f, rv_f, sm_f, si_f, y_f);
  expect_same(y_f, y_u, "train y");
  expect_same(rm_f, rm_u, "running_mean");
  expect_same(rv_f, rv_u, "running_var");
  expect_same(sm_f, sm_u, "saved_mean");
  expect_same(si_f, si_u, "saved_invstd");

  // Backward: ReLU backward on z, then BatchNorm backward; fused from y.
  Tensor dz = Tensor::empty(shape, dev, dt), dx_u = Tensor::empty(shape, dev, dt);
  Tensor dx_f = Tensor::empty(shape, dev, dt);
  Tensor dg_u = Tensor::empty(c, dev, dt), db_u = Tensor::empty(c, dev, dt);
  Tensor dg_f = Tensor::empty(c, dev, dt), db_f = Tensor::empty(c, dev, dt);
  dev.activation_backward(ActivationKind::ReLU, z, y_u, dy, dz);
  dev.batchnorm_backward(x, dz, gamma, sm_u, si_u, dx_u, dg_u, db_u);
  dev.batchnorm_relu_backward(x, y_f, dy, gamma, sm_f, si_f, dx_f, dg_f, db_f);
  expect_same(dx_f, dx_u, "dx");
  expect_same(dg_f, dg_u, "dgamma");
  expect_same(db_f, db_u, "dbeta");

  // Evaluation forward.
  Tensor ze = Tensor::empty(shape, dev, dt), ye_u = Tensor::empty(shape, dev, dt);
  Tensor ye_f = Tensor::empty(shape, dev, dt);
  dev.batchnorm_forward_eval(x, gamma, beta, rm_u, rv_u, 1e-5, ze);
  dev.activation_forward(ActivationKind::ReLU, ze, ye_u);
  dev.batchnorm_relu_forward_eval(x, gamma, beta, rm_u, rv_u, 1e-5, ye_f);
  expect_same(ye_f, ye_u, "eval y");
}

TEST(Fusion, DeviceOpsEqualTheUnfusedSequence) {
  // Small (reference kernels on both devices) and large enough for the fast
  // device's fused kernels, with rows that are not a multiple of its chunk
  // size (several chunks of 1024+ rows for C = 16) and an odd channel count.
  const std::vector<Shape> shapes{Shape{50, 7},         Shape{3001, 16}, Shape{5, 13, 17, 16},
                                  Shape{20011, 3},      Shape{1037, 64}, Shape{4, 9, 11, 40}};
  for (Device* dev : {&cpu_device(), &reference_cpu_device()})
    for (DType dt : {DType::F32, DType::F64})
      for (const Shape& s : shapes) check_device_ops(*dev, dt, s);
}

// ---- the model-level pass -------------------------------------------------------

// Sets JANUS_FUSE for the lifetime of the object, then restores it.
class FuseEnv {
 public:
  explicit FuseEnv(const char* value) {
    const char* old = std::getenv("JANUS_FUSE");
    had_ = old != nullptr;
    if (had_) old_ = old;
    if (value) setenv("JANUS_FUSE", value, 1);
    else unsetenv("JANUS_FUSE");
  }
  ~FuseEnv() {
    if (had_) setenv("JANUS_FUSE", old_.c_str(), 1);
    else unsetenv("JANUS_FUSE");
  }

 private:
  bool had_ = false;
  std::string old_;
};

NeuralNetwork build_net(const json& model, const char* fuse) {
  FuseEnv env(fuse);
  return NeuralNetwork::from_config(model);
}

json small_cnn() {
  // (8, 16, 16, 3) -> conv 16 -> BN -> ReLU: 32768 elements, the fast
  // device's fused kernels; the dense BN -> ReLU pair is small (reference).
  return {{"seed", 7},
          {"loss", "cross_entropy"},
          {"layers",
           {{{"type", "conv2d"}, {"n_out", 16}, {"kernel", 3}, {"bias", false}},
            {{"type", "batchnorm"}},
            {{"type", "relu"}},
            {{"type", "pool2d"}, {"mode", "max"}, {"kernel", 2}, {"stride", 2}},
            {{"type", "flatten"}},
            {{"type", "dense"}, {"n_out", 12}},
            {{"type", "batchnorm"}},
            {{"type", "relu"}},
            {{"type", "dense"}, {"n_out", 5}, {"activation", "softmax"}}}}};
}

Tensor one_hot_rows(int64_t rows, int64_t classes, Device& dev, DType dt) {
  std::vector<double> v(static_cast<size_t>(rows * classes), 0.0);
  for (int64_t r = 0; r < rows; ++r) v[static_cast<size_t>(r * classes + (r * 7 + 3) % classes)] = 1.0;
  return Tensor::from_host(v, Shape{rows, classes}, dev, dt);
}

void check_training(Device& dev, DType dt) {
  SCOPED_TRACE(dev.name() + " " + dtype_name(dt));
  NeuralNetwork fused = build_net(small_cnn(), nullptr);
  NeuralNetwork plain = build_net(small_cnn(), "0");
  ASSERT_TRUE(dynamic_cast<BatchNorm&>(fused.layer(1)).fused_relu());
  ASSERT_FALSE(dynamic_cast<BatchNorm&>(plain.layer(1)).fused_relu());

  const Tensor x = random_tensor(Shape{8, 16, 16, 3}, 21, dev, dt);
  const Tensor y = one_hot_rows(8, 5, dev, dt);
  SGD opt_f(0.9), opt_p(0.9);
  for (int step = 0; step < 3; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    const double loss_f = fused.backward(y, fused.forward(x, Mode::Train));
    const double loss_p = plain.backward(y, plain.forward(x, Mode::Train));
    EXPECT_EQ(loss_f, loss_p);
    const auto pf = fused.named_parameters(), pp = plain.named_parameters();
    ASSERT_EQ(pf.size(), pp.size());
    for (size_t i = 0; i < pf.size(); ++i) expect_same(pf[i].parameter->grad, pp[i].parameter->grad, pf[i].name + " grad");
    opt_f.step(pf, 0.05);
    opt_p.step(pp, 0.05);
  }
  const auto sf = fused.state(), sp = plain.state();
  ASSERT_EQ(sf.size(), sp.size());
  for (size_t i = 0; i < sf.size(); ++i) {
    EXPECT_EQ(sf[i].first, sp[i].first);
    expect_same(*sf[i].second, *sp[i].second, sf[i].first);
  }
  // Evaluation mode uses the fused evaluation forward.
  expect_same(fused.forward(x, Mode::Eval), plain.forward(x, Mode::Eval), "eval output");
}

TEST(Fusion, TrainingIsBitIdenticalWithAndWithoutThePass) {
  check_training(cpu_device(), DType::F32);
  check_training(cpu_device(), DType::F64);
  check_training(reference_cpu_device(), DType::F64);
}

TEST(Fusion, OnlyReluDirectlyAfterBatchNormIsFused) {
  const json model = {
      {"loss", "l2"},
      {"layers",
       {{{"type", "dense"}, {"n_out", 6}},
        {{"type", "batchnorm"}},  // 1: followed by ReLU -> fused
        {{"type", "relu"}},
        {{"type", "batchnorm"}},  // 3: followed by tanh -> not fused
        {{"type", "tanh"}},
        {{"type", "batchnorm"}},  // 5: dropout in between -> not fused
        {{"type", "dropout"}, {"p", 0.5}},
        {{"type", "relu"}},       // 7
        {{"type", "dense"}, {"n_out", 6}},
        {{"type", "relu"}},       // 9: ReLU after a dense layer -> not absorbed
        {{"type", "batchnorm"}}}}};  // 10: last layer -> not fused
  NeuralNetwork net = build_net(model, nullptr);
  auto bn = [&](size_t i) { return dynamic_cast<BatchNorm&>(net.layer(i)).fused_relu(); };
  auto absorbed = [&](size_t i) { return dynamic_cast<ActivationLayer&>(net.layer(i)).absorbed(); };
  EXPECT_TRUE(bn(1));
  EXPECT_TRUE(absorbed(2));
  EXPECT_FALSE(bn(3));
  EXPECT_FALSE(absorbed(4));
  EXPECT_FALSE(bn(5));
  EXPECT_FALSE(absorbed(7));
  EXPECT_FALSE(absorbed(9));
  EXPECT_FALSE(bn(10));

  NeuralNetwork off = build_net(model, "0");
  EXPECT_FALSE(dynamic_cast<BatchNorm&>(off.layer(1)).fused_relu());
  EXPECT_FALSE(dynamic_cast<ActivationLayer&>(off.layer(2)).absorbed());
  // The pass is not visible in the config (checkpoints and files unchanged).
  EXPECT_EQ(net.config(), off.config());
}

}  // namespace
}  // namespace janus
