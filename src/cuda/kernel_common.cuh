// Device-side helpers shared by the .cu files of the CUDA backend: launch
// geometry, and deterministic warp / block reductions built only from
// __shfl_xor_sync and statically sized shared memory (no CUB), so the CPU
// simulator runs exactly the same code.
#pragma once

#include "cuda/cuda_check.hpp"
#include "cuda/cuda_compat.hpp"
#include "cuda/kernels.hpp"

#include <algorithm>
#include <cstdint>

namespace janus::cuda_kernels {

constexpr int kThreads = 256;    // threads per block for 1-D kernels
constexpr int kMaxBlocks = 4096; // grid-stride loops cover the rest
constexpr int kWarp = 32;

// The value of a per-step kernel argument (kernels.hpp, StepValue).
template <class T>
__device__ inline T step_value(const StepValue<T>& v) {
  return v.at != nullptr ? *v.at : v.value;
}

// ---- storage types ------------------------------------------------------------
// The kernels that take bf16 activations (kernels.hpp, "storage types") read
// an element of storage type T as float (exact) and store a float result
// rounded once to T (to nearest even for bf16; no rounding for float). All
// arithmetic stays in float (or double) whatever T is, so the bf16 result is
// the float32 kernel's result rounded once.
__host__ __device__ inline float to_float(float v) { return v; }
__host__ __device__ inline float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <class T>
struct StoreAs;
template <>
struct StoreAs<float> {
  __host__ __device__ static float from(float v) { return v; }
};
template <>
struct StoreAs<__nv_bfloat16> {
  __host__ __device__ static __nv_bfloat16 from(float v) { return __float2bfloat16_rn(v); }
};
// v rounded once to the storage type T.
template <class T>
__host__ __device__ inline T to_storage(float v) {
  return StoreAs<T>::from(v);
}

inline int blocks_for(int64_t n, int threads = kThreads) {
  const int64_t b = (n + threads - 1) / threads;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(b, kMaxBlocks)));
}

// Grid-stride loop (Caffe's CUDA_KERNEL_LOOP): inside a kernel launched with
// JANUS_LAUNCH_1D, index i runs over [0, n) across the whole grid, whatever
// the grid size (blocks_for caps it at kMaxBlocks).
#define JANUS_KERNEL_LOOP(i, n)                                                       \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

// Launches a 1-D element-wise kernel over n items (nothing for n <= 0) on
// stream s and checks the launch: kThreads per block, blocks_for(n) blocks.
#define JANUS_LAUNCH_1D(kernel, n, s, ...)                                 \
  do {                                                                     \
    if ((n) > 0) {                                                         \
      JANUS_LAUNCH(kernel, blocks_for(n), kThreads, 0, s, __VA_ARGS__);    \
      JANUS_CUDA_CHECK_LAUNCH(#kernel);                                    \
    }                                                                      \
  } while (0)

// Column reductions (sum over rows of a rows x cols matrix) split the rows
// into at most 256 chunks of >= 256 rows; blocks of 32 x 8 threads cover 32
// columns of one chunk. The plan depends only on the shape: deterministic.
constexpr int kColTile = 32;
constexpr int kColRows = 8;
inline int64_t col_chunks(int64_t rows) {
  const int64_t c = (rows + 255) / 256;
  return std::max<int64_t>(1, std::min<int64_t>(c, 256));
}

// Butterfly sum over the 32 lanes of a warp; every lane gets the total. The
// order of additions is fixed, so the result is deterministic.
template <class T>
__device__ inline T warp_sum(T v) {
  for (int off = kWarp / 2; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

template <class T>
__device__ inline T warp_max(T v) {
  for (int off = kWarp / 2; off > 0; off /= 2) {
    T o = __shfl_xor_sync(0xffffffffu, v, off);
    v = o > v ? o : v;
  }
  return v;
}

// Sum over all threads of a 1-D block whose size is a multiple of 32 and at
// most 1024. Every thread gets the total. `scratch` must hold 32 values and is
// reused: callers may call block_sum repeatedly (it synchronises around use).
template <class T>
__device__ inline T block_sum(T v, T* scratch) {
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int warp = static_cast<int>(threadIdx.x) / kWarp;
  const int nwarps = static_cast<int>(blockDim.x) / kWarp;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  T total = lane < nwarps ? scratch[lane] : T(0);
  total = warp_sum(total);
  return total;
}

}  // namespace janus::cuda_kernels
