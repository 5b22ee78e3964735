#include "cuda/cuda_compat.hpp"

#include "cuda/pinned_staging.hpp"

#include <cstring>

#include "cuda/cuda_check.hpp"

namespace janus::cuda {

PinnedStaging::~PinnedStaging() {
  // Errors ignored: at process exit the CUDA runtime may already be gone.
  for (Slot& s : slots_) {
    if (s.pending) static_cast<void>(cudaEventSynchronize(s.copied));
    if (s.copied) static_cast<void>(cudaEventDestroy(s.copied));
    if (s.host) static_cast<void>(cudaFreeHost(s.host));
  }
}

void PinnedStaging::upload(void* dst, const void* host_src, size_t bytes, cudaStream_t stream) {
  if (bytes == 0) return;
  if (bytes > kMaxStaged) {
    JANUS_CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, stream));
    return;
  }
  Slot& s = slots_[next_];
  next_ = 1 - next_;
  if (s.pending) {  // the DMA that last read this buffer, two uploads ago
    JANUS_CUDA_CHECK(cudaEventSynchronize(s.copied));
    s.pending = false;
  }
  if (s.capacity < bytes) {
    if (s.host) JANUS_CUDA_CHECK(cudaFreeHost(s.host));
    s.host = nullptr;
    s.capacity = 0;
    JANUS_CUDA_CHECK(cudaMallocHost(&s.host, bytes));
    s.capacity = bytes;
  }
  if (!s.copied) JANUS_CUDA_CHECK(cudaEventCreateWithFlags(&s.copied, cudaEventDisableTiming));
  std::memcpy(s.host, host_src, bytes);
  JANUS_CUDA_CHECK(cudaMemcpyAsync(dst, s.host, bytes, cudaMemcpyHostToDevice, stream));
  JANUS_CUDA_CHECK(cudaEventRecord(s.copied, stream));
  s.pending = true;
}

}  // namespace janus::cuda
