// One training step: forward, loss, backward, optimizer update (train_step.hpp).
#include "train/train_step.hpp"

#include <cmath>

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
      check_numerics_(check_numerics) {}

void TrainStep::run(const Batch& batch, int64_t step, RunningMetrics& metrics) {
  Tensor x = Tensor::from_host(batch.x, batch.x_shape, device_);
  Tensor y = Tensor::from_host(batch.y_onehot, Shape{batch.size, num_classes_}, device_);
  model_.set_step(static_cast<uint64_t>(step));
  auto fault = [step](const std::string& where) {
    return NonFiniteStep{"a NaN or infinity appeared first in " + where + ",", step};
  };
  std::string where;
  Tensor yhat = check_numerics_ ? forward_checked(model_, x, /*training=*/true, &where)
                                : model_.forward(x, /*training=*/true);
  if (!where.empty()) throw fault(where);
  const int64_t correct = device_.count_correct(yhat, y);
  const double loss = model_.backward(y, yhat);
  if (!std::isfinite(loss)) throw NonFiniteStep{detail::concat("the loss became ", loss), step};
  if (check_numerics_ && !(where = nonfinite_gradient(model_)).empty()) throw fault(where);
  optimizer_.step(model_.named_parameters(), scheduler_.lr(step));
  if (check_numerics_ && !(where = nonfinite_parameter(model_)).empty()) throw fault(where);
  metrics.add(loss, correct, batch.size);
}

}  // namespace janus::train_detail
