// A Janus plugin: a shared library that adds the layer type "residual_dense"
// (residual_dense.hpp) to the `janus` tool, so that a run config, a
// checkpoint and `janus evaluate` / `predict` can name it:
//     janus train --config iris_residual.json          (its "plugins" names this library)
//     janus train --config my.json --plugin build/liblayer_plugin.so
// The entry point is JANUS_PLUGIN at the end (janus/plugin.hpp): the tool
// checks the plugin's ABI and Janus version, then calls register_layers.
#include <string>

#include <janus/error.hpp>
#include <janus/plugin.hpp>

#include "residual_dense.hpp"

namespace layer_plugin {

namespace {

// config[key], which must be a positive integer. `layer` names the layer in
// the message, as Janus's own layers do.
int64_t positive_integer(const janus::Json& config, const char* key, const std::string& layer) {
  JANUS_CHECK(config.contains(key) && config.at(key).is_number_integer() && config.at(key).get<int64_t>() > 0,
              layer, ": '", key, "' must be a positive integer", config.contains(key) ? ", got " : " (missing)",
              config.contains(key) ? config.at(key).dump() : "");
  return config.at(key).get<int64_t>();
}

// The janus::LayerFactory of "residual_dense": checks the keys as the
// built-in types do (an unknown key is an error, not ignored).
std::unique_ptr<janus::Layer> make_residual_dense(const janus::Json& config, const std::string& name) {
  const std::string layer = "layer '" + name + "' (residual_dense)";
  for (const std::string& key : config.keys())
    JANUS_CHECK(key == "type" || key == "name" || key == "units" || key == "hidden", layer, ": unknown option '",
                key, "' (allowed: units, hidden)");
  return std::make_unique<ResidualDense>(name, positive_integer(config, "units", layer),
                                         positive_integer(config, "hidden", layer));
}

void register_layers(janus::PluginRegistrar& registrar) {
  registrar.add_layer_type("residual_dense", make_residual_dense);
}

}  // namespace

}  // namespace layer_plugin

JANUS_PLUGIN("layer_plugin", layer_plugin::register_layers)
