// SIGINT / SIGTERM during training (internal).
//
// While an InterruptGuard lives, the first SIGINT or SIGTERM only records the
// signal: the training loop sees it at the next step boundary, writes a
// resumable checkpoint (atomically, as every checkpoint) and returns, and
// `janus train` exits with 128 + the signal number (130 for SIGINT, 143 for
// SIGTERM), the status a shell reports for a process the signal ended. A
// second signal, while the first is being handled (a slow checkpoint write,
// say), ends the process at once through the default action: the checkpoint
// on disk is then the previous one, intact, since a write only replaces it by
// rename(2) once complete. The destructor restores the previous handlers.
#pragma once

namespace janus::train_detail {

class InterruptGuard {
 public:
  InterruptGuard();
  ~InterruptGuard();
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

  // The signal received so far (SIGINT or SIGTERM), 0 when none.
  static int requested();
  // "SIGINT" / "SIGTERM"
  static const char* name(int signal);
};

}  // namespace janus::train_detail
