// Janus CUDA simulator: shared between the simulator's own .cpp files.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "cuda/sim/runtime.hpp"

struct CUstream_st {
  unsigned flags = 0;
  int device = 0;  // the device that was current when the stream was created
  // Stream capture (graph.cpp): the id of the capture this stream records
  // into (0: none), the nodes it recorded there, and how many of them the
  // capture's other streams have waited on (joined back).
  std::uint64_t capture = 0;
  std::uint64_t captured_nodes = 0;
  std::uint64_t joined_nodes = 0;
};
struct CUevent_st {
  std::chrono::steady_clock::time_point when{};
  bool recorded = false;
  unsigned flags = 0;
  // Last recorded in capture `capture` (0: not) by `source` after its
  // `source_nodes`-th node.
  std::uint64_t capture = 0;
  CUstream_st* source = nullptr;
  std::uint64_t source_nodes = 0;
  // Position of its last recording in the queued work (lagging device model:
  // janus::sim::set_device_lag); complete once the device's progress reaches it.
  std::uint64_t position = 0;
};

namespace janus::sim::detail {
// Records a failed call: becomes the calling thread's last error, with a detailed
// message for cudaGetErrorString. Returns `error` for convenience.
cudaError_t set_error(cudaError_t error, std::string message);
// True for nullptr, the legacy/per-thread handles and live cudaStreamCreate handles.
bool valid_stream(cudaStream_t stream);
// A call's stream argument: cudaSuccess when valid_stream, else
// cudaErrorInvalidResourceHandle set as the last error ("<api>: invalid stream").
cudaError_t check_stream(cudaStream_t stream, const char* api);

// Whether p is inside a live cudaMalloc block.
bool is_device_memory(const void* p);
// Whether p is cudaMallocHost memory.
bool is_pinned(const void* p);
// cudaMemcpy's / cudaMemset's argument checks (setting the last error) and
// the operation itself (which checks first).
cudaError_t check_copy(const char* api, void* dst, const void* src, size_t count, cudaMemcpyKind kind);
cudaError_t copy(void* dst, const void* src, size_t count, cudaMemcpyKind kind);
cudaError_t check_set(const char* api, void* ptr, size_t count);

// ---- stream capture (graph.cpp) --------------------------------------------------
// One node's work, run on the stream the graph is launched on.
using NodeWork = std::function<cudaError_t(cudaStream_t)>;
// Whether an operation issued on `stream` now concerns a capture: the stream
// captures, or it is the legacy stream while a blocking stream captures.
// Cheap when no capture is active anywhere.
bool capture_concerns(cudaStream_t stream);
// An asynchronous operation `api` on a stream for which capture_concerns():
// records `work` as a node (cudaSuccess), or refuses it (the error, also set
// as the last error, and the capture invalidated). `device_pointers` are the
// device memory it touches (checked live at each replay); `pageable_host`:
// it copies from or to pageable host memory.
cudaError_t capture_node(cudaStream_t stream, const char* api, std::string label, NodeWork work,
                         std::vector<const void*> device_pointers, bool pageable_host);
// Refuses an operation on `stream`'s capture: invalidates it and sets `error`.
cudaError_t invalidate_capture(cudaStream_t stream, cudaError_t error, const std::string& why);
// A potentially unsafe call (cudaMalloc, cudaFree, synchronous copies ...):
// cudaSuccess, or cudaErrorStreamCaptureUnsupported when a capture forbids it
// (that capture invalidated).
cudaError_t check_unsafe_call(const char* api);
// Synchronising or querying `stream` (nullptr for the whole device).
cudaError_t check_synchronize(cudaStream_t stream, const char* api, bool whole_device);
// cudaEventRecord / cudaStreamWaitEvent while captures are active: updates
// the capture bookkeeping; returns an error to refuse the call.
cudaError_t capture_event_record(cudaEvent_t event, cudaStream_t stream);
cudaError_t capture_stream_wait(cudaStream_t stream, cudaEvent_t event);
// Whether `event` was last recorded in a capture that is still active.
bool event_in_active_capture(cudaEvent_t event);
// True while the calling thread replays a graph (launch counters).
bool replaying_graph();

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
