// The public API stands on its own (issue 13, item 4: "nlohmann/json leaks
// through every public header"): this translation unit includes
// <janus/janus.hpp> and GoogleTest only, and does not compile if anything
// they include brings in nlohmann/json. With that, it does what a downstream
// program does in C++: a model from GraphBuilder with a layer type of its
// own (registered, its config a janus::Json), an optimizer bound to the
// model, a C++ schedule, the data API (Dataset, DataLoader), a few training
// steps, the config round trip, a checkpoint round trip, and a run config
// read from text. Also the value model of janus::Json itself.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

#include <janus/janus.hpp>

#include "error_message.hpp"  // tests/: error_of

#ifdef NLOHMANN_JSON_VERSION_MAJOR
#error "<janus/janus.hpp> includes nlohmann/json: public headers must pass configs as janus::Json (janus/json.hpp)"
#endif

namespace {

using janus::test::error_of;
using janus::Json;

// A user's layer: y = factor * x, with a config of its own.
class Doubler : public janus::Layer {
 public:
  explicit Doubler(std::string name) : Layer(std::move(name)) {}
  std::string type() const override { return "standalone_doubler"; }
  janus::Shape output_shape(const janus::Shape& in) const override { return in; }
  janus::Tensor forward(const janus::Tensor& x, bool) override {
    janus::Tensor y = x.clone();
    y.device().axpby(1.0, x, 1.0, y);
    return y;
  }
  janus::Tensor backward(const janus::Tensor& dy) override {
    janus::Tensor dx = dy.clone();
    dx.device().axpby(1.0, dy, 1.0, dx);
    return dx;
  }
  Json config() const override { return {{"type", type()}, {"name", name()}}; }
};

void register_doubler() {
  if (janus::is_registered_layer_type("standalone_doubler")) return;
  janus::register_layer_type("standalone_doubler", [](const Json& cfg, const std::string& name) {
    for (const std::string& key : cfg.keys())
      JANUS_CHECK(key == "type" || key == "name", "layer '", name, "': unknown option '", key, "'");
    return std::make_unique<Doubler>(name);
  });
}

// Two Gaussian blobs in 4 dimensions, 128 points, labels 0 and 1.
janus::Dataset blobs() {
  janus::Dataset d;
  d.sample_shape = janus::Shape{4};
  d.num_classes = 2;
  d.source = "two blobs";
  janus::Rng rng(3);
  for (int i = 0; i < 128; ++i) {
    const int label = i % 2;
    for (int k = 0; k < 4; ++k) d.x.push_back(static_cast<float>((label ? 1.0 : -1.0) + 0.5 * rng.normal()));
    d.labels.push_back(label);
  }
  return d;
}

janus::NeuralNetwork small_net() {
  register_doubler();
  janus::GraphBuilder b({4});
  auto h = b.dense("fc1", b.input(), janus::DenseOptions(8).activation(janus::ActivationKind::ReLU));
  h = b.layer(std::make_unique<Doubler>("twice"), {h});
  auto logits = b.dense("fc2", h, janus::DenseOptions(2));
  return b.build(logits, janus::make_loss("cross_entropy"), janus::cpu_device(), /*seed=*/5);
}

TEST(PublicApiStandalone, BuildsTrainsAndRoundTripsWithoutNlohmannJson) {
  janus::NeuralNetwork net = small_net();
  janus::Dataset data = blobs();
  janus::LoaderOptions lo;
  lo.batch_size = 32;
  lo.seed = 1;
  janus::DataLoader loader(data, lo);
  janus::SGD sgd(net.named_parameters(), /*momentum=*/0.9);
  const auto schedule = janus::cosine_schedule(0.1, /*total_steps=*/40);
  janus::Batch batch;
  double first_loss = 0, loss = 0;
  for (int step = 0; step < 40; ++step) {
    if (!loader.next(batch)) {
      loader.start_epoch(loader.epoch() + 1);
      ASSERT_TRUE(loader.next(batch));
    }
    const auto x = janus::Tensor::from_host(batch.x, batch.x_shape, janus::cpu_device());
    const auto y = janus::Tensor::from_host(batch.y_onehot, janus::Shape{batch.size, 2}, janus::cpu_device());
    net.set_step(static_cast<uint64_t>(step));
    const janus::Tensor out = net.forward(x, janus::Mode::Train);
    loss = net.backward(y, out);
    if (step == 0) first_loss = loss;
    sgd.step(schedule->lr(step));
  }
  ASSERT_TRUE(std::isfinite(loss));
  EXPECT_LT(loss, 0.5 * first_loss) << "first " << first_loss << ", last " << loss;

  // The config is a Json: it rebuilds the model, and its text parses back to it.
  const Json cfg = net.config();
  EXPECT_EQ(cfg.at("layers").size(), 3u);
  EXPECT_EQ(cfg.at("layers").at(1).at("type").get<std::string>(), "standalone_doubler");
  EXPECT_EQ(cfg.at("seed").get<uint64_t>(), 5u);
  EXPECT_EQ(janus::NeuralNetwork::from_config(cfg).config(), cfg);
  EXPECT_EQ(Json::parse(cfg.dump(2)), cfg);
  EXPECT_EQ(sgd.config().at("momentum").get<double>(), 0.9);
  EXPECT_EQ(janus::make_optimizer(sgd.config())->config(), sgd.config());
  EXPECT_EQ(janus::make_scheduler(schedule->config())->lr(7), schedule->lr(7));

  // Checkpoint round trip through the registered type.
  const std::string path = testing::TempDir() + "/janus_standalone_" + std::to_string(getpid()) + ".safetensors";
  janus::save_checkpoint(path, net, &sgd);
  janus::NeuralNetwork loaded = janus::load_model(path, janus::cpu_device());
  std::remove(path.c_str());
  const auto x = janus::Tensor::from_host(batch.x, batch.x_shape, janus::cpu_device());
  EXPECT_EQ(loaded.forward(x, janus::Mode::Eval).to_host_f32(), net.forward(x, janus::Mode::Eval).to_host_f32());
  EXPECT_EQ(loaded.config(), cfg);
}

TEST(PublicApiStandalone, RunConfigFromText) {
  const Json run = Json::parse(R"({"name": "blobs", "dataset": {"name": "iris"},
      "model": {"layers": [{"type": "dense", "n_out": 3}]}, "schedule": {"type": "constant", "lr": 0.05}})");
  const janus::RunConfig c = janus::parse_run_config(run, "run.json");
  EXPECT_EQ(c.model.at("loss").get<std::string>(), "cross_entropy");  // the parser filled in the defaults
  EXPECT_EQ(c.schedule.at("lr").get<double>(), 0.05);
  EXPECT_EQ(janus::parse_run_config(c.to_json(), "resolved").to_json(), c.to_json());
  Json bad = run;
  bad.set("epochs", 0);
  EXPECT_NE(error_of([&] { janus::parse_run_config(bad, "run.json"); }).find("run.json"), std::string::npos);
}

TEST(PublicApiStandalone, JsonValues) {
  // A braced list of [key, value] pairs is an object (keys sorted), any other an array.
  const Json cfg = {{"type", "conv2d"}, {"n_out", 8}, {"kernel", {3, 5}}, {"bias", false}, {"eps", 0.5}};
  EXPECT_TRUE(cfg.is_object());
  EXPECT_EQ(cfg.dump(), R"({"bias":false,"eps":0.5,"kernel":[3,5],"n_out":8,"type":"conv2d"})");
  EXPECT_EQ(cfg.keys(), (std::vector<std::string>{"bias", "eps", "kernel", "n_out", "type"}));
  EXPECT_TRUE(cfg.at("kernel").is_array());
  EXPECT_EQ(cfg.at("kernel")[1].get<int>(), 5);
  EXPECT_TRUE(Json({1, "two", nullptr}).is_array());
  EXPECT_TRUE(Json::array({{"a", 1}}).at(0).is_array());  // forced: an array of one pair
  EXPECT_EQ(Json(std::vector<int>{1, 2}), Json({1, 2}));
  EXPECT_EQ(Json(1), Json(1.0));  // numbers compare by value
  EXPECT_NE(Json("1"), Json(1));
  EXPECT_TRUE(Json().is_null());
  EXPECT_EQ(Json().size(), 0u);

  Json edited = cfg;
  edited.set("n_out", 16).set("groups", 2);
  EXPECT_EQ(edited.at("n_out").get<int64_t>(), 16);
  EXPECT_EQ(cfg.at("n_out").get<int64_t>(), 8);  // a copy is deep
  EXPECT_TRUE(edited.erase("groups"));
  EXPECT_FALSE(edited.contains("groups"));
  Json list;
  list.push_back(1).push_back("x");
  EXPECT_EQ(list.dump(), R"([1,"x"])");
  // Pretty-printing is nlohmann/json's, as configs and run directories have always been written.
  EXPECT_EQ(Json({{"a", {1}}}).dump(2), "{\n  \"a\": [\n    1\n  ]\n}");

  // Errors are janus::Error and say what was wrong.
  EXPECT_NE(error_of([&] { cfg.at("stride"); }).find("'stride'"), std::string::npos);
  EXPECT_NE(error_of([&] { cfg.at("kernel").at(2); }).find("element 2"), std::string::npos);
  EXPECT_NE(error_of([&] { cfg.at("eps").get<int>(); }).find("0.5"), std::string::npos);          // no truncation
  EXPECT_NE(error_of([] { Json(int64_t(1) << 40).get<int>(); }).find("integer in"), std::string::npos);  // range
  EXPECT_NE(error_of([] { Json(-1).get<unsigned>(); }).find("-1"), std::string::npos);
  EXPECT_NE(error_of([&] { cfg.at("type").get<double>(); }).find("conv2d"), std::string::npos);
  EXPECT_NE(error_of([] { Json::parse("{\"a\": }"); }).find("invalid JSON"), std::string::npos);
  EXPECT_NE(error_of([] { Json::object({1, 2}); }).find("pair"), std::string::npos);
  EXPECT_NE(error_of([] {
              Json n = 3;
              n.set("a", 1);
            }).find("not an object"),
            std::string::npos);
  // A layer config given as a braced Json reads as a JSON config does.
  EXPECT_NE(error_of([] { janus::make_layer({{"type", "dense"}, {"n_out", 2.5}}, 0); }).find("n_out"),
            std::string::npos);
}

}  // namespace
