// Batch normalisation over the rows of x (rows x C), optionally fused with
// the ReLU that follows it (Device::batchnorm_relu_*, the pair the fusion
// pass of src/nn/fusion.cpp marks).
//
// Every pass runs on the same 2-D grid: blocks of 32 x 8 threads cover 32
// channels of one chunk of rows (col_chunks; the plan depends only on the
// shape, so results are deterministic and no atomics are used).
//
// Training forward, two kernels, x read twice:
//   1. bn_stats_kernel: per chunk and channel, (count, mean, M2) in one read
//      of x. Each thread runs Welford's update in double over its rows; the 8
//      threads of a channel and then the chunks are merged with Chan et al.'s
//      pairwise formula. Why Welford/Chan and not a shifted sum of squares:
//      its error does not depend on how far the shift is from the mean (a
//      sum of squares about a bad shift cancels catastrophically), it needs
//      no extra read to pick a shift, and it is what cuDNN and PyTorch's
//      batch_norm_collect_statistics use. In double over float data it stays
//      within a few float ulp of the CPU reference's two-pass statistics.
//   2. bn_apply_train_kernel: every block first merges the chunk partials of
//      its 32 channels (the same fixed order in every block, so all blocks
//      agree bit for bit); the blocks of chunk 0 write saved_mean,
//      saved_invstd and the running statistics; then y = gamma (x - mean)
//      invstd + beta, in double, rounded once, and ReLU'd when fused.
// Backward, two kernels, x and dy read twice:
//   1. bn_grad_sums_kernel: per chunk, sum dy and sum dy * xhat (dy masked by
//      y > 0 when the ReLU is fused: ReLU's backward reads its output).
//   2. bn_dx_kernel: every block adds the chunk sums of its channels, chunk 0
//      writes dgamma and dbeta, and dx = gamma invstd / rows (rows dy - sum_dy
//      - xhat sum_dy_xhat), in double, with the same ReLU mask.
// The statistics stay in double for the normalisation itself (as in the CPU
// backend): with few rows the variance can be tiny and 1/std large, and a
// float-rounded mean would be amplified by it.
// x, y, dy, dx are of a storage type T (float or __nv_bfloat16), read as
// float; a stored bf16 value is the float kernel's float result rounded once.
// Everything per channel (gamma, beta, statistics, their gradients) is float.
#include "cuda/cuda_compat.hpp"

#include <cmath>

#include "cuda/cuda_check.hpp"
#include "cuda/kernel_common.cuh"
#include "cuda/kernels.hpp"
#include "janus/activation_functions.hpp"

namespace janus::cuda_kernels {

namespace {

using Relu = activation_table::ReLU;

// Count, mean and sum of squared deviations of a set of values (Welford).
// Plain data (no constructors), so it can live in __shared__ memory.
struct MomentStats {
  double n, mean, m2;
  __device__ void add(double v) {
    n += 1.0;
    const double d = v - mean;
    mean += d / n;
    m2 += d * (v - mean);
  }
  // Chan, Golub & LeVeque's pairwise combination of two disjoint sets.
  __device__ void merge(const MomentStats& o) {
    if (o.n == 0.0) return;
    if (n == 0.0) {
      *this = o;
      return;
    }
    const double total = n + o.n;
    const double d = o.mean - mean;
    mean += d * (o.n / total);
    m2 += o.m2 + d * d * (n * o.n / total);
    n = total;
  }
};

// The two per-channel sums of the backward pass.
struct GradSums {
  double dy, dy_xhat;
  __device__ void merge(const GradSums& o) {
    dy += o.dy;
    dy_xhat += o.dy_xhat;
  }
};

// The rows of this block's chunk and the channel of this thread.
struct ChunkSpan {
  int64_t col, begin, end;
};
__device__ inline ChunkSpan chunk_span(int64_t rows, int64_t cols, int64_t chunk_rows) {
  const int64_t begin = static_cast<int64_t>(blockIdx.y) * chunk_rows;
  const int64_t end = begin + chunk_rows < rows ? begin + chunk_rows : rows;
  return ChunkSpan{static_cast<int64_t>(blockIdx.x) * kColTile + threadIdx.x, begin, end};
}

// Merges the values of the kColRows threads of each channel (threadIdx.y =
// 0, 1, ... in order) through `stage`; the total is returned to every thread
// of the channel. Called by all threads of the block.
template <class Acc>
__device__ Acc merge_over_rows(Acc mine, Acc (&stage)[kColRows][kColTile + 1]) {
  stage[threadIdx.y][threadIdx.x] = mine;
  __syncthreads();
  Acc total = stage[0][threadIdx.x];
  for (int k = 1; k < kColRows; ++k) total.merge(stage[k][threadIdx.x]);
  __syncthreads();  // stage may be reused by the caller
  return total;
}

// The merge of all chunk partials of this thread's channel (partials is
// chunks x cols; the grid has one row of blocks per chunk, so chunks =
// gridDim.y): thread row y takes chunks y, y + kColRows, ..., then the rows
// are merged in order. Every block computes exactly the same value.
template <class Acc>
__device__ Acc merge_chunks(const Acc* partials, int64_t chunks, int64_t cols, int64_t col, Acc zero,
                            Acc (&stage)[kColRows][kColTile + 1]) {
  Acc mine = zero;
  if (col < cols)
    for (int64_t k = threadIdx.y; k < chunks; k += kColRows) mine.merge(partials[k * cols + col]);
  return merge_over_rows(mine, stage);
}

template <class T>
__global__ void bn_stats_kernel(const T* x, int64_t rows, int64_t cols, int64_t chunk_rows,
                                MomentStats* partials) {
  __shared__ MomentStats stage[kColRows][kColTile + 1];
  const ChunkSpan s = chunk_span(rows, cols, chunk_rows);
  MomentStats mine{0.0, 0.0, 0.0};
  if (s.col < cols)
    for (int64_t r = s.begin + threadIdx.y; r < s.end; r += kColRows)
      mine.add(static_cast<double>(to_float(x[r * cols + s.col])));
  const MomentStats chunk = merge_over_rows(mine, stage);
  if (threadIdx.y == 0 && s.col < cols) partials[static_cast<int64_t>(blockIdx.y) * cols + s.col] = chunk;
}

// y = gamma * (x - mean) * invstd + beta in double, rounded once; relu'd if fused.
__device__ inline float bn_output(float x, double gamma, double mean, double invstd, double beta, bool relu) {
  const float y = static_cast<float>(gamma * (static_cast<double>(x) - mean) * invstd + beta);
  return relu ? Relu::forward(y, 0.0f) : y;
}

template <class T>
__global__ void bn_apply_train_kernel(const T* x, const float* gamma, const float* beta,
                                      const MomentStats* partials, double momentum, double eps, bool relu,
                                      float* running_mean, float* running_var, float* saved_mean,
                                      float* saved_invstd, T* y, int64_t rows, int64_t cols,
                                      int64_t chunk_rows) {
  __shared__ MomentStats stage[kColRows][kColTile + 1];
  const ChunkSpan s = chunk_span(rows, cols, chunk_rows);
  const MomentStats st =
      merge_chunks(partials, static_cast<int64_t>(gridDim.y), cols, s.col, MomentStats{0.0, 0.0, 0.0}, stage);
  if (s.col >= cols) return;  // after the last barrier
  const double var = st.m2 / static_cast<double>(rows);
  const double invstd = 1.0 / sqrt(var + eps);
  if (blockIdx.y == 0 && threadIdx.y == 0) {
    saved_mean[s.col] = static_cast<float>(st.mean);
    saved_invstd[s.col] = static_cast<float>(invstd);
    // rows == 1: the unbiased estimate is undefined; keep the biased one.
    const double unbias = rows > 1 ? static_cast<double>(rows) / static_cast<double>(rows - 1) : 1.0;
    running_mean[s.col] = static_cast<float>((1.0 - momentum) * running_mean[s.col] + momentum * st.mean);
    running_var[s.col] = static_cast<float>((1.0 - momentum) * running_var[s.col] + momentum * var * unbias);
  }
  const double g = static_cast<double>(gamma[s.col]), b = static_cast<double>(beta[s.col]);
  for (int64_t r = s.begin + threadIdx.y; r < s.end; r += kColRows) {
    const int64_t i = r * cols + s.col;
    y[i] = to_storage<T>(bn_output(to_float(x[i]), g, st.mean, invstd, b, relu));
  }
}

// y = gamma / sqrt(running_var + eps) * (x - running_mean) + beta, in double.
template <class T>
__global__ void bn_apply_eval_kernel(const T* x, const float* gamma, const float* beta, const float* rmean,
                                     const float* rvar, double eps, bool relu, T* y, int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  JANUS_KERNEL_LOOP(i, n) {
    const int64_t c = i % cols;
    const double invstd = 1.0 / sqrt(static_cast<double>(rvar[c]) + eps);
    y[i] = to_storage<T>(bn_output(to_float(x[i]), static_cast<double>(gamma[c]), static_cast<double>(rmean[c]),
                                   invstd, static_cast<double>(beta[c]), relu));
  }
}

// The gradient reaching the BatchNorm output: dy, or ReLU's backward of it
// (y is the fused forward's output; null when not fused).
template <class T>
__device__ inline double bn_output_grad(const T* y, const T* dy, int64_t i) {
  return static_cast<double>(y == nullptr ? to_float(dy[i]) : Relu::backward(to_float(y[i]), to_float(dy[i]), 0.0f));
}

template <class T>
__global__ void bn_grad_sums_kernel(const T* x, const T* y, const T* dy, const float* saved_mean,
                                    const float* saved_invstd, int64_t rows, int64_t cols, int64_t chunk_rows,
                                    GradSums* partials) {
  __shared__ GradSums stage[kColRows][kColTile + 1];
  const ChunkSpan s = chunk_span(rows, cols, chunk_rows);
  GradSums mine{0.0, 0.0};
  if (s.col < cols) {
    const double mean = static_cast<double>(saved_mean[s.col]), invstd = static_cast<double>(saved_invstd[s.col]);
    for (int64_t r = s.begin + threadIdx.y; r < s.end; r += kColRows) {
      const int64_t i = r * cols + s.col;
      const double g = bn_output_grad(y, dy, i);
      mine.dy += g;
      mine.dy_xhat += g * ((static_cast<double>(to_float(x[i])) - mean) * invstd);
    }
  }
  const GradSums chunk = merge_over_rows(mine, stage);
  if (threadIdx.y == 0 && s.col < cols) partials[static_cast<int64_t>(blockIdx.y) * cols + s.col] = chunk;
}

template <class T>
__global__ void bn_dx_kernel(const T* x, const T* y, const T* dy, const float* gamma,
                             const float* saved_mean, const float* saved_invstd, const GradSums* partials,
                             T* dx, float* dgamma, float* dbeta, int64_t rows, int64_t cols,
                             int64_t chunk_rows) {
  __shared__ GradSums stage[kColRows][kColTile + 1];
  const ChunkSpan s = chunk_span(rows, cols, chunk_rows);
  const GradSums sums =
      merge_chunks(partials, static_cast<int64_t>(gridDim.y), cols, s.col, GradSums{0.0, 0.0}, stage);
  if (s.col >= cols) return;  // after the last barrier
  if (blockIdx.y == 0 && threadIdx.y == 0) {
    dbeta[s.col] = static_cast<float>(sums.dy);
    dgamma[s.col] = static_cast<float>(sums.dy_xhat);
  }
  const double nr = static_cast<double>(rows);
  const double mean = static_cast<double>(saved_mean[s.col]), invstd = static_cast<double>(saved_invstd[s.col]);
  const double scale = static_cast<double>(gamma[s.col]) * invstd / nr;
  for (int64_t r = s.begin + threadIdx.y; r < s.end; r += kColRows) {
    const int64_t i = r * cols + s.col;
    const double xhat = (static_cast<double>(to_float(x[i])) - mean) * invstd;
    dx[i] = to_storage<T>(static_cast<float>(scale * (nr * bn_output_grad(y, dy, i) - sums.dy - xhat * sums.dy_xhat)));
  }
}

// The 2-D grid every training pass runs on, and the rows per chunk.
struct ColumnPlan {
  dim3 grid, block;
  int64_t chunk_rows;
};
ColumnPlan column_plan(int64_t rows, int64_t cols) {
  const int64_t chunks = col_chunks(rows);
  return ColumnPlan{dim3(static_cast<unsigned>((cols + kColTile - 1) / kColTile), static_cast<unsigned>(chunks)),
                    dim3(kColTile, kColRows), (rows + chunks - 1) / chunks};
}

}  // namespace

int64_t bn_workspace_count(int64_t rows, int64_t cols) {
  static_assert(sizeof(MomentStats) == 3 * sizeof(double) && sizeof(GradSums) == 2 * sizeof(double),
                "the partials are packed doubles");
  return 3 * col_chunks(rows) * cols;
}

template <class T>
void batchnorm_forward_train(const T* x, const float* gamma, const float* beta, double momentum, double eps,
                             bool relu, float* running_mean, float* running_var, float* saved_mean,
                             float* saved_invstd, T* y, int64_t rows, int64_t cols, double* workspace,
                             cudaStream_t s) {
  if (rows <= 0 || cols <= 0) return;
  const ColumnPlan p = column_plan(rows, cols);
  auto* partials = reinterpret_cast<MomentStats*>(workspace);
  JANUS_LAUNCH(bn_stats_kernel<T>, p.grid, p.block, 0, s, x, rows, cols, p.chunk_rows, partials);
  JANUS_CUDA_CHECK_LAUNCH("bn_stats_kernel");
  JANUS_LAUNCH(bn_apply_train_kernel<T>, p.grid, p.block, 0, s, x, gamma, beta,
               static_cast<const MomentStats*>(partials), momentum, eps, relu, running_mean, running_var,
               saved_mean, saved_invstd, y, rows, cols, p.chunk_rows);
  JANUS_CUDA_CHECK_LAUNCH("bn_apply_train_kernel");
}

template <class T>
void batchnorm_forward_eval(const T* x, const float* gamma, const float* beta, const float* running_mean,
                            const float* running_var, double eps, bool relu, T* y, int64_t rows, int64_t cols,
                            cudaStream_t s) {
  if (rows <= 0 || cols <= 0) return;
  JANUS_LAUNCH_1D(bn_apply_eval_kernel<T>, rows * cols, s, x, gamma, beta, running_mean, running_var, eps, relu, y,
                  rows, cols);
}

template <class T>
void batchnorm_backward(const T* x, const T* y, const T* dy, const float* gamma,
                        const float* saved_mean, const float* saved_invstd, T* dx, float* dgamma,
                        float* dbeta, int64_t rows, int64_t cols, double* workspace, cudaStream_t s) {
  if (rows <= 0 || cols <= 0) return;
  const ColumnPlan p = column_plan(rows, cols);
  auto* partials = reinterpret_cast<GradSums*>(workspace);
  JANUS_LAUNCH(bn_grad_sums_kernel<T>, p.grid, p.block, 0, s, x, y, dy, saved_mean, saved_invstd, rows, cols,
               p.chunk_rows, partials);
  JANUS_CUDA_CHECK_LAUNCH("bn_grad_sums_kernel");
  JANUS_LAUNCH(bn_dx_kernel<T>, p.grid, p.block, 0, s, x, y, dy, gamma, saved_mean, saved_invstd,
               static_cast<const GradSums*>(partials), dx, dgamma, dbeta, rows, cols, p.chunk_rows);
  JANUS_CUDA_CHECK_LAUNCH("bn_dx_kernel");
}

#define JANUS_INSTANTIATE(T)                                                                                      \
  template void batchnorm_forward_train<T>(const T*, const float*, const float*, double, double, bool, float*,    \
                                           float*, float*, float*, T*, int64_t, int64_t, double*, cudaStream_t);  \
  template void batchnorm_forward_eval<T>(const T*, const float*, const float*, const float*, const float*,       \
                                          double, bool, T*, int64_t, int64_t, cudaStream_t);                      \
  template void batchnorm_backward<T>(const T*, const T*, const T*, const float*, const float*, const float*, T*, \
                                      float*, float*, int64_t, int64_t, double*, cudaStream_t);
JANUS_FOR_STORAGE_TYPES(JANUS_INSTANTIATE)
#undef JANUS_INSTANTIATE

}  // namespace janus::cuda_kernels
