// A plugin built for another plugin ABI (tests/test_cli_plugins.sh): the
// loader must refuse it, naming both versions, before calling anything else.
#include <janus/plugin.hpp>

namespace {
void register_nothing(janus::PluginRegistrar&) {}
}  // namespace

extern "C" __attribute__((visibility("default"))) const janus::PluginDescriptor* janus_plugin_descriptor() {
  static const janus::PluginDescriptor descriptor{JANUS_PLUGIN_ABI_VERSION + 1000, "0.0.1", JANUS_PLUGIN_STDLIB_ABI,
                                                  "wrong_abi", &register_nothing};
  return &descriptor;
}
