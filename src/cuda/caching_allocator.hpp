// A caching allocator for device memory: freed blocks go to size-bucketed free
// lists and are handed out again for the next request of the same bucket, so
// a steady-state training step (the same tensor sizes every step) performs no
// cudaMalloc / cudaFree at all. All users share one stream, so a block freed
// while kernels that use it are still queued is only reused by work queued
// after them: stream order makes the reuse safe.
//
// Private pools for CUDA graphs (as PyTorch's graph memory pools): between
// begin_graph_pool(p) and end_graph_pool(), blocks come from pool p, and a
// pool block, once freed, returns to its pool only. A captured graph keeps
// the addresses it was recorded with, so the memory of its temporaries must
// never be handed to anything else while the graph may be replayed; only
// later recordings into the same pool (whose work is the graph's, or replaces
// it) reuse it. A recording starts from the pool's free blocks in address
// order, so the same work recorded into a pool whose blocks are all free gets
// the same addresses every time (step_graph.hpp relies on it to replay).
#pragma once

#include "cuda/cuda_compat.hpp"

#include <cstddef>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace janus::cuda {

class CachingAllocator {
 public:
  explicit CachingAllocator(int device_index) : device_index_(device_index) {}
  ~CachingAllocator();
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // Never returns null for bytes > 0; throws janus::Error naming the request
  // and the free memory (cudaMemGetInfo) when the GPU is out of memory even
  // after the cache has been released. bytes == 0 gives nullptr.
  void* allocate(size_t bytes);
  // Returns the block to its free list (no cudaFree).
  void deallocate(void* ptr);
  // cudaFree of every cached (free) block.
  void release_cached();

  size_t bytes_in_use() const;
  size_t bytes_cached() const;
  // Number of cudaMalloc calls so far (a steady-state step adds none).
  size_t malloc_count() const;

  // The graph pool (see the file comment). begin/end bracket a capture on the
  // calling thread; cudaMalloc for the pool is made with the thread's capture
  // mode relaxed (cudaThreadExchangeStreamCaptureMode), as a capture forbids
  // it otherwise. release_graph_pool() (no graph uses the pool any more):
  // its free blocks go to the ordinary cache, its live blocks become
  // ordinary blocks when freed.
  static constexpr int kGraphPools = 2;
  void begin_graph_pool(int pool);
  void end_graph_pool();
  void release_graph_pools();
  // Bytes the pools hold (live and free).
  size_t graph_pool_bytes() const;

  // Bucket size for a request: multiples of 512 B up to 1 MiB, then of 2 MiB.
  static size_t bucket_size(size_t bytes);

 private:
  void release_cached_locked();

  int device_index_;
  mutable std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> free_;  // bucket size -> blocks
  std::unordered_map<void*, size_t> live_;               // block -> bucket size
  size_t in_use_ = 0, cached_ = 0, mallocs_ = 0;
  int pool_active_ = -1;  // the graph pool allocations come from, or -1
  std::unordered_map<size_t, std::vector<void*>> pool_free_[kGraphPools];  // each pool's free blocks
  struct PoolBlock {
    int pool;
    size_t size;
  };
  std::unordered_map<void*, PoolBlock> pool_blocks_;  // every block of a graph pool
};

}  // namespace janus::cuda
