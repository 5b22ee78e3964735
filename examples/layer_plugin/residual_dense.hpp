// A residual block of dense layers, written by a Janus user and loaded into
// the `janus` tool as a plugin (layer_plugin.cpp):
//     y = x + fc2(relu(fc1(x)))
// fc1: `units` -> `hidden` with ReLU, fc2: `hidden` -> `units`, so the input
// (batch, units) and the output have one shape and the sum is defined
// (He et al. 2016, "Deep Residual Learning", with dense layers in place of
// convolutions). Config: {"type": "residual_dense", "units": 16, "hidden": 32}.
//
// It derives from janus::CompositeLayer, which names the inner parameters
// "<block>.fc1.W", "<block>.fc2.b" and seeds each child separately.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include <janus/composite_layer.hpp>
#include <janus/error.hpp>
#include <janus/layers.hpp>

namespace layer_plugin {

class ResidualDense : public janus::CompositeLayer {
 public:
  ResidualDense(std::string name, int64_t units, int64_t hidden)
      : CompositeLayer(std::move(name)), units_(units), hidden_(hidden) {
    fc1_ = &add_child(std::make_unique<janus::FullyConnected>("fc1", hidden, janus::ActivationKind::ReLU,
                                                             janus::Init::HeUniform));
    fc2_ = &add_child(std::make_unique<janus::FullyConnected>("fc2", units));
  }
  std::string type() const override { return "residual_dense"; }

  // (batch, units) -> (batch, units).
  janus::Shape output_shape(const janus::Shape& in) const override {
    JANUS_CHECK(in.rank() == 2 && in[1] == units_, where(), ": expects (batch, ", units_, ") input, got ",
                in.str());
    return in;
  }

  janus::Tensor forward(const janus::Tensor& x, bool training) override {
    janus::Tensor y = fc2_->forward(fc1_->forward(x, training), training).clone();
    y.device().axpby(1.0, x, 1.0, y);  // y += x: the identity shortcut
    return y;
  }

  // dL/dx = dL/dy through the shortcut plus through fc2(relu(fc1(.))).
  janus::Tensor backward(const janus::Tensor& dy) override {
    janus::Tensor dx = fc1_->backward(fc2_->backward(dy)).clone();
    dx.device().axpby(1.0, dy, 1.0, dx);
    return dx;
  }

  // What make_layer reads back (layer_plugin.cpp): the layer's whole state
  // besides its weights.
  janus::Json config() const override {
    return {{"type", type()}, {"name", name()}, {"units", units_}, {"hidden", hidden_}};
  }

 protected:
  void build_children(const janus::Shape& in, janus::Device& device, janus::DType dtype) override {
    fc2_->build(fc1_->build(in, device, dtype), device, dtype);
  }

 private:
  int64_t units_, hidden_;
  janus::FullyConnected* fc1_;
  janus::FullyConnected* fc2_;
};

}  // namespace layer_plugin
