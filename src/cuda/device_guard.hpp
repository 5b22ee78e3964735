// DeviceGuard: makes one CUDA device current for the calling host thread for
// the guard's lifetime and restores the thread's previous device afterwards.
//
// Why: CUDA's current device is a per-thread setting that every runtime call
// (cudaMalloc, cudaStreamCreate, kernel launches, cuBLAS/cuDNN handle
// creation) silently uses. Without a guard, work for cuda:1 issued after the
// thread last touched cuda:0 allocates on cuda:0 and launches into a stream of
// the other device. Every CudaDevice entry point and the caching allocator's
// cudaMalloc/cudaFree paths hold one. Errors throw janus::Error (construction)
// or, with OnDeviceError::Ignore, are ignored; restoring in the destructor,
// which must not throw, ignores them always.
#pragma once

#include "cuda/cuda_compat.hpp"

#include "cuda/cuda_check.hpp"

namespace janus::cuda {

// Selects the error policy of a DeviceGuard's constructor.
enum class OnDeviceError {
  Throw,   // janus::Error when the device cannot be read or selected
  Ignore,  // for destructors and noexcept clean-up paths, which must not throw:
           // the guard then switches nothing, and the CUDA calls that follow
           // report the error themselves
};

class DeviceGuard {
 public:
  explicit DeviceGuard(int index, OnDeviceError policy = OnDeviceError::Throw) {
    if (policy == OnDeviceError::Ignore) {
      switched_ = cudaGetDevice(&previous_) == cudaSuccess && previous_ != index && cudaSetDevice(index) == cudaSuccess;
      return;
    }
    JANUS_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != index) {
      JANUS_CUDA_CHECK(cudaSetDevice(index));
      switched_ = true;
    }
  }
  ~DeviceGuard() {
    if (switched_) static_cast<void>(cudaSetDevice(previous_));
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
  bool switched_ = false;
};

}  // namespace janus::cuda
