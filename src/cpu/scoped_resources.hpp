// Two small RAII helpers of the fast CPU path's library glue.
//
// ScopedOmpThreads: omp_get_max_threads() of the calling thread is `threads`
//   for the guard's lifetime. oneDNN sizes its parallel regions from it (when
//   a primitive is created and when it runs), so the oneDNN glue sets it to
//   the device's thread count, or to 1 where a call must stay on its thread
//   (TaskTeam tasks). It is an OpenMP per-thread variable: other threads are
//   not affected.
// GrowBuffer: a 64-byte aligned buffer that only ever grows, so that after
//   the first steps of a training loop it has its final size and is never
//   reallocated (scratchpads, staged copies).
#pragma once

#include <omp.h>

#include <cstddef>
#include <new>

namespace janus::fast {

class ScopedOmpThreads {
 public:
  explicit ScopedOmpThreads(int threads) : saved_(omp_get_max_threads()), threads_(threads) {
    if (threads_ != saved_) omp_set_num_threads(threads_);
  }
  ~ScopedOmpThreads() {
    if (threads_ != saved_) omp_set_num_threads(saved_);
  }
  ScopedOmpThreads(const ScopedOmpThreads&) = delete;
  ScopedOmpThreads& operator=(const ScopedOmpThreads&) = delete;

 private:
  int saved_, threads_;
};

class GrowBuffer {
 public:
  GrowBuffer() = default;
  GrowBuffer(const GrowBuffer&) = delete;
  GrowBuffer& operator=(const GrowBuffer&) = delete;
  ~GrowBuffer() { release(); }

  void* get(size_t bytes) {
    if (bytes > bytes_) {
      release();  // before allocating: old and new need not coexist
      data_ = ::operator new(bytes, kAlignment);
      bytes_ = bytes;
    }
    return data_;
  }

 private:
  static constexpr std::align_val_t kAlignment{64};
  void release() {
    if (data_) ::operator delete(data_, kAlignment);
    data_ = nullptr;
    bytes_ = 0;
  }
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace janus::fast
