// Elementwise parts of the cross-entropy and L2 losses. The forward passes
// write one double term per element; the caller reduces them with the
// deterministic two-pass sum of reduce.cu and applies the 1/m.
#include "cuda/cuda_compat.hpp"

#include <cmath>

#include "cuda/cuda_check.hpp"
#include "cuda/kernel_common.cuh"
#include "cuda/kernels.hpp"

namespace janus::cuda_kernels {

namespace {

constexpr float kClamp = 1e-12f;  // device.hpp: yhat clamped below at 1e-12 (float)

__global__ void ce_terms_kernel(const float* yhat, const float* y, double* terms, int64_t n) {
  JANUS_KERNEL_LOOP(i, n) {
    const float t = y[i];
    terms[i] = t == 0.0f ? 0.0 : -static_cast<double>(t) * static_cast<double>(logf(fmaxf(yhat[i], kClamp)));
  }
}

__global__ void ce_backward_kernel(const float* yhat, const float* y, float* dyhat, float inv_m,
                                   int64_t n) {
  JANUS_KERNEL_LOOP(i, n)
    dyhat[i] = -inv_m * y[i] / fmaxf(yhat[i], kClamp);
}

__global__ void l2_terms_kernel(const float* yhat, const float* y, double* terms, int64_t n) {
  JANUS_KERNEL_LOOP(i, n) {
    const double d = static_cast<double>(yhat[i]) - static_cast<double>(y[i]);
    terms[i] = d * d;
  }
}

__global__ void l2_backward_kernel(const float* yhat, const float* y, float* dyhat, float two_over_m,
                                   int64_t n) {
  JANUS_KERNEL_LOOP(i, n)
    dyhat[i] = two_over_m * (yhat[i] - y[i]);
}

}  // namespace

void cross_entropy_terms(const float* yhat, const float* y, double* terms, int64_t n, cudaStream_t s) {
  JANUS_LAUNCH_1D(ce_terms_kernel, n, s, yhat, y, terms, n);
}

void cross_entropy_backward(const float* yhat, const float* y, float* dyhat, float inv_m, int64_t n,
                            cudaStream_t s) {
  JANUS_LAUNCH_1D(ce_backward_kernel, n, s, yhat, y, dyhat, inv_m, n);
}

void l2_terms(const float* yhat, const float* y, double* terms, int64_t n, cudaStream_t s) {
  JANUS_LAUNCH_1D(l2_terms_kernel, n, s, yhat, y, terms, n);
}

void l2_backward(const float* yhat, const float* y, float* dyhat, float two_over_m, int64_t n,
                 cudaStream_t s) {
  JANUS_LAUNCH_1D(l2_backward_kernel, n, s, yhat, y, dyhat, two_over_m, n);
}

}  // namespace janus::cuda_kernels
