// A plugin that registers a built-in type's name (tests/test_cli_plugins.sh):
// the registration must fail naming the plugin's file and the type.
#include <memory>

#include <janus/plugin.hpp>

namespace {
void register_conv2d(janus::PluginRegistrar& registrar) {
  registrar.add_layer_type("conv2d", [](const auto& /*config*/, const std::string& name) {
    return std::make_unique<janus::Flatten>(name);
  });
}
}  // namespace

JANUS_PLUGIN("builtin_type", register_conv2d)
