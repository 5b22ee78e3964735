// NeuralNetwork: a graph of layers walked forward in topological order and
// backward in reverse, with fan-out gradients summed (model.hpp).
#include "janus/model.hpp"

#include <limits>
#include <set>

#include "janus/error.hpp"
#include "janus/fusion.hpp"
#include "janus/layers.hpp"
#include "janus/nlohmann_json.hpp"
#include "janus/parameter_options.hpp"
#include "janus/precision.hpp"
#include "nn/layer_name.hpp"

namespace janus {

namespace {

std::vector<GraphNode> chain_of(std::vector<std::unique_ptr<Layer>> layers) {
  std::vector<GraphNode> nodes;
  for (auto& l : layers) nodes.push_back({std::move(l), {}});
  return nodes;
}

std::string describe(const Layer& l) { return "layer '" + l.name() + "' (" + l.type() + ")"; }

// Runs one layer's pass; an Error from below it (a device op: "cpu gemm:
// dtype mismatch ...") gets the layer's name in front, so that every
// message of a model pass names the layer at fault. Layers' own errors
// name it already. Nothing is added on the path that does not throw.
template <class Pass>
auto in_layer(const Layer& l, Pass&& pass) -> decltype(pass()) {
  try {
    return pass();
  } catch (const Error& e) {
    const std::string what = e.what();
    if (what.rfind("layer '", 0) == 0) throw;
    throw Error(describe(l) + ": " + what);
  }
}

}  // namespace

NeuralNetwork::NeuralNetwork(std::vector<std::unique_ptr<Layer>> layers, std::unique_ptr<Loss> loss, uint64_t seed)
    : NeuralNetwork(chain_of(std::move(layers)), std::move(loss), seed) {}

NeuralNetwork::NeuralNetwork(std::vector<GraphNode> nodes, std::unique_ptr<Loss> loss, uint64_t seed)
    : loss_(std::move(loss)), seed_(seed) {
  JANUS_CHECK(!nodes.empty(), "a network needs at least one layer");
  JANUS_CHECK(loss_ != nullptr, "a network needs a loss");
  for (size_t i = 0; i < nodes.size(); ++i)
    JANUS_CHECK(nodes[i].layer != nullptr, "a network's node ", i, " has no layer");
  // Parameter names in checkpoints are "<layer name>.<parameter>": unique layer names without '.'
  // keep them apart and unambiguous (layer_name.hpp).
  for (size_t i = 0; i < nodes.size(); ++i) {
    JANUS_CHECK(nodes[i].layer->name() != kInputName, describe(*nodes[i].layer), ": the name '", kInputName,
                "' is reserved for the model input");
    nn_detail::check_layer_name(nodes[i].layer->name(), describe(*nodes[i].layer));
    for (size_t j = 0; j < i; ++j)
      JANUS_CHECK(nodes[i].layer->name() != nodes[j].layer->name(), "layers ", j, " and ", i, " share the name '",
                  nodes[i].layer->name(), "'");
  }
  // Resolve input names to earlier nodes: only earlier nodes can be named,
  // so the order is topological and the graph has no cycle.
  std::vector<std::string> names;
  for (const GraphNode& g : nodes) names.push_back(g.layer->name());
  for (size_t i = 0; i < nodes.size(); ++i) {
    Node n;
    n.explicit_inputs = !nodes[i].inputs.empty();
    if (!n.explicit_inputs) n.inputs = {static_cast<int>(i) - 1};  // the previous node (-1: the model input)
    for (const std::string& name : nodes[i].inputs) {
      if (name == kInputName) {
        n.inputs.push_back(kModelInput);
        continue;
      }
      size_t j = 0;
      while (j < names.size() && names[j] != name) ++j;
      const std::string where = describe(*nodes[i].layer);
      JANUS_CHECK(j < nodes.size(), where, ": input '", name, "' is not the name of a layer (nor '", kInputName,
                  "', the model input)");
      JANUS_CHECK(j != i, where, ": lists itself as an input (a cycle; inputs must be earlier layers)");
      JANUS_CHECK(j < i, where, ": input '", name, "' is layer ", j, ", which comes after it (layer ", i,
                  "): layers must come after their inputs, and a graph cannot have cycles");
      n.inputs.push_back(static_cast<int>(j));
    }
    nodes[i].layer->check_input_count(n.inputs.size());
    n.layer = std::move(nodes[i].layer);
    nodes_.push_back(std::move(n));
  }
  for (size_t i = 0; i < nodes_.size(); ++i)
    for (int j : nodes_[i].inputs)
      if (j != kModelInput) {
        ++nodes_[static_cast<size_t>(j)].consumers;
        nodes_[static_cast<size_t>(j)].last_consumer = i;
      }
  // Every node but the output must feed a later one; then every node reaches
  // the output and gets a gradient.
  for (size_t i = 0; i + 1 < nodes_.size(); ++i)
    JANUS_CHECK(nodes_[i].consumers > 0, describe(*nodes_[i].layer),
                ": its output is the input of no later layer, and only the last layer (the model output) may be unused");
  // Each layer draws its weights from its own stream, so inserting a layer
  // does not change the initial weights of the others by position alone.
  for (size_t i = 0; i < nodes_.size(); ++i) nodes_[i].layer->set_seed(splitmix64(seed_ * 1000003ull + i));
  plan_gradients();
  // BatchNorm + ReLU pairs run as one fused operation (fusion.hpp); results
  // are bit-identical, so this is decided once, here, from the environment.
  fuse_batchnorm_relu(*this, fusion_enabled_from_environment());
}

void NeuralNetwork::plan_gradients() {
  // Reachability from the trainable parameters: a node's output gradient is
  // needed when the node has a trainable parameter or one of its inputs
  // needs its gradient; a node asks for its input gradients only when an
  // input needs one (the model input never does). Frozen parameters
  // (ParameterOptions::trainable false) count as none: a frozen stem is not
  // run backward at all, as PyTorch skips what requires no grad.
  planned_trainable_.clear();
  for (Node& n : nodes_) {
    bool input_depends = false;
    for (int j : n.inputs)
      input_depends = input_depends || (j != kModelInput && nodes_[static_cast<size_t>(j)].depends_on_parameters);
    bool trainable = false;
    for (const Parameter* p : n.layer->parameters()) {
      trainable = trainable || p->options.trainable;
      planned_trainable_.emplace_back(p, p->options.trainable);
    }
    n.depends_on_parameters = input_depends || trainable;
    n.layer->set_input_gradient_needed(input_depends);
  }
}

bool NeuralNetwork::trainable_options_changed() const {
  for (const auto& [p, planned] : planned_trainable_)
    if (p->options.trainable != planned) return true;
  return false;
}

NeuralNetwork NeuralNetwork::from_config(const Json& model_config) {
  const nlohmann::json& config = nlohmann_json(model_config);
  JANUS_CHECK(config.is_object(), "model config must be a JSON object");
  for (auto it = config.begin(); it != config.end(); ++it)
    JANUS_CHECK(it.key() == "layers" || it.key() == "loss" || it.key() == "seed", "model config: unknown key '",
                it.key(), "' (allowed: layers, loss, seed)");
  JANUS_CHECK(config.contains("layers") && config.at("layers").is_array() && !config.at("layers").empty(),
              "model config: 'layers' must be a non-empty array");
  std::vector<GraphNode> nodes;
  int i = 0;
  for (const auto& lc : config.at("layers")) {
    GraphNode node;
    if (lc.is_object() && lc.contains("inputs")) {
      nlohmann::json layer_only = lc;
      layer_only.erase("inputs");
      node.layer = make_layer(layer_only, i);
      const nlohmann::json& in = lc.at("inputs");
      bool names = in.is_array() && !in.empty();
      for (const auto& e : in) names = names && e.is_string();
      JANUS_CHECK(names, describe(*node.layer), ": 'inputs' must be a non-empty array of layer names, got ",
                  in.dump());
      node.inputs = in.get<std::vector<std::string>>();
    } else {
      node.layer = make_layer(lc, i);
    }
    nodes.push_back(std::move(node));
    ++i;
  }
  JANUS_CHECK(!config.contains("loss") || config.at("loss").is_string(), "model config: 'loss' must be a string, got ",
              config.contains("loss") ? config.at("loss").dump() : std::string());
  const std::string loss = config.value("loss", std::string("cross_entropy"));
  uint64_t seed = 0;
  if (config.contains("seed")) {
    JANUS_CHECK(config.at("seed").is_number_unsigned() || config.at("seed").is_number_integer(),
                "model config: 'seed' must be an integer");
    seed = config.at("seed").get<uint64_t>();
  }
  return NeuralNetwork(std::move(nodes), make_loss(loss), seed);
}

Json NeuralNetwork::config() const {
  nlohmann::json layers = nlohmann::json::array();
  for (const Node& n : nodes_) {
    nlohmann::json lc = n.layer->config();
    add_parameter_options_to_config(*n.layer, lc);
    if (n.explicit_inputs) {
      nlohmann::json names = nlohmann::json::array();
      for (int j : n.inputs) names.push_back(j == kModelInput ? std::string(kInputName) : nodes_[static_cast<size_t>(j)].layer->name());
      lc["inputs"] = names;
    }
    layers.push_back(lc);
  }
  return nlohmann::json{{"layers", layers}, {"loss", loss_->name()}, {"seed", seed_}};
}

template <class OutputShapeOf>
std::vector<Shape> NeuralNetwork::walk_shapes(const Shape& input_shape, OutputShapeOf&& output_shape_of) const {
  std::vector<Shape> out(nodes_.size());
  for (size_t i = 0; i < nodes_.size(); ++i) {
    std::vector<Shape> ins;
    for (int j : nodes_[i].inputs) ins.push_back(j == kModelInput ? input_shape : out[static_cast<size_t>(j)]);
    try {
      out[i] = output_shape_of(*nodes_[i].layer, ins);
    } catch (const Error& e) {
      if (nodes_[i].inputs.size() < 2) throw;  // a chain's message is complete as it is
      // Name the inputs: the layer knows only their positions.
      std::string named;
      for (size_t k = 0; k < ins.size(); ++k) {
        const int j = nodes_[i].inputs[k];
        named += (k ? ", " : "") + std::to_string(k) + ": '" +
                 (j == kModelInput ? std::string(kInputName) : nodes_[static_cast<size_t>(j)].layer->name()) +
                 "' " + ins[k].str();
      }
      throw Error(std::string(e.what()) + " (inputs " + named + ")");
    }
  }
  return out;
}

Shape NeuralNetwork::output_shape(const Shape& input_shape) const {
  return walk_shapes(input_shape, [](const Layer& l, const std::vector<Shape>& ins) { return l.graph_output_shape(ins); })
      .back();
}

std::vector<std::vector<Shape>> NeuralNetwork::node_input_shapes(const Shape& input_shape) const {
  const std::vector<Shape> outs =
      walk_shapes(input_shape, [](const Layer& l, const std::vector<Shape>& ins) { return l.graph_output_shape(ins); });
  std::vector<std::vector<Shape>> ins(nodes_.size());
  for (size_t i = 0; i < nodes_.size(); ++i)
    for (int j : nodes_[i].inputs) ins[i].push_back(j == kModelInput ? input_shape : outs[static_cast<size_t>(j)]);
  return ins;
}

void NeuralNetwork::build(const Shape& input_shape, Device& device, DType dtype) {
  DType activations = janus::activation_dtype(device, matmul_precision(), dtype);
  if (requested_activation_dtype_) {
    activations = *requested_activation_dtype_;
    JANUS_CHECK(activations == dtype ||
                    (activations == DType::BF16 && dtype == DType::F32 && device.kind() == DeviceKind::CUDA),
                "network build: ", dtype_name(activations), " activations with ", dtype_name(dtype),
                " parameters on ", device.name(), " (activations take the parameters' dtype, or bfloat16 for "
                "float32 parameters on a CUDA device)");
  }
  walk_shapes(input_shape,
              [&](Layer& l, const std::vector<Shape>& ins) { return l.build(ins, device, dtype); });
  input_shape_ = input_shape;
  device_ = &device;
  parameter_dtype_ = dtype;
  activation_dtype_ = activations;
  // A layer may make its parameters when it is built: plan with them.
  plan_gradients();
}

bool NeuralNetwork::built() const { return device_ != nullptr; }

DType NeuralNetwork::activation_dtype() const {
  JANUS_CHECK(built(), "network not built yet: its activation dtype is chosen by build()");
  return activation_dtype_;
}

void NeuralNetwork::set_activation_dtype(DType dtype) {
  JANUS_CHECK(!built(), "network set_activation_dtype: the network is built already (activations ",
              dtype_name(activation_dtype_), "); set it before build() or the first forward");
  requested_activation_dtype_ = dtype;
}

Device& NeuralNetwork::device() const {
  JANUS_CHECK(device_ != nullptr, "network not built yet (no forward pass or build() so far)");
  return *device_;
}

namespace {

// An NCHW batch (batch, channels, rows, cols) given to a model built for
// NHWC (batch, rows, cols, channels) images: the same extents, channels
// moved to the front. Refused with a message naming both layouts (a square
// 3-channel image would otherwise be a plain shape mismatch at the first
// layer, or, were the extents all equal, pass unnoticed).
void check_not_nchw(const Shape& x, const Shape& built) {
  if (x.rank() != 4 || built.rank() != 4) return;
  const bool same = x[1] == built[1] && x[2] == built[2] && x[3] == built[3];
  const bool channels_first = x[1] == built[3] && x[2] == built[1] && x[3] == built[2];
  JANUS_CHECK(same || !channels_first, "network input: a batch of shape ", x.str(),
              " looks like NCHW (batch, channels, rows, cols) = (", x[0], ", ", x[1], ", ", x[2], ", ",
              x[3], "), but the model takes NHWC (batch, rows, cols, channels) = (batch, ", built[1], ", ",
              built[2], ", ", built[3], "): transpose the batch to NHWC");
}

// Names must be unique: the optimizer keys its state on them, a checkpoint its tensors.
template <class Named>
void check_unique_names(const std::vector<Named>& named, const char* what) {
  std::set<std::string> seen;
  for (const auto& n : named)
    JANUS_CHECK(seen.insert(n.first).second, "network: two ", what, " are both named '", n.first,
                "' (they would share optimizer state and checkpoint entries); a layer made of other layers "
                "must derive from CompositeLayer (composite_layer.hpp), which names them '<layer>.<child>.<name>'");
}

}  // namespace

Tensor NeuralNetwork::forward(const Tensor& x, Mode mode, PassObserver* observer) {
  JANUS_CHECK(x.defined() && x.rank() >= 2 && x.dim(0) > 0, "network input: expected a non-empty batch, got ",
              x.defined() ? x.shape().str() : std::string("an undefined tensor"));
  if (!built()) build(x.shape(), x.device(), x.dtype());
  check_not_nchw(x.shape(), input_shape_);
  const bool training = mode == Mode::Train;
  last_training_output_ = last_activation_output_ = Tensor();
  last_pass_ = training ? LastPass::Train : LastPass::Eval;
  JANUS_CHECK(&x.device() == device_, "network input is on ", x.device().name(), " but the network is on ",
              device_->name());
  // The entry: a batch in the parameters' dtype converted once to the activations'.
  const Tensor input = x.dtype() == parameter_dtype_ && activation_dtype_ != parameter_dtype_
                           ? x.to(activation_dtype_) : x;
  std::vector<Tensor> outputs(nodes_.size());
  for (size_t i = 0; i < nodes_.size(); ++i) {
    Node& n = nodes_[i];
    std::vector<Tensor> ins;
    for (int j : n.inputs) ins.push_back(j == kModelInput ? input : outputs[static_cast<size_t>(j)]);
    if (observer) observer->begin(PassObserver::Pass::Forward, i);
    outputs[i] = in_layer(*n.layer, [&] { return n.layer->graph_forward(ins, training); });
    if (observer && !observer->end(PassObserver::Pass::Forward, i, outputs[i])) return Tensor();
    // Drop outputs nobody reads any more (the layers keep what backward needs).
    for (int j : n.inputs)
      if (j != kModelInput && nodes_[static_cast<size_t>(j)].last_consumer == i) outputs[static_cast<size_t>(j)] = Tensor();
  }
  // The exit: the caller gets the output in the parameters' dtype (exact from bf16).
  const Tensor& y = outputs.back();
  Tensor out = y.dtype() == activation_dtype_ && activation_dtype_ != parameter_dtype_ ? y.to(parameter_dtype_) : y;
  if (training) {
    last_activation_output_ = y;
    last_training_output_ = out;
  }
  return out;
}

void NeuralNetwork::set_step(uint64_t step) {
  for (auto& n : nodes_) n.layer->set_step(step);
}

bool NeuralNetwork::uses_fused_softmax_cross_entropy() const {
  // The output node has no consumer but the loss (it is last), so the loss
  // may take over its SoftMax.
  const Activation* act = nodes_.back().layer->activation();
  return act && act->kind() == ActivationKind::SoftMax && dynamic_cast<const CrossEntropy*>(loss_.get());
}

// Cross-entropy always reads logits, as PyTorch's CrossEntropyLoss: the
// input of a final softmax when the model ends in one (its output is then
// the distribution), else the model's output itself (log-softmax is applied
// in the loss). Either way the loss is -sum(Y * log_softmax(Z))/m >= 0.
const Tensor& NeuralNetwork::cross_entropy_logits(const Tensor& out) const {
  if (!uses_fused_softmax_cross_entropy()) return out;
  const Tensor& logits = nodes_.back().layer->activation()->z();
  JANUS_CHECK(logits.defined() && logits.shape() == out.shape(), "network backward: no forward pass for this output");
  return logits;
}

double NeuralNetwork::backward(const Tensor& target, const Tensor& out, PassObserver* observer) {
  JANUS_CHECK(out.defined(), "network backward: no forward pass for this output");
  Tensor loss = Tensor::empty(Shape{1}, out.device(), DType::F64);
  if (!backward_into(target, out, loss, observer)) return std::numeric_limits<double>::quiet_NaN();
  return loss.to_host()[0];
}

bool NeuralNetwork::backward_into(const Tensor& target, const Tensor& out, Tensor& loss, PassObserver* observer) {
  // A parameter frozen or unfrozen since the last plan (through the C++ API) changes the plan.
  if (trainable_options_changed()) plan_gradients();
  // backward(target, output): both have the batch's shape, so swapped
  // arguments would compute a loss and train on nonsense. The output is
  // recognised by its storage.
  // (A caller that ran the layers one by one itself, as the parity tests
  // do, has made no model-level pass: nothing to compare with then.)
  JANUS_CHECK(last_pass_ != LastPass::Eval,
              "network backward: the last forward was forward(x, Mode::Eval), which caches nothing to "
              "backpropagate; run forward(x, Mode::Train) first");
  JANUS_CHECK(last_pass_ == LastPass::None ||
                  (out.defined() && last_training_output_.defined() &&
                   out.shares_storage_with(last_training_output_) && out.shape() == last_training_output_.shape()),
              "network backward(target, output): the second argument is not the output of the last "
              "forward(x, Mode::Train) (arguments swapped? the target comes first)");
  const size_t last = nodes_.size() - 1;
  const bool fused = uses_fused_softmax_cross_entropy();
  // The output node's result in the activation dtype (out may be its copy).
  const Tensor& y = last_pass_ == LastPass::Train ? last_activation_output_ : out;
  Tensor grad;
  if (observer) observer->begin(PassObserver::Pass::Loss, last);
  if (const auto* ce = dynamic_cast<const CrossEntropy*>(loss_.get())) {
    // d(CE o softmax)/dZ = (S - Y)/m: exact and stable, where the unfused
    // route divides by probabilities that may underflow to zero. With a
    // final softmax, the output node's backward then starts from its
    // pre-activation (below); without one, the logits are the output.
    // (bf16 logits are read as they are: the fused op takes bf16 storage.)
    ce->forward_backward_from_logits_into(cross_entropy_logits(y), target, &grad, loss);
  } else {
    // The other losses take float32 only: an exact float32 copy of bf16
    // activations (out itself after a model-level forward), the gradient
    // rounded once to the activations' dtype.
    const Tensor yhat = out.dtype() == DType::BF16 ? out.to(DType::F32) : out;
    loss_->forward_into(yhat, target, loss);
    grad = loss_->backward(yhat, target);
    if (grad.dtype() != y.dtype()) grad = grad.to(y.dtype());
  }
  if (observer && !observer->end(PassObserver::Pass::Loss, last, grad)) return false;

  // grads[i]: dL/d(output of node i), summed over its consumers. A first
  // contribution is held as given (it may share storage with another
  // gradient, e.g. Add's); a second one adds into a fresh copy.
  std::vector<Tensor> grads(nodes_.size());
  std::vector<bool> summing(nodes_.size(), false);
  grads[last] = grad;
  for (size_t i = last + 1; i-- > 0;) {
    Node& n = nodes_[i];
    // Nothing upstream of a node without trainable parameters has anything to learn.
    if (!n.depends_on_parameters) continue;
    const Tensor dy = std::move(grads[i]);
    JANUS_CHECK(dy.defined(), describe(*n.layer), ": no gradient reached its output in the backward pass");
    if (observer) observer->begin(PassObserver::Pass::Backward, i);
    const std::vector<Tensor> dx = in_layer(*n.layer, [&] {
      return (i == last && fused) ? std::vector<Tensor>{n.layer->backward_from_preactivation(dy)}
                                  : n.layer->graph_backward(dy);
    });
    if (observer && !observer->end(PassObserver::Pass::Backward, i, Tensor())) return false;
    JANUS_CHECK(dx.size() == n.inputs.size(), describe(*n.layer), ": backward returned ", dx.size(),
                " gradients for ", n.inputs.size(), " inputs");
    for (size_t k = 0; k < dx.size(); ++k) {
      const int j = n.inputs[k];
      if (j == kModelInput || !nodes_[static_cast<size_t>(j)].depends_on_parameters) continue;
      const auto u = static_cast<size_t>(j);
      JANUS_CHECK(dx[k].defined(), describe(*n.layer), ": backward returned no gradient for its input ", k);
      if (!grads[u].defined()) {
        grads[u] = dx[k];
      } else {
        // Fan-out: the gradient of a node read by several consumers is the sum.
        JANUS_CHECK(grads[u].shape() == dx[k].shape(), describe(*n.layer), ": gradient of shape ",
                    dx[k].shape().str(), " for input ", k, " where another consumer sent ", grads[u].shape().str());
        if (!summing[u]) {
          grads[u] = grads[u].clone();
          summing[u] = true;
        }
        grads[u].device().axpby(1.0, dx[k], 1.0, grads[u]);
      }
    }
  }
  return true;
}

std::pair<Tensor, double> NeuralNetwork::predict(const Tensor& x, const Tensor& y) {
  Tensor yhat = forward(x, Mode::Eval);
  double loss;
  if (const auto* ce = dynamic_cast<const CrossEntropy*>(loss_.get()))
    loss = ce->forward_backward_from_logits(cross_entropy_logits(yhat), y, nullptr);
  else
    loss = loss_->forward(yhat, y);
  return {yhat, loss};
}

std::vector<NamedParameter> NeuralNetwork::named_parameters() {
  std::vector<std::pair<std::string, Parameter*>> named;
  for (auto& n : nodes_)
    for (auto& [name, p] : n.layer->named_parameters()) named.emplace_back(n.layer->name() + "." + name, p);
  check_unique_names(named, "parameters");
  std::vector<NamedParameter> out;
  for (auto& [name, p] : named) out.push_back({name, p, lifetime_});
  return out;
}

std::vector<std::pair<std::string, Tensor*>> NeuralNetwork::state() {
  std::vector<std::pair<std::string, Tensor*>> out;
  for (auto& n : nodes_) {
    for (auto& [name, p] : n.layer->named_parameters()) out.push_back({n.layer->name() + "." + name, &p->value});
    for (auto& [name, t] : n.layer->buffers()) out.push_back({n.layer->name() + "." + name, t});
  }
  check_unique_names(out, "parameters or buffers");
  return out;
}

}  // namespace janus
