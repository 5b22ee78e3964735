// Janus CUDA simulator: the part of the toolkit's <cuda_fp16.h> that Janus
// kernels use. The SIM build puts src/cuda/sim/headers on the include path
// (after the refused/ stubs), so kernel sources include it exactly as under
// nvcc. Semantics: src/cuda/sim/reduced_float.hpp.
#pragma once

#include "cuda/sim/reduced_float.hpp"

using __half = janus::sim::detail::ReducedFloat<janus::sim::detail::HalfFormat>;
struct __half_raw {
  unsigned short x;
};

// Round to nearest even (cvt.rn.f16.f32), subnormals kept, overflow to
// infinity; NaN -> 0x7FFF.
inline __half __float2half(float a) { return __half(a); }
inline __half __float2half_rn(float a) { return __half(a); }
// Exact; NaN -> 0x7FFFFFFF.
inline float __half2float(__half a) { return static_cast<float>(a); }
inline unsigned short __half_as_ushort(__half a) { return a.bits; }
inline __half __ushort_as_half(unsigned short b) { return __half::from_bits(b); }
