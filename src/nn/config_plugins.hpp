// The "plugins" key of a config file (internal): run configs
// (janus train --config) and benchmark workloads (janus bench --config /
// --model-config) name the shared libraries whose layer types their model
// uses, so that the config is readable on its own, without --plugin.
#pragma once

#include <string>
#include <vector>

#include "janus/nlohmann_json.hpp"

namespace janus::config_detail {

// Loads the libraries listed under config["plugins"] (a JSON array of
// non-empty path strings; relative paths are taken from the folder of
// `source`, the config file's path), in order, through load_plugin
// (janus/plugin.hpp). Returns their canonical paths (empty when the key is
// absent), so that a config written out again finds them from any working
// directory. Throws janus::Error "config SOURCE: 'plugins' ..." naming the
// entry at fault when the value is not such a list or a library fails to load.
std::vector<std::string> load_config_plugins(const nlohmann::json& config, const std::string& source);

}  // namespace janus::config_detail
