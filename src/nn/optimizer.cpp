// Optimizers: bookkeeping here (state slots, step count); the update
// arithmetic is one device kernel per rule. update() collects each
// parameter's entry (with its own lr and weight decay) and flush() hands the
// whole step to the device at once (Device::*_update_multi: one launch on CUDA).
#include "janus/optimizer.hpp"

#include <cstring>

#include "janus/error.hpp"
#include "janus/nlohmann_json.hpp"
#include "nn/config_domain.hpp"

namespace janus {

void Optimizer::bind(std::vector<NamedParameter> params) {
  JANUS_CHECK(!bound_, "optimizer '", name(), "': bound to its parameters already");
  params_ = std::move(params);
  // Which parameters came with a living owner (a model's named_parameters()):
  // those are checked for expiry at every step.
  owned_.clear();
  for (const NamedParameter& p : params_) owned_.push_back(!p.owner.expired());
  bound_ = true;
}

void Optimizer::step(double lr) {
  JANUS_CHECK(bound_, "optimizer '", name(), "': step(lr) needs the optimizer bound to its parameters "
              "(construct it from model.named_parameters(), or call bind())");
  step(params_, lr);
}

void Optimizer::step(const std::vector<NamedParameter>& params, double lr) {
  if (bound_) {
    // Before any parameter is touched: the bound model must still exist.
    for (size_t i = 0; i < params_.size(); ++i)
      JANUS_CHECK(!owned_[i] || !params_[i].owner.expired(), "optimizer '", name(), "': its parameter '",
                  params_[i].name, "' belonged to a model that has been destroyed or replaced (e.g. `model = "
                  "load_model(...)`); bind a new optimizer to the new model's named_parameters(), or load "
                  "checkpoints into the existing model with load_checkpoint_into(path, model, &optimizer)");
  }
  if (bound_ && &params != &params_) {
    JANUS_CHECK(params.size() == params_.size(), "optimizer '", name(), "': bound to ", params_.size(),
                " parameters, stepped with ", params.size());
    for (size_t i = 0; i < params.size(); ++i) {
      JANUS_CHECK(params[i].name == params_[i].name, "optimizer '", name(), "': parameter ", i, " is '",
                  params[i].name, "' but the optimizer is bound to '", params_[i].name, "' (of its own model)");
      JANUS_CHECK(params[i].parameter == params_[i].parameter, "optimizer '", name(), "': parameter ", i, " '",
                  params[i].name, "' is another tensor than the '", params_[i].name,
                  "' the optimizer is bound to: a parameter of another model (or of a copy); bind an optimizer "
                  "to each model's own named_parameters()");
    }
  }
  ++steps_;
  if (resolved_.size() != params.size()) resolved_.resize(params.size());
  for (updating_ = 0; updating_ < params.size(); ++updating_) {
    const NamedParameter& np = params[updating_];
    const ParameterOptions& o = np.parameter->options;
    if (!o.trainable) continue;
    // The options may have been set in C++ (Parameter::options) past the config reader's checks.
    const auto check = [&](double x, const char* key) {
      if (!config_detail::non_negative().contains(x))
        config_detail::check_domain(x, config_detail::non_negative(),
                                    "optimizer '" + name() + "': parameter '" + np.name + "'", key);
    };
    check(o.lr_mult, "lr_mult");
    if (o.decay_mult) check(*o.decay_mult, "decay_mult");
    update(np.name, *np.parameter, parameter_step(*np.parameter, lr));
  }
  flush();
}

Optimizer::ParameterStep Optimizer::parameter_step(const Parameter& p, double lr) const {
  // An explicit decay_mult (Caffe's) overrides the rule, as a PyTorch parameter group's own weight_decay does.
  const bool rule_applies = weight_decay_applies_to_ == WeightDecayAppliesTo::All || p.is_weight;
  const double decay_mult = p.options.decay_mult ? *p.options.decay_mult : (rule_applies ? 1.0 : 0.0);
  // x * 1.0 == x exactly: parameters without options step exactly as before options existed.
  return {lr * p.options.lr_mult, weight_decay_ * decay_mult};
}

namespace {

// The weight decay keys of an optimizer's config(): "weight_decay", "weight_decay_applies_to".
void add_weight_decay_config(const Optimizer& optimizer, nlohmann::json& cfg) {
  cfg["weight_decay"] = optimizer.weight_decay();
  cfg["weight_decay_applies_to"] = optimizer.weight_decay_applies_to() == WeightDecayAppliesTo::All ? "all" : "weights";
}

}  // namespace

// The entries of one device (in order) at a time: a step's parameters are
// normally all on one device, so this is one call.
template <class Entry, class Apply>
static void for_each_device_run(std::vector<Entry>& pending, Apply apply) {
  for (size_t begin = 0; begin < pending.size();) {
    Device& dev = pending[begin].w->device();
    size_t end = begin + 1;
    while (end < pending.size() && &pending[end].w->device() == &dev) ++end;
    if (begin == 0 && end == pending.size()) {
      apply(dev, pending);  // the usual case, one device: the list itself, not a copy
    } else {
      apply(dev, std::vector<Entry>(pending.begin() + static_cast<std::ptrdiff_t>(begin),
                                    pending.begin() + static_cast<std::ptrdiff_t>(end)));
    }
    begin = end;
  }
  pending.clear();
}

Tensor& Optimizer::slot(const std::string& param_name, const char* slot_name, const Parameter& p) {
  JANUS_CHECK(updating_ < resolved_.size(), "optimizer '", name(), "': slot() called outside step()");
  ResolvedSlots& resolved = resolved_[updating_];
  if (resolved.parameter != &p || resolved.name != param_name) resolved = {&p, param_name, {}};
  Tensor* state = nullptr;
  for (const auto& [kept_name, kept] : resolved.slots)
    if (std::strcmp(kept_name, slot_name) == 0) state = kept;
  if (state == nullptr) {
    const std::string key = param_name + "." + slot_name;
    auto it = state_.find(key);
    if (it == state_.end())
      it = state_.emplace(key, Tensor::zeros(p.value.shape(), p.value.device(), p.value.dtype())).first;
    state = &it->second;
    resolved.slots.emplace_back(slot_name, state);
  }
  // Checked at every step: a kept slot follows its parameter to another device too.
  JANUS_CHECK(state->shape() == p.value.shape(), "optimizer state '", param_name, ".", slot_name, "' has shape ",
              state->shape().str(), " but the parameter has shape ", p.value.shape().str());
  if (&state->device() != &p.value.device()) *state = state->to(p.value.device());
  return *state;
}

void SGD::check_hyperparameters() const {
  using namespace config_detail;
  check_domain(momentum_, unit_open(), "optimizer sgd", "momentum");
  check_domain(weight_decay(), non_negative(), "optimizer sgd", "weight_decay");
  JANUS_CHECK(!nesterov_ || momentum_ > 0.0, "optimizer sgd: nesterov needs momentum > 0");
}

void Adam::check_hyperparameters() const {
  using namespace config_detail;
  const std::string where = decoupled_ ? "optimizer adamw" : "optimizer adam";
  // beta1 = 1 would divide by 1 - beta1^t = 0 in the bias correction; beta2 >= 1 makes the second moment
  // meaningless; eps = 0 divides by zero where a gradient is zero.
  check_domain(beta1_, unit_open(), where, "beta1");
  check_domain(beta2_, unit_open(), where, "beta2");
  check_domain(eps_, positive(), where, "eps");
  check_domain(weight_decay(), non_negative(), where, "weight_decay");
}

void SGD::update(const std::string& name, Parameter& p, const ParameterStep& hp) {
  Tensor* velocity = momentum_ != 0.0 ? &slot(name, "velocity", p) : nullptr;
  pending_.push_back({&p.value, &p.grad, velocity, hp.lr, hp.weight_decay});
}

void SGD::flush() {
  for_each_device_run(pending_, [&](Device& dev, const std::vector<SgdParamUpdate>& run) {
    dev.sgd_update_multi(run, momentum_, nesterov_);
  });
}

Json SGD::config() const {
  nlohmann::json cfg = {{"type", "sgd"}, {"momentum", momentum_}, {"nesterov", nesterov_}};
  add_weight_decay_config(*this, cfg);
  return cfg;
}

void Adam::update(const std::string& name, Parameter& p, const ParameterStep& hp) {
  Tensor& m = slot(name, "m", p);
  Tensor& v = slot(name, "v", p);
  pending_.push_back({&p.value, &p.grad, &m, &v, hp.lr, hp.weight_decay});
}

void Adam::flush() {
  for_each_device_run(pending_, [&](Device& dev, const std::vector<AdamParamUpdate>& run) {
    dev.adam_update_multi(run, beta1_, beta2_, eps_, decoupled_, steps_);
  });
}

Json Adam::config() const {
  nlohmann::json cfg = {{"type", decoupled_ ? "adamw" : "adam"}, {"beta1", beta1_}, {"beta2", beta2_}, {"eps", eps_}};
  add_weight_decay_config(*this, cfg);
  return cfg;
}

namespace {

// "weight_decay_applies_to": "weights" (the default) or "all".
WeightDecayAppliesTo weight_decay_applies_to(const nlohmann::json& cfg, const std::string& where) {
  if (!cfg.contains("weight_decay_applies_to")) return WeightDecayAppliesTo::Weights;
  const nlohmann::json& v = cfg.at("weight_decay_applies_to");
  if (v == "weights") return WeightDecayAppliesTo::Weights;
  if (v == "all") return WeightDecayAppliesTo::All;
  throw Error(where + ": 'weight_decay_applies_to' is " + v.dump() +
              "; expected \"weights\" (weights only, not biases nor BatchNorm: the default) or \"all\" "
              "(every parameter, as torch.optim)");
}

}  // namespace

std::unique_ptr<Optimizer> make_optimizer(const Json& config) {
  const nlohmann::json& cfg = nlohmann_json(config);
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
    allow({"momentum", "weight_decay", "weight_decay_applies_to", "nesterov"});
    const double momentum = config_number(cfg, "momentum", 0.0, unit_open(), where);
    JANUS_CHECK(!cfg.contains("nesterov") || cfg.at("nesterov").is_boolean(),
                "optimizer sgd: 'nesterov' must be true or false, got ", cfg.contains("nesterov") ? cfg.at("nesterov").dump() : "");
    const bool nesterov = cfg.value("nesterov", false);
    JANUS_CHECK(!nesterov || momentum > 0.0, "optimizer sgd: nesterov needs momentum > 0");
    return std::make_unique<SGD>(momentum, config_number(cfg, "weight_decay", 0.0, non_negative(), where), nesterov,
                                 weight_decay_applies_to(cfg, where));
  }
  if (type == "adam" || type == "adamw") {
    allow({"beta1", "beta2", "eps", "weight_decay", "weight_decay_applies_to"});
    // The domains are Adam::check_hyperparameters' (why each: there).
    return std::make_unique<Adam>(config_number(cfg, "beta1", 0.9, unit_open(), where),
                                  config_number(cfg, "beta2", 0.999, unit_open(), where),
                                  config_number(cfg, "eps", 1e-8, positive(), where),
                                  config_number(cfg, "weight_decay", type == "adamw" ? 0.01 : 0.0, non_negative(), where),
                                  type == "adamw", weight_decay_applies_to(cfg, where));
  }
  throw Error("unknown optimizer '" + type + "' (expected sgd, adam or adamw)");
}

std::unique_ptr<Optimizer> make_optimizer(const Json& config, std::vector<NamedParameter> params) {
  std::unique_ptr<Optimizer> optimizer = make_optimizer(config);
  optimizer->bind(std::move(params));
  return optimizer;
}

}  // namespace janus
