// The training loop (internal to the training engine): epochs of TrainSteps
// over a DataLoader, with hooks around them (train_hooks.hpp).
//
// The loop owns what decides when to stop: the planned epochs, --max-steps,
// a SIGINT/SIGTERM (InterruptGuard, checked at every step boundary) and a
// NaN or infinity (the run then fails with one error naming the step, after
// the hooks' on_failure). Everything else is a hook's.
#pragma once

#include <cstdint>
#include <vector>

#include "janus/data.hpp"
#include "train/running_metrics.hpp"
#include "train/train_hooks.hpp"
#include "train/train_step.hpp"

namespace janus::train_detail {

struct LoopPlan {
  int start_epoch = 0;            // the first epoch to train (0-based)
  int epochs = 0;                 // train while epoch < epochs
  int64_t start_step = 0;         // optimizer steps already done (resumed runs)
  int64_t steps_per_epoch = 0;
  int64_t max_steps = 0;          // > 0: stop after this many steps of this invocation
  EpochTotals resumed_partial;    // the sums of a resumed partial epoch's first batches
};

struct LoopOutcome {
  int64_t steps = 0;        // optimizer steps done over the whole run
  int interrupted_by = 0;   // the signal that stopped the run (0: none)
};

// Trains as planned. Throws janus::Error when a step finds a NaN or an
// infinity ("training stopped: ... at step N (epoch E, batch B of S) ...").
LoopOutcome run_training_loop(TrainStep& step, DataLoader& loader, RunningMetrics& metrics, const LoopPlan& plan,
                              const std::vector<TrainHook*>& hooks);

}  // namespace janus::train_detail
