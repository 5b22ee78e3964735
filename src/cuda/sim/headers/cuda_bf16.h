// Janus CUDA simulator: the part of the toolkit's <cuda_bf16.h> that Janus
// kernels use. The SIM build puts src/cuda/sim/headers on the include path
// (after the refused/ stubs), so kernel sources include it exactly as under
// nvcc. Semantics: src/cuda/sim/reduced_float.hpp.
#pragma once

#include "cuda/sim/reduced_float.hpp"

using __nv_bfloat16 = janus::sim::detail::ReducedFloat<janus::sim::detail::Bf16Format>;
struct __nv_bfloat16_raw {
  unsigned short x;
};

// Round to nearest even (cvt.rn.bf16.f32); NaN -> 0x7FFF.
inline __nv_bfloat16 __float2bfloat16(float a) { return __nv_bfloat16(a); }
inline __nv_bfloat16 __float2bfloat16_rn(float a) { return __nv_bfloat16(a); }
// Exact.
inline float __bfloat162float(__nv_bfloat16 a) { return static_cast<float>(a); }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 a) { return a.bits; }
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short b) { return __nv_bfloat16::from_bits(b); }
