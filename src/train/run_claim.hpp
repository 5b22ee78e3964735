// A run directory claimed for the life of one training process (internal).
//
// Two `janus train` processes must never write into one run directory: the
// result would be an experiment record that no run produced. A new run
// creates its directory with mkdir(2), which fails when the directory exists,
// so the "never overwrite" check and the creation are one atomic step; every
// run (new, --overwrite or --resume) then holds an exclusive flock(2) on
// RUN/.janus.lock until it ends. The kernel drops the lock when the process
// dies, whatever the cause (SIGKILL included), so a crashed run never leaves
// a stale lock behind. The lock file holds the owner's pid for messages.
#pragma once

#include <string>

namespace janus::train_detail {

class RunClaim {
 public:
  RunClaim() = default;
  ~RunClaim();
  RunClaim(const RunClaim&) = delete;
  RunClaim& operator=(const RunClaim&) = delete;

  // Creates `dir` (its parents as needed) and locks it. Throws janus::Error
  // naming the directory when it already exists (another run claimed it
  // first) or cannot be created.
  void create(const std::string& dir);
  // Locks the existing run directory `dir` (for --resume / --overwrite).
  // Throws janus::Error naming the directory and the owner's pid when
  // another process holds it. `what` starts the message ("--resume").
  void lock_existing(const std::string& dir, const std::string& what);
  // The run has written its record (config.json): keep the directory even if
  // training fails later. Until then, a failure removes a directory that
  // create() made, so a run that never started leaves nothing behind.
  void commit() { committed_ = true; }
  // Releases the lock (the destructor does it too).
  void release();

  static const char* lock_file_name() { return ".janus.lock"; }

 private:
  void lock(const std::string& dir, const std::string& what);
  std::string dir_;
  int fd_ = -1;
  bool created_ = false, committed_ = false;
};

}  // namespace janus::train_detail
