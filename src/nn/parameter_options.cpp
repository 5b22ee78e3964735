// Per-parameter options in layer configs (parameter_options.hpp): one table
// of the three options, read and written through it.
#include "janus/parameter_options.hpp"

#include "janus/error.hpp"
#include "janus/nlohmann_json.hpp"
#include "nn/config_domain.hpp"

namespace janus {

namespace {

using nlohmann::json;

// The options a parameter has, by config key.
enum class Option { Trainable, LrMult, DecayMult };
constexpr Option kOptions[] = {Option::Trainable, Option::LrMult, Option::DecayMult};
constexpr const char* kPerParameterKey = "parameters";

const char* key_of(Option o) {
  switch (o) {
    case Option::Trainable: return "trainable";
    case Option::LrMult: return "lr_mult";
    case Option::DecayMult: return "decay_mult";
  }
  return "";
}

bool is_option_key(const std::string& key) {
  for (Option o : kOptions)
    if (key == key_of(o)) return true;
  return false;
}

// The option's value as written in a config; null while it has its default.
json value_of(const ParameterOptions& options, Option o) {
  switch (o) {
    case Option::Trainable: return options.trainable ? json() : json(false);
    case Option::LrMult: return options.lr_mult == 1.0 ? json() : json(options.lr_mult);
    case Option::DecayMult: return options.decay_mult ? json(*options.decay_mult) : json();
  }
  return json();
}

// Reads obj[key_of(o)], when present, into `options`; `where` starts the errors.
void read_option(const json& obj, Option o, ParameterOptions& options, const std::string& where) {
  const char* key = key_of(o);
  if (!obj.contains(key)) return;
  using namespace config_detail;
  switch (o) {
    case Option::Trainable:
      JANUS_CHECK(obj.at(key).is_boolean(), where, ": 'trainable' must be true or false, got ", obj.at(key).dump());
      options.trainable = obj.at(key).get<bool>();
      return;
    case Option::LrMult: options.lr_mult = config_number(obj, key, 1.0, non_negative(), where); return;
    case Option::DecayMult: options.decay_mult = config_number(obj, key, 0.0, non_negative(), where); return;
  }
}

std::string describe(const Layer& layer) { return "layer '" + layer.name() + "' (" + layer.type() + ")"; }

}  // namespace

bool is_parameter_options_key(const std::string& key) { return key == kPerParameterKey || is_option_key(key); }

void parameter_options_from_config(const json& cfg, Layer& layer) {
  const std::string owner = describe(layer);
  const std::vector<Parameter*> params = layer.parameters();
  for (auto it = cfg.begin(); it != cfg.end(); ++it)
    JANUS_CHECK(!is_parameter_options_key(it.key()) || !params.empty(), owner, ": '", it.key(),
                "' sets options of a layer's parameters, and this layer has none");
  // The layer's keys apply to all its parameters; "parameters" then overrides them one by one.
  ParameterOptions layer_options;
  for (Option o : kOptions) read_option(cfg, o, layer_options, owner);
  for (Parameter* p : params) p->options = layer_options;
  if (!cfg.contains(kPerParameterKey)) return;
  const json& per_parameter = cfg.at(kPerParameterKey);
  JANUS_CHECK(per_parameter.is_object(), owner,
              ": 'parameters' must be an object {parameter name: {trainable, lr_mult, decay_mult}}, got ",
              per_parameter.dump());
  // By the names relative to the layer (Layer::named_parameters): "W", or
  // "conv1.W" for a composite's child, so that each names one parameter.
  const auto named = layer.named_parameters();
  for (auto it = per_parameter.begin(); it != per_parameter.end(); ++it) {
    Parameter* p = nullptr;
    std::string names;
    for (const auto& [name, q] : named) {
      if (name == it.key()) p = q;
      names += (names.empty() ? "" : ", ") + name;
    }
    JANUS_CHECK(p != nullptr, owner, ": 'parameters' names '", it.key(),
                "', which is not a parameter of this layer (its parameters: ", names, ")");
    const std::string where = owner + ", parameter '" + it.key() + "'";
    JANUS_CHECK(it.value().is_object(), where, ": expected an object of options (trainable, lr_mult, decay_mult), got ",
                it.value().dump());
    for (auto opt = it.value().begin(); opt != it.value().end(); ++opt)
      JANUS_CHECK(is_option_key(opt.key()), where, ": unknown option '", opt.key(),
                  "' (allowed: trainable, lr_mult, decay_mult)");
    for (Option o : kOptions) read_option(it.value(), o, p->options, where);
  }
}

void add_parameter_options_to_config(Layer& layer, json& cfg) {
  const auto named = layer.named_parameters();
  if (named.empty()) return;
  json per_parameter = json::object();
  for (Option o : kOptions) {
    const json first = value_of(named.front().second->options, o);
    bool shared = true;
    for (const auto& np : named) shared = shared && value_of(np.second->options, o) == first;
    if (shared) {
      if (!first.is_null()) cfg[key_of(o)] = first;
      continue;
    }
    for (const auto& [name, p] : named) {
      const json v = value_of(p->options, o);
      if (!v.is_null()) per_parameter[name][key_of(o)] = v;
    }
  }
  if (!per_parameter.empty()) cfg[kPerParameterKey] = per_parameter;
}

}  // namespace janus
