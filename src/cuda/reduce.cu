// Reductions: sum of all elements, column sums (sum_rows; float32 or bf16
// storage), count_correct.
//
// All floating-point reductions are deterministic: every block reduces a fixed
// range in a fixed order into its own partial (double), and a second kernel
// adds the partials in index order. No float atomics anywhere.
#include "cuda/cuda_compat.hpp"

#include <cfloat>
#include <climits>

#include "cuda/cuda_check.hpp"
#include "cuda/kernel_common.cuh"
#include "cuda/kernels.hpp"

namespace janus::cuda_kernels {

namespace {

constexpr int kSumItemsPerThread = 8;
constexpr int kSumMaxPartials = 1024;

// partials[blockIdx.x] = sum of x over a grid-stride walk; double accumulation.
template <class T>
__global__ void partial_sum_kernel(const T* x, int64_t n, double* partials) {
  __shared__ double scratch[32];
  double acc = 0.0;
  JANUS_KERNEL_LOOP(i, n)
    acc += static_cast<double>(x[i]);
  acc = block_sum(acc, scratch);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

// One block: result[0] = sum of the partials.
__global__ void final_sum_kernel(const double* partials, int count, double* result) {
  __shared__ double scratch[32];
  double acc = 0.0;
  for (int i = static_cast<int>(threadIdx.x); i < count; i += static_cast<int>(blockDim.x))
    acc += partials[i];
  acc = block_sum(acc, scratch);
  if (threadIdx.x == 0) result[0] = acc;
}

// Column partial sums: block (32, 8) covers 32 columns and one chunk of rows.
// T: float or bf16 storage, read exactly (to_float).
template <class T>
__global__ void col_partial_kernel(const T* x, int64_t rows, int64_t cols, int64_t chunk_rows,
                                   double* partials) {
  __shared__ double acc_s[kColRows][kColTile + 1];
  const int64_t col = static_cast<int64_t>(blockIdx.x) * kColTile + threadIdx.x;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * chunk_rows;
  const int64_t r1 = std::min<int64_t>(rows, r0 + chunk_rows);
  double acc = 0.0;
  if (col < cols)
    for (int64_t r = r0 + threadIdx.y; r < r1; r += kColRows) acc += static_cast<double>(to_float(x[r * cols + col]));
  acc_s[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && col < cols) {
    double t = 0.0;
    for (int k = 0; k < kColRows; ++k) t += acc_s[k][threadIdx.x];
    partials[static_cast<int64_t>(blockIdx.y) * cols + col] = t;
  }
}

__global__ void col_final_kernel(const double* partials, int64_t chunks, int64_t cols, float beta,
                                 float* out) {
  JANUS_KERNEL_LOOP(c, cols) {
    double t = 0.0;
    for (int64_t k = 0; k < chunks; ++k) t += partials[k * cols + c];
    out[c] = beta == 0.0f ? static_cast<float>(t) : static_cast<float>(t + static_cast<double>(beta) * out[c]);
  }
}

// Argmax of one row by one warp: the first maximum in index order.
__device__ inline int64_t warp_argmax(const float* row, int64_t cols, int lane) {
  float best = -FLT_MAX;
  int64_t idx = LLONG_MAX;
  for (int64_t j = lane; j < cols; j += kWarp) {
    const float v = row[j];
    if (idx == LLONG_MAX || v > best) {
      best = v;
      idx = j;
    }
  }
  for (int off = kWarp / 2; off > 0; off /= 2) {
    const float ob = __shfl_xor_sync(0xffffffffu, best, off);
    const long long oi = __shfl_xor_sync(0xffffffffu, static_cast<long long>(idx), off);
    const bool o_valid = oi != LLONG_MAX;
    const bool valid = idx != LLONG_MAX;
    if (o_valid && (!valid || ob > best || (ob == best && oi < idx))) {
      best = ob;
      idx = oi;
    }
  }
  return idx;
}

__global__ void zero_u64_kernel(unsigned long long* p) { p[0] = 0ull; }

__global__ void count_correct_kernel(const float* yhat, const float* y, int64_t rows, int64_t cols,
                                     unsigned long long* result) {
  __shared__ unsigned int block_count;
  if (threadIdx.x == 0) block_count = 0u;
  __syncthreads();
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int64_t warps_per_block = blockDim.x / kWarp;
  const int64_t warp_id = blockIdx.x * warps_per_block + threadIdx.x / kWarp;
  const int64_t nwarps = gridDim.x * warps_per_block;
  unsigned int mine = 0u;
  for (int64_t r = warp_id; r < rows; r += nwarps) {
    const int64_t a = warp_argmax(yhat + r * cols, cols, lane);
    const int64_t b = warp_argmax(y + r * cols, cols, lane);
    if (lane == 0 && a == b) ++mine;
  }
  if (lane == 0 && mine) atomicAdd(&block_count, mine);
  __syncthreads();
  if (threadIdx.x == 0 && block_count) atomicAdd(result, static_cast<unsigned long long>(block_count));
}

}  // namespace

int sum_partial_count(int64_t n) {
  const int64_t b = (n + kThreads * kSumItemsPerThread - 1) / (kThreads * kSumItemsPerThread);
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(b, kSumMaxPartials)));
}

void sum(const float* x, int64_t n, double* partials, double* result, cudaStream_t s) {
  const int p = sum_partial_count(n);
  JANUS_LAUNCH(partial_sum_kernel<float>, p, kThreads, 0, s, x, n, partials);
  JANUS_CUDA_CHECK_LAUNCH("partial_sum_kernel");
  JANUS_LAUNCH(final_sum_kernel, 1, kThreads, 0, s, partials, p, result);
  JANUS_CUDA_CHECK_LAUNCH("final_sum_kernel");
}

void sum_doubles(const double* x, int64_t n, double* partials, double* result, cudaStream_t s) {
  const int p = sum_partial_count(n);
  JANUS_LAUNCH(partial_sum_kernel<double>, p, kThreads, 0, s, x, n, partials);
  JANUS_CUDA_CHECK_LAUNCH("partial_sum_kernel");
  JANUS_LAUNCH(final_sum_kernel, 1, kThreads, 0, s, partials, p, result);
  JANUS_CUDA_CHECK_LAUNCH("final_sum_kernel");
}

int64_t col_partial_count(int64_t rows, int64_t cols) { return col_chunks(rows) * cols; }

template <class T>
void sum_rows(const T* x, int64_t rows, int64_t cols, float beta, float* out, double* partials,
              cudaStream_t s) {
  if (cols <= 0) return;
  const int64_t chunks = col_chunks(rows);
  const int64_t chunk_rows = (rows + chunks - 1) / chunks;
  const dim3 grid(static_cast<unsigned>((cols + kColTile - 1) / kColTile), static_cast<unsigned>(chunks));
  const dim3 block(kColTile, kColRows);
  JANUS_LAUNCH(col_partial_kernel<T>, grid, block, 0, s, x, rows, cols, chunk_rows, partials);
  JANUS_CUDA_CHECK_LAUNCH("col_partial_kernel");
  JANUS_LAUNCH(col_final_kernel, blocks_for(cols), kThreads, 0, s, partials, chunks, cols, beta, out);
  JANUS_CUDA_CHECK_LAUNCH("col_final_kernel");
}

#define JANUS_INSTANTIATE(T) \
  template void sum_rows<T>(const T*, int64_t, int64_t, float, float*, double*, cudaStream_t);
JANUS_FOR_STORAGE_TYPES(JANUS_INSTANTIATE)
#undef JANUS_INSTANTIATE

void count_correct(const float* yhat, const float* y, int64_t rows, int64_t cols,
                   unsigned long long* result, cudaStream_t s) {
  JANUS_LAUNCH(zero_u64_kernel, 1, 1, 0, s, result);
  JANUS_CUDA_CHECK_LAUNCH("zero_u64_kernel");
  if (rows <= 0 || cols <= 0) return;
  const int warps_per_block = kThreads / kWarp;
  JANUS_LAUNCH(count_correct_kernel, blocks_for(rows, warps_per_block), kThreads, 0, s, yhat, y,
               rows, cols, result);
  JANUS_CUDA_CHECK_LAUNCH("count_correct_kernel");
}

}  // namespace janus::cuda_kernels
