// Parity of the CUDA backend's reduced-precision matrix products (tf32 and
// bf16, include/janus/precision.hpp) with the CPU: GEMMs (all transposes)
// and the three convolution passes, on a real GPU or the simulator. The fp32
// parity suite (test_parity_ops) is unchanged; this one sets the mode.
//
// The references. bf16: the CPU device in bf16 mode (its exact emulation or
// oneDNN's bf16 kernels). tf32: the CPU has no TF32 mode, so the test rounds
// the two inputs on the host as cvt.rna.tf32.f32 does
// (src/cuda/tf32_rounding.hpp) and runs the CPU in fp32 on them.
//
// The bound, derived (not tuned). Let u_r be the unit roundoff of the input
// type (bf16 2^-8, tf32 2^-11: 8 and 11 significant bits, rounding to
// nearest), u = 2^-24 float32's, K the reduction length of an output and
// S = sum_k |a_k b_k| its sum of magnitudes (computed on the CPU as the same
// operation on |A| and |B|). Each device reads a_k(1 + d1) and b_k(1 + d2)
// with |d1|, |d2| <= u_r, so each product is off by at most
// ((1 + u_r)^2 - 1) |a_k b_k| (exact in float32 after that: at most 11 + 11
// significant bits), and the float32 sum of K such terms in any order adds
// gamma_K = K u / (1 - K u) times their magnitudes (Higham, Accuracy and
// Stability, 3.1). Each device is therefore within
//     e = (2 u_r + u_r^2) S + gamma_K (1 + u_r)^2 S
// of the exact sum, and the two within 2e (plus alpha / beta terms of the
// GEMM: K + 2 terms in gamma). This holds whatever rounding to nearest each
// device uses (a GPU's cuBLAS TF32 conversion is not documented).
// The simulator rounds exactly as the host does (round to nearest even for
// bf16, cvt.rna for TF32), so there the inputs are identical and only the
// summation order differs: the tighter 2 gamma_K S is asserted as well,
// which a missing or different rounding of the inputs would fail.
// Each case also checks that the mode took effect: the CUDA result differs
// from the CUDA fp32 result.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "conv_case.hpp"
#include "cuda/tf32_rounding.hpp"
#include "janus/device.hpp"
#include "janus/precision.hpp"
#include "janus/tensor.hpp"

using namespace janus;

namespace {

constexpr double kU = 1.0 / 16777216.0;  // 2^-24

// The unit roundoff of a mode's input type.
double input_roundoff(Precision p) { return p == Precision::BF16 ? std::ldexp(1.0, -8) : std::ldexp(1.0, -11); }

// An operation with two inputs and one output, run on device d.
using Op = std::function<void(Device& d, const Tensor& a, const Tensor& b, Tensor& out)>;

class PrecisionParity : public ::testing::TestWithParam<Precision> {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0)
      GTEST_SKIP() << "no CUDA device available (" << cuda_unavailable_reason()
                   << "): nothing to compare the CPU with";
    gpu_ = &get_device("cuda");
    std::cout << "[parity] " << precision_name(GetParam()) << ": cpu vs " << gpu_->name() << "\n";
  }

  Device& cpu() { return cpu_device(); }
  Device& gpu() { return *gpu_; }

  Tensor rand(const Shape& s, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> d(-1.0f, 1.0f);
    std::vector<float> v(static_cast<size_t>(s.numel()));
    for (float& x : v) x = d(rng);
    return Tensor::from_host(v, s, cpu());
  }
  Tensor map(const Tensor& t, float (*f)(float)) {
    std::vector<float> v = t.to_host_f32();
    for (float& x : v) x = f(x);
    return Tensor::from_host(v, t.shape(), cpu());
  }
  static float abs_value(float x) { return std::fabs(x); }
  static float tf32_value(float x) { return cuda::round_to_tf32(x); }

  // Runs `op` in the mode on both devices and checks the bounds above. `c0`
  // is the output's initial value (read by GEMMs with beta != 0), K the
  // reduction length of each output (with the alpha / beta terms).
  void check(const std::string& what, const Op& op, const Tensor& a, const Tensor& b, const Tensor& c0, double K) {
    const Precision p = GetParam();
    const double ur = input_roundoff(p);
    const double gamma = K * kU / (1 - K * kU);
    const double general = 2 * ((2 * ur + ur * ur) + gamma * (1 + ur) * (1 + ur));
    const double same_inputs = 2 * gamma;

    Tensor ref = c0.clone(), mag = map(c0, abs_value);
    op(cpu(), map(a, abs_value), map(b, abs_value), mag);  // S (fp32: |.| of the exact inputs)
    if (p == Precision::BF16) {
      const PrecisionScope scope(Precision::BF16);
      op(cpu(), a, b, ref);
    } else {  // the CPU has no TF32: inputs rounded here, fp32 products
      op(cpu(), map(a, tf32_value), map(b, tf32_value), ref);
    }
    Tensor got = c0.to(gpu()), got_fp32 = c0.to(gpu());
    {
      const PrecisionScope scope(p);
      op(gpu(), a.to(gpu()), b.to(gpu()), got);
    }
    op(gpu(), a.to(gpu()), b.to(gpu()), got_fp32);

    const std::vector<double> r = ref.to_host(), g = got.to_host(), g32 = got_fp32.to_host(), s = mag.to_host();
    double worst_general = 0, worst_same = 0;
    int64_t differ_from_fp32 = 0;
    for (size_t i = 0; i < r.size(); ++i) {
      const double err = std::fabs(g[i] - r[i]);
      // 2^-126 (float32's smallest normal) for outputs whose S is zero.
      const double floor = std::ldexp(1.0, -126);
      worst_general = std::max(worst_general, err / (general * s[i] + floor));
      worst_same = std::max(worst_same, err / (same_inputs * s[i] + floor));
      differ_from_fp32 += g[i] != g32[i];
    }
    std::cout << "[parity]   " << what << ": worst error / bound " << worst_general << " (derived from u_r, K = " << K
              << "), " << worst_same << " (same inputs, summation only); " << differ_from_fp32 << " of " << r.size()
              << " outputs differ from fp32\n";
    EXPECT_LE(worst_general, 1.0) << what;
    if (gpu().simulated()) {
      EXPECT_LE(worst_same, 1.0) << what << " (the simulator rounds as the host does)";
    }
    EXPECT_GT(differ_from_fp32, 0) << what << ": the mode changed nothing on " << gpu().name();
  }

 private:
  Device* gpu_ = nullptr;
};

TEST_P(PrecisionParity, Gemm) {
  struct Case {
    int M, N, K;
  };
  for (const Case& cs : {Case{37, 29, 53}, Case{65, 3, 300}, Case{1, 70, 33}})
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb) {
        const Shape sa = ta ? Shape{cs.K, cs.M} : Shape{cs.M, cs.K};
        const Shape sb = tb ? Shape{cs.N, cs.K} : Shape{cs.K, cs.N};
        const std::string what = "gemm " + std::to_string(cs.M) + "x" + std::to_string(cs.N) + "x" +
                                 std::to_string(cs.K) + (ta ? " A^T" : "") + (tb ? " B^T" : "");
        // alpha and beta: C is read (the bound's + 2 terms).
        check(what, [ta, tb](Device& d, const Tensor& a, const Tensor& b, Tensor& c) { d.gemm(ta, tb, 1.5, a, b, -0.5, c); },
              rand(sa, 10 + cs.M), rand(sb, 20 + cs.N), rand({cs.M, cs.N}, 30), cs.K + 2);
      }
}

TEST_P(PrecisionParity, Conv2dThreePasses) {
  // N, H, W, C, KH, KW, F, strides, pads: odd sizes with F = 70, stride 2 with
  // C = 17, enough rows for split-K in the filter gradient, 1x1 "valid".
  for (const janus::testing::ConvCase& k : {janus::testing::ConvCase{2, 9, 7, 3, 3, 3, 70, 1, 1, 1, 1},
                                     janus::testing::ConvCase{2, 9, 9, 17, 3, 3, 5, 2, 2, 1, 1},
                                     janus::testing::ConvCase{4, 16, 16, 8, 3, 3, 16, 1, 1, 1, 1},
                                     janus::testing::ConvCase{3, 6, 6, 4, 1, 1, 9, 1, 1, 0, 0}}) {
    const ConvGeometry g = janus::testing::geometry_of(k);
    const std::string geom = "N" + std::to_string(g.N) + " " + std::to_string(g.H) + "x" + std::to_string(g.W) + "x" +
                             std::to_string(g.C) + " k" + std::to_string(g.KH) + " F" + std::to_string(g.F) + " s" +
                             std::to_string(g.stride_h);
    const Shape xs{g.N, g.H, g.W, g.C}, ws{g.KH, g.KW, g.C, g.F}, ys{g.N, g.OH, g.OW, g.F};
    const Tensor x = rand(xs, 41), w = rand(ws, 42), dy = rand(ys, 44);
    check("conv2d_forward " + geom,
          [g](Device& d, const Tensor& a, const Tensor& b, Tensor& y) { d.conv2d_forward(g, a, b, Tensor(), y); }, x, w,
          Tensor::zeros(ys, cpu()), static_cast<double>(g.KH) * g.KW * g.C);
    check("conv2d_backward_data " + geom,
          [g](Device& d, const Tensor& a, const Tensor& b, Tensor& dx) { d.conv2d_backward_data(g, a, b, dx); }, dy, w,
          Tensor::zeros(xs, cpu()), static_cast<double>(g.KH) * g.KW * g.F);
    check("conv2d_backward_filter " + geom,
          [g](Device& d, const Tensor& a, const Tensor& b, Tensor& dw) { d.conv2d_backward_filter(g, a, b, dw); }, x,
          dy, Tensor::zeros(ws, cpu()), static_cast<double>(g.N) * g.OH * g.OW);
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, PrecisionParity, ::testing::Values(Precision::TF32, Precision::BF16),
                         [](const ::testing::TestParamInfo<Precision>& mode) {
                           return std::string(precision_name(mode.param));
                         });

}  // namespace
