// The training loop: epochs, steps, stop conditions, hooks (training_loop.hpp).
#include "train/training_loop.hpp"

#include <chrono>
#include <cmath>

#include "janus/error.hpp"
#include "core/test_hooks.hpp"
#include "train/interrupt.hpp"

namespace janus::train_detail {

namespace {

using Clock = std::chrono::steady_clock;

// A NaN or an infinity stopped the run: the hooks leave the files
// consistent (last.safetensors stays the last good checkpoint), then one
// error names the step.
[[noreturn]] void fail(const NonFiniteStep& fault, LoopState& state, const std::vector<TrainHook*>& hooks) {
  const int64_t batch = fault.step - static_cast<int64_t>(state.epoch) * state.steps_per_epoch;
  std::string message = detail::concat("training stopped: ", fault.what, " at step ", fault.step, " (epoch ",
                                       state.epoch + 1, ", batch ", batch + 1, " of ", state.steps_per_epoch,
                                       "); lower the learning rate? ");
  for (TrainHook* h : hooks) h->on_failure(state, message);
  throw Error(message);
}

}  // namespace

LoopOutcome run_training_loop(TrainStep& train_step, DataLoader& loader, RunningMetrics& metrics,
                              const LoopPlan& plan, const std::vector<TrainHook*>& hooks) {
  LoopState state;
  state.epochs = plan.epochs;
  state.steps_per_epoch = plan.steps_per_epoch;
  state.step = plan.start_step;
  bool stop = false;
  int interrupted = 0;
  Batch batch;
  for (int epoch = plan.start_epoch; epoch < plan.epochs && !stop; ++epoch) {
    const auto t0 = Clock::now();
    state.epoch = epoch;
    loader.start_epoch(epoch);
    // A resumed partial epoch skips the batches already trained on (same order: seed, epoch).
    const int64_t skip = std::max<int64_t>(0, state.step - static_cast<int64_t>(epoch) * plan.steps_per_epoch);
    for (int64_t b = 0; b < skip && loader.next(batch); ++b) {
    }
    state.batch = state.first_batch = skip;
    state.images = 0;
    state.lr = train_step.lr(state.step);
    metrics.reset(skip > 0 ? plan.resumed_partial : EpochTotals{});
    for (TrainHook* h : hooks) h->on_epoch_begin(state);

    bool partial = false;
    try {
      while (loader.next(batch)) {
        train_step.run(batch, state.step, metrics);
        state.lr = train_step.lr(state.step);
        ++state.step;
        test_hooks::kill_point("step");  // test-only (core/test_hooks.hpp)
        ++state.batch;
        ++state.steps_this_run;
        state.images += batch.size;
        for (TrainHook* h : hooks) h->on_step_end(state, metrics);
        if (plan.max_steps > 0 && state.steps_this_run >= plan.max_steps) {
          partial = state.batch < plan.steps_per_epoch;
          break;
        }
        if ((interrupted = InterruptGuard::requested()) != 0) {  // a step boundary: stop here, saved below
          partial = state.batch < plan.steps_per_epoch;
          break;
        }
      }
    } catch (const NonFiniteStep& fault) {
      fail(fault, state, hooks);
    }

    EpochEnd end;
    try {
      end.totals = metrics.read();  // the epoch's last read: before anything is written
    } catch (const NonFiniteStep& fault) {
      fail(fault, state, hooks);
    }
    end.partial = partial;
    end.interrupted = interrupted;
    end.max_steps_reached = plan.max_steps > 0 && state.steps_this_run >= plan.max_steps;
    EpochMetrics& m = end.metrics;
    const EpochTotals& t = end.totals;
    m.epoch = epoch + 1;
    m.partial = partial;
    m.train_loss = t.seen ? t.loss_sum / static_cast<double>(t.seen) : std::nan("");
    m.train_acc = t.seen ? static_cast<double>(t.correct) / static_cast<double>(t.seen) : std::nan("");
    m.val_loss = m.val_acc = std::nan("");
    m.lr = state.lr;
    for (TrainHook* h : hooks) h->on_epoch_evaluate(state, end);
    m.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    JANUS_CHECK(std::isfinite(m.train_loss) || t.seen == 0, "training stopped: non-finite mean loss in epoch ",
                m.epoch);
    for (TrainHook* h : hooks) h->on_epoch_end(state, end);
    stop = partial || interrupted || end.max_steps_reached;
  }
  return LoopOutcome{state.step, interrupted};
}

}  // namespace janus::train_detail
