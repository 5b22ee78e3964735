// The simulator's __nv_bfloat16 and __half (src/cuda/sim/reduced_float.hpp):
// conversions bit-exact against independent ones (an arithmetic rounding in
// double, the CPU's F16C half conversions, and PyTorch's, from
// tests/golden/data/sim_floats.txt), exhaustively over all 2^16 patterns for
// the conversion to float; arithmetic rounded once like the GPU's.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <gtest/gtest.h>
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>

namespace {

// Bit casts (memcpy), from the simulator's header.
uint32_t bits_of(float x) { return janus::sim::detail::float_bits(x); }
float float_of(uint32_t u) { return janus::sim::detail::float_from_bits(u); }

// A binary floating-point format: `digits` significand bits (the leading one
// included), smallest normal 2^min_exponent, largest finite just below
// 2^(max_exponent + 1).
struct Format {
  int digits, min_exponent, max_exponent;
};
constexpr Format kBf16{8, -126, 127};
constexpr Format kHalf{11, -14, 15};

// Independent rounding: v (any double) to the nearest number of `f`, ties to
// even, by scaling to an integer count of the format's quantum at v's
// exponent and std::nearbyint (the default mode rounds to nearest even; the
// scaling by a power of two is exact). Below the smallest normal the quantum
// stays that of the subnormals; overflow is decided on the unbounded-exponent
// result, as IEEE 754 does.
double round_to_format(double v, Format f) {
  if (std::isnan(v) || std::isinf(v) || v == 0.0) return v;
  int e;
  std::frexp(v, &e);  // |v| in [2^(e-1), 2^e)
  const int lead = std::max(e - 1, f.min_exponent);
  const double quantum = std::ldexp(1.0, lead - f.digits + 1);
  const double q = std::nearbyint(v / quantum) * quantum;
  if (std::fabs(q) >= std::ldexp(1.0, f.max_exponent + 1)) return std::copysign(HUGE_VAL, v);
  return q == 0.0 ? std::copysign(0.0, v) : q;
}

// Independent decoding of a 16-bit pattern of a format with `exponent_bits`
// exponent bits (bias 2^(exponent_bits-1) - 1), from its fields.
double decode16(uint16_t h, int exponent_bits) {
  const int mantissa_bits = 15 - exponent_bits;
  const int bias = (1 << (exponent_bits - 1)) - 1;
  const int exponent = (h >> mantissa_bits) & ((1 << exponent_bits) - 1);
  const int mantissa = h & ((1 << mantissa_bits) - 1);
  const double sign = (h & 0x8000u) ? -1.0 : 1.0;
  if (exponent == (1 << exponent_bits) - 1)
    return mantissa ? std::numeric_limits<double>::quiet_NaN() : sign * HUGE_VAL;
  if (exponent == 0) return sign * std::ldexp(mantissa, 1 - bias - mantissa_bits);
  return sign * std::ldexp(mantissa + (1 << mantissa_bits), exponent - bias - mantissa_bits);
}

bool same_value(double a, double b) {
  return (std::isnan(a) && std::isnan(b)) || (a == b && std::signbit(a) == std::signbit(b));
}

bool cpu_has_f16c() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("f16c");
}
__attribute__((target("f16c"))) uint16_t f16c_from_float(float x) {
  return static_cast<uint16_t>(_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT));
}
__attribute__((target("f16c"))) float f16c_to_float(uint16_t h) { return _cvtsh_ss(h); }

// float inputs: every sign/exponent/top-7-mantissa pattern (all 2^16 bf16
// values) with low halves at the bf16 tie, next to it, at the ends and
// random; and a stride through all 2^32 patterns.
template <class Check>
void for_sample_floats(Check check) {
  std::mt19937 rng(14);
  const uint32_t lows[] = {0x0000u, 0x0001u, 0x7FFFu, 0x8000u, 0x8001u, 0xFFFFu, 0x0FFFu, 0x1000u, 0x1001u};
  for (uint32_t high = 0; high < 0x10000u; ++high)
    for (int r = 0; r < 11; ++r) check(float_of((high << 16) | (r < 9 ? lows[r] : (rng() & 0xFFFFu))));
  for (uint64_t u = 0; u < (uint64_t{1} << 32); u += 257) check(float_of(static_cast<uint32_t>(u)));
}

// ---- to float: all 2^16 patterns ----------------------------------------------------

TEST(SimBf16, ToFloatIsExactForAllPatterns) {
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    const float f = __bfloat162float(__ushort_as_bfloat16(static_cast<uint16_t>(h)));
    ASSERT_TRUE(same_value(f, decode16(static_cast<uint16_t>(h), 8))) << std::hex << h;
    ASSERT_EQ(bits_of(f), h << 16) << std::hex << h;  // NaN payloads too: the GPU shifts
  }
}

TEST(SimHalf, ToFloatIsExactForAllPatterns) {
  const bool f16c = cpu_has_f16c();
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    const float f = __half2float(__ushort_as_half(static_cast<uint16_t>(h)));
    ASSERT_TRUE(same_value(f, decode16(static_cast<uint16_t>(h), 5))) << std::hex << h;
    if (std::isnan(f)) {
      ASSERT_EQ(bits_of(f), 0x7FFFFFFFu) << std::hex << h;  // canonical
    }
    if (f16c) {
      ASSERT_TRUE(same_value(f, f16c_to_float(static_cast<uint16_t>(h)))) << std::hex << h;
    }
  }
  if (!f16c) GTEST_SKIP() << "checked against the field decoding only: this CPU has no F16C";
}

// ---- from float ------------------------------------------------------------------------

TEST(SimBf16, FromFloatRoundsToNearestEvenLikeAnIndependentRounding) {
  int64_t checked = 0;
  for_sample_floats([&](float x) {
    const uint16_t b = __bfloat16_as_ushort(__float2bfloat16(x));
    if (std::isnan(x)) {
      ASSERT_EQ(b, 0x7FFFu) << std::hex << bits_of(x);
    } else {
      ASSERT_TRUE(same_value(decode16(b, 8), round_to_format(x, kBf16)))
          << "x = " << x << " (bits 0x" << std::hex << bits_of(x) << ") -> 0x" << b;
    }
    ASSERT_EQ(__bfloat16_as_ushort(__float2bfloat16_rn(x)), b);
    ++checked;
  });
  EXPECT_GT(checked, 17000000);
}

TEST(SimHalf, FromFloatRoundsToNearestEvenLikeAnIndependentRounding) {
  const bool f16c = cpu_has_f16c();
  int64_t checked = 0;
  for_sample_floats([&](float x) {
    const uint16_t h = __half_as_ushort(__float2half_rn(x));
    if (std::isnan(x)) {
      ASSERT_EQ(h, 0x7FFFu) << std::hex << bits_of(x);
    } else {
      ASSERT_TRUE(same_value(decode16(h, 5), round_to_format(x, kHalf)))
          << "x = " << x << " (bits 0x" << std::hex << bits_of(x) << ") -> 0x" << h;
      if (f16c) {
        ASSERT_EQ(h, f16c_from_float(x)) << "x = " << x << " (bits 0x" << std::hex << bits_of(x) << ")";
      }
    }
    ASSERT_EQ(__half_as_ushort(__float2half(x)), h);
    ++checked;
  });
  EXPECT_GT(checked, 17000000);
  if (!f16c) GTEST_SKIP() << "checked against the arithmetic rounding only: this CPU has no F16C";
}

TEST(SimReducedFloats, BoundaryCases) {
  const float inf = std::numeric_limits<float>::infinity();
  // bf16: ties to even, overflow, subnormals kept.
  EXPECT_EQ(__bfloat16_as_ushort(__float2bfloat16(1.0f + std::ldexp(1.0f, -8))), 0x3F80u);
  EXPECT_EQ(__bfloat16_as_ushort(__float2bfloat16(1.0f + 3 * std::ldexp(1.0f, -8))), 0x3F82u);
  EXPECT_EQ(__bfloat16_as_ushort(__float2bfloat16(std::numeric_limits<float>::max())), 0x7F80u);
  EXPECT_EQ(__bfloat16_as_ushort(__float2bfloat16(-inf)), 0xFF80u);
  EXPECT_EQ(__bfloat16_as_ushort(__float2bfloat16(float_of(0x00018000u))), 0x0002u);  // subnormal tie -> even
  EXPECT_EQ(__bfloat16_as_ushort(__float2bfloat16(float_of(0x80008000u))), 0x8000u);  // -> -0
  EXPECT_EQ(__bfloat16_as_ushort(__float2bfloat16(float_of(0xFFC00001u))), 0x7FFFu);  // NaN: canonical
  // half: 65504 is the largest finite, 65520 the tie that rounds to infinity.
  EXPECT_EQ(__half_as_ushort(__float2half_rn(65504.0f)), 0x7BFFu);
  EXPECT_EQ(__half_as_ushort(__float2half_rn(65519.996f)), 0x7BFFu);
  EXPECT_EQ(__half_as_ushort(__float2half_rn(65520.0f)), 0x7C00u);
  EXPECT_EQ(__half_as_ushort(__float2half_rn(-1e30f)), 0xFC00u);
  EXPECT_EQ(__half_as_ushort(__float2half_rn(std::ldexp(1.0f, -24))), 0x0001u);  // smallest subnormal
  EXPECT_EQ(__half_as_ushort(__float2half_rn(std::ldexp(1.0f, -25))), 0x0000u);  // tie -> even zero
  EXPECT_EQ(__half_as_ushort(__float2half_rn(std::ldexp(1.5f, -24))), 0x0002u);  // tie -> even 2
  EXPECT_EQ(__half_as_ushort(__float2half_rn(-std::ldexp(1.0f, -14))), 0x8400u);  // smallest normal
  EXPECT_EQ(__half_as_ushort(__float2half_rn(float_of(0x387FF000u))), 0x0400u);  // rounds up into the normals
  EXPECT_EQ(__half_as_ushort(__float2half_rn(float_of(0x00000001u))), 0x0000u);  // float subnormal -> 0
  EXPECT_EQ(__half_as_ushort(__float2half_rn(float_of(0x7F800001u))), 0x7FFFu);  // NaN: canonical
  EXPECT_EQ(__half_as_ushort(__float2half_rn(1.0f + std::ldexp(1.0f, -11))), 0x3C00u);
  EXPECT_EQ(__half_as_ushort(__float2half_rn(1.0f + 3 * std::ldexp(1.0f, -11))), 0x3C02u);
}

// ---- against PyTorch -----------------------------------------------------------------

uint64_t fnv1a64(uint64_t h, uint32_t word) {
  for (int k = 0; k < 4; ++k) {
    h ^= (word >> (8 * k)) & 0xFFu;
    h *= 0x100000001B3ull;
  }
  return h;
}

TEST(SimReducedFloats, MatchPyTorchConversions) {
  const std::string path = std::string(JANUS_GOLDEN_DIR) + "/sim_floats.txt";
  std::ifstream in(path);
  ASSERT_TRUE(in) << "cannot open " << path << " (tests/golden/generate_sim_floats.py writes it)";
  uint64_t expected_bf16_hash = 0, expected_half_hash = 0;
  int conversions = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    if (line.rfind("to_float ", 0) == 0) {
      std::string word, type;
      uint64_t hash;
      fields >> word >> type >> std::hex >> hash;
      (type == "bf16" ? expected_bf16_hash : expected_half_hash) = hash;
      continue;
    }
    uint32_t x;
    unsigned bf16, half;
    ASSERT_TRUE(fields >> std::hex >> x >> bf16 >> half) << path << ": bad line '" << line << "'";
    const float f = float_of(x);
    const uint16_t b = __bfloat16_as_ushort(__float2bfloat16(f));
    const uint16_t h = __half_as_ushort(__float2half_rn(f));
    if (std::isnan(f)) {  // PyTorch keeps a NaN's sign (and bf16 payload); the GPU gives 0x7FFF
      EXPECT_TRUE(std::isnan(__bfloat162float(__ushort_as_bfloat16(static_cast<uint16_t>(bf16)))));
      EXPECT_TRUE(std::isnan(__half2float(__ushort_as_half(static_cast<uint16_t>(half)))));
      EXPECT_EQ(b, 0x7FFFu);
      EXPECT_EQ(h, 0x7FFFu);
    } else {
      EXPECT_EQ(b, bf16) << "bf16 of 0x" << std::hex << x;
      EXPECT_EQ(h, half) << "half of 0x" << std::hex << x;
    }
    ++conversions;
  }
  EXPECT_GT(conversions, 5000);
  uint64_t bf16_hash = 0xCBF29CE484222325ull, half_hash = 0xCBF29CE484222325ull;
  for (uint32_t p = 0; p < 0x10000u; ++p) {
    const float b = __bfloat162float(__ushort_as_bfloat16(static_cast<uint16_t>(p)));
    const float h = __half2float(__ushort_as_half(static_cast<uint16_t>(p)));
    bf16_hash = fnv1a64(bf16_hash, std::isnan(b) ? 0x7FFFFFFFu : bits_of(b));
    half_hash = fnv1a64(half_hash, std::isnan(h) ? 0x7FFFFFFFu : bits_of(h));
  }
  EXPECT_EQ(bf16_hash, expected_bf16_hash) << "bf16 -> float differs from PyTorch on some pattern";
  EXPECT_EQ(half_hash, expected_half_hash) << "half -> float differs from PyTorch on some pattern";
}

// ---- arithmetic --------------------------------------------------------------------------

// a op b for random operands equals the exact result (double: exact for +, -
// and * of these narrow numbers, and for / rounded with 53 >= 2p + 2 bits)
// rounded once to the format, as the GPU's add/sub/mul.bf16 and .f16 do.
template <class T>
void check_arithmetic(Format format, int exponent_bits) {
  std::mt19937 rng(format.digits);
  for (int i = 0; i < 200000; ++i) {
    // Patterns of moderate exponent (so that the sums and quotients cover
    // both cancellation and rounding, with some overflow and underflow).
    const uint16_t pa = static_cast<uint16_t>(rng()), pb = static_cast<uint16_t>(rng());
    T a, b;
    std::memcpy(&a, &pa, 2);
    std::memcpy(&b, &pb, 2);
    const double x = decode16(pa, exponent_bits), y = decode16(pb, exponent_bits);
    if (std::isnan(x) || std::isnan(y)) continue;
    const struct {
      const char* op;
      T got;
      double exact;
    } cases[] = {{"+", a + b, x + y}, {"-", a - b, x - y}, {"*", a * b, x * y}, {"/", a / b, x / y}};
    for (const auto& c : cases) {
      uint16_t got;
      std::memcpy(&got, &c.got, 2);
      const double want = round_to_format(c.exact, format);
      if (std::isnan(c.exact)) {
        ASSERT_TRUE(std::isnan(decode16(got, exponent_bits))) << x << c.op << y;
        continue;
      }
      // +0 vs -0 of an exact zero sum follows float's rules (x - x = +0).
      ASSERT_TRUE(decode16(got, exponent_bits) == want) << x << " " << c.op << " " << y << " = " << c.exact;
    }
  }
}

TEST(SimBf16, ArithmeticRoundsOnce) { check_arithmetic<__nv_bfloat16>(kBf16, 8); }
TEST(SimHalf, ArithmeticRoundsOnce) { check_arithmetic<__half>(kHalf, 5); }

TEST(SimReducedFloats, CompoundAndComparisonOperators) {
  __nv_bfloat16 a = __float2bfloat16(1.0f);
  a += __float2bfloat16(std::ldexp(1.0f, -9));  // below half an ulp: stays 1
  EXPECT_EQ(__bfloat162float(a), 1.0f);
  a *= __float2bfloat16(3.0f);
  EXPECT_EQ(__bfloat162float(a), 3.0f);
  EXPECT_FALSE(__float2bfloat16(2.0f) > a);
  EXPECT_TRUE(__float2half(2.0f) < __float2half(3.0f));
  EXPECT_FALSE(__ushort_as_half(0x7FFFu) == __ushort_as_half(0x7FFFu));  // NaN unordered
  EXPECT_TRUE(__hisnan(__ushort_as_bfloat16(0x7FFFu)));
  EXPECT_EQ(__half_as_ushort(-__float2half(0.0f)), 0x8000u);
  EXPECT_EQ(__half2float(__hmul(__float2half(3.0f), __float2half(0.5f))), 1.5f);
  __half h = 2.5f;  // implicit from float, as in CUDA
  const float back = h;
  EXPECT_EQ(back, 2.5f);
}

}  // namespace
