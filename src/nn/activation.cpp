// Activation: Y = act(Z) and dZ = act'(Z) * dY, delegated to the device.
#include "janus/activation.hpp"

#include <algorithm>
#include <cctype>

#include "janus/error.hpp"

namespace janus {

ActivationKind parse_activation(const std::string& name, const std::string& owner) {
  std::string n = name;
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
  if (n == "linear" || n == "identity" || n == "none" || n.empty()) return ActivationKind::Linear;
  if (n == "sigmoid") return ActivationKind::Sigmoid;
  if (n == "tanh") return ActivationKind::TanH;
  if (n == "relu") return ActivationKind::ReLU;
  if (n == "softmax") return ActivationKind::SoftMax;
  throw Error(owner + ": unknown activation '" + name +
              "' (expected one of linear, sigmoid, tanh, relu, softmax)");
}

const char* activation_name(ActivationKind kind) {
  switch (kind) {
    case ActivationKind::Linear: return "linear";
    case ActivationKind::Sigmoid: return "sigmoid";
    case ActivationKind::TanH: return "tanh";
    case ActivationKind::ReLU: return "relu";
    case ActivationKind::SoftMax: return "softmax";
  }
  return "?";
}

Tensor Activation::forward(const Tensor& z) {
  z_ = z;
  if (kind_ == ActivationKind::Linear) {
    y_ = z;
    return z;
  }
  y_ = Tensor::empty(z.shape(), z.device(), z.dtype());
  z.device().activation_forward(kind_, z, y_);
  return y_;
}

Tensor Activation::forward_with_bias(Tensor& z, const Tensor& bias) {
  Device& dev = z.device();
  if (kind_ == ActivationKind::Linear) {  // y is z itself: only the bias to add
    dev.add_bias(z, bias);
    return forward(z);
  }
  z_ = z;
  y_ = Tensor::empty(z.shape(), dev, z.dtype());
  dev.bias_activation_forward(kind_, z, bias, y_);
  return y_;
}

Tensor Activation::forward_fused(const Tensor& y) {
  JANUS_CHECK(kind_ != ActivationKind::SoftMax,
              "activation softmax: the fused softmax cross-entropy needs the logits, so its "
              "forward cannot be fused");
  z_ = kind_ == ActivationKind::Linear ? y : Tensor();
  y_ = y;
  return y_;
}

Tensor Activation::backward(const Tensor& dy) const {
  JANUS_CHECK(y_.defined(), "activation ", activation_name(kind_), ": backward before forward");
  JANUS_CHECK(dy.shape() == y_.shape(), "activation ", activation_name(kind_), ": gradient shape ",
              dy.shape().str(), " does not match output shape ", y_.shape().str());
  if (kind_ == ActivationKind::Linear) return dy;
  Tensor dz = Tensor::empty(dy.shape(), dy.device(), dy.dtype());
  // Without z (forward_fused) y stands in for it: only ReLU reads z, and
  // only its sign, which y = max(z, 0) shares.
  dy.device().activation_backward(kind_, z_.defined() ? z_ : y_, y_, dy, dz);
  return dz;
}

}  // namespace janus
