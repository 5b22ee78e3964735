// Batch normalisation over the rows of x (rows x C).
//
// Per-channel statistics come from deterministic two-pass column reductions
// (mean first, then the sum of squared deviations from it, so no catastrophic
// cancellation): blocks of 32 x 8 threads cover 32 channels of one chunk of
// rows, accumulate in double, write per-chunk partials, and a second kernel
// adds the partials in chunk order (no atomics). The statistics stay in double
// for the normalisation itself (as in the CPU backend): with few rows the
// variance can be tiny and 1/std large, and a float-rounded mean would be
// amplified by it.
#include "cuda/cuda_compat.hpp"

#include <cmath>

#include "cuda/cuda_check.hpp"
#include "cuda/kernel_common.cuh"
#include "cuda/kernels.hpp"

namespace janus::cuda_kernels {

namespace {

// mode 0: p1 += x
// mode 1: p1 += (x - mean)^2
// mode 2: p1 += dy ; p2 += dy * (x - mean) * invstd
// mean / invstd are double (mode 0 ignores them). For mode 2 they are the
// saved float statistics widened by the caller's kernel (see bn_widen_kernel).
__global__ void bn_partial_kernel(int mode, const float* x, const float* dy, const double* mean,
                                  const double* invstd, int64_t rows, int64_t cols, int64_t chunk_rows,
                                  double* p1, double* p2) {
  __shared__ double s1[kColRows][kColTile + 1];
  __shared__ double s2[kColRows][kColTile + 1];
  const int64_t col = static_cast<int64_t>(blockIdx.x) * kColTile + threadIdx.x;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * chunk_rows;
  const int64_t r1 = r0 + chunk_rows < rows ? r0 + chunk_rows : rows;
  double a1 = 0.0, a2 = 0.0;
  if (col < cols) {
    const double mu = mode == 0 ? 0.0 : mean[col];
    const double is = mode == 2 ? invstd[col] : 0.0;
    for (int64_t r = r0 + threadIdx.y; r < r1; r += kColRows) {
      const double v = static_cast<double>(x[r * cols + col]);
      if (mode == 0) {
        a1 += v;
      } else if (mode == 1) {
        const double dv = v - mu;
        a1 += dv * dv;
      } else {
        const double g = static_cast<double>(dy[r * cols + col]);
        a1 += g;
        a2 += g * ((v - mu) * is);
      }
    }
  }
  s1[threadIdx.y][threadIdx.x] = a1;
  s2[threadIdx.y][threadIdx.x] = a2;
  __syncthreads();
  if (threadIdx.y == 0 && col < cols) {
    double t1 = 0.0, t2 = 0.0;
    for (int k = 0; k < kColRows; ++k) {
      t1 += s1[k][threadIdx.x];
      t2 += s2[k][threadIdx.x];
    }
    p1[static_cast<int64_t>(blockIdx.y) * cols + col] = t1;
    if (mode == 2) p2[static_cast<int64_t>(blockIdx.y) * cols + col] = t2;
  }
}

__device__ inline double sum_chunks(const double* p, int64_t chunks, int64_t cols, int64_t c) {
  double t = 0.0;
  for (int64_t k = 0; k < chunks; ++k) t += p[k * cols + c];
  return t;
}

// mean_d[c] (double) and saved_mean[c] (its float rounding).
__global__ void bn_mean_kernel(const double* p1, int64_t chunks, int64_t rows, int64_t cols, double* mean_d,
                               float* saved_mean) {
  JANUS_KERNEL_LOOP(c, cols) {
    const double m = sum_chunks(p1, chunks, cols, c) / static_cast<double>(rows);
    mean_d[c] = m;
    saved_mean[c] = static_cast<float>(m);
  }
}

__global__ void bn_var_kernel(const double* p1, int64_t chunks, int64_t rows, int64_t cols, double momentum,
                              double eps, const double* mean_d, double* invstd_d, float* saved_invstd,
                              float* running_mean, float* running_var) {
  JANUS_KERNEL_LOOP(c, cols) {
    const double var = sum_chunks(p1, chunks, cols, c) / static_cast<double>(rows);
    const double is = 1.0 / sqrt(var + eps);
    invstd_d[c] = is;
    saved_invstd[c] = static_cast<float>(is);
    // rows == 1: the unbiased estimate is undefined; keep the biased one.
    const double unbias = rows > 1 ? static_cast<double>(rows) / static_cast<double>(rows - 1) : 1.0;
    running_mean[c] = static_cast<float>((1.0 - momentum) * running_mean[c] + momentum * mean_d[c]);
    running_var[c] = static_cast<float>((1.0 - momentum) * running_var[c] + momentum * var * unbias);
  }
}

// y = gamma * (x - mean) * invstd + beta, in double, rounded once.
__global__ void bn_apply_train_kernel(const float* x, const float* gamma, const float* beta, const double* mean_d,
                                      const double* invstd_d, float* y, int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  JANUS_KERNEL_LOOP(i, n) {
    const int64_t c = i % cols;
    y[i] = static_cast<float>(static_cast<double>(gamma[c]) * (static_cast<double>(x[i]) - mean_d[c]) * invstd_d[c] +
                              static_cast<double>(beta[c]));
  }
}

// y = gamma / sqrt(running_var + eps) * (x - running_mean) + beta, in double.
__global__ void bn_apply_eval_kernel(const float* x, const float* gamma, const float* beta, const float* rmean,
                                     const float* rvar, double eps, float* y, int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  JANUS_KERNEL_LOOP(i, n) {
    const int64_t c = i % cols;
    const double scale = static_cast<double>(gamma[c]) / sqrt(static_cast<double>(rvar[c]) + eps);
    y[i] = static_cast<float>(scale * (static_cast<double>(x[i]) - static_cast<double>(rmean[c])) +
                              static_cast<double>(beta[c]));
  }
}

__global__ void bn_widen_kernel(const float* a, const float* b, double* ad, double* bd, int64_t cols) {
  JANUS_KERNEL_LOOP(c, cols) {
    ad[c] = static_cast<double>(a[c]);
    bd[c] = static_cast<double>(b[c]);
  }
}

// Final sums: sum_dy -> dbeta, sum_dy_xhat -> dgamma (kept in double as well).
__global__ void bn_grad_params_kernel(const double* p1, const double* p2, int64_t chunks, int64_t cols,
                                      double* sum_dy, double* sum_dy_xhat, float* dgamma, float* dbeta) {
  JANUS_KERNEL_LOOP(c, cols) {
    const double s1 = sum_chunks(p1, chunks, cols, c), s2 = sum_chunks(p2, chunks, cols, c);
    sum_dy[c] = s1;
    sum_dy_xhat[c] = s2;
    dbeta[c] = static_cast<float>(s1);
    dgamma[c] = static_cast<float>(s2);
  }
}

// dx = gamma * invstd / rows * (rows * dy - sum_dy - xhat * sum_dy_xhat), in double.
__global__ void bn_dx_kernel(const float* x, const float* dy, const float* gamma, const double* mean_d,
                             const double* invstd_d, const double* sum_dy, const double* sum_dy_xhat, float* dx,
                             int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  const double nr = static_cast<double>(rows);
  JANUS_KERNEL_LOOP(i, n) {
    const int64_t c = i % cols;
    const double is = invstd_d[c];
    const double xhat = (static_cast<double>(x[i]) - mean_d[c]) * is;
    dx[i] = static_cast<float>(static_cast<double>(gamma[c]) * is / nr *
                               (nr * static_cast<double>(dy[i]) - sum_dy[c] - xhat * sum_dy_xhat[c]));
  }
}

dim3 col_grid(int64_t rows, int64_t cols) {
  return dim3(static_cast<unsigned>((cols + kColTile - 1) / kColTile), static_cast<unsigned>(col_chunks(rows)));
}

// Workspace layout (doubles): p1[chunks*cols] p2[chunks*cols] a[cols] b[cols] c[cols] d[cols].
struct Ws {
  double *p1, *p2, *a, *b, *c, *d;
};
Ws split(double* w, int64_t rows, int64_t cols) {
  const int64_t pc = col_chunks(rows) * cols;
  return Ws{w, w + pc, w + 2 * pc, w + 2 * pc + cols, w + 2 * pc + 2 * cols, w + 2 * pc + 3 * cols};
}

}  // namespace

int64_t bn_workspace_count(int64_t rows, int64_t cols) { return 2 * col_chunks(rows) * cols + 4 * cols; }

void batchnorm_forward_train(const float* x, const float* gamma, const float* beta, double momentum, double eps,
                             float* running_mean, float* running_var, float* saved_mean, float* saved_invstd,
                             float* y, int64_t rows, int64_t cols, double* workspace, cudaStream_t s) {
  if (rows <= 0 || cols <= 0) return;
  const int64_t chunks = col_chunks(rows);
  const int64_t chunk_rows = (rows + chunks - 1) / chunks;
  const Ws w = split(workspace, rows, cols);
  const dim3 block(kColTile, kColRows);
  const float* no_f = nullptr;
  const double* no_d = nullptr;
  JANUS_LAUNCH(bn_partial_kernel, col_grid(rows, cols), block, 0, s, 0, x, no_f, no_d, no_d, rows, cols,
               chunk_rows, w.p1, w.p2);
  JANUS_CUDA_CHECK_LAUNCH("bn_partial_kernel (mean)");
  JANUS_LAUNCH(bn_mean_kernel, blocks_for(cols), kThreads, 0, s, static_cast<const double*>(w.p1), chunks, rows,
               cols, w.a, saved_mean);
  JANUS_CUDA_CHECK_LAUNCH("bn_mean_kernel");
  JANUS_LAUNCH(bn_partial_kernel, col_grid(rows, cols), block, 0, s, 1, x, no_f, static_cast<const double*>(w.a),
               no_d, rows, cols, chunk_rows, w.p1, w.p2);
  JANUS_CUDA_CHECK_LAUNCH("bn_partial_kernel (var)");
  JANUS_LAUNCH(bn_var_kernel, blocks_for(cols), kThreads, 0, s, static_cast<const double*>(w.p1), chunks, rows,
               cols, momentum, eps, static_cast<const double*>(w.a), w.b,
               saved_invstd, running_mean, running_var);
  JANUS_CUDA_CHECK_LAUNCH("bn_var_kernel");
  JANUS_LAUNCH(bn_apply_train_kernel, blocks_for(rows * cols), kThreads, 0, s, x, gamma, beta,
               static_cast<const double*>(w.a), static_cast<const double*>(w.b), y, rows, cols);
  JANUS_CUDA_CHECK_LAUNCH("bn_apply_train_kernel");
}

void batchnorm_forward_eval(const float* x, const float* gamma, const float* beta, const float* running_mean,
                            const float* running_var, double eps, float* y, int64_t rows, int64_t cols,
                            cudaStream_t s) {
  if (rows <= 0 || cols <= 0) return;
  JANUS_LAUNCH(bn_apply_eval_kernel, blocks_for(rows * cols), kThreads, 0, s, x, gamma, beta, running_mean,
               running_var, eps, y, rows, cols);
  JANUS_CUDA_CHECK_LAUNCH("bn_apply_eval_kernel");
}

void batchnorm_backward(const float* x, const float* dy, const float* gamma, const float* saved_mean,
                        const float* saved_invstd, float* dx, float* dgamma, float* dbeta, int64_t rows,
                        int64_t cols, double* workspace, cudaStream_t s) {
  if (rows <= 0 || cols <= 0) return;
  const int64_t chunks = col_chunks(rows);
  const int64_t chunk_rows = (rows + chunks - 1) / chunks;
  const Ws w = split(workspace, rows, cols);
  const dim3 block(kColTile, kColRows);
  JANUS_LAUNCH(bn_widen_kernel, blocks_for(cols), kThreads, 0, s, saved_mean, saved_invstd, w.a, w.b, cols);
  JANUS_CUDA_CHECK_LAUNCH("bn_widen_kernel");
  JANUS_LAUNCH(bn_partial_kernel, col_grid(rows, cols), block, 0, s, 2, x, dy, static_cast<const double*>(w.a),
               static_cast<const double*>(w.b), rows, cols, chunk_rows, w.p1, w.p2);
  JANUS_CUDA_CHECK_LAUNCH("bn_partial_kernel (backward)");
  JANUS_LAUNCH(bn_grad_params_kernel, blocks_for(cols), kThreads, 0, s, static_cast<const double*>(w.p1),
               static_cast<const double*>(w.p2), chunks, cols, w.c, w.d, dgamma, dbeta);
  JANUS_CUDA_CHECK_LAUNCH("bn_grad_params_kernel");
  JANUS_LAUNCH(bn_dx_kernel, blocks_for(rows * cols), kThreads, 0, s, x, dy, gamma, static_cast<const double*>(w.a),
               static_cast<const double*>(w.b), static_cast<const double*>(w.c), static_cast<const double*>(w.d), dx,
               rows, cols);
  JANUS_CUDA_CHECK_LAUNCH("bn_dx_kernel");
}

}  // namespace janus::cuda_kernels
