#include "cuda/cuda_compat.hpp"

#include "cuda/caching_allocator.hpp"

#include <string>

#include "cuda/cuda_check.hpp"
#include "cuda/device_guard.hpp"
#include "janus/error.hpp"

namespace janus::cuda {

namespace {
constexpr size_t kSmallGranule = 512;
constexpr size_t kSmallLimit = size_t{1} << 20;
constexpr size_t kLargeGranule = size_t{2} << 20;

std::string mib(size_t bytes) {
  return detail::concat(bytes, " bytes (", static_cast<double>(bytes) / (1024.0 * 1024.0), " MiB)");
}
}  // namespace

size_t CachingAllocator::bucket_size(size_t bytes) {
  const size_t g = bytes <= kSmallLimit ? kSmallGranule : kLargeGranule;
  return (bytes + g - 1) / g * g;
}

CachingAllocator::~CachingAllocator() {
  // Only cached blocks are ours to free; live blocks belong to tensors. Errors
  // are ignored: at process exit the CUDA runtime may already be gone. The
  // blocks are freed with their own device current (no throwing guard here).
  int previous = device_index_;
  const bool switched = cudaGetDevice(&previous) == cudaSuccess && previous != device_index_ &&
                        cudaSetDevice(device_index_) == cudaSuccess;
  for (auto& [size, blocks] : free_)
    for (void* p : blocks) static_cast<void>(cudaFree(p));
  if (switched) static_cast<void>(cudaSetDevice(previous));
}

void* CachingAllocator::allocate(size_t bytes) {
  if (bytes == 0) return nullptr;
  const size_t size = bucket_size(bytes);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = free_.find(size);
  if (it != free_.end() && !it->second.empty()) {
    void* p = it->second.back();
    it->second.pop_back();
    cached_ -= size;
    in_use_ += size;
    live_.emplace(p, size);
    return p;
  }
  // cudaMalloc allocates on the calling thread's current device: make it ours.
  const DeviceGuard guard(device_index_);
  void* p = nullptr;
  cudaError_t err = cudaMalloc(&p, size);
  if (err != cudaSuccess) {
    static_cast<void>(cudaGetLastError());  // clear the sticky last error
    release_cached_locked();                // give the cache back and try once more
    err = cudaMalloc(&p, size);
  }
  if (err != cudaSuccess) {
    const std::string reason = cudaGetErrorString(err);
    static_cast<void>(cudaGetLastError());
    size_t free_b = 0, total_b = 0;
    const bool info = cudaMemGetInfo(&free_b, &total_b) == cudaSuccess;
    static_cast<void>(cudaGetLastError());
    throw Error(detail::concat("CUDA out of memory on cuda:", device_index_, ": cudaMalloc of ", mib(size),
                               " failed (", bytes, " bytes requested); ",
                               info ? detail::concat(mib(free_b), " free of ", mib(total_b), " total; ")
                                    : std::string("cudaMemGetInfo unavailable; "),
                               mib(in_use_), " held by live Janus tensors (", reason, ")"));
  }
  ++mallocs_;
  in_use_ += size;
  live_.emplace(p, size);
  return p;
}

void CachingAllocator::deallocate(void* ptr) {
  if (ptr == nullptr) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(ptr);
  JANUS_CHECK(it != live_.end(), "CUDA caching allocator: deallocate of a pointer it did not allocate");
  const size_t size = it->second;
  live_.erase(it);
  in_use_ -= size;
  cached_ += size;
  free_[size].push_back(ptr);
}

void CachingAllocator::release_cached() {
  std::lock_guard<std::mutex> lock(mu_);
  release_cached_locked();
}

void CachingAllocator::release_cached_locked() {
  if (cached_ == 0) return;
  const DeviceGuard guard(device_index_);
  // Queued kernels may still use blocks that were freed to the cache.
  static_cast<void>(cudaDeviceSynchronize());
  for (auto& [size, blocks] : free_) {
    for (void* p : blocks) static_cast<void>(cudaFree(p));
    blocks.clear();
  }
  cached_ = 0;
}

size_t CachingAllocator::bytes_in_use() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_use_;
}
size_t CachingAllocator::bytes_cached() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cached_;
}
size_t CachingAllocator::malloc_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return mallocs_;
}

}  // namespace janus::cuda
