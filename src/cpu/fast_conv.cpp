// Fast CPU kernels: im2col convolutions (see fast_kernels.hpp
// and fast_device.hpp); their GEMMs are blas_gemm (fast_gemm.cpp).
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "core/env_settings.hpp"
#include "cpu/fast_kernels.hpp"
#include "janus/error.hpp"

namespace janus::fast {

namespace {

// Target bytes of one chunk's im2col matrix: large enough for efficient GEMMs
// and small enough to stay in the L2/L3 cache between im2col and the GEMM.
size_t chunk_target_bytes() {
  static const size_t bytes = [] {
    const int64_t kb = env::integer("JANUS_CONV_CHUNK_KB", 1, int64_t{1} << 20, 1024, "(kilobytes)");
    return static_cast<size_t>(kb) * 1024;
  }();
  return bytes;
}

// 1x1, stride 1, no padding: the NHWC input is already the im2col matrix.
bool is_pointwise(const ConvGeometry& g) {
  return g.KH == 1 && g.KW == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_h == 0 &&
         g.pad_w == 0;
}

// im2col reads all C channels of a window into one row and multiplies it by
// the whole (KH*KW*C, F) weight matrix: an ungrouped convolution. The device
// routes grouped ones elsewhere (fast_device.cpp); this guards that promise.
void require_ungrouped(const ConvGeometry& g) {
  JANUS_CHECK(g.groups == 1, "im2col convolution called with a grouped geometry (", conv_geometry_str(g),
              "): the fast CPU device must route it to oneDNN or the reference loops");
}

struct Chunking {
  int64_t images;  // images per chunk
  int64_t chunks;
};

template <class T>
Chunking chunking(const ConvGeometry& g, int threads) {
  const int64_t K = int64_t{g.KH} * g.KW * g.C;
  const int64_t per_image = int64_t{g.OH} * g.OW * K * static_cast<int64_t>(sizeof(T));
  int64_t images = std::max<int64_t>(1, static_cast<int64_t>(chunk_target_bytes()) / per_image);
  // At least one chunk per thread when the batch allows it.
  images = std::min<int64_t>(images, (g.N + threads - 1) / threads);
  images = std::max<int64_t>(images, 1);
  return {images, (g.N + images - 1) / images};
}

// im2col of images [n0, n0 + count): row (n, r, c) of `col` holds the KH*KW*C
// values under the kernel at output position (r, c), in HWC order (matching
// the HWIO weights seen as a (KH*KW*C, F) matrix); padding reads as zero.
template <class T>
void im2col(const ConvGeometry& g, const T* x, int64_t count, T* col) {
  const int64_t K = int64_t{g.KH} * g.KW * g.C;
  const int64_t run = int64_t{g.KW} * g.C;  // one kernel row: contiguous in NHWC
  const int64_t C = g.C;
  for (int64_t n = 0; n < count; ++n) {
    const T* xn = x + n * g.H * g.W * C;
    for (int64_t r = 0; r < g.OH; ++r) {
      const int64_t h0 = r * g.stride_h - g.pad_h;
      for (int64_t c = 0; c < g.OW; ++c) {
        T* dst = col + ((n * g.OH + r) * g.OW + c) * K;
        const int64_t v0 = c * g.stride_w - g.pad_w;
        const bool full_row = v0 >= 0 && v0 + g.KW <= g.W;
        for (int64_t i = 0; i < g.KH; ++i, dst += run) {
          const int64_t h = h0 + i;
          if (h < 0 || h >= g.H) {
            std::memset(dst, 0, sizeof(T) * run);
            continue;
          }
          const T* xrow = xn + h * g.W * C;
          if (full_row) {
            std::memcpy(dst, xrow + v0 * C, sizeof(T) * run);
            continue;
          }
          for (int64_t j = 0; j < g.KW; ++j) {
            const int64_t v = v0 + j;
            if (v < 0 || v >= g.W)
              std::memset(dst + j * C, 0, sizeof(T) * C);
            else
              std::memcpy(dst + j * C, xrow + v * C, sizeof(T) * C);
          }
        }
      }
    }
  }
}

// The adjoint of im2col: dx (images [0, count), zeroed here) += every column
// entry at the input position it was read from; padding entries are dropped.
template <class T>
void col2im(const ConvGeometry& g, const T* col, int64_t count, T* dx) {
  const int64_t K = int64_t{g.KH} * g.KW * g.C;
  const int64_t run = int64_t{g.KW} * g.C;
  const int64_t C = g.C;
  std::memset(dx, 0, sizeof(T) * count * g.H * g.W * C);
  for (int64_t n = 0; n < count; ++n) {
    T* dxn = dx + n * g.H * g.W * C;
    for (int64_t r = 0; r < g.OH; ++r) {
      const int64_t h0 = r * g.stride_h - g.pad_h;
      for (int64_t c = 0; c < g.OW; ++c) {
        const T* src = col + ((n * g.OH + r) * g.OW + c) * K;
        const int64_t v0 = c * g.stride_w - g.pad_w;
        const bool full_row = v0 >= 0 && v0 + g.KW <= g.W;
        for (int64_t i = 0; i < g.KH; ++i, src += run) {
          const int64_t h = h0 + i;
          if (h < 0 || h >= g.H) continue;
          T* dxrow = dxn + h * g.W * C;
          if (full_row) {
            T* d = dxrow + v0 * C;
            for (int64_t e = 0; e < run; ++e) d[e] += src[e];
            continue;
          }
          for (int64_t j = 0; j < g.KW; ++j) {
            const int64_t v = v0 + j;
            if (v < 0 || v >= g.W) continue;
            T* d = dxrow + v * C;
            const T* s = src + j * C;
            for (int64_t ch = 0; ch < C; ++ch) d[ch] += s[ch];
          }
        }
      }
    }
  }
}

}  // namespace

// ---- convolutions ----------------------------------------------------------------

template <class T>
size_t conv_workspace_bytes(ConvPass pass, const ConvGeometry& g, int threads) {
  const Chunking ch = chunking<T>(g, threads);
  const size_t K = static_cast<size_t>(g.KH) * g.KW * g.C;
  const size_t col = is_pointwise(g) ? 0 : static_cast<size_t>(ch.images) * g.OH * g.OW * K;
  size_t per_thread = col;
  if (pass == ConvPass::BackwardFilter) per_thread += K * g.F;  // partial dW
  // Round each thread's share to 64 bytes so every slice stays aligned.
  const size_t bytes = (per_thread * sizeof(T) + 63) / 64 * 64;
  return bytes * threads;
}

namespace {
template <class T>
T* thread_slice(void* workspace, ConvPass pass, const ConvGeometry& g, int threads, int t) {
  const size_t each = conv_workspace_bytes<T>(pass, g, threads) / threads;
  return reinterpret_cast<T*>(static_cast<char*>(workspace) + each * t);
}
}  // namespace

template <class T>
void conv2d_forward(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* y,
                    int threads, void* workspace) {
  require_ungrouped(g);
  const Chunking ch = chunking<T>(g, threads);
  const int64_t K = int64_t{g.KH} * g.KW * g.C, P = int64_t{g.OH} * g.OW, F = g.F;
  const int64_t image_in = int64_t{g.H} * g.W * g.C;
  const bool pointwise = is_pointwise(g);
  const int nt = static_cast<int>(std::min<int64_t>(threads, ch.chunks));
#pragma omp parallel num_threads(nt)
  {
    T* col = thread_slice<T>(workspace, ConvPass::Forward, g, threads, omp_get_thread_num());
#pragma omp for schedule(dynamic, 1)
    for (int64_t k = 0; k < ch.chunks; ++k) {
      const int64_t n0 = k * ch.images, count = std::min(ch.images, g.N - n0);
      const T* a = x + n0 * image_in;
      if (!pointwise) {
        im2col(g, a, count, col);
        a = col;
      }
      T* yc = y + n0 * P * F;
      const int64_t rows = count * P;
      if (bias)
        for (int64_t r = 0; r < rows; ++r) std::memcpy(yc + r * F, bias, sizeof(T) * F);
      blas_gemm(false, false, rows, F, K, T(1), a, K, w, F, bias ? T(1) : T(0), yc, F);
    }
  }
}

template <class T>
void conv2d_backward_data(const ConvGeometry& g, const T* dy, const T* w, T* dx, int threads,
                          void* workspace) {
  require_ungrouped(g);
  const Chunking ch = chunking<T>(g, threads);
  const int64_t K = int64_t{g.KH} * g.KW * g.C, P = int64_t{g.OH} * g.OW, F = g.F;
  const int64_t image_in = int64_t{g.H} * g.W * g.C;
  const bool pointwise = is_pointwise(g);
  const int nt = static_cast<int>(std::min<int64_t>(threads, ch.chunks));
#pragma omp parallel num_threads(nt)
  {
    T* col = thread_slice<T>(workspace, ConvPass::BackwardData, g, threads, omp_get_thread_num());
#pragma omp for schedule(dynamic, 1)
    for (int64_t k = 0; k < ch.chunks; ++k) {
      const int64_t n0 = k * ch.images, count = std::min(ch.images, g.N - n0);
      const int64_t rows = count * P;
      T* dxc = dx + n0 * image_in;
      // dcol (rows x K) = dy (rows x F) W^T, W seen as (K x F).
      if (pointwise) {
        blas_gemm(false, true, rows, K, F, T(1), dy + n0 * P * F, F, w, F, T(0), dxc, K);
      } else {
        blas_gemm(false, true, rows, K, F, T(1), dy + n0 * P * F, F, w, F, T(0), col, K);
        col2im(g, col, count, dxc);
      }
    }
  }
}

template <class T>
void conv2d_backward_filter(const ConvGeometry& g, const T* x, const T* dy, T* dw, int threads,
                            void* workspace) {
  require_ungrouped(g);
  const Chunking ch = chunking<T>(g, threads);
  const int64_t K = int64_t{g.KH} * g.KW * g.C, P = int64_t{g.OH} * g.OW, F = g.F;
  const int64_t image_in = int64_t{g.H} * g.W * g.C;
  const bool pointwise = is_pointwise(g);
  const size_t col_elems = pointwise ? 0 : static_cast<size_t>(ch.images) * P * K;
  const int nt = static_cast<int>(std::min<int64_t>(threads, ch.chunks));
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num();
    T* col = thread_slice<T>(workspace, ConvPass::BackwardFilter, g, threads, t);
    // Thread 0 accumulates straight into dw, the others into partial sums.
    T* part = t == 0 ? dw : col + col_elems;
    bool first = true;
    // Static schedule: which chunks a thread sums is fixed by the thread
    // count, so dW (a sum over chunks) is bit-identical from run to run and a
    // resumed run matches an uninterrupted one. (Forward and backward-data
    // write disjoint outputs per chunk and can balance dynamically.)
#pragma omp for schedule(static)
    for (int64_t k = 0; k < ch.chunks; ++k) {
      const int64_t n0 = k * ch.images, count = std::min(ch.images, g.N - n0);
      const T* a = x + n0 * image_in;
      if (!pointwise) {
        im2col(g, a, count, col);
        a = col;
      }
      // dW (K x F) += col^T (K x rows) dy (rows x F)
      blas_gemm(true, false, K, F, count * P, T(1), a, K, dy + n0 * P * F, F, first ? T(0) : T(1),
                part, F);
      first = false;
    }
    if (first) std::memset(part, 0, sizeof(T) * K * F);  // this thread got no chunk
#pragma omp barrier
    // Reduce the partial sums into dw, each thread over a slice of dw.
    const int64_t total = K * F, per = (total + nt - 1) / nt;
    const int64_t lo = std::min<int64_t>(t * per, total), hi = std::min<int64_t>(lo + per, total);
    for (int other = 1; other < nt; ++other) {
      const T* p = thread_slice<T>(workspace, ConvPass::BackwardFilter, g, threads, other) +
                   col_elems;
      for (int64_t e = lo; e < hi; ++e) dw[e] += p[e];
    }
  }
}

#define JANUS_INSTANTIATE(T)                                                                    \
  template size_t conv_workspace_bytes<T>(ConvPass, const ConvGeometry&, int);                 \
  template void conv2d_forward<T>(const ConvGeometry&, const T*, const T*, const T*, T*, int,  \
                                  void*);                                                       \
  template void conv2d_backward_data<T>(const ConvGeometry&, const T*, const T*, T*, int,      \
                                        void*);                                                 \
  template void conv2d_backward_filter<T>(const ConvGeometry&, const T*, const T*, T*, int,    \
                                          void*);
JANUS_INSTANTIATE(float)
JANUS_INSTANTIATE(double)
#undef JANUS_INSTANTIATE

}  // namespace janus::fast
