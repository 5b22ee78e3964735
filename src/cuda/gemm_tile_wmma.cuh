// Tensor-core math for the GEMM engine (gemm_tile.cuh): TF32 operands,
// float32 accumulators, through CUDA's warp matrix functions (nvcuda::wmma,
// m16n16k8, precision::tf32; sm_80 and newer). The simulator emulates them
// (src/cuda/sim/wmma.hpp).
//
// Each of the 8 warps owns a 32x32 piece of the block tile (2 x 2 fragments
// of 16x16); the shared tiles are K-major, so A (m, k) is read as a
// col_major matrix_a with ldm = kLdA and B (k, n) as a row_major matrix_b with
// ldm = kLdB (both multiples of 4 floats; every fragment pointer is 32-byte
// aligned because k steps by 8 rows of kLdA*4 or kLdB*4 bytes, multiples of
// 32 for both tile shapes, and m / n by 16 floats).
//
// The operands were rounded to TF32 (RoundTf32) when the loaders wrote them to
// shared memory, once per element instead of once per warp that reads it.
// The accumulators go through a per-warp 16x16 staging tile in shared memory
// to the Store, which takes (m, n) coordinates.
#pragma once

#include "cuda/gemm_tile.cuh"

#include <mma.h>

namespace janus::cuda_kernels {

// TF32 as the tensor cores read it: cvt.rna.tf32.f32 (to nearest, ties away
// from zero).
struct RoundTf32 {
  __device__ static float apply(float v) { return nvcuda::wmma::__float_to_tf32(v); }
};

template <class Shape>
struct TensorCoreTf32Math {
  using Round = RoundTf32;
  static constexpr int kWarpsN = Shape::kN / 32;
  using FragA = nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 8, nvcuda::wmma::precision::tf32,
                                       nvcuda::wmma::col_major>;
  using FragB = nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 8, nvcuda::wmma::precision::tf32,
                                       nvcuda::wmma::row_major>;
  using FragC = nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 8, float>;
  FragC acc[2][2];
  int warp, wm, wn;  // warp index; origin of its 32x32 piece in the block tile

  __device__ explicit TensorCoreTf32Math(int tid)
      : warp(tid / 32), wm((tid / 32) / kWarpsN * 32), wn((tid / 32) % kWarpsN * 32) {
    JANUS_UNROLL
    for (int i = 0; i < 2; ++i)
      JANUS_UNROLL
      for (int j = 0; j < 2; ++j) nvcuda::wmma::fill_fragment(acc[i][j], 0.0f);
  }

  __device__ void step(const float (*As)[Shape::kLdA], const float (*Bs)[Shape::kLdB]) {
    JANUS_UNROLL
    for (int kk = 0; kk < kTileK; kk += 8) {
      FragA a[2];
      FragB b[2];
      JANUS_UNROLL
      for (int i = 0; i < 2; ++i) nvcuda::wmma::load_matrix_sync(a[i], &As[kk][wm + 16 * i], Shape::kLdA);
      JANUS_UNROLL
      for (int j = 0; j < 2; ++j) nvcuda::wmma::load_matrix_sync(b[j], &Bs[kk][wn + 16 * j], Shape::kLdB);
      JANUS_UNROLL
      for (int i = 0; i < 2; ++i)
        JANUS_UNROLL
        for (int j = 0; j < 2; ++j) nvcuda::wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
    }
  }

  template <class Store>
  __device__ void store(const Store& st, int m0, int n0, int M, int N) const {
    alignas(32) __shared__ float staging[kGemmThreads / 32][16 * 16];
    const int lane = static_cast<int>(threadIdx.x) % 32;
    JANUS_UNROLL
    for (int i = 0; i < 2; ++i)
      JANUS_UNROLL
      for (int j = 0; j < 2; ++j) {
        nvcuda::wmma::store_matrix_sync(staging[warp], acc[i][j], 16, nvcuda::wmma::mem_row_major);
        __syncwarp();
        for (int e = lane; e < 16 * 16; e += 32) {
          const int m = m0 + wm + 16 * i + e / 16, n = n0 + wn + 16 * j + e % 16;
          if (m < M && n < N) st(m, n, staging[warp][e]);
        }
        __syncwarp();  // the next store_matrix_sync overwrites the staging tile
      }
  }
};

}  // namespace janus::cuda_kernels
