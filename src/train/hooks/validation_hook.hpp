// Validation at the end of each epoch: the loss and accuracy on the
// validation set, in evaluation mode. A partial epoch stopped by a signal
// skips it: its metrics row is replaced when the run resumes, and the user
// asked to stop now.
#pragma once

#include <cstdint>

#include "janus/data.hpp"
#include "janus/model.hpp"
#include "train/train_hooks.hpp"

namespace janus::train_detail {

class ValidationHook final : public TrainHook {
 public:
  // `data` must outlive the hook; an empty one means no validation.
  ValidationHook(NeuralNetwork& model, const Dataset& data, int64_t batch_size)
      : model_(model), data_(data), batch_size_(batch_size) {}
  void on_epoch_evaluate(const LoopState& s, EpochEnd& end) override;

 private:
  NeuralNetwork& model_;
  const Dataset& data_;
  int64_t batch_size_;
};

}  // namespace janus::train_detail
