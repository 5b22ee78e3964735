// TaskTeam: the claim-counter job protocol and the spin-then-sleep helpers
// (see task_team.hpp).
#include "cpu/task_team.hpp"

#include <omp.h>
#include <sched.h>

#include <chrono>

#include "cpu/scoped_resources.hpp"

namespace janus::fast {

namespace {

using Clock = std::chrono::steady_clock;

// How long an idle helper keeps polling before it sleeps: longer than the
// gaps between the dense operations of a training step (a few to a few tens
// of microseconds), short enough that an idle process is idle.
constexpr std::chrono::microseconds kSpin{100};
// The first part of the spin only pauses (lowest latency); after it the
// helper yields between polls, so another runnable thread (an OpenMP worker
// of the convolutions, another process) gets the core at once.
constexpr std::chrono::microseconds kPauseOnly{10};

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

// True on a thread while it runs tasks of some team: a run() from inside a
// task must not wait for a job it is part of.
thread_local bool in_task = false;

}  // namespace

TaskTeam::TaskTeam(int threads) : threads_(threads < 1 ? 1 : threads) {}

TaskTeam::~TaskTeam() {
  stop_.store(true, std::memory_order_seq_cst);
  {
    std::lock_guard<std::mutex> lock(sleep_mutex_);
  }
  wake_.notify_all();
  for (std::thread& t : helpers_) t.join();
}

void TaskTeam::run_serially(int64_t count, TaskFn fn, void* ctx) {
  for (int64_t i = 0; i < count; ++i) fn(ctx, i);
}

void TaskTeam::claim_and_run() {
  for (int64_t i = next_.fetch_add(1, std::memory_order_relaxed); i < count_;
       i = next_.fetch_add(1, std::memory_order_relaxed))
    fn_(ctx_, i);
}

void TaskTeam::run_erased(int64_t count, TaskFn fn, void* ctx) {
  if (count <= 0) return;
  const ScopedOmpThreads single(1);  // one OpenMP thread inside tasks
  std::unique_lock<std::mutex> busy(run_mutex_, std::defer_lock);
  if (count == 1 || threads_ == 1 || in_task || !busy.try_lock()) {
    const bool outer = in_task;  // true when nested in a task: keep it so
    in_task = true;
    run_serially(count, fn, ctx);
    in_task = outer;
    return;
  }
  if (helpers_.empty())
    for (int t = 1; t < threads_; ++t) helpers_.emplace_back([this] { helper_main(); });

  fn_ = fn;
  ctx_ = ctx;
  count_ = count;
  next_.store(0, std::memory_order_relaxed);
  left_.store(0, std::memory_order_relaxed);
  ++generation_;
  // Open the job (seq_cst: ordered before the read of sleepers_ below, which
  // pairs with a sleeping helper's increment; see wait_for_job).
  word_.store(generation_ << kGenerationShift | kOpen, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) > 0) {
    { std::lock_guard<std::mutex> lock(sleep_mutex_); }
    wake_.notify_all();
  }

  in_task = true;
  claim_and_run();
  in_task = false;

  // Close: no helper can join after this; wait for those that did.
  const uint64_t closed = word_.fetch_and(~kOpen, std::memory_order_acq_rel);
  const uint32_t joined = static_cast<uint32_t>(closed & kJoinedMask);
  for (int spins = 0; left_.load(std::memory_order_acquire) != joined; ++spins) {
    if (spins < 1000)
      cpu_relax();
    else
      sched_yield();  // a helper was descheduled inside a task: let it finish
  }
}

uint64_t TaskTeam::wait_for_job(uint64_t seen) {
  auto ready = [&](uint64_t w) { return (w & kOpen) && (w >> kGenerationShift) != seen; };
  const Clock::time_point start = Clock::now();
  for (int polls = 1;; ++polls) {
    const uint64_t w = word_.load(std::memory_order_acquire);
    if (stop_.load(std::memory_order_relaxed)) return 0;
    if (ready(w)) return w;
    if (polls % 64 != 0) {
      cpu_relax();
      continue;
    }
    const auto spun = Clock::now() - start;
    if (spun > kSpin) break;
    if (spun > kPauseOnly) sched_yield();
  }
  // Sleep. The increment of sleepers_ and the check of word_ are both
  // seq_cst: either the caller sees the increment and wakes us, or we see its
  // job here and do not wait.
  std::unique_lock<std::mutex> lock(sleep_mutex_);
  sleepers_.fetch_add(1, std::memory_order_seq_cst);
  uint64_t w = 0;
  wake_.wait(lock, [&] {
    w = word_.load(std::memory_order_seq_cst);
    return stop_.load(std::memory_order_seq_cst) || ready(w);
  });
  sleepers_.fetch_sub(1, std::memory_order_seq_cst);
  return stop_.load(std::memory_order_relaxed) ? 0 : w;
}

void TaskTeam::helper_main() {
  // Tasks run single-threaded here too (OpenMP ICVs are per thread).
  omp_set_num_threads(1);
  in_task = true;
  uint64_t seen = 0;
  for (;;) {
    uint64_t w = wait_for_job(seen);
    if (w == 0) return;
    // Join: fails if the caller closed the job (or another helper joined)
    // since we looked; then look again.
    if (!word_.compare_exchange_strong(w, w + 1, std::memory_order_acq_rel)) continue;
    seen = w >> kGenerationShift;
    claim_and_run();
    left_.fetch_add(1, std::memory_order_release);
  }
}

}  // namespace janus::fast
