// The running training metrics of one epoch: the sum of the per-batch losses
// (each weighted by its batch size), the number of correct predictions and
// the number of samples seen (internal to the training engine).
#pragma once

#include <cstdint>

namespace janus::train_detail {

// The host view of the running sums.
struct EpochTotals {
  double loss_sum = 0;  // sum over batches of loss * batch size
  int64_t correct = 0;
  int64_t seen = 0;     // samples
};

class RunningMetrics {
 public:
  // Starts an epoch from `start` (zeros, or a resumed partial epoch's sums).
  void reset(const EpochTotals& start) { totals_ = start; }
  // One batch of `samples` samples with mean loss `loss` and `correct` right.
  void add(double loss, int64_t correct, int64_t samples) {
    totals_.loss_sum += loss * static_cast<double>(samples);
    totals_.correct += correct;
    totals_.seen += samples;
  }
  // The sums so far.
  EpochTotals read() const { return totals_; }

 private:
  EpochTotals totals_;
};

}  // namespace janus::train_detail
