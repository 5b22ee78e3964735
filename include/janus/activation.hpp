// Activation functions as used inside layers (SPEC §1: a layer with an
// activation computes Y = act(Z) and its backward first forms dZ). The maths
// of each activation is its entry in activation_functions.hpp.
#pragma once

#include <string>

#include "janus/activation_functions.hpp"
#include "janus/device.hpp"
#include "janus/tensor.hpp"

namespace janus {

// A name of activation_functions.hpp's table (each entry's `name`, and
// "softmax"; case-insensitive; also "identity", "none" and "" for linear).
// Unknown names throw janus::Error naming `owner` (the layer) and the valid
// names.
ActivationKind parse_activation(const std::string& name, const std::string& owner);
// Whether `name` is one of the table's names (the layer factory accepts
// {"type": "gelu"} as a shorthand for {"type": "activation", "activation": "gelu"}).
bool is_activation_name(const std::string& name);

// (A layer config's "activation" and "negative_slope" keys are read and
// written by activation_from_config / add_activation_config, in the opt-in
// <janus/nlohmann_json.hpp>.)

// Forward/backward of one activation, caching Z and Y between the two. They
// compute in the dtype of z (of dy): float32, or bf16 activations on CUDA
// (model.hpp), where SoftMax, which has no bf16 kernel, runs on exact float32
// copies and rounds its float32 result once to bf16 (forward and backward).
class Activation {
 public:
  Activation(ActivationFunction fn = ActivationKind::Linear) : fn_(fn) {}  // NOLINT: implicit
  ActivationKind kind() const { return fn_.kind; }
  const ActivationFunction& function() const { return fn_; }
  // What backward() needs besides dy (activation_functions.hpp).
  ActivationReads reads() const { return activation_reads(fn_.kind); }

  // Returns Y = act(Z). Linear returns Z itself (no copy).
  Tensor forward(const Tensor& z);
  // Adds bias (broadcast over the rows) to z in place, then returns act(z):
  // forward(z + bias) in one pass (Device::bias_activation_forward).
  Tensor forward_with_bias(Tensor& z, const Tensor& bias);
  // Caches y = act(z) that the caller computed without keeping z (a fused
  // convolution: Device::conv2d_activation_forward) and returns it. Only for
  // activations whose backward does not read z (reads() != Input), and not
  // SoftMax (the fused softmax cross-entropy reads the logits through z()).
  // z() is then undefined, except for Linear (z is y).
  Tensor forward_fused(const Tensor& y);
  // Returns dZ from dY using the cached Z or Y, as reads() says.
  Tensor backward(const Tensor& dy) const;
  // The pre-activation cached by the last forward (logits for SoftMax);
  // undefined after forward_fused for a non-linear activation.
  const Tensor& z() const { return z_; }

 private:
  ActivationFunction fn_;
  Tensor z_, y_;
};

}  // namespace janus
