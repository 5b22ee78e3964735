// Host-to-device uploads through pinned, double-buffered staging memory.
//
// Why: cudaMemcpyAsync from pageable host memory synchronises: the CUDA
// runtime stages the bytes itself and, for host-to-device copies, waits for
// the stream's earlier work first ("API synchronization behavior" in the CUDA
// Runtime API reference). A training step's batch upload would then wait for
// the previous step to finish on the GPU. Here the host copies the bytes into
// one of two pinned buffers, queues the DMA from it and records an event; a
// buffer is written again only after its own earlier copy has finished (its
// event), so the host never waits for the stream's kernels, and the caller may
// free its source as soon as upload() returns.
//
// Uploads larger than kMaxStaged bytes (whole datasets, checkpoints) go
// straight from pageable memory: they are rare and pinning that much host
// memory is costly. Not thread-safe by itself: CudaDevice serialises uploads.
#pragma once

#include "cuda/cuda_compat.hpp"

#include <cstddef>

namespace janus::cuda {

class PinnedStaging {
 public:
  static constexpr size_t kMaxStaged = size_t{64} << 20;

  PinnedStaging() = default;
  ~PinnedStaging();
  PinnedStaging(const PinnedStaging&) = delete;
  PinnedStaging& operator=(const PinnedStaging&) = delete;

  // Queues a copy of `bytes` from host_src to device memory dst on `stream`.
  // Throws janus::Error on a CUDA failure. The current device must be the
  // stream's (CudaDevice holds its DeviceGuard).
  void upload(void* dst, const void* host_src, size_t bytes, cudaStream_t stream);

 private:
  struct Slot {
    void* host = nullptr;  // cudaMallocHost
    size_t capacity = 0;
    cudaEvent_t copied = nullptr;  // recorded after the slot's last DMA
    bool pending = false;          // an event has been recorded and not yet waited for
  };
  Slot slots_[2];
  int next_ = 0;
};

}  // namespace janus::cuda
