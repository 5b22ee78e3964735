// The training loop's extension points (internal to the training engine).
//
// The loop (training_loop.hpp) runs epochs of TrainSteps; everything else a
// run does around them is a hook: the progress line and the epoch summary
// (hooks/progress_hook.hpp, hooks/epoch_log_hook.hpp), validation
// (hooks/validation_hook.hpp), and metrics.csv, plots and the crash-safe
// checkpoints (hooks/checkpoint_hook.hpp).
// A new capability (weight averaging, say) is one more hook, not another
// branch in the loop. Hooks run in the order given, which matters at an
// epoch's end: validation fills the metrics that the checkpoint hook judges
// "best" by, and the summary line prints both.
#pragma once

#include <cstdint>
#include <string>

#include "janus/trainer.hpp"
#include "train/running_metrics.hpp"

namespace janus::train_detail {

// Where the run stands; the loop updates it, hooks read it.
struct LoopState {
  int epoch = 0;                // the epoch being trained, 0-based
  int epochs = 0;               // the run's planned epochs
  int64_t steps_per_epoch = 0;
  int64_t step = 0;             // optimizer steps done over the whole run
  int64_t batch = 0;            // batches of this epoch done (resumed ones included)
  int64_t first_batch = 0;      // batches of this epoch done before this invocation
  int64_t steps_this_run = 0;   // optimizer steps of this invocation
  int64_t images = 0;           // samples trained on this epoch by this invocation
  double lr = 0;                // the learning rate of the last step (or of the next, before one)
};

// The end of an epoch, complete or not.
struct EpochEnd {
  EpochMetrics metrics;       // train_* and lr filled by the loop, val_* by the validation hook
  EpochTotals totals;         // the epoch's running sums (saved with a partial epoch)
  bool partial = false;       // stopped before its last batch (--max-steps or a signal)
  int interrupted = 0;        // the signal that stopped it (0: none)
  bool max_steps_reached = false;  // this invocation's --max-steps are done
  bool best = false;          // set by the checkpoint hook
};

class TrainHook {
 public:
  virtual ~TrainHook() = default;
  virtual void on_epoch_begin(const LoopState&) {}
  // After every step. Reading `metrics` may wait for the device: do it only
  // once per log interval.
  virtual void on_step_end(const LoopState&, RunningMetrics& /*metrics*/) {}
  // An epoch ended: first every hook's on_epoch_evaluate (measurements that
  // belong to the epoch's time, e.g. validation), then every on_epoch_end
  // (recording them: checkpoints, the summary line).
  virtual void on_epoch_evaluate(const LoopState&, EpochEnd&) {}
  virtual void on_epoch_end(const LoopState&, EpochEnd&) {}
  // The run is about to stop with an error (`message`, which a hook may
  // extend): leave what is on disk consistent.
  virtual void on_failure(const LoopState&, std::string& /*message*/) {}
};

}  // namespace janus::train_detail
