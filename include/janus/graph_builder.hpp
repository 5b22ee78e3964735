// GraphBuilder: a model built in C++ instead of a JSON config.
//
//   GraphBuilder b({32, 32, 3});                       // one NHWC example
//   auto x = b.conv2d("prep", b.input(), Conv2dOptions(64, 3).bias(false));
//   auto h = b.relu("prep_relu", b.batchnorm("prep_bn", x));
//   auto r = b.conv2d("res_conv", h, Conv2dOptions(64, 3).activation(ActivationKind::ReLU));
//   auto s = b.add("res", {h, r});                      // residual sum (fan-out of h)
//   auto y = b.dense("fc", b.flatten("flat", b.global_avg_pool("gap", s)), DenseOptions(10));
//   NeuralNetwork net = b.build(y, make_loss("cross_entropy"), cpu_device(), /*seed=*/1);
//
// Every node is a layer with a name (its checkpoint prefix) reading the
// outputs of earlier nodes: the graph of docs/graph-models.md, with the same
// rules (named inputs, fan-out sums gradients, add and concat take several
// inputs). The network it makes is the one NeuralNetwork::from_config makes
// from net.config(): a model built here is saved, loaded by load_model and
// rebuilt from its config with identical layers, names, seeds and
// predictions (tests/test_cpp_api.cpp). Nodes that read just the previous
// node are written without "inputs" in the config, as a hand-written JSON
// chain would be.
//
// Errors (janus::Error, naming the layer): a value from another builder, a
// duplicate or reserved name, an output that is not the last node, a node
// whose output nothing reads, shapes that do not fit (checked by build()).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "janus/layers.hpp"
#include "janus/loss.hpp"
#include "janus/model.hpp"

namespace janus {

class GraphBuilder;

// The output of a node while the graph is being built (a cheap handle).
class GraphValue {
 public:
  const std::string& name() const { return name_; }  // the node's layer name, or "input"

 private:
  friend class GraphBuilder;
  GraphValue(const GraphBuilder* owner, std::string name) : owner_(owner), name_(std::move(name)) {}
  const GraphBuilder* owner_;
  std::string name_;
};

// conv2d: n_out filters of kernel x kernel (HWIO weights), stride 1, "same"
// padding, linear activation, bias, Xavier-uniform init unless set.
struct Conv2dOptions {
  Conv2dOptions(int64_t n_out, int kernel) : n_out_(n_out), kernel_rows_(kernel), kernel_cols_(kernel) {}
  Conv2dOptions& kernel(int rows, int cols) { kernel_rows_ = rows; kernel_cols_ = cols; return *this; }
  Conv2dOptions& stride(int s) { stride_ = s; return *this; }
  Conv2dOptions& padding(Padding p) { padding_ = p; return *this; }
  Conv2dOptions& activation(ActivationFunction a) { activation_ = a; return *this; }
  Conv2dOptions& init(Init i) { init_ = i; return *this; }
  Conv2dOptions& bias(bool b) { bias_ = b; return *this; }
  int64_t n_out_;
  int kernel_rows_, kernel_cols_, stride_ = 1;
  Padding padding_{Padding::Mode::Same};
  ActivationFunction activation_ = ActivationKind::Linear;
  Init init_ = Init::XavierUniform;
  bool bias_ = true;
};

// fully_connected: n_out units, linear activation, bias, Xavier-uniform init unless set.
struct DenseOptions {
  explicit DenseOptions(int64_t n_out) : n_out_(n_out) {}
  DenseOptions& activation(ActivationFunction a) { activation_ = a; return *this; }
  DenseOptions& init(Init i) { init_ = i; return *this; }
  DenseOptions& bias(bool b) { bias_ = b; return *this; }
  int64_t n_out_;
  ActivationFunction activation_ = ActivationKind::Linear;
  Init init_ = Init::XavierUniform;
  bool bias_ = true;
};

// pool2d: kernel x kernel windows, stride = kernel and no padding unless set.
struct Pool2dOptions {
  explicit Pool2dOptions(int kernel) : kernel_rows_(kernel), kernel_cols_(kernel), stride_(kernel) {}
  Pool2dOptions& kernel(int rows, int cols) { kernel_rows_ = rows; kernel_cols_ = cols; return *this; }
  Pool2dOptions& stride(int s) { stride_ = s; return *this; }
  Pool2dOptions& padding(Padding p) { padding_ = p; return *this; }
  int kernel_rows_, kernel_cols_, stride_;
  Padding padding_{};
};

class GraphBuilder {
 public:
  // example_shape: one example without the batch axis, NHWC for images
  // ({rows, cols, channels}, e.g. {32, 32, 3}) or {features}.
  explicit GraphBuilder(Shape example_shape);
  GraphBuilder(const GraphBuilder&) = delete;
  GraphBuilder& operator=(const GraphBuilder&) = delete;

  // The model input.
  GraphValue input() const { return GraphValue(this, NeuralNetwork::kInputName); }

  // Any layer (built-in, CompositeLayer or a registered type) reading
  // `inputs` in order; returns its output. The layer's name is the node's.
  GraphValue layer(std::unique_ptr<Layer> layer, const std::vector<GraphValue>& inputs);

  // The built-in layers (layers.hpp), by name.
  GraphValue conv2d(const std::string& name, const GraphValue& x, const Conv2dOptions& o);
  GraphValue dense(const std::string& name, const GraphValue& x, const DenseOptions& o);
  GraphValue batchnorm(const std::string& name, const GraphValue& x, double momentum = 0.1, double eps = 1e-5);
  GraphValue activation(const std::string& name, const GraphValue& x, ActivationFunction f);
  GraphValue relu(const std::string& name, const GraphValue& x) { return activation(name, x, ActivationKind::ReLU); }
  GraphValue max_pool(const std::string& name, const GraphValue& x, const Pool2dOptions& o);
  GraphValue avg_pool(const std::string& name, const GraphValue& x, const Pool2dOptions& o);
  GraphValue global_avg_pool(const std::string& name, const GraphValue& x);
  GraphValue flatten(const std::string& name, const GraphValue& x);
  GraphValue dropout(const std::string& name, const GraphValue& x, double p);
  GraphValue scale(const std::string& name, const GraphValue& x, double factor);
  // Elementwise sum of >= 2 inputs of one shape (a residual connection).
  GraphValue add(const std::string& name, const std::vector<GraphValue>& xs);
  // Concatenation along the channel (last) axis of >= 2 inputs.
  GraphValue concat(const std::string& name, const std::vector<GraphValue>& xs);

  // The network: `output` must be the last node added. Seeds come from
  // `seed` as in from_config; the network is built for the example shape on
  // `device` (shapes checked, parameters created). The builder is empty
  // afterwards.
  NeuralNetwork build(const GraphValue& output, std::unique_ptr<Loss> loss, Device& device, uint64_t seed = 0,
                      DType dtype = DType::F32);

 private:
  std::string check_value(const GraphValue& v, const std::string& user) const;
  Shape example_shape_;
  std::vector<GraphNode> nodes_;
};

}  // namespace janus
