// A residual block written by a Janus user: y = x + conv2(relu(conv1(x))),
// both convolutions 3x3, "same" padding, `channels` filters (the input must
// have `channels` channels, so the sum is defined).
//
// It derives from janus::CompositeLayer, which names the inner parameters
// "<block>.conv1.W", "<block>.conv2.W" (never two "<block>.W" sharing one
// optimizer state), gives each convolution its own seed, and passes steps on.
// register_residual_block() makes the type known to load_model.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include <janus/janus.hpp>

namespace example {

class ResidualBlock : public janus::CompositeLayer {
 public:
  ResidualBlock(std::string name, int64_t channels) : CompositeLayer(std::move(name)), channels_(channels) {
    conv1_ = &add_child(std::make_unique<janus::Conv2D>("conv1", channels, 3, 3, janus::ActivationKind::ReLU));
    conv2_ = &add_child(std::make_unique<janus::Conv2D>("conv2", channels, 3, 3));
  }
  std::string type() const override { return "residual_block"; }

  // (batch, rows, cols, channels) -> the same shape.
  janus::Shape output_shape(const janus::Shape& in) const override {
    JANUS_CHECK(in.rank() == 4 && in[3] == channels_, where(), ": expects NHWC input with ", channels_,
                " channels, got ", in.str());
    return conv2_->output_shape(conv1_->output_shape(in));
  }

  janus::Tensor forward(const janus::Tensor& x, bool training) override {
    janus::Tensor y = conv2_->forward(conv1_->forward(x, training), training).clone();
    y.device().axpby(1.0, x, 1.0, y);  // y += x: the skip connection
    return y;
  }

  // dL/dx = dL/dy (skip) + the convolutions' input gradient.
  janus::Tensor backward(const janus::Tensor& dy) override {
    janus::Tensor dx = conv1_->backward(conv2_->backward(dy)).clone();
    dx.device().axpby(1.0, dy, 1.0, dx);
    return dx;
  }

  // What load_model rebuilds the block from (the factory below reads it).
  janus::Json config() const override { return {{"type", type()}, {"name", name()}, {"channels", channels_}}; }

 protected:
  void build_children(const janus::Shape& in, janus::Device& device, janus::DType dtype) override {
    conv2_->build(conv1_->build(in, device, dtype), device, dtype);
  }

 private:
  int64_t channels_;
  janus::Conv2D* conv1_;
  janus::Conv2D* conv2_;
};

// Makes "residual_block" configs readable by make_layer / load_model.
// Idempotent (a program may call it from several places).
inline void register_residual_block() {
  if (janus::is_registered_layer_type("residual_block")) return;
  janus::register_layer_type("residual_block", [](const janus::Json& cfg, const std::string& name) {
    for (const std::string& key : cfg.keys())
      JANUS_CHECK(key == "type" || key == "name" || key == "channels", "layer '", name,
                  "' (residual_block): unknown option '", key, "' (allowed: channels)");
    JANUS_CHECK(cfg.contains("channels") && cfg.at("channels").is_number_integer() && cfg.at("channels").get<int64_t>() > 0,
                "layer '", name, "' (residual_block): 'channels' must be a positive integer");
    return std::make_unique<ResidualBlock>(name, cfg.at("channels").get<int64_t>());
  });
}

// The example's network, a small residual CNN for 32x32x3 images and 10
// classes (its JSON twin is in README, "C++ API"):
//   prep: conv 16 + BatchNorm + ReLU
//   res1: ResidualBlock(16)                (a composite layer)
//   pool1: max 2x2
//   c2: conv 32 + BatchNorm + ReLU
//   c3: conv 32, ReLU; skip: c2_relu + c3  (a residual sum in the graph)
//   gap: global average pool; fc: dense 10 (logits for cross-entropy)
inline janus::NeuralNetwork residual_cnn(janus::Device& device, uint64_t seed) {
  using namespace janus;
  GraphBuilder b({32, 32, 3});
  auto x = b.conv2d("prep", b.input(), Conv2dOptions(16, 3).bias(false));
  x = b.relu("prep_relu", b.batchnorm("prep_bn", x));
  x = b.layer(std::make_unique<ResidualBlock>("res1", 16), {x});
  x = b.max_pool("pool1", x, Pool2dOptions(2));
  auto c2 = b.relu("c2_relu", b.batchnorm("c2_bn", b.conv2d("c2", x, Conv2dOptions(32, 3).bias(false))));
  auto c3 = b.conv2d("c3", c2, Conv2dOptions(32, 3).activation(ActivationKind::ReLU));
  x = b.add("skip", {c2, c3});
  x = b.flatten("flat", b.global_avg_pool("gap", x));
  auto logits = b.dense("fc", x, DenseOptions(10));
  return b.build(logits, make_loss("cross_entropy"), device, seed);
}

}  // namespace example
