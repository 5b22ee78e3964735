// The progress line during an epoch (progress_hook.hpp).
#include "train/hooks/progress_hook.hpp"

namespace janus::train_detail {

void ProgressHook::on_epoch_begin(const LoopState& s) {
  progress_.begin_epoch(s.epoch + 1, s.epochs, static_cast<size_t>(s.steps_per_epoch),
                        static_cast<size_t>(s.first_batch));
}

void ProgressHook::on_step_end(const LoopState& s, RunningMetrics& metrics) {
  const auto done = static_cast<size_t>(s.batch);
  if (!progress_.due(done)) return;  // the log interval: read the device's sums only when drawing
  const EpochTotals t = metrics.read();
  progress_.update(done, s.images, t.loss_sum / static_cast<double>(t.seen),
                   static_cast<double>(t.correct) / static_cast<double>(t.seen));
}

}  // namespace janus::train_detail
