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

__global__ void dropout_kernel(const float* x, double p, float scale, StepValue<uint64_t> step_seed, float* mask,
                               float* y, int64_t n) {
  const uint64_t seed = step_value(step_seed);
  JANUS_KERNEL_LOOP(i, n) {
    const double u = counter_uniform(seed, static_cast<uint64_t>(i));
    const float m = u >= p ? scale : 0.0f;
    mask[i] = m;
    y[i] = x[i] * m;
  }
}

}  // namespace

void dropout_forward(const float* x, double p, float scale, StepValue<uint64_t> seed, float* mask, float* y,
                     int64_t n, cudaStream_t s) {
  JANUS_LAUNCH_1D(dropout_kernel, n, s, x, p, scale, seed, mask, y, n);
}

}  // namespace janus::cuda_kernels
