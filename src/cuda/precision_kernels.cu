// Conversion kernels of the reduced-precision modes (precision_kernels.hpp).
#include "cuda/cuda_compat.hpp"

#include "cuda/precision_kernels.hpp"

#include "cuda/kernel_common.cuh"
#include "cuda/tf32_rounding.hpp"

namespace janus::cuda_kernels {

namespace {

// One element-wise conversion kernel for every rounding: Round is a functor
// from the input type to the output type.
template <class In, class Out, class Round>
__global__ void convert_kernel(const In* __restrict__ in, Out* __restrict__ out, int64_t n, Round round) {
  JANUS_KERNEL_LOOP(i, n) { out[i] = round(in[i]); }
}

struct ToBf16 {
  __device__ __nv_bfloat16 operator()(float x) const { return __float2bfloat16_rn(x); }
};
struct FromBf16 {
  __device__ float operator()(__nv_bfloat16 x) const { return __bfloat162float(x); }
};
struct ThroughBf16 {
  __device__ float operator()(float x) const { return __bfloat162float(__float2bfloat16(x)); }
};
struct ThroughTf32 {
  __device__ float operator()(float x) const { return ::janus::cuda::round_to_tf32(x); }
};

}  // namespace

void float_to_bf16(const float* in, __nv_bfloat16* out, int64_t n, cudaStream_t s) {
  JANUS_LAUNCH_1D((convert_kernel<float, __nv_bfloat16, ToBf16>), n, s, in, out, n, ToBf16{});
}

void bf16_to_float(const __nv_bfloat16* in, float* out, int64_t n, cudaStream_t s) {
  JANUS_LAUNCH_1D((convert_kernel<__nv_bfloat16, float, FromBf16>), n, s, in, out, n, FromBf16{});
}

void round_to_bf16(const float* in, float* out, int64_t n, cudaStream_t s) {
  JANUS_LAUNCH_1D((convert_kernel<float, float, ThroughBf16>), n, s, in, out, n, ThroughBf16{});
}

void round_to_tf32(const float* in, float* out, int64_t n, cudaStream_t s) {
  JANUS_LAUNCH_1D((convert_kernel<float, float, ThroughTf32>), n, s, in, out, n, ThroughTf32{});
}

}  // namespace janus::cuda_kernels
