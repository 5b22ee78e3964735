// Activation: Y = act(Z) and dZ = act'(Z) * dY, delegated to the device; the
// names and what the backward reads come from activation_functions.hpp.
#include "janus/activation.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "janus/error.hpp"
#include "janus/nlohmann_json.hpp"

namespace janus {

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// "linear, sigmoid, ..., softmax": the table's names, for error messages.
std::string all_names() {
  std::string names;
  for (ActivationKind k : kAllActivations) names += (names.empty() ? "" : ", ") + std::string(activation_name(k));
  return names;
}

}  // namespace

bool is_activation_name(const std::string& name) {
  const std::string n = lower(name);
  return std::any_of(std::begin(kAllActivations), std::end(kAllActivations),
                     [&](ActivationKind k) { return n == activation_name(k); });
}

ActivationKind parse_activation(const std::string& name, const std::string& owner) {
  const std::string n = lower(name);
  if (n == "identity" || n == "none" || n.empty()) return ActivationKind::Linear;
  for (ActivationKind k : kAllActivations)
    if (n == activation_name(k)) return k;
  throw Error(owner + ": unknown activation '" + name + "' (expected one of " + all_names() + ")");
}

ActivationFunction activation_from_config(const nlohmann::json& cfg, const std::string& key,
                                          const std::string& fallback, const std::string& owner) {
  std::string name = fallback;
  if (cfg.contains(key)) {
    JANUS_CHECK(cfg.at(key).is_string(), owner, ": '", key, "' must be a string, got ", cfg.at(key).dump());
    name = cfg.at(key).get<std::string>();
  }
  ActivationFunction act(parse_activation(name, owner));
  if (cfg.contains("negative_slope")) {
    const nlohmann::json& s = cfg.at("negative_slope");
    JANUS_CHECK(act.kind == ActivationKind::LeakyReLU, owner, ": 'negative_slope' applies to leaky_relu only, not ",
                activation_name(act.kind));
    JANUS_CHECK(s.is_number() && std::isfinite(s.get<double>()), owner,
                ": 'negative_slope' must be a finite number, got ", s.dump());
    act.negative_slope = s.get<double>();
  }
  return act;
}

void add_activation_config(nlohmann::json& cfg, const std::string& key, const ActivationFunction& act) {
  cfg[key] = activation_name(act.kind);
  if (act.kind == ActivationKind::LeakyReLU) cfg["negative_slope"] = act.negative_slope;
}

Tensor Activation::forward(const Tensor& z) {
  z_ = z;
  if (fn_.kind == ActivationKind::Linear) {
    y_ = z;
    return z;
  }
  y_ = Tensor::empty(z.shape(), z.device(), z.dtype());
  z.device().activation_forward(fn_, z, y_);
  return y_;
}

Tensor Activation::forward_with_bias(Tensor& z, const Tensor& bias) {
  Device& dev = z.device();
  if (fn_.kind == ActivationKind::Linear) {  // y is z itself: only the bias to add
    dev.add_bias(z, bias);
    return forward(z);
  }
  z_ = z;
  y_ = Tensor::empty(z.shape(), dev, z.dtype());
  dev.bias_activation_forward(fn_, z, bias, y_);
  return y_;
}

Tensor Activation::forward_fused(const Tensor& y) {
  JANUS_CHECK(fn_.kind != ActivationKind::SoftMax,
              "activation softmax: the fused softmax cross-entropy needs the logits, so its "
              "forward cannot be fused");
  JANUS_CHECK(reads() != ActivationReads::Input, "activation ", activation_name(fn_.kind),
              ": its backward reads the input, so its forward cannot be fused");
  z_ = fn_.kind == ActivationKind::Linear ? y : Tensor();
  y_ = y;
  return y_;
}

Tensor Activation::backward(const Tensor& dy) const {
  JANUS_CHECK(y_.defined(), "activation ", activation_name(fn_.kind), ": backward before forward");
  JANUS_CHECK(dy.shape() == y_.shape(), "activation ", activation_name(fn_.kind), ": gradient shape ",
              dy.shape().str(), " does not match output shape ", y_.shape().str());
  if (fn_.kind == ActivationKind::Linear) return dy;
  Tensor dz = Tensor::empty(dy.shape(), dy.device(), dy.dtype());
  dy.device().activation_backward(fn_, z_, y_, dy, dz);
  return dz;
}

}  // namespace janus
