// 2-D max and average pooling on NHWC input, each channel independently.
//
// Window (r, c) covers input rows r*sh - ph ... r*sh - ph + KH - 1 (likewise
// columns). Positions in the padding never win a max and add 0 to an average,
// whose divisor is always KH*KW (count_include_pad). CpuDevice checks that
// pad < kernel, so every window holds at least one real input position.
#include <algorithm>
#include <vector>

#include "cpu/kernels.hpp"

namespace janus::cpu {

namespace {

inline int64_t nhwc(int64_t n, int64_t h, int64_t w, int64_t c, int64_t H, int64_t W, int64_t C) {
  return ((n * H + h) * W + w) * C + c;
}

using Window = PoolWindow;

// Flat index into x of the maximum of channel ch over window wd of image n;
// the first in row-major window order on ties (strict comparison).
template <class T>
int64_t argmax_in_window(const PoolGeometry& g, const T* x, int64_t n, const Window& wd,
                         int64_t ch) {
  int64_t best = nhwc(n, wd.h0, wd.v0, ch, g.H, g.W, g.C);
  for (int64_t h = wd.h0; h < wd.h1; ++h)
    for (int64_t v = wd.v0; v < wd.v1; ++v) {
      const int64_t at = nhwc(n, h, v, ch, g.H, g.W, g.C);
      if (x[at] > x[best]) best = at;
    }
  return best;
}

}  // namespace

template <class T>
void pool2d_forward(PoolMode mode, const PoolGeometry& g, const T* x, T* y) {
  const double divisor = static_cast<double>(g.KH) * g.KW;
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t r = 0; r < g.OH; ++r)
      for (int64_t c = 0; c < g.OW; ++c) {
        const Window wd = pool_window(g, r, c);
        for (int64_t ch = 0; ch < g.C; ++ch) {
          T& out = y[nhwc(n, r, c, ch, g.OH, g.OW, g.C)];
          if (mode == PoolMode::Max) {
            out = x[argmax_in_window(g, x, n, wd, ch)];
          } else {
            double s = 0.0;
            for (int64_t h = wd.h0; h < wd.h1; ++h)
              for (int64_t v = wd.v0; v < wd.v1; ++v) s += x[nhwc(n, h, v, ch, g.H, g.W, g.C)];
            out = static_cast<T>(s / divisor);
          }
        }
      }
}

template <class T>
void pool2d_backward(PoolMode mode, const PoolGeometry& g, const T* x, const T* dy, T* dx) {
  // Overlapping windows (stride < kernel) send several gradients to the same
  // input position; they are summed in double and rounded once.
  const int64_t image = static_cast<int64_t>(g.H) * g.W * g.C;
  const double divisor = static_cast<double>(g.KH) * g.KW;
  std::vector<double> acc(static_cast<size_t>(image));
  for (int64_t n = 0; n < g.N; ++n) {
    std::fill(acc.begin(), acc.end(), 0.0);
    const int64_t base = n * image;  // acc holds image n only
    for (int64_t r = 0; r < g.OH; ++r)
      for (int64_t c = 0; c < g.OW; ++c) {
        const Window wd = pool_window(g, r, c);
        for (int64_t ch = 0; ch < g.C; ++ch) {
          const double grad = dy[nhwc(n, r, c, ch, g.OH, g.OW, g.C)];
          if (mode == PoolMode::Max) {
            acc[argmax_in_window(g, x, n, wd, ch) - base] += grad;
          } else {
            for (int64_t h = wd.h0; h < wd.h1; ++h)
              for (int64_t v = wd.v0; v < wd.v1; ++v)
                acc[nhwc(0, h, v, ch, g.H, g.W, g.C)] += grad / divisor;
          }
        }
      }
    for (int64_t e = 0; e < image; ++e) dx[base + e] = static_cast<T>(acc[e]);
  }
}

#define JANUS_INSTANTIATE(T)                                                                   \
  template void pool2d_forward<T>(PoolMode, const PoolGeometry&, const T*, T*);               \
  template void pool2d_backward<T>(PoolMode, const PoolGeometry&, const T*, const T*, T*);
JANUS_INSTANTIATE(float)
JANUS_INSTANTIATE(double)
#undef JANUS_INSTANTIATE

}  // namespace janus::cpu
