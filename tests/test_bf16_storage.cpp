// The CUDA backend's bf16 storage (device.hpp, "bf16 storage on CUDA"): each
// op run on bfloat16 activations against the same op on float32 tensors
// holding the same (bf16-representable) values, on one CUDA device (a real
// GPU, or the simulator). Skipped without a CUDA device.
//
// What must hold. The bf16 kernels are the float kernels' bodies with loads
// widened exactly and each stored result rounded once (to nearest even):
//  - element-wise ops (activations forward/backward, bias add, axpby,
//    multiply, fill, pooling forward/backward and the argmax path, dropout
//    with the same seed): bf16 output == round_to_bf16(float32 output), bit
//    for bit;
//  - BatchNorm (forward train/eval, backward, with and without the fused
//    ReLU) and softmax-cross-entropy, whose reductions a GPU compiler may
//    contract differently in the two instantiations: with v the float32
//    output and v' the bf16 kernel's float value before its rounding,
//    |round(v') - v| <= |round(v') - v'| + |v' - v| <= 2^-8 |v'| + |v' - v|,
//    where 2^-8 is bf16's unit roundoff (8 significant bits: half an ulp is
//    at most 2^-8 of the value; |v'| <= |v| (1 + 2^-8) for the small
//    |v' - v| here) and |v' - v| is the float32 reduction bound:
//    BatchNorm computes in double and rounds once to float, so two runs
//    differ by at most a float ulp or two, |v' - v| <= 2 * 2^-24 |v| (plus an
//    absolute 1e-6 for dx, a cancellation of O(1) terms); the softmax sums
//    `cols` float exponentials per row, |v' - v| <= 2 cols 2^-24 |v| plus
//    the same relative to the row's scale 1/m for dz = (s - y) / m, a
//    cancellation. So the test allows 2^-8 (1 + 2^-8) |v| + that bound. On
//    the simulator v' == v exactly (the same code, no contraction
//    differences): there it is bit-exact too.
// Every comparison also checks that enough outputs were really rounded up (a
// float result strictly between two bf16 values, nearer the upper one), so
// a kernel that truncated instead of rounding, or rounded some other way,
// would fail it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "float_bits.hpp"
#include "janus/device.hpp"
#include "janus/error.hpp"
#include "janus/precision.hpp"
#include "janus/tensor.hpp"

using namespace janus;
using janus::test::bits_of;

namespace {

constexpr double kBf16U = 1.0 / 256.0;        // 2^-8
constexpr double kF32U = 1.0 / 16777216.0;    // 2^-24

class Bf16Storage : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0)
      GTEST_SKIP() << "no CUDA device available (" << cuda_unavailable_reason() << ")";
    gpu_ = &get_device("cuda");
  }
  Device& gpu() { return *gpu_; }

  // Random values in [lo, hi] rounded to bf16 (so both runs read the same values).
  static std::vector<float> values(int64_t n, uint32_t seed, float lo = -2.0f, float hi = 2.0f) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = round_to_bf16(d(rng));
    return v;
  }
  // The same values as a float32 and as a bfloat16 tensor on the GPU.
  struct Pair {
    Tensor f, b;
  };
  Pair pair(const Shape& s, uint32_t seed, float lo = -2.0f, float hi = 2.0f) {
    const std::vector<float> v = values(s.numel(), seed, lo, hi);
    return {Tensor::from_host(v, s, gpu()), Tensor::from_host(v, s, gpu(), DType::BF16)};
  }
  Pair empty_pair(const Shape& s) {
    return {Tensor::empty(s, gpu()), Tensor::empty(s, gpu(), DType::BF16)};
  }
  Pair clone(const Pair& p) { return {p.f.clone(), p.b.clone()}; }

  // bf16 output == round_to_bf16(float output) bit for bit. At least
  // `min_rounded` of the outputs (a fraction) must have needed rounding up
  // (so a truncating kernel would fail); 0 for ops that only move values.
  static void expect_rounded_once(const std::string& what, const Tensor& f, const Tensor& b,
                                  double min_rounded = 0.1) {
    ASSERT_EQ(b.dtype(), DType::BF16) << what;
    const std::vector<float> vf = f.to_host_f32(), vb = b.to_host_f32();
    ASSERT_EQ(vf.size(), vb.size()) << what;
    int64_t bad = 0, rounded_up = 0;
    for (size_t i = 0; i < vf.size(); ++i) {
      const float want = round_to_bf16(vf[i]);
      if (std::fabs(want) > std::fabs(vf[i])) ++rounded_up;
      const bool same = bits_of(want) == bits_of(vb[i]) || (std::isnan(want) && std::isnan(vb[i]));
      if (!same && ++bad <= 5)
        ADD_FAILURE() << what << " [" << i << "]: float32 " << vf[i] << " rounds to " << want << ", bf16 kernel "
                      << vb[i];
    }
    EXPECT_EQ(bad, 0) << what;
    EXPECT_GE(static_cast<double>(rounded_up), min_rounded * static_cast<double>(vf.size()))
        << what << ": too few roundings";
  }

  // BatchNorm and softmax-CE: the bound of the file comment, with
  // rel_f32 the float32 reduction bound relative to |v| and abs_f32 an
  // absolute part (cancellation); bit-exact on the simulator.
  void expect_within_bound(const std::string& what, const Tensor& f, const Tensor& b, double rel_f32,
                           double abs_f32 = 0.0) {
    if (gpu().simulated()) {
      expect_rounded_once(what, f, b);
      return;
    }
    const std::vector<float> vf = f.to_host_f32(), vb = b.to_host_f32();
    int64_t rounded_up = 0;
    for (size_t i = 0; i < vf.size(); ++i) {
      const double v = vf[i];
      const double bound = kBf16U * (1.0 + kBf16U) * std::fabs(v) + rel_f32 * std::fabs(v) + abs_f32;
      ASSERT_LE(std::fabs(static_cast<double>(vb[i]) - v), bound) << what << " [" << i << "]: float32 " << v
                                                                  << ", bf16 " << vb[i];
      if (std::fabs(round_to_bf16(vf[i])) > std::fabs(vf[i])) ++rounded_up;
    }
    EXPECT_GE(rounded_up * 10, static_cast<int64_t>(vf.size())) << what << ": too few roundings";
  }

  static void expect_refused(const std::string& what, const std::string& part, const std::function<void()>& call) {
    try {
      call();
      ADD_FAILURE() << what << ": accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << what << ": '" << part << "' missing from "
                                                                    << e.what();
    }
  }

 private:
  Device* gpu_ = nullptr;
};

PoolGeometry pool_geometry(int k, int stride, int pad) {
  PoolGeometry g;
  g.N = 2, g.H = 9, g.W = 7, g.C = 5, g.KH = k, g.KW = k, g.stride_h = stride, g.stride_w = stride;
  g.pad_h = pad, g.pad_w = pad;
  g.OH = (g.H + 2 * pad - k) / stride + 1, g.OW = (g.W + 2 * pad - k) / stride + 1;
  return g;
}

}  // namespace

TEST_F(Bf16Storage, ElementwiseActivations) {
  const Shape s{37, 29};
  for (ActivationKind kind : {ActivationKind::Linear, ActivationKind::Sigmoid, ActivationKind::TanH,
                              ActivationKind::ReLU, ActivationKind::GELU, ActivationKind::SiLU,
                              ActivationKind::LeakyReLU}) {
    const ActivationFunction act(kind, 0.1);
    const std::string name = activation_name(kind);
    const Pair z = pair(s, 11), dy = pair(s, 12);
    Pair y = empty_pair(s), dz = empty_pair(s);
    gpu().activation_forward(act, z.f, y.f);
    gpu().activation_forward(act, z.b, y.b);
    // Linear and ReLU pass values through (or zero them): nothing to round.
    const bool passes_values = kind == ActivationKind::Linear || kind == ActivationKind::ReLU;
    expect_rounded_once(name + " forward", y.f, y.b, passes_values ? 0.0 : 0.1);
    // The backward reads y as computed by each run (the bf16 run its own bf16 y):
    // feed both the bf16 y, so they read the same values.
    const Tensor y_same = y.b.to(DType::F32);
    gpu().activation_backward(act, z.f, y_same, dy.f, dz.f);
    gpu().activation_backward(act, z.b, y.b, dy.b, dz.b);
    expect_rounded_once(name + " backward", dz.f, dz.b, passes_values ? 0.0 : 0.1);
  }
}

TEST_F(Bf16Storage, BiasAxpbyMultiplyFill) {
  const Shape s{64, 24};
  {
    std::mt19937 rng(4);
    std::uniform_real_distribution<float> d(-1.0f, 1.0f);
    std::vector<float> raw(24);
    for (float& v : raw) v = d(rng);  // a float32 parameter with all its bits
    const Tensor bias = Tensor::from_host(raw, Shape{24}, gpu());
    Pair y = pair(s, 5);
    gpu().add_bias(y.f, bias);
    gpu().add_bias(y.b, bias);
    expect_rounded_once("add_bias", y.f, y.b);
  }
  for (double beta : {0.0, 0.75}) {
    const Pair x = pair(s, 7);
    Pair y = pair(s, 8);
    gpu().axpby(0.3, x.f, beta, y.f);
    gpu().axpby(0.3, x.b, beta, y.b);
    expect_rounded_once("axpby beta=" + std::to_string(beta), y.f, y.b);
  }
  const Pair a = pair(s, 9), b = pair(s, 10);
  Pair out = empty_pair(s);
  gpu().multiply(a.f, b.f, out.f);
  gpu().multiply(a.b, b.b, out.b);
  expect_rounded_once("multiply", out.f, out.b);
  Pair filled = empty_pair(s);
  gpu().fill(filled.f, 0.1);
  gpu().fill(filled.b, 0.1);
  expect_rounded_once("fill", filled.f, filled.b);
}

TEST_F(Bf16Storage, Pooling) {
  for (PoolMode mode : {PoolMode::Max, PoolMode::Average}) {
    const std::string m = mode == PoolMode::Max ? "max" : "avg";
    const PoolGeometry g = pool_geometry(3, 1, 1);  // overlapping windows: the backward sums
    const Pair x = pair(Shape{g.N, g.H, g.W, g.C}, 21), dy = pair(Shape{g.N, g.OH, g.OW, g.C}, 22);
    Pair y = empty_pair(Shape{g.N, g.OH, g.OW, g.C}), dx = empty_pair(Shape{g.N, g.H, g.W, g.C});
    gpu().pool2d_forward(mode, g, x.f, y.f);
    gpu().pool2d_forward(mode, g, x.b, y.b);
    expect_rounded_once(m + " pool forward", y.f, y.b, mode == PoolMode::Average ? 0.1 : 0.0);  // a max is an input
    gpu().pool2d_backward(mode, g, x.f, dy.f, dx.f);
    gpu().pool2d_backward(mode, g, x.b, dy.b, dx.b);
    // (max: only inputs that win several windows sum: fewer roundings)
    expect_rounded_once(m + " pool backward", dx.f, dx.b, mode == PoolMode::Average ? 0.1 : 0.02);
  }
  // The training path: the argmax saved by the forward (float32 in both runs).
  const PoolGeometry g = pool_geometry(3, 2, 1);
  const Pair x = pair(Shape{g.N, g.H, g.W, g.C}, 23), dy = pair(Shape{g.N, g.OH, g.OW, g.C}, 24);
  Pair y = empty_pair(Shape{g.N, g.OH, g.OW, g.C}), dx = empty_pair(Shape{g.N, g.H, g.W, g.C});
  const Tensor am_f = gpu().max_pool2d_forward_train(g, x.f, y.f);
  const Tensor am_b = gpu().max_pool2d_forward_train(g, x.b, y.b);
  ASSERT_EQ(am_b.dtype(), DType::F32);
  EXPECT_EQ(am_f.to_host(), am_b.to_host());
  expect_rounded_once("max_pool2d_forward_train", y.f, y.b, 0.0);
  gpu().max_pool2d_backward_argmax(g, am_f, dy.f, dx.f);
  gpu().max_pool2d_backward_argmax(g, am_b, dy.b, dx.b);
  expect_rounded_once("max_pool2d_backward_argmax", dx.f, dx.b, 0.01);
}

TEST_F(Bf16Storage, Dropout) {
  const Shape s{50, 40};
  const Pair x = pair(s, 31);
  for (double p : {0.3, 0.5}) {
    Pair mask = empty_pair(s), y = empty_pair(s);
    gpu().dropout_forward(x.f, p, 99, mask.f, y.f);
    gpu().dropout_forward(x.b, p, 99, mask.b, y.b);
    // p = 0.5: the scale 2 is exact, y = 2x is exact: nothing to round.
    expect_rounded_once("dropout mask p=" + std::to_string(p), mask.f, mask.b, p == 0.5 ? 0.0 : 0.5);
    expect_rounded_once("dropout y p=" + std::to_string(p), y.f, y.b, p == 0.5 ? 0.0 : 0.1);
    // the backward is multiply by the mask (covered by BiasAxpbyMultiplyFill)
  }
}

TEST_F(Bf16Storage, BatchNorm) {
  const Shape s{2, 16, 16, 8};  // 512 rows: two chunks of the column plan
  const int64_t C = 8;
  const Tensor gamma = Tensor::from_host(values(C, 41, 0.5f, 1.5f), Shape{C}, gpu());
  const Tensor beta = Tensor::from_host(values(C, 42, -0.5f, 0.5f), Shape{C}, gpu());
  for (bool relu : {false, true}) {
    const std::string tag = relu ? "batchnorm_relu" : "batchnorm";
    const Pair x = pair(s, 43, -1.0f, 3.0f), dy = pair(s, 44);
    Pair y = empty_pair(s), dx = empty_pair(s);
    Tensor rm_f = Tensor::zeros(Shape{C}, gpu()), rv_f = Tensor::full(Shape{C}, 1.0, gpu());
    Tensor rm_b = rm_f.clone(), rv_b = rv_f.clone();
    Tensor sm_f = Tensor::empty(Shape{C}, gpu()), si_f = Tensor::empty(Shape{C}, gpu());
    Tensor sm_b = sm_f.clone(), si_b = si_f.clone();
    if (relu) {
      gpu().batchnorm_relu_forward_train(x.f, gamma, beta, 0.1, 1e-5, rm_f, rv_f, sm_f, si_f, y.f);
      gpu().batchnorm_relu_forward_train(x.b, gamma, beta, 0.1, 1e-5, rm_b, rv_b, sm_b, si_b, y.b);
    } else {
      gpu().batchnorm_forward_train(x.f, gamma, beta, 0.1, 1e-5, rm_f, rv_f, sm_f, si_f, y.f);
      gpu().batchnorm_forward_train(x.b, gamma, beta, 0.1, 1e-5, rm_b, rv_b, sm_b, si_b, y.b);
    }
    // The statistics (float32 in both runs) read the same values: a few float ulp at most.
    for (auto [name, tf, tb] : {std::make_tuple("saved_mean", &sm_f, &sm_b), std::make_tuple("saved_invstd", &si_f, &si_b),
                                std::make_tuple("running_mean", &rm_f, &rm_b), std::make_tuple("running_var", &rv_f, &rv_b)}) {
      ASSERT_EQ(tb->dtype(), DType::F32);
      const std::vector<float> a = tf->to_host_f32(), b = tb->to_host_f32();
      for (size_t i = 0; i < a.size(); ++i)
        EXPECT_NEAR(a[i], b[i], 4 * kF32U * std::fabs(a[i]) + 1e-7) << tag << " " << name << " [" << i << "]";
    }
    expect_within_bound(tag + " forward train", y.f, y.b, 2 * kF32U);

    Pair ye = empty_pair(s);
    if (relu) {
      gpu().batchnorm_relu_forward_eval(x.f, gamma, beta, rm_f, rv_f, 1e-5, ye.f);
      gpu().batchnorm_relu_forward_eval(x.b, gamma, beta, rm_f, rv_f, 1e-5, ye.b);
    } else {
      gpu().batchnorm_forward_eval(x.f, gamma, beta, rm_f, rv_f, 1e-5, ye.f);
      gpu().batchnorm_forward_eval(x.b, gamma, beta, rm_f, rv_f, 1e-5, ye.b);
    }
    expect_within_bound(tag + " forward eval", ye.f, ye.b, 2 * kF32U);

    // The backward of both runs from the same values: the bf16 run's y as float32.
    const Tensor y_same = y.b.to(DType::F32);
    Tensor dg_f = Tensor::empty(Shape{C}, gpu()), db_f = Tensor::empty(Shape{C}, gpu());
    Tensor dg_b = dg_f.clone(), db_b = db_f.clone();
    if (relu) {
      gpu().batchnorm_relu_backward(x.f, y_same, dy.f, gamma, sm_f, si_f, dx.f, dg_f, db_f);
      gpu().batchnorm_relu_backward(x.b, y.b, dy.b, gamma, sm_f, si_f, dx.b, dg_b, db_b);
    } else {
      gpu().batchnorm_backward(x.f, dy.f, gamma, sm_f, si_f, dx.f, dg_f, db_f);
      gpu().batchnorm_backward(x.b, dy.b, gamma, sm_f, si_f, dx.b, dg_b, db_b);
    }
    // dx = gamma invstd / rows (rows dy - sum dy - xhat sum dy xhat): a
    // cancellation of O(1) terms (double sums, one float rounding): an
    // absolute 1e-6 besides the relative bound (file comment).
    expect_within_bound(tag + " backward dx", dx.f, dx.b, 2 * kF32U, 1e-6);
    for (auto [name, tf, tb] : {std::make_tuple("dgamma", &dg_f, &dg_b), std::make_tuple("dbeta", &db_f, &db_b)}) {
      ASSERT_EQ(tb->dtype(), DType::F32);
      const std::vector<float> a = tf->to_host_f32(), b = tb->to_host_f32();
      for (size_t i = 0; i < a.size(); ++i)
        EXPECT_NEAR(a[i], b[i], 4 * kF32U * std::fabs(a[i]) + 1e-6) << tag << " " << name << " [" << i << "]";
    }
  }
}

TEST_F(Bf16Storage, SoftmaxCrossEntropy) {
  const int64_t rows = 64, cols = 10;
  const Pair z = pair(Shape{rows, cols}, 51, -4.0f, 4.0f);
  std::vector<float> labels(static_cast<size_t>(rows * cols), 0.0f);
  for (int64_t r = 0; r < rows; ++r) labels[static_cast<size_t>(r * cols + (r * 7) % cols)] = 1.0f;
  const Tensor y = Tensor::from_host(labels, Shape{rows, cols}, gpu());  // targets stay float32
  Pair dz = empty_pair(Shape{rows, cols});
  const double loss_f = gpu().softmax_cross_entropy(z.f, y, &dz.f);
  const double loss_b = gpu().softmax_cross_entropy(z.b, y, &dz.b);
  // The loss is float arithmetic on the same values summed in double: a few float ulp per row.
  EXPECT_NEAR(loss_b, loss_f, 4 * cols * kF32U * std::fabs(loss_f));
  // dz = (s - y) / m: the softmax's row sum of cols exponentials, then a cancellation against y <= 1.
  expect_within_bound("softmax_cross_entropy dz", dz.f, dz.b, 2 * cols * kF32U, 2 * cols * kF32U / rows);
  // The device-resident twin, on bf16 logits.
  Tensor loss = Tensor::empty(Shape{1}, gpu(), DType::F64);
  gpu().softmax_cross_entropy_into(z.b, y, nullptr, loss);
  EXPECT_EQ(loss.item(), loss_b);
}

// What the CUDA device refuses: mixed dtypes, bf16 parameters or targets,
// other dtypes, and every op that has no bf16 storage yet.
TEST_F(Bf16Storage, RefusesWhatItDoesNotRun) {
  const Shape s{8, 4};
  const Pair a = pair(s, 61);
  Pair out = empty_pair(s);
  expect_refused("mixed activation dtypes", "dtype mismatch", [&] { gpu().activation_forward(ActivationKind::ReLU, a.b, out.f); });
  expect_refused("mixed axpby", "dtype mismatch", [&] { gpu().axpby(1.0, a.f, 1.0, out.b); });
  const Tensor bias16 = Tensor::zeros(Shape{4}, gpu()).to(DType::BF16);
  expect_refused("bf16 bias", "'bias' is bfloat16, but must be float32", [&] { gpu().add_bias(out.b, bias16); });
  const Tensor f64 = Tensor::empty(s, gpu(), DType::F64);  // (CUDA fills no float64 either)
  Tensor f64_out = Tensor::empty(s, gpu(), DType::F64);
  expect_refused("float64 activations", "CUDA takes float32 or bfloat16 here",
                 [&] { gpu().activation_forward(ActivationKind::ReLU, f64, f64_out); });
  expect_refused("bf16 softmax", "must be float32", [&] { gpu().activation_forward(ActivationKind::SoftMax, a.b, out.b); });
  expect_refused("bf16 targets", "'y' is bfloat16", [&] { gpu().softmax_cross_entropy(a.b, a.b, nullptr); });
  Tensor c = Tensor::empty(Shape{8, 8}, gpu(), DType::BF16);
  expect_refused("bf16 gemm", "must be float32", [&] { gpu().gemm(false, true, 1.0, a.b, a.b, 0.0, c); });
  ConvGeometry g;
  g.N = 1, g.H = 4, g.W = 4, g.C = 2, g.KH = 3, g.KW = 3, g.F = 2, g.pad_h = 1, g.pad_w = 1, g.OH = 4, g.OW = 4;
  const Tensor x = Tensor::zeros(Shape{1, 4, 4, 2}, gpu()).to(DType::BF16);
  const Tensor w = Tensor::zeros(Shape{3, 3, 2, 2}, gpu());
  Tensor y = Tensor::empty(Shape{1, 4, 4, 2}, gpu(), DType::BF16);
  expect_refused("bf16 conv2d", "'x' is bfloat16, but must be float32", [&] { gpu().conv2d_forward(g, x, w, Tensor(), y); });
  expect_refused("bf16 sum", "must be float32", [&] { gpu().sum(a.b); });
}
