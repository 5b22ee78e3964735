// Layer: the unit a NeuralNetwork is made of (SPEC §1).
//
// A layer owns named parameters ("W", "b", ...) with gradients of the same
// shape, and caches what its backward pass needs. It is built lazily from the
// shape of the first input it sees: build(input_shape, device, dtype) creates
// the parameters (drawn from the layer's seed on the host, so every device
// gets the same values) and returns the output shape, or throws an Error that
// names the layer and the shapes when the input cannot work. `dtype` is the
// dtype of the inputs; the parameters take it, except for bfloat16 inputs
// (bf16 activation storage on CUDA, model.hpp), whose parameters, gradients
// and statistics are float32.
//
// Every layer computes its output, and its backward the input gradient, in
// the dtype of its input (of dy): float32 as a rule; bfloat16 where the model
// stores bf16 activations (model.hpp), through the device ops that take bf16
// storage (device.hpp), or an exact float32 round trip where an op has none
// (SoftMax: activation.hpp).
//
// Inside a model graph (model.hpp) a layer may take several inputs (Add,
// Concat): the graph calls the graph_* forms below, which take a list of
// inputs and return one gradient per input. Single-input layers implement
// only the one-tensor forms; the graph_* defaults adapt them.
#pragma once

#include <climits>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "janus/activation.hpp"
#include "janus/device.hpp"
#include "janus/json.hpp"
#include "janus/tensor.hpp"

namespace janus {

// How the optimizer treats one parameter (PyTorch's requires_grad and
// parameter groups, Caffe's ParamSpec). Set from a layer's config by
// make_layer(), see parameter_options.hpp for the JSON keys; the defaults
// change nothing.
struct ParameterOptions {
  // false: frozen (PyTorch requires_grad = False). The optimizer neither
  // updates it nor keeps state for it nor decays it; gradients still flow
  // through its layer to the layer's input. Its own gradient is not computed
  // where nothing else needs it (grad is then left as it was: zeros if never
  // computed).
  bool trainable = true;
  // The parameter's learning rate is the schedule's lr times lr_mult
  // (Caffe's lr_mult); >= 0.
  double lr_mult = 1.0;
  // Weight decay: the optimizer's weight_decay times decay_mult (Caffe's
  // decay_mult); >= 0. When unset, the optimizer's rule
  // "weight_decay_applies_to" decides: 1 for every parameter ("all",
  // PyTorch's default) or for weights only ("weights", Janus's default).
  std::optional<double> decay_mult;
};

struct Parameter {
  // (A constructor rather than an aggregate, so that Parameter{"W", {}, {}, true} keeps meaning what it did.)
  explicit Parameter(std::string name_ = "", Tensor value_ = {}, Tensor grad_ = {}, bool is_weight_ = true,
                     ParameterOptions options_ = {})
      : name(std::move(name_)),
        value(std::move(value_)),
        grad(std::move(grad_)),
        is_weight(is_weight_),
        options(std::move(options_)) {}

  std::string name;       // "W", "b", "gamma", "beta"
  Tensor value;
  Tensor grad;            // overwritten by every backward pass (while trainable)
  // Whether the parameter is a weight (W of a dense or convolution layer), as
  // opposed to a bias or a normalisation scale or shift: weight decay's rule
  // "weight_decay_applies_to": "weights" decays these only.
  bool is_weight = true;
  ParameterOptions options;
};

class Layer {
 public:
  explicit Layer(std::string name) : name_(std::move(name)) {}
  virtual ~Layer() = default;
  Layer(const Layer&) = delete;
  Layer& operator=(const Layer&) = delete;

  const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }
  virtual std::string type() const = 0;

  // Creates parameters for inputs of this shape (batch axis included; its
  // extent is ignored) and returns the output shape. Idempotent for the same
  // per-example shape; a different per-example shape is an error.
  Shape build(const Shape& input_shape, Device& device, DType dtype);
  // The same for a layer with several inputs (one shape per input, in the
  // order of the graph node's inputs). Checks the input count first.
  Shape build(const std::vector<Shape>& input_shapes, Device& device, DType dtype);
  bool built() const { return built_; }
  // Output shape for an input shape (no side effects). Throws on bad input.
  virtual Shape output_shape(const Shape& input_shape) const = 0;

  // forward(X) returns Y; when training it caches what backward needs.
  virtual Tensor forward(const Tensor& x, bool training) = 0;
  // backward(dL/dY) fills the parameter gradients and returns dL/dX.
  virtual Tensor backward(const Tensor& dy) = 0;

  // ---- the graph interface (n inputs) -----------------------------------
  // How many inputs the layer takes (kAnyNumberOfInputs: no upper bound).
  static constexpr int kAnyNumberOfInputs = INT_MAX;
  virtual int min_inputs() const { return 1; }
  virtual int max_inputs() const { return 1; }
  // Throws an Error naming the layer when n is outside [min_inputs, max_inputs].
  void check_input_count(size_t n) const;
  // Output shape for these input shapes (batch axis included); throws an
  // Error naming the layer and the input at fault on a mismatch.
  virtual Shape graph_output_shape(const std::vector<Shape>& input_shapes) const;
  // Y from the inputs; when training, caches what graph_backward needs.
  virtual Tensor graph_forward(const std::vector<Tensor>& inputs, bool training);
  // dL/dY -> one dL/dX per input (in input order; an element may be
  // undefined when input_gradient_needed() is false). Elements may share
  // storage with dy or with each other (Add returns dy for every input):
  // callers must not write into them.
  virtual std::vector<Tensor> graph_backward(const Tensor& dy);

  // Whether backward() must return dL/dX (default: yes). NeuralNetwork
  // clears it for a layer none of whose inputs depends on a parameter (the
  // model input, or a parameter-free transform of it), whose gradient nobody
  // uses: FullyConnected and Conv2D then skip their dX GEMM / backward-data
  // pass and return an undefined tensor, as PyTorch does for an input that
  // does not require grad. Layers for which dX is cheap may compute it anyway.
  void set_input_gradient_needed(bool needed) { input_gradient_needed_ = needed; }
  bool input_gradient_needed() const { return input_gradient_needed_; }

  // Layers with an activation (SPEC: Y = act(Z)) expose it so that the model
  // can fuse SoftMax with CrossEntropy: it then computes dL/dZ itself and
  // calls backward_from_preactivation.
  virtual const Activation* activation() const { return nullptr; }
  virtual Tensor backward_from_preactivation(const Tensor& dz);

  virtual std::vector<Parameter*> parameters() { return {}; }
  // The parameters by name relative to this layer: "W" for a plain layer,
  // "conv1.W" for the child "conv1" of a CompositeLayer (composite_layer.hpp).
  // The model prefixes the layer's name ("res1.conv1.W") and refuses two
  // parameters with one name (they would share optimizer state).
  virtual std::vector<std::pair<std::string, Parameter*>> named_parameters();
  // Non-trainable state saved in checkpoints (BatchNorm running statistics).
  virtual std::vector<std::pair<std::string, Tensor*>> buffers() { return {}; }
  // The options that rebuild this layer through make_layer() (type and name
  // included), e.g. {"type": "dropout", "name": "drop1", "p": 0.5}.
  virtual Json config() const = 0;

  // The optimisation step about to run. Layers whose training forward is
  // random (Dropout) key their random stream on it, so a run resumed at step
  // k draws exactly what an uninterrupted run drew.
  virtual void set_step(uint64_t step) {}

  // Seed for this layer's initial weights (and dropout masks).
  void set_seed(uint64_t seed) { seed_ = seed; }
  uint64_t seed() const { return seed_; }
  // The per-example input shape the layer was built for (without batch);
  // the first input's for a layer with several.
  const Shape& built_input_shape() const { return built_inputs_.at(0); }

 protected:
  // Called once by build(): create parameters for this input shape.
  virtual void create_parameters(const Shape& input_shape, Device& device, DType dtype) {}
  // The error prefix every message of this layer starts with.
  std::string where() const { return "layer '" + name_ + "' (" + type() + ")"; }
  // Checks that x has the shape the layer was built for.
  void check_input(const Tensor& x) const;

  uint64_t seed_ = 0;

 private:
  bool input_gradient_needed_ = true;
  std::string name_;
  bool built_ = false;
  std::vector<Shape> built_inputs_;
};

// A layer whose natural form takes several inputs (Add, Concat): it
// implements the graph_* forms, and the one-tensor forms become the graph
// forms with a single input (refused by check_input_count when the layer
// needs more).
class MultiInputLayer : public Layer {
 public:
  using Layer::Layer;
  Shape graph_output_shape(const std::vector<Shape>& input_shapes) const override = 0;
  Tensor graph_forward(const std::vector<Tensor>& inputs, bool training) override = 0;
  std::vector<Tensor> graph_backward(const Tensor& dy) override = 0;
  Shape output_shape(const Shape& input_shape) const final { return graph_output_shape({input_shape}); }
  Tensor forward(const Tensor& x, bool training) final { return graph_forward({x}, training); }
  Tensor backward(const Tensor& dy) final { return graph_backward(dy).at(0); }

 protected:
  // The start of every graph_forward: checks each input (defined, non-empty
  // batch) and builds the layer for their shapes; returns the output shape.
  Shape build_for(const std::vector<Tensor>& inputs);
};

}  // namespace janus
