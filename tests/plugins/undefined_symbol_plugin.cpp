// A plugin that calls a Janus function the program does not have (as one
// built against another Janus would; tests/test_cli_plugins.sh): dlopen must
// fail naming the symbol, demangled, rather than crash at the call.
#include <memory>

#include <janus/plugin.hpp>

namespace janus {
int function_not_in_janus(int);  // declared, defined nowhere
}  // namespace janus

namespace {
void register_nothing(janus::PluginRegistrar& registrar) {
  registrar.add_layer_type("never_registered", [](const auto& /*config*/, const std::string& name) {
    return std::make_unique<janus::Dropout>(name, 0.1 * janus::function_not_in_janus(1));
  });
}
}  // namespace

JANUS_PLUGIN("undefined_symbol", register_nothing)
