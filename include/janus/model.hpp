// NeuralNetwork (SPEC §2 "Model"): a graph of layers, a loss, and the
// backward pass in reverse.
//
// The graph: nodes in topological order, each a layer whose inputs are named
// earlier nodes (by layer name) or the model input ("input"). A node without
// explicit inputs takes the previous node (the first node: the model input),
// so a plain list of layers is the chain it always was, with the same layer
// names, seeds and checkpoint keys. The last node is the model output. In a
// config, a layer entry may carry "inputs": ["a", "b"] (see
// docs/graph-models.md):
//
//   {"type": "conv2d", "name": "c1", "n_out": 64, "kernel": 3},
//   {"type": "conv2d", "name": "c2", "n_out": 64, "kernel": 3},
//   {"type": "add", "name": "res", "inputs": ["c1", "c2"]}
//
// Backward: each node's output gradient is the sum of what its consumers
// send back (fan-out sums gradients, as Caffe's split layer). A node is run
// backward only when its output depends on some trainable parameter (frozen
// ones, ParameterOptions::trainable false, do not count), and asks for its
// input gradient only when one of its inputs does (reachability from the
// trainable parameters): the model input's gradient is never formed.
//
// CrossEntropy reads logits, as PyTorch's CrossEntropyLoss: when the output
// node ends in SoftMax (the output is a distribution), the logits are that
// softmax's input; otherwise the model's output is taken as logits and the
// loss applies log-softmax itself. Both use the fused, numerically stable
// softmax + cross-entropy gradient (S - Y)/m on the logits (the loss is the
// output's only consumer), so the loss is never negative.
//
// Activation storage: the dtype of every layer output and of the gradients
// that flow back through them, chosen once by build() from the device, the
// precision mode in force then and the parameters' dtype
// (precision.hpp, activation_dtype): bfloat16 on a CUDA device in bf16 mode,
// as PyTorch's autocast; the parameters' dtype otherwise (fp32 and tf32
// modes, CPU devices: float32 exactly as before). With bf16 activations,
// parameters, their gradients, optimizer state, BatchNorm statistics, losses
// and metrics stay float32; forward() converts the (float32) batch once at
// the entry and returns a float32 copy of the output node's result (exact:
// a bf16 value is a float32 value), so callers see float32 unless they ask
// (layers run one by one, a PassObserver). Cross-entropy reads the bf16
// logits directly (the fused softmax cross-entropy takes bf16); L2 reads the
// float32 copy, and its float32 gradient is rounded once to bf16.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "janus/json.hpp"
#include "janus/layer.hpp"
#include "janus/loss.hpp"

namespace janus {

// Whether a forward pass trains (caches what backward reads, BatchNorm
// normalises with the batch's statistics and updates its running ones,
// Dropout drops) or evaluates (running statistics, no dropout, nothing
// cached). Every call says which: there is no default.
enum class Mode { Train, Eval };

struct NamedParameter {
  // "<layer name>.<parameter name>", e.g. "conv2d_0.W"; inside a composite
  // layer "<layer>.<child>.<parameter>", e.g. "res1.conv1.W".
  std::string name;
  Parameter* parameter;
  // The model the parameter belongs to, while it lives (set by
  // NeuralNetwork::named_parameters(); empty for a list made by hand): an
  // optimizer bound to these parameters refuses to step once that model is
  // destroyed or replaced (`model = load_model(...)`), instead of writing
  // through a dangling pointer.
  std::weak_ptr<const void> owner = {};
};

// One node of a model graph as given to the constructor: a layer and the
// names of its inputs (earlier layers' names or "input"); empty: the previous node.
struct GraphNode {
  std::unique_ptr<Layer> layer;
  std::vector<std::string> inputs;
};

// Observes a pass of the graph walker node by node (the per-layer numerics
// check and `janus bench`'s per-layer timings use it).
class PassObserver {
 public:
  enum class Pass { Forward, Loss, Backward };
  virtual ~PassObserver() = default;
  // Before node `node` runs (Loss: the loss of the output node).
  virtual void begin(Pass pass, size_t node) {}
  // After it ran. `result`: the node's output (Forward), the gradient of the
  // output node's result (Loss), or undefined (Backward). Returning false
  // stops the pass: forward() then returns an undefined tensor and
  // backward() returns NaN.
  virtual bool end(Pass pass, size_t node, const Tensor& result) { return true; }
};

class NeuralNetwork {
 public:
  // The name by which a node lists the model input among its inputs.
  static constexpr const char* kInputName = "input";

  // A chain: each layer takes the previous one's output.
  NeuralNetwork(std::vector<std::unique_ptr<Layer>> layers, std::unique_ptr<Loss> loss, uint64_t seed = 0);
  // A graph. Throws an Error naming the layer at fault for a duplicate or
  // reserved name, an input that is not an earlier node (unknown name, the
  // node itself, a later node: the order must be topological), a wrong number
  // of inputs, or a node whose output reaches nothing (only the last node may
  // be unused). Shapes are checked by build().
  NeuralNetwork(std::vector<GraphNode> nodes, std::unique_ptr<Loss> loss, uint64_t seed = 0);
  // {"seed": 0, "loss": "cross_entropy", "layers": [ {...}, ... ]}; a layer
  // may have "inputs": [names] (see above).
  static NeuralNetwork from_config(const Json& config);
  // The config that rebuilds this network; "inputs" only where they are not
  // the previous node (so a chain's config is what it always was), parameter
  // options (parameter_options.hpp) only where they are not the defaults.
  Json config() const;

  // Output shape for inputs of this shape (no side effects); throws an Error
  // naming the layer (and its inputs) where the shapes do not fit.
  Shape output_shape(const Shape& input_shape) const;
  // Builds every layer for inputs of this shape on this device, creating the
  // parameters (also done lazily by the first forward).
  // `dtype` is the parameters' dtype; the activations' follows (above).
  void build(const Shape& input_shape, Device& device, DType dtype = DType::F32);
  bool built() const;
  // The dtype of the activations (layer outputs and their gradients) chosen
  // by build() (see "Activation storage" above); throws before build().
  DType activation_dtype() const;
  // Overrides the choice for the next build(), e.g. float32 activations in
  // bf16 mode on CUDA (bf16 products on float32 storage, increment 2a's
  // numerics) or bf16 ones in another mode. build() throws an Error naming
  // the dtypes and the device unless `dtype` is the parameters' dtype, or
  // bfloat16 for float32 parameters on a CUDA device. Throws once built.
  void set_activation_dtype(DType dtype);
  Device& device() const;
  Shape input_shape() const { return input_shape_; }

  // Runs the nodes in order on x (batch, ...): images are NHWC (batch,
  // rows, cols, channels). `mode` says whether this is a training pass (see
  // Mode). `observer` (optional) sees every node's output (in the
  // activation dtype). Returns the output in the parameters' dtype (with bf16
  // activations: the exact float32 copy of the bf16 result). Once built, an
  // input whose per-example shape differs from the built one is an Error; an
  // NCHW batch given to an NHWC model (the same extents, channels first) is
  // named as such. Not yet built (a model from from_config), the first
  // forward builds the model for x's shape as given, so it cannot tell a
  // layout mistake: call build(Shape{1, rows, cols, channels}, device) first
  // to have every batch checked. input_shape() is the shape it was built for,
  // batch extent included.
  Tensor forward(const Tensor& x, Mode mode, PassObserver* observer = nullptr);
  // Tells every layer which optimisation step the next forward belongs to
  // (see Layer::set_step); the trainer calls it before each training step.
  void set_step(uint64_t step);
  // Computes the loss of `out` against target, backpropagates through the
  // nodes in reverse (filling the gradients) and returns the loss. Only
  // nodes whose output depends on a trainable parameter run backward (see
  // above). `out` must be the tensor the last forward(x, Mode::Train)
  // returned: anything else (the arguments swapped, an evaluation pass last)
  // is an Error. (Without any model-level forward, for callers that ran the
  // layers one by one, there is nothing to compare with.)
  double backward(const Tensor& target, const Tensor& out, PassObserver* observer = nullptr);
  // As backward(), with the loss left on the device: written into `loss`, one
  // float64 element on the model's device (Device::softmax_cross_entropy_into,
  // l2_forward_into), so that nothing waits for the device (the training
  // step; reading `loss` later gives what backward() returns). Returns false
  // when `observer` stopped the pass (`loss` is then unspecified).
  bool backward_into(const Tensor& target, const Tensor& out, Tensor& loss, PassObserver* observer = nullptr);
  // Evaluation-mode forward and loss: returns (Yhat, loss).
  std::pair<Tensor, double> predict(const Tensor& x, const Tensor& y);

  // Every parameter by its full name (see NamedParameter). Throws an Error
  // when two parameters have one name (e.g. a hand-written composite layer
  // that returns its children's parameters without their names: derive it
  // from CompositeLayer), since they would share optimizer state.
  std::vector<NamedParameter> named_parameters();
  // Every tensor a checkpoint must hold: parameters and buffers, by full
  // name; duplicate names are refused as above.
  std::vector<std::pair<std::string, Tensor*>> state();

  // The nodes, in topological order (node i's layer is layer(i)).
  size_t size() const { return nodes_.size(); }
  Layer& layer(size_t i) { return *nodes_.at(i).layer; }
  const Layer& layer(size_t i) const { return *nodes_.at(i).layer; }
  // Node i's inputs: indices of earlier nodes, kModelInput for the model input.
  static constexpr int kModelInput = -1;
  const std::vector<int>& node_inputs(size_t i) const { return nodes_.at(i).inputs; }
  // How many inputs of later nodes node i feeds (an input listed twice counts twice).
  int consumer_count(size_t i) const { return nodes_.at(i).consumers; }
  // Per-node input and output shapes for inputs of this shape (for reports).
  std::vector<std::vector<Shape>> node_input_shapes(const Shape& input_shape) const;

  const Loss& loss() const { return *loss_; }
  bool uses_fused_softmax_cross_entropy() const;  // ends in SoftMax, loss CrossEntropy
  uint64_t seed() const { return seed_; }
  // The logits cross-entropy reads for the output `out` (see the file comment).
  const Tensor& cross_entropy_logits(const Tensor& out) const;

 private:
  struct Node {
    std::unique_ptr<Layer> layer;
    std::vector<int> inputs;     // earlier node indices or kModelInput
    bool explicit_inputs = false;  // listed in the config (else: the previous node)
    int consumers = 0;
    bool depends_on_parameters = false;  // on a trainable one: whether its output gradient is needed
    size_t last_consumer = 0;    // the last node reading its output (forward frees it after)
  };
  // Sets depends_on_parameters and each layer's input_gradient_needed from
  // the graph and the parameters' trainable options (at construction, and
  // again in backward() when those options have changed).
  void plan_gradients();
  // Each parameter, node by node, with its trainable option when
  // plan_gradients() last ran (at construction and after build(), when every
  // layer has its parameters).
  std::vector<std::pair<const Parameter*, bool>> planned_trainable_;
  // Whether a parameter was frozen or unfrozen since the last plan: a walk
  // over planned_trainable_, so backward() allocates nothing to ask.
  bool trainable_options_changed() const;
  // Every node's output shape, from output_shape_of(layer, input shapes)
  // called on the nodes in order; errors of nodes with several inputs get
  // the inputs' names and shapes appended.
  template <class OutputShapeOf>
  std::vector<Shape> walk_shapes(const Shape& input_shape, OutputShapeOf&& output_shape_of) const;
  std::vector<Node> nodes_;
  std::unique_ptr<Loss> loss_;
  // Lives exactly as long as this model's layers (moves with them): the
  // owner of the NamedParameters named_parameters() hands out.
  std::shared_ptr<const int> lifetime_ = std::make_shared<const int>(0);
  uint64_t seed_;
  Shape input_shape_;
  Device* device_ = nullptr;
  DType parameter_dtype_ = DType::F32, activation_dtype_ = DType::F32;
  std::optional<DType> requested_activation_dtype_;  // set_activation_dtype
  // The last model-level forward pass (None: none yet, e.g. layers run one
  // by one by the caller) and, after a training pass, its output: what
  // backward() must be given (compared by storage).
  enum class LastPass { None, Train, Eval } last_pass_ = LastPass::None;
  Tensor last_training_output_;
  // The output node's result of the last training pass, in the activation
  // dtype: what the loss reads (last_training_output_ is its copy in the
  // parameters' dtype, or the same tensor).
  Tensor last_activation_output_;
};

}  // namespace janus
