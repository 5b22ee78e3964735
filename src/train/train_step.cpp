// One training step: forward, loss, backward, optimizer update (train_step.hpp).
#include "train/train_step.hpp"

#include "janus/error.hpp"
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

void TrainStep::run(const Batch& batch, int64_t step, RunningMetrics& metrics) {
  Tensor x = Tensor::from_host(batch.x, batch.x_shape, device_);
  Tensor y = Tensor::from_host(batch.y_onehot, Shape{batch.size, num_classes_}, device_);
  model_.set_step(static_cast<uint64_t>(step));
  auto fault = [step](const std::string& where) {
    return NonFiniteStep{"a NaN or infinity appeared first in " + where + ",", step};
  };
  std::string where;
  Tensor yhat = check_numerics_ ? forward_checked(model_, x, /*training=*/true, &where)
                                : model_.forward(x, Mode::Train);
  if (!where.empty()) throw fault(where);
  Tensor& totals = metrics.device_totals();
  device_.count_correct_into(yhat, y, totals);
  model_.backward_into(y, yhat, loss_);
  device_.add_loss_into(loss_, static_cast<double>(batch.size), static_cast<double>(step), totals);
  metrics.count_samples(batch.size);
  if (check_numerics_) metrics.read();  // throws for a non-finite loss
  if (check_numerics_ && !(where = nonfinite_gradient(model_)).empty()) throw fault(where);
  optimizer_.step(model_.named_parameters(), scheduler_.lr(step));
  if (check_numerics_ && !(where = nonfinite_parameter(model_)).empty()) throw fault(where);
}

}  // namespace janus::train_detail
