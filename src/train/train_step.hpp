// One training step (internal to the training engine): the forward pass, the
// loss, the backward pass and the optimizer update for one batch.
//
// This is the one place where a step's variants plug in: mixed precision
// (a PrecisionScope around the run), --check-numerics (a checked forward and
// gradient/parameter checks), CUDA graphs (the steady-state step recorded and
// replayed as one graph launch), and later data parallelism (a step that
// splits its batch). The loop around it
// (training_loop.hpp) and the hooks (train_hooks.hpp) do not change for them.
#pragma once

#include <cstdint>
#include <ostream>
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
  ~TrainStep();
  TrainStep(const TrainStep&) = delete;
  TrainStep& operator=(const TrainStep&) = delete;

  // CUDA graphs ("cuda_graph": true, --cuda-graph): after kWarmupSteps
  // uncaptured steps of one batch shape, every step of that shape is recorded
  // and run as one graph launch (janus/step_capture.hpp), the batch uploaded
  // into fixed device buffers first. A step the graph cannot take runs
  // uncaptured, and `log` gets one line the first time for each reason: a
  // batch of another shape (the smaller last batch of an epoch), another
  // precision mode than the graph's, --check-numerics (it reads back every
  // step), a device without CUDA graphs. The kept graph survives such steps
  // and is replayed again when the shape returns.
  void enable_cuda_graph(std::ostream& log);
  static constexpr int kWarmupSteps = 2;
  // Graph launches so far, and how many of them replayed a kept graph.
  int64_t graph_launches() const { return graph_launches_; }
  int64_t graph_replays() const { return graph_replays_; }

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

  // Forward, loss, backward and update on batch tensors already on the device.
  void body(const Tensor& x, const Tensor& y, int batch_size, int64_t step, RunningMetrics& metrics);
  // Whether this batch runs as a graph (logs the first fallback of each kind).
  bool graphable(const Batch& batch);
  void log_once(const std::string& reason, const std::string& line);

  std::ostream* graph_log_ = nullptr;  // non-null: CUDA graphs are on
  StepCapture* capture_ = nullptr;
  Shape graph_shape_;                  // the batch shape graphs are recorded for (empty: none yet)
  int graph_precision_ = -1;
  Shape warm_shape_;                   // the shape being warmed up and its uncaptured steps
  int warm_steps_ = 0;
  Tensor x_buffer_, y_buffer_;         // the fixed batch buffers of graph_shape_
  std::vector<std::string> logged_;
  int64_t graph_launches_ = 0, graph_replays_ = 0;
};

}  // namespace janus::train_detail
