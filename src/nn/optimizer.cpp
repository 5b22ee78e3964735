// Optimizers: bookkeeping here (state slots, step count); the update
// arithmetic is one device kernel per rule.
#include "janus/optimizer.hpp"

#include "janus/error.hpp"

namespace janus {

void Optimizer::step(const std::vector<NamedParameter>& params, double lr) {
  ++steps_;
  for (const auto& np : params) update(np.name, *np.parameter, lr);
}

Tensor& Optimizer::slot(const std::string& param_name, const char* slot_name, const Parameter& p) {
  const std::string key = param_name + "." + slot_name;
  auto it = state_.find(key);
  if (it == state_.end()) {
    it = state_.emplace(key, Tensor::zeros(p.value.shape(), p.value.device(), p.value.dtype())).first;
  } else {
    JANUS_CHECK(it->second.shape() == p.value.shape(), "optimizer state '", key, "' has shape ",
                it->second.shape().str(), " but the parameter has shape ", p.value.shape().str());
    if (&it->second.device() != &p.value.device()) it->second = it->second.to(p.value.device());
  }
  return it->second;
}

void SGD::update(const std::string& name, Parameter& p, double lr) {
  Tensor none;
  Tensor& velocity = momentum_ != 0.0 ? slot(name, "velocity", p) : none;
  p.value.device().sgd_update(p.value, p.grad, velocity, lr, momentum_, p.decay ? weight_decay_ : 0.0, nesterov_);
}

nlohmann::json SGD::config() const {
  return {{"type", "sgd"}, {"momentum", momentum_}, {"weight_decay", weight_decay_}, {"nesterov", nesterov_}};
}

void Adam::update(const std::string& name, Parameter& p, double lr) {
  Tensor& m = slot(name, "m", p);
  Tensor& v = slot(name, "v", p);
  p.value.device().adam_update(p.value, p.grad, m, v, lr, beta1_, beta2_, eps_, p.decay ? weight_decay_ : 0.0,
                               decoupled_, steps_);
}

nlohmann::json Adam::config() const {
  return {{"type", decoupled_ ? "adamw" : "adam"}, {"beta1", beta1_}, {"beta2", beta2_}, {"eps", eps_},
          {"weight_decay", weight_decay_}};
}

namespace {
double number(const nlohmann::json& cfg, const char* key, double fallback) {
  if (!cfg.contains(key)) return fallback;
  JANUS_CHECK(cfg.at(key).is_number(), "optimizer: '", key, "' must be a number, got ", cfg.at(key).dump());
  return cfg.at(key).get<double>();
}
}  // namespace

std::unique_ptr<Optimizer> make_optimizer(const nlohmann::json& cfg) {
  JANUS_CHECK(cfg.is_object() && cfg.contains("type") && cfg.at("type").is_string(),
              "optimizer: expected an object with a string 'type', got ", cfg.dump());
  const std::string type = cfg.at("type").get<std::string>();
  auto allow = [&](std::initializer_list<const char*> keys) {
    for (auto it = cfg.begin(); it != cfg.end(); ++it) {
      bool ok = it.key() == "type";
      for (const char* k : keys) ok = ok || it.key() == k;
      JANUS_CHECK(ok, "optimizer '", type, "': unknown option '", it.key(), "'");
    }
  };
  if (type == "sgd") {
    allow({"momentum", "weight_decay", "nesterov"});
    const double momentum = number(cfg, "momentum", 0.0);
    JANUS_CHECK(momentum >= 0.0 && momentum < 1.0, "optimizer sgd: momentum must be in [0, 1), got ", momentum);
    JANUS_CHECK(!cfg.contains("nesterov") || cfg.at("nesterov").is_boolean(),
                "optimizer sgd: 'nesterov' must be true or false, got ", cfg.contains("nesterov") ? cfg.at("nesterov").dump() : "");
    const bool nesterov = cfg.value("nesterov", false);
    JANUS_CHECK(!nesterov || momentum > 0.0, "optimizer sgd: nesterov needs momentum > 0");
    return std::make_unique<SGD>(momentum, number(cfg, "weight_decay", 0.0), nesterov);
  }
  if (type == "adam" || type == "adamw") {
    allow({"beta1", "beta2", "eps", "weight_decay"});
    return std::make_unique<Adam>(number(cfg, "beta1", 0.9), number(cfg, "beta2", 0.999), number(cfg, "eps", 1e-8),
                                  number(cfg, "weight_decay", type == "adamw" ? 0.01 : 0.0), type == "adamw");
  }
  throw Error("unknown optimizer '" + type + "' (expected sgd, adam or adamw)");
}

}  // namespace janus
