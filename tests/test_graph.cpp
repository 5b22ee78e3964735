// Models as graphs (include/janus/model.hpp): named inputs, fan-out, the
// checks a graph config gets, and that everything written before graphs
// existed still works unchanged.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "janus/fusion.hpp"
#include "janus/janus.hpp"
#include "janus/nlohmann_json.hpp"

#ifndef JANUS_SOURCE_DIR
#error "test_graph needs JANUS_SOURCE_DIR (set in tests/CMakeLists.txt)"
#endif

namespace janus {
namespace {

using nlohmann::json;

std::string fixture(const std::string& name) { return std::string(JANUS_SOURCE_DIR) + "/tests/fixtures/" + name; }

// Deterministic inputs in [-1, 1] from a seed (std::mt19937 is specified
// bit for bit by the standard; the distribution is done by hand for the same reason).
std::vector<float> fixed_inputs(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<float> v(n);
  for (auto& e : v) e = static_cast<float>(static_cast<double>(rng()) / 4294967295.0 * 2.0 - 1.0);
  return v;
}

// ---- checkpoints written before models were graphs -----------------------------------
//
// tests/fixtures/chain_v1.safetensors was written by this test's
// JANUS_WRITE_FIXTURES=1 mode at commit ca94ef2 (main, chain-only models):
// a conv / BatchNorm / ReLU / pool / dropout / dense network trained three
// SGD steps on the reference CPU device. chain_v1.json holds, from the same
// run, the sum of every initial parameter (built from the config's seed) and
// the evaluation-mode predictions of the trained model on fixed inputs.
// Loading it now must give the same keys, the same initial weights from the
// same seed, and the same predictions.
const char* kChainConfig = R"({"seed": 7, "loss": "cross_entropy", "layers": [
  {"type": "conv2d", "n_out": 4, "kernel": 3, "activation": "linear", "init": "he_uniform"},
  {"type": "batchnorm"},
  {"type": "activation", "activation": "relu"},
  {"type": "pool2d", "kernel": 2},
  {"type": "dropout", "p": 0.25},
  {"type": "flatten"},
  {"type": "fully_connected", "n_out": 8, "activation": "tanh"},
  {"type": "fully_connected", "n_out": 3, "activation": "softmax"}]})";
const Shape kChainInput{5, 6, 6, 2};

std::vector<double> parameter_sums(NeuralNetwork& net) {
  std::vector<double> sums;
  for (auto& [name, t] : net.state()) {
    double s = 0;
    for (double v : t->to_host()) s += v;
    sums.push_back(s);
  }
  return sums;
}

TEST(CheckpointCompat, ChainCheckpointFromBeforeGraphsLoadsAndPredictsIdentically) {
  Device& dev = reference_cpu_device();
  const Tensor x = Tensor::from_host(fixed_inputs(static_cast<size_t>(kChainInput.numel()), 11), kChainInput, dev);
  std::vector<float> labels(5 * 3, 0.0f);
  for (int i = 0; i < 5; ++i) labels[static_cast<size_t>(i * 3 + i % 3)] = 1.0f;
  const Tensor y = Tensor::from_host(labels, Shape{5, 3}, dev);

  NeuralNetwork fresh = NeuralNetwork::from_config(json::parse(kChainConfig));
  fresh.build(kChainInput, dev);
  const std::vector<double> init_sums = parameter_sums(fresh);

  if (std::getenv("JANUS_WRITE_FIXTURES") != nullptr) {
    SGD sgd(0.9);
    for (uint64_t step = 0; step < 3; ++step) {
      fresh.set_step(step);
      fresh.backward(y, fresh.forward(x, Mode::Train));
      sgd.step(fresh.named_parameters(), 0.05);
    }
    save_checkpoint(fixture("chain_v1.safetensors"), fresh, nullptr);
    json keys = json::array();
    for (auto& [name, t] : fresh.state()) keys.push_back(name);
    const json expected = {{"keys", keys},
                           {"initial_parameter_sums", init_sums},
                           {"predictions", fresh.predict(x, y).first.to_host()}};
    std::ofstream(fixture("chain_v1.json")) << expected.dump(1) << "\n";
    GTEST_SKIP() << "wrote the fixtures (JANUS_WRITE_FIXTURES is set)";
  }

  std::ifstream in(fixture("chain_v1.json"));
  ASSERT_TRUE(in.good()) << "missing fixture " << fixture("chain_v1.json");
  const json expected = json::parse(in);

  // Same seed, same config: the same initial weights, by name.
  const auto want_sums = expected.at("initial_parameter_sums").get<std::vector<double>>();
  ASSERT_EQ(init_sums.size(), want_sums.size());
  for (size_t i = 0; i < init_sums.size(); ++i) EXPECT_NEAR(init_sums[i], want_sums[i], 1e-9) << "tensor " << i;

  NeuralNetwork loaded = load_model(fixture("chain_v1.safetensors"), dev);
  std::vector<std::string> keys;
  for (auto& [name, t] : loaded.state()) keys.push_back(name);
  EXPECT_EQ(keys, expected.at("keys").get<std::vector<std::string>>());
  EXPECT_EQ(loaded.config(), fresh.config());  // the config round-trips unchanged (no graph keys added)

  const std::vector<double> got = loaded.predict(x, y).first.to_host();
  const auto want = expected.at("predictions").get<std::vector<double>>();
  ASSERT_EQ(got.size(), want.size());
  // float32 values stored as doubles: equal up to float rounding of the stored text.
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-7) << "prediction " << i;
}

// ---- graph configs -----------------------------------------------------------------------

json model_config(const char* layers_json) {
  return {{"loss", "l2"}, {"seed", 3}, {"layers", json::parse(layers_json)}};
}

// The message of the Error that building `config` for input `in` throws ("" if none).
std::string build_error(const json& config, const Shape& in = Shape{2, 4, 4, 3}) {
  try {
    NeuralNetwork net = NeuralNetwork::from_config(config);
    net.build(in, reference_cpu_device(), DType::F64);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(GraphConfig, InputsRoundTripAndChainsStayAsTheyWere) {
  const json residual = model_config(R"([
    {"type": "conv2d", "name": "c1", "n_out": 3, "kernel": 3},
    {"type": "conv2d", "name": "c2", "n_out": 3, "kernel": 3},
    {"type": "add", "name": "sum", "inputs": ["c1", "c2"]},
    {"type": "concat", "name": "cat", "inputs": ["sum", "input"]},
    {"type": "global_avg_pool", "name": "gap"}])");
  NeuralNetwork net = NeuralNetwork::from_config(residual);
  const json written = net.config();
  EXPECT_EQ(written.at("layers").at(2).at("inputs"), json({"c1", "c2"}));
  EXPECT_EQ(written.at("layers").at(3).at("inputs"), json({"sum", "input"}));
  EXPECT_FALSE(written.at("layers").at(1).contains("inputs"));  // the previous node: not written
  EXPECT_EQ(NeuralNetwork::from_config(written).config(), written);
  EXPECT_EQ(net.output_shape(Shape{2, 4, 4, 3}), (Shape{2, 6}));  // 3 channels of the sum + 3 of the input
  EXPECT_EQ(net.node_inputs(3), (std::vector<int>{2, NeuralNetwork::kModelInput}));
  EXPECT_EQ(net.consumer_count(0), 2);  // c2 (the previous node) and the sum
  EXPECT_EQ(net.consumer_count(1), 1);
  EXPECT_EQ(net.consumer_count(4), 0);
}

TEST(GraphConfig, BadGraphsNameTheLayerAtFault) {
  using ::testing::HasSubstr;
  EXPECT_THAT(build_error(model_config(R"([{"type": "conv2d", "name": "c", "n_out": 2, "kernel": 1},
      {"type": "add", "name": "s", "inputs": ["c", "nope"]}])")),
              HasSubstr("layer 's' (add): input 'nope' is not the name of a layer"));
  EXPECT_THAT(build_error(model_config(R"([{"type": "conv2d", "name": "c", "n_out": 2, "kernel": 1},
      {"type": "add", "name": "s", "inputs": ["c", "s"]}])")),
              HasSubstr("layer 's' (add): lists itself as an input"));
  EXPECT_THAT(build_error(model_config(R"([{"type": "conv2d", "name": "c", "n_out": 2, "kernel": 1, "inputs": ["d"]},
      {"type": "conv2d", "name": "d", "n_out": 2, "kernel": 1, "inputs": ["c"]}])")),
              HasSubstr("layer 'c' (conv2d): input 'd' is layer 1, which comes after it"));
  EXPECT_THAT(build_error(model_config(R"([{"type": "conv2d", "name": "c", "n_out": 2, "kernel": 1},
      {"type": "conv2d", "name": "d", "n_out": 5, "kernel": 1, "inputs": ["input"]},
      {"type": "add", "name": "s", "inputs": ["c", "d"]}])")),
              HasSubstr("layer 's' (add): input 1 has shape (2, 4, 4, 5) but input 0 has (2, 4, 4, 2)"));
  EXPECT_THAT(build_error(model_config(R"([{"type": "conv2d", "name": "c", "n_out": 2, "kernel": 1},
      {"type": "conv2d", "name": "d", "n_out": 5, "kernel": 1, "inputs": ["input"]},
      {"type": "add", "name": "s", "inputs": ["c", "d"]}])")),
              HasSubstr("(inputs 0: 'c' (2, 4, 4, 2), 1: 'd' (2, 4, 4, 5))"));
  EXPECT_THAT(build_error(model_config(R"([{"type": "pool2d", "name": "p", "kernel": 2},
      {"type": "concat", "name": "cat", "inputs": ["p", "input"]}])")),
              HasSubstr("layer 'cat' (concat): input 1 has shape (2, 4, 4, 3) but input 0 has (2, 2, 2, 3)"));
  EXPECT_THAT(build_error(model_config(R"([{"type": "conv2d", "name": "c", "n_out": 2, "kernel": 1},
      {"type": "add", "name": "s"}])")),
              HasSubstr("layer 's' (add): takes at least 2 inputs, got 1"));
  EXPECT_THAT(build_error(model_config(R"([{"type": "conv2d", "name": "c", "n_out": 2, "kernel": 1},
      {"type": "relu", "name": "r", "inputs": ["c", "input"]}])")),
              HasSubstr("layer 'r' (activation): takes 1 input, got 2"));
  EXPECT_THAT(build_error(model_config(R"([{"type": "conv2d", "name": "unused", "n_out": 2, "kernel": 1},
      {"type": "conv2d", "name": "d", "n_out": 2, "kernel": 1, "inputs": ["input"]}])")),
              HasSubstr("layer 'unused' (conv2d): its output is the input of no later layer"));
  EXPECT_THAT(build_error(model_config(R"([{"type": "conv2d", "name": "input", "n_out": 2, "kernel": 1}])")),
              HasSubstr("the name 'input' is reserved"));
  // '.' joins layer and parameter names ("conv1.W"): a layer named "conv.1" would make "conv.1.W" ambiguous.
  EXPECT_THAT(build_error(model_config(R"([{"type": "conv2d", "name": "c", "n_out": 2, "kernel": 1},
      {"type": "conv2d", "name": "conv.1", "n_out": 2, "kernel": 1}])")),
              HasSubstr("layer 1 (conv2d), option 'name': the name 'conv.1' contains '.'"));
  EXPECT_THAT(build_error(model_config(R"([{"type": "conv2d", "name": "c", "n_out": 2, "kernel": 1},
      {"type": "add", "name": "s", "inputs": "c"}])")),
              HasSubstr("layer 's' (add): 'inputs' must be a non-empty array of layer names"));
  EXPECT_THAT(build_error(model_config(R"([{"type": "global_avg_pool", "name": "g"}])"), Shape{2, 12}),
              HasSubstr("layer 'g' (global_avg_pool): expects NHWC input"));
}

// ---- fan-out and reachability ----------------------------------------------------------------

std::vector<double> host(const Tensor& t) { return t.to_host(); }

// x -> dense d -> s = d + d (d feeds both inputs of the sum) with the L2
// loss against y: dL/dW = (2/m)(2d - y) * 2 dd/dW. The chain x -> d with
// target y/2 has dL/dW = (2/m)(d - y/2) dd/dW, a quarter of it. Without the
// sum over both consumers the first would be half as large.
TEST(GraphFanOut, GradientsOfAllConsumersAreSummed) {
  Device& dev = reference_cpu_device();
  NeuralNetwork twice = NeuralNetwork::from_config(model_config(R"([
    {"type": "dense", "name": "d", "n_out": 3},
    {"type": "add", "name": "s", "inputs": ["d", "d"]}])"));
  NeuralNetwork once = NeuralNetwork::from_config(model_config(R"([{"type": "dense", "name": "d", "n_out": 3}])"));
  const Tensor x = Tensor::from_host(fixed_inputs(8, 5), Shape{2, 4}, dev);
  const Tensor y = Tensor::from_host(fixed_inputs(6, 6), Shape{2, 3}, dev);
  twice.build(x.shape(), dev);
  once.build(x.shape(), dev);
  EXPECT_EQ(twice.consumer_count(0), 2);
  Tensor half_y = y.clone();
  dev.axpby(0.0, y, 0.5, half_y);
  twice.backward(y, twice.forward(x, Mode::Train));
  once.backward(half_y, once.forward(x, Mode::Train));
  const std::vector<double> g2 = host(twice.named_parameters()[0].parameter->grad);
  const std::vector<double> g1 = host(once.named_parameters()[0].parameter->grad);
  ASSERT_EQ(g1.size(), g2.size());
  for (size_t i = 0; i < g1.size(); ++i) EXPECT_NEAR(g2[i], 4.0 * g1[i], 1e-6 * (1 + std::fabs(g2[i]))) << i;
}

TEST(GraphFanOut, InputGradientsFollowReachabilityFromParameters) {
  NeuralNetwork net = NeuralNetwork::from_config(model_config(R"([
    {"type": "pool2d", "name": "p", "kernel": 2, "stride": 1},
    {"type": "conv2d", "name": "a", "n_out": 2, "kernel": 1},
    {"type": "conv2d", "name": "b", "n_out": 2, "kernel": 1, "inputs": ["p"]},
    {"type": "add", "name": "s", "inputs": ["a", "b"]},
    {"type": "concat", "name": "cat", "inputs": ["s", "p"]},
    {"type": "global_avg_pool", "name": "gap"}])"));
  // p: no parameter upstream, nothing needs its input gradient.
  EXPECT_FALSE(net.layer(0).input_gradient_needed());
  // a and b read p (no parameters upstream): they skip their dX.
  EXPECT_FALSE(net.layer(1).input_gradient_needed());
  EXPECT_FALSE(net.layer(2).input_gradient_needed());
  EXPECT_TRUE(net.layer(3).input_gradient_needed());
  EXPECT_TRUE(net.layer(4).input_gradient_needed());  // one of its inputs (s) depends on parameters
  EXPECT_TRUE(net.layer(5).input_gradient_needed());
  // And the pass works with those skips.
  Device& dev = reference_cpu_device();
  const Tensor x = Tensor::from_host(fixed_inputs(2 * 5 * 5 * 3, 8), Shape{2, 5, 5, 3}, dev);
  const Tensor y = Tensor::from_host(fixed_inputs(2 * 5, 9), Shape{2, 5}, dev);
  EXPECT_TRUE(std::isfinite(net.backward(y, net.forward(x, Mode::Train))));
}

// The BatchNorm + ReLU rewrite checks the consumers: a BatchNorm whose output
// also feeds a sum is not fused, and the network trains the same either way.
TEST(GraphFusion, BatchNormWithTwoConsumersIsNotFused) {
  const json cfg = model_config(R"([
    {"type": "conv2d", "name": "c", "n_out": 3, "kernel": 3},
    {"type": "batchnorm", "name": "bn"},
    {"type": "relu", "name": "r"},
    {"type": "add", "name": "s", "inputs": ["bn", "r"]},
    {"type": "batchnorm", "name": "bn2"},
    {"type": "relu", "name": "r2"},
    {"type": "global_avg_pool", "name": "gap"}])");
  if (!fusion_enabled_from_environment()) GTEST_SKIP() << "JANUS_FUSE=0 turns the fusion pass off";
  NeuralNetwork net = NeuralNetwork::from_config(cfg);
  EXPECT_EQ(net.consumer_count(1), 2);
  EXPECT_FALSE(dynamic_cast<BatchNorm&>(net.layer(1)).fused_relu());
  EXPECT_FALSE(dynamic_cast<ActivationLayer&>(net.layer(2)).absorbed());
  EXPECT_TRUE(dynamic_cast<BatchNorm&>(net.layer(4)).fused_relu());  // one consumer: fused
  EXPECT_TRUE(dynamic_cast<ActivationLayer&>(net.layer(5)).absorbed());

  // Same results as with the pass off (where bn2 + r2 run separately).
  Device& dev = reference_cpu_device();
  NeuralNetwork plain = NeuralNetwork::from_config(cfg);
  fuse_batchnorm_relu(plain, false);
  const Tensor x = Tensor::from_host(fixed_inputs(2 * 4 * 4 * 2, 12), Shape{2, 4, 4, 2}, dev);
  const Tensor y = Tensor::from_host(fixed_inputs(2 * 3, 13), Shape{2, 3}, dev);
  const double loss = net.backward(y, net.forward(x, Mode::Train));
  EXPECT_EQ(loss, plain.backward(y, plain.forward(x, Mode::Train)));
  const auto a = net.named_parameters(), b = plain.named_parameters();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(host(a[i].parameter->grad), host(b[i].parameter->grad)) << a[i].name;
}

// An observer sees every node in order and can stop the pass.
TEST(GraphWalker, ObserverSeesEveryNodeAndCanStop) {
  NeuralNetwork net = NeuralNetwork::from_config(model_config(R"([
    {"type": "dense", "name": "a", "n_out": 3},
    {"type": "dense", "name": "b", "n_out": 3, "inputs": ["input"]},
    {"type": "add", "name": "s", "inputs": ["a", "b"]}])"));
  struct Log : PassObserver {
    std::vector<std::string> seen;
    size_t stop_after = 99;
    bool end(Pass pass, size_t node, const Tensor&) override {
      seen.push_back(std::string(pass == Pass::Forward ? "f" : pass == Pass::Loss ? "l" : "b") + std::to_string(node));
      return seen.size() < stop_after;
    }
  } log;
  Device& dev = reference_cpu_device();
  const Tensor x = Tensor::from_host(fixed_inputs(8, 1), Shape{2, 4}, dev);
  const Tensor y = Tensor::from_host(fixed_inputs(6, 2), Shape{2, 3}, dev);
  net.backward(y, net.forward(x, Mode::Train, &log), &log);
  EXPECT_EQ(log.seen, (std::vector<std::string>{"f0", "f1", "f2", "l2", "b2", "b1", "b0"}));
  log.seen.clear();
  log.stop_after = 2;
  EXPECT_FALSE(net.forward(x, Mode::Train, &log).defined());
  EXPECT_EQ(log.seen.size(), 2u);
}

// configs/cifar10_resnet.json: ResNet-9 builds for CIFAR-10 images, fuses
// all eight BatchNorm + ReLU pairs (each ReLU is its BatchNorm's only
// consumer; the residual sums read the ReLUs' outputs), and has the parameter count of the same network in PyTorch
// (6,573,130: bench/compare_pytorch.py's build of this config).
TEST(GraphConfig, ResNet9Config) {
  std::ifstream in(std::string(JANUS_SOURCE_DIR) + "/configs/cifar10_resnet.json");
  ASSERT_TRUE(in.good());
  NeuralNetwork net = NeuralNetwork::from_config(json::parse(in).at("model"));
  EXPECT_EQ(net.output_shape(Shape{1, 32, 32, 3}), (Shape{1, 10}));
  net.build(Shape{2, 32, 32, 3}, cpu_device());
  int64_t parameters = 0, fused = 0, batchnorms = 0;
  for (const NamedParameter& p : net.named_parameters()) parameters += p.parameter->value.numel();
  for (size_t i = 0; i < net.size(); ++i)
    if (auto* bn = dynamic_cast<BatchNorm*>(&net.layer(i))) {
      ++batchnorms;
      fused += bn->fused_relu() ? 1 : 0;
    }
  EXPECT_EQ(parameters, 6573130);
  EXPECT_EQ(batchnorms, 8);
  EXPECT_EQ(fused, fusion_enabled_from_environment() ? 8 : 0);
  EXPECT_TRUE(net.uses_fused_softmax_cross_entropy());
  EXPECT_EQ(net.layer(net.size() - 2).type(), "scale");  // the recipe's 0.125 on the logits
}

}  // namespace
}  // namespace janus
