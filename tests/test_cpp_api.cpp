// The C++ API: a model built in code (GraphBuilder, a user's CompositeLayer,
// a registered layer type) round-trips through its JSON config and its
// checkpoint, and each trap a libtorch user met (issue 13, item 4) is an
// error or does not compile.
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <type_traits>
#include <unistd.h>
#include <vector>

#include "janus/janus.hpp"
#include "janus/nlohmann_json.hpp"
#include "residual_block.hpp"  // examples/residual_cnn: the user's composite layer

#include "error_message.hpp"

namespace janus {
namespace {

using janus::test::error_of;
using nlohmann::json;

Tensor images(int n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(n) * 32 * 32 * 3);
  for (float& x : v) x = static_cast<float>(rng.uniform(-1, 1));
  return Tensor::from_host(v, Shape{n, 32, 32, 3}, cpu_device());
}

Tensor one_hot(int n, int classes) {
  std::vector<float> v(static_cast<size_t>(n * classes), 0.0f);
  for (int i = 0; i < n; ++i) v[static_cast<size_t>(i * classes + i % classes)] = 1.0f;
  return Tensor::from_host(v, Shape{n, classes}, cpu_device());
}

std::string temp_file(const std::string& name) {
  return testing::TempDir() + "/janus_cpp_api_" + std::to_string(getpid()) + "_" + name;
}

// The JSON twin of example::residual_cnn (README, "C++ API").
json residual_cnn_json() {
  return json::parse(R"({
    "seed": 1, "loss": "cross_entropy",
    "layers": [
      {"type": "conv2d", "name": "prep", "n_out": 16, "kernel": 3, "bias": false},
      {"type": "batchnorm", "name": "prep_bn"},
      {"type": "relu", "name": "prep_relu"},
      {"type": "residual_block", "name": "res1", "channels": 16},
      {"type": "pool2d", "name": "pool1", "mode": "max", "kernel": 2},
      {"type": "conv2d", "name": "c2", "n_out": 32, "kernel": 3, "bias": false},
      {"type": "batchnorm", "name": "c2_bn"},
      {"type": "relu", "name": "c2_relu"},
      {"type": "conv2d", "name": "c3", "n_out": 32, "kernel": 3, "activation": "relu"},
      {"type": "add", "name": "skip", "inputs": ["c2_relu", "c3"]},
      {"type": "global_avg_pool", "name": "gap"},
      {"type": "flatten", "name": "flat"},
      {"type": "fully_connected", "name": "fc", "n_out": 10}
    ]})");
}

// Two training steps, so that weights, BatchNorm statistics and momentum move.
void train_two_steps(NeuralNetwork& net, Optimizer& opt) {
  const Tensor x = images(4, 11), y = one_hot(4, 10);
  for (int step = 0; step < 2; ++step) {
    const Tensor out = net.forward(x, Mode::Train);
    net.backward(y, out);
    opt.step(0.05);
  }
}

TEST(CppApi, BuiltModelRoundTripsThroughItsCheckpoint) {
  example::register_residual_block();
  NeuralNetwork net = example::residual_cnn(cpu_device(), 1);
  SGD sgd(net.named_parameters(), 0.9);
  train_two_steps(net, sgd);
  const std::string path = temp_file("roundtrip.safetensors");
  save_checkpoint(path, net, &sgd);
  NeuralNetwork loaded = load_model(path, cpu_device());
  EXPECT_EQ(loaded.config(), net.config());
  const Tensor x = images(3, 12);
  EXPECT_EQ(net.forward(x, Mode::Eval).to_host_f32(), loaded.forward(x, Mode::Eval).to_host_f32());
  std::remove(path.c_str());
}

TEST(CppApi, ConfigRoundTripsAndMatchesTheJsonTwin) {
  example::register_residual_block();
  NeuralNetwork built = example::residual_cnn(cpu_device(), 1);
  const json cfg = built.config();
  EXPECT_EQ(NeuralNetwork::from_config(cfg).config(), cfg);  // to_json(from_json(cfg)) == cfg
  NeuralNetwork twin = NeuralNetwork::from_config(residual_cnn_json());
  EXPECT_EQ(twin.config(), cfg);
  // Same layers, names and seeds: the same initial weights.
  twin.build(Shape{1, 32, 32, 3}, cpu_device());
  const auto a = built.state(), b = twin.state();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_EQ(a[i].second->to_host_f32(), b[i].second->to_host_f32()) << a[i].first;
  }
}

TEST(CppApi, CompositeLayerNamesAndSeedsItsChildren) {
  example::register_residual_block();
  NeuralNetwork net = example::residual_cnn(cpu_device(), 1);
  std::map<std::string, Parameter*> by_name;
  for (const NamedParameter& p : net.named_parameters()) by_name[p.name] = p.parameter;
  for (const char* name : {"res1.conv1.W", "res1.conv1.b", "res1.conv2.W", "res1.conv2.b"})
    EXPECT_EQ(by_name.count(name), 1u) << name;
  EXPECT_EQ(by_name.count("res1.W"), 0u);
  // Same shape, different seeds: different initial weights.
  const Tensor& w1 = by_name.at("res1.conv1.W")->value;
  const Tensor& w2 = by_name.at("res1.conv2.W")->value;
  ASSERT_EQ(w1.shape(), w2.shape());
  EXPECT_NE(w1.to_host_f32(), w2.to_host_f32());
  // The optimizer keeps one state per inner parameter.
  SGD sgd(net.named_parameters(), 0.9);
  train_two_steps(net, sgd);
  EXPECT_EQ(sgd.state().count("res1.conv1.W.velocity"), 1u);
  EXPECT_EQ(sgd.state().count("res1.conv2.W.velocity"), 1u);
}

// Per-parameter options inside a composite address one child's parameter by
// its hierarchical name (before, "W" silently meant the last child's W).
TEST(CppApi, CompositeParameterOptionsUseHierarchicalNames) {
  example::register_residual_block();
  const json cfg = json::parse(R"({"seed": 1, "loss": "cross_entropy", "layers": [
      {"type": "residual_block", "name": "res1", "channels": 3,
       "parameters": {"conv1.W": {"trainable": false}, "conv2.b": {"decay_mult": 3}}},
      {"type": "global_avg_pool", "name": "gap"},
      {"type": "flatten", "name": "flat"},
      {"type": "fully_connected", "name": "fc", "n_out": 10}]})");
  NeuralNetwork net = NeuralNetwork::from_config(cfg);
  net.build(Shape{1, 32, 32, 3}, cpu_device());
  std::map<std::string, const Parameter*> by_name;
  for (const NamedParameter& p : net.named_parameters()) by_name[p.name] = p.parameter;
  EXPECT_FALSE(by_name.at("res1.conv1.W")->options.trainable);
  EXPECT_TRUE(by_name.at("res1.conv2.W")->options.trainable);
  EXPECT_TRUE(by_name.at("res1.conv1.b")->options.trainable);
  ASSERT_TRUE(by_name.at("res1.conv2.b")->options.decay_mult.has_value());
  EXPECT_EQ(*by_name.at("res1.conv2.b")->options.decay_mult, 3.0);
  EXPECT_FALSE(by_name.at("res1.conv1.b")->options.decay_mult.has_value());
  // The config writes them back under the same names.
  EXPECT_EQ(json(net.config())["layers"][0]["parameters"], cfg["layers"][0]["parameters"]);
  // A bare child parameter name is ambiguous in a composite: refused, with the names it has.
  json bare = cfg;
  bare["layers"][0]["parameters"] = json::parse(R"({"W": {"trainable": false}})");
  const std::string e = error_of([&] { NeuralNetwork::from_config(bare); });
  EXPECT_NE(e.find("'W', which is not a parameter"), std::string::npos) << e;
  EXPECT_NE(e.find("conv1.W, conv1.b, conv2.W, conv2.b"), std::string::npos) << e;
}

// The trap: a composite written as a plain Layer returns its children's
// parameters, which are both named "W".
class HandWrittenPair : public Layer {
 public:
  explicit HandWrittenPair(std::string name) : Layer(std::move(name)) {}
  std::string type() const override { return "hand_written_pair"; }
  Shape output_shape(const Shape& in) const override { return b_.output_shape(a_.output_shape(in)); }
  Tensor forward(const Tensor& x, bool training) override { return b_.forward(a_.forward(x, training), training); }
  Tensor backward(const Tensor& dy) override { return a_.backward(b_.backward(dy)); }
  std::vector<Parameter*> parameters() override {
    std::vector<Parameter*> p = a_.parameters(), q = b_.parameters();
    p.insert(p.end(), q.begin(), q.end());
    return p;
  }
  Json config() const override { return {{"type", type()}, {"name", name()}}; }

 protected:
  void create_parameters(const Shape& in, Device& device, DType dtype) override {
    b_.build(a_.build(in, device, dtype), device, dtype);
  }

 private:
  FullyConnected a_{"a", 4}, b_{"b", 4};
};

TEST(CppApi, DuplicateParameterNamesAreRefused) {
  std::vector<std::unique_ptr<Layer>> layers;
  layers.push_back(std::make_unique<HandWrittenPair>("pair"));
  NeuralNetwork net(std::move(layers), make_loss("l2"));
  net.build(Shape{1, 3}, cpu_device());
  const std::string msg = error_of([&] { net.named_parameters(); });
  EXPECT_NE(msg.find("'pair.W'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("CompositeLayer"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { net.state(); }).find("'pair.W'"), std::string::npos);
}

TEST(CppApi, LayerRegistry) {
  example::register_residual_block();
  EXPECT_TRUE(is_registered_layer_type("residual_block"));
  const auto layer = make_layer({{"type", "residual_block"}, {"name", "r"}, {"channels", 8}}, 0);
  EXPECT_EQ(layer->config(), json({{"type", "residual_block"}, {"name", "r"}, {"channels", 8}}));
  EXPECT_NE(error_of([] { make_layer({{"type", "residual_block"}, {"channels", 8}, {"width", 2}}, 3); }).find("width"),
            std::string::npos);
  EXPECT_NE(error_of([] { register_layer_type("conv2d", [](const Json&, const std::string&) { return nullptr; }); })
                .find("built-in"),
            std::string::npos);
  EXPECT_NE(error_of([] { register_layer_type("gelu", [](const Json&, const std::string&) { return nullptr; }); })
                .find("built-in"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              register_layer_type("residual_block", [](const Json&, const std::string&) { return nullptr; });
            }).find("registered already"),
            std::string::npos);
  EXPECT_NE(error_of([] { make_layer({{"type", "no_such_block"}}, 0); }).find("register_layer_type"),
            std::string::npos);
}

// The training engine (janus::train_run, what `janus train` runs) reads
// run configs through the same factory: a program that registered its type
// can train it from a config.
TEST(CppApi, RunConfigsReadRegisteredTypes) {
  example::register_residual_block();
  const json run = {{"name", "custom"},
                    {"dataset", {{"name", "cifar10"}}},
                    {"model", residual_cnn_json()},
                    {"optimizer", {{"type", "sgd"}, {"momentum", 0.9}}}};
  EXPECT_EQ(parse_run_config(run, "run.json").model.at("layers")[3].at("type"), "residual_block");
  json bad = run;
  bad["model"]["layers"][3]["type"] = "residual_blok";
  const std::string msg = error_of([&] { parse_run_config(bad, "run.json"); });
  EXPECT_NE(msg.find("run.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("residual_blok"), std::string::npos) << msg;
}

NeuralNetwork small_cnn() {
  GraphBuilder b({32, 32, 3});
  auto h = b.batchnorm("bn", b.conv2d("conv", b.input(), Conv2dOptions(4, 3)));
  auto y = b.dense("fc", b.flatten("flat", b.global_avg_pool("gap", h)), DenseOptions(10));
  return b.build(y, make_loss("cross_entropy"), cpu_device(), 5);
}

TEST(CppApi, BackwardWithSwappedArgumentsThrows) {
  NeuralNetwork net = small_cnn();
  const Tensor x = images(10, 1), y = one_hot(10, 10);
  const Tensor out = net.forward(x, Mode::Train);
  const std::string msg = error_of([&] { net.backward(out, y); });
  EXPECT_NE(msg.find("swapped"), std::string::npos) << msg;
  EXPECT_TRUE(std::isfinite(net.backward(y, out)));
  // An evaluation pass caches nothing to backpropagate.
  const Tensor eval_out = net.forward(x, Mode::Eval);
  EXPECT_NE(error_of([&] { net.backward(y, eval_out); }).find("Mode::Train"), std::string::npos);
}

TEST(CppApi, ForwardTakesAnExplicitMode) {
  using Forward = decltype(&NeuralNetwork::forward);
  static_assert(std::is_invocable_v<Forward, NeuralNetwork&, const Tensor&, Mode, PassObserver*>);
  static_assert(!std::is_invocable_v<Forward, NeuralNetwork&, const Tensor&, bool, PassObserver*>,
                "forward must not take a bool (no implicit training mode)");
  NeuralNetwork net = small_cnn();
  Tensor* mean = nullptr;
  for (auto& [name, t] : net.state())
    if (name == "bn.running_mean") mean = t;
  ASSERT_NE(mean, nullptr);
  const std::vector<float> before = mean->to_host_f32();
  net.forward(images(4, 2), Mode::Eval);
  EXPECT_EQ(mean->to_host_f32(), before);  // inference leaves BatchNorm's statistics alone
  net.forward(images(4, 2), Mode::Train);
  EXPECT_NE(mean->to_host_f32(), before);
}

TEST(CppApi, NchwBatchIsNamed) {
  NeuralNetwork net = small_cnn();
  const Tensor nchw = Tensor::zeros(Shape{2, 3, 32, 32}, cpu_device());
  const std::string msg = error_of([&] { net.forward(nchw, Mode::Eval); });
  EXPECT_NE(msg.find("NCHW"), std::string::npos) << msg;
  EXPECT_NE(msg.find("NHWC"), std::string::npos) << msg;
  EXPECT_NE(msg.find("(2, 3, 32, 32)"), std::string::npos) << msg;
}

TEST(CppApi, SchedulesAreBuiltInCpp) {
  const auto cosine = cosine_schedule(0.1, 100, 10, 0.001);
  const auto from_json =
      make_scheduler({{"type", "cosine"}, {"lr", 0.1}, {"total_steps", 100}, {"warmup_steps", 10}, {"min_lr", 0.001}});
  EXPECT_EQ(cosine->config(), from_json->config());
  for (int64_t s : {0, 5, 10, 50, 99}) EXPECT_EQ(cosine->lr(s), from_json->lr(s));
  EXPECT_EQ(step_schedule(0.1, 0.5, 10)->lr(25), 0.1 * 0.25);
  EXPECT_EQ(constant_schedule(0.3)->lr(1000), 0.3);
  EXPECT_NE(error_of([] { cosine_schedule(-1.0, 10); }).find("lr"), std::string::npos);
  EXPECT_NE(error_of([] { onecycle_schedule(0.1, 0); }).find("total_steps"), std::string::npos);
}

TEST(CppApi, OptimizerIsBoundToItsModel) {
  NeuralNetwork a = small_cnn(), b = small_cnn();
  SGD sgd(a.named_parameters(), 0.9);
  const Tensor x = images(4, 3), y = one_hot(4, 10);
  b.backward(y, b.forward(x, Mode::Train));
  const std::string other = error_of([&] { sgd.step(b.named_parameters(), 0.1); });
  EXPECT_NE(other.find("bound"), std::string::npos) << other;
  EXPECT_NE(other.find("another model"), std::string::npos) << other;  // the names alone are equal
  a.backward(y, a.forward(x, Mode::Train));
  const std::vector<float> before = a.named_parameters().front().parameter->value.to_host_f32();
  sgd.step(0.1);
  EXPECT_NE(a.named_parameters().front().parameter->value.to_host_f32(), before);
  SGD unbound(0.9);
  EXPECT_NE(error_of([&] { unbound.step(0.1); }).find("bound"), std::string::npos);
  const auto adam = make_optimizer({{"type", "adam"}}, a.named_parameters());
  EXPECT_TRUE(adam->bound());
}

// The optimizer holds raw parameter pointers: once its model is replaced it
// must refuse to step (before, the step wrote through freed memory).
TEST(CppApi, OptimizerRefusesToStepAReplacedModel) {
  const std::string path = temp_file("replaced.safetensors");
  NeuralNetwork net = small_cnn();
  SGD sgd(net.named_parameters(), 0.9);
  train_two_steps(net, sgd);
  save_checkpoint(path, net, &sgd);
  // Moving a model moves its layers: the bound parameters live on.
  NeuralNetwork moved = std::move(net);
  EXPECT_NO_THROW(train_two_steps(moved, sgd));
  moved = load_model(path, cpu_device());  // frees the layers sgd was bound to
  const Tensor x = images(4, 3), y = one_hot(4, 10);
  moved.backward(y, moved.forward(x, Mode::Train));
  const std::string e = error_of([&] { sgd.step(0.1); });
  EXPECT_NE(e.find("destroyed or replaced"), std::string::npos) << e;
  EXPECT_NE(e.find("load_checkpoint_into"), std::string::npos) << e;
  // The supported way: a fresh model with its own optimizer, resumed.
  NeuralNetwork resumed = small_cnn();
  SGD resumed_sgd(resumed.named_parameters(), 0.9);
  load_checkpoint_into(path, resumed, &resumed_sgd);
  EXPECT_NO_THROW(train_two_steps(resumed, resumed_sgd));
  std::remove(path.c_str());
}

// The C++ constructors check the domains the JSON reader checks, and a step
// checks options set directly on a parameter.
TEST(CppApi, OptimizerHyperparametersAreChecked) {
  NeuralNetwork net = small_cnn();
  EXPECT_NE(error_of([&] { SGD(net.named_parameters(), 1.5); }).find("'momentum' is 1.5, outside its domain [0, 1)"),
            std::string::npos);
  EXPECT_NE(error_of([&] { SGD(0.9, -1.0); }).find("'weight_decay' is -1"), std::string::npos);
  EXPECT_NE(error_of([&] { SGD(0.0, 0.0, true); }).find("nesterov needs momentum > 0"), std::string::npos);
  EXPECT_NE(error_of([&] { Adam(0.9, 0.999, -1.0); }).find("optimizer adam: 'eps' is -1"), std::string::npos);
  EXPECT_NE(error_of([&] { Adam(1.0); }).find("'beta1' is 1"), std::string::npos);
  EXPECT_EQ(error_of([&] { Adam(0.9, 0.999, 1e-8, 0.01, true); }), "(no error)");  // in its domains
  SGD sgd(net.named_parameters(), 0.9);
  const NamedParameter first = net.named_parameters().front();
  first.parameter->options.lr_mult = -3;
  const Tensor x = images(4, 3), y = one_hot(4, 10);
  net.backward(y, net.forward(x, Mode::Train));
  const std::string e = error_of([&] { sgd.step(0.1); });
  EXPECT_NE(e.find("parameter '" + first.name + "': 'lr_mult' is -3, outside its domain [0, inf)"), std::string::npos)
      << e;
}

// A checkpoint whose model names a type this program has not registered:
// the error names the file as well as the type.
TEST(CppApi, LoadModelErrorsNameTheFile) {
  const std::string path = temp_file("unknown_type.safetensors");
  NeuralNetwork net = small_cnn();
  net.build(Shape{1, 32, 32, 3}, cpu_device());
  save_checkpoint(path, net, nullptr);
  SafetensorsFile f = read_safetensors(path);
  std::vector<NamedTensor> tensors;
  for (auto& [name, t] : f.tensors) tensors.push_back({name, t});
  json model = json::parse(f.metadata.at("model"));
  model["layers"][0]["type"] = "not_registered_here";
  f.metadata["model"] = model.dump();
  write_safetensors(path, tensors, f.metadata);
  const std::string e = error_of([&] { load_model(path, cpu_device()); });
  EXPECT_NE(e.find("checkpoint '" + path + "'"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown layer type 'not_registered_here'"), std::string::npos) << e;
  std::remove(path.c_str());
}

// An error raised below a layer (a device op's dtype check) names the layer
// of the model pass it happened in.
TEST(CppApi, DeviceErrorsInAPassNameTheLayer) {
  NeuralNetwork net = small_cnn();  // float32
  const Tensor x64 = images(2, 5).to(DType::F64);
  const std::string e = error_of([&] { net.forward(x64, Mode::Eval); });
  EXPECT_EQ(e.rfind("layer 'conv' (conv2d): ", 0), 0u) << e;
  EXPECT_NE(e.find("float64"), std::string::npos) << e;
}

TEST(CppApi, BuilderErrorsNameTheLayer) {
  GraphBuilder one({8}), two({8});
  auto h = one.dense("h", one.input(), DenseOptions(4));
  EXPECT_NE(error_of([&] { two.dense("g", h, DenseOptions(4)); }).find("another GraphBuilder"), std::string::npos);
  EXPECT_NE(error_of([&] { one.dense("h", h, DenseOptions(4)); }).find("two layers named 'h'"), std::string::npos);
  // '.' joins layer and parameter names ("h.W"), so a layer name cannot hold one; a network
  // made of layers directly is checked the same way.
  EXPECT_NE(error_of([&] { one.dense("fc.1", h, DenseOptions(4)); })
                .find("GraphBuilder: layer 'fc.1' (fully_connected): the name 'fc.1' contains '.'"),
            std::string::npos);
  std::vector<std::unique_ptr<Layer>> dotted;
  dotted.push_back(std::make_unique<FullyConnected>("fc.1", 2));
  EXPECT_NE(error_of([&] { NeuralNetwork(std::move(dotted), make_loss("l2")); })
                .find("layer 'fc.1' (fully_connected): the name 'fc.1' contains '.'"),
            std::string::npos);
  auto out = one.dense("out", h, DenseOptions(2));
  EXPECT_NE(error_of([&] { one.build(h, make_loss("l2"), cpu_device()); }).find("last layer"), std::string::npos);
  NeuralNetwork net = one.build(out, make_loss("l2"), cpu_device());
  EXPECT_EQ(net.config().at("layers").size(), 2u);
  EXPECT_FALSE(net.config().at("layers")[1].contains("inputs"));  // a chain is written as a chain
}

}  // namespace
}  // namespace janus
