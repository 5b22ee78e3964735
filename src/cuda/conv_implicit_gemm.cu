// Convolution as implicit GEMM: the im2col matrix is never materialised in
// global memory; the GEMM engine (gemm_tile.cuh) gathers its A / B tiles
// straight from the NHWC input, the HWIO weights or the output gradient into
// shared memory. Handles any N/H/W/C/F, any kernel size (non-square too), any
// stride and padding: out-of-image taps read as zeros.
//
//  forward        : y(N*OH*OW, F)   = X~(N*OH*OW, KH*KW*C) . W(KH*KW*C, F)
//  backward data  : dx(N*H*W, C)    = dY~(N*H*W, KH*KW*F)  . W~(KH*KW*F, C)
//                   with dY~[(n,h,w),(i,j,f)] = dy[n, (h+ph-i)/sh, (w+pw-j)/sw, f]
//                   when the division is exact and in range, else 0
//  backward filter: dw(KH*KW*C, F)  = X~^T (KH*KW*C, N*OH*OW) . dY(N*OH*OW, F)
//                   split over K (= N*OH*OW) into per-split partial buffers
//                   summed in split order by a second kernel (deterministic).
#include "cuda/cuda_compat.hpp"

#include <algorithm>

#include "cuda/cuda_check.hpp"
#include "cuda/gemm_tile.cuh"
#include "cuda/kernel_common.cuh"
#include "cuda/kernels.hpp"
#include "janus/error.hpp"

namespace janus::cuda_kernels {

namespace {

struct ConvDims {
  int N, H, W, C, KH, KW, F, sh, sw, ph, pw, OH, OW;
};

ConvDims dims_of(const ConvGeometry& g) {
  return ConvDims{g.N, g.H, g.W, g.C, g.KH, g.KW, g.F, g.stride_h, g.stride_w, g.pad_h, g.pad_w, g.OH, g.OW};
}

// x value at padded position (n, h, w, ch) with h, w in input coordinates
// (negative or past the edge is padding: zero).
__device__ inline float x_at(const float* x, const ConvDims& d, int n, int h, int w, int ch) {
  if (h < 0 || h >= d.H || w < 0 || w >= d.W) return 0.0f;
  return x[((static_cast<int64_t>(n) * d.H + h) * d.W + w) * d.C + ch];
}

struct FwdOp {
  ConvDims d;
  const float* x;
  const float* w;
  const float* bias;
  float* y;
  __device__ float a(int m, int k) const {
    const int c = m % d.OW, t = m / d.OW, r = t % d.OH, n = t / d.OH;
    const int ch = k % d.C, t2 = k / d.C, j = t2 % d.KW, i = t2 / d.KW;
    return x_at(x, d, n, r * d.sh - d.ph + i, c * d.sw - d.pw + j, ch);
  }
  __device__ float b(int k, int f) const { return w[static_cast<int64_t>(k) * d.F + f]; }
  __device__ void store(int m, int f, float acc) const {
    y[static_cast<int64_t>(m) * d.F + f] = bias ? acc + bias[f] : acc;
  }
};

struct BwdDataOp {
  ConvDims d;
  const float* dy;
  const float* w;
  float* dx;
  __device__ float a(int m, int k) const {
    const int wc = m % d.W, t = m / d.W, h = t % d.H, n = t / d.H;
    const int f = k % d.F, t2 = k / d.F, j = t2 % d.KW, i = t2 / d.KW;
    const int hr = h + d.ph - i, wr = wc + d.pw - j;
    if (hr < 0 || wr < 0 || hr % d.sh != 0 || wr % d.sw != 0) return 0.0f;
    const int r = hr / d.sh, c = wr / d.sw;
    if (r >= d.OH || c >= d.OW) return 0.0f;
    return dy[((static_cast<int64_t>(n) * d.OH + r) * d.OW + c) * d.F + f];
  }
  __device__ float b(int k, int ch) const {
    const int f = k % d.F, ij = k / d.F;  // ij = i*KW + j
    return w[(static_cast<int64_t>(ij) * d.C + ch) * d.F + f];
  }
  __device__ void store(int m, int ch, float acc) const { dx[static_cast<int64_t>(m) * d.C + ch] = acc; }
};

struct BwdFilterOp {
  ConvDims d;
  const float* x;
  const float* dy;
  float* out;  // dw, or this split's partial buffer
  __device__ float a(int row, int k) const {
    const int ch = row % d.C, t = row / d.C, j = t % d.KW, i = t / d.KW;
    const int c = k % d.OW, t2 = k / d.OW, r = t2 % d.OH, n = t2 / d.OH;
    return x_at(x, d, n, r * d.sh - d.ph + i, c * d.sw - d.pw + j, ch);
  }
  __device__ float b(int k, int f) const { return dy[static_cast<int64_t>(k) * d.F + f]; }
  __device__ void store(int row, int f, float acc) const { out[static_cast<int64_t>(row) * d.F + f] = acc; }
};

__global__ void conv_fwd_kernel(FwdOp op, int M, int N, int K) { gemm_tile(op, M, N, 0, K); }

__global__ void conv_bwd_data_kernel(BwdDataOp op, int M, int N, int K) { gemm_tile(op, M, N, 0, K); }

// blockIdx.z is the K split; split s covers [s*k_per_split, (s+1)*k_per_split).
__global__ void conv_bwd_filter_kernel(BwdFilterOp op, int M, int N, int K, int k_per_split,
                                       int64_t split_stride) {
  const int s = static_cast<int>(blockIdx.z);
  const int k_begin = s * k_per_split;
  const int k_end = std::min(K, k_begin + k_per_split);
  BwdFilterOp local = op;
  local.out = op.out + s * split_stride;
  gemm_tile(local, M, N, k_begin, k_end);
}

__global__ void sum_splits_kernel(const float* partials, int splits, int64_t n, float* out) {
  JANUS_KERNEL_LOOP(i, n) {
    float t = 0.0f;
    for (int s = 0; s < splits; ++s) t += partials[s * n + i];
    out[i] = t;
  }
}

void check_int_range(const ConvGeometry& g, const char* op) {
  const int64_t big = std::max({static_cast<int64_t>(g.N) * g.OH * g.OW * std::max(g.F, g.KH * g.KW * g.C),
                                static_cast<int64_t>(g.N) * g.H * g.W * std::max(g.C, g.KH * g.KW * g.F)});
  JANUS_CHECK(big < (int64_t{1} << 31), op, ": convolution too large for 32-bit indexing");
}

dim3 tiles(int M, int N, int splits = 1) {
  return dim3(static_cast<unsigned>((M + kTileM - 1) / kTileM), static_cast<unsigned>((N + kTileN - 1) / kTileN),
              static_cast<unsigned>(splits));
}

// Split-K plan for the filter gradient: enough blocks to fill a large GPU
// (~256), but at least 1024 reduction terms per split. Depends only on the
// geometry, never on the hardware, so results are reproducible everywhere.
struct SplitPlan {
  int splits, k_per_split;
};

SplitPlan split_plan(const ConvGeometry& g) {
  const int M = g.KH * g.KW * g.C, N = g.F, K = g.N * g.OH * g.OW;
  const int64_t blocks = static_cast<int64_t>((M + kTileM - 1) / kTileM) * ((N + kTileN - 1) / kTileN);
  int splits = static_cast<int>(std::min<int64_t>((256 + blocks - 1) / blocks, (K + 1023) / 1024));
  splits = std::max(1, std::min(splits, 64));
  int k_per_split = (K + splits - 1) / splits;
  k_per_split = (k_per_split + kTileK - 1) / kTileK * kTileK;
  splits = std::max(1, (K + k_per_split - 1) / k_per_split);
  return SplitPlan{splits, k_per_split};
}

}  // namespace

void conv2d_forward_igemm(const ConvGeometry& g, const float* x, const float* w, const float* bias,
                          float* y, cudaStream_t s) {
  check_int_range(g, "conv2d_forward");
  const int M = g.N * g.OH * g.OW, N = g.F, K = g.KH * g.KW * g.C;
  if (M <= 0 || N <= 0) return;
  const FwdOp op{dims_of(g), x, w, bias, y};
  JANUS_LAUNCH(conv_fwd_kernel, tiles(M, N), kGemmThreads, 0, s, op, M, N, K);
  JANUS_CUDA_CHECK_LAUNCH("conv_fwd_kernel");
}

void conv2d_backward_data_igemm(const ConvGeometry& g, const float* dy, const float* w, float* dx,
                                cudaStream_t s) {
  check_int_range(g, "conv2d_backward_data");
  const int M = g.N * g.H * g.W, N = g.C, K = g.KH * g.KW * g.F;
  if (M <= 0 || N <= 0) return;
  const BwdDataOp op{dims_of(g), dy, w, dx};
  JANUS_LAUNCH(conv_bwd_data_kernel, tiles(M, N), kGemmThreads, 0, s, op, M, N, K);
  JANUS_CUDA_CHECK_LAUNCH("conv_bwd_data_kernel");
}

int64_t conv2d_backward_filter_workspace(const ConvGeometry& g) {
  const SplitPlan p = split_plan(g);
  return p.splits > 1 ? static_cast<int64_t>(p.splits) * g.KH * g.KW * g.C * g.F : 0;
}

void conv2d_backward_filter_igemm(const ConvGeometry& g, const float* x, const float* dy, float* dw,
                                  float* workspace, cudaStream_t s) {
  check_int_range(g, "conv2d_backward_filter");
  const int M = g.KH * g.KW * g.C, N = g.F, K = g.N * g.OH * g.OW;
  if (M <= 0 || N <= 0) return;
  const SplitPlan p = split_plan(g);
  const int64_t out_n = static_cast<int64_t>(M) * N;
  if (p.splits == 1 || workspace == nullptr) {
    const BwdFilterOp op{dims_of(g), x, dy, dw};
    JANUS_LAUNCH(conv_bwd_filter_kernel, tiles(M, N), kGemmThreads, 0, s, op, M, N, K, K, int64_t{0});
    JANUS_CUDA_CHECK_LAUNCH("conv_bwd_filter_kernel");
    return;
  }
  const BwdFilterOp op{dims_of(g), x, dy, workspace};
  JANUS_LAUNCH(conv_bwd_filter_kernel, tiles(M, N, p.splits), kGemmThreads, 0, s, op, M, N, K,
               p.k_per_split, out_n);
  JANUS_CUDA_CHECK_LAUNCH("conv_bwd_filter_kernel");
  JANUS_LAUNCH(sum_splits_kernel, blocks_for(out_n), kThreads, 0, s, workspace, p.splits, out_n, dw);
  JANUS_CUDA_CHECK_LAUNCH("sum_splits_kernel");
}

}  // namespace janus::cuda_kernels
