// The progress line on stderr during an epoch (Progress, internal.hpp): the
// batch, images per second, and the epoch's running loss and accuracy.
// Those are read from the running metrics only when the line is drawn, once
// per log interval, since a read waits for the device.
#pragma once

#include "train/internal.hpp"
#include "train/train_hooks.hpp"

namespace janus::train_detail {

class ProgressHook final : public TrainHook {
 public:
  explicit ProgressHook(bool enabled) : progress_(enabled) {}
  void on_epoch_begin(const LoopState& s) override;
  void on_step_end(const LoopState& s, RunningMetrics& metrics) override;
  void on_epoch_evaluate(const LoopState&, EpochEnd&) override { progress_.clear(); }
  void on_failure(const LoopState&, std::string&) override { progress_.clear(); }

 private:
  Progress progress_;
};

}  // namespace janus::train_detail
