// The tiled GEMM engine of the implicit-GEMM convolutions:
//   C(M,N) = sum_k A(m,k) B(k,n)  over k in [k_begin, k_end),
// where A and B are not matrices in memory but gathers (loaders) supplied by
// the convolution pass (conv_implicit_gemm.cu), and C goes to a Store.
//
// A block of 256 threads computes one TileShape<BM, BN> tile of C, walking K
// in steps of kTileK = 16:
//   * Staging (global -> registers -> shared). Each loader owns a fixed set of
//     elements of every K tile (a Staging pattern: runs of kVec contiguous
//     elements, 4 = one float4 load where the layout allows, else 1) and keeps
//     the index state of its rows / columns in registers, computed once;
//     moving to the next K tile is a few additions (no integer division per
//     gathered element, see conv_implicit_gemm.cu).
//   * Double buffering: shared memory holds two K tiles. While the block
//     computes tile t from one buffer, the loaders' global loads for tile t+1
//     are in flight into registers; they are written to the other buffer after
//     the compute, and one barrier per K tile separates the two.
//   * Math: SimtMath (CUDA cores: each thread owns a (4*kChunksM) x 4 register
//     tile, so one float4 of A and one of B from shared memory feed 16 FMAs),
//     or TensorCoreMath (gemm_tile_wmma.cuh: warps of WMMA, TF32 m16n16k8 or
//     bf16 m16n16k16).
//   * Rounding of the operands for reduced-precision modes happens once, when
//     a value is written to shared memory (Round policy below; bf16 tiles
//     hold __nv_bfloat16).
//
// Summation order: every output sums its products in increasing k, one FMA
// at a time (SimtMath), the same order as the engine before double buffering
// and register tiling: forward and backward-data results are bit-identical to
// the first kernel's (bench_igemm_variants checks it). The filter gradient's
// split-K plan depends on the tile shape, so its grouping into per-split
// partial sums changed with the new shapes; tensor cores sum in an unspecified
// order. The parity bounds hold for any order and grouping: a sum of K
// products computed in any order errs by at most K*u*sum|a_k b_k| (Higham,
// Accuracy and Stability of Numerical Algorithms, 3.1), which is what
// tests/test_parity_ops.cpp allows on each side.
#pragma once

#include "cuda/cuda_compat.hpp"

#include <cuda_bf16.h>

#include <cstdint>
#include <type_traits>

namespace janus::cuda_kernels {

// Loops over register arrays must unroll (a run-time index would move the
// array to local memory); g++ (the simulator) has its own heuristics.
#if defined(__CUDACC__)
#define JANUS_UNROLL _Pragma("unroll")
#else
#define JANUS_UNROLL
#endif

constexpr int kGemmThreads = 256;
constexpr int kTileK = 16;

// A block tile of BM x BN outputs. Threads form a kThreadsM x kThreadsN grid;
// thread (ty, tx) owns columns tx*4 .. tx*4+3 and, for each of kChunksM
// chunks c, rows c*kThreadsM*4 + ty*4 .. +3. Shared tiles are stored K-major
// ([k][m] and [k][n]) with rows padded by 8 elements (a multiple of 16 bytes
// for float and bf16 tiles, as float4 accesses and WMMA's ldm need; the pad
// shifts banks between k rows).
template <int BM, int BN>
struct TileShape {
  static constexpr int kM = BM, kN = BN;
  static constexpr int kThreadsN = BN / 4;
  static constexpr int kThreadsM = kGemmThreads / kThreadsN;
  static constexpr int kChunksM = BM / (4 * kThreadsM);
  static constexpr int kLdA = BM + 8, kLdB = BN + 8;
  static_assert(kThreadsM * kThreadsN == kGemmThreads && kChunksM * 4 * kThreadsM == BM, "bad tile shape");
  static_assert(BM % 32 == 0 && BN % 32 == 0 && (BM / 32) * (BN / 32) == kGemmThreads / 32,
                "one 32x32 warp tile per warp (tensor-core math)");
};

// The two shapes (chosen per pass by conv_implicit_gemm.cu's tile_for):
// 128x64 for wide outputs; 256x32 when the N side (output channels) is at most
// 32, where a 64-wide tile would leave half of its columns idle.
using WideTile = TileShape<128, 64>;
using NarrowTile = TileShape<256, 32>;

// How a loader's elements of one K tile are spread over the threads: the
// tile is kLines lines of kRun elements (the run is the contiguous axis in
// memory), cut into vectors of kVec; thread t loads vector group(t) of lines
// line(t, p) for p < kPasses (a line >= kLines is loaded by nobody).
template <int kLines_, int kRun, int kVec_>
struct Staging {
  static constexpr int kLines = kLines_, kVec = kVec_;
  static constexpr int kGroups = kRun / kVec;
  static constexpr int kLinesPerPass = kGemmThreads / kGroups;
  static constexpr int kPasses = (kLines + kLinesPerPass - 1) / kLinesPerPass;
  static constexpr int kRegs = kPasses * kVec;
  static_assert(kRun % kVec == 0 && kGemmThreads % kGroups == 0, "bad staging");
  __device__ static int group(int tid) { return tid % kGroups; }
  __device__ static int line(int tid, int p) { return tid / kGroups + p * kLinesPerPass; }
};

// Loads kVec floats at p (16-byte aligned when kVec == 4) into r.
template <int kVec>
__device__ inline void load_vec(const float* p, float* r) {
  if constexpr (kVec == 4) {
    const float4 v = *reinterpret_cast<const float4*>(p);
    r[0] = v.x, r[1] = v.y, r[2] = v.z, r[3] = v.w;
  } else {
    JANUS_UNROLL
    for (int e = 0; e < kVec; ++e) r[e] = p[e];
  }
}

// The same from bfloat16 storage (bf16 activations, kernels.hpp "storage
// types"): each element widened to float, exactly. Element by element: the
// staging registers are float either way, and a run of 4 bf16 is only 8 bytes.
template <int kVec>
__device__ inline void load_vec(const __nv_bfloat16* p, float* r) {
  JANUS_UNROLL
  for (int e = 0; e < kVec; ++e) r[e] = __bfloat162float(p[e]);
}

template <int kVec>
__device__ inline void zero_vec(float* r) {
  JANUS_UNROLL
  for (int e = 0; e < kVec; ++e) r[e] = 0.0f;
}

// ---- operand rounding (the precision table's input type) ----------------------------

struct RoundNone {
  __device__ static float apply(float v) { return v; }
};

// ---- staging into shared memory ---------------------------------------------------

// A float as the element type of a shared tile (bf16: to nearest even).
template <class Element>
__device__ inline Element to_element(float v) {
  if constexpr (std::is_same_v<Element, float>) return v;
  else return __float2bfloat16(v);
}

// Writes a loader's registers (r[p*kVec + e]) into a K-major shared tile.
// kAlongK: the runs lie along K (tile[k0 + e][line]); else along M / N
// (tile[line][c0 + e], one float4 store per run of 4).
template <class Stage, bool kAlongK, class Round, int kLd, class Element>
__device__ inline void stash(const float* r, Element (*tile)[kLd], int tid) {
  const int c0 = Stage::group(tid) * Stage::kVec;
  JANUS_UNROLL
  for (int p = 0; p < Stage::kPasses; ++p) {
    const int line = Stage::line(tid, p);
    if (line >= Stage::kLines) continue;
    const float* v = r + p * Stage::kVec;
    if constexpr (kAlongK) {
      JANUS_UNROLL
      for (int e = 0; e < Stage::kVec; ++e) tile[c0 + e][line] = to_element<Element>(Round::apply(v[e]));
    } else if constexpr (Stage::kVec == 4 && std::is_same_v<Element, float>) {
      *reinterpret_cast<float4*>(&tile[line][c0]) =
          make_float4(Round::apply(v[0]), Round::apply(v[1]), Round::apply(v[2]), Round::apply(v[3]));
    } else {
      JANUS_UNROLL
      for (int e = 0; e < Stage::kVec; ++e) tile[line][c0 + e] = to_element<Element>(Round::apply(v[e]));
    }
  }
}

// ---- CUDA-core math -----------------------------------------------------------------

template <class Shape, class Round_>
struct SimtMath {
  using Round = Round_;
  using Element = float;  // of the shared tiles
  static constexpr int kRows = 4 * Shape::kChunksM;
  float acc[kRows][4];
  int tx, ty;

  __device__ explicit SimtMath(int tid) : tx(tid % Shape::kThreadsN), ty(tid / Shape::kThreadsN) {
    JANUS_UNROLL
    for (int i = 0; i < kRows; ++i)
      JANUS_UNROLL
      for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;
  }

  __device__ void step(const float (*As)[Shape::kLdA], const float (*Bs)[Shape::kLdB]) {
JANUS_UNROLL
    for (int kk = 0; kk < kTileK; ++kk) {
      float av[kRows], bv[4];
JANUS_UNROLL
      for (int c = 0; c < Shape::kChunksM; ++c)
        load_vec<4>(&As[kk][c * Shape::kThreadsM * 4 + ty * 4], av + 4 * c);
      load_vec<4>(&Bs[kk][tx * 4], bv);
JANUS_UNROLL
      for (int i = 0; i < kRows; ++i)
JANUS_UNROLL
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
  }

  template <class Store>
  __device__ void store(const Store& st, int m0, int n0, int M, int N) const {
    JANUS_UNROLL
    for (int i = 0; i < kRows; ++i) {
      const int m = m0 + (i / 4) * Shape::kThreadsM * 4 + ty * 4 + i % 4;
      if (m >= M) continue;
      JANUS_UNROLL
      for (int j = 0; j < 4; ++j) {
        const int n = n0 + tx * 4 + j;
        if (n < N) st(m, n, acc[i][j]);
      }
    }
  }
};

// ---- the pipelined tile ----------------------------------------------------------------

// Computes the tile at (m0, n0) of C over k in [k_begin, k_end). ALoad / BLoad:
//   using Stage = Staging<...>;  static constexpr bool kAlongK;
//   void fetch(float (&r)[Stage::kRegs]);  // this K tile's elements (zeros outside), then move on one tile
// Math: SimtMath or TensorCoreMath. Store: void operator()(int m, int n, float acc) const.
template <class Shape, class Math, class ALoad, class BLoad, class Store>
__device__ inline void gemm_tile(ALoad& a, BLoad& b, const Store& st, int m0, int n0, int M, int N, int k_begin,
                                 int k_end) {
  using Element = typename Math::Element;
  alignas(32) __shared__ Element As[2][kTileK][Shape::kLdA];
  alignas(32) __shared__ Element Bs[2][kTileK][Shape::kLdB];
  using Round = typename Math::Round;
  const int tid = static_cast<int>(threadIdx.x);
  float ra[ALoad::Stage::kRegs], rb[BLoad::Stage::kRegs];
  Math math(tid);

  const int tiles = (k_end - k_begin + kTileK - 1) / kTileK;
  if (tiles > 0) {
    a.fetch(ra);
    b.fetch(rb);
    stash<typename ALoad::Stage, ALoad::kAlongK, Round>(ra, As[0], tid);
    stash<typename BLoad::Stage, BLoad::kAlongK, Round>(rb, Bs[0], tid);
  }
  __syncthreads();
  for (int t = 0; t < tiles; ++t) {
    const int cur = t & 1;
    const bool more = t + 1 < tiles;
    if (more) {  // global loads of the next tile, in flight during the math
      a.fetch(ra);
      b.fetch(rb);
    }
    math.step(As[cur], Bs[cur]);
    if (more) {  // the other buffer was last read before the previous barrier
      stash<typename ALoad::Stage, ALoad::kAlongK, Round>(ra, As[cur ^ 1], tid);
      stash<typename BLoad::Stage, BLoad::kAlongK, Round>(rb, Bs[cur ^ 1], tid);
    }
    __syncthreads();
  }
  math.store(st, m0, n0, M, N);
}

}  // namespace janus::cuda_kernels
