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

template <class T>
__global__ void dropout_kernel(const T* x, double p, float scale, StepValue<uint64_t> step_seed, T* mask, T* y,
                               int64_t n) {
  const uint64_t seed = step_value(step_seed);
  JANUS_KERNEL_LOOP(i, n) {
    const double u = counter_uniform(seed, static_cast<uint64_t>(i));
    const float m = u >= p ? scale : 0.0f;
    mask[i] = to_storage<T>(m);
    y[i] = to_storage<T>(to_float(x[i]) * m);  // the float scale: one rounding, as the float kernel's y
  }
}

}  // namespace

template <class T>
void dropout_forward(const T* x, double p, float scale, StepValue<uint64_t> seed, T* mask, T* y, int64_t n,
                     cudaStream_t s) {
  JANUS_LAUNCH_1D(dropout_kernel<T>, n, s, x, p, scale, seed, mask, y, n);
}

#define JANUS_INSTANTIATE(T) \
  template void dropout_forward<T>(const T*, double, float, StepValue<uint64_t>, T*, T*, int64_t, cudaStream_t);
JANUS_FOR_STORAGE_TYPES(JANUS_INSTANTIATE)
#undef JANUS_INSTANTIATE

}  // namespace janus::cuda_kernels
