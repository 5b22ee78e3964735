// make_layer: JSON config -> Layer. Every key is checked: a typo in a config
// is an error naming the layer and the key, never silently ignored. The keys
// of per-parameter options (trainable, lr_mult, ...) are common to every
// layer and read by parameter_options_from_config().
#include <cstdint>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <type_traits>

#include "janus/error.hpp"
#include "janus/layers.hpp"
#include "janus/nlohmann_json.hpp"
#include "janus/parameter_options.hpp"
#include "nn/layer_name.hpp"

namespace janus {

namespace {

using nlohmann::json;

void check_keys(const json& cfg, const std::string& owner, const std::set<std::string>& allowed) {
  for (auto it = cfg.begin(); it != cfg.end(); ++it) {
    if (it.key() == "type" || it.key() == "name" || is_parameter_options_key(it.key())) continue;
    if (!allowed.count(it.key())) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      throw Error(owner + ": unknown option '" + it.key() + "' (allowed: " + (list.empty() ? "none" : list) + ")");
    }
  }
}

template <class T>
T get(const json& cfg, const char* key, T fallback, const std::string& owner) {
  if (!cfg.contains(key)) return fallback;
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    // Whole numbers only, in range: nlohmann would truncate 2.5 or 1e30 (undefined behaviour for the latter).
    const json& v = cfg.at(key);
    if (!v.is_number_integer() ||
        (v.is_number_unsigned() ? v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<T>::max())
                                : (v.get<int64_t>() < std::numeric_limits<T>::min() ||
                                   v.get<int64_t>() > std::numeric_limits<T>::max())))
      throw Error(owner + ": option '" + key + "' must be an integer in range, got " + v.dump());
    return static_cast<T>(v.get<int64_t>());
  }
  try {
    return cfg.at(key).get<T>();
  } catch (const json::exception&) {
    throw Error(owner + ": option '" + key + "' has the wrong type: " + cfg.at(key).dump());
  }
}

int64_t require_positive(const json& cfg, const char* key, const std::string& owner) {
  JANUS_CHECK(cfg.contains(key), owner, ": missing required option '", key, "'");
  const json& v = cfg.at(key);
  JANUS_CHECK(v.is_number_integer() && v.get<int64_t>() > 0, owner, ": option '", key,
              "' must be a positive integer, got ", v.dump());
  return v.get<int64_t>();
}

constexpr int64_t kMaxKernel = 1 << 16;

// "kernel": 3 or [3, 5]
std::pair<int, int> kernel_of(const json& cfg, const std::string& owner) {
  JANUS_CHECK(cfg.contains("kernel"), owner, ": missing required option 'kernel'");
  const json& k = cfg.at("kernel");
  // (compared as 64-bit values: a huge extent must not wrap into a plausible int)
  auto extent = [](const json& e) { return e.is_number_integer() && e.get<int64_t>() > 0 && e.get<int64_t>() <= kMaxKernel; };
  if (extent(k)) return {k.get<int>(), k.get<int>()};
  if (k.is_array() && k.size() == 2 && extent(k[0]) && extent(k[1])) return {k[0].get<int>(), k[1].get<int>()};
  throw Error(owner + ": 'kernel' must be a positive integer (at most " + std::to_string(kMaxKernel) +
              ") or [rows, cols], got " + k.dump());
}

// The types make_layer builds itself (besides activation names).
const std::set<std::string>& builtin_types() {
  static const std::set<std::string> types{"fully_connected", "dense",      "linear",     "conv2d",  "pool2d",
                                           "maxpool2d",       "avgpool2d",  "flatten",    "activation",
                                           "batchnorm",       "batch_norm", "dropout",    "add",     "concat",
                                           "global_avg_pool", "scale"};
  return types;
}

// The registry of register_layer_type: types of the program's own.
struct LayerRegistry {
  std::mutex mutex;
  std::map<std::string, LayerFactory> factories;
};
LayerRegistry& registry() {
  static LayerRegistry r;
  return r;
}

const LayerFactory* registered_factory(const std::string& type) {
  LayerRegistry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = r.factories.find(type);
  return it == r.factories.end() ? nullptr : &it->second;  // entries are never removed
}

// The layer of this type with its own options (all but the parameter options).
std::unique_ptr<Layer> make_layer_of_type(const json& cfg, int index, const std::string& type, const std::string& name) {
  const std::string owner = "layer '" + name + "' (" + type + ")";

  if (type == "fully_connected" || type == "dense" || type == "linear") {
    check_keys(cfg, owner, {"n_out", "activation", "negative_slope", "init", "bias"});
    return std::make_unique<FullyConnected>(
        name, require_positive(cfg, "n_out", owner), activation_from_config(cfg, "activation", "linear", owner),
        parse_init(get<std::string>(cfg, "init", "xavier_uniform", owner), owner), get<bool>(cfg, "bias", true, owner));
  }
  if (type == "conv2d") {
    check_keys(cfg, owner,
               {"n_out", "kernel", "stride", "pad", "activation", "negative_slope", "init", "bias", "groups"});
    const auto [kr, kc] = kernel_of(cfg, owner);
    const int stride = get<int>(cfg, "stride", 1, owner);
    JANUS_CHECK(stride > 0, owner, ": 'stride' must be positive, got ", stride);
    return std::make_unique<Conv2D>(
        name, require_positive(cfg, "n_out", owner), kr, kc,
        activation_from_config(cfg, "activation", "linear", owner), stride,
        cfg.contains("pad") ? Padding::parse(cfg.at("pad"), owner) : Padding{Padding::Mode::Same},
        parse_init(get<std::string>(cfg, "init", "xavier_uniform", owner), owner), get<bool>(cfg, "bias", true, owner),
        get<int>(cfg, "groups", 1, owner));
  }
  if (type == "pool2d" || type == "maxpool2d" || type == "avgpool2d") {
    check_keys(cfg, owner, {"mode", "kernel", "stride", "pad"});
    std::string mode = get<std::string>(cfg, "mode", type == "avgpool2d" ? "average" : "max", owner);
    JANUS_CHECK(mode == "max" || mode == "average" || mode == "avg", owner, ": unknown pooling mode '", mode,
                "' (expected max or average)");
    const auto [kr, kc] = kernel_of(cfg, owner);
    const int stride = get<int>(cfg, "stride", kr, owner);
    JANUS_CHECK(stride > 0, owner, ": 'stride' must be positive, got ", stride);
    return std::make_unique<Pool2D>(name, mode == "max" ? PoolMode::Max : PoolMode::Average, kr, kc, stride,
                                    cfg.contains("pad") ? Padding::parse(cfg.at("pad"), owner) : Padding{});
  }
  if (type == "flatten") {
    check_keys(cfg, owner, {});
    return std::make_unique<Flatten>(name);
  }
  if (type == "activation" || is_activation_name(type)) {  // {"type": "gelu"} is short for the long form
    check_keys(cfg, owner, {"activation", "negative_slope"});
    JANUS_CHECK(type != "activation" || cfg.contains("activation"), owner, ": missing required option 'activation'");
    return std::make_unique<ActivationLayer>(
        name, activation_from_config(cfg, "activation", type == "activation" ? "" : type, owner));
  }
  if (type == "batchnorm" || type == "batch_norm") {
    check_keys(cfg, owner, {"momentum", "eps"});
    return std::make_unique<BatchNorm>(name, get<double>(cfg, "momentum", 0.1, owner), get<double>(cfg, "eps", 1e-5, owner));
  }
  if (type == "dropout") {
    check_keys(cfg, owner, {"p"});
    return std::make_unique<Dropout>(name, get<double>(cfg, "p", 0.5, owner));
  }
  if (type == "add") {
    check_keys(cfg, owner, {});
    return std::make_unique<Add>(name);
  }
  if (type == "concat") {
    check_keys(cfg, owner, {});
    return std::make_unique<Concat>(name);
  }
  if (type == "global_avg_pool") {
    check_keys(cfg, owner, {});
    return std::make_unique<GlobalAvgPool>(name);
  }
  if (type == "scale") {
    check_keys(cfg, owner, {"factor"});
    JANUS_CHECK(cfg.contains("factor"), owner, ": missing required option 'factor'");
    return std::make_unique<Scale>(name, get<double>(cfg, "factor", 1.0, owner));
  }
  if (const LayerFactory* factory = registered_factory(type)) {
    // The factory sees its own keys only: the per-parameter options are
    // Janus's, read by make_layer after it (parameter_options.hpp).
    json own = cfg;
    for (auto it = cfg.begin(); it != cfg.end(); ++it)
      if (is_parameter_options_key(it.key())) own.erase(it.key());
    std::unique_ptr<Layer> layer = (*factory)(own, name);
    JANUS_CHECK(layer != nullptr, owner, ": the registered factory returned no layer");
    JANUS_CHECK(layer->type() == type && layer->name() == name, owner, ": the registered factory made layer '",
                layer->name(), "' of type '", layer->type(), "' (its type() and name must match the config)");
    return layer;
  }
  throw Error("layer " + std::to_string(index) + ": unknown layer type '" + type +
              "' (expected fully_connected, conv2d, pool2d, flatten, activation or an activation's name, "
              "batchnorm, dropout, add, concat, global_avg_pool, scale, or a type registered with "
              "register_layer_type; a plugin's type needs its library loaded first: janus --plugin LIB.so, "
              "or \"plugins\" in the run config)");
}

}  // namespace

void register_layer_type(const std::string& type, LayerFactory factory) {
  JANUS_CHECK(!type.empty(), "register_layer_type: empty type name");
  JANUS_CHECK(factory != nullptr, "register_layer_type: no factory for type '", type, "'");
  JANUS_CHECK(!builtin_types().count(type) && !is_activation_name(type), "register_layer_type: '", type,
              "' is a built-in layer type");
  LayerRegistry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  JANUS_CHECK(r.factories.emplace(type, std::move(factory)).second, "register_layer_type: type '", type,
              "' is registered already");
}

bool is_registered_layer_type(const std::string& type) { return registered_factory(type) != nullptr; }

std::unique_ptr<Layer> make_layer(const Json& config, int index) {
  const json& cfg = nlohmann_json(config);
  JANUS_CHECK(cfg.is_object(), "layer ", index, ": expected a JSON object, got ", cfg.dump());
  JANUS_CHECK(cfg.contains("type") && cfg.at("type").is_string(), "layer ", index,
              ": missing or non-string 'type' in ", cfg.dump());
  const std::string type = cfg.at("type").get<std::string>();
  const std::string name = get<std::string>(cfg, "name", type + "_" + std::to_string(index), "layer " + std::to_string(index));
  nn_detail::check_layer_name(name, detail::concat("layer ", index, " (", type, "), option 'name'"));
  std::unique_ptr<Layer> layer = make_layer_of_type(cfg, index, type, name);
  parameter_options_from_config(cfg, *layer);
  return layer;
}

}  // namespace janus
