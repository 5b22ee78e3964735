// Device::copy_columns on CUDA: one thread per copied element (Concat and
// its backward), float32 or bf16 storage (kernels.hpp). Consecutive threads take consecutive columns of a row, so
// reads and writes coalesce.
#include "cuda/cuda_compat.hpp"

#include "cuda/cuda_check.hpp"
#include "cuda/kernel_common.cuh"
#include "cuda/kernels.hpp"

namespace janus::cuda_kernels {

namespace {

template <class T>
__global__ void copy_columns_kernel(const T* src, int64_t src_cols, int64_t src_col, T* dst, int64_t dst_cols,
                                    int64_t dst_col, int64_t rows, int64_t width) {
  const int64_t n = rows * width;
  JANUS_KERNEL_LOOP(i, n) {
    const int64_t r = i / width, k = i % width;
    dst[r * dst_cols + dst_col + k] = src[r * src_cols + src_col + k];
  }
}

}  // namespace

template <class T>
void copy_columns(const T* src, int64_t src_cols, int64_t src_col, T* dst, int64_t dst_cols, int64_t dst_col,
                  int64_t rows, int64_t width, cudaStream_t s) {
  JANUS_LAUNCH_1D(copy_columns_kernel<T>, rows * width, s, src, src_cols, src_col, dst, dst_cols, dst_col, rows,
                  width);
}

#define JANUS_INSTANTIATE(T)                                                                                    \
  template void copy_columns<T>(const T*, int64_t, int64_t, T*, int64_t, int64_t, int64_t, int64_t, cudaStream_t);
JANUS_FOR_STORAGE_TYPES(JANUS_INSTANTIATE)
#undef JANUS_INSTANTIATE

}  // namespace janus::cuda_kernels
