// One training step: forward, loss, backward, optimizer update (train_step.hpp).
#include "train/train_step.hpp"

#include <algorithm>

#include "janus/error.hpp"
#include "janus/precision.hpp"
#include "janus/step_capture.hpp"
#include "train/numerics.hpp"

namespace janus::train_detail {

TrainStep::TrainStep(NeuralNetwork& model, Optimizer& optimizer, const Scheduler& scheduler, Device& device,
                     int num_classes, bool check_numerics)
    : model_(model),
      optimizer_(optimizer),
      scheduler_(scheduler),
      device_(device),
      num_classes_(num_classes),
      check_numerics_(check_numerics),
      loss_(Tensor::empty(Shape{1}, device, DType::F64)) {}

void TrainStep::enable_cuda_graph(std::ostream& log) {
  graph_log_ = &log;
  capture_ = device_.step_capture();
  if (capture_ != nullptr) capture_->reset();  // a graph kept by another step is not ours
}

TrainStep::~TrainStep() {
  if (capture_ == nullptr) return;
  try {
    capture_->reset();
  } catch (const std::exception&) {  // a destructor must not throw; the next user resets again
  }
}

void TrainStep::log_once(const std::string& reason, const std::string& line) {
  if (std::find(logged_.begin(), logged_.end(), reason) != logged_.end()) return;
  logged_.push_back(reason);
  *graph_log_ << "cuda-graph: " << line << " (said once)\n";
  graph_log_->flush();
}

bool TrainStep::graphable(const Batch& batch) {
  if (capture_ == nullptr) {
    log_once("device", "device " + device_.name() + " cannot record CUDA graphs: every step runs uncaptured");
    return false;
  }
  if (check_numerics_) {
    log_once("numerics", "--check-numerics reads values back every step: every step runs uncaptured");
    return false;
  }
  const int precision = static_cast<int>(matmul_precision());
  if (graph_shape_.rank() != 0) {
    if (batch.x_shape == graph_shape_ && precision == graph_precision_) return true;
    log_once(batch.x_shape == graph_shape_ ? "precision" : "shape",
             batch.x_shape == graph_shape_
                 ? std::string("precision ") + precision_name(matmul_precision()) + " is not the graph's: uncaptured step"
                 : "batch " + batch.x_shape.str() + " is not the graph's " + graph_shape_.str() +
                       ": uncaptured step (the graph is kept for its shape)");
    return false;
  }
  // Warm-up: lazily made state (optimizer slots, convolution algorithms and
  // workspaces, pinned buffers) is made by uncaptured steps first.
  if (batch.x_shape == warm_shape_) {
    ++warm_steps_;
  } else {
    warm_shape_ = batch.x_shape;
    warm_steps_ = 1;
  }
  if (warm_steps_ > kWarmupSteps) {
    graph_shape_ = batch.x_shape;
    graph_precision_ = precision;
    x_buffer_ = Tensor::empty(batch.x_shape, device_);
    y_buffer_ = Tensor::empty(Shape{batch.size, num_classes_}, device_);
    return true;
  }
  return false;
}

void TrainStep::body(const Tensor& x, const Tensor& y, int batch_size, int64_t step, RunningMetrics& metrics) {
  const Tensor yhat = model_.forward(x, Mode::Train);
  Tensor& totals = metrics.device_totals();
  device_.count_correct_into(yhat, y, totals);
  model_.backward_into(y, yhat, loss_);
  device_.add_loss_into(loss_, static_cast<double>(batch_size), static_cast<double>(step), totals);
  optimizer_.step(model_.named_parameters(), scheduler_.lr(step));
}

void TrainStep::run(const Batch& batch, int64_t step, RunningMetrics& metrics) {
  model_.set_step(static_cast<uint64_t>(step));
  if (graph_log_ != nullptr && graphable(batch)) {
    // The batch into the graph's fixed buffers (uploads made while recording
    // would become per-step values: the same data, one more copy).
    device_.copy_to_device(x_buffer_.raw(), batch.x.data(), batch.x.size() * sizeof(float));
    device_.copy_to_device(y_buffer_.raw(), batch.y_onehot.data(), batch.y_onehot.size() * sizeof(float));
    capture_->begin();
    try {
      body(x_buffer_, y_buffer_, batch.size, step, metrics);
    } catch (const std::exception& e) {
      capture_->abort();
      throw Error(detail::concat("CUDA graph: recording training step ", step, " failed: ", e.what(),
                                 " (train without --cuda-graph, or \"cuda_graph\": false)"));
    }
    if (capture_->end()) ++graph_replays_;
    ++graph_launches_;
    metrics.count_samples(batch.size);
    return;
  }
  Tensor x = Tensor::from_host(batch.x, batch.x_shape, device_);
  Tensor y = Tensor::from_host(batch.y_onehot, Shape{batch.size, num_classes_}, device_);
  if (!check_numerics_) {
    body(x, y, batch.size, step, metrics);
    metrics.count_samples(batch.size);
    return;
  }
  auto fault = [step](const std::string& where) {
    return NonFiniteStep{"a NaN or infinity appeared first in " + where + ",", step};
  };
  std::string where;
  Tensor yhat = forward_checked(model_, x, /*training=*/true, &where);
  if (!where.empty()) throw fault(where);
  Tensor& totals = metrics.device_totals();
  device_.count_correct_into(yhat, y, totals);
  model_.backward_into(y, yhat, loss_);
  device_.add_loss_into(loss_, static_cast<double>(batch.size), static_cast<double>(step), totals);
  metrics.count_samples(batch.size);
  metrics.read();  // throws for a non-finite loss
  if (!(where = nonfinite_gradient(model_)).empty()) throw fault(where);
  optimizer_.step(model_.named_parameters(), scheduler_.lr(step));
  if (!(where = nonfinite_parameter(model_)).empty()) throw fault(where);
}

}  // namespace janus::train_detail
