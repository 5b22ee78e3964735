// Grouped and depthwise convolutions (ConvGeometry with groups > 1): Janus's
// own kernels, by direct loops over the formulas of ConvGeometry. The
// implicit-GEMM kernel (conv_implicit_gemm.cu) runs groups == 1; a grouped
// convolution is a block-diagonal GEMM whose blocks are small (depthwise: a
// reduction of KH*KW terms per output), which tiles of 64x64 would mostly
// waste, so it gets kernels of its own.
//
//  forward        : one thread per output y[n,r,c,f], summing KH*KW*Cg taps of
//                   f's group (Cg = C/groups, Fg = F/groups, group gi = f / Fg).
//                   Adjacent threads take adjacent f: the weight reads are
//                   coalesced and, within a group, the x reads are shared.
//  backward data  : one thread per dx[n,h,v,ch], gathering (no atomics) over
//                   the taps (i, j) whose output pixel (r, c) read (h, v) and
//                   the Fg filters of ch's group.
//  backward filter: one block per weight dw[i,j,k,f]: its threads sum strided
//                   slices of the N*OH*OW output positions, then a block_sum
//                   (kernel_common.cuh). Fixed plan, fixed order: deterministic.
//
// Every sum is a float accumulation; nvcc contracts the multiply-adds into
// FMAs, as the simulator's contracted build does (docs/cuda-rounding.md).
#include "cuda/cuda_compat.hpp"

#include <algorithm>

#include "cuda/cuda_check.hpp"
#include "cuda/kernel_common.cuh"
#include "cuda/kernels.hpp"

namespace janus::cuda_kernels {

namespace {

// ConvGeometry as the kernels read it (its member functions are host code).
struct GroupedDims {
  int N, H, W, C, KH, KW, F, sh, sw, ph, pw, OH, OW;
  int Cg, Fg;  // input and output channels per group
};

GroupedDims dims_of(const ConvGeometry& g) {
  return GroupedDims{g.N,  g.H,  g.W,        g.C,        g.KH,    g.KW,    g.F,  g.stride_h, g.stride_w,
                     g.pad_h, g.pad_w, g.OH, g.OW, g.group_channels(), g.group_filters()};
}

// The coordinates (i0, i1, i2, i3) of flat index e of a row-major array of
// shape (*, d1, d2, d3): an NHWC pixel and channel, or an HWIO weight.
struct Index4 {
  int i0, i1, i2, i3;
};
__device__ inline Index4 unflatten(int64_t e, int d1, int d2, int d3) {
  const int64_t rest = e / d3;
  return Index4{static_cast<int>(rest / (static_cast<int64_t>(d2) * d1)), static_cast<int>((rest / d2) % d1),
                static_cast<int>(rest % d2), static_cast<int>(e % d3)};
}

__global__ void grouped_forward_kernel(GroupedDims d, const float* x, const float* w, const float* bias, float* y,
                                       int64_t total) {
  JANUS_KERNEL_LOOP(e, total) {
    const Index4 at = unflatten(e, d.OH, d.OW, d.F);  // y[n, r, c, f]
    const int n = at.i0, r = at.i1, c = at.i2, f = at.i3;
    const int ch0 = (f / d.Fg) * d.Cg;  // first input channel of f's group
    float acc = 0.0f;
    for (int i = 0; i < d.KH; ++i) {
      const int h = r * d.sh - d.ph + i;
      if (h < 0 || h >= d.H) continue;  // zero padding
      for (int j = 0; j < d.KW; ++j) {
        const int v = c * d.sw - d.pw + j;
        if (v < 0 || v >= d.W) continue;
        const float* xs = x + ((static_cast<int64_t>(n) * d.H + h) * d.W + v) * d.C + ch0;
        const float* ws = w + (static_cast<int64_t>(i) * d.KW + j) * d.Cg * d.F + f;
        for (int k = 0; k < d.Cg; ++k) acc += xs[k] * ws[static_cast<int64_t>(k) * d.F];
      }
    }
    y[e] = bias ? acc + bias[f] : acc;
  }
}

__global__ void grouped_backward_data_kernel(GroupedDims d, const float* dy, const float* w, float* dx,
                                             int64_t total) {
  JANUS_KERNEL_LOOP(e, total) {
    const Index4 at = unflatten(e, d.H, d.W, d.C);  // dx[n, h, v, ch]
    const int n = at.i0, h = at.i1, v = at.i2, ch = at.i3;
    const int k = ch % d.Cg, f0 = (ch / d.Cg) * d.Fg;  // ch's place in its group, the group's first filter
    float acc = 0.0f;
    for (int i = 0; i < d.KH; ++i) {
      const int rs = h + d.ph - i;  // r * sh for the output row whose tap i read row h
      if (rs < 0 || rs % d.sh != 0 || rs / d.sh >= d.OH) continue;
      const int r = rs / d.sh;
      for (int j = 0; j < d.KW; ++j) {
        const int cs = v + d.pw - j;
        if (cs < 0 || cs % d.sw != 0 || cs / d.sw >= d.OW) continue;
        const int c = cs / d.sw;
        const float* dys = dy + ((static_cast<int64_t>(n) * d.OH + r) * d.OW + c) * d.F + f0;
        const float* ws = w + ((static_cast<int64_t>(i) * d.KW + j) * d.Cg + k) * d.F + f0;
        for (int q = 0; q < d.Fg; ++q) acc += ws[q] * dys[q];
      }
    }
    dx[e] = acc;
  }
}

__global__ void grouped_backward_filter_kernel(GroupedDims d, const float* x, const float* dy, float* dw,
                                               int64_t weights) {
  __shared__ float scratch[kWarp];
  const int64_t positions = static_cast<int64_t>(d.N) * d.OH * d.OW;
  // The trip count depends on blockIdx only: every thread of a block reaches
  // block_sum's barriers together.
  for (int64_t e = blockIdx.x; e < weights; e += gridDim.x) {
    const Index4 tap = unflatten(e, d.KW, d.Cg, d.F);  // dw[i, j, k, f]
    const int i = tap.i0, j = tap.i1, k = tap.i2, f = tap.i3;
    const int ch = (f / d.Fg) * d.Cg + k;  // the input channel this weight reads
    float part = 0.0f;
    for (int64_t p = threadIdx.x; p < positions; p += blockDim.x) {
      const Index4 out = unflatten(p, d.OH, d.OW, 1);  // output pixel (n, r, c)
      const int n = out.i0, r = out.i1, c = out.i2;
      const int h = r * d.sh - d.ph + i, v = c * d.sw - d.pw + j;
      if (h < 0 || h >= d.H || v < 0 || v >= d.W) continue;
      part += dy[p * d.F + f] * x[((static_cast<int64_t>(n) * d.H + h) * d.W + v) * d.C + ch];
    }
    const float sum = block_sum(part, scratch);
    if (threadIdx.x == 0) dw[e] = sum;
  }
}

}  // namespace

void conv2d_forward_grouped(const ConvGeometry& g, const float* x, const float* w, const float* bias, float* y,
                            cudaStream_t s) {
  const int64_t total = static_cast<int64_t>(g.N) * g.OH * g.OW * g.F;
  JANUS_LAUNCH_1D(grouped_forward_kernel, total, s, dims_of(g), x, w, bias, y, total);
}

void conv2d_backward_data_grouped(const ConvGeometry& g, const float* dy, const float* w, float* dx,
                                  cudaStream_t s) {
  const int64_t total = static_cast<int64_t>(g.N) * g.H * g.W * g.C;
  JANUS_LAUNCH_1D(grouped_backward_data_kernel, total, s, dims_of(g), dy, w, dx, total);
}

void conv2d_backward_filter_grouped(const ConvGeometry& g, const float* x, const float* dy, float* dw,
                                    cudaStream_t s) {
  const int64_t weights = static_cast<int64_t>(g.KH) * g.KW * g.group_channels() * g.F;
  if (weights <= 0) return;
  const int blocks = static_cast<int>(std::min<int64_t>(weights, kMaxBlocks));
  JANUS_LAUNCH(grouped_backward_filter_kernel, blocks, kThreads, 0, s, dims_of(g), x, dy, dw, weights);
  JANUS_CUDA_CHECK_LAUNCH("grouped_backward_filter_kernel");
}

}  // namespace janus::cuda_kernels
