// Row-wise softmax (forward, backward) and fused softmax + cross-entropy.
//
// One warp per row (8 rows per 256-thread block): lanes stride over the row's
// columns and combine with __shfl_xor_sync butterflies, so every row's
// reduction order is fixed (deterministic). Stable: the row max is subtracted
// before exponentiating. The fused softmax + cross-entropy reads logits and
// writes dz of a storage type T (float or __nv_bfloat16) with the float
// kernel's arithmetic, each dz rounded once; targets and losses stay float.
#include "cuda/cuda_compat.hpp"

#include <cfloat>
#include <cmath>

#include "cuda/cuda_check.hpp"
#include "cuda/kernel_common.cuh"
#include "cuda/kernels.hpp"

namespace janus::cuda_kernels {

namespace {

constexpr int kRowsPerBlock = kThreads / kWarp;

template <class T>
__device__ inline float row_max(const T* z, int64_t cols, int lane) {
  float m = -FLT_MAX;
  for (int64_t j = lane; j < cols; j += kWarp) m = fmaxf(m, to_float(z[j]));
  return warp_max(m);
}

template <class T>
__device__ inline float row_sum_exp(const T* z, int64_t cols, float m, int lane) {
  float acc = 0.0f;
  for (int64_t j = lane; j < cols; j += kWarp) acc += expf(to_float(z[j]) - m);
  return warp_sum(acc);
}

__global__ void softmax_forward_kernel(const float* z, float* y, int64_t rows, int64_t cols) {
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int64_t nwarps = static_cast<int64_t>(gridDim.x) * kRowsPerBlock;
  for (int64_t r = blockIdx.x * static_cast<int64_t>(kRowsPerBlock) + threadIdx.x / kWarp; r < rows;
       r += nwarps) {
    const float* zr = z + r * cols;
    float* yr = y + r * cols;
    const float m = row_max(zr, cols, lane);
    const float sum = row_sum_exp(zr, cols, m, lane);
    const float inv = 1.0f / sum;
    for (int64_t j = lane; j < cols; j += kWarp) yr[j] = expf(zr[j] - m) * inv;
  }
}

__global__ void softmax_backward_kernel(const float* y, const float* dy, float* dz, int64_t rows,
                                        int64_t cols) {
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int64_t nwarps = static_cast<int64_t>(gridDim.x) * kRowsPerBlock;
  for (int64_t r = blockIdx.x * static_cast<int64_t>(kRowsPerBlock) + threadIdx.x / kWarp; r < rows;
       r += nwarps) {
    const float* yr = y + r * cols;
    const float* dyr = dy + r * cols;
    float dot = 0.0f;
    for (int64_t j = lane; j < cols; j += kWarp) dot += dyr[j] * yr[j];
    dot = warp_sum(dot);
    float* dzr = dz + r * cols;
    for (int64_t j = lane; j < cols; j += kWarp) dzr[j] = yr[j] * (dyr[j] - dot);
  }
}

template <class T>
__global__ void softmax_ce_kernel(const T* z, const float* y, T* dz, float inv_m, double* row_loss, int64_t rows,
                                  int64_t cols) {
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int64_t nwarps = static_cast<int64_t>(gridDim.x) * kRowsPerBlock;
  for (int64_t r = blockIdx.x * static_cast<int64_t>(kRowsPerBlock) + threadIdx.x / kWarp; r < rows;
       r += nwarps) {
    const T* zr = z + r * cols;
    const float* yr = y + r * cols;
    const float m = row_max(zr, cols, lane);
    const float sum = row_sum_exp(zr, cols, m, lane);
    const float lse = logf(sum);
    double loss = 0.0;
    float ysum = 0.0f;
    for (int64_t j = lane; j < cols; j += kWarp) {
      const float t = yr[j];
      ysum += t;
      if (t != 0.0f) loss -= static_cast<double>(t) * static_cast<double>(to_float(zr[j]) - m - lse);
    }
    loss = warp_sum(loss);
    ysum = warp_sum(ysum);
    if (lane == 0) row_loss[r] = loss;
    if (dz != nullptr) {
      const float inv = 1.0f / sum;
      T* dzr = dz + r * cols;
      for (int64_t j = lane; j < cols; j += kWarp)
        dzr[j] = to_storage<T>((expf(to_float(zr[j]) - m) * inv * ysum - yr[j]) * inv_m);
    }
  }
}

}  // namespace

void softmax_forward(const float* z, float* y, int64_t rows, int64_t cols, cudaStream_t s) {
  if (rows <= 0 || cols <= 0) return;
  JANUS_LAUNCH(softmax_forward_kernel, blocks_for(rows, kRowsPerBlock), kThreads, 0, s, z, y, rows, cols);
  JANUS_CUDA_CHECK_LAUNCH("softmax_forward_kernel");
}

void softmax_backward(const float* y, const float* dy, float* dz, int64_t rows, int64_t cols,
                      cudaStream_t s) {
  if (rows <= 0 || cols <= 0) return;
  JANUS_LAUNCH(softmax_backward_kernel, blocks_for(rows, kRowsPerBlock), kThreads, 0, s, y, dy, dz,
               rows, cols);
  JANUS_CUDA_CHECK_LAUNCH("softmax_backward_kernel");
}

template <class T>
void softmax_cross_entropy(const T* z, const float* y, T* dz, float inv_m, double* row_loss, int64_t rows,
                           int64_t cols, cudaStream_t s) {
  if (rows <= 0 || cols <= 0) return;
  JANUS_LAUNCH(softmax_ce_kernel<T>, blocks_for(rows, kRowsPerBlock), kThreads, 0, s, z, y, dz, inv_m,
               row_loss, rows, cols);
  JANUS_CUDA_CHECK_LAUNCH("softmax_ce_kernel");
}

#define JANUS_INSTANTIATE(T)                                                                                   \
  template void softmax_cross_entropy<T>(const T*, const float*, T*, float, double*, int64_t, int64_t, cudaStream_t);
JANUS_FOR_STORAGE_TYPES(JANUS_INSTANTIATE)
#undef JANUS_INSTANTIATE

}  // namespace janus::cuda_kernels
