// What the implicit-GEMM convolution kernels share (conv_implicit_gemm.cu and
// the baseline kept for benchmarks, conv_implicit_gemm_v1.cu): the geometry
// as kernel parameters, the 32-bit range check, the split-K plan of the
// filter gradient and the kernel that sums its splits.
#pragma once

#include "cuda/cuda_compat.hpp"

#include <algorithm>
#include <cstdint>

#include "cuda/cuda_check.hpp"
#include "cuda/kernel_common.cuh"
#include "janus/device.hpp"
#include "janus/error.hpp"

namespace janus::cuda_kernels {
namespace {

struct ConvDims {
  int N, H, W, C, KH, KW, F, sh, sw, ph, pw, OH, OW;
};

inline ConvDims dims_of(const ConvGeometry& g) {
  return ConvDims{g.N, g.H, g.W, g.C, g.KH, g.KW, g.F, g.stride_h, g.stride_w, g.pad_h, g.pad_w, g.OH, g.OW};
}

// Throws janus::Error naming `op` when an index of the GEMM (rows x columns of
// either implicit matrix) needs more than 31 bits.
inline void check_int_range(const ConvGeometry& g, const char* op) {
  const int64_t big = std::max({static_cast<int64_t>(g.N) * g.OH * g.OW * std::max(g.F, g.KH * g.KW * g.C),
                                static_cast<int64_t>(g.N) * g.H * g.W * std::max(g.C, g.KH * g.KW * g.F)});
  JANUS_CHECK(big < (int64_t{1} << 31), op, ": convolution too large for 32-bit indexing");
}

// Split-K plan for the filter gradient computed with tiles of tile_m x tile_n
// outputs and K steps of tile_k: enough blocks to fill a large GPU (~256), but
// at least 1024 reduction terms per split, k_per_split a multiple of tile_k.
// Depends only on the geometry, never on the hardware, so results are
// reproducible everywhere.
struct SplitPlan {
  int splits, k_per_split;
};

inline SplitPlan split_plan(const ConvGeometry& g, int tile_m, int tile_n, int tile_k) {
  const int M = g.KH * g.KW * g.C, N = g.F, K = g.N * g.OH * g.OW;
  const int64_t blocks = static_cast<int64_t>((M + tile_m - 1) / tile_m) * ((N + tile_n - 1) / tile_n);
  int splits = static_cast<int>(std::min<int64_t>((256 + blocks - 1) / blocks, (K + 1023) / 1024));
  splits = std::max(1, std::min(splits, 64));
  int k_per_split = (K + splits - 1) / splits;
  k_per_split = (k_per_split + tile_k - 1) / tile_k * tile_k;
  splits = std::max(1, (K + k_per_split - 1) / k_per_split);
  return SplitPlan{splits, k_per_split};
}

// out[i] = sum over s of partials[s*n + i], in split order (deterministic).
__global__ void sum_splits_kernel(const float* partials, int splits, int64_t n, float* out) {
  JANUS_KERNEL_LOOP(i, n) {
    float t = 0.0f;
    for (int s = 0; s < splits; ++s) t += partials[s * n + i];
    out[i] = t;
  }
}

}  // namespace
}  // namespace janus::cuda_kernels
