// The nlohmann::json entry points of Janus: opt-in, for programs that write
// configs with nlohmann/json (the Janus library itself, its tests and tools).
// <janus/janus.hpp> does not include this header, so a program that does not
// want nlohmann/json never parses it; one that does links Janus::nlohmann_json
// (the CMake package's component nlohmann_json, which adds nlohmann/json;
// see cmake/JanusConfig.cmake.in).
//
// What including it gives:
//   - nlohmann::json -> janus::Json implicitly: an nlohmann::json can be
//     passed wherever the API takes a Json (make_layer(j, 0),
//     NeuralNetwork::from_config(j), ...);
//   - janus::Json -> nlohmann::json implicitly, through nlohmann/json's own
//     to_json mechanism: `nlohmann::json j = net.config();`, or a Json
//     inside an nlohmann initializer list;
//   - nlohmann_json(v): the nlohmann::json inside a Json, by reference (no
//     copy; the library's code reads configs through it);
//   - the config helpers the built-in layers use, for layer authors who
//     parse their own configs the same way (activation_from_config, ...).
//   - == and != between a Json and an nlohmann::json.
// Both conversions copy the value (nlohmann_json() does not).
#pragma once

#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include <nlohmann/json.hpp>

#include "janus/activation.hpp"
#include "janus/json.hpp"
#include "janus/layer.hpp"

namespace janus {

namespace detail {
struct JsonValue {
  nlohmann::json value;
};

// Reaches the representation of a Json (a null Json has none until written).
struct JsonAccess {
  static const nlohmann::json& value(const Json& j) {
    static const nlohmann::json null;
    return j.value_ ? j.value_->value : null;
  }
  static nlohmann::json& value(Json& j) {
    if (!j.value_) j.value_ = std::make_unique<JsonValue>();
    return j.value_->value;
  }
  static Json make(nlohmann::json v) { return Json(std::make_unique<JsonValue>(JsonValue{std::move(v)})); }
};
}  // namespace detail

// The nlohmann::json a Json holds (a reference into it: writing through the
// non-const form changes the Json).
inline const nlohmann::json& nlohmann_json(const Json& j) { return detail::JsonAccess::value(j); }
inline nlohmann::json& nlohmann_json(Json& j) { return detail::JsonAccess::value(j); }

template <>
struct JsonInterop<nlohmann::json> {
  static Json to_janus(const nlohmann::json& j) { return detail::JsonAccess::make(j); }
  static Json to_janus(nlohmann::json&& j) { return detail::JsonAccess::make(std::move(j)); }
};

// nlohmann/json's conversion hook (found by argument-dependent lookup):
// nlohmann::json j = some_janus_json;
inline void to_json(nlohmann::json& j, const Json& v) { j = nlohmann_json(v); }

// Json against nlohmann::json (without these, either side could convert:
// ambiguous). Templates, so that they take exactly an nlohmann::json and
// leave `cfg.at("type") == "conv2d"` to Json's own ==.
template <class T, std::enable_if_t<std::is_same_v<T, nlohmann::json>, int> = 0>
bool operator==(const Json& a, const T& b) { return nlohmann_json(a) == b; }
template <class T, std::enable_if_t<std::is_same_v<T, nlohmann::json>, int> = 0>
bool operator==(const T& a, const Json& b) { return a == nlohmann_json(b); }
template <class T, std::enable_if_t<std::is_same_v<T, nlohmann::json>, int> = 0>
bool operator!=(const Json& a, const T& b) { return !(nlohmann_json(a) == b); }
template <class T, std::enable_if_t<std::is_same_v<T, nlohmann::json>, int> = 0>
bool operator!=(const T& a, const Json& b) { return !(a == nlohmann_json(b)); }

// ---- the config helpers of the built-in layers --------------------------------

// The activation of a layer config: cfg[key] (a name of
// activation_functions.hpp's table, default `fallback`) and, for leaky_relu
// only, cfg["negative_slope"] (a number, default 0.01 as
// torch.nn.LeakyReLU). Throws janus::Error naming `owner` for a non-string
// name, an unknown name, a non-numeric or non-finite slope, or a slope given
// to another activation.
ActivationFunction activation_from_config(const nlohmann::json& cfg, const std::string& key,
                                          const std::string& fallback, const std::string& owner);
// The inverse: sets cfg[key] and, for leaky_relu, cfg["negative_slope"].
void add_activation_config(nlohmann::json& cfg, const std::string& key, const ActivationFunction& act);

// Sets the options of `layer`'s parameters from its config `layer_config`
// (the keys of parameter_options.hpp; absent keys: the defaults of
// ParameterOptions). Throws as parameter_options.hpp says.
void parameter_options_from_config(const nlohmann::json& layer_config, Layer& layer);
// Adds the options of `layer`'s parameters that differ from the defaults to
// `layer_config` (a key on the layer where all its parameters agree, else
// under "parameters"), so that parameter_options_from_config() reads back
// the same options: NeuralNetwork::config() stores them with the layer.
void add_parameter_options_to_config(Layer& layer, nlohmann::json& layer_config);

}  // namespace janus
