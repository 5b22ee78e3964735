// A training step recorded as a CUDA graph and replayed (janus/step_capture.hpp
// says what and when; this is how, on one CudaDevice).
//
//   begin()  the allocator's graph pool on, stream capture begun (global mode);
//   ...      the step's host code runs; the device's ops, instead of running,
//            are recorded. Per-step values take a slot of the step block
//            (stage(): the bytes go to a host mirror, the kernel gets the
//            slot's device address); so do host-to-device uploads, which
//            become device-to-device copies from their slot;
//   end()    capture ended; if it is the same work as the kept graph (same
//            node count, same slot layout, the same memory at the same
//            addresses: a hash of every device address the device's ops were
//            given, tensors of every dtype, scratch buffers and copies' ends,
//            CudaDevice::note_recorded), the recording is dropped and the kept
//            exec launched,
//            else the recording is instantiated and kept.
//            Before the launch, the mirror is uploaded into the step block
//            (one pinned copy, queued before the graph on the same stream).
//
// Two graphs are kept, recorded into two memory pools in turn (even and odd
// recordings): a step's temporaries stay alive into the next step (a layer
// keeps its input for backward until its next forward), so consecutive
// recordings cannot get the same addresses, but every other one can, once the
// tensors of the recording before last have all been freed (the pool is then
// all free, handed out in address order: caching_allocator.hpp).
//
// Why each step is recorded, not just launched: the step's host code is what
// computes the per-step values (dropout layers count their calls, the
// optimizer its steps, the schedule its rate); recording runs it without
// running the work twice, and shows whether the work is still the kept
// graph's. The gain is on the device: one launch, no gap between kernels,
// and no instantiation after the first step.
#pragma once

#include "cuda/cuda_compat.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "cuda/caching_allocator.hpp"
#include "janus/step_capture.hpp"

namespace janus::cuda {

class StepGraph final : public StepCapture {
 public:
  // Bytes of per-step values one step may stage (the optimizer's list is 64
  // bytes per parameter tensor).
  static constexpr size_t kBlockBytes = size_t{1} << 20;

  // `upload(dst, src, bytes)` queues a host-to-device copy on `stream`, a
  // stream of CUDA device `device`: every call below makes that device
  // current for its CUDA calls and restores the thread's device after.
  StepGraph(int device, cudaStream_t stream, CachingAllocator& allocator,
            std::function<void(void*, const void*, size_t)> upload);
  ~StepGraph() override;
  StepGraph(const StepGraph&) = delete;
  StepGraph& operator=(const StepGraph&) = delete;

  void begin() override;
  bool end() override;
  void abort() noexcept override;
  void reset() override;
  int64_t instantiations() const override { return instantiations_; }
  int64_t launches() const override { return launches_; }

  // True between begin() and end() / abort().
  bool recording() const { return recording_; }
  // Copies `bytes` of host data into the next slot of the step block and
  // returns the slot's device address (16-byte aligned). Only while recording.
  const void* stage(const void* host, size_t bytes);
  // A device address the recorded work uses (every tensor an op is given,
  // whatever its dtype, every scratch buffer, both ends of every copy): part
  // of what must match for the kept graph to be replayed.
  void note_pointer(const void* p);

 private:
  int device_;
  cudaStream_t stream_;
  CachingAllocator& allocator_;
  std::function<void(void*, const void*, size_t)> upload_;
  void* block_ = nullptr;                              // device: the step's values
  std::vector<unsigned char> mirror_;                  // host: this step's values
  std::vector<std::pair<size_t, size_t>> layout_;      // (offset, bytes) of each slot, in order
  std::uint64_t pointers_ = 0;  // hash of this recording's noted addresses
  // A kept graph per pool, with what its recording looked like.
  struct Kept {
    cudaGraphExec_t exec = nullptr;
    size_t nodes = 0;
    std::vector<std::pair<size_t, size_t>> layout;
    std::uint64_t pointers = 0;
  };
  Kept kept_[CachingAllocator::kGraphPools];
  int pool_ = 0;  // of the recording under way
  int64_t recordings_ = 0;
  bool recording_ = false;
  int64_t instantiations_ = 0, launches_ = 0;
};

}  // namespace janus::cuda
