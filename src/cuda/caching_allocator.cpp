#include "cuda/cuda_compat.hpp"

#include "cuda/caching_allocator.hpp"

#include <algorithm>
#include <functional>
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
  for (auto& lists : pool_free_)
    for (auto& [size, blocks] : lists)
      for (void* p : blocks) static_cast<void>(cudaFree(p));
  if (switched) static_cast<void>(cudaSetDevice(previous));
}

void* CachingAllocator::allocate(size_t bytes) {
  if (bytes == 0) return nullptr;
  const size_t size = bucket_size(bytes);
  std::lock_guard<std::mutex> lock(mu_);
  const bool pool = pool_active_ >= 0;
  auto& free_lists = pool ? pool_free_[pool_active_] : free_;
  auto it = free_lists.find(size);
  if (it != free_lists.end() && !it->second.empty()) {
    void* p = it->second.back();
    it->second.pop_back();
    if (!pool) cached_ -= size;
    in_use_ += size;
    live_.emplace(p, size);
    return p;
  }
  // cudaMalloc allocates on the calling thread's current device: make it ours.
  const DeviceGuard guard(device_index_);
  void* p = nullptr;
  if (pool) {  // inside a capture: allowed with this thread's mode relaxed
    cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
    JANUS_CUDA_CHECK(cudaThreadExchangeStreamCaptureMode(&mode));
    const cudaError_t err = cudaMalloc(&p, size);
    JANUS_CUDA_CHECK(cudaThreadExchangeStreamCaptureMode(&mode));
    if (err != cudaSuccess) {
      static_cast<void>(cudaGetLastError());
      throw Error(detail::concat("CUDA out of memory on cuda:", device_index_, ": cudaMalloc of ", mib(size),
                                 " for the CUDA graph pool failed (", cudaGetErrorString(err), ")"));
    }
    ++mallocs_;
    in_use_ += size;
    live_.emplace(p, size);
    pool_blocks_.emplace(p, PoolBlock{pool_active_, size});
    return p;
  }
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
  if (auto pb = pool_blocks_.find(ptr); pb != pool_blocks_.end()) {
    pool_free_[pb->second.pool][size].push_back(ptr);
    return;
  }
  cached_ += size;
  free_[size].push_back(ptr);
}

void CachingAllocator::begin_graph_pool(int pool) {
  std::lock_guard<std::mutex> lock(mu_);
  JANUS_CHECK(pool >= 0 && pool < kGraphPools, "CUDA caching allocator: no graph pool ", pool);
  JANUS_CHECK(pool_active_ < 0, "CUDA caching allocator: a graph pool is active already");
  pool_active_ = pool;
  // Address order, lowest handed out first: the same requests get the same
  // blocks whatever order earlier work freed them in.
  for (auto& [size, blocks] : pool_free_[pool]) std::sort(blocks.begin(), blocks.end(), std::greater<void*>());
}

void CachingAllocator::end_graph_pool() {
  std::lock_guard<std::mutex> lock(mu_);
  pool_active_ = -1;
}

void CachingAllocator::release_graph_pools() {
  std::lock_guard<std::mutex> lock(mu_);
  JANUS_CHECK(pool_active_ < 0, "CUDA caching allocator: release_graph_pools during a capture");
  for (auto& lists : pool_free_) {
    for (auto& [size, blocks] : lists) {
      for (void* p : blocks) pool_blocks_.erase(p);
      cached_ += size * blocks.size();
      auto& general = free_[size];
      general.insert(general.end(), blocks.begin(), blocks.end());
    }
    lists.clear();
  }
  pool_blocks_.clear();  // the live ones are ordinary blocks from now on
}

size_t CachingAllocator::graph_pool_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t total = 0;
  for (const auto& [p, block] : pool_blocks_) total += block.size;
  return total;
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
