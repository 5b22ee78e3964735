// Optimizers: SGD with (Nesterov) momentum, Adam and AdamW, with weight
// decay. State tensors (velocity, moments) are kept per parameter name so they
// can be checkpointed and restored.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "janus/model.hpp"

namespace janus {

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual std::string name() const = 0;
  // One update of every parameter from its gradient, at learning rate lr.
  void step(const std::vector<NamedParameter>& params, double lr);
  int64_t steps() const { return steps_; }
  void set_steps(int64_t s) { steps_ = s; }
  // State by "<parameter name>.<slot>", e.g. "conv2d_0.W.velocity".
  std::map<std::string, Tensor>& state() { return state_; }
  virtual nlohmann::json config() const = 0;

 protected:
  // Queues parameter p's update at learning rate lr; flush() applies the queue.
  virtual void update(const std::string& name, Parameter& p, double lr) = 0;
  virtual void flush() = 0;
  // The state slot for a parameter, created as zeros like the parameter.
  Tensor& slot(const std::string& param_name, const char* slot, const Parameter& p);
  std::map<std::string, Tensor> state_;
  int64_t steps_ = 0;
};

class SGD : public Optimizer {
 public:
  SGD(double momentum = 0.0, double weight_decay = 0.0, bool nesterov = false)
      : momentum_(momentum), weight_decay_(weight_decay), nesterov_(nesterov) {}
  std::string name() const override { return "sgd"; }
  nlohmann::json config() const override;

 protected:
  void update(const std::string& name, Parameter& p, double lr) override;
  void flush() override;

 private:
  double momentum_, weight_decay_;
  bool nesterov_;
  std::vector<SgdParamUpdate> pending_;
};

// decoupled = false: Adam (L2 penalty added to the gradient);
// decoupled = true: AdamW (Loshchilov & Hutter, decay applied to the weights).
class Adam : public Optimizer {
 public:
  Adam(double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0.0,
       bool decoupled = false)
      : beta1_(beta1), beta2_(beta2), eps_(eps), weight_decay_(weight_decay), decoupled_(decoupled) {}
  std::string name() const override { return decoupled_ ? "adamw" : "adam"; }
  nlohmann::json config() const override;

 protected:
  void update(const std::string& name, Parameter& p, double lr) override;
  void flush() override;

 private:
  double beta1_, beta2_, eps_, weight_decay_;
  bool decoupled_;
  std::vector<AdamParamUpdate> pending_;
};

// {"type": "sgd", "momentum": 0.9, "weight_decay": 5e-4, "nesterov": true}
// {"type": "adam"|"adamw", "beta1": .., "beta2": .., "eps": .., "weight_decay": ..}
// Domains (defaults): momentum [0, 1) (0), weight_decay [0, inf) (0; adamw 0.01),
// beta1 [0, 1) (0.9), beta2 [0, 1) (0.999), eps (0, inf) (1e-8); nesterov needs
// momentum > 0. A value outside its domain throws janus::Error naming the
// field, the value and the domain.
std::unique_ptr<Optimizer> make_optimizer(const nlohmann::json& config);

}  // namespace janus
