// A caching allocator for device memory: freed blocks go to size-bucketed free
// lists and are handed out again for the next request of the same bucket, so
// a steady-state training step (the same tensor sizes every step) performs no
// cudaMalloc / cudaFree at all. All users share one stream, so a block freed
// while kernels that use it are still queued is only reused by work queued
// after them: stream order makes the reuse safe.
#pragma once

#include "cuda/cuda_compat.hpp"

#include <cstddef>
#include <mutex>
#include <unordered_map>
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

  // Bucket size for a request: multiples of 512 B up to 1 MiB, then of 2 MiB.
  static size_t bucket_size(size_t bytes);

 private:
  void release_cached_locked();

  int device_index_;
  mutable std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> free_;  // bucket size -> blocks
  std::unordered_map<void*, size_t> live_;               // block -> bucket size
  size_t in_use_ = 0, cached_ = 0, mallocs_ = 0;
};

}  // namespace janus::cuda
