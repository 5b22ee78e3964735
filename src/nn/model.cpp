// NeuralNetwork: forward through the layers, loss, backward in reverse.
#include "janus/model.hpp"

#include "janus/error.hpp"
#include "janus/fusion.hpp"
#include "janus/layers.hpp"

namespace janus {

NeuralNetwork::NeuralNetwork(std::vector<std::unique_ptr<Layer>> layers, std::unique_ptr<Loss> loss, uint64_t seed)
    : layers_(std::move(layers)), loss_(std::move(loss)), seed_(seed) {
  JANUS_CHECK(!layers_.empty(), "a network needs at least one layer");
  JANUS_CHECK(loss_ != nullptr, "a network needs a loss");
  // Each layer draws its weights from its own stream, so inserting a layer
  // does not change the initial weights of the others by position alone.
  for (size_t i = 0; i < layers_.size(); ++i) layers_[i]->set_seed(splitmix64(seed_ * 1000003ull + i));
  // Parameter names in checkpoints are "<layer name>.<parameter>": unique layer names keep them apart.
  for (size_t i = 0; i < layers_.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      JANUS_CHECK(layers_[i]->name() != layers_[j]->name(), "layers ", j, " and ", i, " share the name '",
                  layers_[i]->name(), "'");
  // Nothing consumes the gradient of the model input, so backward stops at
  // the first layer with parameters and that layer skips its dX.
  first_trainable_ = layers_.size();
  for (size_t i = 0; i < layers_.size() && first_trainable_ == layers_.size(); ++i)
    if (!layers_[i]->parameters().empty()) first_trainable_ = i;
  for (size_t i = 0; i < layers_.size(); ++i) layers_[i]->set_input_gradient_needed(i != first_trainable_);
  // BatchNorm + ReLU pairs run as one fused operation (fusion.hpp); results
  // are bit-identical, so this is decided once, here, from the environment.
  fuse_batchnorm_relu(layers_, fusion_enabled_from_environment());
}

NeuralNetwork NeuralNetwork::from_config(const nlohmann::json& config) {
  JANUS_CHECK(config.is_object(), "model config must be a JSON object");
  for (auto it = config.begin(); it != config.end(); ++it)
    JANUS_CHECK(it.key() == "layers" || it.key() == "loss" || it.key() == "seed", "model config: unknown key '",
                it.key(), "' (allowed: layers, loss, seed)");
  JANUS_CHECK(config.contains("layers") && config.at("layers").is_array() && !config.at("layers").empty(),
              "model config: 'layers' must be a non-empty array");
  std::vector<std::unique_ptr<Layer>> layers;
  int i = 0;
  for (const auto& lc : config.at("layers")) layers.push_back(make_layer(lc, i++));
  JANUS_CHECK(!config.contains("loss") || config.at("loss").is_string(), "model config: 'loss' must be a string, got ",
              config.contains("loss") ? config.at("loss").dump() : std::string());
  const std::string loss = config.value("loss", std::string("cross_entropy"));
  uint64_t seed = 0;
  if (config.contains("seed")) {
    JANUS_CHECK(config.at("seed").is_number_unsigned() || config.at("seed").is_number_integer(),
                "model config: 'seed' must be an integer");
    seed = config.at("seed").get<uint64_t>();
  }
  return NeuralNetwork(std::move(layers), make_loss(loss), seed);
}

nlohmann::json NeuralNetwork::config() const {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : layers_) layers.push_back(l->config());
  return {{"layers", layers}, {"loss", loss_->name()}, {"seed", seed_}};
}

void NeuralNetwork::build(const Shape& input_shape, Device& device, DType dtype) {
  Shape s = input_shape;
  for (auto& l : layers_) s = l->build(s, device, dtype);
  input_shape_ = input_shape;
  device_ = &device;
}

bool NeuralNetwork::built() const { return device_ != nullptr; }

Device& NeuralNetwork::device() const {
  JANUS_CHECK(device_ != nullptr, "network not built yet (no forward pass or build() so far)");
  return *device_;
}

Tensor NeuralNetwork::forward(const Tensor& x, bool training) {
  JANUS_CHECK(x.defined() && x.rank() >= 2 && x.dim(0) > 0, "network input: expected a non-empty batch, got ",
              x.defined() ? x.shape().str() : std::string("an undefined tensor"));
  if (!built()) build(x.shape(), x.device(), x.dtype());
  JANUS_CHECK(&x.device() == device_, "network input is on ", x.device().name(), " but the network is on ",
              device_->name());
  Tensor h = x;
  for (auto& l : layers_) h = l->forward(h, training);
  return h;
}

void NeuralNetwork::set_step(uint64_t step) {
  for (auto& l : layers_) l->set_step(step);
}

bool NeuralNetwork::uses_fused_softmax_cross_entropy() const {
  const Activation* act = layers_.back()->activation();
  return act && act->kind() == ActivationKind::SoftMax && dynamic_cast<const CrossEntropy*>(loss_.get());
}

// Cross-entropy always reads logits, as PyTorch's CrossEntropyLoss: the
// input of a final softmax when the model ends in one (its output is then
// the distribution), else the model's output itself (log-softmax is applied
// in the loss). Either way the loss is -sum(Y * log_softmax(Z))/m >= 0.
const Tensor& NeuralNetwork::cross_entropy_logits(const Tensor& out) const {
  if (!uses_fused_softmax_cross_entropy()) return out;
  const Tensor& logits = layers_.back()->activation()->z();
  JANUS_CHECK(logits.defined() && logits.shape() == out.shape(), "network backward: no forward pass for this output");
  return logits;
}

double NeuralNetwork::backward(const Tensor& target, const Tensor& out) {
  double loss;
  Tensor grad;
  if (const auto* ce = dynamic_cast<const CrossEntropy*>(loss_.get())) {
    // d(CE o softmax)/dZ = (S - Y)/m: exact and stable, where the unfused
    // route divides by probabilities that may underflow to zero.
    loss = ce->forward_backward_from_logits(cross_entropy_logits(out), target, &grad);
    grad = uses_fused_softmax_cross_entropy() ? layers_.back()->backward_from_preactivation(grad)
                                              : layers_.back()->backward(grad);
  } else {
    loss = loss_->forward(out, target);
    grad = layers_.back()->backward(loss_->backward(out, target));
  }
  // Layers before first_trainable_ have no parameters: their backward would
  // only form gradients of the model input.
  for (size_t i = layers_.size() - 1; i-- > first_trainable_;) grad = layers_[i]->backward(grad);
  return loss;
}

std::pair<Tensor, double> NeuralNetwork::predict(const Tensor& x, const Tensor& y) {
  Tensor yhat = forward(x, false);
  double loss;
  if (const auto* ce = dynamic_cast<const CrossEntropy*>(loss_.get()))
    loss = ce->forward_backward_from_logits(cross_entropy_logits(yhat), y, nullptr);
  else
    loss = loss_->forward(yhat, y);
  return {yhat, loss};
}

std::vector<NamedParameter> NeuralNetwork::named_parameters() {
  std::vector<NamedParameter> out;
  for (auto& l : layers_)
    for (Parameter* p : l->parameters()) out.push_back({l->name() + "." + p->name, p});
  return out;
}

std::vector<std::pair<std::string, Tensor*>> NeuralNetwork::state() {
  std::vector<std::pair<std::string, Tensor*>> out;
  for (auto& l : layers_) {
    for (Parameter* p : l->parameters()) out.push_back({l->name() + "." + p->name, &p->value});
    for (auto& [name, t] : l->buffers()) out.push_back({l->name() + "." + name, t});
  }
  return out;
}

}  // namespace janus
