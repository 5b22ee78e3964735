// Where the data lives: --data-dir, $JANUS_DATA_DIR, ./data, ../shared/data.
#include <janus/data.hpp>

#include "data/file_io.hpp"

#include <algorithm>
#include <filesystem>
#include <optional>

#include "core/env_settings.hpp"

namespace janus {

namespace {

std::string looked_in(const std::vector<std::string>& tried) {
  std::string s;
  for (const auto& t : tried) s += "\n  " + t;
  return s;
}

}  // namespace

std::string resolve_data_dir(const std::string& dir, const std::string& given_as) {
  if (!dir.empty()) {
    JANUS_CHECK(data_detail::is_dir(dir), "data directory '", dir, "' (from ", given_as, "): no such directory");
    return dir;
  }
  std::vector<std::string> tried;
  auto try_dir = [&](const std::string& candidate, const std::string& label) -> bool {
    tried.push_back(candidate + " (" + label + ")");
    return data_detail::is_dir(candidate);
  };
  if (const std::optional<std::string> env = env::string_setting("JANUS_DATA_DIR")) {
    if (try_dir(*env, "$JANUS_DATA_DIR")) return *env;
  } else {
    tried.push_back("$JANUS_DATA_DIR (not set)");
  }
  if (try_dir("./data", "working directory")) return "./data";
  if (try_dir("../shared/data", "shared data beside the working directory")) return "../shared/data";
#ifdef JANUS_SOURCE_DIR
  {
    std::string src_shared = data_detail::join(JANUS_SOURCE_DIR, "../shared/data");
    if (try_dir(src_shared, "shared data beside the source tree")) return src_shared;
  }
#endif
  throw Error(detail::concat("no data directory found; looked in:", looked_in(tried),
                             "\ngive one with ", given_as, " or set JANUS_DATA_DIR"));
}

std::string default_iris_path() {
  std::vector<std::string> tried;
#ifdef JANUS_SOURCE_DIR
  tried.push_back(data_detail::join(JANUS_SOURCE_DIR, "datasets/iris.csv"));
#endif
  // Then datasets/iris.csv in the working directory, the executable's
  // directory, and up to three of their parents (build trees, ctest).
  std::error_code ec;
  std::vector<std::filesystem::path> roots = {std::filesystem::current_path(ec)};
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) roots.push_back(exe.parent_path());
  for (auto dir : roots) {
    for (int up = 0; up < 4 && !dir.empty(); ++up, dir = dir.parent_path()) {
      std::string p = (dir / "datasets" / "iris.csv").string();
      if (std::find(tried.begin(), tried.end(), p) == tried.end()) tried.push_back(p);
      if (dir == dir.root_path()) break;
    }
  }
  for (const auto& p : tried)
    if (data_detail::is_file(p)) return p;
  throw Error(detail::concat("iris: the bundled datasets/iris.csv was not found; looked in:", looked_in(tried),
                             "\npass the CSV path explicitly"));
}

}  // namespace janus
