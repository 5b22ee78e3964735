// Convolution as implicit GEMM: the im2col matrix is never materialised in
// global memory; the GEMM engine (gemm_tile.cuh) has loaders gather its A / B
// tiles straight from the NHWC input, the HWIO weights or the output gradient
// into shared memory. Handles any N/H/W/C/F, any kernel size (non-square too),
// any stride and padding: out-of-image taps read as zeros.
//
//  forward        : y(N*OH*OW, F)   = X~(N*OH*OW, KH*KW*C) . W(KH*KW*C, F)
//  backward data  : dx(N*H*W, C)    = dY~(N*H*W, KH*KW*F)  . W~(KH*KW*F, C)
//                   with dY~[(n,h,w),(i,j,f)] = dy[n, (h+ph-i)/sh, (w+pw-j)/sw, f]
//                   when the division is exact and in range, else 0
//  backward filter: dw(KH*KW*C, F)  = X~^T (KH*KW*C, N*OH*OW) . dY(N*OH*OW, F)
//                   split over K (= N*OH*OW) into per-split partial buffers
//                   summed in split order by a second kernel (deterministic).
//
// Index arithmetic. A loader decomposes its rows (output pixels, input pixels
// or filter taps) once, when the block starts, and keeps the K position of its
// elements as mixed-radix digits ((i, j, channel) or (n, r, c)); moving to the
// next K tile adds the step's digits with one carry per digit (MixedRadix), so
// the K loop has no integer division. The backward-data gather also needs
// (h + ph - i) / sh: the loader keeps i as quotient and remainder by the
// stride (StridedDigit) and each row's h + ph likewise, so exactness is a
// comparison of remainders and the quotient a subtraction.
//
// Vector loads. Where the contiguous axis of a gather allows it (channels a
// multiple of 4 and 16-byte aligned pointers), a loader reads float4 runs:
// along k for the forward input (4 channels of one tap), along k for the
// backward-data gradient and weights (4 output channels), along m for the
// backward-filter input (4 channels of one tap, consecutive threads on
// consecutive channels: coalesced) and along n for the weights / output
// gradient read as (k, n) rows. Otherwise the same loaders run with runs of 1.
//
// Tile shape: tile_for picks NarrowTile (256x32) when the GEMM's N (output
// channels of the pass) is at most 32, WideTile (128x64) otherwise.
//
// Precision (include/janus/precision.hpp, the Matmul row of the table): F32
// runs SimtMath in float32 on CUDA cores; TF32 and BF16 run TensorCoreMath
// (WMMA m16n16k8 on operands rounded to TF32, or m16n16k16 on operands
// rounded to bf16; float32 accumulators).
//
// Storage (kernels.hpp, "storage types"): the activations x, y, dy, dx are
// float or bf16 (T of the kernels). A bf16 loader widens each element
// exactly into the same float staging registers, so the shared tiles, the
// math and the summation order are those of the float instantiation; the
// store rounds each float32 result (plus the bias) once to bf16. The weights,
// the bias and the filter gradient (and its split-K partials) stay float.
#include "cuda/cuda_compat.hpp"

#include <algorithm>
#include <cstdint>

#include "cuda/conv_igemm_common.cuh"
#include "cuda/cuda_check.hpp"
#include "cuda/gemm_tile.cuh"
#include "cuda/gemm_tile_wmma.cuh"
#include "cuda/kernel_common.cuh"
#include "cuda/kernels.hpp"
#include "janus/error.hpp"

namespace janus::cuda_kernels {

namespace {

// A row index beyond the GEMM: its coordinate is set this far out of range
// so that every bounds test of its gathers fails.
constexpr int kFarAway = -(1 << 29);

// ---- K positions as mixed-radix digits -------------------------------------------------

// hi * (mid_radix * lo_radix) + mid * lo_radix + lo. advance() adds a step
// split once into the same digits (split(), at setup): since each digit stays
// below its radix, one conditional subtraction per digit carries. hi is not
// reduced (it runs past its range at the end of K; callers test k itself).
struct MixedRadix {
  int hi, mid, lo;
  __device__ static MixedRadix split(int v, int mid_radix, int lo_radix) {
    const int q = v / lo_radix;
    return MixedRadix{q / mid_radix, q % mid_radix, v % lo_radix};
  }
  __device__ void advance(const MixedRadix& s, int mid_radix, int lo_radix) {
    lo += s.lo;
    int carry = lo >= lo_radix;
    lo -= carry ? lo_radix : 0;
    mid += s.mid + carry;
    carry = mid >= mid_radix;
    mid -= carry ? mid_radix : 0;
    hi += s.hi + carry;
  }
};

// A kernel tap index i kept with its quotient and remainder by the stride s
// (i = q*s + r, 0 <= r < s). set() divides (setup only); moving to another
// tap walks the remainder, at most |change| / s + 1 steps (taps are few).
struct StridedDigit {
  int q, r;
  __device__ void set(int i, int s) { q = i / s, r = i % s; }
  __device__ void move(int by, int s) {
    r += by;
    while (r >= s) r -= s, ++q;
    while (r < 0) r += s, --q;
  }
};

// ---- loaders (see gemm_tile.cuh for the interface) -------------------------------------

// Rows of a row-major (k, n) matrix with leading dimension ld: the forward
// weights W(KH*KW*C, F) and the backward-filter output gradient dY(N*OH*OW, F).
// Runs along n. In: float (the weights) or the storage type of dY.
template <class Shape, int kVec, class In>
struct DenseKRows {
  using Stage = Staging<kTileK, Shape::kN, kVec>;
  static constexpr bool kAlongK = false;
  const In* p;
  int ld, k_end, n;
  int k[Stage::kPasses];
  __device__ DenseKRows(const In* p_, int ld_, int n0, int N, int k_begin, int k_end_, int tid)
      : p(p_), ld(ld_), k_end(k_end_), n(n0 + Stage::group(tid) * kVec) {
    if (n >= N) k_end = kFarAway;  // a whole run is in or out: N % kVec == 0 when kVec > 1
    JANUS_UNROLL
    for (int q = 0; q < Stage::kPasses; ++q)  // a line past the tile never loads
      k[q] = Stage::line(tid, q) < Stage::kLines ? k_begin + Stage::line(tid, q) : (1 << 30);
  }
  __device__ void fetch(float (&r)[Stage::kRegs]) {
    JANUS_UNROLL
    for (int q = 0; q < Stage::kPasses; ++q) {
      if (k[q] < k_end) load_vec<kVec>(p + static_cast<int64_t>(k[q]) * ld + n, r + q * kVec);
      else zero_vec<kVec>(r + q * kVec);
      k[q] += kTileK;
    }
  }
};

// Forward A: X~(m = (n, r, c), k = (i, j, ch)) = x[n, r*sh - ph + i, c*sw - pw + j, ch].
// Runs along k (channels of one tap).
template <class Shape, int kVec, class In>
struct ForwardInputGather {
  using Stage = Staging<Shape::kM, kTileK, kVec>;
  static constexpr bool kAlongK = true;
  const In* x;
  ConvDims d;
  int k, k_end;
  MixedRadix tap, step;  // (i, j, ch) of this thread's k
  // Per row: the offset of its top-left tap (may lie in the padding), and that tap's coordinates.
  int row_off[Stage::kPasses], ih0[Stage::kPasses], iw0[Stage::kPasses];
  __device__ ForwardInputGather(const In* x_, const ConvDims& d_, int m0, int M, int k_begin, int k_end_,
                                int tid)
      : x(x_), d(d_), k(k_begin + Stage::group(tid) * kVec), k_end(k_end_) {
    tap = MixedRadix::split(k, d.KW, d.C);
    step = MixedRadix::split(kTileK, d.KW, d.C);
    JANUS_UNROLL
    for (int q = 0; q < Stage::kPasses; ++q) {
      const int m = m0 + Stage::line(tid, q);
      const int c = m % d.OW, t = m / d.OW, r = t % d.OH, n = t / d.OH;
      const bool in = m < M && Stage::line(tid, q) < Stage::kLines;
      ih0[q] = in ? r * d.sh - d.ph : kFarAway;
      iw0[q] = c * d.sw - d.pw;
      row_off[q] = ((n * d.H + r * d.sh - d.ph) * d.W + iw0[q]) * d.C;
    }
  }
  __device__ void fetch(float (&r)[Stage::kRegs]) {
    const int tap_off = (tap.hi * d.W + tap.mid) * d.C + tap.lo;
    JANUS_UNROLL
    for (int q = 0; q < Stage::kPasses; ++q) {
      const int ih = ih0[q] + tap.hi, iw = iw0[q] + tap.mid;
      const bool ok = k < k_end && static_cast<unsigned>(ih) < static_cast<unsigned>(d.H) &&
                      static_cast<unsigned>(iw) < static_cast<unsigned>(d.W);
      if (ok) load_vec<kVec>(x + row_off[q] + tap_off, r + q * kVec);
      else zero_vec<kVec>(r + q * kVec);
    }
    k += kTileK;
    tap.advance(step, d.KW, d.C);
  }
};

// Backward-data A: dY~(m = (n, h, w), k = (i, j, f)) = dy[n, (h+ph-i)/sh, (w+pw-j)/sw, f]
// when both divisions are exact and in range. Runs along k (output channels).
template <class Shape, int kVec, class In>
struct BackwardDataGradGather {
  using Stage = Staging<Shape::kM, kTileK, kVec>;
  static constexpr bool kAlongK = true;
  const In* dy;
  ConvDims d;
  int k, k_end;
  MixedRadix tap, step;  // (i, j, f)
  StridedDigit iq, jq;   // i and j by the strides
  // Per row: n's offset in dy, and h + ph, w + pw by the strides.
  int base[Stage::kPasses], hq[Stage::kPasses], hr[Stage::kPasses], wq[Stage::kPasses], wr[Stage::kPasses];
  __device__ BackwardDataGradGather(const In* dy_, const ConvDims& d_, int m0, int M, int k_begin, int k_end_,
                                    int tid)
      : dy(dy_), d(d_), k(k_begin + Stage::group(tid) * kVec), k_end(k_end_) {
    tap = MixedRadix::split(k, d.KW, d.F);
    step = MixedRadix::split(kTileK, d.KW, d.F);
    iq.set(tap.hi, d.sh);
    jq.set(tap.mid, d.sw);
    JANUS_UNROLL
    for (int q = 0; q < Stage::kPasses; ++q) {
      const int m = m0 + Stage::line(tid, q);
      const int w = m % d.W, t = m / d.W, h = t % d.H, n = t / d.H;
      const bool in = m < M && Stage::line(tid, q) < Stage::kLines;
      base[q] = n * d.OH * d.OW * d.F;
      hq[q] = in ? (h + d.ph) / d.sh : kFarAway;
      hr[q] = (h + d.ph) % d.sh;
      wq[q] = (w + d.pw) / d.sw;
      wr[q] = (w + d.pw) % d.sw;
    }
  }
  __device__ void fetch(float (&r)[Stage::kRegs]) {
    JANUS_UNROLL
    for (int q = 0; q < Stage::kPasses; ++q) {
      const int oh = hq[q] - iq.q, ow = wq[q] - jq.q;  // exact when the remainders agree
      const bool ok = k < k_end && hr[q] == iq.r && wr[q] == jq.r &&
                      static_cast<unsigned>(oh) < static_cast<unsigned>(d.OH) &&
                      static_cast<unsigned>(ow) < static_cast<unsigned>(d.OW);
      if (ok) load_vec<kVec>(dy + base[q] + (oh * d.OW + ow) * d.F + tap.lo, r + q * kVec);
      else zero_vec<kVec>(r + q * kVec);
    }
    k += kTileK;
    const int i = tap.hi, j = tap.mid;
    tap.advance(step, d.KW, d.F);
    iq.move(tap.hi - i, d.sh);
    jq.move(tap.mid - j, d.sw);
  }
};

// Backward-data B: W~(k = (ij, f), ch) = w[(ij*C + ch)*F + f]. Runs along k.
template <class Shape, int kVec>
struct BackwardDataWeightGather {
  using Stage = Staging<Shape::kN, kTileK, kVec>;
  static constexpr bool kAlongK = true;
  const float* w;
  int k, k_end, CF, F;
  MixedRadix tap, step;  // (-, ij, f); hi unused
  int ch_off[Stage::kPasses];
  __device__ BackwardDataWeightGather(const float* w_, const ConvDims& d, int n0, int N, int k_begin, int k_end_,
                                      int tid)
      : w(w_), k(k_begin + Stage::group(tid) * kVec), k_end(k_end_), CF(d.C * d.F), F(d.F) {
    const int taps = d.KH * d.KW;
    tap = MixedRadix::split(k, taps + 1, d.F);
    step = MixedRadix::split(kTileK, taps + 1, d.F);
    JANUS_UNROLL
    for (int q = 0; q < Stage::kPasses; ++q) {
      const int ch = n0 + Stage::line(tid, q);
      ch_off[q] = ch < N && Stage::line(tid, q) < Stage::kLines ? ch * d.F : -1;
    }
  }
  __device__ void fetch(float (&r)[Stage::kRegs]) {
    const int k_off = tap.mid * CF + tap.lo;
    JANUS_UNROLL
    for (int q = 0; q < Stage::kPasses; ++q) {
      if (k < k_end && ch_off[q] >= 0) load_vec<kVec>(w + k_off + ch_off[q], r + q * kVec);
      else zero_vec<kVec>(r + q * kVec);
    }
    k += kTileK;
    tap.advance(step, 1 << 30, F);  // ij never wraps within K
  }
};

// Backward-filter A: X~^T(m = (i, j, ch), k = (n, r, c)) = x[n, r*sh - ph + i, c*sw - pw + j, ch].
// Runs along m (channels of one tap): consecutive threads read consecutive channels.
template <class Shape, int kVec, class In>
struct BackwardFilterInputGather {
  using Stage = Staging<kTileK, Shape::kM, kVec>;
  static constexpr bool kAlongK = false;
  const In* x;
  ConvDims d;
  int i, j, ch, k_end;
  MixedRadix step;                  // kTileK as (n, r, c)
  MixedRadix pix[Stage::kPasses];  // (n, r, c) of each pass's k
  int k[Stage::kPasses];
  __device__ BackwardFilterInputGather(const In* x_, const ConvDims& d_, int m0, int M, int k_begin, int k_end_,
                                       int tid)
      : x(x_), d(d_), k_end(k_end_) {
    const int m = m0 + Stage::group(tid) * kVec;
    ch = m % d.C;
    const int t = m / d.C;
    j = t % d.KW;
    i = m < M ? t / d.KW : kFarAway;
    step = MixedRadix::split(kTileK, d.OH, d.OW);
    JANUS_UNROLL
    for (int q = 0; q < Stage::kPasses; ++q) {
      k[q] = k_begin + Stage::line(tid, q);
      pix[q] = MixedRadix::split(k[q], d.OH, d.OW);
    }
  }
  __device__ void fetch(float (&r)[Stage::kRegs]) {
    JANUS_UNROLL
    for (int q = 0; q < Stage::kPasses; ++q) {
      const int ih = pix[q].mid * d.sh - d.ph + i, iw = pix[q].lo * d.sw - d.pw + j;
      const bool ok = k[q] < k_end && static_cast<unsigned>(ih) < static_cast<unsigned>(d.H) &&
                      static_cast<unsigned>(iw) < static_cast<unsigned>(d.W);
      if (ok) load_vec<kVec>(x + ((static_cast<int64_t>(pix[q].hi) * d.H + ih) * d.W + iw) * d.C + ch, r + q * kVec);
      else zero_vec<kVec>(r + q * kVec);
      k[q] += kTileK;
      pix[q].advance(step, d.OH, d.OW);
    }
  }
};

// ---- stores ---------------------------------------------------------------------------

// Out: float, or bf16 storage (the float result rounded once, to nearest even).
template <class Out>
struct RowMajorStore {
  Out* out;
  int ld;
  const float* bias;  // added per column when not null
  __device__ void operator()(int m, int n, float acc) const {
    out[static_cast<int64_t>(m) * ld + n] = to_storage<Out>(bias ? acc + bias[n] : acc);
  }
};

// ---- kernels ----------------------------------------------------------------------------
// T: the storage type of the activations (x, y, dy, dx: float or bf16); the
// weights, the bias and the filter gradient are float. The engine is the same
// for both (float staging registers, the Math's shared tiles), so a bf16
// output is the float kernel's output on the same values, rounded once.

template <class Shape, class Math, int kVec, class T>
__global__ void __launch_bounds__(kGemmThreads)
    conv_fwd_kernel(ConvDims d, const T* x, const float* w, const float* bias, T* y, int M, int N, int K) {
  const int tid = static_cast<int>(threadIdx.x);
  const int m0 = static_cast<int>(blockIdx.x) * Shape::kM, n0 = static_cast<int>(blockIdx.y) * Shape::kN;
  ForwardInputGather<Shape, kVec, T> a(x, d, m0, M, 0, K, tid);
  DenseKRows<Shape, kVec, float> b(w, d.F, n0, N, 0, K, tid);
  gemm_tile<Shape, Math>(a, b, RowMajorStore<T>{y, d.F, bias}, m0, n0, M, N, 0, K);
}

template <class Shape, class Math, int kVec, class T>
__global__ void __launch_bounds__(kGemmThreads)
    conv_bwd_data_kernel(ConvDims d, const T* dy, const float* w, T* dx, int M, int N, int K) {
  const int tid = static_cast<int>(threadIdx.x);
  const int m0 = static_cast<int>(blockIdx.x) * Shape::kM, n0 = static_cast<int>(blockIdx.y) * Shape::kN;
  BackwardDataGradGather<Shape, kVec, T> a(dy, d, m0, M, 0, K, tid);
  BackwardDataWeightGather<Shape, kVec> b(w, d, n0, N, 0, K, tid);
  gemm_tile<Shape, Math>(a, b, RowMajorStore<T>{dx, d.C, nullptr}, m0, n0, M, N, 0, K);
}

// blockIdx.z is the K split; split s covers [s*k_per_split, (s+1)*k_per_split)
// and writes out + s*split_stride.
template <class Shape, class Math, int kVec, class T>
__global__ void __launch_bounds__(kGemmThreads)
    conv_bwd_filter_kernel(ConvDims d, const T* x, const T* dy, float* out, int M, int N, int K,
                           int k_per_split, int64_t split_stride) {
  const int tid = static_cast<int>(threadIdx.x);
  const int m0 = static_cast<int>(blockIdx.x) * Shape::kM, n0 = static_cast<int>(blockIdx.y) * Shape::kN;
  const int s = static_cast<int>(blockIdx.z);
  const int k_begin = s * k_per_split;
  const int k_end = min(K, k_begin + k_per_split);
  BackwardFilterInputGather<Shape, kVec, T> a(x, d, m0, M, k_begin, k_end, tid);
  DenseKRows<Shape, kVec, T> b(dy, d.F, n0, N, k_begin, k_end, tid);
  gemm_tile<Shape, Math>(a, b, RowMajorStore<float>{out + s * split_stride, d.F, nullptr}, m0, n0, M, N, k_begin,
                         k_end);
}

// ---- host side ------------------------------------------------------------------------

enum class TileKind { Wide, Narrow };

// NarrowTile when the pass's N (output channels of its GEMM) is at most 32.
TileKind tile_for(int N) { return N <= 32 ? TileKind::Narrow : TileKind::Wide; }

struct TileDims {
  int m, n;
};
TileDims tile_dims(TileKind t) {
  return t == TileKind::Narrow ? TileDims{NarrowTile::kM, NarrowTile::kN} : TileDims{WideTile::kM, WideTile::kN};
}

dim3 grid_for(int M, int N, TileKind t, int splits = 1) {
  const TileDims td = tile_dims(t);
  return dim3(static_cast<unsigned>((M + td.m - 1) / td.m), static_cast<unsigned>((N + td.n - 1) / td.n),
              static_cast<unsigned>(splits));
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Runs `launch` with the tile shape, the math of `math` and the vector width
// (4 when `vec4`) as template arguments: the one place that turns run-time
// choices into kernel instantiations.
template <class T>
struct Tag {
  using type = T;
};

template <class Launch>
void dispatch(TileKind tile, MathType math, bool vec4, const Launch& launch) {
  auto with_math = [&](auto shape) {
    using Shape = typename decltype(shape)::type;
    auto with_vec = [&](auto math_policy) {
      using Math = typename decltype(math_policy)::type;
      if (vec4) launch.template run<Shape, Math, 4>();
      else launch.template run<Shape, Math, 1>();
    };
    switch (math) {
      case MathType::F32: with_vec(Tag<SimtMath<Shape, RoundNone>>{}); break;
      case MathType::TF32: with_vec(Tag<TensorCoreMath<Shape, nvcuda::wmma::precision::tf32>>{}); break;
      case MathType::BF16: with_vec(Tag<TensorCoreMath<Shape, __nv_bfloat16>>{}); break;
    }
  };
  if (tile == TileKind::Narrow) with_math(Tag<NarrowTile>{});
  else with_math(Tag<WideTile>{});
}

// One launch per pass, its kernel's template arguments from dispatch().
template <class T>
struct ForwardLaunch {
  ConvDims d;
  const T* x;
  const float *w, *bias;
  T* y;
  int M, N, K;
  dim3 grid;
  cudaStream_t s;
  template <class Shape, class Math, int kVec>
  void run() const {
    JANUS_LAUNCH((conv_fwd_kernel<Shape, Math, kVec, T>), grid, kGemmThreads, 0, s, d, x, w, bias, y, M, N, K);
    JANUS_CUDA_CHECK_LAUNCH("conv_fwd_kernel");
  }
};

template <class T>
struct BackwardDataLaunch {
  ConvDims d;
  const T* dy;
  const float* w;
  T* dx;
  int M, N, K;
  dim3 grid;
  cudaStream_t s;
  template <class Shape, class Math, int kVec>
  void run() const {
    JANUS_LAUNCH((conv_bwd_data_kernel<Shape, Math, kVec, T>), grid, kGemmThreads, 0, s, d, dy, w, dx, M, N, K);
    JANUS_CUDA_CHECK_LAUNCH("conv_bwd_data_kernel");
  }
};

template <class T>
struct BackwardFilterLaunch {
  ConvDims d;
  const T *x, *dy;
  float* out;
  int M, N, K, k_per_split;
  int64_t split_stride;
  dim3 grid;
  cudaStream_t s;
  template <class Shape, class Math, int kVec>
  void run() const {
    JANUS_LAUNCH((conv_bwd_filter_kernel<Shape, Math, kVec, T>), grid, kGemmThreads, 0, s, d, x, dy, out, M, N, K,
                 k_per_split, split_stride);
    JANUS_CUDA_CHECK_LAUNCH("conv_bwd_filter_kernel");
  }
};

SplitPlan split_plan_for(const ConvGeometry& g) {
  const TileDims td = tile_dims(tile_for(g.F));
  return split_plan(g, td.m, td.n, kTileK);
}

}  // namespace

template <class T>
void conv2d_forward_igemm(const ConvGeometry& g, const T* x, const float* w, const float* bias, T* y,
                          MathType math, cudaStream_t s) {
  check_int_range(g, "conv2d_forward");
  const int M = g.N * g.OH * g.OW, N = g.F, K = g.KH * g.KW * g.C;
  if (M <= 0 || N <= 0) return;
  const ConvDims d = dims_of(g);
  const TileKind tile = tile_for(N);
  const bool vec4 = g.C % 4 == 0 && g.F % 4 == 0 && aligned16(x) && aligned16(w);
  dispatch(tile, math, vec4, ForwardLaunch<T>{d, x, w, bias, y, M, N, K, grid_for(M, N, tile), s});
}

template <class T>
void conv2d_backward_data_igemm(const ConvGeometry& g, const T* dy, const float* w, T* dx, MathType math,
                                cudaStream_t s) {
  check_int_range(g, "conv2d_backward_data");
  const int M = g.N * g.H * g.W, N = g.C, K = g.KH * g.KW * g.F;
  if (M <= 0 || N <= 0) return;
  const ConvDims d = dims_of(g);
  const TileKind tile = tile_for(N);
  const bool vec4 = g.F % 4 == 0 && aligned16(dy) && aligned16(w);
  dispatch(tile, math, vec4, BackwardDataLaunch<T>{d, dy, w, dx, M, N, K, grid_for(M, N, tile), s});
}

int64_t conv2d_backward_filter_workspace(const ConvGeometry& g) {
  const SplitPlan p = split_plan_for(g);
  return p.splits > 1 ? static_cast<int64_t>(p.splits) * g.KH * g.KW * g.C * g.F : 0;
}

template <class T>
void conv2d_backward_filter_igemm(const ConvGeometry& g, const T* x, const T* dy, float* dw,
                                  float* workspace, MathType math, cudaStream_t s) {
  check_int_range(g, "conv2d_backward_filter");
  const int M = g.KH * g.KW * g.C, N = g.F, K = g.N * g.OH * g.OW;
  if (M <= 0 || N <= 0) return;
  SplitPlan p = split_plan_for(g);
  if (workspace == nullptr) p = SplitPlan{1, K};
  const int64_t out_n = static_cast<int64_t>(M) * N;
  const ConvDims d = dims_of(g);
  const TileKind tile = tile_for(N);
  const bool vec4 = g.C % 4 == 0 && g.F % 4 == 0 && aligned16(x) && aligned16(dy);
  float* out = p.splits > 1 ? workspace : dw;
  dispatch(tile, math, vec4,
           BackwardFilterLaunch<T>{d, x, dy, out, M, N, K, p.k_per_split, p.splits > 1 ? out_n : 0,
                                   grid_for(M, N, tile, p.splits), s});
  if (p.splits > 1) {
    JANUS_LAUNCH(sum_splits_kernel, blocks_for(out_n), kThreads, 0, s, workspace, p.splits, out_n, dw);
    JANUS_CUDA_CHECK_LAUNCH("sum_splits_kernel");
  }
}

#define JANUS_INSTANTIATE_IGEMM(T)                                                                               \
  template void conv2d_forward_igemm<T>(const ConvGeometry&, const T*, const float*, const float*, T*, MathType, \
                                        cudaStream_t);                                                          \
  template void conv2d_backward_data_igemm<T>(const ConvGeometry&, const T*, const float*, T*, MathType,         \
                                              cudaStream_t);                                                    \
  template void conv2d_backward_filter_igemm<T>(const ConvGeometry&, const T*, const T*, float*, float*,         \
                                                MathType, cudaStream_t);
JANUS_FOR_STORAGE_TYPES(JANUS_INSTANTIATE_IGEMM)
#undef JANUS_INSTANTIATE_IGEMM

}  // namespace janus::cuda_kernels
