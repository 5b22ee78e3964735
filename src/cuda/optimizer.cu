// Fused optimizer updates, one thread per parameter element (grid-stride).
#include "cuda/cuda_compat.hpp"

#include <cmath>

#include "cuda/cuda_check.hpp"
#include "cuda/kernel_common.cuh"
#include "cuda/kernels.hpp"

namespace janus::cuda_kernels {

namespace {

__global__ void sgd_kernel(float* w, const float* g, float* velocity, float lr, float momentum,
                           float weight_decay, int nesterov, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float gd = g[i] + weight_decay * w[i];
    float step = gd;
    if (momentum != 0.0f) {
      const float v = momentum * velocity[i] + gd;
      velocity[i] = v;
      step = nesterov ? gd + momentum * v : v;
    }
    w[i] -= lr * step;
  }
}

__global__ void adam_kernel(float* w, const float* g, float* m, float* v, float lr, float beta1, float beta2,
                            float eps, float weight_decay, int decoupled, float bc1, float bc2, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float wi = w[i];
    float gi = g[i];
    if (decoupled) wi -= lr * weight_decay * wi;
    else gi += weight_decay * wi;
    const float mi = beta1 * m[i] + (1.0f - beta1) * gi;
    const float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const float mhat = mi / bc1;
    const float vhat = vi / bc2;
    w[i] = wi - lr * mhat / (sqrtf(vhat) + eps);
  }
}

}  // namespace

void sgd_update(float* w, const float* g, float* velocity, float lr, float momentum, float weight_decay,
                bool nesterov, int64_t n, cudaStream_t s) {
  if (n <= 0) return;
  JANUS_LAUNCH(sgd_kernel, blocks_for(n), kThreads, 0, s, w, g, velocity, lr, momentum, weight_decay,
               nesterov ? 1 : 0, n);
  JANUS_CUDA_CHECK_LAUNCH("sgd_kernel");
}

void adam_update(float* w, const float* g, float* m, float* v, float lr, float beta1, float beta2, float eps,
                 float weight_decay, bool decoupled, float bc1, float bc2, int64_t n, cudaStream_t s) {
  if (n <= 0) return;
  JANUS_LAUNCH(adam_kernel, blocks_for(n), kThreads, 0, s, w, g, m, v, lr, beta1, beta2, eps, weight_decay,
               decoupled ? 1 : 0, bc1, bc2, n);
  JANUS_CUDA_CHECK_LAUNCH("adam_kernel");
}

}  // namespace janus::cuda_kernels
