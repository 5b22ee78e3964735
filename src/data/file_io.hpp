// Small file helpers shared by the dataset readers (internal).
#pragma once

#include <janus/error.hpp>

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
