// A training step recorded as a CUDA graph and replayed (step_graph.hpp).
#include "cuda/cuda_compat.hpp"

#include "cuda/step_graph.hpp"

#include <cstring>
#include <string>

#include "cuda/cuda_check.hpp"
#include "cuda/device_guard.hpp"
#include "janus/error.hpp"

namespace janus::cuda {

StepGraph::StepGraph(int device, cudaStream_t stream, CachingAllocator& allocator,
                     std::function<void(void*, const void*, size_t)> upload)
    : device_(device), stream_(stream), allocator_(allocator), upload_(std::move(upload)) {}

StepGraph::~StepGraph() {
  abort();
  const DeviceGuard guard(device_, OnDeviceError::Ignore);
  for (Kept& k : kept_)
    if (k.exec != nullptr) static_cast<void>(cudaGraphExecDestroy(k.exec));
  if (block_ != nullptr) allocator_.deallocate(block_);
}

void StepGraph::begin() {
  JANUS_CHECK(!recording_, "CUDA graph: begin() while a step is being recorded");
  const DeviceGuard guard(device_);
  if (block_ == nullptr) block_ = allocator_.allocate(kBlockBytes);  // outside the pool: lives as long as we do
  mirror_.clear();
  layout_.clear();
  pointers_ = 0;
  pool_ = static_cast<int>(recordings_ % CachingAllocator::kGraphPools);
  allocator_.begin_graph_pool(pool_);
  const cudaError_t e = cudaStreamBeginCapture(stream_, cudaStreamCaptureModeGlobal);
  if (e != cudaSuccess) {
    allocator_.end_graph_pool();
    static_cast<void>(cudaGetLastError());
    throw Error(std::string("CUDA graph: cudaStreamBeginCapture failed: ") + cudaGetErrorName(e) + " (" +
                cudaGetErrorString(e) + ")");
  }
  recording_ = true;
  ++recordings_;
}

const void* StepGraph::stage(const void* host, size_t bytes) {
  JANUS_CHECK(recording_, "CUDA graph: a per-step value staged outside a recording");
  const size_t offset = (mirror_.size() + 15) / 16 * 16;
  JANUS_CHECK(offset + bytes <= kBlockBytes, "CUDA graph: the step's per-step values exceed ", kBlockBytes,
              " bytes (", offset + bytes, " needed)");
  mirror_.resize(offset + bytes);
  if (bytes != 0) std::memcpy(mirror_.data() + offset, host, bytes);
  layout_.emplace_back(offset, bytes);
  return static_cast<const unsigned char*>(block_) + offset;
}

void StepGraph::note_pointer(const void* p) {
  // FNV-1a over the address bytes, in order of use.
  std::uint64_t a = reinterpret_cast<std::uintptr_t>(p);
  for (int i = 0; i < 8; ++i, a >>= 8) pointers_ = (pointers_ ^ (a & 0xFF)) * 1099511628211ull;
}

bool StepGraph::end() {
  JANUS_CHECK(recording_, "CUDA graph: end() without begin()");
  const DeviceGuard guard(device_);
  recording_ = false;
  cudaGraph_t graph = nullptr;
  const cudaError_t e = cudaStreamEndCapture(stream_, &graph);
  allocator_.end_graph_pool();
  if (e != cudaSuccess) {
    static_cast<void>(cudaGetLastError());
    throw Error(std::string("CUDA graph: the training step could not be captured: ") + cudaGetErrorName(e) + " (" +
                cudaGetErrorString(e) + ")");
  }
  size_t nodes = 0;
  JANUS_CUDA_CHECK(cudaGraphGetNodes(graph, nullptr, &nodes));
  Kept& kept = kept_[pool_];
  const bool same =
      kept.exec != nullptr && nodes == kept.nodes && layout_ == kept.layout && pointers_ == kept.pointers;
  if (same) {
    JANUS_CUDA_CHECK(cudaGraphDestroy(graph));
  } else {
    if (kept.exec != nullptr) JANUS_CUDA_CHECK(cudaGraphExecDestroy(kept.exec));  // deferred by CUDA while it runs
    kept.exec = nullptr;
    const cudaError_t ie = cudaGraphInstantiate(&kept.exec, graph, 0);
    static_cast<void>(cudaGraphDestroy(graph));
    JANUS_CUDA_CHECK(ie);
    kept.nodes = nodes;
    kept.layout = layout_;
    kept.pointers = pointers_;
    ++instantiations_;
  }
  if (!mirror_.empty()) upload_(block_, mirror_.data(), mirror_.size());
  JANUS_CUDA_CHECK(cudaGraphLaunch(kept.exec, stream_));
  ++launches_;
  return same;
}

void StepGraph::abort() noexcept {
  if (!recording_) return;
  recording_ = false;
  const DeviceGuard guard(device_, OnDeviceError::Ignore);  // noexcept: runs on error paths and in the destructor
  cudaGraph_t graph = nullptr;
  if (cudaStreamEndCapture(stream_, &graph) == cudaSuccess && graph != nullptr)
    static_cast<void>(cudaGraphDestroy(graph));
  static_cast<void>(cudaGetLastError());
  allocator_.end_graph_pool();
}

void StepGraph::reset() {
  abort();
  const DeviceGuard guard(device_);
  for (Kept& k : kept_) {
    if (k.exec != nullptr) JANUS_CUDA_CHECK(cudaGraphExecDestroy(k.exec));
    k = Kept{};
  }
  recordings_ = 0;
  allocator_.release_graph_pools();
}

}  // namespace janus::cuda
