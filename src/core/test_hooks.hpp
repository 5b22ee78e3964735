// Test-only fault injection for the crash-safety tests
// (tests/test_crash_safe.sh). Inert unless the variable is set.
//
//   JANUS_TEST_KILL_AT=<event>:<n>   SIGKILL this process at the n-th (1-based)
//                                    occurrence of <event>:
//     step        right after optimizer step n (mid-epoch unless n is a
//                 multiple of the steps per epoch)
//     checkpoint  inside the n-th .safetensors write, when half of the
//                 temporary file is written (before fsync and rename)
//   JANUS_TEST_KILL_SIGNAL=INT|TERM  send this signal instead of SIGKILL
//                                    (the graceful-stop tests)
//   JANUS_TEST_SLOW_CHECKPOINT_WRITE=<ms>   pause this long in the middle of
//                                    every .safetensors write (an outside
//                                    `kill -9` can then land inside one)
#pragma once

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

namespace janus::test_hooks {

// Called at each occurrence of `event`; kills the process at the configured one.
inline void kill_point(const char* event) {
  static const char* spec = std::getenv("JANUS_TEST_KILL_AT");
  if (spec == nullptr || *spec == '\0') return;
  const char* colon = std::strchr(spec, ':');
  const size_t len = colon ? static_cast<size_t>(colon - spec) : std::strlen(spec);
  if (std::strlen(event) != len || std::strncmp(spec, event, len) != 0) return;
  static std::atomic<long> count{0};
  const long at = colon ? std::atol(colon + 1) : 1;
  if (++count != at) return;
  const char* sig = std::getenv("JANUS_TEST_KILL_SIGNAL");
  const int signal = sig == nullptr ? SIGKILL : std::strcmp(sig, "INT") == 0 ? SIGINT
                                              : std::strcmp(sig, "TERM") == 0 ? SIGTERM : SIGKILL;
  ::kill(::getpid(), signal);
}

// Milliseconds to pause in the middle of a checkpoint write (0: none).
inline long slow_checkpoint_write_ms() {
  static const long ms = [] {
    const char* v = std::getenv("JANUS_TEST_SLOW_CHECKPOINT_WRITE");
    return v ? std::atol(v) : 0L;
  }();
  return ms;
}

// Whether either variable is set (the writer then splits its first write).
inline bool checkpoint_hooks_enabled() {
  static const bool on = std::getenv("JANUS_TEST_KILL_AT") != nullptr || slow_checkpoint_write_ms() > 0;
  return on;
}

}  // namespace janus::test_hooks
