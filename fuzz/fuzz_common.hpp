// Shared helpers of the libFuzzer targets (fuzz/README.md).
//
// The readers under test take file paths, so each target writes its input to
// files in a private temporary directory and calls the reader on them. A
// janus::Error is the expected answer to a malformed input; anything else that
// escapes (another exception type, a sanitizer report, a crash, a timeout or
// an out-of-memory) is a finding.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace janus_fuzz {

// A directory of its own for this process, removed at exit.
inline const std::string& work_dir() {
  static const std::string dir = [] {
    std::string base = std::filesystem::temp_directory_path().string() + "/janus-fuzz-XXXXXX";
    if (!::mkdtemp(base.data())) std::abort();
    static std::string keep = base;
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(keep, ec);
    });
    return base;
  }();
  return dir;
}

inline std::string write_file(const std::string& name, const void* data, size_t size) {
  const std::string path = work_dir() + "/" + name;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size && std::fwrite(data, 1, size, f) != size) std::abort();
  if (std::fclose(f) != 0) std::abort();
  return path;
}

inline void remove_file(const std::string& name) { std::remove((work_dir() + "/" + name).c_str()); }

}  // namespace janus_fuzz
