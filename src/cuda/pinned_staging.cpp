#include "cuda/cuda_compat.hpp"

#include "cuda/pinned_staging.hpp"

#include <cstring>
#include <iterator>

#include "cuda/cuda_check.hpp"

namespace janus::cuda {

PinnedStaging::~PinnedStaging() {
  // Errors ignored: at process exit the CUDA runtime may already be gone.
  for (Buffer& b : ring_) {
    if (b.pending) static_cast<void>(cudaEventSynchronize(b.copied));
    if (b.copied) static_cast<void>(cudaEventDestroy(b.copied));
    if (b.host) static_cast<void>(cudaFreeHost(b.host));
  }
}

bool PinnedStaging::copy_done(Buffer& b) {
  if (!b.pending) return true;
  const cudaError_t e = cudaEventQuery(b.copied);
  if (e == cudaErrorNotReady) {
    static_cast<void>(cudaGetLastError());  // not an error: clear it, as the caller expects none
    return false;
  }
  JANUS_CUDA_CHECK(e);
  b.pending = false;
  return true;
}

PinnedStaging::Buffer& PinnedStaging::take() {
  if (!ring_.empty() && copy_done(ring_[next_])) {
    Buffer& oldest = ring_[next_];
    next_ = (next_ + 1) % ring_.size();
    return oldest;
  }
  if (ring_.size() < static_cast<size_t>(kMaxBuffers)) {
    // A new buffer, used now, so the newest: just before the oldest.
    const auto at = ring_.insert(ring_.begin() + static_cast<std::ptrdiff_t>(next_), Buffer{});
    next_ = (next_ + 1) % ring_.size();
    return *at;
  }
  // Full: the host is kMaxBuffers uploads ahead of the copies; wait for the oldest.
  Buffer& oldest = ring_[next_];
  JANUS_CUDA_CHECK(cudaEventSynchronize(oldest.copied));
  oldest.pending = false;
  next_ = (next_ + 1) % ring_.size();
  return oldest;
}

void PinnedStaging::upload(void* dst, const void* host_src, size_t bytes, cudaStream_t stream) {
  if (bytes == 0) return;
  if (bytes > kMaxStaged) {
    JANUS_CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, stream));
    return;
  }
  Buffer& b = take();
  if (b.capacity < bytes) {  // its copy has finished: it may be freed
    if (b.host) JANUS_CUDA_CHECK(cudaFreeHost(b.host));
    b.host = nullptr;
    b.capacity = 0;
    JANUS_CUDA_CHECK(cudaMallocHost(&b.host, bytes));
    b.capacity = bytes;
  }
  if (!b.copied) JANUS_CUDA_CHECK(cudaEventCreateWithFlags(&b.copied, cudaEventDisableTiming));
  std::memcpy(b.host, host_src, bytes);
  JANUS_CUDA_CHECK(cudaMemcpyAsync(dst, b.host, bytes, cudaMemcpyHostToDevice, stream));
  JANUS_CUDA_CHECK(cudaEventRecord(b.copied, stream));
  b.pending = true;
}

}  // namespace janus::cuda
