// Pooling kernels of the fast CPU device: max and average pooling on NHWC
// tensors, run on the device's TaskTeam (see fast_kernels.hpp).
//
// Why the TaskTeam and not OpenMP
//   A pooling pass streams a few MB once, well under a millisecond on two
//   cores. Under OMP_WAIT_POLICY=passive every OpenMP region first pays
//   40-200 us to wake its sleeping worker (task_team.hpp); the team's helpers
//   are still spinning from the convolution before.
//
// Vectorised over channels
//   NHWC stores the C channels of one position next to each other, so each
//   step of a window (compare and select, add, route a gradient) is one pass
//   over C contiguous values. The passes are small helpers with restrict
//   pointers and 'omp simd', so that the compiler emits vector blends, not
//   branches. Scratch per window (the running maximum, which channels are
//   routed) lives on the stack, kChunk channels at a time.
//
// Same results as the reference (src/cpu/pool2d.cpp)
//   Max: the reference scans a window in row-major order and replaces its
//   best only on '>', so the first maximum wins a tie and a NaN in the first
//   position stays the maximum. The kernels here select exactly the same
//   element per channel: forward is bit-identical, and so is backward where
//   windows do not overlap (overlapping ones add several gradients in T).
//   Average: sums in T in window order, times 1 / (KH*KW) (the reference sums
//   in double).
//
// Determinism
//   Tasks are fixed blocks of output rows (forward) or whole images
//   (backward: windows never cross images, so each dx element is written by
//   one task). No result depends on the split or on the thread that runs a
//   task: bit-identical from run to run and for every thread count.
//
// Vector width
//   The per-slice kernels (forward rows, backward images) are cloned per
//   vector width (vector_clones.hpp): 16 floats per step on AVX-512 instead
//   of SSE2's 4, with identical results. The helpers below are always
//   inlined, so that they are compiled inside each clone.
#include <algorithm>
#include <cstring>

#include "cpu/fast_kernels.hpp"
#include "cpu/kernels.hpp"
#include "cpu/vector_clones.hpp"

namespace janus::fast {

namespace {

// Work (output elements x window size) below which a pass runs on the caller.
constexpr int64_t kParallelWork = 1 << 15;
// Channels handled per step of the scalar-state paths (stack scratch).
constexpr int64_t kChunk = 64;

using Window = cpu::PoolWindow;

// best = p > best ? p : best, per channel (the reference's replace rule).
template <class T>
JANUS_ALWAYS_INLINE void max_into(int64_t n, const T* __restrict p, T* __restrict best) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const T v = p[i], b = best[i];
    best[i] = v > b ? v : b;
  }
}

// out = max of a full 2x2 window given row-major as a, b, e, f (the common
// case, straight-line: one load of each input).
template <class T>
JANUS_ALWAYS_INLINE void max_2x2(int64_t n, const T* __restrict a, const T* __restrict b, const T* __restrict e,
             const T* __restrict f, T* __restrict out) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    T m = a[i];
    m = b[i] > m ? b[i] : m;
    m = e[i] > m ? e[i] : m;
    m = f[i] > m ? f[i] : m;
    out[i] = m;
  }
}

template <class T>
JANUS_ALWAYS_INLINE void add_into(int64_t n, const T* __restrict p, T* __restrict acc) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) acc[i] += p[i];
}

// Runs body(lo, hi) over [0, count) in fixed blocks on the team, or on the
// caller in one piece when the work is small. Each block is an independent
// task (disjoint outputs), so the split does not change any result.
template <class Body>
void run_blocks(TaskTeam& team, int64_t count, int64_t work, Body&& body) {
  const int threads = team.threads();
  if (threads <= 1 || count < 2 || work < kParallelWork) {
    body(int64_t{0}, count);
    return;
  }
  // A few blocks per thread: a helper that starts late still finds work.
  const int64_t per = std::max<int64_t>(1, (count + 4 * threads - 1) / (4 * threads));
  team.run((count + per - 1) / per, [&](int64_t t) {
    const int64_t lo = t * per;
    body(lo, std::min(lo + per, count));
  });
}

// ---- forward ------------------------------------------------------------------

// Output rows [lo, hi) of the flattened (N * OH) row index.
template <class T>
JANUS_ALWAYS_INLINE void forward_rows(PoolMode mode, const PoolGeometry& g, const T* x, T* y, int64_t lo,
                  int64_t hi) {
  const int64_t C = g.C, W = g.W;
  const T inv = static_cast<T>(1.0 / (static_cast<double>(g.KH) * g.KW));
  for (int64_t nr = lo; nr < hi; ++nr) {
    const int64_t n = nr / g.OH, r = nr % g.OH;
    const T* xn = x + n * g.H * W * C;
    for (int64_t c = 0; c < g.OW; ++c) {
      const Window wd = cpu::pool_window(g, r, c);
      const T* corner = xn + (wd.h0 * W + wd.v0) * C;
      T* out = y + (nr * g.OW + c) * C;
      if (mode == PoolMode::Max) {
        if (wd.h1 - wd.h0 == 2 && wd.v1 - wd.v0 == 2) {
          max_2x2(C, corner, corner + C, corner + W * C, corner + W * C + C, out);
          continue;
        }
        std::memcpy(out, corner, sizeof(T) * C);  // the scan starts at the first position
        for (int64_t h = wd.h0; h < wd.h1; ++h)
          for (int64_t v = (h == wd.h0 ? wd.v0 + 1 : wd.v0); v < wd.v1; ++v)
            max_into(C, xn + (h * W + v) * C, out);
      } else {
        std::memset(out, 0, sizeof(T) * C);
        for (int64_t h = wd.h0; h < wd.h1; ++h)
          for (int64_t v = wd.v0; v < wd.v1; ++v) add_into(C, xn + (h * W + v) * C, out);
#pragma omp simd
        for (int64_t ch = 0; ch < C; ++ch) out[ch] *= inv;
      }
    }
  }
}

// ---- backward -----------------------------------------------------------------

// A full 2x2 window that no other window overlaps: the maximum by the
// reference's scan, then the first position holding it takes dy and the
// others 0 (the first one when a leading NaN equals nothing).
template <class T>
JANUS_ALWAYS_INLINE void route_2x2(int64_t n, const T* __restrict a, const T* __restrict b, const T* __restrict e,
               const T* __restrict f, const T* __restrict d, T* __restrict qa, T* __restrict qb,
               T* __restrict qe, T* __restrict qf) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const T va = a[i], vb = b[i], ve = e[i], vf = f[i], dv = d[i];
    T m = va;
    m = vb > m ? vb : m;
    m = ve > m ? ve : m;
    m = vf > m ? vf : m;
    bool s0 = va == m;
    const bool s1 = !s0 & (vb == m);
    const bool s2 = !s0 & !s1 & (ve == m);
    const bool s3 = !s0 & !s1 & !s2 & (vf == m);
    s0 = s0 | !(s1 | s2 | s3);
    qa[i] = s0 ? dv : T(0);
    qb[i] = s1 ? dv : T(0);
    qe[i] = s2 ? dv : T(0);
    qf[i] = s3 ? dv : T(0);
  }
}

// One position of a window that no other window overlaps: it takes dy where
// it holds the maximum and no earlier position did (`claimed`), else 0.
template <class T>
JANUS_ALWAYS_INLINE void route_position(int64_t n, const T* __restrict p, const T* __restrict best,
                    const T* __restrict d, T* __restrict claimed, T* __restrict q) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const T cl = claimed[i];
    const bool hit = (p[i] == best[i]) & (cl == T(0));  // '&': no branch
    q[i] = hit ? d[i] : T(0);
    claimed[i] = hit ? T(1) : cl;
  }
}

// Max-pool gradient of one window for channels [c0, c0 + cn), through the
// first maximum's position. `tiled`: no window overlaps another and they
// cover the image, so every position is written (not accumulated) here.
template <class T>
JANUS_ALWAYS_INLINE void max_window_backward(const PoolGeometry& g, const Window& wd, bool tiled, const T* xn,
                         const T* d, T* dxn, int64_t c0, int64_t cn) {
  const int64_t C = g.C, W = g.W;
  const int64_t first = (wd.h0 * W + wd.v0) * C + c0;
  T best[kChunk];
  std::memcpy(best, xn + first, sizeof(T) * cn);
  if (tiled) {
    for (int64_t h = wd.h0; h < wd.h1; ++h)
      for (int64_t v = (h == wd.h0 ? wd.v0 + 1 : wd.v0); v < wd.v1; ++v)
        max_into(cn, xn + (h * W + v) * C + c0, best);
    T claimed[kChunk] = {};
    for (int64_t h = wd.h0; h < wd.h1; ++h)
      for (int64_t v = wd.v0; v < wd.v1; ++v) {
        const int64_t at = (h * W + v) * C + c0;
        route_position(cn, xn + at, best, d + c0, claimed, dxn + at);
      }
    // A NaN in the first position is the maximum of the reference's scan
    // ('>' never replaces it) but equals nothing: route it there.
    for (int64_t ch = 0; ch < cn; ++ch)
      if (claimed[ch] == T(0)) dxn[first + ch] = d[c0 + ch];
    return;
  }
  // Overlapping or partial windows: remember where each channel's maximum
  // is and add dy there.
  int64_t where[kChunk];
  std::fill(where, where + cn, first);
  for (int64_t h = wd.h0; h < wd.h1; ++h)
    for (int64_t v = (h == wd.h0 ? wd.v0 + 1 : wd.v0); v < wd.v1; ++v) {
      const int64_t at = (h * W + v) * C + c0;
      const T* p = xn + at;
      for (int64_t ch = 0; ch < cn; ++ch) {
        const bool gt = p[ch] > best[ch];
        best[ch] = gt ? p[ch] : best[ch];
        where[ch] = gt ? at : where[ch];
      }
    }
  for (int64_t ch = 0; ch < cn; ++ch) dxn[where[ch] + ch] += d[c0 + ch];
}

// Images [lo, hi).
template <class T>
JANUS_ALWAYS_INLINE void backward_images(PoolMode mode, const PoolGeometry& g, const T* x, const T* dy, T* dx,
                     int64_t lo, int64_t hi) {
  const int64_t C = g.C, W = g.W, image = int64_t{g.H} * W * C;
  const T inv = static_cast<T>(1.0 / (static_cast<double>(g.KH) * g.KW));
  // Windows that tile the input exactly (no padding, stride == kernel, no
  // leftover rows or columns): every input position lies in exactly one
  // window, so dx is written once per position and needs no zeroing.
  const bool tiled = g.pad_h == 0 && g.pad_w == 0 && g.stride_h == g.KH && g.stride_w == g.KW &&
                     g.OH * g.KH == g.H && g.OW * g.KW == g.W;
  for (int64_t n = lo; n < hi; ++n) {
    const T* xn = x + n * image;
    T* dxn = dx + n * image;
    if (!tiled) std::memset(dxn, 0, sizeof(T) * image);
    for (int64_t r = 0; r < g.OH; ++r)
      for (int64_t c = 0; c < g.OW; ++c) {
        const Window wd = cpu::pool_window(g, r, c);
        const T* d = dy + ((n * g.OH + r) * g.OW + c) * C;
        if (mode == PoolMode::Max && tiled && g.KH == 2 && g.KW == 2) {
          const int64_t at = (wd.h0 * W + wd.v0) * C;
          const T* p = xn + at;
          T* q = dxn + at;
          route_2x2(C, p, p + C, p + W * C, p + W * C + C, d, q, q + C, q + W * C, q + W * C + C);
        } else if (mode == PoolMode::Max) {
          for (int64_t c0 = 0; c0 < C; c0 += kChunk)
            max_window_backward(g, wd, tiled, xn, d, dxn, c0, std::min(kChunk, C - c0));
        } else {
          for (int64_t h = wd.h0; h < wd.h1; ++h)
            for (int64_t v = wd.v0; v < wd.v1; ++v) {
              T* q = dxn + (h * W + v) * C;
              if (tiled) {
#pragma omp simd
                for (int64_t ch = 0; ch < C; ++ch) q[ch] = d[ch] * inv;
              } else {
#pragma omp simd
                for (int64_t ch = 0; ch < C; ++ch) q[ch] += d[ch] * inv;
              }
            }
        }
      }
  }
}

// The cloned entry points (one per element type; see vector_clones.hpp).
#define JANUS_CLONED_KERNELS(T)                                                                \
  JANUS_VECTOR_CLONES void forward_slice(PoolMode mode, const PoolGeometry& g, const T* x,     \
                                         T* y, int64_t lo, int64_t hi) {                       \
    forward_rows<T>(mode, g, x, y, lo, hi);                                                    \
  }                                                                                            \
  JANUS_VECTOR_CLONES void backward_slice(PoolMode mode, const PoolGeometry& g, const T* x,    \
                                          const T* dy, T* dx, int64_t lo, int64_t hi) {        \
    backward_images<T>(mode, g, x, dy, dx, lo, hi);                                            \
  }
JANUS_CLONED_KERNELS(float)
JANUS_CLONED_KERNELS(double)
#undef JANUS_CLONED_KERNELS

}  // namespace

template <class T>
void pool2d_forward(PoolMode mode, const PoolGeometry& g, const T* x, T* y, TaskTeam& team) {
  const int64_t rows = int64_t{g.N} * g.OH;
  const int64_t work = rows * g.OW * g.C * g.KH * g.KW;
  run_blocks(team, rows, work,
             [&](int64_t lo, int64_t hi) { forward_slice(mode, g, x, y, lo, hi); });
}

template <class T>
void pool2d_backward(PoolMode mode, const PoolGeometry& g, const T* x, const T* dy, T* dx,
                     TaskTeam& team) {
  const int64_t work = int64_t{g.N} * g.OH * g.OW * g.C * g.KH * g.KW;
  run_blocks(team, g.N, work,
             [&](int64_t lo, int64_t hi) { backward_slice(mode, g, x, dy, dx, lo, hi); });
}

#define JANUS_INSTANTIATE(T)                                                                    \
  template void pool2d_forward<T>(PoolMode, const PoolGeometry&, const T*, T*, TaskTeam&);     \
  template void pool2d_backward<T>(PoolMode, const PoolGeometry&, const T*, const T*, T*,      \
                                   TaskTeam&);
JANUS_INSTANTIATE(float)
JANUS_INSTANTIATE(double)
#undef JANUS_INSTANTIATE

}  // namespace janus::fast
