// The first include of every file in src/cuda. It hides whether the CUDA code
// is compiled by nvcc for a real GPU (JANUS_CUDA=ON) or by the host compiler
// for the Janus CUDA simulator (JANUS_CUDA=SIM, src/cuda/sim), so that the
// same kernel sources serve both.
//
// Launch kernels only through
//     JANUS_LAUNCH(kernel, grid, block, shared_bytes, stream, args...);
// which is kernel<<<grid, block, shared_bytes, stream>>>(args...) under nvcc
// and a synchronous run in the simulator. A kernel that is a template-id with
// commas must be parenthesized: JANUS_LAUNCH((k<float, 4>), ...), or named by a
// function pointer: auto* f = &k<float, 4>; JANUS_LAUNCH(f, ...). Check the
// launch afterwards with cudaGetLastError() as usual.
//
// Rules for kernels, so that the simulator runs exactly what the GPU runs:
//   * Shared memory: statically sized `__shared__` arrays only. Dynamic shared
//     memory (`extern __shared__ T buf[];`) does not compile in the simulator,
//     and a launch with shared_bytes != 0 fails with cudaErrorInvalidValue.
//   * Barriers: __syncthreads() must be reached by every thread of the block,
//     at the same call site (no early `return` before it). Warp collectives
//     (__shfl*_sync, __ballot_sync, __all_sync, __any_sync, __syncwarp) must be
//     reached by every lane named in the mask (lanes past the end of a partial
//     last warp do not count), with the same mask. The simulator reports a
//     violation by throwing janus::sim::KernelError from JANUS_LAUNCH; reading
//     a shuffle source lane that did not take part gives NaN (floating point)
//     or 0xBAADF00D.. (integers), as the value is undefined on hardware.
//   * No inline PTX (asm), no CUB, cooperative groups, textures, dynamic
//     parallelism or cuDNN inside kernels: these fail to compile in the
//     simulator (a static_assert or an #error naming the simulator). Host
//     code may branch on JANUS_SIMULATED.
//   * __nv_bfloat16 (<cuda_bf16.h>) and __half (<cuda_fp16.h>): conversions
//     (__float2bfloat16, __bfloat162float, __float2half_rn, __half2float,
//     __*_as_ushort), + - * / and comparisons, with the GPU's rounding
//     (src/cuda/sim/reduced_float.hpp); the rest of those headers is absent.
//   * WMMA (<mma.h>, nvcuda::wmma): TF32 operands m16n16k8 and bf16 operands
//     m16n16k16 with float accumulators, emulated warp-collectively
//     (src/cuda/sim/wmma.hpp); mma.sync through PTX is not available.
//   * __CUDA_ARCH__ is not defined in the simulator; device code compiled by
//     g++ takes the host path of `#ifdef __CUDA_ARCH__` blocks.
//   * Thrust: available in the simulator when CMake found CCCL
//     (JANUS_SIM_HAS_THRUST=1): thrust is built with
//     THRUST_DEVICE_SYSTEM=THRUST_DEVICE_SYSTEM_CPP, so thrust::device
//     algorithms run sequentially on the host. Pass raw cudaMalloc pointers
//     with the thrust::device policy. thrust::sort and thrust::device_ptr
//     dereferences trip UBSan inside Thrust's CPP system (null reference in
//     thrust/detail/reference.h) in the sanitizer build; thrust::device_vector memory is
//     not cudaMalloc memory there, so cudaMemcpy rejects it). Use
//     thrust::device, not
//     thrust::cuda::par.on(stream) (that one exists only under nvcc; guard it
//     with `if constexpr (!JANUS_SIMULATED)` or #if JANUS_CUDA_SIM).
//   * Memory from cudaMalloc is filled with 0xFF bytes in the simulator
//     (NaN as float): never rely on fresh device memory being zero.
#pragma once

#if defined(JANUS_CUDA_SIM)

#include "cuda/sim/cublas.hpp"
#include "cuda/sim/device.hpp"
#include "cuda/sim/runtime.hpp"
#include "cuda/sim/refuse.hpp"
#include "cuda/sim/thrust_config.hpp"

inline constexpr bool JANUS_SIMULATED = true;

#define JANUS_LAUNCH(kernel, grid, block, shared_bytes, stream, ...)                         \
  ::janus::sim::make_launcher(#kernel, (grid), (block), (shared_bytes), (stream),             \
                              [=](auto&... janus_sim_kernel_args_) { kernel(janus_sim_kernel_args_...); }) \
  (__VA_ARGS__)

#else  // real CUDA (nvcc for .cu files, the host compiler for .cpp files)

#include <cublas_v2.h>
#include <cuda_runtime.h>

inline constexpr bool JANUS_SIMULATED = false;

#if defined(__CUDACC__)
#define JANUS_LAUNCH(kernel, grid, block, shared_bytes, stream, ...) \
  kernel<<<(grid), (block), (shared_bytes), (stream)>>>(__VA_ARGS__)
#else
#define JANUS_LAUNCH(kernel, grid, block, shared_bytes, stream, ...) \
  static_assert(false && sizeof(#kernel), "JANUS_LAUNCH is only available in .cu files")
#endif

#endif
