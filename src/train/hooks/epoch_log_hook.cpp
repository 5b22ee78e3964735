// The summary line of each epoch (epoch_log_hook.hpp).
#include "train/hooks/epoch_log_hook.hpp"

#include <cstdio>

#include "train/internal.hpp"

namespace janus::train_detail {

void EpochLogHook::on_epoch_end(const LoopState& s, EpochEnd& end) {
  const EpochMetrics& m = end.metrics;
  char lrbuf[32];
  std::snprintf(lrbuf, sizeof lrbuf, "%.3g", m.lr);
  out_ << "epoch " << m.epoch << "/" << s.epochs << (end.partial ? " (partial)" : "") << "  train loss "
       << format_fixed(m.train_loss) << " acc " << format_percent(m.train_acc) << "  val loss "
       << format_fixed(m.val_loss) << " acc " << format_percent(m.val_acc) << "  lr " << lrbuf << "  "
       << format_fixed(m.seconds, 1) << "s" << (end.best ? "  *best" : "") << "\n";
  out_.flush();
  // --max-steps ended this invocation before the run's last epoch.
  if (end.max_steps_reached && (end.partial || s.epoch + 1 < s.epochs))
    out_ << "stopped after --max-steps " << max_steps_ << " steps (step " << s.step << ")\n";
}

}  // namespace janus::train_detail
