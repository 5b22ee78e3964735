// --plugin: shared libraries with layer types, loaded before a subcommand
// reads any config or checkpoint (janus/plugin.hpp).
#include "commands.hpp"
#include "janus/plugin.hpp"

namespace janus_cli {

CLI::Option* add_plugin_option(CLI::App* sub, std::vector<std::string>& paths) {
  return sub->add_option("--plugin", paths,
                         "Shared library with layer types of its own (janus/plugin.hpp, examples/layer_plugin), "
                         "loaded first; repeatable");
}

std::vector<std::string> load_plugins(const std::vector<std::string>& paths) {
  std::vector<std::string> loaded;
  for (const std::string& path : paths) loaded.push_back(janus::load_plugin(path).path);
  return loaded;
}

}  // namespace janus_cli
