// Golden tests: every layer, activation, loss and optimizer of Janus against
// values computed by PyTorch (tests/golden/generate.py, float64, fixed seeds;
// see tests/golden/README.md). The JSON files are checked in: no Python is
// needed to run these tests.
//
// Each family runs on every backend configuration:
//   cpu / float64, cpu / float32, and cuda / float32 when a CUDA device exists
//   (skipped otherwise).
// The layer is built with layer.build(shape, device, dtype) and its parameters
// are overwritten with the golden values; forward and backward(dY) are then
// compared with the expected outputs and gradients.
//
// Tolerances (an element passes when |a - e| <= rel * (|e| + max|E|), where E
// is the whole expected tensor, so that tiny entries produced by cancellation
// are judged on the scale of the tensor rather than on their own):
// - float64: rel = 1e-9. The inputs are exact and both sides compute in double;
//   they differ only in summation order, which over the <= ~100-term sums here
//   costs at most ~100 * 2^-53 ~ 1e-14 of the summands' magnitude. 1e-9 leaves
//   five orders of margin and still catches any wrong formula or index.
// - float32: rel = 1e-4. The golden inputs are rounded to float32 (relative
//   error 2^-24 ~ 6e-8) and every operation then rounds again; a sum of K
//   terms is off by up to ~K * 6e-8 of its summands' magnitude (K <= ~100
//   here: conv windows 25-27 terms, filter gradients over N*OH*OW <= ~60
//   positions, BatchNorm over <= 24 rows), i.e. <= ~1e-5 of the tensor's
//   scale in the worst case and ~1e-6 typically. 1e-4 keeps a 10x margin over
//   that bound; a real bug (a wrong index, a missing term) moves results by
//   far more than 1e-4 of the tensor's scale. The generator guarantees that
//   float32 rounding cannot flip a discrete decision: ReLU pre-activations
//   are at least 1e-3 away from zero and max-pool winners lead the runner-up
//   by more than 1e-3 unless they are exact ties (which survive rounding).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "janus/janus.hpp"

#ifndef JANUS_GOLDEN_DIR
#error "JANUS_GOLDEN_DIR must point at tests/golden/data"
#endif

namespace {

using janus::DType;
using janus::Shape;
using janus::Tensor;
using json = nlohmann::json;

// ---- backend configurations -------------------------------------------------
struct Backend {
  std::string device;  // "cpu" or "cuda"
  DType dtype;
};

// Readable names in gtest's failure lines ("cpu/float32").
void PrintTo(const Backend& b, std::ostream* os) { *os << b.device << "/" << janus::dtype_name(b.dtype); }

std::string backend_name(const testing::TestParamInfo<Backend>& info) {
  return info.param.device + "_" + janus::dtype_name(info.param.dtype);
}

// The CUDA cases exist only in builds with a CUDA backend (ON or SIM): a
// CPU-only build registers none rather than a set of tests that always skip.
const std::vector<Backend> kBackends = {{"cpu", DType::F64}, {"cpu", DType::F32},
#ifdef JANUS_WITH_CUDA
                                        {"cuda", DType::F32},
#endif
};

double tolerance(DType dtype) { return dtype == DType::F64 ? 1e-9 : 1e-4; }

// ---- golden files -----------------------------------------------------------
const json& golden(const std::string& file) {
  static std::map<std::string, json> cache;
  auto it = cache.find(file);
  if (it != cache.end()) return it->second;
  // JANUS_GOLDEN_DIR in the environment overrides the built-in directory
  // (used to check that corrupted golden data makes the tests fail).
  const char* env = std::getenv("JANUS_GOLDEN_DIR");
  const std::string path = std::string(env && *env ? env : JANUS_GOLDEN_DIR) + "/" + file;
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open golden file " + path + " (run tests/golden/generate.py)");
  json j = json::parse(in);
  if (!j.contains("cases") || !j.at("cases").is_array() || j.at("cases").empty())
    throw std::runtime_error("golden file " + path + " has no cases");
  return cache.emplace(file, std::move(j)).first->second;
}

Shape shape_of(const json& t) { return Shape(t.at("shape").get<std::vector<int64_t>>()); }
std::vector<double> values_of(const json& t) { return t.at("data").get<std::vector<double>>(); }

Tensor make(const json& t, janus::Device& dev, DType dtype) {
  const Shape s = shape_of(t);
  const std::vector<double> v = values_of(t);
  if (static_cast<int64_t>(v.size()) != s.numel()) throw std::runtime_error("golden tensor: data/shape mismatch");
  return Tensor::from_host(v, s, dev, dtype);
}

// Overwrites a tensor that already exists (a parameter or buffer) with golden values.
void assign(Tensor& dst, const json& t) {
  ASSERT_TRUE(dst.defined());
  ASSERT_EQ(dst.numel(), shape_of(t).numel()) << "golden shape " << shape_of(t).str() << " vs " << dst.shape().str();
  dst.copy_from(Tensor::from_host(values_of(t), dst.shape(), janus::cpu_device(), dst.dtype()));
}

// ---- comparison -------------------------------------------------------------
void expect_close(const std::vector<double>& actual, const std::vector<double>& expected, double rel,
                  const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what << ": element count";
  double scale = 0.0;
  for (double e : expected) scale = std::max(scale, std::fabs(e));
  int bad = 0;
  double worst = 0.0;
  size_t worst_i = 0;
  std::ostringstream first;
  for (size_t i = 0; i < expected.size(); ++i) {
    const double err = std::fabs(actual[i] - expected[i]);
    const double tol = rel * (std::fabs(expected[i]) + scale) + 1e-300;
    if (!(err <= tol)) {  // also catches NaN
      if (bad < 5)
        first << "\n  [" << i << "] got " << actual[i] << " expected " << expected[i] << " (|diff| " << err
              << ", tol " << tol << ")";
      ++bad;
    }
    if (!(err / (scale + 1e-300) <= worst)) {
      worst = err / (scale + 1e-300);
      worst_i = i;
    }
  }
  // JANUS_GOLDEN_REPORT=1 prints how much of the tolerance each comparison used.
  if (std::getenv("JANUS_GOLDEN_REPORT")) std::printf("%s: worst |diff|/scale = %.3g (%.3g of the tolerance)\n", what.c_str(), worst, worst / rel);
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << expected.size() << " elements out of tolerance (rel "
                    << rel << ", tensor scale " << scale << "), worst |diff|/scale " << worst << " at [" << worst_i
                    << "]" << first.str();
}

void expect_tensor(const Tensor& actual, const json& expected, DType dtype, const std::string& what) {
  ASSERT_TRUE(actual.defined()) << what << ": undefined tensor";
  const Shape s = shape_of(expected);
  // BatchNorm gamma/beta are (C); all other shapes must match exactly.
  ASSERT_EQ(actual.numel(), s.numel()) << what << ": got shape " << actual.shape().str() << ", expected " << s.str();
  if (actual.rank() == s.rank()) {
    EXPECT_EQ(actual.shape(), s) << what;
  }
  expect_close(actual.to_host(), values_of(expected), tolerance(dtype), what);
}

void expect_scalar(double actual, double expected, DType dtype, const std::string& what) {
  expect_close({actual}, {expected}, tolerance(dtype), what);
}

// ---- fixture ----------------------------------------------------------------
class Golden : public testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    const Backend& b = GetParam();
    if (b.device == "cuda" && janus::cuda_device_count() == 0)
      GTEST_SKIP() << "no CUDA device: " << janus::cuda_unavailable_reason();  // fails under JANUS_REQUIRE_CUDA
    dev_ = &janus::get_device(b.device);
    dtype_ = b.dtype;
  }
  const json& cases(const std::string& file) { return golden(file).at("cases"); }
  Tensor make(const json& t) const { return ::make(t, *dev_, dtype_); }
  void check(const Tensor& actual, const json& expected, const std::string& what) const {
    expect_tensor(actual, expected, dtype_, what);
  }

  void check_network(const json& c);

  janus::Device* dev_ = nullptr;
  DType dtype_ = DType::F32;
};

// Parameter by name ("W", "b", "gamma", "beta").
janus::Parameter& param(janus::Layer& layer, const std::string& name) {
  for (janus::Parameter* p : layer.parameters())
    if (p->name == name) return *p;
  throw std::runtime_error("layer " + layer.name() + " has no parameter " + name);
}

// A whole network case ({"layers", "loss", "x", "target", "yhat", "J",
// "params"}): forward, backward(target) and predict against the stored values.
// Layers whose evaluation mode differs from training (BatchNorm) have no place here.
void Golden::check_network(const json& c) {
  SCOPED_TRACE(c.at("name").get<std::string>());
  auto net = janus::NeuralNetwork::from_config({{"layers", c.at("layers")}, {"loss", c.at("loss")}, {"seed", 0}});
  const Tensor x = make(c.at("x"));
  net.build(x.shape(), *dev_, dtype_);
  std::map<std::string, janus::Parameter*> by_name;
  for (const auto& np : net.named_parameters()) by_name[np.name] = np.parameter;
  ASSERT_EQ(by_name.size(), c.at("params").size());
  for (const json& p : c.at("params")) {
    ASSERT_TRUE(by_name.count(p.at("name"))) << p.at("name");
    assign(by_name.at(p.at("name"))->value, p.at("value"));
  }
  const Tensor yhat = net.forward(x, true);
  check(yhat, c.at("yhat"), "Yhat");
  const double j = net.backward(make(c.at("target")), yhat);
  expect_scalar(j, c.at("J"), dtype_, "loss");
  for (const json& p : c.at("params")) check(by_name.at(p.at("name"))->grad, p.at("grad"), p.at("name").get<std::string>() + " grad");
  // predict() (evaluation mode) gives the same output and loss for these layers.
  const auto [yhat_eval, j_eval] = net.predict(x, make(c.at("target")));
  check(yhat_eval, c.at("yhat"), "Yhat (predict)");
  expect_scalar(j_eval, c.at("J"), dtype_, "loss (predict)");
}

// ---- activations --------------------------------------------------------------
TEST_P(Golden, Activations) {
  for (const json& c : cases("activations.json")) {
    SCOPED_TRACE(c.at("name").get<std::string>());
    json cfg = {{"type", "activation"}, {"activation", c.at("activation")}};
    if (c.contains("negative_slope")) cfg["negative_slope"] = c.at("negative_slope");
    auto layer = janus::make_layer(cfg, 0);
    const Tensor z = make(c.at("z"));
    layer->build(z.shape(), *dev_, dtype_);
    const Tensor y = layer->forward(z, true);
    check(y, c.at("y"), "Y");
    check(layer->backward(make(c.at("dy"))), c.at("dz"), "dZ");
  }
}

// ---- fully connected ----------------------------------------------------------
TEST_P(Golden, FullyConnected) {
  for (const json& c : cases("fully_connected.json")) {
    SCOPED_TRACE(c.at("name").get<std::string>());
    const Tensor x = make(c.at("x"));
    const int64_t n_out = shape_of(c.at("W"))[1];
    const bool bias = c.value("bias", true);  // the first cases predate "bias": false
    auto fc = janus::make_layer({{"type", "fully_connected"}, {"name", "fc"}, {"n_out", n_out},
                                 {"activation", c.at("activation")}, {"bias", bias}}, 0);
    const Shape out = fc->build(x.shape(), *dev_, dtype_);
    ASSERT_EQ(out, shape_of(c.at("y")));
    ASSERT_EQ(fc->parameters().size(), bias ? 2u : 1u);
    assign(param(*fc, "W").value, c.at("W"));
    if (bias) assign(param(*fc, "b").value, c.at("b"));
    check(fc->forward(x, true), c.at("y"), "Y");
    const Tensor dx = fc->backward(make(c.at("dy")));
    check(dx, c.at("dx"), "dX");
    check(param(*fc, "W").grad, c.at("dW"), "dW");
    if (bias) check(param(*fc, "b").grad, c.at("db"), "db");
  }
}

// ---- conv2d -------------------------------------------------------------------
TEST_P(Golden, Conv2D) {
  for (const json& c : cases("conv2d.json")) {
    SCOPED_TRACE(c.at("name").get<std::string>());
    const json cfg = {{"type", "conv2d"}, {"name", "conv"},          {"n_out", c.at("n_out")},
                      {"kernel", c.at("kernel")}, {"stride", c.at("stride")}, {"pad", c.at("pad")},
                      {"bias", c.at("bias")},     {"activation", c.at("activation")}};
    auto layer = janus::make_layer(cfg, 0);
    const Tensor x = make(c.at("x"));
    ASSERT_EQ(layer->build(x.shape(), *dev_, dtype_), shape_of(c.at("y")));
    const bool bias = c.at("bias").get<bool>();
    ASSERT_EQ(layer->parameters().size(), bias ? 2u : 1u);
    assign(param(*layer, "W").value, c.at("W"));
    if (bias) assign(param(*layer, "b").value, c.at("b"));
    check(layer->forward(x, true), c.at("y"), "Y");
    check(layer->backward(make(c.at("dy"))), c.at("dx"), "dX");
    check(param(*layer, "W").grad, c.at("dW"), "dW");
    if (bias) check(param(*layer, "b").grad, c.at("db"), "db");
  }
}

// ---- pool2d -------------------------------------------------------------------
// Expected values come from the generator's loop reference ("first maximum in
// row-major window order" on ties), which it checked against torch.
TEST_P(Golden, Pool2D) {
  for (const json& c : cases("pool2d.json")) {
    SCOPED_TRACE(c.at("name").get<std::string>());
    const json cfg = {{"type", "pool2d"}, {"name", "pool"},         {"mode", c.at("mode")},
                      {"kernel", c.at("kernel")}, {"stride", c.at("stride")}, {"pad", c.at("pad")}};
    auto layer = janus::make_layer(cfg, 0);
    const Tensor x = make(c.at("x"));
    ASSERT_EQ(layer->build(x.shape(), *dev_, dtype_), shape_of(c.at("y")));
    check(layer->forward(x, true), c.at("y"), "Y");
    check(layer->backward(make(c.at("dy"))), c.at("dx"), "dX");
  }
}

// ---- batchnorm ----------------------------------------------------------------
TEST_P(Golden, BatchNorm) {
  for (const json& c : cases("batchnorm.json")) {
    SCOPED_TRACE(c.at("name").get<std::string>());
    janus::BatchNorm bn("bn", c.at("momentum").get<double>(), c.at("eps").get<double>());
    const Tensor x = make(c.at("x"));
    bn.build(x.shape(), *dev_, dtype_);
    assign(param(bn, "gamma").value, c.at("gamma"));
    assign(param(bn, "beta").value, c.at("beta"));
    Tensor* running_mean = nullptr;
    Tensor* running_var = nullptr;
    for (auto& [name, t] : bn.buffers()) {
      if (name == "running_mean") running_mean = t;
      if (name == "running_var") running_var = t;
    }
    ASSERT_TRUE(running_mean && running_var);
    assign(*running_mean, c.at("running_mean"));
    assign(*running_var, c.at("running_var"));
    const bool training = c.at("training").get<bool>();
    check(bn.forward(x, training), c.at("y"), "Y");
    check(*running_mean, c.at("running_mean_after"), "running_mean");
    check(*running_var, c.at("running_var_after"), "running_var");
    if (training) {
      check(bn.backward(make(c.at("dy"))), c.at("dx"), "dX");
      check(param(bn, "gamma").grad, c.at("dgamma"), "dgamma");
      check(param(bn, "beta").grad, c.at("dbeta"), "dbeta");
      // Evaluation mode then uses the running statistics this step updated.
      check(bn.forward(x, false), c.at("y_eval_after"), "Y (eval after the training step)");
    }
  }
}

// ---- flatten ------------------------------------------------------------------
TEST_P(Golden, Flatten) {
  for (const json& c : cases("flatten.json")) {
    SCOPED_TRACE(c.at("name").get<std::string>());
    janus::Flatten flat("flat");
    const Tensor x = make(c.at("x"));
    flat.build(x.shape(), *dev_, dtype_);
    check(flat.forward(x, true), c.at("y"), "Y");
    check(flat.backward(make(c.at("dy"))), c.at("dx"), "dX");
  }
}

// ---- losses -------------------------------------------------------------------
TEST_P(Golden, Losses) {
  for (const json& c : cases("losses.json")) {
    const std::string name = c.at("name");
    SCOPED_TRACE(name);
    const std::string loss = c.at("loss");
    const Tensor y = make(c.at("y"));
    if (loss == "softmax_cross_entropy") {
      const janus::CrossEntropy ce;
      const Tensor z = make(c.at("z"));
      Tensor dz;
      expect_scalar(ce.forward_backward_from_logits(z, y, &dz), c.at("J"), dtype_, "J");
      check(dz, c.at("dz"), "dZ");
      expect_scalar(ce.forward_backward_from_logits(z, y, nullptr), c.at("J"), dtype_, "J (no gradient)");
    } else {
      const auto l = janus::make_loss(loss);
      const Tensor yhat = make(c.at("yhat"));
      expect_scalar(l->forward(yhat, y), c.at("J"), dtype_, "J");
      check(l->backward(yhat, y), c.at("dyhat"), "dJ/dYhat");
    }
  }
}

// ---- optimizers -----------------------------------------------------------------
TEST_P(Golden, Optimizers) {
  for (const json& c : cases("optimizers.json")) {
    SCOPED_TRACE(c.at("name").get<std::string>());
    auto opt = janus::make_optimizer(c.at("config"));
    janus::Parameter w{"W", make(c.at("W")), {}, true};
    janus::Parameter b{"b", make(c.at("b")), {}, false};  // biases never decay in Janus
    const std::vector<janus::NamedParameter> params = {{"layer.W", &w}, {"layer.b", &b}};
    const double lr = c.at("lr");
    const json& grads = c.at("grads");
    const json& after = c.at("after");
    ASSERT_EQ(grads.size(), after.size());
    for (size_t s = 0; s < grads.size(); ++s) {
      SCOPED_TRACE("step " + std::to_string(s + 1));
      w.grad = make(grads[s].at("W"));
      b.grad = make(grads[s].at("b"));
      opt->step(params, lr);
      check(w.value, after[s].at("W"), "W");
      check(b.value, after[s].at("b"), "b");
    }
    EXPECT_EQ(opt->steps(), static_cast<int64_t>(grads.size()));
  }
}

// ---- whole network ----------------------------------------------------------------
TEST_P(Golden, Network) {
  for (const json& c : cases("network.json")) check_network(c);
}

// ---- graph layers (add, concat, global_avg_pool) and a graph network -----------------
TEST_P(Golden, GraphLayers) {
  for (const json& c : cases("graph.json")) {
    if (!c.contains("xs")) continue;  // a network case
    SCOPED_TRACE(c.at("name").get<std::string>());
    auto layer = janus::make_layer({{"type", c.at("type")}}, 0);
    std::vector<Tensor> xs;
    for (const json& x : c.at("xs")) xs.push_back(make(x));
    check(layer->graph_forward(xs, true), c.at("y"), "Y");
    const std::vector<Tensor> dxs = layer->graph_backward(make(c.at("dy")));
    ASSERT_EQ(dxs.size(), c.at("dxs").size());
    for (size_t k = 0; k < dxs.size(); ++k) check(dxs[k], c.at("dxs").at(k), "dX" + std::to_string(k));
  }
}

TEST_P(Golden, GraphNetwork) {
  for (const json& c : cases("graph.json"))
    if (c.contains("layers")) check_network(c);
}

INSTANTIATE_TEST_SUITE_P(Backends, Golden, testing::ValuesIn(kBackends), backend_name);

}  // namespace
