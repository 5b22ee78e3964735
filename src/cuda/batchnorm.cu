// Batch normalisation over the rows of x (rows x C): per-channel statistics
// with deterministic two-pass column reductions (mean first, then the sum of
// squared deviations, so no catastrophic cancellation), double accumulators,
// per-chunk partials summed in chunk order (no atomics).
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
__global__ void bn_partial_kernel(int mode, const float* x, const float* dy, const float* mean,
                                  const float* invstd, int64_t rows, int64_t cols, int64_t chunk_rows,
                                  double* p1, double* p2) {
  __shared__ double s1[kColRows][kColTile + 1];
  __shared__ double s2[kColRows][kColTile + 1];
  const int64_t col = static_cast<int64_t>(blockIdx.x) * kColTile + threadIdx.x;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * chunk_rows;
  const int64_t r1 = r0 + chunk_rows < rows ? r0 + chunk_rows : rows;
  double a1 = 0.0, a2 = 0.0;
  if (col < cols) {
    const float mu = mode == 0 ? 0.0f : mean[col];
    const float is = mode == 2 ? invstd[col] : 0.0f;
    for (int64_t r = r0 + threadIdx.y; r < r1; r += kColRows) {
      const float v = x[r * cols + col];
      if (mode == 0) {
        a1 += static_cast<double>(v);
      } else if (mode == 1) {
        const double dv = static_cast<double>(v) - static_cast<double>(mu);
        a1 += dv * dv;
      } else {
        const float g = dy[r * cols + col];
        a1 += static_cast<double>(g);
        a2 += static_cast<double>(g) * ((static_cast<double>(v) - mu) * is);
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

__global__ void bn_mean_kernel(const double* p1, int64_t chunks, int64_t rows, int64_t cols,
                               float* saved_mean) {
  for (int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; c < cols;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x)
    saved_mean[c] = static_cast<float>(sum_chunks(p1, chunks, cols, c) / static_cast<double>(rows));
}

__global__ void bn_var_kernel(const double* p1, int64_t chunks, int64_t rows, int64_t cols, float momentum,
                              float eps, const float* saved_mean, float* saved_invstd, float* running_mean,
                              float* running_var) {
  for (int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; c < cols;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const double var = sum_chunks(p1, chunks, cols, c) / static_cast<double>(rows);
    saved_invstd[c] = static_cast<float>(1.0 / sqrt(var + static_cast<double>(eps)));
    const double unbiased = rows > 1 ? var * static_cast<double>(rows) / static_cast<double>(rows - 1) : var;
    const double mom = static_cast<double>(momentum);
    running_mean[c] = static_cast<float>((1.0 - mom) * running_mean[c] + mom * saved_mean[c]);
    running_var[c] = static_cast<float>((1.0 - mom) * running_var[c] + mom * unbiased);
  }
}

// y = gamma * (x - mean) * invstd + beta ; eval mode passes invstd = null and
// the running variance instead (invstd computed on the fly).
__global__ void bn_apply_kernel(const float* x, const float* gamma, const float* beta, const float* mean,
                                const float* invstd, const float* var, float eps, float* y, int64_t rows,
                                int64_t cols) {
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c = i % cols;
    const float is = invstd ? invstd[c] : 1.0f / sqrtf(var[c] + eps);
    y[i] = gamma[c] * ((x[i] - mean[c]) * is) + beta[c];
  }
}

__global__ void bn_grad_params_kernel(const double* p1, const double* p2, int64_t chunks, int64_t cols,
                                      float* dgamma, float* dbeta) {
  for (int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; c < cols;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    dbeta[c] = static_cast<float>(sum_chunks(p1, chunks, cols, c));
    dgamma[c] = static_cast<float>(sum_chunks(p2, chunks, cols, c));
  }
}

// dx = gamma * invstd / rows * (rows * dy - dbeta - xhat * dgamma)
__global__ void bn_dx_kernel(const float* x, const float* dy, const float* gamma, const float* mean,
                             const float* invstd, const float* dgamma, const float* dbeta, float* dx,
                             int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  const float inv_rows = 1.0f / static_cast<float>(rows);
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c = i % cols;
    const float is = invstd[c];
    const float xhat = (x[i] - mean[c]) * is;
    dx[i] = gamma[c] * is * (dy[i] - (dbeta[c] + xhat * dgamma[c]) * inv_rows);
  }
}

dim3 col_grid(int64_t rows, int64_t cols) {
  return dim3(static_cast<unsigned>((cols + kColTile - 1) / kColTile), static_cast<unsigned>(col_chunks(rows)));
}

}  // namespace

int64_t bn_workspace_count(int64_t rows, int64_t cols) { return 2 * col_chunks(rows) * cols; }

void batchnorm_forward_train(const float* x, const float* gamma, const float* beta, float momentum, float eps,
                             float* running_mean, float* running_var, float* saved_mean, float* saved_invstd,
                             float* y, int64_t rows, int64_t cols, double* workspace, cudaStream_t s) {
  if (rows <= 0 || cols <= 0) return;
  const int64_t chunks = col_chunks(rows);
  const int64_t chunk_rows = (rows + chunks - 1) / chunks;
  double* p1 = workspace;
  double* p2 = workspace + chunks * cols;
  const dim3 block(kColTile, kColRows);
  const float* no_f = nullptr;
  JANUS_LAUNCH(bn_partial_kernel, col_grid(rows, cols), block, 0, s, 0, x, no_f, no_f, no_f, rows, cols,
               chunk_rows, p1, p2);
  JANUS_CUDA_CHECK_LAUNCH("bn_partial_kernel (mean)");
  JANUS_LAUNCH(bn_mean_kernel, blocks_for(cols), kThreads, 0, s, static_cast<const double*>(p1), chunks, rows,
               cols, saved_mean);
  JANUS_CUDA_CHECK_LAUNCH("bn_mean_kernel");
  JANUS_LAUNCH(bn_partial_kernel, col_grid(rows, cols), block, 0, s, 1, x, no_f,
               static_cast<const float*>(saved_mean), no_f, rows, cols, chunk_rows, p1, p2);
  JANUS_CUDA_CHECK_LAUNCH("bn_partial_kernel (var)");
  JANUS_LAUNCH(bn_var_kernel, blocks_for(cols), kThreads, 0, s, static_cast<const double*>(p1), chunks, rows,
               cols, momentum, eps, static_cast<const float*>(saved_mean), saved_invstd, running_mean,
               running_var);
  JANUS_CUDA_CHECK_LAUNCH("bn_var_kernel");
  JANUS_LAUNCH(bn_apply_kernel, blocks_for(rows * cols), kThreads, 0, s, x, gamma, beta,
               static_cast<const float*>(saved_mean), static_cast<const float*>(saved_invstd), no_f, eps, y,
               rows, cols);
  JANUS_CUDA_CHECK_LAUNCH("bn_apply_kernel");
}

void batchnorm_forward_eval(const float* x, const float* gamma, const float* beta, const float* running_mean,
                            const float* running_var, float eps, float* y, int64_t rows, int64_t cols,
                            cudaStream_t s) {
  if (rows <= 0 || cols <= 0) return;
  const float* no_f = nullptr;
  JANUS_LAUNCH(bn_apply_kernel, blocks_for(rows * cols), kThreads, 0, s, x, gamma, beta, running_mean, no_f,
               running_var, eps, y, rows, cols);
  JANUS_CUDA_CHECK_LAUNCH("bn_apply_kernel");
}

void batchnorm_backward(const float* x, const float* dy, const float* gamma, const float* saved_mean,
                        const float* saved_invstd, float* dx, float* dgamma, float* dbeta, int64_t rows,
                        int64_t cols, double* workspace, cudaStream_t s) {
  if (rows <= 0 || cols <= 0) return;
  const int64_t chunks = col_chunks(rows);
  const int64_t chunk_rows = (rows + chunks - 1) / chunks;
  double* p1 = workspace;
  double* p2 = workspace + chunks * cols;
  const dim3 block(kColTile, kColRows);
  JANUS_LAUNCH(bn_partial_kernel, col_grid(rows, cols), block, 0, s, 2, x, dy, saved_mean, saved_invstd, rows,
               cols, chunk_rows, p1, p2);
  JANUS_CUDA_CHECK_LAUNCH("bn_partial_kernel (backward)");
  JANUS_LAUNCH(bn_grad_params_kernel, blocks_for(cols), kThreads, 0, s, static_cast<const double*>(p1),
               static_cast<const double*>(p2), chunks, cols, dgamma, dbeta);
  JANUS_CUDA_CHECK_LAUNCH("bn_grad_params_kernel");
  JANUS_LAUNCH(bn_dx_kernel, blocks_for(rows * cols), kThreads, 0, s, x, dy, gamma, saved_mean, saved_invstd,
               static_cast<const float*>(dgamma), static_cast<const float*>(dbeta), dx, rows, cols);
  JANUS_CUDA_CHECK_LAUNCH("bn_dx_kernel");
}

}  // namespace janus::cuda_kernels
