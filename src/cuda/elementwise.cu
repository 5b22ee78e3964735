// Elementwise kernels: fill, axpby, multiply, bias broadcast, 2-D transpose.
#include "cuda/cuda_compat.hpp"

#include "cuda/cuda_check.hpp"
#include "cuda/kernel_common.cuh"
#include "cuda/kernels.hpp"

namespace janus::cuda_kernels {

namespace {

__global__ void fill_kernel(float* x, int64_t n, float value) {
  JANUS_KERNEL_LOOP(i, n)
    x[i] = value;
}

__global__ void axpby_kernel(float alpha, const float* x, float beta, float* y, int64_t n) {
  JANUS_KERNEL_LOOP(i, n)
    y[i] = beta == 0.0f ? alpha * x[i] : alpha * x[i] + beta * y[i];
}

__global__ void multiply_kernel(const float* a, const float* b, float* out, int64_t n) {
  JANUS_KERNEL_LOOP(i, n)
    out[i] = a[i] * b[i];
}

__global__ void add_bias_kernel(float* y, const float* bias, int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  JANUS_KERNEL_LOOP(i, n)
    y[i] += bias[i % cols];
}

// 32x32 tiles through shared memory (padded by one column against bank
// conflicts); block 32x8, each thread moves 4 elements.
constexpr int kTile = 32;
constexpr int kTileRows = 8;

__global__ void transpose_kernel(const float* in, float* out, int64_t rows, int64_t cols) {
  __shared__ float tile[kTile][kTile + 1];
  const int64_t c0 = static_cast<int64_t>(blockIdx.x) * kTile;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * kTile;
  for (int k = static_cast<int>(threadIdx.y); k < kTile; k += kTileRows) {
    const int64_t r = r0 + k, c = c0 + threadIdx.x;
    if (r < rows && c < cols) tile[k][threadIdx.x] = in[r * cols + c];
  }
  __syncthreads();
  for (int k = static_cast<int>(threadIdx.y); k < kTile; k += kTileRows) {
    const int64_t c = c0 + k, r = r0 + threadIdx.x;  // out is (cols x rows)
    if (r < rows && c < cols) out[c * rows + r] = tile[threadIdx.x][k];
  }
}

}  // namespace

void fill(float* x, int64_t n, float value, cudaStream_t s) {
  JANUS_LAUNCH_1D(fill_kernel, n, s, x, n, value);
}

void axpby(float alpha, const float* x, float beta, float* y, int64_t n, cudaStream_t s) {
  JANUS_LAUNCH_1D(axpby_kernel, n, s, alpha, x, beta, y, n);
}

void multiply(const float* a, const float* b, float* out, int64_t n, cudaStream_t s) {
  JANUS_LAUNCH_1D(multiply_kernel, n, s, a, b, out, n);
}

void add_bias(float* y, const float* bias, int64_t rows, int64_t cols, cudaStream_t s) {
  if (rows * cols <= 0) return;
  JANUS_LAUNCH(add_bias_kernel, blocks_for(rows * cols), kThreads, 0, s, y, bias, rows, cols);
  JANUS_CUDA_CHECK_LAUNCH("add_bias_kernel");
}

void transpose(const float* in, float* out, int64_t rows, int64_t cols, cudaStream_t s) {
  if (rows * cols <= 0) return;
  const dim3 grid(static_cast<unsigned>((cols + kTile - 1) / kTile),
                  static_cast<unsigned>((rows + kTile - 1) / kTile));
  const dim3 block(kTile, kTileRows);
  JANUS_LAUNCH(transpose_kernel, grid, block, 0, s, in, out, rows, cols);
  JANUS_CUDA_CHECK_LAUNCH("transpose_kernel");
}

}  // namespace janus::cuda_kernels
