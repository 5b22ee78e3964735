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

// CUDA's softmax kernels take float32 only (device.hpp): a SoftMax on bf16
// activations runs on an exact float32 copy of its input, and its float32
// result is rounded once to bf16, the contract of the ops with bf16 kernels.
bool softmax_on_bf16(const ActivationFunction& fn, const Tensor& t) {
  return fn.kind == ActivationKind::SoftMax && t.dtype() == DType::BF16;
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
  if (softmax_on_bf16(fn_, z)) {
    Tensor y = Tensor::empty(z.shape(), z.device(), DType::F32);
    z.device().activation_forward(fn_, z.to(DType::F32), y);
    y_ = y.to(DType::BF16);
    return y_;
  }
  y_ = Tensor::empty(z.shape(), z.device(), z.dtype());
  z.device().activation_forward(fn_, z, y_);
  return y_;
}

Tensor Activation::forward_with_bias(Tensor& z, const Tensor& bias) {
  Device& dev = z.device();
  // y is z itself (Linear), or SoftMax on bf16 (forward's float32 round trip): the bias first.
  if (fn_.kind == ActivationKind::Linear || softmax_on_bf16(fn_, z)) {
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
  if (softmax_on_bf16(fn_, dy)) {  // (SoftMax's backward reads y only)
    Tensor dz = Tensor::empty(dy.shape(), dy.device(), DType::F32);
    dy.device().activation_backward(fn_, Tensor(), y_.to(DType::F32), dy.to(DType::F32), dz);
    return dz.to(DType::BF16);
  }
  Tensor dz = Tensor::empty(dy.shape(), dy.device(), dy.dtype());
  dy.device().activation_backward(fn_, z_, y_, dy, dz);
  return dz;
}

}  // namespace janus
