// An independent reference for rounding float32 to TF32 (1 sign, 8 exponent,
// 10 stored mantissa bits) as NVIDIA's cvt.rna.tf32.f32 does: to nearest,
// ties away from zero. Computed in double arithmetic from the value (quantum
// of the binade, floor, compare the remainder with one half), not from the bit
// pattern, so that it checks the bit-level implementations of the simulator
// (src/cuda/sim/wmma.hpp) independently.
#pragma once

#include <cmath>
#include <limits>

namespace janus::test {

inline float tf32_reference(float x) {
  if (std::isnan(x)) return x;
  if (std::isinf(x) || x == 0.0f) return x;
  const double a = std::fabs(static_cast<double>(x));
  int e = 0;
  std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1): 11 significant bits keep a quantum of 2^(e-11)
  // Below float's normal range TF32 is subnormal too, with float's exponent floor (2^-126 * 2^-10).
  const double quantum = std::ldexp(1.0, std::max(e - 11, -136));
  const double units = a / quantum;  // exact: a power-of-two scaling
  const double whole = std::floor(units);
  const double rounded = (units - whole >= 0.5 ? whole + 1.0 : whole) * quantum;
  const double largest = std::ldexp(2.0 - std::ldexp(1.0, -10), 127);
  const double mag = rounded > largest ? std::numeric_limits<double>::infinity() : rounded;
  return static_cast<float>(x < 0 ? -mag : mag);
}

}  // namespace janus::test
