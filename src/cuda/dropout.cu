// Inverted dropout with counter-based random numbers: element i of the mask
// depends only on (seed, i) through janus::counter_uniform, so the CUDA mask
// equals the CPU's bit for bit, whatever the launch configuration.
#include "cuda/cuda_compat.hpp"

#include "cuda/cuda_check.hpp"
#include "cuda/kernel_common.cuh"
#include "cuda/kernels.hpp"
#include "janus/counter_rng.hpp"

namespace janus::cuda_kernels {

namespace {

__global__ void dropout_kernel(const float* x, double p, float scale, uint64_t seed, float* mask, float* y,
                               int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const double u = counter_uniform(seed, static_cast<uint64_t>(i));
    const float m = u >= p ? scale : 0.0f;
    mask[i] = m;
    y[i] = x[i] * m;
  }
}

}  // namespace

void dropout_forward(const float* x, double p, float scale, uint64_t seed, float* mask, float* y, int64_t n,
                     cudaStream_t s) {
  if (n <= 0) return;
  JANUS_LAUNCH(dropout_kernel, blocks_for(n), kThreads, 0, s, x, p, scale, seed, mask, y, n);
  JANUS_CUDA_CHECK_LAUNCH("dropout_kernel");
}

}  // namespace janus::cuda_kernels
