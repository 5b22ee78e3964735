// Optimizers: bookkeeping here (state slots, step count); the update
// arithmetic is one device kernel per rule.
#include "janus/optimizer.hpp"

#include "janus/error.hpp"
#include "nn/config_domain.hpp"

namespace janus {

void Optimizer::bind(std::vector<NamedParameter> params) {
  JANUS_CHECK(!bound_, "optimizer '", name(), "': bound to its parameters already");
  params_ = std::move(params);
  bound_ = true;
}

void Optimizer::step(double lr) {
  JANUS_CHECK(bound_, "optimizer '", name(), "': step(lr) needs the optimizer bound to its parameters "
              "(construct it from model.named_parameters(), or call bind())");
  step(params_, lr);
}

void Optimizer::step(const std::vector<NamedParameter>& params, double lr) {
  if (bound_ && &params != &params_) {
    JANUS_CHECK(params.size() == params_.size(), "optimizer '", name(), "': bound to ", params_.size(),
                " parameters, stepped with ", params.size());
    for (size_t i = 0; i < params.size(); ++i)
      JANUS_CHECK(params[i].name == params_[i].name && params[i].parameter == params_[i].parameter, "optimizer '",
                  name(), "': parameter ", i, " is '", params[i].name, "' but the optimizer is bound to '",
                  params_[i].name, "' (of its own model)");
  }
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
  using namespace config_detail;
  const std::string where = "optimizer " + type;
  if (type == "sgd") {
    allow({"momentum", "weight_decay", "nesterov"});
    const double momentum = config_number(cfg, "momentum", 0.0, unit_open(), where);
    JANUS_CHECK(!cfg.contains("nesterov") || cfg.at("nesterov").is_boolean(),
                "optimizer sgd: 'nesterov' must be true or false, got ", cfg.contains("nesterov") ? cfg.at("nesterov").dump() : "");
    const bool nesterov = cfg.value("nesterov", false);
    JANUS_CHECK(!nesterov || momentum > 0.0, "optimizer sgd: nesterov needs momentum > 0");
    return std::make_unique<SGD>(momentum, config_number(cfg, "weight_decay", 0.0, non_negative(), where), nesterov);
  }
  if (type == "adam" || type == "adamw") {
    allow({"beta1", "beta2", "eps", "weight_decay"});
    // beta1 = 1 would divide by 1 - beta1^t = 0 in the bias correction; beta2 >= 1 makes the second moment
    // meaningless; eps = 0 divides by zero where a gradient is zero.
    return std::make_unique<Adam>(config_number(cfg, "beta1", 0.9, unit_open(), where),
                                  config_number(cfg, "beta2", 0.999, unit_open(), where),
                                  config_number(cfg, "eps", 1e-8, positive(), where),
                                  config_number(cfg, "weight_decay", type == "adamw" ? 0.01 : 0.0, non_negative(), where),
                                  type == "adamw");
  }
  throw Error("unknown optimizer '" + type + "' (expected sgd, adam or adamw)");
}

std::unique_ptr<Optimizer> make_optimizer(const nlohmann::json& config, std::vector<NamedParameter> params) {
  std::unique_ptr<Optimizer> optimizer = make_optimizer(config);
  optimizer->bind(std::move(params));
  return optimizer;
}

}  // namespace janus
