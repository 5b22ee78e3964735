// The running training metrics of one epoch, kept on the device (running_metrics.hpp).
#include "train/running_metrics.hpp"

#include <vector>

#include "janus/error.hpp"

namespace janus::train_detail {

void RunningMetrics::reset(const EpochTotals& start) {
  std::vector<double> v(Device::StepTotal::Count, 0.0);
  v[Device::LossSum] = start.loss_sum;
  v[Device::Correct] = static_cast<double>(start.correct);
  v[Device::FirstNonfinite] = -1.0;  // none yet
  // Written in place after the first time: a training step recorded as a CUDA
  // graph keeps the address it adds to (train_step.hpp).
  if (totals_.defined())
    device_.copy_to_device(totals_.raw(), v.data(), v.size() * sizeof(double));
  else
    totals_ = Tensor::from_host(v, Shape{Device::StepTotal::Count}, device_, DType::F64);
  seen_ = start.seen;
}

EpochTotals RunningMetrics::read() {
  const std::vector<double> v = totals_.to_host();
  if (v[Device::FirstNonfinite] >= 0)
    throw NonFiniteStep{detail::concat("the loss became ", v[Device::FirstNonfiniteLoss]),
                        static_cast<int64_t>(v[Device::FirstNonfinite])};
  EpochTotals t;
  t.loss_sum = v[Device::LossSum];
  t.correct = static_cast<int64_t>(v[Device::Correct]);
  t.seen = seen_;
  return t;
}

}  // namespace janus::train_detail
