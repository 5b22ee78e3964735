// Optimizers: SGD with (Nesterov) momentum, Adam and AdamW, with weight
// decay. State tensors (velocity, moments) are kept per parameter name so they
// can be checkpointed and restored.
//
// Per-parameter options (Parameter::options, layer.hpp; the layer config keys
// of parameter_options.hpp) act as PyTorch's parameter groups and Caffe's
// ParamSpec: a frozen parameter (trainable false) is skipped, with no state
// and no decay; the others step at lr * lr_mult with weight decay
// weight_decay * decay_mult, where an unset decay_mult is 1 or 0 by the
// optimizer's rule "weight_decay_applies_to" (WeightDecayAppliesTo).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "janus/json.hpp"
#include "janus/model.hpp"

namespace janus {

// Which parameters weight decay applies to when their decay_mult is unset
// (config "weight_decay_applies_to"):
//   Weights ("weights", the default): weights only (Parameter::is_weight: W
//     of dense and convolution layers), not biases nor BatchNorm's gamma and
//     beta: Janus's rule since its first version, so older configs keep
//     their results bit for bit.
//   All ("all"): every parameter, as torch.optim's weight_decay does.
enum class WeightDecayAppliesTo { Weights, All };

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual std::string name() const = 0;
  // Binds the optimizer to its parameters (a model's named_parameters()),
  // as the constructors taking them do: step(lr) then updates exactly
  // these, and step(params, lr) refuses any other list. Throws an Error if
  // bound already. The optimizer holds no ownership: it must not outlive
  // the model. A step after the model is destroyed or replaced
  // (`model = load_model(...)`) throws an Error saying so; to resume into a
  // model and its optimizer, use load_checkpoint_into(path, model, &optimizer).
  void bind(std::vector<NamedParameter> params);
  bool bound() const { return bound_; }
  // One update of every bound trainable parameter from its gradient, at
  // learning rate lr * its lr_mult (an Error when the optimizer is not bound).
  void step(double lr);
  // One update of every trainable parameter from its gradient, at learning
  // rate lr * its lr_mult (frozen parameters are left as they are). A bound
  // optimizer checks that these are its parameters (same names, same
  // tensors, same order) and throws an Error naming the first difference
  // otherwise.
  void step(const std::vector<NamedParameter>& params, double lr);
  int64_t steps() const { return steps_; }
  void set_steps(int64_t s) { steps_ = s; }
  // State by "<parameter name>.<slot>", e.g. "conv2d_0.W.velocity" (the
  // checkpoint keys). The map may be changed through this reference (a
  // checkpoint load replaces it), so asking for it forgets the slots step()
  // had resolved; they are found again by name at the next step.
  std::map<std::string, Tensor>& state() {
    resolved_.clear();
    return state_;
  }
  // The config make_optimizer() rebuilds this optimizer from (see below).
  virtual Json config() const = 0;

  // What one parameter gets at a step whose scheduled learning rate is lr:
  // lr * lr_mult and weight_decay * decay_mult (see the file comment). A
  // multiplier of 1 leaves its factor bit-identical.
  struct ParameterStep {
    double lr;
    double weight_decay;
  };
  ParameterStep parameter_step(const Parameter& p, double lr) const;
  double weight_decay() const { return weight_decay_; }
  WeightDecayAppliesTo weight_decay_applies_to() const { return weight_decay_applies_to_; }

 protected:
  Optimizer(double weight_decay, WeightDecayAppliesTo applies_to)
      : weight_decay_(weight_decay), weight_decay_applies_to_(applies_to) {}
  // One update of p at this parameter's learning rate and weight decay.
  virtual void update(const std::string& name, Parameter& p, const ParameterStep& hp) = 0;
  // flush() applies what update() queued: the whole step in one device call.
  virtual void flush() = 0;
  // The state slot for a parameter, created as zeros like the parameter.
  // Called from update(): the slot is looked up by name ("<param_name>.<slot>"
  // in state_) the first time only, then kept for the parameter's position
  // in step()'s list, so a step builds no keys. Subclasses reach state_
  // through slot() (or state()), never directly.
  Tensor& slot(const std::string& param_name, const char* slot, const Parameter& p);
  std::map<std::string, Tensor> state_;
  int64_t steps_ = 0;

 private:
  double weight_decay_;
  WeightDecayAppliesTo weight_decay_applies_to_;
  std::vector<NamedParameter> params_;  // when bound
  std::vector<bool> owned_;             // params_[i] came with a model (NamedParameter::owner)
  bool bound_ = false;
  // The state_ entries of the parameter at one position of step()'s list,
  // valid while that position holds the same parameter under the same name.
  struct ResolvedSlots {
    const Parameter* parameter = nullptr;
    std::string name;
    std::vector<std::pair<const char*, Tensor*>> slots;  // slot name -> its entry in state_
  };
  std::vector<ResolvedSlots> resolved_;  // by position in step()'s list
  size_t updating_ = 0;                  // the position update() is called for, during step()
};

class SGD : public Optimizer {
 public:
  SGD(double momentum = 0.0, double weight_decay = 0.0, bool nesterov = false,
      WeightDecayAppliesTo applies_to = WeightDecayAppliesTo::Weights)
      : Optimizer(weight_decay, applies_to), momentum_(momentum), nesterov_(nesterov) {
    check_hyperparameters();
  }
  // Bound to `params` (see Optimizer::bind).
  SGD(std::vector<NamedParameter> params, double momentum = 0.0, double weight_decay = 0.0, bool nesterov = false,
      WeightDecayAppliesTo applies_to = WeightDecayAppliesTo::Weights)
      : SGD(momentum, weight_decay, nesterov, applies_to) {
    bind(std::move(params));
  }
  std::string name() const override { return "sgd"; }
  Json config() const override;

 protected:
  void update(const std::string& name, Parameter& p, const ParameterStep& hp) override;
  void flush() override;

 private:
  // The domains of make_optimizer's table below; throws janus::Error naming the value.
  void check_hyperparameters() const;
  double momentum_;
  bool nesterov_;
  std::vector<SgdParamUpdate> pending_;
};

// decoupled = false: Adam (L2 penalty added to the gradient);
// decoupled = true: AdamW (Loshchilov & Hutter, decay applied to the weights,
// scaled by the parameter's learning rate as torch.optim.AdamW does).
class Adam : public Optimizer {
 public:
  Adam(double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0.0,
       bool decoupled = false, WeightDecayAppliesTo applies_to = WeightDecayAppliesTo::Weights)
      : Optimizer(weight_decay, applies_to), beta1_(beta1), beta2_(beta2), eps_(eps), decoupled_(decoupled) {
    check_hyperparameters();
  }
  // Bound to `params` (see Optimizer::bind).
  Adam(std::vector<NamedParameter> params, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
       double weight_decay = 0.0, bool decoupled = false,
       WeightDecayAppliesTo applies_to = WeightDecayAppliesTo::Weights)
      : Adam(beta1, beta2, eps, weight_decay, decoupled, applies_to) {
    bind(std::move(params));
  }
  std::string name() const override { return decoupled_ ? "adamw" : "adam"; }
  Json config() const override;

 protected:
  void update(const std::string& name, Parameter& p, const ParameterStep& hp) override;
  void flush() override;

 private:
  void check_hyperparameters() const;  // as SGD's
  double beta1_, beta2_, eps_;
  bool decoupled_;
  std::vector<AdamParamUpdate> pending_;
};

// {"type": "sgd", "momentum": 0.9, "weight_decay": 5e-4, "nesterov": true,
//  "weight_decay_applies_to": "weights"}
// {"type": "adam"|"adamw", "beta1": .., "beta2": .., "eps": .., "weight_decay": ..,
//  "weight_decay_applies_to": "all"}
// Domains (defaults): momentum [0, 1) (0), weight_decay [0, inf) (0; adamw 0.01),
// beta1 [0, 1) (0.9), beta2 [0, 1) (0.999), eps (0, inf) (1e-8); nesterov needs
// momentum > 0; weight_decay_applies_to "weights" (the default) or "all" (see
// WeightDecayAppliesTo). A value outside its domain throws janus::Error naming
// the field, the value and the domain; the C++ constructors (SGD, Adam) check
// the same domains, and step() checks each parameter's lr_mult and decay_mult
// (>= 0, finite) however they were set.
std::unique_ptr<Optimizer> make_optimizer(const Json& config);
// The same, bound to `params` (a model's named_parameters()).
std::unique_ptr<Optimizer> make_optimizer(const Json& config, std::vector<NamedParameter> params);

}  // namespace janus
