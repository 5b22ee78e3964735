// Small file helpers shared by the dataset readers (internal).
#pragma once

#include <janus/error.hpp>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <system_error>
#include <filesystem>
#include <vector>

namespace janus::data_detail {

inline bool is_file(const std::string& p) {
  std::error_code ec;
  return std::filesystem::is_regular_file(p, ec);
}

inline bool is_dir(const std::string& p) {
  std::error_code ec;
  return std::filesystem::is_directory(p, ec);
}

inline std::string join(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (a.back() == '/') return a + b;
  return a + "/" + b;
}

// Size of a regular file in bytes; throws naming `what` and the path.
inline uint64_t file_size_or_throw(const std::string& path, const char* what) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    throw Error(detail::concat(what, ": ", path, ": no such file"));
  if (!std::filesystem::is_regular_file(path, ec))
    throw Error(detail::concat(what, ": ", path, ": not a regular file"));
  auto n = std::filesystem::file_size(path, ec);
  if (ec) throw Error(detail::concat(what, ": ", path, ": cannot stat: ", ec.message()));
  return static_cast<uint64_t>(n);
}

// Physical memory of this machine in bytes (0 when unknown).
inline uint64_t physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page = ::sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return 0;
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page);
}

// Refuses, before anything is allocated, to decode `count` items of
// `bytes_each` bytes (e.g. float32 pixels) from `path` when they would not
// fit in this machine's physical memory: a corrupt or absurd file (a sparse
// file claiming terabytes, say) gets a message instead of an allocation
// failure or the OOM killer.
inline void check_decoded_size(uint64_t count, uint64_t bytes_each, const char* what, const std::string& path) {
  const uint64_t mem = physical_memory_bytes();
  if (mem == 0 || bytes_each == 0) return;
  if (count <= mem / bytes_each) return;
  const double gib = static_cast<double>(count) * static_cast<double>(bytes_each) / double(1ull << 30);
  throw Error(detail::concat(what, ": ", path, ": decoding it would need ", gib, " GiB of memory but this machine has ",
                             mem >> 30, " GiB; refusing (corrupt or absurdly large file?)"));
}

// RAII FILE*.
struct File {
  std::FILE* f = nullptr;
  File(const std::string& path, const char* what) : f(std::fopen(path.c_str(), "rb")) {
    if (!f) throw Error(detail::concat(what, ": ", path, ": cannot open: ", std::strerror(errno)));
  }
  ~File() {
    if (f) std::fclose(f);
  }
  File(const File&) = delete;
  File& operator=(const File&) = delete;
};

// The whole file (size checked first), as bytes.
inline std::vector<uint8_t> read_whole_file(const std::string& path, const char* what) {
  uint64_t n = file_size_or_throw(path, what);
  File file(path, what);
  std::vector<uint8_t> buf(static_cast<size_t>(n));
  if (n && std::fread(buf.data(), 1, buf.size(), file.f) != buf.size())
    throw Error(detail::concat(what, ": ", path, ": read error after ", n, " expected bytes"));
  return buf;
}

}  // namespace janus::data_detail
