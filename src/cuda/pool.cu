// 2-D max / average pooling on NHWC tensors, forward and backward.
//
// Forward: one thread per output element (channel fastest, so a warp reads
// consecutive channels: coalesced). Backward is a gather, not a scatter: one
// thread per input element walks the windows that cover it in row-major
// window order, so overlapping windows accumulate without atomics, in the
// same order as a sequential loop over outputs (deterministic). Max pooling
// routes dy through each window's argmax (first maximum in row-major window
// order, padding never wins): in training the forward saves it
// (max_pool2d_forward_train, cached by the Pool2D layer) and the backward is
// the gather alone; pool2d_backward without a saved argmax first recomputes it
// with the forward kernel. The argmax is the window-local position i*KW + j
// held in a float (an exact small integer; -1 for a window of padding only).
// x, y, dy, dx are of a storage type T (float or __nv_bfloat16): sums in
// double as for float, and a bf16 result is the float result rounded once.
#include "cuda/cuda_compat.hpp"

#include <cfloat>

#include "cuda/cuda_check.hpp"
#include "cuda/kernel_common.cuh"
#include "cuda/kernels.hpp"

namespace janus::cuda_kernels {

namespace {

struct PoolDims {
  int N, H, W, C, KH, KW, sh, sw, ph, pw, OH, OW;
};

PoolDims dims_of(const PoolGeometry& g) {
  return PoolDims{g.N, g.H, g.W, g.C, g.KH, g.KW, g.stride_h, g.stride_w, g.pad_h, g.pad_w, g.OH, g.OW};
}

// Window-local position i*KW + j of the window maximum for output (n, oh, ow,
// c), or -1 when the window holds no in-image position.
template <class T>
__device__ inline int window_argmax(const T* x, const PoolDims& d, int n, int oh, int ow, int c) {
  int best_idx = -1;
  float best = -FLT_MAX;
  for (int i = 0; i < d.KH; ++i) {
    const int h = oh * d.sh - d.ph + i;
    if (h < 0 || h >= d.H) continue;
    for (int j = 0; j < d.KW; ++j) {
      const int w = ow * d.sw - d.pw + j;
      if (w < 0 || w >= d.W) continue;
      const float v = to_float(x[((static_cast<int64_t>(n) * d.H + h) * d.W + w) * d.C + c]);
      if (best_idx < 0 || v > best) {
        best = v;
        best_idx = i * d.KW + j;
      }
    }
  }
  return best_idx;
}

template <class T>
__global__ void pool_forward_kernel(int is_max, PoolDims d, const T* x, T* y, float* argmax) {
  const int64_t total = static_cast<int64_t>(d.N) * d.OH * d.OW * d.C;
  JANUS_KERNEL_LOOP(e, total) {
    const int c = static_cast<int>(e % d.C);
    int64_t t = e / d.C;
    const int ow = static_cast<int>(t % d.OW);
    t /= d.OW;
    const int oh = static_cast<int>(t % d.OH);
    const int n = static_cast<int>(t / d.OH);
    if (is_max) {
      const int idx = window_argmax(x, d, n, oh, ow, c);
      if (y) {
        const int h = oh * d.sh - d.ph + idx / d.KW, w = ow * d.sw - d.pw + idx % d.KW;
        y[e] = idx < 0 ? to_storage<T>(0.0f) : x[((static_cast<int64_t>(n) * d.H + h) * d.W + w) * d.C + c];
      }
      if (argmax) argmax[e] = static_cast<float>(idx);
    } else {
      double acc = 0.0;  // as the CPU backend: double sum, one rounding
      for (int i = 0; i < d.KH; ++i) {
        const int h = oh * d.sh - d.ph + i;
        if (h < 0 || h >= d.H) continue;
        for (int j = 0; j < d.KW; ++j) {
          const int w = ow * d.sw - d.pw + j;
          if (w < 0 || w >= d.W) continue;
          acc += static_cast<double>(to_float(x[((static_cast<int64_t>(n) * d.H + h) * d.W + w) * d.C + c]));
        }
      }
      y[e] = to_storage<T>(static_cast<float>(acc / (static_cast<double>(d.KH) * d.KW)));
    }
  }
}

// First and last output index whose window covers input coordinate h.
__device__ inline void covering(int h, int pad, int k, int stride, int out, int& lo, int& hi) {
  // window o covers o*stride - pad .. o*stride - pad + k - 1
  const int a = h + pad - k + 1;  // o*stride >= a
  lo = a <= 0 ? 0 : (a + stride - 1) / stride;
  hi = (h + pad) / stride;  // h + pad >= 0 always
  if (hi > out - 1) hi = out - 1;
}

template <class T>
__global__ void pool_backward_kernel(int is_max, PoolDims d, const T* dy, const float* argmax, T* dx) {
  const int64_t total = static_cast<int64_t>(d.N) * d.H * d.W * d.C;
  const double area = static_cast<double>(d.KH) * d.KW;
  JANUS_KERNEL_LOOP(e, total) {
    const int c = static_cast<int>(e % d.C);
    int64_t t = e / d.C;
    const int w = static_cast<int>(t % d.W);
    t /= d.W;
    const int h = static_cast<int>(t % d.H);
    const int n = static_cast<int>(t / d.H);
    int oh0, oh1, ow0, ow1;
    covering(h, d.ph, d.KH, d.sh, d.OH, oh0, oh1);
    covering(w, d.pw, d.KW, d.sw, d.OW, ow0, ow1);
    // Double accumulation, one final rounding: the CPU backend does the same,
    // so overlapping windows give identical results.
    double acc = 0.0;
    for (int oh = oh0; oh <= oh1; ++oh)
      for (int ow = ow0; ow <= ow1; ++ow) {
        const int64_t o = ((static_cast<int64_t>(n) * d.OH + oh) * d.OW + ow) * d.C + c;
        if (is_max) {
          // this input's position in window (oh, ow)
          const int me = (h - (oh * d.sh - d.ph)) * d.KW + (w - (ow * d.sw - d.pw));
          if (argmax[o] == static_cast<float>(me)) acc += static_cast<double>(to_float(dy[o]));
        } else {
          acc += static_cast<double>(to_float(dy[o])) / area;
        }
      }
    dx[e] = to_storage<T>(static_cast<float>(acc));
  }
}

}  // namespace

template <class T>
void pool2d_forward(PoolMode mode, const PoolGeometry& g, const T* x, T* y, float* argmax, cudaStream_t s) {
  const int64_t total = static_cast<int64_t>(g.N) * g.OH * g.OW * g.C;
  if (total <= 0) return;
  const int is_max = mode == PoolMode::Max ? 1 : 0;
  JANUS_LAUNCH(pool_forward_kernel<T>, blocks_for(total), kThreads, 0, s, is_max, dims_of(g), x, y,
               is_max ? argmax : nullptr);
  JANUS_CUDA_CHECK_LAUNCH("pool_forward_kernel");
}

template <class T>
void pool2d_backward_gather(PoolMode mode, const PoolGeometry& g, const float* argmax, const T* dy, T* dx,
                            cudaStream_t s) {
  const int64_t in_total = static_cast<int64_t>(g.N) * g.H * g.W * g.C;
  if (in_total <= 0) return;
  JANUS_LAUNCH(pool_backward_kernel<T>, blocks_for(in_total), kThreads, 0, s, mode == PoolMode::Max ? 1 : 0,
               dims_of(g), dy, argmax, dx);
  JANUS_CUDA_CHECK_LAUNCH("pool_backward_kernel");
}

template <class T>
void pool2d_backward(PoolMode mode, const PoolGeometry& g, const T* x, const T* dy, T* dx, float* argmax,
                     cudaStream_t s) {
  if (mode == PoolMode::Max) pool2d_forward<T>(mode, g, x, nullptr, argmax, s);  // the argmax only
  pool2d_backward_gather(mode, g, argmax, dy, dx, s);
}

#define JANUS_INSTANTIATE(T)                                                                                 \
  template void pool2d_forward<T>(PoolMode, const PoolGeometry&, const T*, T*, float*, cudaStream_t);        \
  template void pool2d_backward_gather<T>(PoolMode, const PoolGeometry&, const float*, const T*, T*,          \
                                          cudaStream_t);                                                     \
  template void pool2d_backward<T>(PoolMode, const PoolGeometry&, const T*, const T*, T*, float*, cudaStream_t);
JANUS_FOR_STORAGE_TYPES(JANUS_INSTANTIATE)
#undef JANUS_INSTANTIATE

}  // namespace janus::cuda_kernels
