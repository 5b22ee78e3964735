// RunClaim: mkdir as the atomic claim, flock for the run's life (run_claim.hpp).
#include "train/run_claim.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "janus/error.hpp"

namespace janus::train_detail {

namespace fs = std::filesystem;

RunClaim::~RunClaim() {
  const bool remove = created_ && !committed_;
  const std::string dir = dir_;
  release();
  if (remove) {
    std::error_code ec;
    fs::remove_all(dir, ec);  // best effort: only what this run created
  }
}

void RunClaim::release() {
  if (fd_ >= 0) ::close(fd_);  // closing the descriptor drops the flock
  fd_ = -1;
}

void RunClaim::create(const std::string& dir) {
  std::error_code ec;
  const fs::path parent = fs::path(dir).parent_path();
  if (!parent.empty()) fs::create_directories(parent, ec);
  if (::mkdir(dir.c_str(), 0777) != 0) {
    const int err = errno;
    JANUS_CHECK(err != EEXIST, "experiment directory ", dir,
                " already exists (another run claimed it first?); pass --overwrite to replace it or --resume to "
                "continue it");
    throw Error(detail::concat("cannot create the experiment directory ", dir, ": ", std::strerror(err)));
  }
  created_ = true;
  dir_ = dir;
  lock(dir, "experiment directory " + dir);
}

void RunClaim::lock_existing(const std::string& dir, const std::string& what) {
  dir_ = dir;
  lock(dir, what + ": " + dir);
}

void RunClaim::lock(const std::string& dir, const std::string& what) {
  const std::string path = (fs::path(dir) / lock_file_name()).string();
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  JANUS_CHECK(fd_ >= 0, what, ": cannot open the lock file ", path, ": ", std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char buf[32] = {0};
    const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
    std::string owner = n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
    while (!owner.empty() && (owner.back() == '\n' || owner.back() == ' ')) owner.pop_back();
    release();
    created_ = false;  // not ours to remove
    JANUS_CHECK(err != EWOULDBLOCK, what, " is in use by another janus process",
                owner.empty() ? std::string() : " (pid " + owner + ")",
                ": one run per directory at a time; wait for it to finish (or stop it with Ctrl-C, which leaves a "
                "resumable checkpoint) or use another --name");
    throw Error(detail::concat(what, ": cannot lock ", path, ": ", std::strerror(err)));
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) == 0) {
    const ssize_t w = ::pwrite(fd_, pid.data(), pid.size(), 0);
    (void)w;  // the pid is for messages only
  }
}

}  // namespace janus::train_detail
