// Dropout (inverted): the mask is drawn by the device from a counter-based
// stream keyed by (layer seed, call number), identical on every device.
#include "janus/error.hpp"
#include "janus/layers.hpp"

namespace janus {

Dropout::Dropout(std::string name, double p) : Layer(std::move(name)), p_(p) {
  JANUS_CHECK(p >= 0.0 && p < 1.0, where(), ": drop probability must be in [0, 1), got ", p);
}

Tensor Dropout::forward(const Tensor& x, bool training) {
  check_input(x);
  build(x.shape(), x.device(), x.dtype());
  last_training_ = training && p_ > 0.0;
  if (!last_training_) return x;
  Device& dev = x.device();
  mask_ = Tensor::empty(x.shape(), dev, x.dtype());
  Tensor y = Tensor::empty(x.shape(), dev, x.dtype());
  dev.dropout_forward(x, p_, splitmix64(seed_ ^ splitmix64(calls_++)), mask_, y);
  return y;
}

Tensor Dropout::backward(const Tensor& dy) {
  if (!last_training_) return dy;
  JANUS_CHECK(dy.shape() == mask_.shape(), where(), ": gradient of shape ", dy.shape().str(),
              " does not match output shape ", mask_.shape().str());
  Tensor dx = Tensor::empty(dy.shape(), dy.device(), dy.dtype());
  dy.device().multiply(dy, mask_, dx);
  return dx;
}

Json Dropout::config() const { return {{"type", type()}, {"name", name()}, {"p", p_}}; }

}  // namespace janus
