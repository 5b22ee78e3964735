// The summary line of each epoch on the run's output ("epoch 3/20  train
// loss ... acc ...  val loss ... acc ...  lr ...  12.3s  *best"), and the
// note when --max-steps ends the invocation early.
#pragma once

#include <cstdint>
#include <ostream>

#include "train/train_hooks.hpp"

namespace janus::train_detail {

class EpochLogHook final : public TrainHook {
 public:
  EpochLogHook(std::ostream& out, int64_t max_steps) : out_(out), max_steps_(max_steps) {}
  void on_epoch_end(const LoopState& s, EpochEnd& end) override;

 private:
  std::ostream& out_;
  int64_t max_steps_;
};

}  // namespace janus::train_detail
