// The "plugins" key of a config file: see nn/config_plugins.hpp.
#include "nn/config_plugins.hpp"

#include <filesystem>

#include "janus/error.hpp"
#include "janus/plugin.hpp"

namespace janus::config_detail {

std::vector<std::string> load_config_plugins(const nlohmann::json& config, const std::string& source) {
  if (!config.is_object() || !config.contains("plugins")) return {};
  const auto fail = [&source](const std::string& msg) { throw Error("config " + source + ": " + msg); };
  const nlohmann::json& list = config.at("plugins");
  if (!list.is_array()) fail("'plugins' must be a list of shared-library paths, got " + list.dump());
  const std::filesystem::path folder = std::filesystem::path(source).parent_path();
  std::vector<std::string> paths;
  for (const nlohmann::json& entry : list) {
    if (!entry.is_string() || entry.get<std::string>().empty())
      fail("'plugins': entry " + entry.dump() + " is not a path");
    const std::filesystem::path given(entry.get<std::string>());
    const std::string path = (given.is_absolute() ? given : folder / given).lexically_normal().string();
    try {
      paths.push_back(load_plugin(path).path);
    } catch (const Error& e) {
      fail("'plugins' entry " + entry.dump() + ": " + e.what());
    }
  }
  return paths;
}

}  // namespace janus::config_detail
