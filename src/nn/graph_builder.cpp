// GraphBuilder: named nodes -> NeuralNetwork's GraphNode list.
#include "janus/graph_builder.hpp"

#include "janus/error.hpp"
#include "nn/layer_name.hpp"

namespace janus {

GraphBuilder::GraphBuilder(Shape example_shape) : example_shape_(std::move(example_shape)) {
  JANUS_CHECK(example_shape_.rank() >= 1 && example_shape_.numel() > 0, "GraphBuilder: the example shape ",
              example_shape_.str(), " must be non-empty, without the batch axis (e.g. (32, 32, 3) for NHWC images)");
}

std::string GraphBuilder::check_value(const GraphValue& v, const std::string& user) const {
  JANUS_CHECK(v.owner_ == this, "GraphBuilder: layer '", user, "' reads '", v.name_,
              "', a value of another GraphBuilder");
  return v.name_;
}

GraphValue GraphBuilder::layer(std::unique_ptr<Layer> layer, const std::vector<GraphValue>& inputs) {
  JANUS_CHECK(layer != nullptr, "GraphBuilder: layer() got no layer");
  const std::string name = layer->name();
  JANUS_CHECK(!inputs.empty(), "GraphBuilder: layer '", name, "' has no inputs");
  nn_detail::check_layer_name(name, "GraphBuilder: layer '" + name + "' (" + layer->type() + ")");
  for (const GraphNode& n : nodes_)
    JANUS_CHECK(n.layer->name() != name, "GraphBuilder: two layers named '", name, "'");
  std::vector<std::string> names;
  for (const GraphValue& v : inputs) names.push_back(check_value(v, name));
  // Reading just the previous node is the chain's default: written without
  // "inputs", as a hand-written config would be.
  const std::string previous = nodes_.empty() ? NeuralNetwork::kInputName : nodes_.back().layer->name();
  if (names.size() == 1 && names[0] == previous) names.clear();
  layer->check_input_count(inputs.size());
  nodes_.push_back({std::move(layer), std::move(names)});
  return GraphValue(this, name);
}

GraphValue GraphBuilder::conv2d(const std::string& name, const GraphValue& x, const Conv2dOptions& o) {
  return layer(std::make_unique<Conv2D>(name, o.n_out_, o.kernel_rows_, o.kernel_cols_, o.activation_, o.stride_,
                                        o.padding_, o.init_, o.bias_),
               {x});
}

GraphValue GraphBuilder::dense(const std::string& name, const GraphValue& x, const DenseOptions& o) {
  return layer(std::make_unique<FullyConnected>(name, o.n_out_, o.activation_, o.init_, o.bias_), {x});
}

GraphValue GraphBuilder::batchnorm(const std::string& name, const GraphValue& x, double momentum, double eps) {
  return layer(std::make_unique<BatchNorm>(name, momentum, eps), {x});
}

GraphValue GraphBuilder::activation(const std::string& name, const GraphValue& x, ActivationFunction f) {
  return layer(std::make_unique<ActivationLayer>(name, f), {x});
}

GraphValue GraphBuilder::max_pool(const std::string& name, const GraphValue& x, const Pool2dOptions& o) {
  return layer(std::make_unique<Pool2D>(name, PoolMode::Max, o.kernel_rows_, o.kernel_cols_, o.stride_, o.padding_),
               {x});
}

GraphValue GraphBuilder::avg_pool(const std::string& name, const GraphValue& x, const Pool2dOptions& o) {
  return layer(
      std::make_unique<Pool2D>(name, PoolMode::Average, o.kernel_rows_, o.kernel_cols_, o.stride_, o.padding_), {x});
}

GraphValue GraphBuilder::global_avg_pool(const std::string& name, const GraphValue& x) {
  return layer(std::make_unique<GlobalAvgPool>(name), {x});
}

GraphValue GraphBuilder::flatten(const std::string& name, const GraphValue& x) {
  return layer(std::make_unique<Flatten>(name), {x});
}

GraphValue GraphBuilder::dropout(const std::string& name, const GraphValue& x, double p) {
  return layer(std::make_unique<Dropout>(name, p), {x});
}

GraphValue GraphBuilder::scale(const std::string& name, const GraphValue& x, double factor) {
  return layer(std::make_unique<Scale>(name, factor), {x});
}

GraphValue GraphBuilder::add(const std::string& name, const std::vector<GraphValue>& xs) {
  return layer(std::make_unique<Add>(name), xs);
}

GraphValue GraphBuilder::concat(const std::string& name, const std::vector<GraphValue>& xs) {
  return layer(std::make_unique<Concat>(name), xs);
}

NeuralNetwork GraphBuilder::build(const GraphValue& output, std::unique_ptr<Loss> loss, Device& device,
                                  uint64_t seed, DType dtype) {
  JANUS_CHECK(!nodes_.empty(), "GraphBuilder: build() before any layer was added");
  const std::string out = check_value(output, "(model output)");
  JANUS_CHECK(out == nodes_.back().layer->name(), "GraphBuilder: the model output '", out,
              "' must be the last layer added ('", nodes_.back().layer->name(), "')");
  NeuralNetwork net(std::move(nodes_), std::move(loss), seed);
  nodes_.clear();
  std::vector<int64_t> dims{1};
  dims.insert(dims.end(), example_shape_.dims().begin(), example_shape_.dims().end());
  net.build(Shape(dims), device, dtype);
  return net;
}

}  // namespace janus
