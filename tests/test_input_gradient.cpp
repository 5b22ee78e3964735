// NeuralNetwork never forms the gradient of the model input: backward stops
// at the first layer with parameters, whose dX is skipped
// (Layer::input_gradient_needed). These tests check that the skip changes no
// parameter gradient (bit for bit, against the same network with the skip
// turned off), that it applies to the right layer, and that layers used on
// their own still return dX.
#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "janus/janus.hpp"
#include "janus/nlohmann_json.hpp"

namespace janus {
namespace {

using nlohmann::json;

Tensor random_tensor(const Shape& s, uint64_t seed, Device& dev, DType dt) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<double> v(static_cast<size_t>(s.numel()));
  for (auto& e : v) e = u(rng);
  return Tensor::from_host(v, s, dev, dt);
}

Tensor one_hot_rows(int64_t rows, int64_t classes, Device& dev, DType dt) {
  std::vector<double> v(static_cast<size_t>(rows * classes), 0.0);
  for (int64_t r = 0; r < rows; ++r) v[static_cast<size_t>(r * classes + (r * 7 + 3) % classes)] = 1.0;
  return Tensor::from_host(v, Shape{rows, classes}, dev, dt);
}

json mlp() {
  return {{"seed", 3},
          {"loss", "cross_entropy"},
          {"layers", {{{"type", "dense"}, {"n_out", 24}, {"activation", "relu"}},
                      {{"type", "dense"}, {"n_out", 5}, {"activation", "softmax"}}}}};
}

json cnn() {  // conv first: its backward-data pass is the one skipped
  return {{"seed", 4},
          {"loss", "cross_entropy"},
          {"layers", {{{"type", "conv2d"}, {"n_out", 4}, {"kernel", 3}, {"activation", "relu"}},
                      {{"type", "flatten"}},
                      {{"type", "dense"}, {"n_out", 5}, {"activation", "softmax"}}}}};
}

json flatten_first() {  // no parameters in layer 0: the dense layer after it skips dX
  return {{"seed", 5},
          {"loss", "l2"},
          {"layers", {{{"type", "flatten"}},
                      {{"type", "dense"}, {"n_out", 6}, {"activation", "tanh"}},
                      {{"type", "dense"}, {"n_out", 5}, {"activation", "linear"}}}}};
}

struct Case {
  std::string name;
  json model;
  Shape input;
  size_t first_trainable;
};

std::vector<Case> cases() {
  return {{"mlp", mlp(), Shape{9, 13}, 0}, {"cnn", cnn(), Shape{3, 6, 5, 2}, 0},
          {"flatten_first", flatten_first(), Shape{4, 3, 3, 2}, 1}};
}

// One training step's parameter gradients, by parameter name.
std::vector<std::vector<double>> gradients_after_step(NeuralNetwork& net, const Tensor& x, const Tensor& y) {
  const Tensor out = net.forward(x, Mode::Train);
  net.backward(y, out);
  std::vector<std::vector<double>> g;
  for (const NamedParameter& p : net.named_parameters()) g.push_back(p.parameter->grad.to_host());
  return g;
}

void check_case(const Case& c, Device& dev, DType dt) {
  SCOPED_TRACE(c.name + " on " + dev.name() + " " + dtype_name(dt));
  NeuralNetwork skipping = NeuralNetwork::from_config(c.model);
  NeuralNetwork full = NeuralNetwork::from_config(c.model);  // same seed: same weights
  // Needed only where some parameter lies upstream (after the first layer
  // with parameters); the parameter-free layers before it never run backward.
  for (size_t i = 0; i < skipping.size(); ++i)
    EXPECT_EQ(skipping.layer(i).input_gradient_needed(), i > c.first_trainable) << "layer " << i;
  full.layer(c.first_trainable).set_input_gradient_needed(true);

  const Tensor x = random_tensor(c.input, 11, dev, dt);
  const Tensor y = one_hot_rows(c.input[0], 5, dev, dt);
  for (int step = 0; step < 2; ++step) {  // twice: nothing stale from the first pass
    const auto a = gradients_after_step(skipping, x, y);
    const auto b = gradients_after_step(full, x, y);
    ASSERT_EQ(a.size(), b.size());
    for (size_t p = 0; p < a.size(); ++p) EXPECT_EQ(a[p], b[p]) << skipping.named_parameters()[p].name;
  }

  // The first trainable layer on its own: undefined dX when skipping, the
  // full dX when asked (its input is what the earlier layers produced).
  Layer& first = skipping.layer(c.first_trainable);
  Tensor h = x;
  for (size_t i = 0; i <= c.first_trainable; ++i) h = skipping.layer(i).forward(h, true);
  const Tensor dy = random_tensor(h.shape(), 12, dev, dt);
  EXPECT_FALSE(first.backward(dy).defined());
  first.set_input_gradient_needed(true);
  const Tensor dx = first.backward(dy);
  ASSERT_TRUE(dx.defined());
  Tensor in = x;
  for (size_t i = 0; i < c.first_trainable; ++i) in = skipping.layer(i).forward(in, true);
  EXPECT_EQ(dx.shape(), in.shape());
}

TEST(InputGradient, SkippingItLeavesParameterGradientsIdentical) {
  for (const Case& c : cases()) {
    check_case(c, cpu_device(), DType::F32);
    check_case(c, cpu_device(), DType::F64);
    check_case(c, reference_cpu_device(), DType::F64);
  }
}

TEST(InputGradient, LayersOnTheirOwnStillReturnIt) {
  // The default is "needed": gradient checks call backward on single layers.
  FullyConnected fc("fc", 3, ActivationKind::TanH);
  EXPECT_TRUE(fc.input_gradient_needed());
  const Tensor x = random_tensor(Shape{4, 5}, 13, cpu_device(), DType::F64);
  const Tensor y = fc.forward(x, true);
  const Tensor dx = fc.backward(random_tensor(y.shape(), 14, cpu_device(), DType::F64));
  ASSERT_TRUE(dx.defined());
  EXPECT_EQ(dx.shape(), x.shape());

  Conv2D conv("conv", 2, 3, 3);
  EXPECT_TRUE(conv.input_gradient_needed());
  const Tensor xi = random_tensor(Shape{2, 5, 5, 3}, 15, cpu_device(), DType::F64);
  const Tensor yi = conv.forward(xi, true);
  const Tensor dxi = conv.backward(random_tensor(yi.shape(), 16, cpu_device(), DType::F64));
  ASSERT_TRUE(dxi.defined());
  EXPECT_EQ(dxi.shape(), xi.shape());
}

TEST(InputGradient, NetworkWithoutParametersStillBackpropagates) {
  // No trainable layer: no gradient is needed anywhere; backward just returns the loss.
  std::vector<std::unique_ptr<Layer>> layers;
  layers.push_back(std::make_unique<ActivationLayer>("act", ActivationKind::SoftMax));
  NeuralNetwork net(std::move(layers), std::make_unique<CrossEntropy>(), 1);
  EXPECT_FALSE(net.layer(0).input_gradient_needed());
  const Tensor x = random_tensor(Shape{3, 5}, 17, cpu_device(), DType::F64);
  const Tensor out = net.forward(x, Mode::Train);
  EXPECT_GT(net.backward(one_hot_rows(3, 5, cpu_device(), DType::F64), out), 0.0);
}

}  // namespace
}  // namespace janus
