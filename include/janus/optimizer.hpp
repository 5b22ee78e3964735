// Optimizers: SGD with (Nesterov) momentum, Adam and AdamW, with weight
// decay. State tensors (velocity, moments) are kept per parameter name so they
// can be checkpointed and restored.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "janus/model.hpp"

namespace janus {

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual std::string name() const = 0;
  // Binds the optimizer to its parameters (a model's named_parameters()),
  // as the constructors taking them do: step(lr) then updates exactly
  // these, and step(params, lr) refuses any other list. Throws an Error if
  // bound already.
  void bind(std::vector<NamedParameter> params);
  bool bound() const { return bound_; }
  // One update of every bound parameter from its gradient, at learning rate
  // lr (an Error when the optimizer is not bound).
  void step(double lr);
  // One update of every parameter from its gradient, at learning rate lr.
  // A bound optimizer checks that these are its parameters (same names,
  // same tensors, same order) and throws an Error naming the first
  // difference otherwise.
  void step(const std::vector<NamedParameter>& params, double lr);
  int64_t steps() const { return steps_; }
  void set_steps(int64_t s) { steps_ = s; }
  // State by "<parameter name>.<slot>", e.g. "conv2d_0.W.velocity".
  std::map<std::string, Tensor>& state() { return state_; }
  virtual nlohmann::json config() const = 0;

 protected:
  virtual void update(const std::string& name, Parameter& p, double lr) = 0;
  // The state slot for a parameter, created as zeros like the parameter.
  Tensor& slot(const std::string& param_name, const char* slot, const Parameter& p);
  std::map<std::string, Tensor> state_;
  int64_t steps_ = 0;

 private:
  std::vector<NamedParameter> params_;  // when bound
  bool bound_ = false;
};

class SGD : public Optimizer {
 public:
  SGD(double momentum = 0.0, double weight_decay = 0.0, bool nesterov = false)
      : momentum_(momentum), weight_decay_(weight_decay), nesterov_(nesterov) {}
  // Bound to `params` (see Optimizer::bind).
  SGD(std::vector<NamedParameter> params, double momentum = 0.0, double weight_decay = 0.0, bool nesterov = false)
      : SGD(momentum, weight_decay, nesterov) {
    bind(std::move(params));
  }
  std::string name() const override { return "sgd"; }
  nlohmann::json config() const override;

 protected:
  void update(const std::string& name, Parameter& p, double lr) override;

 private:
  double momentum_, weight_decay_;
  bool nesterov_;
};

// decoupled = false: Adam (L2 penalty added to the gradient);
// decoupled = true: AdamW (Loshchilov & Hutter, decay applied to the weights).
class Adam : public Optimizer {
 public:
  Adam(double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0.0,
       bool decoupled = false)
      : beta1_(beta1), beta2_(beta2), eps_(eps), weight_decay_(weight_decay), decoupled_(decoupled) {}
  // Bound to `params` (see Optimizer::bind).
  Adam(std::vector<NamedParameter> params, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
       double weight_decay = 0.0, bool decoupled = false)
      : Adam(beta1, beta2, eps, weight_decay, decoupled) {
    bind(std::move(params));
  }
  std::string name() const override { return decoupled_ ? "adamw" : "adam"; }
  nlohmann::json config() const override;

 protected:
  void update(const std::string& name, Parameter& p, double lr) override;

 private:
  double beta1_, beta2_, eps_, weight_decay_;
  bool decoupled_;
};

// {"type": "sgd", "momentum": 0.9, "weight_decay": 5e-4, "nesterov": true}
// {"type": "adam"|"adamw", "beta1": .., "beta2": .., "eps": .., "weight_decay": ..}
// Domains (defaults): momentum [0, 1) (0), weight_decay [0, inf) (0; adamw 0.01),
// beta1 [0, 1) (0.9), beta2 [0, 1) (0.999), eps (0, inf) (1e-8); nesterov needs
// momentum > 0. A value outside its domain throws janus::Error naming the
// field, the value and the domain.
std::unique_ptr<Optimizer> make_optimizer(const nlohmann::json& config);
// The same, bound to `params` (a model's named_parameters()).
std::unique_ptr<Optimizer> make_optimizer(const nlohmann::json& config, std::vector<NamedParameter> params);

}  // namespace janus
