// Host-to-device uploads through a ring of pinned staging buffers.
//
// Why: cudaMemcpyAsync from pageable host memory synchronises: the CUDA
// runtime stages the bytes itself and, for host-to-device copies, waits for
// the stream's earlier work first ("API synchronization behavior" in the CUDA
// Runtime API reference). A training step's batch upload would then wait for
// the previous step to finish on the GPU. Here the host copies the bytes into
// a pinned buffer, queues the DMA from it and records an event after that
// copy; a buffer is written again only once its event has completed, so the
// host never overwrites bytes a DMA has not read yet, and the caller may free
// its source as soon as upload() returns.
//
// Why a ring that grows instead of two buffers: a step uploads several
// buffers (the batch's x and y, the optimizer's parameter list, a CUDA
// graph's step block), and the GPU runs behind the host, working on the
// previous step while the host prepares the next. With two buffers the third
// upload of a step waited for the first one's copy, queued behind the whole
// previous step: the host waited for the GPU every step and, with a CUDA
// graph, the GPU then idled while the host launched the next one. So when
// the oldest buffer's copy has not finished (cudaEventQuery), a new buffer
// joins the ring instead: the ring settles at the uploads of the steps in
// flight. It is bounded (kMaxBuffers): a host that far ahead waits for the
// oldest copy, which is back-pressure, not a stall.
//
// Uploads larger than kMaxStaged bytes (whole datasets, checkpoints) go
// straight from pageable memory: they are rare and pinning that much host
// memory is costly. Not thread-safe by itself: CudaDevice serialises uploads.
#pragma once

#include "cuda/cuda_compat.hpp"

#include <cstddef>
#include <vector>

namespace janus::cuda {

class PinnedStaging {
 public:
  static constexpr size_t kMaxStaged = size_t{64} << 20;
  // The most buffers the ring holds: two steps of four uploads.
  static constexpr int kMaxBuffers = 8;

  PinnedStaging() = default;
  ~PinnedStaging();
  PinnedStaging(const PinnedStaging&) = delete;
  PinnedStaging& operator=(const PinnedStaging&) = delete;

  // Queues a copy of `bytes` from host_src to device memory dst on `stream`.
  // Waits only when kMaxBuffers copies are still pending (for the oldest).
  // Throws janus::Error on a CUDA failure. The current device must be the
  // stream's (CudaDevice holds its DeviceGuard).
  void upload(void* dst, const void* host_src, size_t bytes, cudaStream_t stream);

  // Buffers in the ring now (tests).
  int buffers() const { return static_cast<int>(ring_.size()); }

 private:
  struct Buffer {
    void* host = nullptr;  // cudaMallocHost
    size_t capacity = 0;
    cudaEvent_t copied = nullptr;  // recorded after the buffer's last DMA
    bool pending = false;          // recorded, not yet seen complete
  };
  // Whether b's last copy has finished (without waiting).
  static bool copy_done(Buffer& b);
  // The buffer the next upload writes: the oldest if its copy has finished
  // (or after waiting for it in a full ring), else a new one.
  Buffer& take();

  std::vector<Buffer> ring_;  // in order of use from next_: the oldest first
  size_t next_ = 0;
};

}  // namespace janus::cuda
