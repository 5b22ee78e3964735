// TF32 rounding of a float, as cvt.rna.tf32.f32 (PTX ISA, "cvt": .rna is
// round to nearest, ties away from zero): the 13 low mantissa bits are
// rounded away, leaving float's sign and exponent and 10 stored mantissa
// bits (unit roundoff 2^-11). A carry out of the mantissa goes into the
// exponent (the next binade; past the largest finite value, infinity);
// infinities stay, a NaN is returned unchanged. The result is a float whose
// low 13 bits are zero, which a TF32 tensor-core product reads exactly.
//
// Host and device code both call it: the simulator's cuBLAS emulation of
// CUBLAS_TF32_TENSOR_OP_MATH (src/cuda/sim/cublas.cpp), the rounding kernel
// before Janus's own convolution kernels (precision_kernels.cu), the tests.
#pragma once

#include <cstdint>
#include <cstring>

#include "janus/host_device.hpp"

namespace janus::cuda {

JANUS_HOST_DEVICE inline float round_to_tf32(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return x;  // NaN
  // Adding half of the dropped unit (0x1000) and truncating rounds halves
  // away from zero on the magnitude (the sign bit is not touched: the carry
  // stops at the exponent, which is below 0xFF for finite x).
  u = (u + 0x1000u) & 0xFFFFE000u;
  float r;
  std::memcpy(&r, &u, sizeof r);
  return r;
}

}  // namespace janus::cuda
