// The running training metrics of one epoch: the sum of the per-batch losses
// (each weighted by its batch size), the number of correct predictions and
// the number of samples seen (internal to the training engine).
//
// The loss sum and the correct count live in device memory, and every
// training step adds to them there (Device::add_loss_into,
// Device::count_correct_into), so that a step never waits for the device: on
// a GPU the host queues step after step. They come back to the host only in
// read(): once per log interval (when the progress line is drawn) and at the
// end of an epoch, one device-to-host copy each. The samples seen are
// counted on the host, where the batch sizes are known.
//
// A non-finite loss is noticed on the device as well: the first step whose
// loss is not finite is recorded there (its step number and loss), and
// read() reports it by throwing NonFiniteStep naming that step. The run thus
// stops at the first read after the fault, not at the faulty step: the
// parameters may have taken a few more (non-finite) steps by then, but
// nothing was written, since every checkpoint follows an epoch's final
// read(). (--check-numerics reads after every step instead.)
#pragma once

#include <cstdint>
#include <string>

#include "janus/device.hpp"
#include "janus/tensor.hpp"

namespace janus::train_detail {

// The host view of the running sums.
struct EpochTotals {
  double loss_sum = 0;  // sum over batches of loss * batch size
  int64_t correct = 0;
  int64_t seen = 0;     // samples
};

// A NaN or an infinity in a training step. `what` completes the sentence
// "training stopped: <what> at step N ..." (e.g. "the loss became nan");
// `step` is the 0-based optimizer step (over the whole run) at fault.
struct NonFiniteStep {
  std::string what;
  int64_t step = 0;
};

class RunningMetrics {
 public:
  explicit RunningMetrics(Device& device) : device_(device) {}

  // Starts an epoch from `start` (zeros, or a resumed partial epoch's sums):
  // an upload, no host wait.
  void reset(const EpochTotals& start);

  // The device-side sums a training step adds into (Device::StepTotal),
  // with the step number as the tag of a non-finite loss.
  Tensor& device_totals() { return totals_; }
  // A step of `samples` samples was added to the device sums.
  void count_samples(int64_t samples) { seen_ += samples; }

  // The sums so far: one device-to-host copy (a host wait on a GPU). Throws
  // NonFiniteStep when a loss since reset() was not finite.
  EpochTotals read();

 private:
  Device& device_;
  Tensor totals_;  // float64, Device::StepTotal::Count elements, on device_
  int64_t seen_ = 0;
};

}  // namespace janus::train_detail
