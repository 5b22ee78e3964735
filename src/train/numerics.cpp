// Per-layer NaN / infinity checks (train/numerics.hpp).
#include "train/numerics.hpp"

#include <cmath>

#include "janus/error.hpp"

namespace janus::train_detail {

namespace {

std::string describe_layer(Layer& l) { return "layer '" + l.name() + "' (" + l.type() + ")"; }

}  // namespace

bool all_finite(const Tensor& t) {
  if (!t.defined() || t.numel() == 0) return true;
  // sum takes float32: bf16 activations (model.hpp) are checked on an exact
  // float32 copy (a diagnostic mode: the copy's cost does not matter).
  if (t.dtype() == DType::BF16) return all_finite(t.to(DType::F32));
  return std::isfinite(t.device().sum(t));
}

Tensor forward_checked(NeuralNetwork& model, const Tensor& x, bool training, std::string* fault) {
  fault->clear();
  if (!all_finite(x)) {
    *fault = "the input batch";
    return Tensor();
  }
  JANUS_CHECK(model.built() && &x.device() == &model.device(),
              "check-numerics: the model must be built on the input's device before the checked forward pass");
  // The model's own walker, stopped at the first node whose output is not finite.
  struct FirstNonFinite : PassObserver {
    NeuralNetwork& model;
    std::string* fault;
    FirstNonFinite(NeuralNetwork& m, std::string* f) : model(m), fault(f) {}
    bool end(Pass, size_t node, const Tensor& output) override {
      if (all_finite(output)) return true;
      *fault = "the output of " + describe_layer(model.layer(node)) + " (layer " + std::to_string(node + 1) +
               " of " + std::to_string(model.size()) + ", forward pass)";
      return false;
    }
  } observer(model, fault);
  return model.forward(x, (training ? Mode::Train : Mode::Eval), &observer);
}

std::string nonfinite_gradient(NeuralNetwork& model) {
  for (size_t i = model.size(); i-- > 0;) {
    Layer& l = model.layer(i);
    for (Parameter* p : l.parameters())
      if (!all_finite(p->grad))
        return "the gradient of '" + l.name() + "." + p->name + "' in " + describe_layer(l) + " (backward pass)";
  }
  return "";
}

std::string nonfinite_parameter(NeuralNetwork& model) {
  for (size_t i = 0; i < model.size(); ++i) {
    Layer& l = model.layer(i);
    for (Parameter* p : l.parameters())
      if (!all_finite(p->value))
        return "the parameter '" + l.name() + "." + p->name + "' of " + describe_layer(l) +
               " (after the optimizer step)";
  }
  return "";
}

}  // namespace janus::train_detail
