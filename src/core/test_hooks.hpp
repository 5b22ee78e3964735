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
//   JANUS_TEST_HOLD_CHECKPOINT_WRITE=<file>  in the middle of every
//                                    .safetensors write, write the temporary
//                                    file's path into <file> and wait until
//                                    <file> is removed: a handshake with the
//                                    test, which either lets the write go on
//                                    (removes <file>) or signals the process
//                                    while it is held. Unlike a pause of a
//                                    fixed length, the write cannot finish
//                                    before the test's signal lands, however
//                                    loaded the machine is.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
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
  // raise(): to this thread, handled before it returns, so the stop is seen at
  // this step's boundary (kill(getpid()) may pick another thread of the process).
  ::raise(signal);
}

// Milliseconds to pause in the middle of a checkpoint write (0: none).
inline long slow_checkpoint_write_ms() {
  static const long ms = [] {
    const char* v = std::getenv("JANUS_TEST_SLOW_CHECKPOINT_WRITE");
    return v ? std::atol(v) : 0L;
  }();
  return ms;
}

// The handshake of JANUS_TEST_HOLD_CHECKPOINT_WRITE (see the top), for the
// write whose temporary file is `tmp_path`. The path goes into <file> by
// rename(2), so the test never reads half of it. A test that went away
// without removing <file> does not hold the process forever: after 10
// minutes the write goes on.
inline void hold_checkpoint_write(const std::string& tmp_path) {
  static const char* file = std::getenv("JANUS_TEST_HOLD_CHECKPOINT_WRITE");
  if (file == nullptr || *file == '\0') return;
  const std::string partial = std::string(file) + ".tmp";
  if (FILE* f = std::fopen(partial.c_str(), "w")) {
    std::fputs(tmp_path.c_str(), f);
    std::fclose(f);
    std::rename(partial.c_str(), file);
  }
  const timespec tick{0, 10 * 1000 * 1000};  // 10 ms
  for (int i = 0; i < 60 * 1000 && ::access(file, F_OK) == 0; ++i) ::nanosleep(&tick, nullptr);
}

// Whether a checkpoint-write hook is set (the writer then splits its first write).
inline bool checkpoint_hooks_enabled() {
  static const bool on = std::getenv("JANUS_TEST_KILL_AT") != nullptr || slow_checkpoint_write_ms() > 0 ||
                         std::getenv("JANUS_TEST_HOLD_CHECKPOINT_WRITE") != nullptr;
  return on;
}

}  // namespace janus::test_hooks
