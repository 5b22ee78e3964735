// Activation functions as used inside layers (SPEC §1: a layer with an
// activation computes Y = act(Z) and its backward first forms dZ).
#pragma once

#include <string>

#include "janus/device.hpp"
#include "janus/tensor.hpp"

namespace janus {

// "linear" | "identity" | "sigmoid" | "tanh" | "relu" | "softmax" (case-insensitive).
// Unknown names throw janus::Error naming `owner` (the layer) and the valid names.
ActivationKind parse_activation(const std::string& name, const std::string& owner);
const char* activation_name(ActivationKind kind);

// Forward/backward of one activation, caching Z and Y between the two.
class Activation {
 public:
  explicit Activation(ActivationKind kind = ActivationKind::Linear) : kind_(kind) {}
  ActivationKind kind() const { return kind_; }

  // Returns Y = act(Z). Linear returns Z itself (no copy).
  Tensor forward(const Tensor& z);
  // Adds bias (broadcast over the rows) to z in place, then returns act(z):
  // forward(z + bias) in one pass (Device::bias_activation_forward).
  Tensor forward_with_bias(Tensor& z, const Tensor& bias);
  // Caches y = act(z) that the caller computed without keeping z (a fused
  // convolution: Device::conv2d_activation_forward) and returns it. The
  // derivative of every element-wise activation can be formed from y alone
  // (Sigmoid and TanH use y; ReLU's z > 0 holds exactly where y > 0), so
  // backward() works as after forward(). z() is then undefined, except for
  // Linear (z is y). Not for SoftMax: the fused softmax cross-entropy reads
  // the logits through z().
  Tensor forward_fused(const Tensor& y);
  // Returns dZ from dY using the cached Z (or Y in its place, see
  // forward_fused) and Y.
  Tensor backward(const Tensor& dy) const;
  // The pre-activation cached by the last forward (logits for SoftMax);
  // undefined after forward_fused for a non-linear activation.
  const Tensor& z() const { return z_; }

 private:
  ActivationKind kind_;
  Tensor z_, y_;
};

}  // namespace janus
