// The concrete layers of SPEC §2 plus BatchNorm and Dropout, and the factory
// that builds any of them from a JSON config (the model file format).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "janus/init.hpp"
#include "janus/json.hpp"
#include "janus/layer.hpp"

namespace janus {

// Z = X W + 1 b ; Y = act(Z). X (batch, n_in), W (n_in, n_out), b (1, n_out);
// without b when use_bias is false (config "bias": false, e.g. before a
// BatchNorm, where b's true gradient is zero).
class FullyConnected : public Layer {
 public:
  FullyConnected(std::string name, int64_t n_out, ActivationFunction act = ActivationKind::Linear,
                 Init init = Init::XavierUniform, bool use_bias = true);
  std::string type() const override { return "fully_connected"; }
  Shape output_shape(const Shape& in) const override;
  Tensor forward(const Tensor& x, bool training) override;
  Tensor backward(const Tensor& dy) override;
  Tensor backward_from_preactivation(const Tensor& dz) override;
  const Activation* activation() const override { return &act_; }
  std::vector<Parameter*> parameters() override;
  Json config() const override;
  int64_t n_in() const { return n_in_; }
  int64_t n_out() const { return n_out_; }

 protected:
  void create_parameters(const Shape& in, Device& device, DType dtype) override;

 private:
  int64_t n_in_ = 0, n_out_;
  Init init_;
  bool use_bias_;
  Activation act_;
  Parameter W_{"W", {}, {}, true}, b_{"b", {}, {}, false};
  Tensor x_;
};

// Padding of a convolution or pooling window: "same", "valid" or an integer.
struct Padding {
  enum class Mode { Same, Valid, Explicit } mode = Mode::Valid;
  int rows = 0, cols = 0;  // for Explicit
  // A config's "pad" value; throws janus::Error starting with `owner` for
  // anything else.
  static Padding parse(const Json& value, const std::string& owner);
  // The inverse: "same", "valid", rows (when rows == cols) or [rows, cols].
  Json to_json() const;
  // (pad_rows, pad_cols) for a kernel: same = ((k-1)/2), valid = 0.
  std::pair<int, int> resolve(int kernel_rows, int kernel_cols) const;
};

// Where a sliding window (convolution kernel or pooling window) of
// kernel_rows x kernel_cols with this stride and padding lands on an NHWC
// input: out = (in + 2*pad - kernel) / stride + 1 per axis. Throws an Error
// starting with `owner` when the window does not fit the padded input.
struct SlidingWindow {
  int pad_h = 0, pad_w = 0, out_h = 0, out_w = 0;
};
SlidingWindow slide_window(const Shape& nhwc, int kernel_rows, int kernel_cols, int stride, const Padding& pad,
                           const std::string& owner, const char* window_name);

// Cross-correlation on NHWC input with HWIO weights, then act (SPEC §1).
// groups (config key "groups", default 1) splits the C input and the n_out
// output channels into `groups` equal groups, each convolved on its own, as
// PyTorch's nn.Conv2d(groups=G) (ConvGeometry gives the formula); the weight W
// is then (kernel_rows, kernel_cols, C/groups, n_out). groups = C is a
// depthwise convolution (n_out = C * multiplier). Throws janus::Error naming
// the layer and 'groups' when groups < 1 or n_out is not a multiple of it
// (here), or when the input channels C are not (at the first input).
// Initialisation fans: fan_in = kernel area * C/groups, fan_out = kernel area
// * n_out (PyTorch's _calculate_fan_in_and_fan_out on its (F, C/G, KH, KW)
// weight).
class Conv2D : public Layer {
 public:
  Conv2D(std::string name, int64_t n_out, int kernel_rows, int kernel_cols,
         ActivationFunction act = ActivationKind::Linear, int stride = 1, Padding pad = {Padding::Mode::Same},
         Init init = Init::XavierUniform, bool use_bias = true, int groups = 1);
  std::string type() const override { return "conv2d"; }
  Shape output_shape(const Shape& in) const override;
  Tensor forward(const Tensor& x, bool training) override;
  Tensor backward(const Tensor& dy) override;
  Tensor backward_from_preactivation(const Tensor& dz) override;
  const Activation* activation() const override { return &act_; }
  std::vector<Parameter*> parameters() override;
  Json config() const override;
  ConvGeometry geometry(const Shape& in) const;

 protected:
  void create_parameters(const Shape& in, Device& device, DType dtype) override;

 private:
  int64_t n_in_ = 0, n_out_;
  int kr_, kc_, stride_;
  Padding pad_;
  Init init_;
  bool use_bias_;
  int groups_;
  Activation act_;
  Parameter W_{"W", {}, {}, true}, b_{"b", {}, {}, false};
  Tensor x_;
};

// Max or average pooling over NHWC windows (SPEC §2).
class Pool2D : public Layer {
 public:
  Pool2D(std::string name, PoolMode mode, int kernel_rows, int kernel_cols, int stride,
         Padding pad = {Padding::Mode::Valid});
  std::string type() const override { return "pool2d"; }
  Shape output_shape(const Shape& in) const override;
  Tensor forward(const Tensor& x, bool training) override;
  Tensor backward(const Tensor& dy) override;
  Json config() const override;
  PoolGeometry geometry(const Shape& in) const;

 private:
  PoolMode mode_;
  int kr_, kc_, stride_;
  Padding pad_;
  Tensor x_;       // the input, for the backward (unless argmax_ is kept)
  Tensor argmax_;  // max pooling in training, where the device keeps one
  Shape in_shape_;
};

// (batch, ...) -> (batch, features) as a view, and back.
class Flatten : public Layer {
 public:
  explicit Flatten(std::string name) : Layer(std::move(name)) {}
  std::string type() const override { return "flatten"; }
  Shape output_shape(const Shape& in) const override;
  Tensor forward(const Tensor& x, bool training) override;
  Tensor backward(const Tensor& dy) override;
  Json config() const override { return {{"type", type()}, {"name", name()}}; }

 private:
  Shape in_shape_;
};

// A standalone activation (e.g. after BatchNorm): Y = act(X).
class ActivationLayer : public Layer {
 public:
  ActivationLayer(std::string name, ActivationFunction act) : Layer(std::move(name)), act_(act) {}
  std::string type() const override { return "activation"; }
  Shape output_shape(const Shape& in) const override { return in; }
  Tensor forward(const Tensor& x, bool training) override;
  Tensor backward(const Tensor& dy) override;
  Tensor backward_from_preactivation(const Tensor& dz) override { return dz; }
  const Activation* activation() const override { return &act_; }
  Json config() const override;
  // Set by NeuralNetwork's fusion pass (fusion.hpp) when the BatchNorm before
  // this ReLU applies it: forward and backward then pass their input through.
  void set_absorbed(bool absorbed) { absorbed_ = absorbed; }
  bool absorbed() const { return absorbed_; }

 private:
  Activation act_;
  bool absorbed_ = false;
};

// Batch normalisation over the last axis (features for dense input, channels
// for NHWC), with running statistics for evaluation (Ioffe & Szegedy 2015).
// momentum follows PyTorch: running = (1 - momentum) * running + momentum * batch.
class BatchNorm : public Layer {
 public:
  BatchNorm(std::string name, double momentum = 0.1, double eps = 1e-5);
  std::string type() const override { return "batchnorm"; }
  Shape output_shape(const Shape& in) const override { return in; }
  Tensor forward(const Tensor& x, bool training) override;
  Tensor backward(const Tensor& dy) override;
  std::vector<Parameter*> parameters() override { return {&gamma_, &beta_}; }
  std::vector<std::pair<std::string, Tensor*>> buffers() override {
    return {{"running_mean", &running_mean_}, {"running_var", &running_var_}};
  }
  Json config() const override;
  // Set by NeuralNetwork's fusion pass (fusion.hpp) when a ReLU layer follows:
  // the output is then relu(batchnorm(x)) and backward takes the gradient of
  // that, through the device's fused batchnorm_relu_* operations.
  void set_fused_relu(bool fused) { fused_relu_ = fused; }
  bool fused_relu() const { return fused_relu_; }

 protected:
  void create_parameters(const Shape& in, Device& device, DType dtype) override;

 private:
  double momentum_, eps_;
  bool fused_relu_ = false;
  Parameter gamma_{"gamma", {}, {}, false}, beta_{"beta", {}, {}, false};
  // y_: the training output, kept when fused_relu_ (backward's ReLU mask).
  Tensor running_mean_, running_var_, saved_mean_, saved_invstd_, x_, y_;
};

// Inverted dropout: in training zeroes each element with probability p and
// scales the rest by 1/(1-p); identity in evaluation. Masks come from a
// counter-based generator, so CPU and CUDA draw the same mask.
class Dropout : public Layer {
 public:
  Dropout(std::string name, double p);
  std::string type() const override { return "dropout"; }
  Shape output_shape(const Shape& in) const override { return in; }
  Tensor forward(const Tensor& x, bool training) override;
  Tensor backward(const Tensor& dy) override;
  Json config() const override;
  double p() const { return p_; }
  void set_step(uint64_t step) override { calls_ = step; }

 private:
  double p_;
  uint64_t calls_ = 0;  // mask stream position: the step, advanced by every training forward
  Tensor mask_;
  bool last_training_ = false;
};

// ---- layers for graphs (model.hpp) -------------------------------------------

// Residual sum: Y = X_0 + X_1 + ... + X_{n-1} (n >= 2, added in input
// order), every input of one shape (batch included). Backward: dL/dX_k = dY
// for every k (the same tensor, not a copy). Runs on Device::axpby, so every
// backend has it; the sum is exact to the rounding of each addition.
class Add : public MultiInputLayer {
 public:
  explicit Add(std::string name) : MultiInputLayer(std::move(name)) {}
  std::string type() const override { return "add"; }
  int min_inputs() const override { return 2; }
  int max_inputs() const override { return kAnyNumberOfInputs; }
  // Throws an Error naming the first input whose shape differs from input 0's.
  Shape graph_output_shape(const std::vector<Shape>& input_shapes) const override;
  Tensor graph_forward(const std::vector<Tensor>& inputs, bool training) override;
  std::vector<Tensor> graph_backward(const Tensor& dy) override;
  Json config() const override { return {{"type", type()}, {"name", name()}}; }

 private:
  size_t inputs_ = 0;  // of the last forward
};

// Concatenation along the last axis: channels of NHWC maps, features of
// dense (batch, features) input (torch.cat(dim=-1)). Inputs (n >= 2) agree
// on every axis but the last; Y's last extent is the sum of theirs, input 0
// first. Backward hands each input its block of columns of dY. Runs on
// Device::copy_columns.
class Concat : public MultiInputLayer {
 public:
  explicit Concat(std::string name) : MultiInputLayer(std::move(name)) {}
  std::string type() const override { return "concat"; }
  int min_inputs() const override { return 2; }
  int max_inputs() const override { return kAnyNumberOfInputs; }
  // Throws an Error naming the first input whose rank or leading extents
  // differ from input 0's.
  Shape graph_output_shape(const std::vector<Shape>& input_shapes) const override;
  Tensor graph_forward(const std::vector<Tensor>& inputs, bool training) override;
  std::vector<Tensor> graph_backward(const Tensor& dy) override;
  Json config() const override { return {{"type", type()}, {"name", name()}}; }

 private:
  std::vector<Shape> input_shapes_;  // of the last forward
};

// Global average pooling: NHWC (N, H, W, C) -> (N, C), y[n,c] = mean over
// rows and columns of x[n,:,:,c] (torch: x.mean(dim=(1, 2)) in NHWC,
// AdaptiveAvgPool2d(1) + flatten in NCHW). It is average pooling with one
// window covering the whole map, and runs on Device::pool2d_forward /
// pool2d_backward (PoolMode::Average, KH = H, KW = W, no padding) on every
// backend; backward: dx[n,h,w,c] = dy[n,c] / (H*W).
class GlobalAvgPool : public Layer {
 public:
  explicit GlobalAvgPool(std::string name) : Layer(std::move(name)) {}
  std::string type() const override { return "global_avg_pool"; }
  // Throws an Error unless the input is NHWC with H, W, C > 0.
  Shape output_shape(const Shape& in) const override;
  Tensor forward(const Tensor& x, bool training) override;
  Tensor backward(const Tensor& dy) override;
  Json config() const override { return {{"type", type()}, {"name", name()}}; }
  PoolGeometry geometry(const Shape& in) const;

 private:
  Tensor x_;
};

// A constant factor: Y = factor * X, dX = factor * dY (torch: x * factor).
// ResNet-9's recipe scales its logits by 0.125 this way. Runs on
// Device::axpby on every backend.
class Scale : public Layer {
 public:
  Scale(std::string name, double factor);
  std::string type() const override { return "scale"; }
  Shape output_shape(const Shape& in) const override { return in; }
  Tensor forward(const Tensor& x, bool training) override;
  Tensor backward(const Tensor& dy) override;
  Json config() const override { return {{"type", type()}, {"name", name()}, {"factor", factor_}}; }

 private:
  double factor_;
};

// Builds a layer from its JSON config, e.g.
// {"type": "conv2d", "n_out": 32, "kernel": [3, 3], "stride": 1, "pad": "same",
//  "activation": "relu", "init": "he_uniform"}. `index` names unnamed layers
// ("conv2d_3"). Every layer with parameters also takes the per-parameter
// options of parameter_options.hpp ("trainable", "lr_mult", "decay_mult",
// "parameters"). Types registered with register_layer_type are built by
// their factory. Unknown types, keys or values throw an Error naming the layer.
std::unique_ptr<Layer> make_layer(const Json& config, int index);

// Builds a layer of a registered type from its config (the object the
// layer's config() returns, "type" and "name" included) and its name.
// Should check the config's keys as the built-in types do. The factory is
// given the config without the per-parameter option keys (parameter_options.hpp:
// "trainable", "lr_mult", "decay_mult", "parameters"): make_layer applies
// those to the layer the factory returns, by the names of its
// named_parameters() ("conv1.W" inside a CompositeLayer), and writes them
// back into NeuralNetwork::config().
using LayerFactory = std::function<std::unique_ptr<Layer>(const Json& config, const std::string& name)>;
// Registers a layer type of the program's own (e.g. a CompositeLayer), so
// that make_layer, NeuralNetwork::from_config, load_model and run configs
// read it: call it before loading. Throws an Error for an empty type, a
// built-in type's name or a type registered already. (The `janus` tool
// reads registered types from plugins: janus/plugin.hpp, --plugin.)
void register_layer_type(const std::string& type, LayerFactory factory);
// Whether `type` has been registered by register_layer_type.
bool is_registered_layer_type(const std::string& type);

}  // namespace janus
