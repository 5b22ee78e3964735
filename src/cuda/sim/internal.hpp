// Janus CUDA simulator: shared between the simulator's own .cpp files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cuda/sim/runtime.hpp"

namespace janus::sim::detail {
// Records a failed call: becomes the calling thread's last error, with a detailed
// message for cudaGetErrorString. Returns `error` for convenience.
cudaError_t set_error(cudaError_t error, std::string message);
// True for nullptr, the legacy/per-thread handles and live cudaStreamCreate handles.
bool valid_stream(cudaStream_t stream);

// The live cudaMalloc blocks as (start, size), in address order, and a
// counter that changes whenever that set changes (the race detector keeps a
// shadow per block and re-reads the set only when the counter moved).
std::vector<std::pair<std::uintptr_t, size_t>> device_blocks();
std::uint64_t device_generation();

// ---- the race detector, as the scheduler drives it (racecheck.cpp) ---------------
// All calls come from the launching OS thread, under the launch lock.
// Starts checking a launch if racecheck_enabled(); throws KernelError if it is
// enabled but unavailable in this build, or JANUS_SIM_RACECHECK is malformed.
// `params` is the kernel's parameter block (read-only, not checked).
// Returns whether the launch is checked; if so, the other calls follow.
bool race_begin_launch(const char* kernel, dim3 grid, dim3 block, const void* params, size_t params_bytes);
// A block starts: a new barrier interval, in a new block.
void race_begin_block(std::uint64_t block_linear);
// The scheduler resumes the fiber of thread `thread_linear`; [stack, stack +
// stack_bytes) is its stack (its locals are never shared).
void race_resume(unsigned thread_linear, const char* stack, size_t stack_bytes);
// Every thread of the block reached a __syncthreads(): a new barrier interval.
void race_block_barrier();
// The lanes `lanes` of warp `warp` completed a __syncwarp().
void race_warp_barrier(unsigned warp, unsigned lanes);
// The launch ended normally: the report of its races ("" if none).
std::string race_end_launch();
// The launch failed otherwise (KernelError): stop checking, report nothing.
void race_abort_launch();
}  // namespace janus::sim::detail
