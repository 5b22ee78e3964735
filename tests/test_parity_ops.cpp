// Parity of every Device operation between the CPU backend (the reference)
// and the CUDA backend (a real GPU, or the CUDA simulator in a JANUS_CUDA=SIM
// build): identical random inputs on both, outputs compared element by
// element with |cuda - cpu| <= atol_i + rtol * |cpu|.
//
// Tolerances (u = 2^-24, the float32 unit roundoff):
// - Elementwise float ops: a few ulp (the CPU may compute in double and round
//   once, the GPU rounds each float op; CUDA's expf/tanhf/logf are <= 2 ulp).
// - Dot products (GEMM, convolutions): a sum of K float products computed in
//   any order has error <= K*u*sum_k |a_k b_k| (first order, Higham 3.1), on
//   each side. The test computes sum_k |a_k b_k| exactly as the same op on the
//   CPU applied to |A| and |B|, and allows atol_i = 2*K*u*(|A||B|)_i.
// - Reductions the backends accumulate in double (sum, sum_rows, losses,
//   BatchNorm statistics): only the final float rounding and per-element float
//   math differ: a few ulp of the result, or of the sum of magnitudes.
// - Max pooling, dropout masks, count_correct: bit-exact (no arithmetic).
//
// Each test records which two devices it compared (RecordProperty and
// stdout), and is skipped when this machine has no CUDA device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "janus/device.hpp"
#include "janus/error.hpp"
#include "janus/precision.hpp"
#include "janus/tensor.hpp"

#include "cuda/cuda_device.hpp"
#include "test_cuda_device.hpp"
#include "tf32_reference.hpp"

using namespace janus;

namespace {

constexpr double kU = 1.0 / 16777216.0;  // 2^-24

class Parity : public ::testing::Test {
 protected:
  void SetUp() override {
    // With JANUS_REQUIRE_CUDA set, cuda_device_count() throws instead: the test fails.
    if (cuda_device_count() == 0)
      GTEST_SKIP() << "no CUDA device available (" << cuda_unavailable_reason()
                   << "): nothing to compare the CPU with";
    gpu_ = &get_device(test::cuda_device_under_test());
    cpu_ = &cpu_device();
    const std::string pair = cpu_->name() + " vs " + gpu_->name();
    RecordProperty("devices", pair);
    std::cout << "[parity] comparing " << pair << "\n";
  }

  Device& cpu() { return *cpu_; }
  Device& gpu() { return *gpu_; }

  // Convolution paths to exercise on this CUDA device.
  std::vector<cuda::ConvAlgo> conv_algos() {
    if (gpu().simulated()) return {cuda::ConvAlgo::ImplicitGemm};
    return {cuda::ConvAlgo::ImplicitGemm, cuda::ConvAlgo::CuDNN};
  }
  cuda::CudaDevice& cuda_dev() { return dynamic_cast<cuda::CudaDevice&>(gpu()); }

  Tensor rand(const Shape& s, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> v(static_cast<size_t>(s.numel()));
    for (float& x : v) x = d(rng);
    return Tensor::from_host(v, s, cpu());
  }
  // Small integers: many exact ties (for max pooling and argmax).
  Tensor rand_int(const Shape& s, uint32_t seed, int lo, int hi) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> d(lo, hi);
    std::vector<float> v(static_cast<size_t>(s.numel()));
    for (float& x : v) x = static_cast<float>(d(rng));
    return Tensor::from_host(v, s, cpu());
  }
  Tensor on_gpu(const Tensor& t) { return t.to(gpu()); }
  Tensor abs_of(const Tensor& t) {
    std::vector<float> v = t.to_host_f32();
    for (float& x : v) x = std::fabs(x);
    return Tensor::from_host(v, t.shape(), cpu());
  }

  // |got - ref| <= atol_i + rtol*|ref| for all i; atol_i = atol + scale * mag_i.
  void expect_close(const std::string& what, const Tensor& ref, const Tensor& got, double atol, double rtol,
                    const Tensor* mag = nullptr, double scale = 0.0) {
    ASSERT_EQ(ref.numel(), got.numel()) << what;
    const std::vector<double> r = ref.to_host(), g = got.to_host();
    std::vector<double> m;
    if (mag) m = mag->to_host();
    double max_abs = 0.0, max_rel = 0.0;
    int64_t bad = 0, first_bad = -1;
    for (size_t i = 0; i < r.size(); ++i) {
      const double err = std::fabs(g[i] - r[i]);
      const double tol = atol + rtol * std::fabs(r[i]) + (mag ? scale * m[i] : 0.0);
      if (!(err <= tol)) {
        if (first_bad < 0) first_bad = static_cast<int64_t>(i);
        ++bad;
      }
      max_abs = std::max(max_abs, err);
      if (r[i] != 0.0) max_rel = std::max(max_rel, err / std::fabs(r[i]));
    }
    std::cout << "[parity]   " << what << ": max abs err " << max_abs << ", max rel err " << max_rel << "\n";
    EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << r.size() << " elements out of tolerance; first at "
                      << first_bad << ": cpu " << (first_bad >= 0 ? r[static_cast<size_t>(first_bad)] : 0.0)
                      << ", cuda " << (first_bad >= 0 ? g[static_cast<size_t>(first_bad)] : 0.0);
  }
  void expect_exact(const std::string& what, const Tensor& ref, const Tensor& got) {
    expect_close(what, ref, got, 0.0, 0.0);
  }
  void expect_scalar(const std::string& what, double ref, double got, double tol) {
    std::cout << "[parity]   " << what << ": cpu " << ref << ", cuda " << got << ", diff " << std::fabs(ref - got)
              << " (tol " << tol << ")\n";
    EXPECT_LE(std::fabs(ref - got), tol) << what << ": cpu " << ref << ", cuda " << got;
  }

 private:
  Device* cpu_ = nullptr;
  Device* gpu_ = nullptr;
};

// ---- elementwise --------------------------------------------------------------

TEST_F(Parity, FillAxpbyMultiply) {
  const Shape s{7, 13};
  Tensor xc = rand(s, 1), yc = rand(s, 2);
  Tensor xg = on_gpu(xc), yg = on_gpu(yc);

  Tensor fc = Tensor::empty(s, cpu()), fg = Tensor::empty(s, gpu());
  cpu().fill(fc, 0.1);
  gpu().fill(fg, 0.1);
  expect_exact("fill", fc, fg);  // both round 0.1 to float once

  // Float vs double evaluation of alpha*x + beta*y: <= 2 ulp of |ax|+|by|, here <= 2.5.
  cpu().axpby(0.7, xc, -1.3, yc);
  gpu().axpby(0.7, xg, -1.3, yg);
  expect_close("axpby", yc, yg, 4 * 2.5 * kU, 0.0);

  // beta == 0 must not read y (fresh CUDA memory may hold NaN).
  Tensor zc = Tensor::empty(s, cpu()), zg = Tensor::empty(s, gpu());
  cpu().fill(zc, 0.0);
  cpu().axpby(2.0, xc, 0.0, zc);
  gpu().axpby(2.0, xg, 0.0, zg);
  expect_exact("axpby beta=0", zc, zg);

  // One rounding of an exact product on both sides: identical.
  cpu().multiply(xc, yc, yc);  // out aliases b
  gpu().multiply(xg, yg, yg);
  expect_close("multiply (aliased)", yc, yg, 4 * 2.5 * kU, 2 * kU);
}

TEST_F(Parity, Gemm) {
  struct Case {
    int M, N, K;
  };
  for (const Case& cs : {Case{37, 29, 53}, Case{1, 70, 33}, Case{65, 1, 129}, Case{3, 5, 1}}) {
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb) {
        const Shape sa = ta ? Shape{cs.K, cs.M} : Shape{cs.M, cs.K};
        const Shape sb = tb ? Shape{cs.N, cs.K} : Shape{cs.K, cs.N};
        Tensor ac = rand(sa, 10 + cs.M), bc = rand(sb, 20 + cs.N), cc = rand({cs.M, cs.N}, 30);
        Tensor ag = on_gpu(ac), bg = on_gpu(bc), cg = on_gpu(cc);
        // Magnitude: |alpha| |A||B| + |beta| |C|, the sum of absolute terms.
        Tensor mag = abs_of(cc);
        cpu().gemm(ta, tb, 1.5, abs_of(ac), abs_of(bc), 0.5, mag);
        cpu().gemm(ta, tb, 1.5, ac, bc, -0.5, cc);
        gpu().gemm(ta, tb, 1.5, ag, bg, -0.5, cg);
        const std::string what = "gemm " + std::to_string(cs.M) + "x" + std::to_string(cs.N) + "x" +
                                 std::to_string(cs.K) + (ta ? " A^T" : "") + (tb ? " B^T" : "");
        expect_close(what, cc, cg, 0.0, 0.0, &mag, 2.0 * (cs.K + 2) * kU);
      }
  }
  // beta = 0 ignores NaN garbage in C.
  Tensor ac = rand({4, 6}, 1), bc = rand({6, 5}, 2);
  Tensor cc = Tensor::zeros({4, 5}, cpu());
  Tensor cg = Tensor::empty({4, 5}, gpu());
  Tensor mag = Tensor::zeros({4, 5}, cpu());
  cpu().gemm(false, false, 1.0, abs_of(ac), abs_of(bc), 0.0, mag);
  cpu().gemm(false, false, 1.0, ac, bc, 0.0, cc);
  gpu().gemm(false, false, 1.0, on_gpu(ac), on_gpu(bc), 0.0, cg);
  expect_close("gemm beta=0", cc, cg, 0.0, 0.0, &mag, 2.0 * 8 * kU);
}

TEST_F(Parity, BiasAndReductions) {
  Tensor yc = rand({33, 19}, 3), bc = rand({19}, 4);
  Tensor yg = on_gpu(yc);
  cpu().add_bias(yc, bc);
  gpu().add_bias(yg, on_gpu(bc));
  expect_exact("add_bias", yc, yg);  // one float add each

  // sum_rows: double accumulation on both sides, one final rounding (+ beta*out).
  for (const Shape& s : {Shape{1000, 37}, Shape{1, 5}, Shape{3, 2, 2, 70}}) {
    Tensor xc = rand(s, 5), oc = rand({s.last()}, 6);
    Tensor og = on_gpu(oc);
    cpu().sum_rows(xc, 0.5, oc);
    gpu().sum_rows(on_gpu(xc), 0.5, og);
    expect_close("sum_rows beta=0.5 " + s.str(), oc, og, 1e-12 * s.rows(), 2 * kU);
    Tensor zc = Tensor::empty({s.last()}, cpu()), zg = Tensor::empty({s.last()}, gpu());
    cpu().sum_rows(xc, 0.0, zc);
    gpu().sum_rows(on_gpu(xc), 0.0, zg);
    expect_close("sum_rows beta=0 " + s.str(), zc, zg, 1e-12 * s.rows(), 2 * kU);
  }
  // sum: exact float inputs added in double, any order: error <= n * 2^-53 * sum|x|.
  for (int64_t n : {int64_t{1}, int64_t{1000}, int64_t{300001}}) {
    Tensor xc = rand({n}, 7);
    expect_scalar("sum n=" + std::to_string(n), cpu().sum(xc), gpu().sum(on_gpu(xc)),
                  static_cast<double>(n) * 1.2e-16 * static_cast<double>(n));
  }
}

// ---- activations ----------------------------------------------------------------

// Per-element error magnitudes beyond a few ulp of the result. The CPU
// reference computes forward in double (rounded once) and backward in float,
// as the GPU does; the entries of activation_functions.hpp round every
// product on its own on the GPU (mul: never contracted into an FMA), so these
// bounds hold whatever nvcc contracts. Backward bounds are of each side's
// error, counted twice. mag_i is multiplied by u (2^-24) in the comparison.
//   GELU forward  0.5 z erfc(-z/sqrt2): the rounded argument t = -z/sqrt2
//     costs |t| * |d ln erfc / dt| * u <= (2 t^2 + 2) u = (z^2 + 2) u
//     relative, erfcf <= 4 ulp: mag = z^2 |y| on top of the 8 ulp.
//   GELU backward dy (Phi + z phi): both terms carry (z^2 + 8) u relative
//     (phi's exp of a rounded z^2/2 costs z^2/2 u) and cancel near z = -0.75:
//     mag = 2 |dy| (|Phi| + |z phi|) (z^2 + 8).
//   SiLU backward dy s (1 + z (1 - s)): s carries <= 5 u, 1 - s and z (1-s)
//     2 roundings more, and 1 + z (1 - s) cancels near z = -1.28:
//     mag = 16 |dy| s (1 + |z|).
// Sigmoid, TanH (both sides round 1 - y*y alike), ReLU, LeakyReLU, SiLU
// forward: within the 8 ulp relative.
struct ActivationErrorMagnitudes {
  std::vector<double> forward, backward;
};

ActivationErrorMagnitudes error_magnitudes(ActivationKind kind, const std::vector<double>& z,
                                           const std::vector<double>& dy) {
  ActivationErrorMagnitudes m{std::vector<double>(z.size(), 0.0), std::vector<double>(z.size(), 0.0)};
  for (size_t i = 0; i < z.size(); ++i) {
    const double v = z[i], g = std::fabs(dy[i]);
    if (kind == ActivationKind::GELU) {
      const double cdf = 0.5 * std::erfc(-v / std::sqrt(2.0));
      const double pdf = std::exp(-0.5 * v * v) / std::sqrt(2.0 * M_PI);
      m.forward[i] = v * v * std::fabs(v * cdf);
      m.backward[i] = 2.0 * g * (cdf + std::fabs(v * pdf)) * (v * v + 8.0);
    } else if (kind == ActivationKind::SiLU) {
      const double sig = 1.0 / (1.0 + std::exp(-v));
      m.backward[i] = 16.0 * g * sig * (1.0 + std::fabs(v));
    }
  }
  return m;
}

TEST_F(Parity, Activations) {
  // Every entry of the activation table, LeakyReLU also with a negative slope.
  std::vector<ActivationFunction> acts(std::begin(kAllActivations), std::end(kAllActivations));
  acts.emplace_back(ActivationKind::LeakyReLU, -0.3);
  for (const Shape& s : {Shape{17, 10}, Shape{3, 77}, Shape{1, 1}, Shape{2, 3, 5, 6}}) {
    for (const ActivationFunction& act : acts) {
      const bool softmax = act.kind == ActivationKind::SoftMax;
      const std::string what = std::string(activation_name(act.kind)) + " " + s.str() +
                               (act.kind == ActivationKind::LeakyReLU ? " slope " + std::to_string(act.negative_slope) : "");
      Tensor zc = rand(s, 11, -4.0f, 4.0f), dyc = rand(s, 12);
      {  // exact zeros: ReLU's derivative is 0 there, LeakyReLU's the slope
        std::vector<float> zv = zc.to_host_f32();
        for (size_t i = 0; i < zv.size(); i += 7) zv[i] = 0.0f;
        zc = Tensor::from_host(zv, s, cpu());
      }
      const ActivationErrorMagnitudes mag = error_magnitudes(act.kind, zc.to_host(), dyc.to_host());
      const Tensor mag_forward = Tensor::from_host(mag.forward, s, cpu());
      const Tensor mag_backward = Tensor::from_host(mag.backward, s, cpu());
      Tensor zg = on_gpu(zc), dyg = on_gpu(dyc);
      Tensor yc = Tensor::empty(s, cpu()), yg = Tensor::empty(s, gpu());
      cpu().activation_forward(act, zc, yc);
      gpu().activation_forward(act, zg, yg);
      // expf/tanhf within 2 ulp, one more rounding for 1/(1+e) or the softmax
      // division; softmax sums <= 77 terms in float: 8 ulp + 77 u relative.
      expect_close("forward " + what, yc, yg, 1e-30, (softmax ? 8 + s.last() : 8) * kU, &mag_forward, kU);
      // Backward uses the CPU's y on both sides so only the backward differs.
      yg = on_gpu(yc);
      Tensor dzc = Tensor::empty(s, cpu()), dzg = Tensor::empty(s, gpu());
      cpu().activation_backward(act, zc, yc, dyc, dzc);
      gpu().activation_backward(act, zg, yg, dyg, dzg);
      // Elementwise: a product of 3 roundings (<= 4 ulp). SoftMax: the row dot
      // product sum_j dy_j y_j has K terms with sum |dy_j y_j| <= max|dy| = 1.
      const double atol = softmax ? 2.0 * (s.last() + 4) * kU : 1e-30;
      expect_close("backward " + what, dzc, dzg, atol, 8 * kU, &mag_backward, kU);
    }
  }
}

// ---- losses ------------------------------------------------------------------------

TEST_F(Parity, Losses) {
  for (const Shape& s : {Shape{16, 10}, Shape{1, 3}, Shape{5, 100}}) {
    // Probabilities (softmax of random logits), one-hot and soft targets.
    Tensor logits = rand(s, 21, -3.0f, 3.0f);
    Tensor yhat = Tensor::empty(s, cpu());
    cpu().activation_forward(ActivationKind::SoftMax, logits, yhat);
    std::vector<float> oh(static_cast<size_t>(s.numel()), 0.0f);
    std::mt19937 rng(22);
    for (int64_t r = 0; r < s[0]; ++r) oh[static_cast<size_t>(r * s[1] + static_cast<int64_t>(rng() % s[1]))] = 1.0f;
    Tensor onehot = Tensor::from_host(oh, s, cpu());
    Tensor soft = Tensor::empty(s, cpu());
    cpu().activation_forward(ActivationKind::SoftMax, rand(s, 23), soft);
    // A hard zero in yhat exercises the 1e-12 clamp.
    std::vector<float> yz = yhat.to_host_f32();
    yz[0] = 0.0f;
    Tensor yhat0 = Tensor::from_host(yz, s, cpu());

    for (const Tensor* y : {&onehot, &soft}) {
      const std::string tgt = (y == &onehot ? " one-hot " : " soft ") + s.str();
      for (const Tensor* yh : {&yhat, &yhat0}) {
        // CE: the CPU takes log in double, the GPU logf (<= 2 ulp of |log|, i.e.
        // absolute <= 2u*|log p|); summed in double: tol 4u * sum|y log p| / m + tiny.
        const double jc = cpu().cross_entropy_forward(*yh, *y);
        const double jg = gpu().cross_entropy_forward(on_gpu(*yh), on_gpu(*y));
        expect_scalar("cross_entropy_forward" + tgt, jc, jg, 4 * kU * std::fabs(jc) + 1e-12);
        Tensor dc = Tensor::empty(s, cpu()), dg = Tensor::empty(s, gpu());
        cpu().cross_entropy_backward(*yh, *y, dc);
        gpu().cross_entropy_backward(on_gpu(*yh), on_gpu(*y), dg);
        expect_close("cross_entropy_backward" + tgt, dc, dg, 1e-30, 4 * kU);
      }
      const double lc = cpu().l2_forward(yhat, *y), lg = gpu().l2_forward(on_gpu(yhat), on_gpu(*y));
      expect_scalar("l2_forward" + tgt, lc, lg, 1e-12 * (1 + std::fabs(lc)));  // exact terms, double sums
      Tensor dc = Tensor::empty(s, cpu()), dg = Tensor::empty(s, gpu());
      cpu().l2_backward(yhat, *y, dc);
      gpu().l2_backward(on_gpu(yhat), on_gpu(*y), dg);
      // (yhat - y) exact or 1 rounding, times 2/m: <= 2 ulp of the result, or of |yhat|+|y|.
      expect_close("l2_backward" + tgt, dc, dg, 4 * kU * 2.0 * 2.0 / static_cast<double>(s[0]), 2 * kU);

      // Fused softmax + CE on logits: log-sum-exp in float on the GPU; per row
      // |error| <= (k + 8) u (max|z| + log k) in the log-softmax, times sum|y|.
      const double kz = static_cast<double>(s[1]);
      const double row_tol = (kz + 8) * kU * (3.0 + std::log(kz) + 1.0);
      Tensor zc = Tensor::empty(s, cpu()), zg = Tensor::empty(s, gpu());
      const double sc = cpu().softmax_cross_entropy(logits, *y, &zc);
      const double sg = gpu().softmax_cross_entropy(on_gpu(logits), on_gpu(*y), &zg);
      expect_scalar("softmax_cross_entropy" + tgt, sc, sg, row_tol);
      const double sg2 = gpu().softmax_cross_entropy(on_gpu(logits), on_gpu(*y), nullptr);
      expect_scalar("softmax_cross_entropy (no dz)" + tgt, sc, sg2, row_tol);
      // dz = (s * sum y - y)/m: s within (8 + k) ulp relative (expf + float sum).
      expect_close("softmax_cross_entropy dz" + tgt, zc, zg, (kz + 8) * kU * 2.0 / static_cast<double>(s[0]), 4 * kU);
    }
  }
}

TEST_F(Parity, CountCorrect) {
  // Integer scores from a tiny range: many ties, resolved to the first maximum.
  for (const Shape& s : {Shape{200, 10}, Shape{1, 3}, Shape{9, 70}}) {
    Tensor a = rand_int(s, 31, 0, 3), b = rand_int(s, 32, 0, 3);
    const int64_t cc = cpu().count_correct(a, b), cg = gpu().count_correct(on_gpu(a), on_gpu(b));
    std::cout << "[parity]   count_correct " << s.str() << ": cpu " << cc << ", cuda " << cg << "\n";
    EXPECT_EQ(cc, cg) << s.str();
    EXPECT_EQ(gpu().count_correct(on_gpu(a), on_gpu(a)), s[0]);
  }
}

// ---- convolution -------------------------------------------------------------------

ConvGeometry conv_geom(int N, int H, int W, int C, int KH, int KW, int F, int sh, int sw, int ph, int pw,
                       int groups = 1) {
  ConvGeometry g;
  g.N = N, g.H = H, g.W = W, g.C = C, g.KH = KH, g.KW = KW, g.F = F, g.groups = groups;
  g.stride_h = sh, g.stride_w = sw, g.pad_h = ph, g.pad_w = pw;
  g.OH = (H + 2 * ph - KH) / sh + 1;
  g.OW = (W + 2 * pw - KW) / sw + 1;
  return g;
}

std::string conv_str(const ConvGeometry& g) {
  return "N" + std::to_string(g.N) + " " + std::to_string(g.H) + "x" + std::to_string(g.W) + "x" +
         std::to_string(g.C) + " k" + std::to_string(g.KH) + "x" + std::to_string(g.KW) + " F" +
         std::to_string(g.F) + " s" + std::to_string(g.stride_h) + "," + std::to_string(g.stride_w) + " p" +
         std::to_string(g.pad_h) + "," + std::to_string(g.pad_w) + " g" + std::to_string(g.groups);
}

TEST_F(Parity, Conv2d) {
  const std::vector<ConvGeometry> geoms = {
      conv_geom(1, 5, 5, 1, 3, 3, 1, 1, 1, 1, 1),     // batch 1, "same"
      conv_geom(2, 9, 7, 3, 3, 3, 70, 1, 1, 1, 1),    // odd sizes, F not a multiple of 64
      conv_geom(2, 9, 9, 17, 3, 3, 5, 2, 2, 1, 1),    // stride 2, C not a multiple of 16
      conv_geom(1, 8, 11, 5, 3, 5, 7, 1, 2, 1, 2),    // non-square kernel, mixed strides
      conv_geom(3, 6, 6, 4, 1, 1, 9, 1, 1, 0, 0),     // 1x1, "valid"
      conv_geom(2, 7, 6, 65, 5, 1, 3, 2, 1, 0, 0),    // 5x1 kernel, valid, C = 65
      conv_geom(1, 10, 10, 2, 4, 4, 3, 2, 2, 3, 3),   // even kernel, large integer padding
      conv_geom(4, 16, 16, 8, 3, 3, 16, 1, 1, 1, 1),  // enough rows for split-K in the filter gradient
      // Implicit GEMM's float4 gathers (C and F multiples of 4) on both tile
      // shapes (N > 32: 128x64, N <= 32: 256x32), several M and K tiles.
      conv_geom(2, 8, 8, 36, 3, 3, 40, 1, 1, 1, 1),
      conv_geom(2, 9, 9, 32, 3, 3, 32, 2, 2, 1, 1),
      conv_geom(1, 7, 9, 12, 2, 3, 68, 3, 2, 1, 0),   // strides 3 and 2 in backward data, float4 runs
      // Grouped and depthwise (groups = C): Janus's grouped kernels, cuDNN's group count.
      conv_geom(2, 9, 7, 6, 3, 3, 10, 1, 1, 1, 1, 2),  // 2 groups, "same"
      conv_geom(2, 9, 9, 8, 3, 3, 8, 2, 2, 1, 1, 8),   // depthwise, stride 2, padding 1
      conv_geom(3, 8, 7, 5, 3, 3, 10, 2, 2, 1, 1, 5),  // depthwise, multiplier 2, stride 2, odd sizes
      conv_geom(2, 7, 6, 12, 5, 3, 6, 1, 2, 2, 0, 3),  // 3 groups of 4 -> 2, non-square, mixed strides
      conv_geom(2, 6, 6, 4, 1, 1, 8, 1, 1, 0, 0, 4),   // 1x1 depthwise, multiplier 2
  };
  for (cuda::ConvAlgo algo : conv_algos()) {
    cuda_dev().set_conv_algo(algo);
    for (const ConvGeometry& g : geoms) {
      const std::string what = std::string(cuda::conv_algo_name(algo)) + " " + conv_str(g);
      const Shape xs{g.N, g.H, g.W, g.C}, ws{g.KH, g.KW, g.group_channels(), g.F}, ys{g.N, g.OH, g.OW, g.F};
      Tensor x = rand(xs, 41), w = rand(ws, 42), b = rand({g.F}, 43), dy = rand(ys, 44);
      const double kfwd = static_cast<double>(g.KH) * g.KW * g.group_channels();

      for (bool with_bias : {true, false}) {
        Tensor yc = Tensor::empty(ys, cpu()), yg = Tensor::empty(ys, gpu()), mag = Tensor::empty(ys, cpu());
        cpu().conv2d_forward(g, x, w, with_bias ? b : Tensor(), yc);
        gpu().conv2d_forward(g, on_gpu(x), on_gpu(w), with_bias ? on_gpu(b) : Tensor(), yg);
        cpu().conv2d_forward(g, abs_of(x), abs_of(w), with_bias ? abs_of(b) : Tensor(), mag);
        expect_close(std::string("conv2d_forward") + (with_bias ? "+bias " : " ") + what, yc, yg, 0.0, 0.0, &mag,
                     2.0 * (kfwd + 2) * kU);
      }
      // Backward data: each dx sums at most KH*KW*F/groups products.
      Tensor dxc = Tensor::empty(xs, cpu()), dxg = Tensor::empty(xs, gpu()), magx = Tensor::empty(xs, cpu());
      cpu().conv2d_backward_data(g, dy, w, dxc);
      gpu().conv2d_backward_data(g, on_gpu(dy), on_gpu(w), dxg);
      cpu().conv2d_backward_data(g, abs_of(dy), abs_of(w), magx);
      expect_close("conv2d_backward_data " + what, dxc, dxg, 0.0, 0.0, &magx,
                   2.0 * (static_cast<double>(g.KH) * g.KW * g.group_filters() + 2) * kU);
      // Backward filter: each dw sums N*OH*OW products.
      Tensor dwc = Tensor::empty(ws, cpu()), dwg = Tensor::empty(ws, gpu()), magw = Tensor::empty(ws, cpu());
      cpu().conv2d_backward_filter(g, x, dy, dwc);
      gpu().conv2d_backward_filter(g, on_gpu(x), on_gpu(dy), dwg);
      cpu().conv2d_backward_filter(g, abs_of(x), abs_of(dy), magw);
      expect_close("conv2d_backward_filter " + what, dwc, dwg, 0.0, 0.0, &magw,
                   2.0 * (static_cast<double>(g.N) * g.OH * g.OW + 2) * kU);
    }
  }
  cuda_dev().set_conv_algo(conv_algos().back());
}

// Implicit GEMM in the reduced-precision modes (include/janus/precision.hpp):
// TF32 (tensor cores, WMMA) and BF16 (operands rounded to bfloat16, CUDA
// cores). Reference: the CPU in fp32 on operands rounded as the mode rounds
// them (TF32: to nearest, ties away, tests/tf32_reference.hpp; BF16: to
// nearest even, janus::round_to_bf16). A product of two rounded operands is
// exact in float32 (11 + 11 or 8 + 8 significant bits), so both sides sum the
// same K exact products and differ only by summation error: at most
// K*u*sum|a_k b_k| on the CPU (round to nearest, u = 2^-24) and K*2u*sum|a_k b_k|
// on the GPU (tensor cores do not document their internal rounding: 2u allows
// a directed rounding at every addition). With the bias (two more terms) the
// bound is 3*(K + 2)*u*(|A||B|)_i, |A||B| computed on the rounded operands.
TEST_F(Parity, Conv2dReducedPrecisionImplicitGemm) {
  const std::vector<ConvGeometry> geoms = {
      conv_geom(2, 8, 8, 36, 3, 3, 40, 1, 1, 1, 1),   // float4 gathers, 128x64 tiles
      conv_geom(2, 9, 9, 32, 3, 3, 32, 2, 2, 1, 1),   // 256x32 tiles, stride 2
      conv_geom(2, 9, 7, 3, 3, 3, 70, 1, 1, 1, 1),    // scalar gathers, partial tiles
      conv_geom(4, 16, 16, 8, 3, 3, 16, 1, 1, 1, 1),  // split-K filter gradient
      conv_geom(2, 9, 9, 8, 3, 3, 16, 2, 2, 1, 1, 8), // depthwise: the grouped kernels on rounded operands
  };
  auto rounded = [&](const Tensor& t, Precision p) {
    std::vector<float> v = t.to_host_f32();
    for (float& x : v) x = p == Precision::TF32 ? test::tf32_reference(x) : round_to_bf16(x);
    return Tensor::from_host(v, t.shape(), cpu());
  };
  cuda_dev().set_conv_algo(cuda::ConvAlgo::ImplicitGemm);
  for (Precision p : {Precision::TF32, Precision::BF16}) {
    for (const ConvGeometry& g : geoms) {
      const std::string what = std::string(precision_name(p)) + " " + conv_str(g);
      const Shape xs{g.N, g.H, g.W, g.C}, ws{g.KH, g.KW, g.group_channels(), g.F}, ys{g.N, g.OH, g.OW, g.F};
      const Tensor x = rand(xs, 51), w = rand(ws, 52), b = rand({g.F}, 53), dy = rand(ys, 54);
      const Tensor xr = rounded(x, p), wr = rounded(w, p), dyr = rounded(dy, p);
      auto bound = [](double k) { return 3.0 * (k + 2) * kU; };

      Tensor yc = Tensor::empty(ys, cpu()), mag = Tensor::empty(ys, cpu()), yg = Tensor::empty(ys, gpu());
      Tensor yg32 = Tensor::empty(ys, gpu());
      cpu().conv2d_forward(g, xr, wr, b, yc);
      cpu().conv2d_forward(g, abs_of(xr), abs_of(wr), abs_of(b), mag);
      gpu().conv2d_forward(g, on_gpu(x), on_gpu(w), on_gpu(b), yg32);
      {
        const PrecisionScope scope(p);
        gpu().conv2d_forward(g, on_gpu(x), on_gpu(w), on_gpu(b), yg);
      }
      expect_close("conv2d_forward " + what, yc, yg, 0.0, 0.0, &mag, bound(double(g.KH) * g.KW * g.group_channels()));
      // The mode must change the arithmetic: rounding 13 (TF32) or 16 (BF16)
      // mantissa bits of random operands moves some outputs.
      const std::vector<float> r32 = yg32.to_host_f32(), rp = yg.to_host_f32();
      EXPECT_NE(r32, rp) << what << ": the reduced-precision forward equals the fp32 one";

      Tensor dxc = Tensor::empty(xs, cpu()), magx = Tensor::empty(xs, cpu()), dxg = Tensor::empty(xs, gpu());
      cpu().conv2d_backward_data(g, dyr, wr, dxc);
      cpu().conv2d_backward_data(g, abs_of(dyr), abs_of(wr), magx);
      Tensor dwc = Tensor::empty(ws, cpu()), magw = Tensor::empty(ws, cpu()), dwg = Tensor::empty(ws, gpu());
      cpu().conv2d_backward_filter(g, xr, dyr, dwc);
      cpu().conv2d_backward_filter(g, abs_of(xr), abs_of(dyr), magw);
      Tensor dxg32 = Tensor::empty(xs, gpu()), dwg32 = Tensor::empty(ws, gpu());
      gpu().conv2d_backward_data(g, on_gpu(dy), on_gpu(w), dxg32);
      gpu().conv2d_backward_filter(g, on_gpu(x), on_gpu(dy), dwg32);
      {
        const PrecisionScope scope(p);
        gpu().conv2d_backward_data(g, on_gpu(dy), on_gpu(w), dxg);
        gpu().conv2d_backward_filter(g, on_gpu(x), on_gpu(dy), dwg);
      }
      EXPECT_NE(dxg32.to_host_f32(), dxg.to_host_f32()) << what << ": backward data ignored the mode";
      EXPECT_NE(dwg32.to_host_f32(), dwg.to_host_f32()) << what << ": backward filter ignored the mode";
      expect_close("conv2d_backward_data " + what, dxc, dxg, 0.0, 0.0, &magx,
                   bound(double(g.KH) * g.KW * g.group_filters()));
      expect_close("conv2d_backward_filter " + what, dwc, dwg, 0.0, 0.0, &magw, bound(double(g.N) * g.OH * g.OW));
    }
  }
  cuda_dev().set_conv_algo(conv_algos().back());
}

// ---- pooling ----------------------------------------------------------------------

PoolGeometry pool_geom(int N, int H, int W, int C, int KH, int KW, int sh, int sw, int ph, int pw) {
  PoolGeometry g;
  g.N = N, g.H = H, g.W = W, g.C = C, g.KH = KH, g.KW = KW;
  g.stride_h = sh, g.stride_w = sw, g.pad_h = ph, g.pad_w = pw;
  g.OH = (H + 2 * ph - KH) / sh + 1;
  g.OW = (W + 2 * pw - KW) / sw + 1;
  return g;
}

TEST_F(Parity, Pool2d) {
  const std::vector<PoolGeometry> geoms = {
      pool_geom(2, 8, 8, 3, 2, 2, 2, 2, 0, 0),    // the usual 2x2/2
      pool_geom(1, 7, 9, 5, 3, 3, 2, 2, 1, 1),    // overlapping windows, padding, odd sizes
      pool_geom(2, 6, 5, 2, 3, 2, 1, 2, 1, 0),    // non-square, stride 1 x 2
      pool_geom(1, 5, 5, 33, 3, 3, 1, 1, 2, 2),   // heavy overlap, padding 2
  };
  for (const PoolGeometry& g : geoms) {
    const Shape xs{g.N, g.H, g.W, g.C}, ys{g.N, g.OH, g.OW, g.C};
    const std::string gs = "N" + std::to_string(g.N) + " " + std::to_string(g.H) + "x" + std::to_string(g.W) + "x" +
                           std::to_string(g.C) + " k" + std::to_string(g.KH) + "x" + std::to_string(g.KW) + " s" +
                           std::to_string(g.stride_h) + "," + std::to_string(g.stride_w) + " p" +
                           std::to_string(g.pad_h) + "," + std::to_string(g.pad_w);
    // Integers in [-2, 2]: ties in almost every window (and negative values,
    // so a padding zero winning would show).
    Tensor x = rand_int(xs, 51, -2, 2), dy = rand(ys, 52);
    for (PoolMode mode : {PoolMode::Max, PoolMode::Average}) {
      const bool mx = mode == PoolMode::Max;
      const std::string what = std::string(mx ? "max " : "average ") + gs;
      Tensor yc = Tensor::empty(ys, cpu()), yg = Tensor::empty(ys, gpu());
      cpu().pool2d_forward(mode, g, x, yc);
      gpu().pool2d_forward(mode, g, on_gpu(x), yg);
      // Max: a copy (exact). Average of small integers: exact sums, then one
      // division or a multiplication by a rounded 1/(KH*KW): <= 2 ulp.
      expect_close("pool2d_forward " + what, yc, yg, 0.0, mx ? 0.0 : 4 * kU);
      Tensor dxc = Tensor::empty(xs, cpu()), dxg = Tensor::empty(xs, gpu());
      cpu().pool2d_backward(mode, g, x, dy, dxc);
      gpu().pool2d_backward(mode, g, on_gpu(x), on_gpu(dy), dxg);
      // An input position is covered by at most KH*KW windows; their |dy| <= 1
      // gradients are summed (the CUDA kernel in double, a CPU path may use
      // float): <= (KH*KW + 1) u * KH*KW apart. A gradient routed to the wrong
      // tie position would be off by |dy| ~ 0.5, far outside this.
      const double windows = static_cast<double>(g.KH) * g.KW;
      expect_close("pool2d_backward " + what, dxc, dxg, 2.0 * (windows + 1) * windows * kU, 0.0);
      if (!mx) continue;
      // Training's max pooling: the forward keeps each window's argmax and the
      // backward routes dy through it; the same results as above.
      Tensor ya = Tensor::empty(ys, gpu()), dxa = Tensor::empty(xs, gpu());
      const Tensor argmax = gpu().max_pool2d_forward_train(g, on_gpu(x), ya);
      ASSERT_TRUE(argmax.defined()) << "the CUDA backend keeps the argmax";
      expect_exact("max_pool2d_forward_train " + what, yc, ya.to(cpu()));
      gpu().max_pool2d_backward_argmax(g, argmax, on_gpu(dy), dxa);
      expect_close("max_pool2d_backward_argmax " + what, dxc, dxa, 2.0 * (windows + 1) * windows * kU, 0.0);
      expect_exact("max_pool2d_backward_argmax vs pool2d_backward " + what, dxg.to(cpu()), dxa.to(cpu()));
    }
  }
}

// Global average pooling is average pooling with one window over the whole
// map (GlobalAvgPool): sums of H*W floats in double (CPU reference) or in
// another order: <= H*W u of the sum of magnitudes, over H*W.
TEST_F(Parity, GlobalAveragePool) {
  const PoolGeometry g = pool_geom(3, 8, 8, 17, 8, 8, 1, 1, 0, 0);
  const Shape xs{g.N, g.H, g.W, g.C}, ys{g.N, 1, 1, g.C};
  Tensor x = rand(xs, 53), dy = rand(ys, 54);
  Tensor yc = Tensor::empty(ys, cpu()), yg = Tensor::empty(ys, gpu());
  cpu().pool2d_forward(PoolMode::Average, g, x, yc);
  gpu().pool2d_forward(PoolMode::Average, g, on_gpu(x), yg);
  expect_close("global average pool forward", yc, yg, 2 * 64 * kU, 4 * kU);
  Tensor dxc = Tensor::empty(xs, cpu()), dxg = Tensor::empty(xs, gpu());
  cpu().pool2d_backward(PoolMode::Average, g, x, dy, dxc);
  gpu().pool2d_backward(PoolMode::Average, g, on_gpu(x), on_gpu(dy), dxg);
  expect_close("global average pool backward", dxc, dxg, 0.0, 2 * kU);  // dy / 64: one rounding
}

// ---- column blocks (Concat) -----------------------------------------------------------

TEST_F(Parity, CopyColumns) {
  // Concatenation of (2,3,4,5) and (2,3,4,2) into (2,3,4,7) and back.
  Tensor a = rand({2, 3, 4, 5}, 61), b = rand({2, 3, 4, 2}, 62);
  Tensor yc = Tensor::empty({2, 3, 4, 7}, cpu()), yg = Tensor::empty({2, 3, 4, 7}, gpu());
  cpu().copy_columns(a, 0, yc, 0, 5);
  cpu().copy_columns(b, 0, yc, 5, 2);
  gpu().copy_columns(on_gpu(a), 0, yg, 0, 5);
  gpu().copy_columns(on_gpu(b), 0, yg, 5, 2);
  expect_exact("copy_columns (concat)", yc, yg);
  // A block out of the middle; the columns outside it keep their values.
  Tensor dc = Tensor::full({24, 3}, 9.0, cpu()), dg = Tensor::full({24, 3}, 9.0, gpu());
  cpu().copy_columns(yc, 4, dc, 1, 2);
  gpu().copy_columns(yg, 4, dg, 1, 2);
  expect_exact("copy_columns (split)", dc, dg);
  const std::vector<float> host = dg.to_host_f32();
  EXPECT_EQ(host[0], 9.0f);
  EXPECT_EQ(host[1], yc.to_host_f32()[4]);
  // The contract is one check for every backend: the same error on both.
  std::string errors[2];
  Device* devices[2] = {&cpu(), &gpu()};
  for (int d = 0; d < 2; ++d) {
    Tensor src = Tensor::zeros({4, 3}, *devices[d]), dst = Tensor::zeros({4, 2}, *devices[d]);
    try {
      devices[d]->copy_columns(src, 2, dst, 0, 2);
    } catch (const Error& e) {
      errors[d] = e.what();
    }
  }
  EXPECT_NE(errors[0].find("copy_columns: columns [2, 4) of (4, 3) to [0, 2) of (4, 2) leave the tensors"),
            std::string::npos) << errors[0];
  ASSERT_NE(errors[1].find("copy_columns"), std::string::npos) << errors[1];
  EXPECT_EQ(errors[0].substr(errors[0].find("copy_columns")), errors[1].substr(errors[1].find("copy_columns")));
}

// ---- batch normalisation ------------------------------------------------------------

TEST_F(Parity, BatchNorm) {
  // {4, 33, 31, 40}: 4092 rows, 16 row chunks (the last one short) and a
  // partial second tile of channels, so the statistics merge partials.
  for (const Shape& s : {Shape{64, 10}, Shape{2, 5, 5, 17}, Shape{2, 3}, Shape{4, 33, 31, 40}}) {
    const int64_t C = s.last();
    // Offset data so the mean matters; gamma/beta O(1).
    Tensor x = rand(s, 61, 0.5f, 2.5f), dy = rand(s, 62), gamma = rand({C}, 63, 0.5f, 2.0f), beta = rand({C}, 64);
    Tensor rmc = rand({C}, 65), rvc = rand({C}, 66, 0.5f, 1.5f);
    Tensor rmg = on_gpu(rmc), rvg = on_gpu(rvc);
    Tensor smc = Tensor::empty({C}, cpu()), sic = Tensor::empty({C}, cpu());
    Tensor smg = Tensor::empty({C}, gpu()), sig = Tensor::empty({C}, gpu());
    Tensor yc = Tensor::empty(s, cpu()), yg = Tensor::empty(s, gpu());
    cpu().batchnorm_forward_train(x, gamma, beta, 0.1, 1e-5, rmc, rvc, smc, sic, yc);
    gpu().batchnorm_forward_train(on_gpu(x), on_gpu(gamma), on_gpu(beta), 0.1, 1e-5, rmg, rvg, smg, sig, yg);
    // Statistics are double sums rounded to float: a few ulp.
    expect_close("batchnorm saved_mean " + s.str(), smc, smg, 0.0, 4 * kU);
    expect_close("batchnorm saved_invstd " + s.str(), sic, sig, 0.0, 8 * kU);
    expect_close("batchnorm running_mean " + s.str(), rmc, rmg, 4 * kU, 4 * kU);
    expect_close("batchnorm running_var " + s.str(), rvc, rvg, 4 * kU, 4 * kU);
    // y = gamma (x - mean) invstd + beta, evaluated in double from double
    // statistics on both backends and rounded once: at most an ulp of the
    // terms' magnitude |gamma xhat| + |beta| (< 16 here) apart.
    expect_close("batchnorm_forward_train y " + s.str(), yc, yg, 64 * kU, 8 * kU);

    Tensor ec = Tensor::empty(s, cpu()), eg = Tensor::empty(s, gpu());
    cpu().batchnorm_forward_eval(x, gamma, beta, rmc, rvc, 1e-5, ec);
    gpu().batchnorm_forward_eval(on_gpu(x), on_gpu(gamma), on_gpu(beta), rmg, rvg, 1e-5, eg);
    expect_close("batchnorm_forward_eval " + s.str(), ec, eg, 64 * kU, 8 * kU);

    // Backward from the CPU's saved statistics (on both devices).
    Tensor dxc = Tensor::empty(s, cpu()), dgc = Tensor::empty({C}, cpu()), dbc = Tensor::empty({C}, cpu());
    Tensor dxg = Tensor::empty(s, gpu()), dgg = Tensor::empty({C}, gpu()), dbg = Tensor::empty({C}, gpu());
    cpu().batchnorm_backward(x, dy, gamma, smc, sic, dxc, dgc, dbc);
    gpu().batchnorm_backward(on_gpu(x), on_gpu(dy), on_gpu(gamma), on_gpu(smc), on_gpu(sic), dxg, dgg, dbg);
    const double rows = static_cast<double>(s.rows());
    // dbeta: a double sum of exact values. dgamma: sum over rows of dy*xhat with
    // xhat within ~16u: rows * 16u * |xhat|max(~2).
    expect_close("batchnorm_backward dbeta " + s.str(), dbc, dbg, 1e-12 * rows, 2 * kU);
    expect_close("batchnorm_backward dgamma " + s.str(), dgc, dgg, rows * 32 * kU, 2 * kU);
    // dx = gamma invstd (dy - (dbeta + xhat dgamma)/rows): each term O(gamma invstd * 3).
    expect_close("batchnorm_backward dx " + s.str(), dxc, dxg, 256 * kU, 8 * kU);
  }
}

// BatchNorm + ReLU (the pair the fusion pass marks): the CUDA backend runs it
// in the BatchNorm kernels themselves. Against the CPU within BatchNorm's
// bounds, and on the CUDA device bit-identical to BatchNorm followed by a
// separate ReLU (Device's contract: fusing never changes training).
TEST_F(Parity, BatchNormReluFused) {
  for (const Shape& s : {Shape{64, 10}, Shape{4, 33, 31, 40}}) {
    const int64_t C = s.last();
    // Centred data: about half the outputs are cut by the ReLU.
    Tensor x = rand(s, 71, -1.0f, 1.5f), dy = rand(s, 72), gamma = rand({C}, 73, 0.5f, 2.0f), beta = rand({C}, 74);
    Tensor rm = rand({C}, 75), rv = rand({C}, 76, 0.5f, 1.5f);
    Tensor rmc = rm.clone(), rvc = rv.clone(), rmf = on_gpu(rm), rvf = on_gpu(rv), rmu = on_gpu(rm), rvu = on_gpu(rv);
    Tensor smc = Tensor::empty({C}, cpu()), sic = Tensor::empty({C}, cpu());
    Tensor smf = Tensor::empty({C}, gpu()), sif = Tensor::empty({C}, gpu());
    Tensor smu = Tensor::empty({C}, gpu()), siu = Tensor::empty({C}, gpu());
    Tensor yc = Tensor::empty(s, cpu()), yf = Tensor::empty(s, gpu()), yu = Tensor::empty(s, gpu());
    const Tensor xg = on_gpu(x), gg = on_gpu(gamma), bg = on_gpu(beta), dyg = on_gpu(dy);
    cpu().batchnorm_relu_forward_train(x, gamma, beta, 0.1, 1e-5, rmc, rvc, smc, sic, yc);
    gpu().batchnorm_relu_forward_train(xg, gg, bg, 0.1, 1e-5, rmf, rvf, smf, sif, yf);
    gpu().batchnorm_forward_train(xg, gg, bg, 0.1, 1e-5, rmu, rvu, smu, siu, yu);
    gpu().activation_forward(ActivationKind::ReLU, yu, yu);
    expect_close("batchnorm_relu_forward_train y " + s.str(), yc, yf, 64 * kU, 8 * kU);
    expect_close("batchnorm_relu saved_invstd " + s.str(), sic, sif, 0.0, 8 * kU);
    expect_exact("batchnorm_relu_forward_train fused vs unfused " + s.str(), yu.to(cpu()), yf.to(cpu()));
    expect_exact("batchnorm_relu running_var fused vs unfused " + s.str(), rvu.to(cpu()), rvf.to(cpu()));
    int64_t cut = 0;
    for (float v : yf.to_host_f32()) cut += v == 0.0f;
    EXPECT_GT(cut, s.numel() / 5) << "the ReLU must cut a good part of the outputs for this test to mean anything";

    Tensor ec = Tensor::empty(s, cpu()), ef = Tensor::empty(s, gpu()), eu = Tensor::empty(s, gpu());
    cpu().batchnorm_relu_forward_eval(x, gamma, beta, rmc, rvc, 1e-5, ec);
    gpu().batchnorm_relu_forward_eval(xg, gg, bg, rmf, rvf, 1e-5, ef);
    gpu().batchnorm_forward_eval(xg, gg, bg, rmf, rvf, 1e-5, eu);
    gpu().activation_forward(ActivationKind::ReLU, eu, eu);
    expect_close("batchnorm_relu_forward_eval " + s.str(), ec, ef, 64 * kU, 8 * kU);
    expect_exact("batchnorm_relu_forward_eval fused vs unfused " + s.str(), eu.to(cpu()), ef.to(cpu()));

    // Backward from the CPU's forward output and statistics (on both devices).
    const Tensor ycg = on_gpu(yc), smg = on_gpu(smc), sig = on_gpu(sic);
    Tensor dxc = Tensor::empty(s, cpu()), dgc = Tensor::empty({C}, cpu()), dbc = Tensor::empty({C}, cpu());
    Tensor dxf = Tensor::empty(s, gpu()), dgf = Tensor::empty({C}, gpu()), dbf = Tensor::empty({C}, gpu());
    Tensor dxu = Tensor::empty(s, gpu()), dgu = Tensor::empty({C}, gpu()), dbu = Tensor::empty({C}, gpu());
    cpu().batchnorm_relu_backward(x, yc, dy, gamma, smc, sic, dxc, dgc, dbc);
    gpu().batchnorm_relu_backward(xg, ycg, dyg, gg, smg, sig, dxf, dgf, dbf);
    gpu().Device::batchnorm_relu_backward(xg, ycg, dyg, gg, smg, sig, dxu, dgu, dbu);  // ReLU, then BatchNorm
    const double rows = static_cast<double>(s.rows());
    expect_close("batchnorm_relu_backward dbeta " + s.str(), dbc, dbf, 1e-12 * rows, 2 * kU);
    expect_close("batchnorm_relu_backward dgamma " + s.str(), dgc, dgf, rows * 32 * kU, 2 * kU);
    expect_close("batchnorm_relu_backward dx " + s.str(), dxc, dxf, 256 * kU, 8 * kU);
    expect_exact("batchnorm_relu_backward dx fused vs unfused " + s.str(), dxu.to(cpu()), dxf.to(cpu()));
    expect_exact("batchnorm_relu_backward dgamma fused vs unfused " + s.str(), dgu.to(cpu()), dgf.to(cpu()));
  }
}

// ---- dropout ------------------------------------------------------------------------

TEST_F(Parity, Dropout) {
  for (double p : {0.0, 0.1, 0.5, 0.9}) {
    const Shape s{37, 129};
    Tensor x = rand(s, 71);
    Tensor mc = Tensor::empty(s, cpu()), yc = Tensor::empty(s, cpu());
    Tensor mg = Tensor::empty(s, gpu()), yg = Tensor::empty(s, gpu());
    cpu().dropout_forward(x, p, 1234, mc, yc);
    gpu().dropout_forward(on_gpu(x), p, 1234, mg, yg);
    // counter_uniform gives the same numbers on both devices: identical masks.
    expect_exact("dropout mask p=" + std::to_string(p), mc, mg);
    expect_exact("dropout y p=" + std::to_string(p), yc, yg);
  }
}

// ---- optimizers ---------------------------------------------------------------------

TEST_F(Parity, Sgd) {
  struct Case {
    double momentum, wd;
    bool nesterov;
  };
  for (const Case& cs : {Case{0.0, 0.0, false}, Case{0.9, 0.0, false}, Case{0.9, 1e-2, true}, Case{0.0, 5e-4, false}}) {
    const Shape s{13, 11};
    Tensor wc = rand(s, 81), vc = Tensor::zeros(s, cpu());
    Tensor wg = on_gpu(wc), vg = on_gpu(vc);
    for (int step = 0; step < 3; ++step) {
      Tensor g = rand(s, 82 + step);
      cpu().sgd_update(wc, g, vc, 0.05, cs.momentum, cs.wd, cs.nesterov);
      gpu().sgd_update(wg, on_gpu(g), vg, 0.05, cs.momentum, cs.wd, cs.nesterov);
    }
    const std::string what = "sgd momentum=" + std::to_string(cs.momentum) + " wd=" + std::to_string(cs.wd) +
                             (cs.nesterov ? " nesterov" : "");
    // Both backends compute in double and round once per step; a contracted FMA
    // on the GPU can flip a final rounding: <= 1 ulp of |w| <= 1.5, |v| <= 3 per step.
    expect_close(what + " w", wc, wg, 3 * 16 * kU, 0.0);
    if (cs.momentum != 0.0) expect_close(what + " velocity", vc, vg, 3 * 16 * kU, 0.0);
  }
}

TEST_F(Parity, Adam) {
  for (bool decoupled : {false, true}) {
    const Shape s{9, 23};
    Tensor wc = rand(s, 91), mc = Tensor::zeros(s, cpu()), vc = Tensor::zeros(s, cpu());
    Tensor wg = on_gpu(wc), mg = on_gpu(mc), vg = on_gpu(vc);
    for (int64_t step = 1; step <= 5; ++step) {
      Tensor g = rand(s, 92 + static_cast<uint32_t>(step));
      cpu().adam_update(wc, g, mc, vc, 1e-2, 0.9, 0.999, 1e-8, 1e-2, decoupled, step);
      gpu().adam_update(wg, on_gpu(g), mg, vg, 1e-2, 0.9, 0.999, 1e-8, 1e-2, decoupled, step);
    }
    const std::string what = decoupled ? "adamw" : "adam";
    // Double arithmetic and one rounding per value and step on both backends
    // (the GPU may contract to FMA): about an ulp of O(1) values per step.
    expect_close(what + " m", mc, mg, 5 * 8 * kU, 0.0);
    expect_close(what + " v", vc, vg, 5 * 8 * kU, 8 * kU);
    expect_close(what + " w", wc, wg, 5 * 8 * kU, 0.0);
  }
}

// All parameters of a step in one call (one launch on CUDA), each with its own
// lr and weight decay: tensors of several sizes (one element, an empty one,
// several blocks' worth with a short last block), against the CPU's
// per-tensor updates with the same bounds as above.
TEST_F(Parity, MultiTensorOptimizerUpdates) {
  const std::vector<Shape> shapes = {Shape{3, 3, 8, 16}, Shape{1}, Shape{0}, Shape{37, 101}, Shape{16}};
  const int steps = 3;
  for (int rule = 0; rule < 4; ++rule) {  // sgd+momentum, sgd nesterov, adam, adamw
    const bool sgd = rule < 2;
    std::vector<Tensor> wc, wg, ac, ag, bc, bg;  // a/b: velocity, or m and v
    for (size_t k = 0; k < shapes.size(); ++k) {
      wc.push_back(rand(shapes[k], 101 + static_cast<uint32_t>(k)));
      ac.push_back(Tensor::zeros(shapes[k], cpu()));
      bc.push_back(Tensor::zeros(shapes[k], cpu()));
      wg.push_back(on_gpu(wc.back()));
      ag.push_back(on_gpu(ac.back()));
      bg.push_back(on_gpu(bc.back()));
    }
    for (int64_t step = 1; step <= steps; ++step) {
      std::vector<Tensor> g, gg;
      std::vector<SgdParamUpdate> su;
      std::vector<AdamParamUpdate> au;
      for (size_t k = 0; k < shapes.size(); ++k) {
        g.push_back(rand(shapes[k], 200 + static_cast<uint32_t>(10 * step + k)));
        gg.push_back(on_gpu(g.back()));
      }
      for (size_t k = 0; k < shapes.size(); ++k) {
        const double lr = (sgd ? 0.05 : 1e-2) * (1.0 + 0.5 * static_cast<double>(k));  // per tensor
        const double wd = k % 2 == 0 ? 1e-2 : 0.0;                                        // per tensor
        if (sgd) {
          cpu().sgd_update(wc[k], g[k], ac[k], lr, 0.9, wd, rule == 1);
          su.push_back({&wg[k], &gg[k], &ag[k], lr, wd});
        } else {
          cpu().adam_update(wc[k], g[k], ac[k], bc[k], lr, 0.9, 0.999, 1e-8, wd, rule == 3, step);
          au.push_back({&wg[k], &gg[k], &ag[k], &bg[k], lr, wd});
        }
      }
      if (sgd) gpu().sgd_update_multi(su, 0.9, rule == 1);
      else gpu().adam_update_multi(au, 0.9, 0.999, 1e-8, rule == 3, step);
    }
    const char* names[] = {"sgd momentum", "sgd nesterov", "adam", "adamw"};
    for (size_t k = 0; k < shapes.size(); ++k) {
      const std::string what = std::string(names[rule]) + " multi-tensor " + shapes[k].str();
      expect_close(what + " w", wc[k], wg[k], steps * 16 * kU, 0.0);
      expect_close(what + (sgd ? " velocity" : " m"), ac[k], ag[k], steps * 16 * kU, 0.0);
      if (!sgd) expect_close(what + " v", bc[k], bg[k], steps * 8 * kU, 8 * kU);
    }
  }
}

// ---- the caching allocator ----------------------------------------------------------

TEST_F(Parity, SteadyStateDoesNoCudaMalloc) {
  // One "training step" worth of ops with workspaces; the second run of the
  // same step must be served entirely from the allocator's cache.
  const ConvGeometry g = conv_geom(2, 8, 8, 3, 3, 3, 4, 1, 1, 1, 1);
  Tensor x = on_gpu(rand({2, 8, 8, 3}, 1)), w = on_gpu(rand({3, 3, 3, 4}, 2));
  auto step = [&] {
    Tensor y = Tensor::empty({2, 8, 8, 4}, gpu()), dx = Tensor::empty({2, 8, 8, 3}, gpu());
    Tensor dw = Tensor::empty({3, 3, 3, 4}, gpu());
    gpu().conv2d_forward(g, x, w, Tensor(), y);
    gpu().conv2d_backward_data(g, y, w, dx);
    gpu().conv2d_backward_filter(g, x, y, dw);
    return gpu().sum(y) + gpu().l2_forward(y, y);
  };
  step();
  const size_t before = cuda_dev().allocator().malloc_count();
  step();
  EXPECT_EQ(cuda_dev().allocator().malloc_count(), before) << "a repeated step called cudaMalloc";
}

TEST_F(Parity, OutOfMemoryMessage) {
  const size_t huge = size_t{1} << 52;  // 4 PiB: more than any GPU (or simulator host) has
  try {
    void* p = gpu().allocate(huge);
    gpu().deallocate(p, huge);
    GTEST_SKIP() << "allocation of 4 PiB unexpectedly succeeded";
  } catch (const Error& e) {
    const std::string msg = e.what();
    std::cout << "[parity]   " << msg << "\n";
    EXPECT_NE(msg.find("out of memory"), std::string::npos) << msg;
    EXPECT_NE(msg.find(std::to_string(huge)), std::string::npos) << msg;
    EXPECT_NE(msg.find("free"), std::string::npos) << msg;
  }
}

// ---- errors --------------------------------------------------------------------------

TEST_F(Parity, NonFloat32Throws) {
  Tensor d = Tensor::empty({4}, gpu(), DType::F64);
  try {
    gpu().fill(d, 1.0);
    FAIL() << "fill of a float64 tensor on CUDA did not throw";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("fill"), std::string::npos) << msg;
    EXPECT_NE(msg.find("float32"), std::string::npos) << msg;
  }
}

}  // namespace
