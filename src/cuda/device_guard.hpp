// DeviceGuard: makes one CUDA device current for the calling host thread for
// the guard's lifetime and restores the thread's previous device afterwards.
//
// Why: CUDA's current device is a per-thread setting that every runtime call
// (cudaMalloc, cudaStreamCreate, kernel launches, cuBLAS/cuDNN handle
// creation) silently uses. Without a guard, work for cuda:1 issued after the
// thread last touched cuda:0 allocates on cuda:0 and launches into a stream of
// the other device. Every CudaDevice entry point and the caching allocator's
// cudaMalloc/cudaFree paths hold one. Errors throw janus::Error (construction)
// or are ignored (restoring in the destructor, which must not throw).
#pragma once

#include "cuda/cuda_compat.hpp"

#include "cuda/cuda_check.hpp"

namespace janus::cuda {

class DeviceGuard {
 public:
  explicit DeviceGuard(int index) {
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

// The same switch for destructors and noexcept clean-up paths, where an
// exception cannot be thrown: a failure to read or select the device is
// ignored (the CUDA calls that follow then report the error themselves).
class QuietDeviceGuard {
 public:
  explicit QuietDeviceGuard(int index) noexcept {
    switched_ = cudaGetDevice(&previous_) == cudaSuccess && previous_ != index && cudaSetDevice(index) == cudaSuccess;
  }
  ~QuietDeviceGuard() {
    if (switched_) static_cast<void>(cudaSetDevice(previous_));
  }
  QuietDeviceGuard(const QuietDeviceGuard&) = delete;
  QuietDeviceGuard& operator=(const QuietDeviceGuard&) = delete;

 private:
  int previous_ = 0;
  bool switched_ = false;
};

}  // namespace janus::cuda
