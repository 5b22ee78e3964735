// Per-parameter options (include/janus/parameter_options.hpp) and weight
// decay's rule (WeightDecayAppliesTo, optimizer.hpp):
//   - a frozen layer keeps its values bit for bit, gets no optimizer state,
//     its own gradient is not computed, and gradients still reach the layers
//     before it (bit-identical to the unfrozen network's on the first step);
//   - lr_mult 0.5 steps exactly as the learning rate halved;
//   - weight decay "weights" vs "all" and decay_mult on a bias, against a
//     hand computation;
//   - BatchNorm with its scale (gamma) frozen;
//   - config errors, the config round trip, and checkpoints: frozen
//     parameters are kept, options come back, and a resumed run is
//     bit-identical to an uninterrupted one.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "janus/janus.hpp"
#include "janus/nlohmann_json.hpp"

#include "error_message.hpp"

namespace janus {
namespace {

using janus::test::error_of;
using nlohmann::json;

const Shape kInput{8, 5};
constexpr int64_t kClasses = 3;

// An MLP 5 -> fc1 (7, tanh) -> fc2 (6, tanh) -> out (3, logits); `options`
// adds keys to the layers by name.
json mlp(const std::map<std::string, json>& options = {}) {
  json layers = {{{"type", "dense"}, {"name", "fc1"}, {"n_out", 7}, {"activation", "tanh"}},
                 {{"type", "dense"}, {"name", "fc2"}, {"n_out", 6}, {"activation", "tanh"}},
                 {{"type", "dense"}, {"name", "out"}, {"n_out", kClasses}}};
  for (json& l : layers)
    if (options.count(l.at("name"))) l.update(options.at(l.at("name")));
  return {{"seed", 5}, {"loss", "cross_entropy"}, {"layers", layers}};
}

// fc1 (6, no bias) -> bn -> relu -> out (3, logits); `bn` adds keys to the BatchNorm.
json bn_mlp(const json& bn = json::object()) {
  json b = {{"type", "batchnorm"}, {"name", "bn"}};
  b.update(bn);
  return {{"seed", 6},
          {"loss", "cross_entropy"},
          {"layers", {{{"type", "dense"}, {"name", "fc1"}, {"n_out", 6}, {"bias", false}},
                      b,
                      {{"type", "activation"}, {"activation", "relu"}},
                      {{"type", "dense"}, {"name", "out"}, {"n_out", kClasses}}}}};
}

NeuralNetwork built(const json& cfg, Device& dev) {
  NeuralNetwork net = NeuralNetwork::from_config(cfg);
  net.build(kInput, dev);
  return net;
}

// Batch `step`: inputs in [-1, 1], one-hot labels, from a seed of its own.
std::pair<Tensor, Tensor> batch(int step, Device& dev) {
  std::mt19937_64 rng(1000 + static_cast<uint64_t>(step));
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<double> x(static_cast<size_t>(kInput.numel())), y(static_cast<size_t>(kInput[0] * kClasses), 0.0);
  for (double& v : x) v = u(rng);
  for (int64_t r = 0; r < kInput[0]; ++r) y[static_cast<size_t>(r * kClasses + static_cast<int64_t>(rng() % kClasses))] = 1.0;
  return {Tensor::from_host(x, kInput, dev, DType::F32), Tensor::from_host(y, Shape{kInput[0], kClasses}, dev, DType::F32)};
}

// Forward and backward of batch `step` (the gradients), then, with an optimizer, its step.
void train_step(NeuralNetwork& net, Optimizer* opt, int step, double lr, Device& dev) {
  const auto [x, y] = batch(step, dev);
  net.backward(y, net.forward(x, Mode::Train));
  if (opt) opt->step(net.named_parameters(), lr);
}

void train(NeuralNetwork& net, Optimizer& opt, int first, int steps, double lr, Device& dev) {
  for (int s = first; s < first + steps; ++s) train_step(net, &opt, s, lr, dev);
}

// Parameter values (or gradients) by full name.
std::map<std::string, std::vector<double>> values(NeuralNetwork& net, bool grads = false) {
  std::map<std::string, std::vector<double>> out;
  for (const NamedParameter& p : net.named_parameters())
    out[p.name] = (grads ? p.parameter->grad : p.parameter->value).to_host();
  return out;
}

std::map<std::string, std::vector<double>> state_values(Optimizer& opt) {
  std::map<std::string, std::vector<double>> out;
  for (auto& [name, t] : opt.state()) out[name] = t.to_host();
  return out;
}

bool all_zero(const std::vector<double>& v) {
  for (double x : v)
    if (x != 0.0) return false;
  return true;
}

std::vector<Device*> devices() { return {&reference_cpu_device(), &cpu_device()}; }

const std::vector<json> kOptimizers = {
    {{"type", "sgd"}, {"momentum", 0.9}, {"nesterov", true}, {"weight_decay", 0.01}, {"weight_decay_applies_to", "all"}},
    {{"type", "adam"}, {"weight_decay", 0.01}, {"weight_decay_applies_to", "all"}},
    {{"type", "adamw"}, {"weight_decay", 0.1}, {"weight_decay_applies_to", "all"}}};

// ---- frozen layers ------------------------------------------------------------------

TEST(ParameterOptions, FrozenLayerKeepsItsValuesWhileTheRestTrain) {
  for (Device* dev : devices())
    for (const json& oc : kOptimizers) {
      SCOPED_TRACE(dev->name() + " " + oc.dump());
      NeuralNetwork net = built(mlp({{"fc2", {{"trainable", false}}}}), *dev);
      const auto before = values(net);
      auto opt = make_optimizer(oc);
      train(net, *opt, 0, 5, 0.05, *dev);
      const auto after = values(net);
      // Decay applies to "all" and the step is non-zero, so any update of fc2 would show.
      EXPECT_EQ(after.at("fc2.W"), before.at("fc2.W"));
      EXPECT_EQ(after.at("fc2.b"), before.at("fc2.b"));
      for (const char* trained : {"fc1.W", "fc1.b", "out.W", "out.b"})
        EXPECT_NE(after.at(trained), before.at(trained)) << trained;
      // No optimizer state for the frozen layer; state for the others.
      for (auto& [name, t] : opt->state()) EXPECT_NE(name.rfind("fc2.", 0), 0u) << name;
      EXPECT_TRUE(opt->state().count(oc.at("type") == "sgd" ? "fc1.W.velocity" : "fc1.W.m"));
    }
}

TEST(ParameterOptions, GradientsFlowThroughAFrozenLayerToItsInput) {
  for (Device* dev : devices()) {
    SCOPED_TRACE(dev->name());
    NeuralNetwork frozen = built(mlp({{"fc2", {{"trainable", false}}}}), *dev);
    NeuralNetwork plain = built(mlp(), *dev);  // same seed: same weights
    EXPECT_TRUE(frozen.layer(1).input_gradient_needed());
    train_step(frozen, nullptr, 0, 0.0, *dev);
    train_step(plain, nullptr, 0, 0.0, *dev);
    const auto gf = values(frozen, true), gp = values(plain, true);
    // fc1 is reached through the frozen fc2: its gradient is the unfrozen network's, bit for bit.
    for (const char* name : {"fc1.W", "fc1.b", "out.W", "out.b"}) {
      EXPECT_EQ(gf.at(name), gp.at(name)) << name;
      EXPECT_FALSE(all_zero(gf.at(name))) << name;
    }
    // fc2's own gradient is not computed (it stays as created, zeros).
    EXPECT_TRUE(all_zero(gf.at("fc2.W")));
    EXPECT_TRUE(all_zero(gf.at("fc2.b")));
    EXPECT_FALSE(all_zero(gp.at("fc2.W")));
  }
}

TEST(ParameterOptions, FrozenStemIsNotRunBackward) {
  for (Device* dev : devices()) {
    SCOPED_TRACE(dev->name());
    NeuralNetwork frozen = built(mlp({{"fc1", {{"trainable", false}}}}), *dev);
    NeuralNetwork plain = built(mlp(), *dev);
    // Nothing before fc2 learns: fc2 needs no input gradient, as if fc1 were the model input.
    EXPECT_FALSE(frozen.layer(1).input_gradient_needed());
    EXPECT_TRUE(plain.layer(1).input_gradient_needed());
    train_step(frozen, nullptr, 0, 0.0, *dev);
    train_step(plain, nullptr, 0, 0.0, *dev);
    const auto gf = values(frozen, true), gp = values(plain, true);
    for (const char* name : {"fc2.W", "fc2.b", "out.W", "out.b"}) EXPECT_EQ(gf.at(name), gp.at(name)) << name;
    EXPECT_TRUE(all_zero(gf.at("fc1.W")));
    EXPECT_TRUE(all_zero(gf.at("fc1.b")));

    // Unfrozen through the C++ API after the network was made: the next backward computes it.
    for (Parameter* p : frozen.layer(0).parameters()) p->options.trainable = true;
    train_step(frozen, nullptr, 0, 0.0, *dev);
    EXPECT_TRUE(frozen.layer(1).input_gradient_needed());
    EXPECT_EQ(values(frozen, true), gp);
  }
}

// ---- learning-rate multipliers ------------------------------------------------------

TEST(ParameterOptions, LrMultHalfStepsAsHalfTheLearningRate) {
  const double lr = 0.05;
  for (Device* dev : devices())
    for (const json& oc : kOptimizers) {
      SCOPED_TRACE(dev->name() + " " + oc.dump());
      // Every layer at lr_mult 0.5 against the plain network at lr * 0.5: bit-identical for 4 steps
      // (AdamW's decoupled decay, lr * weight_decay, halves as well).
      NeuralNetwork half = built(mlp({{"fc1", {{"lr_mult", 0.5}}}, {"fc2", {{"lr_mult", 0.5}}}, {"out", {{"lr_mult", 0.5}}}}), *dev);
      NeuralNetwork scaled = built(mlp(), *dev);
      auto oh = make_optimizer(oc), os = make_optimizer(oc);
      train(half, *oh, 0, 4, lr, *dev);
      train(scaled, *os, 0, 4, lr * 0.5, *dev);
      EXPECT_EQ(values(half), values(scaled));
      EXPECT_EQ(state_values(*oh), state_values(*os));

      // One layer (and one parameter) at 0.5: after one step, those match the half-lr run, the rest the
      // full-lr run.
      NeuralNetwork mixed = built(mlp({{"out", {{"lr_mult", 0.5}}}, {"fc1", {{"parameters", {{"b", {{"lr_mult", 0.5}}}}}}}}), *dev);
      NeuralNetwork full = built(mlp(), *dev), halved = built(mlp(), *dev);
      auto om = make_optimizer(oc), of = make_optimizer(oc), oh1 = make_optimizer(oc);
      train(mixed, *om, 0, 1, lr, *dev);
      train(full, *of, 0, 1, lr, *dev);
      train(halved, *oh1, 0, 1, lr * 0.5, *dev);
      const auto m = values(mixed), f = values(full), h = values(halved);
      for (const char* name : {"out.W", "out.b", "fc1.b"}) EXPECT_EQ(m.at(name), h.at(name)) << name;
      for (const char* name : {"fc1.W", "fc2.W", "fc2.b"}) EXPECT_EQ(m.at(name), f.at(name)) << name;
      EXPECT_NE(f.at("out.W"), h.at("out.W"));  // (the two runs do differ)
    }
}

// ---- weight decay: the rule and decay_mult, by hand ---------------------------------

// One step of `optimizer` on a weight and a bias with gradient 0.5 / 1 and the given bias options; returns
// the bias after the step. Values chosen so that SGD's arithmetic is exact in binary.
std::vector<double> bias_after_one_step(const json& optimizer, const ParameterOptions& bias_options, Device& dev,
                                        std::vector<double>* weight_after = nullptr) {
  Parameter w{"W", Tensor::from_host(std::vector<double>{2.0, -4.0}, Shape{1, 2}, dev),
              Tensor::from_host(std::vector<double>{0.5, 1.0}, Shape{1, 2}, dev), true};
  Parameter b{"b", Tensor::from_host(std::vector<double>{2.0, -4.0}, Shape{1, 2}, dev),
              Tensor::from_host(std::vector<double>{0.5, 1.0}, Shape{1, 2}, dev), false, bias_options};
  make_optimizer(optimizer)->step({{"layer.W", &w}, {"layer.b", &b}}, 0.5);
  if (weight_after) *weight_after = w.value.to_host();
  return b.value.to_host();
}

TEST(ParameterOptions, WeightDecayRuleOnABiasMatchesAHandComputation) {
  for (Device* dev : devices()) {
    SCOPED_TRACE(dev->name());
    const json sgd = {{"type", "sgd"}, {"weight_decay", 0.25}};
    json sgd_all = sgd;
    sgd_all["weight_decay_applies_to"] = "all";
    json sgd_weights = sgd;
    sgd_weights["weight_decay_applies_to"] = "weights";
    // lr 0.5, weight decay 0.25, b = (2, -4), g = (0.5, 1).
    // "weights" (the default): b - lr * g = (1.75, -4.5).
    // "all": b - lr * (g + wd * b) = (2 - 0.5 * 1, -4 - 0.5 * 0) = (1.5, -4).
    std::vector<double> w_default, w_all;
    EXPECT_EQ(bias_after_one_step(sgd, {}, *dev, &w_default), (std::vector<double>{1.75, -4.5}));
    EXPECT_EQ(bias_after_one_step(sgd_weights, {}, *dev), (std::vector<double>{1.75, -4.5}));
    EXPECT_EQ(bias_after_one_step(sgd_all, {}, *dev, &w_all), (std::vector<double>{1.5, -4.0}));
    // The weight decays under both rules: (1.5, -4).
    EXPECT_EQ(w_default, (std::vector<double>{1.5, -4.0}));
    EXPECT_EQ(w_all, w_default);
    // decay_mult overrides the rule: 0.5 under "weights" decays at 0.125: b - lr * (g + 0.125 b) = (1.625, -4.25);
    // 0 under "all" does not decay.
    ParameterOptions half_decay, no_decay;
    half_decay.decay_mult = 0.5;
    no_decay.decay_mult = 0.0;
    EXPECT_EQ(bias_after_one_step(sgd, half_decay, *dev), (std::vector<double>{1.625, -4.25}));
    EXPECT_EQ(bias_after_one_step(sgd_all, no_decay, *dev), (std::vector<double>{1.75, -4.5}));
    // A frozen bias is left alone, even under "all".
    ParameterOptions frozen;
    frozen.trainable = false;
    EXPECT_EQ(bias_after_one_step(sgd_all, frozen, *dev), (std::vector<double>{2.0, -4.0}));
    // lr_mult 2 under "all": b - 2 lr (g + wd b) = (1, -4).
    ParameterOptions double_lr;
    double_lr.lr_mult = 2.0;
    EXPECT_EQ(bias_after_one_step(sgd_all, double_lr, *dev), (std::vector<double>{1.0, -4.0}));

    // AdamW, first step (bias-corrected moments are g and g^2): b <- b - lr wd b (decoupled decay, "all" only),
    // then b <- b - lr g / (|g| + eps).
    const double lr = 0.5, wd = 0.25, eps = 1e-8;
    const json adamw = {{"type", "adamw"}, {"weight_decay", wd}, {"eps", eps}};
    json adamw_all = adamw;
    adamw_all["weight_decay_applies_to"] = "all";
    auto adam_step = [&](double b, double g, double decay) {
      const double decayed = b - lr * decay * b;
      return decayed - lr * g / (std::fabs(g) + eps);
    };
    const std::vector<double> got_weights = bias_after_one_step(adamw, {}, *dev);
    const std::vector<double> got_all = bias_after_one_step(adamw_all, {}, *dev);
    ASSERT_EQ(got_all.size(), 2u);
    const double bs[] = {2.0, -4.0}, gs[] = {0.5, 1.0};
    for (size_t i = 0; i < 2; ++i) {
      EXPECT_FLOAT_EQ(got_weights[i], adam_step(bs[i], gs[i], 0.0)) << i;
      EXPECT_FLOAT_EQ(got_all[i], adam_step(bs[i], gs[i], wd)) << i;
    }
  }
}

TEST(ParameterOptions, OptimizerConfigStatesItsDecayRule) {
  // Explicit in every config written (hyperparameters.json, checkpoints), and read back.
  EXPECT_EQ(make_optimizer({{"type", "sgd"}})->config().at("weight_decay_applies_to"), "weights");
  for (const json& oc : kOptimizers) {
    const json written = make_optimizer(oc)->config();
    EXPECT_EQ(written.at("weight_decay_applies_to"), "all");
    EXPECT_EQ(make_optimizer(written)->config(), written);
  }
  EXPECT_EQ(make_optimizer({{"type", "adam"}, {"weight_decay_applies_to", "all"}})->weight_decay_applies_to(),
            WeightDecayAppliesTo::All);
}

// ---- BatchNorm with its scale frozen ------------------------------------------------

TEST(ParameterOptions, BatchNormWithGammaFrozen) {
  const json gamma_frozen = {{"parameters", {{"gamma", {{"trainable", false}}}}}};
  for (Device* dev : devices())
    for (const json& oc : kOptimizers) {
      SCOPED_TRACE(dev->name() + " " + oc.dump());
      NeuralNetwork net = built(bn_mlp(gamma_frozen), *dev);
      const auto before = values(net);
      auto opt = make_optimizer(oc);
      train(net, *opt, 0, 5, 0.05, *dev);
      const auto after = values(net);
      EXPECT_EQ(after.at("bn.gamma"), before.at("bn.gamma"));
      for (const char* trained : {"bn.beta", "fc1.W", "out.W"}) EXPECT_NE(after.at(trained), before.at(trained)) << trained;
      for (auto& [name, t] : opt->state()) EXPECT_NE(name.rfind("bn.gamma.", 0), 0u) << name;
      EXPECT_TRUE(opt->state().count(oc.at("type") == "sgd" ? "bn.beta.velocity" : "bn.beta.m"));
    }
  // The gradient reaches fc1 through the BatchNorm as in the unfrozen network.
  for (Device* dev : devices()) {
    NeuralNetwork frozen = built(bn_mlp(gamma_frozen), *dev), plain = built(bn_mlp(), *dev);
    train_step(frozen, nullptr, 0, 0.0, *dev);
    train_step(plain, nullptr, 0, 0.0, *dev);
    const auto gf = values(frozen, true), gp = values(plain, true);
    EXPECT_EQ(gf.at("fc1.W"), gp.at("fc1.W"));
    EXPECT_EQ(gf.at("bn.beta"), gp.at("bn.beta"));
    EXPECT_FALSE(all_zero(gf.at("fc1.W")));
  }
}

// ---- config: errors, round trip -----------------------------------------------------

TEST(ParameterOptions, ConfigErrorsNameTheLayerAndTheField) {
  auto layer_error = [](const json& cfg) { return error_of([&] { (void)make_layer(cfg, 2); }); };
  const json bn = {{"type", "batchnorm"}, {"name", "bn1"}};
  const json fc = {{"type", "dense"}, {"name", "fc"}, {"n_out", 3}};
  auto with = [](json cfg, const json& extra) {
    cfg.update(extra);
    return cfg;
  };
  std::string e = layer_error(with(bn, {{"parameters", {{"gama", {{"trainable", false}}}}}}));
  EXPECT_NE(e.find("layer 'bn1' (batchnorm)"), std::string::npos) << e;
  EXPECT_NE(e.find("'gama'"), std::string::npos) << e;
  EXPECT_NE(e.find("gamma, beta"), std::string::npos) << e;  // the names it has

  e = layer_error(with(fc, {{"lr_mult", -0.5}}));
  EXPECT_NE(e.find("layer 'fc' (fully_connected): 'lr_mult' is -0.5, outside its domain [0, inf)"), std::string::npos) << e;
  e = layer_error(with(fc, {{"parameters", {{"b", {{"decay_mult", -1}}}}}}));
  EXPECT_NE(e.find("layer 'fc' (fully_connected), parameter 'b': 'decay_mult' is -1, outside its domain [0, inf)"),
            std::string::npos) << e;
  e = layer_error(with(fc, {{"lr_mult", "2"}}));
  EXPECT_NE(e.find("'lr_mult' must be a number"), std::string::npos) << e;
  e = layer_error(with(fc, {{"trainable", "no"}}));
  EXPECT_NE(e.find("layer 'fc' (fully_connected): 'trainable' must be true or false"), std::string::npos) << e;
  e = layer_error(with(fc, {{"parameters", {{"b", {{"lr", 2}}}}}}));
  EXPECT_NE(e.find("parameter 'b': unknown option 'lr'"), std::string::npos) << e;
  e = layer_error(with(fc, {{"parameters", {{"b", false}}}}));
  EXPECT_NE(e.find("parameter 'b': expected an object"), std::string::npos) << e;
  e = layer_error(with(fc, {{"parameters", json::array()}}));
  EXPECT_NE(e.find("'parameters' must be an object"), std::string::npos) << e;
  // A convolution without bias has no 'b'.
  e = layer_error({{"type", "conv2d"}, {"name", "c"}, {"n_out", 2}, {"kernel", 3}, {"bias", false},
                   {"parameters", {{"b", {{"lr_mult", 2}}}}}});
  EXPECT_NE(e.find("'b', which is not a parameter of this layer (its parameters: W)"), std::string::npos) << e;
  // Layers without parameters take none of the keys.
  e = layer_error({{"type", "pool2d"}, {"name", "p"}, {"kernel", 2}, {"trainable", false}});
  EXPECT_NE(e.find("layer 'p' (pool2d): 'trainable' sets options of a layer's parameters, and this layer has none"),
            std::string::npos) << e;
  // Through a whole model config, too.
  json m = mlp({{"fc2", {{"decay_mult", -2}}}});
  e = error_of([&] { (void)NeuralNetwork::from_config(m); });
  EXPECT_NE(e.find("layer 'fc2' (fully_connected): 'decay_mult' is -2"), std::string::npos) << e;
  // The optimizer's rule.
  e = error_of([] { (void)make_optimizer({{"type", "sgd"}, {"weight_decay_applies_to", "biases"}}); });
  EXPECT_NE(e.find("optimizer sgd: 'weight_decay_applies_to' is \"biases\""), std::string::npos) << e;
  // Valid edge values.
  EXPECT_NO_THROW((void)make_layer(with(fc, {{"lr_mult", 0}, {"decay_mult", 0}, {"parameters", json::object()}}), 0));
}

json options_model() {
  return mlp({{"fc1", {{"lr_mult", 2.0}, {"parameters", {{"b", {{"decay_mult", 1.0}}}}}}},
              {"fc2", {{"trainable", false}}},
              {"out", {{"parameters", {{"W", {{"lr_mult", 0.25}}}}}}}});
}

TEST(ParameterOptions, ConfigRoundTrips) {
  NeuralNetwork net = NeuralNetwork::from_config(options_model());
  const json written = net.config();
  const json& layers = written.at("layers");
  EXPECT_EQ(layers[0].at("lr_mult"), 2.0);
  EXPECT_EQ(layers[0].at("parameters"), json({{"b", {{"decay_mult", 1.0}}}}));
  EXPECT_EQ(layers[1].at("trainable"), false);
  EXPECT_FALSE(layers[2].contains("lr_mult"));  // only W has it
  EXPECT_EQ(layers[2].at("parameters"), json({{"W", {{"lr_mult", 0.25}}}}));
  EXPECT_EQ(NeuralNetwork::from_config(written).config(), written);
  // The options reach the parameters.
  const auto params = net.named_parameters();
  ASSERT_EQ(params.size(), 6u);
  EXPECT_EQ(params[0].parameter->options.lr_mult, 2.0);
  EXPECT_FALSE(params[0].parameter->options.decay_mult.has_value());
  EXPECT_EQ(params[1].parameter->options.decay_mult.value_or(-1.0), 1.0);
  EXPECT_FALSE(params[2].parameter->options.trainable);
  EXPECT_EQ(params[4].parameter->options.lr_mult, 0.25);
  EXPECT_EQ(params[5].parameter->options.lr_mult, 1.0);
  // A config without options is written without them (configs of earlier versions are unchanged).
  const json plain = NeuralNetwork::from_config(mlp()).config();
  for (const json& l : plain.at("layers"))
    for (const char* key : {"trainable", "lr_mult", "decay_mult", "parameters"}) EXPECT_FALSE(l.contains(key)) << key;
}

std::string temp_checkpoint(const char* stem) {
  return (std::filesystem::temp_directory_path() /
          (std::string("janus_") + stem + "_" + std::to_string(::getpid()) + ".safetensors"))
      .string();
}

TEST(ParameterOptions, CheckpointKeepsFrozenParametersAndResumesBitExactly) {
  const json oc = {{"type", "adamw"}, {"weight_decay", 0.1}, {"weight_decay_applies_to", "all"}};
  for (Device* dev : devices()) {
    SCOPED_TRACE(dev->name());
    const std::string path = temp_checkpoint("paramopts");
    // Uninterrupted: 6 steps. Interrupted: 3 steps, checkpoint, a fresh process's model and optimizer, 3 steps.
    NeuralNetwork full = built(options_model(), *dev);
    auto of = make_optimizer(oc);
    train(full, *of, 0, 6, 0.05, *dev);

    NeuralNetwork first = built(options_model(), *dev);
    const auto initial = values(first);
    auto o1 = make_optimizer(oc);
    train(first, *o1, 0, 3, 0.05, *dev);
    save_checkpoint(path, first, o1.get());

    const SafetensorsFile file = read_safetensors(path);
    EXPECT_TRUE(file.tensors.count("fc2.W") && file.tensors.count("fc2.b"));  // frozen parameters are kept
    EXPECT_FALSE(file.tensors.count("optimizer.fc2.W.m"));                  // without optimizer state
    EXPECT_TRUE(file.tensors.count("optimizer.fc1.W.m"));

    NeuralNetwork resumed = load_model(path, *dev);
    auto o2 = make_optimizer(oc);
    load_checkpoint_into(path, resumed, o2.get());
    EXPECT_EQ(resumed.config(), full.config());  // the options came back from the checkpoint
    EXPECT_FALSE(resumed.named_parameters()[2].parameter->options.trainable);
    train(resumed, *o2, 3, 3, 0.05, *dev);
    std::remove(path.c_str());

    EXPECT_EQ(values(resumed), values(full));
    EXPECT_EQ(state_values(*o2), state_values(*of));
    EXPECT_EQ(values(resumed).at("fc2.W"), initial.at("fc2.W"));
  }
}

}  // namespace
}  // namespace janus
