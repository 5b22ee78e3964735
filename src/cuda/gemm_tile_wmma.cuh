// Tensor-core math for the GEMM engine (gemm_tile.cuh) through CUDA's warp
// matrix functions (nvcuda::wmma; sm_80 and newer), float32 accumulators:
//   TensorCoreMath<Shape, precision::tf32>  TF32 operands, m16n16k8
//   TensorCoreMath<Shape, __nv_bfloat16>    bf16 operands, m16n16k16
// The simulator emulates both (src/cuda/sim/wmma.hpp).
//
// Each of the 8 warps owns a 32x32 piece of the block tile (2 x 2 fragments
// of 16x16); the shared tiles are K-major, so A (m, k) is read as a
// col_major matrix_a with ldm = kLdA and B (k, n) as a row_major matrix_b with
// ldm = kLdB (multiples of 8 elements: 16 bytes or more). Every fragment
// pointer is 32-byte aligned: m and n move by 16 elements, and k by 8 rows of
// float tiles (8 * kLd * 4 bytes) or not at all (bf16: one k step of 16 per
// tile).
//
// The operands are rounded when the loaders write them to shared memory, once
// per element instead of once per warp that reads it: to TF32 by RoundTf32
// (cvt.rna.tf32.f32, as __float_to_tf32), to bf16 by the tile's element type
// (__float2bfloat16: to nearest even). The accumulators go through a per-warp
// 16x16 staging tile in shared memory to the Store, which takes (m, n).
#pragma once

#include "cuda/gemm_tile.cuh"

#include <cuda_bf16.h>
#include <mma.h>

#include <type_traits>

namespace janus::cuda_kernels {

// TF32 as the tensor cores read it: cvt.rna.tf32.f32 (to nearest, ties away
// from zero).
struct RoundTf32 {
  __device__ static float apply(float v) { return nvcuda::wmma::__float_to_tf32(v); }
};

template <class Shape, class T>
struct TensorCoreMath {
  static constexpr bool kTf32 = std::is_same_v<T, nvcuda::wmma::precision::tf32>;
  static_assert(kTf32 || std::is_same_v<T, __nv_bfloat16>, "TF32 or bf16 operands");
  using Round = std::conditional_t<kTf32, RoundTf32, RoundNone>;
  using Element = std::conditional_t<kTf32, float, __nv_bfloat16>;  // of the shared tiles
  static constexpr int kStepK = kTf32 ? 8 : 16;
  static constexpr int kWarpsN = Shape::kN / 32;
  using FragA = nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, kStepK, T, nvcuda::wmma::col_major>;
  using FragB = nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, kStepK, T, nvcuda::wmma::row_major>;
  using FragC = nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, kStepK, float>;
  FragC acc[2][2];
  int warp, wm, wn;  // warp index; origin of its 32x32 piece in the block tile

  __device__ explicit TensorCoreMath(int tid)
      : warp(tid / 32), wm((tid / 32) / kWarpsN * 32), wn((tid / 32) % kWarpsN * 32) {
    JANUS_UNROLL
    for (int i = 0; i < 2; ++i)
      JANUS_UNROLL
      for (int j = 0; j < 2; ++j) nvcuda::wmma::fill_fragment(acc[i][j], 0.0f);
  }

  __device__ void step(const Element (*As)[Shape::kLdA], const Element (*Bs)[Shape::kLdB]) {
    JANUS_UNROLL
    for (int kk = 0; kk < kTileK; kk += kStepK) {
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
