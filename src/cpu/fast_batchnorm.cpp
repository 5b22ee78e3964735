// Fast CPU BatchNorm (training forward and backward) on x viewed as rows x C
// (NHWC images: rows = N*H*W, C = channels). See fast_kernels.hpp.
//
// Layout of the work: the inner loops always run over the C contiguous
// channels of one row (vectorisable), never down a column. The rows are cut
// into a fixed set of chunks that depends only on (rows, C), never on the
// thread count; the device's TaskTeam runs whole chunks as tasks (not
// OpenMP: its helpers are awake from the operation before, where a passive
// OpenMP worker would first be woken, see task_team.hpp), each chunk writes
// its own partial statistics, and the partials are combined in chunk order on
// one thread. So the result is deterministic and the same for any thread
// count.
//
// Precision (the reference's class: double accumulators, two-pass variance):
// - forward statistics: inside a chunk the rows go in small blocks that stay
//   in the L1/L2 cache; each block gets an exact two-pass mean and sum of
//   squared deviations in double (mean first, then squared deviations, as
//   the reference does over the whole column), and blocks and then chunks
//   are merged with Chan et al.'s pairwise update
//     M2 = M2_a + M2_b + delta^2 * n_a * n_b / n,
//   which is as stable as the two-pass formula and never forms
//   E[x^2] - E[x]^2. x is read twice from memory (statistics, output) instead
//   of three times.
// - backward: per-chunk double sums of dy and dy * (x - mean), combined in
//   chunk order; dx per element in double.
// - outputs are computed per element in double and rounded once to T.
// - fused ReLU (Device::batchnorm_relu_*): the forward applies max(0, .) to
//   the rounded output in the normalise pass; the backward reads the forward's
//   output y and uses dy where y > 0, else 0, in both the reduction and the dx
//   pass. These are the ReLU kernels' operations on the same values, so the
//   result is bit-identical to the separate passes, with one pass less over
//   the activations each way.
//
// The four row loops (block statistics, normalise, backward sums, dx) are
// cloned per vector width (vector_clones.hpp): on AVX-512 they run eight
// doubles wide instead of SSE2's two, with identical results.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "cpu/batchnorm_eval.hpp"
#include "cpu/column_sums.hpp"
#include "cpu/fast_elementwise.hpp"
#include "cpu/fast_kernels.hpp"
#include "cpu/vector_clones.hpp"

namespace janus::fast {

namespace {

// At most this many chunks (partials are 2 * C doubles each).
constexpr int64_t kMaxChunks = 64;
// Rows of a chunk: at least this many elements, so that small inputs do not
// pay for many partials, and at least kMinChunkRows rows, so that the partials
// (4 C doubles per chunk) never take much more memory than x itself.
constexpr int64_t kMinChunkElems = 1 << 14;
constexpr int64_t kMinChunkRows = 8;
// Elements of one in-cache block of rows (statistics pass of the forward).
constexpr int64_t kBlockElems = 1 << 13;

struct Chunks {
  int64_t count;
  int64_t rows;  // rows per chunk (the last may have fewer)
};

Chunks chunks_of(int64_t rows, int64_t C) {
  const int64_t min_rows = std::max<int64_t>(kMinChunkRows, kMinChunkElems / std::max<int64_t>(C, 1));
  int64_t count = std::min<int64_t>(kMaxChunks, std::max<int64_t>(1, rows / min_rows));
  const int64_t per = (rows + count - 1) / count;
  count = (rows + per - 1) / per;
  return {count, per};
}

// Merges the statistics (n_b, mean_b, m2_b) of a block into (n_a, mean_a,
// m2_a), channel by channel.
void merge(int64_t C, double n_a, double* mean_a, double* m2_a, double n_b, const double* mean_b,
           const double* m2_b) {
  const double n = n_a + n_b, wb = n_b / n, wab = n_a * n_b / n;
  for (int64_t c = 0; c < C; ++c) {
    const double delta = mean_b[c] - mean_a[c];
    mean_a[c] += delta * wb;
    m2_a[c] += m2_b[c] + delta * delta * wab;
  }
}

// dy where y > 0, else +0, widened to double: relu_backward's value. Written
// as a bit mask and not as `y > 0 ? dy : 0`, because the compiler turns the
// select, added into an accumulator, into a conditional update and then
// leaves the loop scalar with a data-dependent branch (10x slower).
template <class T>
JANUS_ALWAYS_INLINE double relu_masked(T y, T dy) {
  const double g = static_cast<double>(dy);
  uint64_t bits;
  std::memcpy(&bits, &g, sizeof bits);
  bits &= -static_cast<uint64_t>(y > T(0));  // all ones where y > 0, else zero
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

// ---- the row loops, one cloned kernel per element type ---------------------

// The column loops keep their accumulators in registers, a group of
// channels at a time (column_sums.hpp): the same sums, bit for bit, as a
// plain row-by-row loop.

// q[c0 + j] = sum of (x - mean)^2 over rows [b0, b1), j < G.
template <int G, class T>
JANUS_ALWAYS_INLINE void column_squared_deviations(int64_t b0, int64_t b1, int64_t C, int64_t c0,
                                                   const T* x, const double* mean, double* q) {
  double acc[G] = {}, m[G];
  for (int j = 0; j < G; ++j) m[j] = mean[c0 + j];
  for (int64_t r = b0; r < b1; ++r) {
    const T* row = x + r * C + c0;
#pragma omp simd
    for (int j = 0; j < G; ++j) {
      const double d = static_cast<double>(row[j]) - m[j];
      acc[j] += d * d;
    }
  }
  for (int j = 0; j < G; ++j) q[c0 + j] = acc[j];
}

// Rows [b0, b1) of a block (cached): s = per-channel mean, q = sum of squared
// deviations from it (two passes).
template <class T>
JANUS_ALWAYS_INLINE void block_stats_rows(int64_t b0, int64_t b1, int64_t C, const T* x, double* s,
                                          double* q) {
  all_column_sums(b0, b1, C, x, s);
  const double inv_nb = 1.0 / static_cast<double>(b1 - b0);
  for (int64_t c = 0; c < C; ++c) s[c] *= inv_nb;
  by_column_groups(
      C, [&](auto g, int64_t c0) { column_squared_deviations<decltype(g)::value>(b0, b1, C, c0, x, s, q); });
}

// y = (x - m) * a + bt for rows [lo, hi), then max(0, .) when relu (on the
// rounded value, as relu_forward does after it).
template <class T>
JANUS_ALWAYS_INLINE void normalize_rows(int64_t lo, int64_t hi, int64_t C, const T* x,
                                        const double* m, const double* a, const double* bt, T* y,
                                        bool relu) {
  for (int64_t r = lo; r < hi; ++r) {
    const T* xr = x + r * C;
    T* yr = y + r * C;
    if (relu) {
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        const T v = static_cast<T>((static_cast<double>(xr[c]) - m[c]) * a[c] + bt[c]);
        yr[c] = v > T(0) ? v : T(0);
      }
    } else {
#pragma omp simd
      for (int64_t c = 0; c < C; ++c)
        yr[c] = static_cast<T>((static_cast<double>(xr[c]) - m[c]) * a[c] + bt[c]);
    }
  }
}

// sdy[c0 + j] += dy, sdyx[c0 + j] += dy * (x - mean) over rows [lo, hi),
// j < G, in registers as column_sums does (column_sums.hpp); dy masked as relu_backward masks
// it where relu_y is given.
template <int G, class T>
JANUS_ALWAYS_INLINE void column_backward_sums(int64_t lo, int64_t hi, int64_t C, int64_t c0,
                                              const T* x, const T* dy, const T* relu_y,
                                              const double* mean, double* sdy, double* sdyx) {
  double a[G], b[G], m[G];
  for (int j = 0; j < G; ++j) {
    a[j] = sdy[c0 + j];
    b[j] = sdyx[c0 + j];
    m[j] = mean[c0 + j];
  }
  for (int64_t r = lo; r < hi; ++r) {
    const T* xr = x + r * C + c0;
    const T* dr = dy + r * C + c0;
    if (relu_y) {
      const T* yr = relu_y + r * C + c0;
#pragma omp simd
      for (int j = 0; j < G; ++j) {
        const double d = relu_masked(yr[j], dr[j]);
        a[j] += d;
        b[j] += d * (static_cast<double>(xr[j]) - m[j]);
      }
    } else {
#pragma omp simd
      for (int j = 0; j < G; ++j) {
        const double d = static_cast<double>(dr[j]);
        a[j] += d;
        b[j] += d * (static_cast<double>(xr[j]) - m[j]);
      }
    }
  }
  for (int j = 0; j < G; ++j) {
    sdy[c0 + j] = a[j];
    sdyx[c0 + j] = b[j];
  }
}

template <class T>
JANUS_ALWAYS_INLINE void backward_sums_rows(int64_t lo, int64_t hi, int64_t C, const T* x,
                                            const T* dy, const T* relu_y, const double* mean,
                                            double* sdy, double* sdyx) {
  by_column_groups(C, [&](auto g, int64_t c0) {
    column_backward_sums<decltype(g)::value>(lo, hi, C, c0, x, dy, relu_y, mean, sdy, sdyx);
  });
}

// dx = a * dy + kx * (x - mean) + b over rows [lo, hi) (dy masked as above).
template <class T>
JANUS_ALWAYS_INLINE void backward_dx_rows(int64_t lo, int64_t hi, int64_t C, const T* x,
                                          const T* dy, const T* relu_y, const double* mean,
                                          const double* a, const double* kx, const double* b,
                                          T* dx) {
  for (int64_t r = lo; r < hi; ++r) {
    const T* xr = x + r * C;
    const T* dr = dy + r * C;
    T* out = dx + r * C;
    if (relu_y) {
      const T* yr = relu_y + r * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        const double d = relu_masked(yr[c], dr[c]);
        out[c] = static_cast<T>(a[c] * d + kx[c] * (static_cast<double>(xr[c]) - mean[c]) + b[c]);
      }
    } else {
#pragma omp simd
      for (int64_t c = 0; c < C; ++c)
        out[c] = static_cast<T>(a[c] * static_cast<double>(dr[c]) +
                                kx[c] * (static_cast<double>(xr[c]) - mean[c]) + b[c]);
    }
  }
}

// The cloned entry points (one per element type; see vector_clones.hpp).
#define JANUS_CLONED_KERNELS(T)                                                                 \
  JANUS_VECTOR_CLONES void block_stats(int64_t b0, int64_t b1, int64_t C, const T* x, double* s, \
                                       double* q) {                                             \
    block_stats_rows(b0, b1, C, x, s, q);                                                       \
  }                                                                                             \
  JANUS_VECTOR_CLONES void normalize(int64_t lo, int64_t hi, int64_t C, const T* x,             \
                                     const double* m, const double* a, const double* bt, T* y,  \
                                     bool relu) {                                               \
    normalize_rows(lo, hi, C, x, m, a, bt, y, relu);                                            \
  }                                                                                             \
  JANUS_VECTOR_CLONES void backward_sums(int64_t lo, int64_t hi, int64_t C, const T* x,         \
                                         const T* dy, const T* relu_y, const double* mean,      \
                                         double* sdy, double* sdyx) {                           \
    backward_sums_rows(lo, hi, C, x, dy, relu_y, mean, sdy, sdyx);                              \
  }                                                                                             \
  JANUS_VECTOR_CLONES void eval_rows(int64_t lo, int64_t hi, int64_t C, const T* x,             \
                                     const double* scale, const T* mean, const T* beta, T* y) { \
    cpu::batchnorm_eval_rows(hi - lo, C, x + lo * C, scale, mean, beta, y + lo * C);            \
  }                                                                                             \
  JANUS_VECTOR_CLONES void backward_dx(int64_t lo, int64_t hi, int64_t C, const T* x,           \
                                       const T* dy, const T* relu_y, const double* mean,        \
                                       const double* a, const double* kx, const double* b,      \
                                       T* dx) {                                                 \
    backward_dx_rows(lo, hi, C, x, dy, relu_y, mean, a, kx, b, dx);                             \
  }
JANUS_CLONED_KERNELS(float)
JANUS_CLONED_KERNELS(double)
#undef JANUS_CLONED_KERNELS

// Runs fn(lo, hi) on contiguous row slices, a few per thread (or on the
// caller when small). Each slice writes its own rows of the output.
template <class Fn>
void row_slices(TaskTeam& team, int64_t rows, int64_t C, Fn&& fn) {
  const int threads = team.threads();
  if (threads <= 1 || rows * C < 2 * kMinChunkElems || rows < 2) {
    fn(int64_t{0}, rows);
    return;
  }
  const int64_t per = (rows + 4 * threads - 1) / (4 * threads);
  team.run((rows + per - 1) / per, [&](int64_t t) {
    const int64_t lo = t * per;
    fn(lo, std::min(lo + per, rows));
  });
}

}  // namespace

size_t batchnorm_workspace_bytes(int64_t rows, int64_t C) {
  const Chunks ch = chunks_of(rows, C);
  // Forward: per chunk mean, m2 and two block scratch vectors; backward uses
  // the first two. Plus 4 C doubles of per-channel coefficients.
  return sizeof(double) * static_cast<size_t>(C) * static_cast<size_t>(4 * ch.count + 4);
}

template <class T>
void batchnorm_forward_train(int64_t rows, int64_t C, const T* x, const T* gamma, const T* beta,
                             double momentum, double eps, T* running_mean, T* running_var,
                             T* saved_mean, T* saved_invstd, T* y, TaskTeam& team, void* workspace,
                             bool relu) {
  const Chunks ch = chunks_of(rows, C);
  double* ws = static_cast<double*>(workspace);
  const int64_t block = std::max<int64_t>(1, kBlockElems / C);

  team.run(ch.count, [&](int64_t k) {
    double* mean = ws + (4 * k) * C;
    double* m2 = mean + C;
    double* bmean = m2 + C;
    double* bm2 = bmean + C;
    const int64_t lo = k * ch.rows, hi = std::min(rows, lo + ch.rows);
    double n_acc = 0.0;
    for (int64_t b0 = lo; b0 < hi; b0 += block) {
      const int64_t b1 = std::min(hi, b0 + block);
      const double nb = static_cast<double>(b1 - b0);
      // Two passes over the (cached) block: mean, then squared deviations.
      double* s = n_acc == 0.0 ? mean : bmean;
      double* q = n_acc == 0.0 ? m2 : bm2;
      block_stats(b0, b1, C, x, s, q);
      if (n_acc != 0.0) merge(C, n_acc, mean, m2, nb, bmean, bm2);
      n_acc += nb;
    }
  });

  // Chunks in order (chunk 0 holds the running result).
  double* mean = ws;
  double* m2 = ws + C;
  double n_acc = static_cast<double>(std::min(rows, ch.rows));
  for (int64_t k = 1; k < ch.count; ++k) {
    const int64_t lo = k * ch.rows, hi = std::min(rows, lo + ch.rows);
    merge(C, n_acc, mean, m2, static_cast<double>(hi - lo), ws + 4 * k * C, ws + (4 * k + 1) * C);
    n_acc += static_cast<double>(hi - lo);
  }

  const double n = static_cast<double>(rows);
  // The running variance estimates the population variance: unbiased (n-1).
  const double unbias = n / (n - 1.0);
  double* a = ws + 4 * ch.count * C;  // gamma * invstd
  double* m = a + C;                  // mean
  double* bt = m + C;                 // beta
  for (int64_t c = 0; c < C; ++c) {
    const double var = m2[c] / n;
    const double invstd = 1.0 / std::sqrt(var + eps);
    m[c] = mean[c];
    a[c] = static_cast<double>(gamma[c]) * invstd;
    bt[c] = static_cast<double>(beta[c]);
    saved_mean[c] = static_cast<T>(mean[c]);
    saved_invstd[c] = static_cast<T>(invstd);
    running_mean[c] = static_cast<T>((1.0 - momentum) * running_mean[c] + momentum * mean[c]);
    running_var[c] = static_cast<T>((1.0 - momentum) * running_var[c] + momentum * var * unbias);
  }

  row_slices(team, rows, C,
             [&](int64_t lo, int64_t hi) { normalize(lo, hi, C, x, m, a, bt, y, relu); });
}

template <class T>
void batchnorm_backward(int64_t rows, int64_t C, const T* x, const T* dy, const T* gamma,
                        const T* saved_mean, const T* saved_invstd, T* dx, T* dgamma, T* dbeta,
                        TaskTeam& team, void* workspace, const T* relu_y) {
  const Chunks ch = chunks_of(rows, C);
  double* ws = static_cast<double*>(workspace);
  double* mean = ws + 4 * ch.count * C;
  for (int64_t c = 0; c < C; ++c) mean[c] = static_cast<double>(saved_mean[c]);

  team.run(ch.count, [&](int64_t k) {
    double* sdy = ws + (2 * k) * C;
    double* sdyx = sdy + C;
    std::fill(sdy, sdy + 2 * C, 0.0);
    const int64_t lo = k * ch.rows, hi = std::min(rows, lo + ch.rows);
    backward_sums(lo, hi, C, x, dy, relu_y, mean, sdy, sdyx);
  });
  // Chunks in order.
  double* sdy = ws;
  double* sdyx = ws + C;
  for (int64_t k = 1; k < ch.count; ++k) {
    const double* p = ws + 2 * k * C;
    for (int64_t c = 0; c < C; ++c) {
      sdy[c] += p[c];
      sdyx[c] += p[C + c];
    }
  }

  // dx = gamma * invstd / n * (n * dy - sum_dy - xhat * sum_dy_xhat)
  //    = a * dy + k * (x - mean) + b.
  const double n = static_cast<double>(rows);
  double* a = mean + C;
  double* kx = a + C;
  double* b = kx + C;
  for (int64_t c = 0; c < C; ++c) {
    const double invstd = static_cast<double>(saved_invstd[c]);
    const double sum_dy_xhat = sdyx[c] * invstd;
    a[c] = static_cast<double>(gamma[c]) * invstd;
    b[c] = -a[c] * sdy[c] / n;
    kx[c] = -a[c] * invstd * sum_dy_xhat / n;
    dgamma[c] = static_cast<T>(sum_dy_xhat);
    dbeta[c] = static_cast<T>(sdy[c]);
  }

  row_slices(team, rows, C, [&](int64_t lo, int64_t hi) {
    backward_dx(lo, hi, C, x, dy, relu_y, mean, a, kx, b, dx);
  });
}

template <class T>
void batchnorm_forward_eval(int64_t rows, int64_t C, const T* x, const T* gamma, const T* beta,
                            const T* running_mean, const T* running_var, double eps, T* y,
                            TaskTeam& team, void* workspace, bool relu) {
  double* scale = static_cast<double*>(workspace);
  cpu::batchnorm_eval_scale(C, gamma, running_var, eps, scale);
  row_slices(team, rows, C, [&](int64_t lo, int64_t hi) {
    eval_rows(lo, hi, C, x, scale, running_mean, beta, y);
    // The ReLU on each slice right after its BatchNorm, while still in cache.
    if (relu) relu_forward((hi - lo) * C, y + lo * C, y + lo * C);
  });
}

#define JANUS_INSTANTIATE(T)                                                                   \
  template void batchnorm_forward_train<T>(int64_t, int64_t, const T*, const T*, const T*,    \
                                           double, double, T*, T*, T*, T*, T*, TaskTeam&,      \
                                           void*, bool);                                      \
  template void batchnorm_backward<T>(int64_t, int64_t, const T*, const T*, const T*,         \
                                      const T*, const T*, T*, T*, T*, TaskTeam&, void*,        \
                                      const T*);                                               \
  template void batchnorm_forward_eval<T>(int64_t, int64_t, const T*, const T*, const T*,     \
                                          const T*, const T*, double, T*, TaskTeam&, void*,    \
                                          bool);
JANUS_INSTANTIATE(float)
JANUS_INSTANTIATE(double)
#undef JANUS_INSTANTIATE

}  // namespace janus::fast
