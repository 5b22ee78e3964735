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
//    differences): there it is bit-exact too;
//  - matrix products (gemm, conv2d forward / backward-data / backward-filter)
//    in each precision mode, bf16 activations against float32 ones holding
//    the same values, the weights float32 in both: the same exact products
//    (bf16 values are exact in float32 and TF32; the weights are read, or
//    rounded to the mode's type, alike), summed in float32. On the simulator
//    both runs sum in the same order: bf16 output == round_to_bf16(float32
//    output) and a float32 output (the filter gradient, a gemm into float32
//    C) is equal, bit for bit. On a GPU the two runs may take different
//    kernels (cuBLAS picks its algorithm per output type; bf16 convolutions
//    run on the implicit-GEMM kernel where the float32 ones may run on
//    cuDNN), so their float32 results v and v' may sum in different orders:
//    each is within gamma_{K+2} S of the exact value, with K the reduction
//    length, S = |alpha| sum_k |a_k b_k| + |beta c| and gamma_n <= 1.01 n u
//    for n u small (Higham, Accuracy and Stability of Numerical Algorithms,
//    3.1), so |v' - v| <= 2.02 (K + 2) 2^-24 S. S is the float32 op run on
//    the absolute values (its own rounding is far below the 1% spare). The
//    test allows that plus 2^-8 (1 + 2^-8) |v| for a bf16 output.
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

  // Random float32 values in [lo, hi], all their bits (a master weight or a bias).
  static std::vector<float> uniform(int64_t n, uint32_t seed, float lo, float hi) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = d(rng);
    return v;
  }
  // The same rounded to bf16 (so both runs read the same values).
  static std::vector<float> values(int64_t n, uint32_t seed, float lo = -2.0f, float hi = 2.0f) {
    std::vector<float> v = uniform(n, seed, lo, hi);
    round_to_bf16(v.data(), v.data(), n);
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

  // A matrix product's result in the two runs (file comment, "matrix
  // products"): b (bf16 or float32) against the float32 f, with `scale` the
  // float32 op on absolute values (S) and k the reduction length K.
  // (scale is computed only where the bound is used: on a GPU.)
  void expect_product(const std::string& what, const Tensor& f, const Tensor& b,
                      const std::function<Tensor()>& scale, int64_t k) {
    if (gpu().simulated()) {
      if (b.dtype() == DType::BF16) expect_rounded_once(what, f, b);
      else expect_equal_bits(what, f, b);
      return;
    }
    const std::vector<float> vf = f.to_host_f32(), vb = b.to_host_f32(), vs = scale().to_host_f32();
    ASSERT_EQ(vf.size(), vb.size()) << what;
    const bool bf16 = b.dtype() == DType::BF16;
    int64_t rounded_up = 0;
    for (size_t i = 0; i < vf.size(); ++i) {
      const double v = vf[i];
      const double bound = (bf16 ? kBf16U * (1.0 + kBf16U) * std::fabs(v) : 0.0) +
                           2.02 * static_cast<double>(k + 2) * kF32U * static_cast<double>(vs[i]);
      ASSERT_LE(std::fabs(static_cast<double>(vb[i]) - v), bound)
          << what << " [" << i << "]: float32 " << v << ", other " << vb[i] << ", S " << vs[i];
      if (std::fabs(round_to_bf16(vf[i])) > std::fabs(vf[i])) ++rounded_up;
    }
    if (bf16) {
      EXPECT_GE(rounded_up * 10, static_cast<int64_t>(vf.size())) << what << ": too few roundings";
    }
  }

  static void expect_equal_bits(const std::string& what, const Tensor& f, const Tensor& g) {
    ASSERT_EQ(g.dtype(), DType::F32) << what;
    const std::vector<float> a = f.to_host_f32(), b = g.to_host_f32();
    ASSERT_EQ(a.size(), b.size()) << what;
    int64_t bad = 0;
    for (size_t i = 0; i < a.size(); ++i)
      if (bits_of(a[i]) != bits_of(b[i]) && ++bad <= 5)
        ADD_FAILURE() << what << " [" << i << "]: " << a[i] << " vs " << b[i];
    EXPECT_EQ(bad, 0) << what;
  }

  // A float32 tensor of uniform() values.
  Tensor raw_f32(const Shape& s, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
    return Tensor::from_host(uniform(s.numel(), seed, lo, hi), s, gpu());
  }
  // |t| as a float32 tensor (for the scale S of expect_product).
  Tensor abs_f32(const Tensor& t) {
    std::vector<float> v = t.to_host_f32();
    for (float& x : v) x = std::fabs(x);
    return Tensor::from_host(v, t.shape(), gpu());
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
    const Tensor bias = raw_f32(Shape{24}, 4);  // a float32 parameter with all its bits
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

ConvGeometry conv_geometry(int n, int h, int w, int c, int k, int f, int stride, int pad, int groups = 1) {
  ConvGeometry g;
  g.N = n, g.H = h, g.W = w, g.C = c, g.KH = k, g.KW = k, g.F = f, g.groups = groups;
  g.stride_h = g.stride_w = stride, g.pad_h = g.pad_w = pad;
  g.OH = (h + 2 * pad - k) / stride + 1, g.OW = (w + 2 * pad - k) / stride + 1;
  return g;
}

const Precision kModes[] = {Precision::FP32, Precision::TF32, Precision::BF16};

// The dense layer's three products (fully_connected.cpp: bf16 activations,
// float32 master weights and weight gradient) and an all-bf16 product with
// alpha and beta, in each precision mode; shapes not multiples of any tile.
TEST_F(Bf16Storage, Gemm) {
  struct Dims {
    int64_t m, n, k;
  };
  for (Precision mode : kModes)
    for (const Dims& d : {Dims{37, 29, 53}, Dims{64, 32, 16}, Dims{5, 130, 7}, Dims{2, 3, 300}}) {
      const PrecisionScope scope(mode);
      const std::string tag = std::string(precision_name(mode)) + " " + std::to_string(d.m) + "x" +
                              std::to_string(d.n) + "x" + std::to_string(d.k) + " ";
      // S of expect_product: the same product on absolute values.
      auto scale = [&](bool ta, bool tb, double alpha, const Tensor& a, const Tensor& b, double beta,
                       const Tensor& c_before, const Shape& out) {
        return [=, this] {
          Tensor s = beta == 0.0 ? Tensor::zeros(out, gpu()) : abs_f32(c_before);
          gpu().gemm(ta, tb, std::fabs(alpha), abs_f32(a), abs_f32(b), std::fabs(beta), s);
          return s;
        };
      };
      const Pair x = pair(Shape{d.m, d.k}, 71), dz = pair(Shape{d.m, d.n}, 72);
      const Tensor w = raw_f32(Shape{d.k, d.n}, 73);  // the float32 master weight, all bits
      Pair z = empty_pair(Shape{d.m, d.n});
      gpu().gemm(false, false, 1.0, x.f, w, 0.0, z.f);
      gpu().gemm(false, false, 1.0, x.b, w, 0.0, z.b);
      expect_product(tag + "Z = X W", z.f, z.b, scale(false, false, 1.0, x.f, w, 0.0, Tensor(), z.f.shape()), d.k);

      Tensor dw_f = Tensor::empty(w.shape(), gpu()), dw_b = Tensor::empty(w.shape(), gpu());
      gpu().gemm(true, false, 1.0, x.f, dz.f, 0.0, dw_f);
      gpu().gemm(true, false, 1.0, x.b, dz.b, 0.0, dw_b);  // float32 dW from bf16 X and dZ
      expect_product(tag + "dW = X^T dZ", dw_f, dw_b, scale(true, false, 1.0, x.f, dz.f, 0.0, Tensor(), w.shape()),
                     d.m);

      Pair dx = empty_pair(x.f.shape());
      gpu().gemm(false, true, 1.0, dz.f, w, 0.0, dx.f);
      gpu().gemm(false, true, 1.0, dz.b, w, 0.0, dx.b);
      expect_product(tag + "dX = dZ W^T", dx.f, dx.b, scale(false, true, 1.0, dz.f, w, 0.0, Tensor(), x.f.shape()),
                     d.n);

      // C = 0.5 A B^T + 0.75 C, all bf16: beta * C read from bf16.
      const Pair a = pair(Shape{d.m, d.k}, 74), bt = pair(Shape{d.n, d.k}, 75);
      const Pair c0 = pair(Shape{d.m, d.n}, 76);
      Pair c = clone(c0);
      gpu().gemm(false, true, 0.5, a.f, bt.f, 0.75, c.f);
      gpu().gemm(false, true, 0.5, a.b, bt.b, 0.75, c.b);
      expect_product(tag + "C = 0.5 A B^T + 0.75 C", c.f, c.b,
                     scale(false, true, 0.5, a.f, bt.f, 0.75, c0.f, c0.f.shape()), d.k);
    }
}

// The three passes of a convolution layer: bf16 x / y / dy / dx, float32
// weights, bias and filter gradient, in each precision mode, on geometries
// for both load widths of the implicit-GEMM kernel, both tile shapes, a
// split-K filter gradient and a grouped convolution.
TEST_F(Bf16Storage, Conv2d) {
  const ConvGeometry geometries[] = {
      conv_geometry(2, 9, 7, 5, 3, 6, 1, 1),     // C, F not multiples of 4: scalar loads; narrow tile
      conv_geometry(2, 8, 8, 8, 3, 40, 2, 1),    // runs of 4, wide tile, stride 2
      conv_geometry(3, 6, 5, 16, 1, 16, 1, 0),   // 1x1
      conv_geometry(8, 16, 16, 8, 3, 8, 1, 1),   // K = N*OH*OW = 2048: split-K filter gradient
      conv_geometry(2, 7, 7, 4, 3, 6, 1, 1, 2),  // grouped (float32 copies)
  };
  for (Precision mode : kModes)
    for (const ConvGeometry& g : geometries) {
      const PrecisionScope scope(mode);
      const std::string tag = std::string(precision_name(mode)) + " " + conv_geometry_str(g) + " ";
      EXPECT_NE(gpu().conv2d_kernel(g, DType::BF16).find("bf16 storage"), std::string::npos)
          << gpu().conv2d_kernel(g, DType::BF16);
      const Shape xs{g.N, g.H, g.W, g.C}, ys{g.N, g.OH, g.OW, g.F};
      const Shape ws{g.KH, g.KW, g.group_channels(), g.F};
      const Pair x = pair(xs, 81), dy = pair(ys, 82);
      const Tensor w = raw_f32(ws, 83), bias = raw_f32(Shape{g.F}, 84);

      Pair y = empty_pair(ys);
      gpu().conv2d_forward(g, x.f, w, bias, y.f);
      gpu().conv2d_forward(g, x.b, w, bias, y.b);
      expect_product(tag + "forward", y.f, y.b, [&] {
        Tensor s = Tensor::empty(ys, gpu());
        gpu().conv2d_forward(g, abs_f32(x.f), abs_f32(w), abs_f32(bias), s);
        return s;
      }, int64_t{g.KH} * g.KW * g.group_channels());

      Pair dx = empty_pair(xs);
      gpu().conv2d_backward_data(g, dy.f, w, dx.f);
      gpu().conv2d_backward_data(g, dy.b, w, dx.b);
      expect_product(tag + "backward data", dx.f, dx.b, [&] {
        Tensor s = Tensor::empty(xs, gpu());
        gpu().conv2d_backward_data(g, abs_f32(dy.f), abs_f32(w), s);
        return s;
      }, int64_t{g.KH} * g.KW * g.group_filters());

      Tensor dw_f = Tensor::empty(ws, gpu()), dw_b = Tensor::empty(ws, gpu());
      gpu().conv2d_backward_filter(g, x.f, dy.f, dw_f);
      gpu().conv2d_backward_filter(g, x.b, dy.b, dw_b);
      expect_product(tag + "backward filter", dw_f, dw_b, [&] {
        Tensor s = Tensor::empty(ws, gpu());
        gpu().conv2d_backward_filter(g, abs_f32(x.f), abs_f32(dy.f), s);
        return s;
      }, int64_t{g.N} * g.OH * g.OW);
    }
}

// The bias gradient of bf16 dy (sum over rows into float32): the same values
// summed in the same order, so equal bit for bit on every device. 600 rows:
// three chunks of the column plan.
TEST_F(Bf16Storage, SumRows) {
  for (const Shape& s : {Shape{37, 29}, Shape{600, 33}, Shape{2, 5, 5, 7}})
    for (double beta : {0.0, 0.5}) {
      const Pair x = pair(s, 91);
      const Tensor out0 = raw_f32(Shape{s.last()}, 92);
      Tensor out_f = out0.clone(), out_b = out0.clone();
      gpu().sum_rows(x.f, beta, out_f);
      gpu().sum_rows(x.b, beta, out_b);
      expect_equal_bits("sum_rows " + s.str() + " beta=" + std::to_string(beta), out_f, out_b);
    }
}

// Concat of bf16 tensors and its backward: a copy, exact.
TEST_F(Bf16Storage, CopyColumns) {
  const Pair a = pair(Shape{13, 5}, 93), b = pair(Shape{13, 7}, 94);
  Pair cat = pair(Shape{13, 15}, 95);  // column 12..14 keep their values
  for (Tensor* dst : {&cat.f, &cat.b}) {
    const bool bf16 = dst == &cat.b;
    gpu().copy_columns(bf16 ? a.b : a.f, 0, *dst, 0, 5);
    gpu().copy_columns(bf16 ? b.b : b.f, 0, *dst, 5, 7);
  }
  expect_rounded_once("copy_columns concat", cat.f, cat.b, 0.0);
  Pair back = empty_pair(Shape{13, 7});
  gpu().copy_columns(cat.f, 5, back.f, 0, 7);
  gpu().copy_columns(cat.b, 5, back.b, 0, 7);
  expect_rounded_once("copy_columns backward", back.f, back.b, 0.0);
  EXPECT_EQ(back.b.to_host_f32(), b.f.to_host_f32());
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
  Tensor c64 = Tensor::empty(Shape{8, 8}, gpu(), DType::F64);
  expect_refused("float64 gemm", "CUDA takes float32 or bfloat16 here",
                 [&] { gpu().gemm(false, true, 1.0, f64, f64, 0.0, c64); });
  // Convolutions: bf16 activations only; weights, bias and the filter gradient float32.
  const ConvGeometry g = conv_geometry(1, 4, 4, 2, 3, 2, 1, 1);
  const Tensor x = Tensor::zeros(Shape{1, 4, 4, 2}, gpu()).to(DType::BF16);
  const Tensor w = Tensor::zeros(Shape{3, 3, 2, 2}, gpu());
  Tensor y = Tensor::empty(Shape{1, 4, 4, 2}, gpu(), DType::BF16);
  Tensor y32 = Tensor::empty(Shape{1, 4, 4, 2}, gpu());
  expect_refused("bf16 conv2d weights", "'w' is bfloat16, but must be float32",
                 [&] { gpu().conv2d_forward(g, x, w.to(DType::BF16), Tensor(), y); });
  expect_refused("bf16 conv2d bias", "'bias' is bfloat16, but must be float32",
                 [&] { gpu().conv2d_forward(g, x, w, Tensor::zeros(Shape{2}, gpu()).to(DType::BF16), y); });
  expect_refused("mixed conv2d", "dtype mismatch", [&] { gpu().conv2d_forward(g, x, w, Tensor(), y32); });
  expect_refused("mixed conv2d backward data", "dtype mismatch", [&] { gpu().conv2d_backward_data(g, y, w, y32); });
  Tensor dw16 = Tensor::zeros(Shape{3, 3, 2, 2}, gpu()).to(DType::BF16);
  expect_refused("bf16 filter gradient", "'dw' is bfloat16, but must be float32",
                 [&] { gpu().conv2d_backward_filter(g, x, y, dw16); });
  Tensor out16 = Tensor::empty(Shape{4}, gpu(), DType::BF16);
  expect_refused("bf16 sum_rows output", "'out' is bfloat16, but must be float32",
                 [&] { gpu().sum_rows(a.b, 0.0, out16); });
  expect_refused("mixed copy_columns", "dtypes", [&] { gpu().copy_columns(a.b, 0, out.f, 0, 4); });
  // The other losses and metrics, and the optimizers (master weights and their state are float32).
  expect_refused("bf16 l2", "must be float32", [&] { gpu().l2_forward(a.b, a.b); });
  expect_refused("bf16 cross entropy", "must be float32", [&] { gpu().cross_entropy_forward(a.b, a.f); });
  expect_refused("bf16 count_correct", "must be float32", [&] { gpu().count_correct(a.b, a.f); });
  Tensor w16 = a.b.clone(), none;
  expect_refused("bf16 sgd", "'w' is bfloat16, but must be float32",
                 [&] { gpu().sgd_update(w16, a.b, none, 0.1, 0.0, 0.0, false); });
  Tensor m = a.f.clone(), v = a.f.clone();
  expect_refused("bf16 adam", "'w' is bfloat16, but must be float32",
                 [&] { gpu().adam_update(w16, a.b, m, v, 0.1, 0.9, 0.999, 1e-8, 0.0, false, 1); });
  expect_refused("bf16 sum", "must be float32", [&] { gpu().sum(a.b); });
}
