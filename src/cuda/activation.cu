// Elementwise activations (Linear, Sigmoid, TanH, ReLU) forward and backward.
// SoftMax is row-wise and lives in softmax.cu; the dispatch here forwards it.
#include "cuda/cuda_compat.hpp"

#include <cmath>

#include "cuda/cuda_check.hpp"
#include "cuda/kernel_common.cuh"
#include "cuda/kernels.hpp"

namespace janus::cuda_kernels {

namespace {

// act: 0 Linear, 1 Sigmoid, 2 TanH, 3 ReLU
__global__ void act_forward_kernel(int act, const float* z, float* y, int64_t n) {
  JANUS_KERNEL_LOOP(i, n) {
    const float v = z[i];
    float r = v;
    if (act == 1) r = 1.0f / (1.0f + expf(-v));
    else if (act == 2) r = tanhf(v);
    else if (act == 3) r = v > 0.0f ? v : 0.0f;
    y[i] = r;
  }
}

__global__ void act_backward_kernel(int act, const float* z, const float* y, const float* dy,
                                    float* dz, int64_t n) {
  JANUS_KERNEL_LOOP(i, n) {
    const float g = dy[i];
    float r = g;
    if (act == 1) {
      const float s = y[i];
      r = g * s * (1.0f - s);
    } else if (act == 2) {
      const float t = y[i];
      // __fmul_rn: t*t rounded before the subtraction, as on the CPU. nvcc
      // would otherwise fuse 1 - t*t into one FMA, and near |t| = 1 the
      // cancellation turns that rounding difference into tens of ulp
      // (docs/cuda-rounding.md).
      r = g * (1.0f - __fmul_rn(t, t));
    } else if (act == 3) {
      r = z[i] > 0.0f ? g : 0.0f;
    }
    dz[i] = r;
  }
}

int act_code(ActivationKind act) {
  switch (act) {
    case ActivationKind::Linear: return 0;
    case ActivationKind::Sigmoid: return 1;
    case ActivationKind::TanH: return 2;
    case ActivationKind::ReLU: return 3;
    case ActivationKind::SoftMax: return 4;
  }
  return 0;
}

}  // namespace

void activation_forward(ActivationKind act, const float* z, float* y, int64_t n, cudaStream_t s) {
  const int code = act_code(act);
  JANUS_LAUNCH_1D(act_forward_kernel, n, s, code, z, y, n);
}

void activation_backward(ActivationKind act, const float* z, const float* y, const float* dy,
                         float* dz, int64_t n, cudaStream_t s) {
  const int code = act_code(act);
  JANUS_LAUNCH_1D(act_backward_kernel, n, s, code, z, y, dy, dz, n);
}

}  // namespace janus::cuda_kernels
