// One training step (internal to the training engine): the forward pass, the
// loss, the backward pass and the optimizer update for one batch.
//
// This is the one place where a step's variants plug in: mixed precision
// (a PrecisionScope around the run), --check-numerics (a checked forward and
// gradient/parameter checks), and later CUDA graph capture or data
// parallelism (a step that splits its batch). The loop around it
// (training_loop.hpp) and the hooks (train_hooks.hpp) do not change for them.
#pragma once

#include <cstdint>
#include <string>

#include "janus/data.hpp"
#include "janus/model.hpp"
#include "janus/optimizer.hpp"
#include "janus/scheduler.hpp"
#include "train/running_metrics.hpp"

namespace janus::train_detail {

class TrainStep {
 public:
  // The model must be built on `device`; num_classes is the width of the
  // one-hot targets. With check_numerics, every layer's output, every
  // gradient and every parameter is checked each step (costly: numerics.hpp).
  TrainStep(NeuralNetwork& model, Optimizer& optimizer, const Scheduler& scheduler, Device& device,
            int num_classes, bool check_numerics);

  // Trains on `batch` as optimizer step `step` (0-based over the run): uploads
  // it, runs forward, loss, backward and the update at the schedule's rate
  // for `step`, and adds the batch's loss and correct count to `metrics` on
  // the device. Nothing here waits for the device (pinned uploads, device
  // metrics): a non-finite loss is reported by the next metrics.read()
  // (running_metrics.hpp). With check_numerics, every check reads back and
  // throws NonFiniteStep at the faulty step itself, the loss included.
  void run(const Batch& batch, int64_t step, RunningMetrics& metrics);

  // The learning rate of optimizer step `step`.
  double lr(int64_t step) const { return scheduler_.lr(step); }

 private:
  NeuralNetwork& model_;
  Optimizer& optimizer_;
  const Scheduler& scheduler_;
  Device& device_;
  int num_classes_;
  bool check_numerics_;
  Tensor loss_;  // the step's loss, on the device (float64, one element)
};

}  // namespace janus::train_detail
