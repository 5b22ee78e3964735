// Validation at the end of each epoch (validation_hook.hpp).
#include "train/hooks/validation_hook.hpp"

namespace janus::train_detail {

void ValidationHook::on_epoch_evaluate(const LoopState&, EpochEnd& end) {
  if (data_.size() == 0 || (end.interrupted && end.partial)) return;
  const EvalResult v = evaluate(model_, data_, batch_size_);
  end.metrics.val_loss = v.loss;
  end.metrics.val_acc = v.accuracy;
}

}  // namespace janus::train_detail
