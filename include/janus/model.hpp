// NeuralNetwork (SPEC §2 "Model"): layers run in order, a loss, and the
// backward pass in reverse. CrossEntropy reads logits, as PyTorch's
// CrossEntropyLoss: when the last layer ends in SoftMax (the output is a
// distribution), the logits are that softmax's input; otherwise the model's
// output is taken as logits and the loss applies log-softmax itself. Both
// use the fused, numerically stable softmax + cross-entropy gradient
// (S - Y)/m on the logits, so the loss is never negative.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "janus/layer.hpp"
#include "janus/loss.hpp"

namespace janus {

struct NamedParameter {
  std::string name;  // "<layer name>.<parameter name>", e.g. "conv2d_0.W"
  Parameter* parameter;
};

class NeuralNetwork {
 public:
  NeuralNetwork(std::vector<std::unique_ptr<Layer>> layers, std::unique_ptr<Loss> loss, uint64_t seed = 0);
  // {"seed": 0, "loss": "cross_entropy", "layers": [ {...}, ... ]}
  static NeuralNetwork from_config(const nlohmann::json& config);
  nlohmann::json config() const;

  // Builds every layer for inputs of this shape on this device, creating the
  // parameters (also done lazily by the first forward).
  void build(const Shape& input_shape, Device& device, DType dtype = DType::F32);
  bool built() const;
  Device& device() const;
  Shape input_shape() const { return input_shape_; }

  Tensor forward(const Tensor& x, bool training = true);
  // Tells every layer which optimisation step the next forward belongs to
  // (see Layer::set_step); the trainer calls it before each training step.
  void set_step(uint64_t step);
  // Computes the loss of `out` (the last forward's output) against target,
  // backpropagates through the layers in reverse (filling the gradients) and
  // returns the loss. The gradient of the model input is never formed: the
  // backward pass stops at the first layer with parameters, which is told
  // not to compute its input gradient (Layer::set_input_gradient_needed).
  double backward(const Tensor& target, const Tensor& out);
  // Evaluation-mode forward and loss: returns (Yhat, loss).
  std::pair<Tensor, double> predict(const Tensor& x, const Tensor& y);

  std::vector<NamedParameter> named_parameters();
  // Every tensor a checkpoint must hold: parameters and buffers, by full name.
  std::vector<std::pair<std::string, Tensor*>> state();

  size_t size() const { return layers_.size(); }
  Layer& layer(size_t i) { return *layers_.at(i); }
  const Loss& loss() const { return *loss_; }
  bool uses_fused_softmax_cross_entropy() const;  // ends in SoftMax, loss CrossEntropy
  uint64_t seed() const { return seed_; }
  // The logits cross-entropy reads for the output `out` (see the file comment).
  const Tensor& cross_entropy_logits(const Tensor& out) const;

 private:
  std::vector<std::unique_ptr<Layer>> layers_;
  std::unique_ptr<Loss> loss_;
  uint64_t seed_;
  // Index of the first layer with parameters (size() if none): backward()
  // ends there, since the layers before it have nothing to learn.
  size_t first_trainable_;
  Shape input_shape_;
  Device* device_ = nullptr;
};

}  // namespace janus
