// Precision modes (include/janus/precision.hpp): the bfloat16 conversion
// against an independent rounding, the table, the refusals, and the fast CPU
// device's bf16 convolutions and GEMMs against the float64 reference on
// bf16-rounded inputs, with the bound of float32 summation.
//
// The bound. In bf16 mode each output is s = sum_k a_k b_k over the
// reduction length K, with a_k, b_k the bf16-rounded inputs, so every product
// is exact in float32 (8 + 8 significant bits); only the float32 summation
// rounds. Summed in any order with any blocking (Higham, Accuracy and
// Stability of Numerical Algorithms, 2nd ed., eq. 3.5):
//   |fl(s) - s| <= gamma_K * sum_k |a_k b_k|,  gamma_K = K u / (1 - K u),
// u = 2^-24, the unit roundoff of float32. The reference computes s and
// S = sum_k |a_k b_k| in float64 (error about K 2^-53 S, added to the bound).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "conv_case.hpp"
#include "float_bits.hpp"
#include "janus/device.hpp"
#include "janus/error.hpp"
#include "janus/json.hpp"
#include "janus/model.hpp"
#include "janus/precision.hpp"
#include "janus/tensor.hpp"

namespace janus {
namespace {

using testing::ConvCase;
using testing::geometry_of;

using test::bits_of;
using test::float_of;

// An independent bf16 rounding: the two bf16 neighbours of x (truncation and
// the next one away from zero), compared by distance in double (exact for
// these floats); ties go to the even one. The value past the largest finite
// bf16 is taken as 2^128, so overflow rounds to infinity exactly when IEEE
// round-to-nearest does.
uint16_t independent_bf16(float x) {
  const uint32_t u = bits_of(x);
  if (std::isnan(x)) return 0;  // not compared here
  const uint16_t lo = static_cast<uint16_t>(u >> 16);
  if (std::isinf(x) || (u & 0xFFFFu) == 0) return lo;
  const uint16_t hi = static_cast<uint16_t>(lo + 1);  // next magnitude, same sign
  auto value = [](uint16_t b) {
    if ((b & 0x7FFFu) == 0x7F80u) return std::ldexp((b & 0x8000u) ? -1.0 : 1.0, 128);
    return static_cast<double>(float_of(static_cast<uint32_t>(b) << 16));
  };
  const double dlo = std::fabs(static_cast<double>(x) - value(lo));
  const double dhi = std::fabs(value(hi) - static_cast<double>(x));
  if (dlo < dhi) return lo;
  if (dhi < dlo) return hi;
  return (lo & 1u) == 0 ? lo : hi;
}

TEST(Bf16Conversion, RoundsToNearestEvenLikeAnIndependentRounding) {
  // Every sign/exponent/top-mantissa pattern (all 2^16 bf16 values) with low
  // halves at the tie, next to it, at the ends, and random.
  std::mt19937 rng(7);
  const uint32_t lows[] = {0x0000u, 0x0001u, 0x7FFFu, 0x8000u, 0x8001u, 0xFFFFu, 0x4000u, 0xC000u};
  int64_t checked = 0;
  for (uint32_t high = 0; high < 0x10000u; ++high) {
    for (int r = 0; r < 10; ++r) {
      const uint32_t low = r < 8 ? lows[r] : (rng() & 0xFFFFu);
      const float x = float_of((high << 16) | low);
      if (std::isnan(x)) continue;
      ASSERT_EQ(float_to_bf16_bits(x), independent_bf16(x))
          << "x = " << x << " (bits 0x" << std::hex << bits_of(x) << ")";
      ++checked;
    }
  }
  EXPECT_GT(checked, 600000);
}

TEST(Bf16Conversion, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(float_to_bf16_bits(0.0f), 0x0000u);
  EXPECT_EQ(float_to_bf16_bits(-0.0f), 0x8000u);
  EXPECT_EQ(float_to_bf16_bits(inf), 0x7F80u);
  EXPECT_EQ(float_to_bf16_bits(-inf), 0xFF80u);
  EXPECT_EQ(float_to_bf16_bits(std::numeric_limits<float>::max()), 0x7F80u);  // overflows
  EXPECT_EQ(float_to_bf16_bits(1.0f + std::ldexp(1.0f, -8)), 0x3F80u);       // tie -> even (1)
  EXPECT_EQ(float_to_bf16_bits(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3F82u);   // tie -> even (up)
  // NaNs stay NaN (a signalling NaN whose payload is only in the low half
  // would become infinity by plain rounding), sign kept, quiet bit set.
  for (uint32_t nan : {0x7F800001u, 0x7FC00000u, 0xFF800001u, 0x7FFFFFFFu}) {
    const uint16_t b = float_to_bf16_bits(float_of(nan));
    EXPECT_TRUE(std::isnan(bf16_bits_to_float(b))) << std::hex << nan;
    EXPECT_EQ(b & 0x8000u, (nan >> 16) & 0x8000u);
    EXPECT_NE(b & 0x0040u, 0u);
  }
}

TEST(Bf16Conversion, ArrayFormEqualsScalarForm) {
  std::mt19937 rng(3);
  std::vector<float> in(300001), out(in.size());  // large enough to run on several threads
  for (float& v : in) v = float_of(rng());
  round_to_bf16(in.data(), out.data(), static_cast<int64_t>(in.size()));
  for (size_t i = 0; i < in.size(); ++i) {
    if (std::isnan(in[i])) {
      ASSERT_TRUE(std::isnan(out[i]));
      continue;
    }
    ASSERT_EQ(bits_of(out[i]), bits_of(round_to_bf16(in[i]))) << i;
  }
}

TEST(PrecisionTable, OneRowPerOperationClassAndOnlyMatmulsChange) {
  const PrecisionRule* t = precision_table();
  for (int i = 0; i < kPrecisionRuleCount; ++i)
    for (int j = i + 1; j < kPrecisionRuleCount; ++j) EXPECT_NE(t[i].op, t[j].op);
  EXPECT_EQ(input_math(Precision::BF16, OpClass::Matmul), MathType::BF16);
  EXPECT_EQ(input_math(Precision::TF32, OpClass::Matmul), MathType::TF32);
  for (OpClass op : {OpClass::Matmul, OpClass::Elementwise, OpClass::Normalization, OpClass::Loss,
                     OpClass::Optimizer}) {
    EXPECT_EQ(input_math(Precision::FP32, op), MathType::F32);
    if (op != OpClass::Matmul) {
      EXPECT_EQ(input_math(Precision::BF16, op), MathType::F32);
    }
  }
  EXPECT_NE(precision_table_text().find("BatchNorm"), std::string::npos);
  EXPECT_NE(precision_table_text().find("in bfloat16 on CUDA\nin bf16 mode"), std::string::npos);
}

TEST(PrecisionModes, ParseAndRefuse) {
  EXPECT_EQ(parse_precision("bf16", "x"), Precision::BF16);
  try {
    parse_precision("fp16", "config c.json: precision");
    FAIL() << "fp16 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("config c.json: precision: unknown precision 'fp16'"),
              std::string::npos)
        << e.what();
  }
  EXPECT_NO_THROW(check_precision_supported(cpu_device(), Precision::BF16));
  EXPECT_NO_THROW(check_precision_supported(reference_cpu_device(), Precision::FP32));
  EXPECT_THROW(check_precision_supported(cpu_device(), Precision::TF32), Error);
  EXPECT_THROW(check_precision_supported(reference_cpu_device(), Precision::BF16), Error);
  if (cuda_device_count() > 0) {  // the CUDA backend runs every mode of the table
    EXPECT_NO_THROW(check_precision_supported(get_device("cuda"), Precision::FP32));
    EXPECT_NO_THROW(check_precision_supported(get_device("cuda"), Precision::TF32));
    EXPECT_NO_THROW(check_precision_supported(get_device("cuda"), Precision::BF16));
  }
  {
    const PrecisionScope scope(Precision::BF16);
    EXPECT_EQ(matmul_precision(), Precision::BF16);
  }
  EXPECT_EQ(matmul_precision(), Precision::FP32);
}

// The activation storage rule (activation_dtype, one place): bf16 only on
// CUDA in bf16 mode for float32 models; float32 (the parameters' dtype)
// everywhere else. A model built in bf16 mode on the CPU keeps float32
// activations, and asking a CPU model for bf16 ones is refused at build.
TEST(Precision, ActivationDtypeRule) {
  for (Precision p : {Precision::FP32, Precision::TF32, Precision::BF16}) {
    EXPECT_EQ(activation_dtype(cpu_device(), p, DType::F32), DType::F32) << precision_name(p);
    EXPECT_EQ(activation_dtype(reference_cpu_device(), p, DType::F64), DType::F64) << precision_name(p);
  }
  if (cuda_device_count() > 0) {
    Device& gpu = get_device("cuda");
    EXPECT_EQ(activation_dtype(gpu, Precision::FP32, DType::F32), DType::F32);
    EXPECT_EQ(activation_dtype(gpu, Precision::TF32, DType::F32), DType::F32);
    EXPECT_EQ(activation_dtype(gpu, Precision::BF16, DType::F32), DType::BF16);
  }
  const Json cfg = Json::parse(R"({"layers": [{"type": "fully_connected", "n_out": 3}], "loss": "l2"})");
  const PrecisionScope scope(Precision::BF16);
  NeuralNetwork cpu_model = NeuralNetwork::from_config(cfg);
  EXPECT_THROW(cpu_model.activation_dtype(), Error);  // not built: not chosen yet
  cpu_model.build(Shape{2, 4}, cpu_device());
  EXPECT_EQ(cpu_model.activation_dtype(), DType::F32);
  EXPECT_EQ(cpu_model.forward(Tensor::zeros(Shape{2, 4}, cpu_device()), Mode::Eval).dtype(), DType::F32);
  EXPECT_THROW(cpu_model.set_activation_dtype(DType::F32), Error);  // built already
  NeuralNetwork refused = NeuralNetwork::from_config(cfg);
  refused.set_activation_dtype(DType::BF16);
  try {
    refused.build(Shape{2, 4}, cpu_device());
    FAIL() << "bf16 activations accepted on the CPU";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bfloat16 activations with float32 parameters on cpu"), std::string::npos)
        << e.what();
  }
}

// ---- the fast CPU device in bf16 ------------------------------------------------------

std::vector<double> random_values(std::mt19937_64& rng, int64_t n) {
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<double> v(static_cast<size_t>(n));
  for (double& x : v) x = u(rng);
  return v;
}

// v rounded to float, then to bf16 (what the bf16 kernels read).
std::vector<double> bf16_of(const std::vector<double>& v) {
  std::vector<double> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = round_to_bf16(static_cast<float>(v[i]));
  return r;
}
std::vector<double> abs_of(std::vector<double> v) {
  for (double& x : v) x = std::fabs(x);
  return v;
}

// The largest |got - want| / bound over the outputs, with the bound
// gamma_K * S + 2^-50 S (float64 reference) + the smallest normal float.
double worst_ratio(const std::vector<float>& got, const std::vector<double>& want,
                   const std::vector<double>& S, int64_t K) {
  const double u = std::ldexp(1.0, -24);
  const double gamma = K * u / (1 - K * u);
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double bound = gamma * S[i] + std::ldexp(S[i], -50) + std::numeric_limits<float>::min();
    worst = std::max(worst, std::fabs(got[i] - want[i]) / bound);
  }
  return worst;
}

// Runs `op` (a convolution pass or GEMM on device d with inputs a, b) on the
// fast device in bf16, and checks it against the float64 reference on the
// bf16-rounded inputs within gamma_K; also checks that fp32 mode is
// unaffected afterwards and differs from bf16 (the inputs were rounded).
template <class Op>
void check_bf16_op(const std::string& what, const std::vector<double>& a, const Shape& sa,
                   const std::vector<double>& b, const Shape& sb, const Shape& sout, int64_t K,
                   Op op) {
  auto run = [&](Device& d, DType dt, const std::vector<double>& av, const std::vector<double>& bv) {
    Tensor ta = Tensor::from_host(av, sa, d, dt), tb = Tensor::from_host(bv, sb, d, dt);
    Tensor out = Tensor::empty(sout, d, dt);
    op(d, ta, tb, out);
    return out;
  };
  Device& ref = reference_cpu_device();
  const std::vector<float> fp32_before = run(cpu_device(), DType::F32, a, b).to_host_f32();
  std::vector<float> got;
  {
    const PrecisionScope scope(Precision::BF16);
    got = run(cpu_device(), DType::F32, a, b).to_host_f32();
  }
  const std::vector<double> ar = bf16_of(a), br = bf16_of(b);
  const std::vector<double> want = run(ref, DType::F64, ar, br).to_host();
  const std::vector<double> S = run(ref, DType::F64, abs_of(ar), abs_of(br)).to_host();
  EXPECT_LE(worst_ratio(got, want, S, K), 1.0) << what << " (bf16 vs reference on rounded inputs)";
  // fp32 mode after bf16: bit-identical to before (no state carried over).
  const std::vector<float> fp32_after = run(cpu_device(), DType::F32, a, b).to_host_f32();
  EXPECT_EQ(0, std::memcmp(fp32_before.data(), fp32_after.data(), fp32_before.size() * sizeof(float)))
      << what << ": fp32 results changed after a bf16 pass";
  // bf16 really rounds: where the exact results on the unrounded and on the
  // rounded inputs differ by more than twice the bound somewhere (the
  // inputs' rounding errors, ~2^-9 each, against K 2^-24: true unless K is
  // in the thousands and the errors average out), the fp32 result must be
  // out of the bound there.
  const std::vector<double> exact = run(ref, DType::F64, a, b).to_host();
  std::vector<float> exact_f(exact.begin(), exact.end());
  if (worst_ratio(exact_f, want, S, K) > 2.0) {
    EXPECT_GT(worst_ratio(fp32_before, want, S, K), 1.0) << what << ": bf16 result equals fp32";
  }
}

class Bf16Conv : public ::testing::TestWithParam<ConvCase> {};

TEST_P(Bf16Conv, ThreePassesWithinFloat32SummationBound) {
  const ConvGeometry g = geometry_of(GetParam());
  std::mt19937_64 rng(99);
  const Shape sx{g.N, g.H, g.W, g.C}, sw{g.KH, g.KW, g.C, g.F}, sy{g.N, g.OH, g.OW, g.F};
  const auto x = random_values(rng, sx.numel()), w = random_values(rng, sw.numel()),
             dy = random_values(rng, sy.numel());
  const Tensor none;
  check_bf16_op("conv2d_forward", x, sx, w, sw, sy, int64_t{g.KH} * g.KW * g.C,
                [&](Device& d, const Tensor& a, const Tensor& b, Tensor& out) {
                  d.conv2d_forward(g, a, b, none, out);
                });
  check_bf16_op("conv2d_backward_data", dy, sy, w, sw, sx, int64_t{g.KH} * g.KW * g.F,
                [&](Device& d, const Tensor& a, const Tensor& b, Tensor& out) {
                  d.conv2d_backward_data(g, a, b, out);
                });
  check_bf16_op("conv2d_backward_filter", x, sx, dy, sy, sw, int64_t{g.N} * g.OH * g.OW,
                [&](Device& d, const Tensor& a, const Tensor& b, Tensor& out) {
                  d.conv2d_backward_filter(g, a, b, out);
                });
}

// Direct-kernel geometries (Winograd's transforms would add their own
// rounding errors): CIFAR-like 3x3 layers, a strided and a 1x1 one, odd sizes.
INSTANTIATE_TEST_SUITE_P(Geometries, Bf16Conv,
                         ::testing::Values(ConvCase{4, 32, 32, 3, 3, 3, 32, 1, 1, 1, 1},
                                           ConvCase{2, 16, 16, 16, 3, 3, 24, 1, 1, 1, 1},
                                           ConvCase{3, 9, 7, 5, 3, 3, 6, 2, 2, 1, 1},
                                           ConvCase{2, 8, 8, 32, 1, 1, 16, 1, 1, 0, 0}));

TEST(Bf16Gemm, AllTransposesWithinFloat32SummationBound) {
  std::mt19937_64 rng(5);
  const int64_t M = 37, N = 29, K = 301;
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      const Shape sa = ta ? Shape{K, M} : Shape{M, K}, sb = tb ? Shape{N, K} : Shape{K, N};
      check_bf16_op(std::string("gemm ") + (ta ? "A^T " : "A ") + (tb ? "B^T" : "B"),
                    random_values(rng, M * K), sa, random_values(rng, K * N), sb, Shape{M, N}, K,
                    [&](Device& d, const Tensor& a, const Tensor& b, Tensor& out) {
                      d.gemm(ta, tb, 1.0, a, b, 0.0, out);
                    });
    }
  }
}

TEST(Bf16Gemm, Float64IsNeverRounded) {
  // Gradient checks run in float64 and must stay exact whatever the mode.
  Device& d = cpu_device();
  const std::vector<double> a{1.0 + 1e-9, 2.0}, b{3.0, 1.0 / 3.0};
  Tensor ta = Tensor::from_host(a, Shape{1, 2}, d, DType::F64),
         tb = Tensor::from_host(b, Shape{2, 1}, d, DType::F64);
  Tensor c32 = Tensor::empty(Shape{1, 1}, d, DType::F64), c16 = Tensor::empty(Shape{1, 1}, d, DType::F64);
  d.gemm(false, false, 1.0, ta, tb, 0.0, c32);
  {
    const PrecisionScope scope(Precision::BF16);
    d.gemm(false, false, 1.0, ta, tb, 0.0, c16);
  }
  EXPECT_EQ(c32.to_host()[0], c16.to_host()[0]);
}

}  // namespace
}  // namespace janus
