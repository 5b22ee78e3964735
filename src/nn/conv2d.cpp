// Conv2D: cross-correlation of NHWC input with HWIO weights, plus bias, then act
// (fused into the convolution's output pass: Device::conv2d_activation_forward).
// The three convolution kernels (forward, backward-data, backward-filter)
// live in the device; this layer only shapes and orders them.
#include <limits>

#include "janus/error.hpp"
#include "janus/layers.hpp"
#include "janus/nlohmann_json.hpp"
#include "janus/random.hpp"

namespace janus {

Conv2D::Conv2D(std::string name, int64_t n_out, int kernel_rows, int kernel_cols, ActivationFunction act,
               int stride, Padding pad, Init init, bool use_bias, int groups)
    : Layer(std::move(name)), n_out_(n_out), kr_(kernel_rows), kc_(kernel_cols), stride_(stride),
      pad_(pad), init_(init), use_bias_(use_bias), groups_(groups), act_(act) {
  JANUS_CHECK(n_out > 0, where(), ": n_out must be positive, got ", n_out);
  // ConvGeometry counts channels in int: a larger n_out would wrap (to 0 for 2^40).
  JANUS_CHECK(n_out <= std::numeric_limits<int>::max(), where(), ": n_out = ", n_out,
              " is more output channels than a convolution can index (at most ", std::numeric_limits<int>::max(), ")");
  JANUS_CHECK(kernel_rows > 0 && kernel_cols > 0, where(), ": kernel shape must be positive, got (",
              kernel_rows, ", ", kernel_cols, ")");
  JANUS_CHECK(stride > 0, where(), ": stride must be positive, got ", stride);
  // The input channels are checked with the whole geometry (check_conv_geometry) once the input is known.
  JANUS_CHECK(groups >= 1, where(), ": 'groups' must be at least 1, got ", groups);
  JANUS_CHECK(n_out % groups == 0, where(), ": 'groups' = ", groups, " must divide the output channels n_out = ",
              n_out);
}

ConvGeometry Conv2D::geometry(const Shape& in) const {
  JANUS_CHECK(in.rank() == 4, where(), ": expects NHWC input (batch, rows, cols, channels) but got ",
              in.str());
  JANUS_CHECK(!built() || in[3] == n_in_, where(), ": expects ", n_in_, " input channels but got input ",
              in.str());
  ConvGeometry g;
  g.N = static_cast<int>(in[0]);
  g.H = static_cast<int>(in[1]);
  g.W = static_cast<int>(in[2]);
  g.C = static_cast<int>(in[3]);
  g.KH = kr_;
  g.KW = kc_;
  g.F = static_cast<int>(n_out_);
  g.stride_h = g.stride_w = stride_;
  const SlidingWindow w = slide_window(in, kr_, kc_, stride_, pad_, where(), "kernel");
  g.pad_h = w.pad_h;
  g.pad_w = w.pad_w;
  g.OH = w.out_h;
  g.OW = w.out_w;
  g.groups = groups_;
  check_conv_geometry(where(), g);  // the contract every device checks: here it names this layer
  return g;
}

Shape Conv2D::output_shape(const Shape& in) const {
  const ConvGeometry g = geometry(in);
  return Shape{g.N, g.OH, g.OW, g.F};
}

void Conv2D::create_parameters(const Shape& in, Device& device, DType dtype) {
  n_in_ = in[3];
  Rng rng(seed_);
  const int64_t area = static_cast<int64_t>(kr_) * kc_, group_in = n_in_ / groups_;
  W_.value = initialise(init_, Shape{kr_, kc_, group_in, n_out_}, area * group_in, area * n_out_, rng, device, dtype);
  W_.grad = Tensor::zeros(W_.value.shape(), device, dtype);
  if (use_bias_) {
    b_.value = Tensor::zeros(Shape{1, n_out_}, device, dtype);
    b_.grad = Tensor::zeros(b_.value.shape(), device, dtype);
  }
}

std::vector<Parameter*> Conv2D::parameters() {
  if (use_bias_) return {&W_, &b_};
  return {&W_};
}

Tensor Conv2D::forward(const Tensor& x, bool training) {
  check_input(x);
  const Shape out = build(x.shape(), x.device(), x.dtype());
  const ConvGeometry g = geometry(x.shape());
  Device& dev = x.device();
  x_ = x;
  Tensor y = Tensor::empty(out, dev, x.dtype());
  // Keep z when the fused loss reads the logits (SoftMax) or the activation's
  // backward reads its input (GELU, SiLU, LeakyReLU).
  if (act_.kind() == ActivationKind::SoftMax || act_.reads() == ActivationReads::Input) {
    dev.conv2d_forward(g, x, W_.value, b_.value, y);
    return act_.forward(y);
  }
  // act(conv + bias) in one pass where the device can; z is not kept (this
  // activation's backward reads only y).
  dev.conv2d_activation_forward(act_.kind(), g, x, W_.value, b_.value, y);
  return act_.forward_fused(y);
}

Tensor Conv2D::backward(const Tensor& dy) {
  // Checked here too, so that the message names this layer rather than its activation.
  JANUS_CHECK(x_.defined(), where(), ": backward before forward");
  const ConvGeometry g = geometry(x_.shape());
  JANUS_CHECK(dy.shape() == Shape({g.N, g.OH, g.OW, g.F}), where(), ": gradient of shape ", dy.shape().str(),
              " does not match output shape ", Shape({g.N, g.OH, g.OW, g.F}).str());
  return backward_from_preactivation(act_.backward(dy));
}

Tensor Conv2D::backward_from_preactivation(const Tensor& dz) {
  JANUS_CHECK(x_.defined(), where(), ": backward before forward");
  const ConvGeometry g = geometry(x_.shape());
  JANUS_CHECK(dz.shape() == Shape({g.N, g.OH, g.OW, g.F}), where(), ": gradient of shape ", dz.shape().str(),
              " does not match output shape ", Shape({g.N, g.OH, g.OW, g.F}).str());
  Device& dev = dz.device();
  // A frozen parameter's gradient is not computed: the optimizer would not read it.
  if (W_.options.trainable) dev.conv2d_backward_filter(g, x_, dz, W_.grad);
  if (use_bias_ && b_.options.trainable) dev.sum_rows(dz, 0.0, b_.grad);
  if (!input_gradient_needed()) return Tensor();  // the model input: nobody uses dX
  Tensor dx = Tensor::empty(x_.shape(), dev, dz.dtype());
  dev.conv2d_backward_data(g, dz, W_.value, dx);
  return dx;
}

Json Conv2D::config() const {
  nlohmann::json cfg = {{"type", type()},       {"name", name()},         {"n_out", n_out_},
                        {"kernel", {kr_, kc_}}, {"stride", stride_},      {"pad", pad_.to_json()}};
  add_activation_config(cfg, "activation", act_.function());
  cfg["init"] = init_name(init_);
  cfg["bias"] = use_bias_;
  if (groups_ != 1) cfg["groups"] = groups_;  // (absent: configs of ungrouped layers stay as they were)
  return cfg;
}

}  // namespace janus
