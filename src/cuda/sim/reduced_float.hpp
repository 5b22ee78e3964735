// Janus CUDA simulator: the 16-bit floating-point types of cuda_bf16.h
// (__nv_bfloat16) and cuda_fp16.h (__half), with the GPU's conversions.
//
// Both are a 16-bit pattern; arithmetic converts to float, computes there and
// rounds back once. That is exactly the GPU's single rounding of add.bf16 /
// add.f16 and friends: float's 24-bit significand is at least 2p + 2 bits for
// bf16 (p = 8) and half (p = 11), so rounding the float result again to the
// narrow format never differs from rounding the exact result directly
// (Figueroa, "When is double rounding innocuous?", SIGNUM 1995) for +, -, *
// and /. Fused forms (__hfma) are not offered: there double rounding could
// differ from the hardware.
//
// Conversions (the semantics of cvt.rn.bf16.f32 / cvt.rn.f16.f32 and of the
// toolkit's host implementations of __float2bfloat16 / __float2half_rn):
//   * float -> bf16 / half: round to nearest, ties to even, subnormal results
//     kept (no flush to zero); values past the largest finite number round
//     to infinity as IEEE round-to-nearest does; every NaN becomes the
//     canonical NaN 0x7FFF (CUDART_NAN_BF16 / CUDART_NAN_FP16), sign dropped.
//   * bf16 -> float: exact, the pattern shifted into the top half (a NaN keeps
//     its payload, as the GPU's mov does).
//   * half -> float: exact (half subnormals are float normals); a NaN becomes
//     float's canonical NaN 0x7FFFFFFF, as the toolkit's host conversion does.
// As in CUDA, the types convert implicitly from and to float; mixing them
// with float in one expression is ambiguous (use an explicit conversion), and
// construction from double is refused here (CUDA would round once from the
// double, a float detour could round twice).
#pragma once

#include <cstdint>
#include <cstring>

namespace janus::sim::detail {

inline uint32_t float_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
inline float float_from_bits(uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

// Round-to-nearest-even removal of the low `dropped` bits of a non-negative
// integer m (1 <= dropped <= 31): the quotient, rounded.
inline uint32_t round_shift_even(uint32_t m, int dropped) {
  const uint32_t kept = m >> dropped;
  const uint32_t rest = m & ((1u << dropped) - 1u);
  const uint32_t half = 1u << (dropped - 1);
  return kept + ((rest > half || (rest == half && (kept & 1u))) ? 1u : 0u);
}

constexpr uint16_t kCanonicalNan16 = 0x7FFFu;

// bfloat16: sign, 8 exponent bits (float's), 7 stored mantissa bits.
struct Bf16Format {
  static uint16_t from_float(float x) {
    const uint32_t u = float_bits(x);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return kCanonicalNan16;
    // Same exponent field as float: rounding away the low 16 bits of the
    // pattern rounds the value (a carry into the exponent is the next binade,
    // out of the largest finite value it is infinity).
    return static_cast<uint16_t>(round_shift_even(u & 0x7FFFFFFFu, 16) | ((u >> 16) & 0x8000u));
  }
  static float to_float(uint16_t h) { return float_from_bits(static_cast<uint32_t>(h) << 16); }
};

// IEEE binary16: sign, 5 exponent bits (bias 15), 10 stored mantissa bits.
struct HalfFormat {
  static uint16_t from_float(float x) {
    const uint32_t u = float_bits(x);
    const uint32_t sign = (u >> 16) & 0x8000u;
    const uint32_t a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return kCanonicalNan16;
    // 65520 = 65504 + half an ulp: the tie above the largest finite half
    // goes to the even neighbour, which is infinity.
    if (a >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);
    if (a >= 0x38800000u)  // |x| >= 2^-14: a normal half; rebias 127 -> 15
      return static_cast<uint16_t>(sign | round_shift_even(a - (112u << 23), 13));
    // Below 2^-14: a multiple of 2^-24 (half's subnormal step), or zero.
    // |x| = m * 2^(e - 150) with m the 24-bit significand, so |x| / 2^-24 is
    // m shifted right by 126 - e. At most 2^-25 (a tie to the even zero) is 0.
    if (a <= 0x33000000u) return static_cast<uint16_t>(sign);
    const int e = static_cast<int>(a >> 23);
    const uint32_t m = (a & 0x7FFFFFu) | 0x800000u;
    return static_cast<uint16_t>(sign | round_shift_even(m, 126 - e));  // 0x400: rounded up to 2^-14
  }
  static float to_float(uint16_t h) {
    const uint32_t sign = (static_cast<uint32_t>(h) & 0x8000u) << 16;
    const uint32_t exponent = (h >> 10) & 0x1Fu;
    const uint32_t mantissa = h & 0x3FFu;
    if (exponent == 0x1Fu)
      return float_from_bits(mantissa != 0 ? 0x7FFFFFFFu : (sign | 0x7F800000u));
    if (exponent != 0) return float_from_bits(sign | ((exponent + 112u) << 23) | (mantissa << 13));
    // Zero or subnormal: mantissa * 2^-24, exact in float.
    const float magnitude = static_cast<float>(mantissa) * float_from_bits(0x33800000u);  // 2^-24
    return float_from_bits(sign | float_bits(magnitude));
  }
};

// The storage and arithmetic shared by both types; Format says how the 16
// bits map to a float.
template <class Format>
struct ReducedFloat {
  uint16_t bits;  // the raw pattern (CUDA keeps it private as __x)

  ReducedFloat() = default;  // uninitialised, as in CUDA
  ReducedFloat(float f) : bits(Format::from_float(f)) {}  // NOLINT: implicit, as in CUDA
  ReducedFloat(double) = delete;
  operator float() const { return Format::to_float(bits); }  // NOLINT: implicit, as in CUDA

  static ReducedFloat from_bits(uint16_t b) {
    ReducedFloat r;
    r.bits = b;
    return r;
  }

  // Arithmetic: the float result rounded once (see the file comment).
  friend ReducedFloat operator+(ReducedFloat a, ReducedFloat b) { return float(a) + float(b); }
  friend ReducedFloat operator-(ReducedFloat a, ReducedFloat b) { return float(a) - float(b); }
  friend ReducedFloat operator*(ReducedFloat a, ReducedFloat b) { return float(a) * float(b); }
  friend ReducedFloat operator/(ReducedFloat a, ReducedFloat b) { return float(a) / float(b); }
  friend ReducedFloat operator-(ReducedFloat a) { return from_bits(static_cast<uint16_t>(a.bits ^ 0x8000u)); }
  friend ReducedFloat operator+(ReducedFloat a) { return a; }
  ReducedFloat& operator+=(ReducedFloat b) { return *this = *this + b; }
  ReducedFloat& operator-=(ReducedFloat b) { return *this = *this - b; }
  ReducedFloat& operator*=(ReducedFloat b) { return *this = *this * b; }
  ReducedFloat& operator/=(ReducedFloat b) { return *this = *this / b; }
  // Comparisons as on the floats they stand for (NaN unordered).
  friend bool operator==(ReducedFloat a, ReducedFloat b) { return float(a) == float(b); }
  friend bool operator!=(ReducedFloat a, ReducedFloat b) { return float(a) != float(b); }
  friend bool operator<(ReducedFloat a, ReducedFloat b) { return float(a) < float(b); }
  friend bool operator>(ReducedFloat a, ReducedFloat b) { return float(a) > float(b); }
  friend bool operator<=(ReducedFloat a, ReducedFloat b) { return float(a) <= float(b); }
  friend bool operator>=(ReducedFloat a, ReducedFloat b) { return float(a) >= float(b); }

  // The intrinsics cuda_bf16.h and cuda_fp16.h overload for both types.
  friend ReducedFloat __hadd(ReducedFloat a, ReducedFloat b) { return a + b; }
  friend ReducedFloat __hsub(ReducedFloat a, ReducedFloat b) { return a - b; }
  friend ReducedFloat __hmul(ReducedFloat a, ReducedFloat b) { return a * b; }
  friend ReducedFloat __hdiv(ReducedFloat a, ReducedFloat b) { return a / b; }
  friend ReducedFloat __hneg(ReducedFloat a) { return -a; }
  friend bool __hisnan(ReducedFloat a) { return float(a) != float(a); }
};

}  // namespace janus::sim::detail
