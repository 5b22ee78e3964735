// Where the data lives: --data-dir, $JANUS_DATA_DIR, ./data, ../shared/data.
#include <janus/data.hpp>

#include "data/file_io.hpp"

#include <cstdlib>

namespace janus {

namespace {

std::string looked_in(const std::vector<std::string>& tried) {
  std::string s;
  for (const auto& t : tried) s += "\n  " + t;
  return s;
}

}  // namespace

std::string resolve_data_dir(const std::string& flag_value) {
  if (!flag_value.empty()) {
    JANUS_CHECK(data_detail::is_dir(flag_value), "--data-dir ", flag_value, ": no such directory");
    return flag_value;
  }
  std::vector<std::string> tried;
  auto try_dir = [&](const std::string& dir, const std::string& label) -> bool {
    tried.push_back(dir + " (" + label + ")");
    return data_detail::is_dir(dir);
  };
  if (const char* env = std::getenv("JANUS_DATA_DIR"); env && *env) {
    if (try_dir(env, "$JANUS_DATA_DIR")) return env;
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
                             "\npass --data-dir DIR or set JANUS_DATA_DIR"));
}

std::string default_iris_path() {
  std::vector<std::string> tried;
#ifdef JANUS_SOURCE_DIR
  tried.push_back(data_detail::join(JANUS_SOURCE_DIR, "datasets/iris.csv"));
#endif
  tried.push_back("./datasets/iris.csv");
  tried.push_back("../datasets/iris.csv");
  for (const auto& p : tried)
    if (data_detail::is_file(p)) return p;
  throw Error(detail::concat("iris: the bundled datasets/iris.csv was not found; looked in:", looked_in(tried),
                             "\npass the CSV path explicitly"));
}

}  // namespace janus
