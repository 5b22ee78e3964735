// The tiled GEMM engine of the implicit-GEMM convolutions:
// C(M,N) = sum_k A(m,k) B(k,n), where A and B are not matrices in memory but gathers supplied by an Op:
//   float a(int m, int k) const;  float b(int k, int n) const;  (in range only)
//   void store(int m, int n, float acc) const;
//
// Block tile 64 (M) x 64 (N) x 16 (K), 256 threads as 16 x 16; each thread
// owns a 4 x 4 micro-tile at rows ty + 16*i and cols tx + 16*j. Per K step the
// block stages A (64x16) and B (16x64) in statically sized shared memory, each
// thread loading 4 + 4 elements; out-of-range elements are staged as zeros, so
// any M, N, K (no multiple-of-tile requirement) work. Each output is summed in
// a fixed k order: deterministic.
#pragma once

#include "cuda/cuda_compat.hpp"

#include <cstdint>

namespace janus::cuda_kernels {

constexpr int kTileM = 64;
constexpr int kTileN = 64;
constexpr int kTileK = 16;
constexpr int kGemmThreads = 256;  // 16 x 16
constexpr int kMicro = 4;

// Computes the (blockIdx.x, blockIdx.y) tile of C over k in [k_begin, k_end).
template <class Op>
__device__ inline void gemm_tile(const Op& op, int M, int N, int k_begin, int k_end) {
  __shared__ float As[kTileK][kTileM + 1];
  __shared__ float Bs[kTileK][kTileN + 1];
  const int tid = static_cast<int>(threadIdx.x);
  const int tx = tid % 16, ty = tid / 16;
  const int m0 = static_cast<int>(blockIdx.x) * kTileM;
  const int n0 = static_cast<int>(blockIdx.y) * kTileN;

  float acc[kMicro][kMicro];
  for (int i = 0; i < kMicro; ++i)
    for (int j = 0; j < kMicro; ++j) acc[i][j] = 0.0f;

  for (int k0 = k_begin; k0 < k_end; k0 += kTileK) {
    // Stage A: element e -> (mm = e / 16, kk = e % 16): consecutive threads
    // walk k, which is the contiguous axis of the conv gathers.
    for (int q = 0; q < (kTileM * kTileK) / kGemmThreads; ++q) {
      const int e = tid + q * kGemmThreads;
      const int mm = e / kTileK, kk = e % kTileK;
      const int m = m0 + mm, k = k0 + kk;
      As[kk][mm] = (m < M && k < k_end) ? op.a(m, k) : 0.0f;
    }
    // Stage B: element e -> (kk = e / 64, nn = e % 64): consecutive threads walk n.
    for (int q = 0; q < (kTileK * kTileN) / kGemmThreads; ++q) {
      const int e = tid + q * kGemmThreads;
      const int kk = e / kTileN, nn = e % kTileN;
      const int n = n0 + nn, k = k0 + kk;
      Bs[kk][nn] = (n < N && k < k_end) ? op.b(k, n) : 0.0f;
    }
    __syncthreads();
    for (int kk = 0; kk < kTileK; ++kk) {
      float av[kMicro], bv[kMicro];
      for (int i = 0; i < kMicro; ++i) av[i] = As[kk][ty + 16 * i];
      for (int j = 0; j < kMicro; ++j) bv[j] = Bs[kk][tx + 16 * j];
      for (int i = 0; i < kMicro; ++i)
        for (int j = 0; j < kMicro; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
    __syncthreads();
  }

  for (int i = 0; i < kMicro; ++i) {
    const int m = m0 + ty + 16 * i;
    if (m >= M) continue;
    for (int j = 0; j < kMicro; ++j) {
      const int n = n0 + tx + 16 * j;
      if (n < N) op.store(m, n, acc[i][j]);
    }
  }
}

}  // namespace janus::cuda_kernels
