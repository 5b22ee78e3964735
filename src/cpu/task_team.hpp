// TaskTeam: runs the independent pieces of one small parallel operation on
// the calling thread and on helper threads that stay awake for a short while
// between operations.
//
// Why not OpenMP for these
//   The fast CPU device runs under OMP_WAIT_POLICY=passive on shared machines
//   (docs/RESULTS-cifar10.md): an idle OpenMP thread sleeps at once, and
//   every parallel region pays for waking it (a futex and, in a VM, an idle
//   virtual CPU: 40-200 us measured on the 2-core benchmark machine). That is
//   as long as the whole GEMM of a small dense layer, so the MLP's GEMMs ran
//   no faster on two threads than on one. The helpers of a team instead spin
//   for kSpin after each operation (yielding the core to anyone else who
//   wants it) and only then sleep: the back-to-back operations of a training
//   step reach them in well under a microsecond, and a process that stops
//   calling costs the machine nothing after kSpin.
//
// Sharing work
//   run(count, task) calls task(i) once for every i in [0, count). The caller
//   and any awake helper claim indices one at a time from a shared counter;
//   the caller never waits for a helper to wake up (a sleeping or descheduled
//   helper simply claims nothing), only for indices a helper has claimed to
//   finish. Which thread runs an index therefore varies from call to call, so
//   a task must compute its output independently of the others and of the
//   thread (disjoint outputs, no shared accumulators): results are then
//   bit-identical from run to run and for every thread count.
//
// Inside a task omp_get_max_threads() is 1, so that libraries which size
// their own OpenMP regions from it (oneDNN's sgemm) stay on the task's thread.
// Tasks must not throw. A run() issued while the team is busy (another
// thread, or from inside a task) runs its tasks serially on its caller.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace janus::fast {

class TaskTeam {
 public:
  // threads in all: the caller of run() and threads - 1 helpers, started on
  // the first run() that has more than one task.
  explicit TaskTeam(int threads);
  ~TaskTeam();
  TaskTeam(const TaskTeam&) = delete;
  TaskTeam& operator=(const TaskTeam&) = delete;

  int threads() const { return threads_; }

  template <class Task>
  void run(int64_t count, Task&& task) {
    using T = std::remove_reference_t<Task>;
    run_erased(count, [](void* t, int64_t i) { (*static_cast<T*>(t))(i); }, &task);
  }

 private:
  using TaskFn = void (*)(void*, int64_t);
  void run_erased(int64_t count, TaskFn fn, void* ctx);
  void run_serially(int64_t count, TaskFn fn, void* ctx);
  void claim_and_run();
  void helper_main();
  // Waits until a job newer than generation `seen` is open (returns its
  // state word) or the team is stopping (returns 0).
  uint64_t wait_for_job(uint64_t seen);

  // The state word: generation (bits 33-63) | open flag (bit 32) | number of
  // helpers that joined the current job (bits 0-31). Joining is a CAS on it
  // while open; the caller closes it with one atomic AND, so "closed" and
  // "how many joined" are decided at the same instant.
  static constexpr int kGenerationShift = 33;
  static constexpr uint64_t kOpen = uint64_t{1} << 32;
  static constexpr uint64_t kJoinedMask = kOpen - 1;

  const int threads_;
  std::vector<std::thread> helpers_;
  std::mutex run_mutex_;  // one job at a time; held by the caller of run()
  uint64_t generation_ = 0;

  // The current job: written by the caller before it opens the job, read by
  // the helpers that joined it, not changed until all of them have left.
  TaskFn fn_ = nullptr;
  void* ctx_ = nullptr;
  int64_t count_ = 0;
  std::atomic<int64_t> next_{0};     // next index to claim
  std::atomic<uint32_t> left_{0};    // helpers that joined and are done

  std::atomic<uint64_t> word_{0};
  std::atomic<bool> stop_{false};

  // Sleeping helpers wait on this; the caller only takes the mutex (a
  // system call at worst) when a helper is asleep.
  std::mutex sleep_mutex_;
  std::condition_variable wake_;
  std::atomic<int> sleepers_{0};
};

}  // namespace janus::fast
