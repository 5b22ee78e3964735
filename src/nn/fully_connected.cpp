// FullyConnected: Z = X W + 1 b (no b with "bias": false), Y = act(Z).
// Backward: dZ = act'(dY); dW = X^T dZ; db = 1^T dZ; dX = dZ W^T (skipped when
// the layer's input gradient is not needed, see Layer::input_gradient_needed).
#include "janus/error.hpp"
#include "janus/layers.hpp"
#include "janus/nlohmann_json.hpp"
#include "janus/random.hpp"

namespace janus {

FullyConnected::FullyConnected(std::string name, int64_t n_out, ActivationFunction act, Init init,
                               bool use_bias)
    : Layer(std::move(name)), n_out_(n_out), init_(init), use_bias_(use_bias), act_(act) {
  JANUS_CHECK(n_out > 0, where(), ": n_out must be positive, got ", n_out);
}

Shape FullyConnected::output_shape(const Shape& in) const {
  JANUS_CHECK(in.rank() == 2, where(), ": expects (batch, features) input but got ", in.str(),
              " (add a flatten layer before it)");
  JANUS_CHECK(!built() || in[1] == n_in_, where(), ": expects ", n_in_, " input features but got input ",
              in.str());
  return Shape{in[0], n_out_};
}

void FullyConnected::create_parameters(const Shape& in, Device& device, DType dtype) {
  n_in_ = in[1];
  Rng rng(seed_);
  W_.value = initialise(init_, Shape{n_in_, n_out_}, n_in_, n_out_, rng, device, dtype);
  W_.grad = Tensor::zeros(W_.value.shape(), device, dtype);
  if (use_bias_) {
    b_.value = Tensor::zeros(Shape{1, n_out_}, device, dtype);
    b_.grad = Tensor::zeros(b_.value.shape(), device, dtype);
  }
}

std::vector<Parameter*> FullyConnected::parameters() {
  if (use_bias_) return {&W_, &b_};
  return {&W_};
}

Tensor FullyConnected::forward(const Tensor& x, bool training) {
  check_input(x);
  const Shape out = build(x.shape(), x.device(), x.dtype());
  Device& dev = x.device();
  Tensor z = Tensor::empty(out, dev, x.dtype());
  dev.gemm(false, false, 1.0, x, W_.value, 0.0, z);
  x_ = x;
  return use_bias_ ? act_.forward_with_bias(z, b_.value) : act_.forward(z);
}

Tensor FullyConnected::backward(const Tensor& dy) {
  // Checked here too, so that the message names this layer rather than its activation.
  JANUS_CHECK(x_.defined(), where(), ": backward before forward");
  JANUS_CHECK(dy.shape() == Shape({x_.dim(0), n_out_}), where(), ": gradient of shape ", dy.shape().str(),
              " does not match output shape ", Shape({x_.dim(0), n_out_}).str());
  return backward_from_preactivation(act_.backward(dy));
}

Tensor FullyConnected::backward_from_preactivation(const Tensor& dz) {
  JANUS_CHECK(x_.defined(), where(), ": backward before forward");
  JANUS_CHECK(dz.shape() == Shape({x_.dim(0), n_out_}), where(), ": gradient of shape ", dz.shape().str(),
              " does not match output shape ", Shape({x_.dim(0), n_out_}).str());
  Device& dev = dz.device();
  // A frozen parameter's gradient is not computed: the optimizer would not read it.
  if (W_.options.trainable) dev.gemm(true, false, 1.0, x_, dz, 0.0, W_.grad);
  if (use_bias_ && b_.options.trainable) dev.sum_rows(dz, 0.0, b_.grad);
  if (!input_gradient_needed()) return Tensor();  // the model input: nobody uses dX
  Tensor dx = Tensor::empty(x_.shape(), dev, dz.dtype());
  dev.gemm(false, true, 1.0, dz, W_.value, 0.0, dx);
  return dx;
}

Json FullyConnected::config() const {
  nlohmann::json cfg = {{"type", type()}, {"name", name()}, {"n_out", n_out_}};
  add_activation_config(cfg, "activation", act_.function());
  cfg["init"] = init_name(init_);
  if (!use_bias_) cfg["bias"] = false;  // written only when off: older configs stay unchanged
  return cfg;
}

}  // namespace janus
