// Janus CUDA simulator: shared between the simulator's own .cpp files.
#pragma once

#include <string>

#include "cuda/sim/runtime.hpp"

namespace janus::sim::detail {
// Records a failed call: becomes the calling thread's last error, with a detailed
// message for cudaGetErrorString. Returns `error` for convenience.
cudaError_t set_error(cudaError_t error, std::string message);
// True for nullptr, the legacy/per-thread handles and live cudaStreamCreate handles.
bool valid_stream(cudaStream_t stream);
}  // namespace janus::sim::detail
