// The conversion kernels of the reduced-precision modes (include/janus/
// precision.hpp): they prepare the two inputs of a GEMM or convolution pass
// for "tf32 x tf32" or "bf16 x bf16" math. Each reads n float32 values and
// writes n outputs on `stream` (no synchronisation); `out` may equal `in`
// for the float-to-float forms, which is never done by the device (the
// inputs are the caller's tensors).
#pragma once

#include "cuda/cuda_compat.hpp"

#include <cuda_bf16.h>

#include <cstdint>

namespace janus::cuda_kernels {

// out[i] = __float2bfloat16_rn(in[i]) (round to nearest even): the bf16
// operands of cublasGemmEx, and Device::convert to bfloat16.
void float_to_bf16(const float* in, __nv_bfloat16* out, int64_t n, cudaStream_t s);
// out[i] = __bfloat162float(in[i]) (exact): Device::convert to float32.
void bf16_to_float(const __nv_bfloat16* in, float* out, int64_t n, cudaStream_t s);
// out[i] = in[i] rounded to bf16 and back (exact): float32 copies holding
// bf16 values, for kernels that read float32 (cuDNN, the implicit GEMM);
// their products are then the bf16 x bf16 products, exact in float32.
void round_to_bf16(const float* in, float* out, int64_t n, cudaStream_t s);
// out[i] = in[i] rounded to TF32 as cvt.rna.tf32.f32 does (tf32_rounding.hpp).
void round_to_tf32(const float* in, float* out, int64_t n, cudaStream_t s);

}  // namespace janus::cuda_kernels
