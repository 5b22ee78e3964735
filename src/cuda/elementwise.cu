// Elementwise kernels: fill, axpby, multiply, bias broadcast (per storage
// type T: float arithmetic, one rounding per stored result), 2-D transpose.
#include "cuda/cuda_compat.hpp"

#include "cuda/cuda_check.hpp"
#include "cuda/kernel_common.cuh"
#include "cuda/kernels.hpp"

namespace janus::cuda_kernels {

namespace {

template <class T>
__global__ void fill_kernel(T* x, int64_t n, T value) {
  JANUS_KERNEL_LOOP(i, n)
    x[i] = value;
}

template <class T>
__global__ void axpby_kernel(float alpha, const T* x, float beta, T* y, int64_t n) {
  JANUS_KERNEL_LOOP(i, n)
    y[i] = to_storage<T>(beta == 0.0f ? alpha * to_float(x[i]) : alpha * to_float(x[i]) + beta * to_float(y[i]));
}

template <class T>
__global__ void multiply_kernel(const T* a, const T* b, T* out, int64_t n) {
  JANUS_KERNEL_LOOP(i, n)
    out[i] = to_storage<T>(to_float(a[i]) * to_float(b[i]));
}

template <class T>
__global__ void add_bias_kernel(T* y, const float* bias, int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  JANUS_KERNEL_LOOP(i, n)
    y[i] = to_storage<T>(to_float(y[i]) + bias[i % cols]);
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

template <class T>
void fill(T* x, int64_t n, float value, cudaStream_t s) {
  JANUS_LAUNCH_1D(fill_kernel<T>, n, s, x, n, to_storage<T>(value));
}

template <class T>
void axpby(float alpha, const T* x, float beta, T* y, int64_t n, cudaStream_t s) {
  JANUS_LAUNCH_1D(axpby_kernel<T>, n, s, alpha, x, beta, y, n);
}

template <class T>
void multiply(const T* a, const T* b, T* out, int64_t n, cudaStream_t s) {
  JANUS_LAUNCH_1D(multiply_kernel<T>, n, s, a, b, out, n);
}

template <class T>
void add_bias(T* y, const float* bias, int64_t rows, int64_t cols, cudaStream_t s) {
  if (rows * cols <= 0) return;
  JANUS_LAUNCH(add_bias_kernel<T>, blocks_for(rows * cols), kThreads, 0, s, y, bias, rows, cols);
  JANUS_CUDA_CHECK_LAUNCH("add_bias_kernel");
}

#define JANUS_INSTANTIATE(T)                                                          \
  template void fill<T>(T*, int64_t, float, cudaStream_t);                            \
  template void axpby<T>(float, const T*, float, T*, int64_t, cudaStream_t);          \
  template void multiply<T>(const T*, const T*, T*, int64_t, cudaStream_t);           \
  template void add_bias<T>(T*, const float*, int64_t, int64_t, cudaStream_t);
JANUS_FOR_STORAGE_TYPES(JANUS_INSTANTIATE)
#undef JANUS_INSTANTIATE

void transpose(const float* in, float* out, int64_t rows, int64_t cols, cudaStream_t s) {
  if (rows * cols <= 0) return;
  const dim3 grid(static_cast<unsigned>((cols + kTile - 1) / kTile),
                  static_cast<unsigned>((rows + kTile - 1) / kTile));
  const dim3 block(kTile, kTileRows);
  JANUS_LAUNCH(transpose_kernel, grid, block, 0, s, in, out, rows, cols);
  JANUS_CUDA_CHECK_LAUNCH("transpose_kernel");
}

}  // namespace janus::cuda_kernels
