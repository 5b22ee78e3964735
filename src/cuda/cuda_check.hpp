// Error checking for CUDA runtime, cuBLAS and cuDNN calls. Every failure
// becomes a janus::Error that names the call, the source location and the
// library's own description of the error.
#pragma once

#include "cuda/cuda_compat.hpp"

#include <string>

#include "janus/error.hpp"

namespace janus::cuda_detail {

[[noreturn]] inline void throw_cuda_error(const char* call, const char* file, int line, int code,
                                          const char* what) {
  throw Error(detail::concat("CUDA error in ", call, " at ", file, ":", line, ": ", what, " (code ",
                             code, ")"));
}

}  // namespace janus::cuda_detail

#define JANUS_CUDA_CHECK(call)                                                                \
  do {                                                                                        \
    cudaError_t janus_cuda_status_ = (call);                                                  \
    if (janus_cuda_status_ != cudaSuccess)                                                    \
      ::janus::cuda_detail::throw_cuda_error(#call, __FILE__, __LINE__,                       \
                                             static_cast<int>(janus_cuda_status_),            \
                                             cudaGetErrorString(janus_cuda_status_));         \
  } while (0)

// After a kernel launch: reports launch-configuration errors immediately,
// naming the kernel.
#define JANUS_CUDA_CHECK_LAUNCH(kernel_name)                                                  \
  do {                                                                                        \
    cudaError_t janus_cuda_status_ = cudaGetLastError();                                      \
    if (janus_cuda_status_ != cudaSuccess)                                                    \
      ::janus::cuda_detail::throw_cuda_error("launch of " kernel_name, __FILE__, __LINE__,    \
                                             static_cast<int>(janus_cuda_status_),            \
                                             cudaGetErrorString(janus_cuda_status_));         \
  } while (0)

#define JANUS_CUBLAS_CHECK(call)                                                              \
  do {                                                                                        \
    cublasStatus_t janus_cublas_status_ = (call);                                             \
    if (janus_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                        \
      ::janus::cuda_detail::throw_cuda_error(#call, __FILE__, __LINE__,                       \
                                             static_cast<int>(janus_cublas_status_),          \
                                             cublasGetStatusString(janus_cublas_status_));    \
  } while (0)

// Defined only where cudnn.h has been included (conv_cudnn.cpp, real CUDA).
#if defined(CUDNN_MAJOR)
#define JANUS_CUDNN_CHECK(call)                                                               \
  do {                                                                                        \
    cudnnStatus_t janus_cudnn_status_ = (call);                                               \
    if (janus_cudnn_status_ != CUDNN_STATUS_SUCCESS)                                          \
      ::janus::cuda_detail::throw_cuda_error(#call, __FILE__, __LINE__,                       \
                                             static_cast<int>(janus_cudnn_status_),           \
                                             cudnnGetErrorString(janus_cudnn_status_));       \
  } while (0)
#endif
