// The first implicit-GEMM convolution kernel (before the rework of
// conv_implicit_gemm.cu), kept unchanged as the baseline of
// bench/igemm_variants.cpp so that a GPU run measures old against new in one
// process. Not used by the backend. Its design: a 64x64x16 tile, 256 threads
// with 4x4 outputs each, every gathered element decomposed from (m, k) with
// integer divisions, one shared-memory buffer, scalar loads; the backward
// filter gather strided by C between threads.
#include "cuda/cuda_compat.hpp"

#include <algorithm>

#include "cuda/conv_igemm_common.cuh"
#include "cuda/cuda_check.hpp"
#include "cuda/kernel_common.cuh"
#include "cuda/kernels.hpp"
#include "janus/error.hpp"

namespace janus::cuda_kernels {

namespace {

// ---- the GEMM engine: C(M,N) = sum_k a(m,k) b(k,n) over gathers of an Op ----
constexpr int kV1TileM = 64;
constexpr int kV1TileK = 16;
constexpr int kV1Threads = 256;  // 16 x 16
constexpr int kV1TileN = 64;
constexpr int kV1Micro = 4;

// Computes the (blockIdx.x, blockIdx.y) tile of C over k in [k_begin, k_end).
template <class Op>
__device__ inline void gemm_tile_v1(const Op& op, int M, int N, int k_begin, int k_end) {
  __shared__ float As[kV1TileK][kV1TileM + 1];
  __shared__ float Bs[kV1TileK][kV1TileN + 1];
  const int tid = static_cast<int>(threadIdx.x);
  const int tx = tid % 16, ty = tid / 16;
  const int m0 = static_cast<int>(blockIdx.x) * kV1TileM;
  const int n0 = static_cast<int>(blockIdx.y) * kV1TileN;

  float acc[kV1Micro][kV1Micro];
  for (int i = 0; i < kV1Micro; ++i)
    for (int j = 0; j < kV1Micro; ++j) acc[i][j] = 0.0f;

  for (int k0 = k_begin; k0 < k_end; k0 += kV1TileK) {
    // Stage A: element e -> (mm = e / 16, kk = e % 16): consecutive threads
    // walk k, which is the contiguous axis of the conv gathers.
    for (int q = 0; q < (kV1TileM * kV1TileK) / kV1Threads; ++q) {
      const int e = tid + q * kV1Threads;
      const int mm = e / kV1TileK, kk = e % kV1TileK;
      const int m = m0 + mm, k = k0 + kk;
      As[kk][mm] = (m < M && k < k_end) ? op.a(m, k) : 0.0f;
    }
    // Stage B: element e -> (kk = e / 64, nn = e % 64): consecutive threads walk n.
    for (int q = 0; q < (kV1TileK * kV1TileN) / kV1Threads; ++q) {
      const int e = tid + q * kV1Threads;
      const int kk = e / kV1TileN, nn = e % kV1TileN;
      const int n = n0 + nn, k = k0 + kk;
      Bs[kk][nn] = (n < N && k < k_end) ? op.b(k, n) : 0.0f;
    }
    __syncthreads();
    for (int kk = 0; kk < kV1TileK; ++kk) {
      float av[kV1Micro], bv[kV1Micro];
      for (int i = 0; i < kV1Micro; ++i) av[i] = As[kk][ty + 16 * i];
      for (int j = 0; j < kV1Micro; ++j) bv[j] = Bs[kk][tx + 16 * j];
      for (int i = 0; i < kV1Micro; ++i)
        for (int j = 0; j < kV1Micro; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
    __syncthreads();
  }

  for (int i = 0; i < kV1Micro; ++i) {
    const int m = m0 + ty + 16 * i;
    if (m >= M) continue;
    for (int j = 0; j < kV1Micro; ++j) {
      const int n = n0 + tx + 16 * j;
      if (n < N) op.store(m, n, acc[i][j]);
    }
  }
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

__global__ void conv_fwd_v1_kernel(FwdOp op, int M, int N, int K) { gemm_tile_v1(op, M, N, 0, K); }

__global__ void conv_bwd_data_v1_kernel(BwdDataOp op, int M, int N, int K) { gemm_tile_v1(op, M, N, 0, K); }

// blockIdx.z is the K split; split s covers [s*k_per_split, (s+1)*k_per_split).
__global__ void conv_bwd_filter_v1_kernel(BwdFilterOp op, int M, int N, int K, int k_per_split,
                                       int64_t split_stride) {
  const int s = static_cast<int>(blockIdx.z);
  const int k_begin = s * k_per_split;
  const int k_end = std::min(K, k_begin + k_per_split);
  BwdFilterOp local = op;
  local.out = op.out + s * split_stride;
  gemm_tile_v1(local, M, N, k_begin, k_end);
}

dim3 tiles(int M, int N, int splits = 1) {
  return dim3(static_cast<unsigned>((M + kV1TileM - 1) / kV1TileM), static_cast<unsigned>((N + kV1TileN - 1) / kV1TileN),
              static_cast<unsigned>(splits));
}

SplitPlan split_plan_v1(const ConvGeometry& g) { return split_plan(g, kV1TileM, kV1TileN, kV1TileK); }

}  // namespace

void conv2d_forward_igemm_v1(const ConvGeometry& g, const float* x, const float* w, const float* bias,
                          float* y, cudaStream_t s) {
  check_int_range(g, "conv2d_forward");
  const int M = g.N * g.OH * g.OW, N = g.F, K = g.KH * g.KW * g.C;
  if (M <= 0 || N <= 0) return;
  const FwdOp op{dims_of(g), x, w, bias, y};
  JANUS_LAUNCH(conv_fwd_v1_kernel, tiles(M, N), kV1Threads, 0, s, op, M, N, K);
  JANUS_CUDA_CHECK_LAUNCH("conv_fwd_v1_kernel");
}

void conv2d_backward_data_igemm_v1(const ConvGeometry& g, const float* dy, const float* w, float* dx,
                                cudaStream_t s) {
  check_int_range(g, "conv2d_backward_data");
  const int M = g.N * g.H * g.W, N = g.C, K = g.KH * g.KW * g.F;
  if (M <= 0 || N <= 0) return;
  const BwdDataOp op{dims_of(g), dy, w, dx};
  JANUS_LAUNCH(conv_bwd_data_v1_kernel, tiles(M, N), kV1Threads, 0, s, op, M, N, K);
  JANUS_CUDA_CHECK_LAUNCH("conv_bwd_data_v1_kernel");
}

int64_t conv2d_backward_filter_workspace_v1(const ConvGeometry& g) {
  const SplitPlan p = split_plan_v1(g);
  return p.splits > 1 ? static_cast<int64_t>(p.splits) * g.KH * g.KW * g.C * g.F : 0;
}

void conv2d_backward_filter_igemm_v1(const ConvGeometry& g, const float* x, const float* dy, float* dw,
                                  float* workspace, cudaStream_t s) {
  check_int_range(g, "conv2d_backward_filter");
  const int M = g.KH * g.KW * g.C, N = g.F, K = g.N * g.OH * g.OW;
  if (M <= 0 || N <= 0) return;
  const SplitPlan p = split_plan_v1(g);
  const int64_t out_n = static_cast<int64_t>(M) * N;
  if (p.splits == 1 || workspace == nullptr) {
    const BwdFilterOp op{dims_of(g), x, dy, dw};
    JANUS_LAUNCH(conv_bwd_filter_v1_kernel, tiles(M, N), kV1Threads, 0, s, op, M, N, K, K, int64_t{0});
    JANUS_CUDA_CHECK_LAUNCH("conv_bwd_filter_v1_kernel");
    return;
  }
  const BwdFilterOp op{dims_of(g), x, dy, workspace};
  JANUS_LAUNCH(conv_bwd_filter_v1_kernel, tiles(M, N, p.splits), kV1Threads, 0, s, op, M, N, K,
               p.k_per_split, out_n);
  JANUS_CUDA_CHECK_LAUNCH("conv_bwd_filter_v1_kernel");
  JANUS_LAUNCH(sum_splits_kernel, blocks_for(out_n), kThreads, 0, s, workspace, p.splits, out_n, dw);
  JANUS_CUDA_CHECK_LAUNCH("sum_splits_kernel");
}

}  // namespace janus::cuda_kernels
