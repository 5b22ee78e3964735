// The hook between the device registry and the CUDA backend. Implemented by
// src/cuda/ (real or simulated CUDA) or by src/core/no_cuda/cuda_absent.cpp in
// a build without CUDA.
#pragma once

#include "janus/device.hpp"

namespace janus::cuda_backend {

// Number of usable CUDA devices (0 when no GPU is present or the CUDA
// runtime cannot reach one; 1 under the simulator unless JANUS_SIM_DEVICES
// says otherwise). Never throws.
int device_count();
// Why device_count() is 0: the cudaGetDeviceCount error with CUDA's own text
// and error name ("driver version is insufficient", "no CUDA-capable device"),
// or that this build has no CUDA backend. Empty when devices exist.
std::string unavailable_reason();
// The device with this index; only called with 0 <= index < device_count().
Device& device(int index);
// True when the CUDA device is the CPU simulator.
bool simulated();
// Human-readable library versions ("cudart 13.0, cuBLAS 13.x, cuDNN 9.x"), or
// a reason there are none.
std::string library_versions();

}  // namespace janus::cuda_backend
