// Models as graphs (include/janus/model.hpp): named inputs, fan-out, the
// checks a graph config gets, and that everything written before graphs
// existed still works unchanged.
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

#include <nlohmann/json.hpp>

#include "janus/janus.hpp"

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
      fresh.backward(y, fresh.forward(x, true));
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

}  // namespace
}  // namespace janus
