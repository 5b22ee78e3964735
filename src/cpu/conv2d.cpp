// 2-D convolution (cross-correlation) on NHWC input with HWIO weights, by
// direct loops over the formulas of ConvGeometry. Input channel ch belongs to
// group gi = ch / Cg and is channel k = ch % Cg of its group; it meets only
// the filters f of that group, gi*Fg <= f < (gi+1)*Fg (Cg = C/groups,
// Fg = F/groups; groups = 1: every channel meets every filter):
//
//   forward:          y[n,r,c,f]    = sum_{i,j,ch of f's group} w[i,j,k,f] * xpad[n, r*sh+i, c*sw+j, ch]
//   backward_data:    dx[n,h,v,ch]  = sum over all (r,c,i,j) with r*sh+i-ph == h and c*sw+j-pw == v
//                                     and f of ch's group of w[i,j,k,f] * dy[n,r,c,f]
//   backward_filter:  dw[i,j,k,f]   = sum_{n,r,c} dy[n,r,c,f] * xpad[n, r*sh+i, c*sw+j, gi*Cg+k]
//
// xpad is never materialised: a tap that falls into the zero padding
// contributes nothing, so it is skipped. In every loop nest the innermost loop
// runs over the last (contiguous) axis: F for w, y and dy. Sums are
// accumulated in double buffers and rounded to T once at the end.
#include <algorithm>
#include <vector>

#include "cpu/kernels.hpp"

namespace janus::cpu {

namespace {

// Flat offsets into the NHWC / HWIO arrays.
inline int64_t nhwc(int64_t n, int64_t h, int64_t w, int64_t c, int64_t H, int64_t W, int64_t C) {
  return ((n * H + h) * W + w) * C + c;
}
// Offset of w[i,j,k,0] for input channel ch (k = ch % Cg: weights hold Cg
// input channels).
inline int64_t hwio(const ConvGeometry& g, int64_t i, int64_t j, int64_t ch) {
  const int64_t cg = g.group_channels();
  return ((i * g.KW + j) * cg + ch % cg) * g.F;
}

// The filters input channel ch meets: [first, last) of its group.
struct FilterRange {
  int64_t first, last;
};
inline FilterRange filters_of(const ConvGeometry& g, int64_t ch) {
  const int64_t fg = g.group_filters(), gi = ch / g.group_channels();
  return {gi * fg, (gi + 1) * fg};
}

// The one loop nest every pass shares: calls tap(i, j, h, v) for each kernel
// tap (i, j) of output pixel (r, c) whose input pixel (h, v) lies inside the
// image. Taps in the zero padding contribute nothing to any pass, so they are
// skipped here, once, for all three.
template <class Tap>
inline void for_each_tap(const ConvGeometry& g, int64_t r, int64_t c, Tap&& tap) {
  for (int64_t i = 0; i < g.KH; ++i) {
    const int64_t h = r * g.stride_h + i - g.pad_h;  // input row of this tap
    if (h < 0 || h >= g.H) continue;
    for (int64_t j = 0; j < g.KW; ++j) {
      const int64_t v = c * g.stride_w + j - g.pad_w;
      if (v < 0 || v >= g.W) continue;
      tap(i, j, h, v);
    }
  }
}

}  // namespace

template <class T>
void conv2d_forward(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* y) {
  std::vector<double> acc(static_cast<size_t>(g.F));
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t r = 0; r < g.OH; ++r)
      for (int64_t c = 0; c < g.OW; ++c) {
        std::fill(acc.begin(), acc.end(), 0.0);
        for_each_tap(g, r, c, [&](int64_t i, int64_t j, int64_t h, int64_t v) {
          for (int64_t ch = 0; ch < g.C; ++ch) {
            const double xv = x[nhwc(n, h, v, ch, g.H, g.W, g.C)];
            const T* wf = w + hwio(g, i, j, ch);
            const FilterRange fr = filters_of(g, ch);
            for (int64_t f = fr.first; f < fr.last; ++f) acc[f] += xv * wf[f];
          }
        });
        T* yf = y + nhwc(n, r, c, 0, g.OH, g.OW, g.F);
        for (int64_t f = 0; f < g.F; ++f)
          yf[f] = static_cast<T>(bias ? acc[f] + bias[f] : acc[f]);
      }
}

template <class T>
void conv2d_backward_data(const ConvGeometry& g, const T* dy, const T* w, T* dx) {
  // Scatter form: every output gradient dy[n,r,c,:] flows back through each
  // in-bounds tap (i,j) to the input pixel that tap read in the forward pass.
  // Taps in the padding have no input pixel: that is the "padding cut off".
  const int64_t image = static_cast<int64_t>(g.H) * g.W * g.C;
  std::vector<double> acc(static_cast<size_t>(image));
  for (int64_t n = 0; n < g.N; ++n) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t r = 0; r < g.OH; ++r)
      for (int64_t c = 0; c < g.OW; ++c) {
        const T* dyf = dy + nhwc(n, r, c, 0, g.OH, g.OW, g.F);
        for_each_tap(g, r, c, [&](int64_t i, int64_t j, int64_t h, int64_t v) {
          for (int64_t ch = 0; ch < g.C; ++ch) {
            const T* wf = w + hwio(g, i, j, ch);
            const FilterRange fr = filters_of(g, ch);
            double s = 0.0;
            for (int64_t f = fr.first; f < fr.last; ++f) s += static_cast<double>(wf[f]) * dyf[f];
            acc[nhwc(0, h, v, ch, g.H, g.W, g.C)] += s;
          }
        });
      }
    T* dxn = dx + n * image;
    for (int64_t e = 0; e < image; ++e) dxn[e] = static_cast<T>(acc[e]);
  }
}

template <class T>
void conv2d_backward_filter(const ConvGeometry& g, const T* x, const T* dy, T* dw) {
  const int64_t size = static_cast<int64_t>(g.KH) * g.KW * g.group_channels() * g.F;
  std::vector<double> acc(static_cast<size_t>(size), 0.0);
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t r = 0; r < g.OH; ++r)
      for (int64_t c = 0; c < g.OW; ++c) {
        const T* dyf = dy + nhwc(n, r, c, 0, g.OH, g.OW, g.F);
        for_each_tap(g, r, c, [&](int64_t i, int64_t j, int64_t h, int64_t v) {
          for (int64_t ch = 0; ch < g.C; ++ch) {
            const double xv = x[nhwc(n, h, v, ch, g.H, g.W, g.C)];
            double* af = acc.data() + hwio(g, i, j, ch);
            const FilterRange fr = filters_of(g, ch);
            for (int64_t f = fr.first; f < fr.last; ++f) af[f] += xv * dyf[f];
          }
        });
      }
  for (int64_t e = 0; e < size; ++e) dw[e] = static_cast<T>(acc[e]);
}

#define JANUS_INSTANTIATE(T)                                                                   \
  template void conv2d_forward<T>(const ConvGeometry&, const T*, const T*, const T*, T*);      \
  template void conv2d_backward_data<T>(const ConvGeometry&, const T*, const T*, T*);          \
  template void conv2d_backward_filter<T>(const ConvGeometry&, const T*, const T*, T*);
JANUS_INSTANTIATE(float)
JANUS_INSTANTIATE(double)
#undef JANUS_INSTANTIATE

}  // namespace janus::cpu
