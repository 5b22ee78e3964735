// Fused optimizer updates, one thread per parameter element (grid-stride).
// The arithmetic is done in double and each stored value rounded once, as in
// the CPU backend (these kernels are memory-bound, so double costs nothing
// noticeable on data-centre GPUs), which makes the two backends agree to the
// last bit in almost every element.
#include "cuda/cuda_compat.hpp"

#include <cmath>

#include "cuda/cuda_check.hpp"
#include "cuda/kernel_common.cuh"
#include "cuda/kernels.hpp"

namespace janus::cuda_kernels {

namespace {

__global__ void sgd_kernel(float* w, const float* g, float* velocity, double lr, double momentum,
                           double weight_decay, int nesterov, int64_t n) {
  JANUS_KERNEL_LOOP(i, n) {
    const double gi = static_cast<double>(g[i]) + weight_decay * static_cast<double>(w[i]);
    double step = gi;
    if (momentum != 0.0) {
      const double v = momentum * static_cast<double>(velocity[i]) + gi;
      velocity[i] = static_cast<float>(v);
      step = nesterov ? gi + momentum * v : v;
    }
    w[i] = static_cast<float>(static_cast<double>(w[i]) - lr * step);
  }
}

__global__ void adam_kernel(float* w, const float* g, float* m, float* v, double lr, double beta1, double beta2,
                            double eps, double weight_decay, int decoupled, double bc1, double bc2, int64_t n) {
  JANUS_KERNEL_LOOP(i, n) {
    double wi = w[i];
    double gi = g[i];
    if (decoupled) wi -= lr * weight_decay * wi;
    else gi += weight_decay * wi;
    const double mi = beta1 * static_cast<double>(m[i]) + (1.0 - beta1) * gi;
    const double vi = beta2 * static_cast<double>(v[i]) + (1.0 - beta2) * gi * gi;
    m[i] = static_cast<float>(mi);
    v[i] = static_cast<float>(vi);
    w[i] = static_cast<float>(wi - lr * (mi / bc1) / (sqrt(vi / bc2) + eps));
  }
}

}  // namespace

void sgd_update(float* w, const float* g, float* velocity, double lr, double momentum, double weight_decay,
                bool nesterov, int64_t n, cudaStream_t s) {
  JANUS_LAUNCH_1D(sgd_kernel, n, s, w, g, velocity, lr, momentum, weight_decay,
               nesterov ? 1 : 0, n);
}

void adam_update(float* w, const float* g, float* m, float* v, double lr, double beta1, double beta2, double eps,
                 double weight_decay, bool decoupled, double bc1, double bc2, int64_t n, cudaStream_t s) {
  JANUS_LAUNCH_1D(adam_kernel, n, s, w, g, m, v, lr, beta1, beta2, eps, weight_decay,
               decoupled ? 1 : 0, bc1, bc2, n);
}

}  // namespace janus::cuda_kernels
