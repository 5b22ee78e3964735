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
#include "janus/nlohmann_json.hpp"

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
  const Tensor yhat = net.forward(x, janus::Mode::Train);
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
    json cfg = {{"type", "conv2d"}, {"name", "conv"},          {"n_out", c.at("n_out")},
                      {"kernel", c.at("kernel")}, {"stride", c.at("stride")}, {"pad", c.at("pad")},
                      {"bias", c.at("bias")},     {"activation", c.at("activation")}};
    if (c.contains("groups")) cfg["groups"] = c.at("groups");  // grouped and depthwise cases
    auto layer = janus::make_layer(cfg, 0);
    const Tensor x = make(c.at("x"));
    ASSERT_EQ(layer->build(x.shape(), *dev_, dtype_), shape_of(c.at("y")));
    ASSERT_EQ(param(*layer, "W").value.shape(), shape_of(c.at("W")));  // (KH, KW, C/groups, F)
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
    janus::Parameter b{"b", make(c.at("b")), {}, false};  // a bias: not a weight, so not decayed by default
    // Per-parameter options as in a layer's "parameters" (parameter_options.hpp); torch: one group each.
    const json parameter_options = c.value("parameter_options", json::object());
    for (auto& [name, o] : parameter_options.items()) {
      janus::ParameterOptions& options = (name == "W" ? w : b).options;
      options.trainable = o.value("trainable", true);
      options.lr_mult = o.value("lr_mult", 1.0);
      if (o.contains("decay_mult")) options.decay_mult = o.at("decay_mult").get<double>();
    }
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

// ---- bf16 against PyTorch's CPU autocast (bf16_autocast.json, generate_bf16.py) ----
//
// Janus in bf16 (precision.hpp) and torch.autocast("cpu", bfloat16) round the
// same inputs (x, W, dY) to bf16 the same way (to nearest, ties to even), so
// every product is the same exact value in both. They differ in how they sum
// and round, which bounds the difference of each output o = sum of n
// products (+ a bias b) by Higham's inner-product bound (Accuracy and
// Stability of Numerical Algorithms, eq. 3.5), gamma_n(u) = n u / (1 - n u):
//   torch: |T - o*|  <= gamma_{n+1}(u_b) (S + (1 + u_b) B)   any order, summed in
//          bf16 (PyTorch 1.13 does on CPUs without AVX-512) or float32 and
//          rounded to bf16 (u_b = 2^-8), with its bias rounded to bf16;
//   Janus: |J - o**| <= gamma_{n+1}(u_f) (S + B)   summed in float32 (u_f = 2^-24),
//          float32 bias;
//   and |o* - o**| <= u_b R, R the magnitudes Janus keeps in float32 that
//   torch rounds (the bias; dY itself in the bias gradient).
// S = sum |products|, from the float64 reference device on the rounded inputs'
// absolute values. Nothing here is tuned: the bound follows from u_b, u_f, n.
namespace bf16_golden {

constexpr double kUb = 1.0 / 256, kUf = 1.0 / 16777216;
double gamma(double u, int64_t n) { return n * u / (1 - n * u); }

// The golden tensor's values rounded to float then bf16, absolute, as an F64
// tensor on the reference device (the operands of S).
Tensor abs_rounded(const json& t) {
  std::vector<double> v = values_of(t);
  for (double& x : v) x = std::fabs(janus::round_to_bf16(static_cast<float>(x)));
  return Tensor::from_host(v, shape_of(t), janus::reference_cpu_device(), DType::F64);
}

// Checks |janus - torch| <= the bound above, element by element; B and R are
// per-element (empty: 0).
void expect_within(const Tensor& janus_out, const json& torch, const std::vector<double>& S,
                   const std::vector<double>& B, const std::vector<double>& R, int64_t n,
                   const std::string& what) {
  const std::vector<double> got = janus_out.to_host(), want = values_of(torch);
  ASSERT_EQ(got.size(), want.size()) << what;
  ASSERT_EQ(S.size(), want.size()) << what;
  ASSERT_LT((n + 1) * kUb, 1.0) << what << ": reduction too long for a bf16 bound";
  int bad = 0;
  double worst = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double b = B.empty() ? 0 : B[i], r = R.empty() ? 0 : R[i];
    const double bound = gamma(kUb, n + 1) * (S[i] + (1 + kUb) * b) + gamma(kUf, n + 1) * (S[i] + b) +
                         kUb * r + 1e-30;
    const double ratio = std::fabs(got[i] - want[i]) / bound;
    worst = std::max(worst, ratio);
    if (!(ratio <= 1)) ++bad;
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " elements out of the bound, worst |diff|/bound " << worst;
  if (std::getenv("JANUS_GOLDEN_REPORT")) std::printf("%s: worst |diff|/bound = %.3g\n", what.c_str(), worst);
}

// |b| (1, F) repeated over the rows of an (rows, F) output.
std::vector<double> bias_per_output(const json& b, int64_t rows) {
  const std::vector<double> v = values_of(b);
  std::vector<double> out;
  for (int64_t r = 0; r < rows; ++r)
    for (double x : v) out.push_back(std::fabs(x));
  return out;
}

// Column sums of |dY| viewed as (rows, F): the magnitudes of the bias gradient.
std::vector<double> abs_column_sums(const json& dy) {
  Tensor a = abs_rounded(dy);  // (rounding changes |dY| by at most u_b: covered by (1 + u_b) B)
  const int64_t F = shape_of(dy).dims().back();
  Tensor out = Tensor::zeros(Shape{F}, janus::reference_cpu_device(), DType::F64);
  janus::reference_cpu_device().sum_rows(a, 0.0, out);
  return out.to_host();
}

const json& cases() { return golden("bf16_autocast.json").at("cases"); }

}  // namespace bf16_golden

TEST(GoldenBf16, Conv2DLayer) {
  using namespace bf16_golden;
  janus::Device& ref = janus::reference_cpu_device();
  int checked = 0;
  for (const json& c : cases()) {
    if (!c.contains("kernel") || c.contains("layers")) continue;
    SCOPED_TRACE(c.at("name").get<std::string>());
    const janus::PrecisionScope scope(janus::Precision::BF16);
    const int k = c.at("kernel")[0], s = c.at("stride"), pad = c.at("pad");
    auto layer = janus::make_layer({{"type", "conv2d"}, {"name", "conv"}, {"n_out", c.at("n_out")},
                                    {"kernel", c.at("kernel")}, {"stride", s}, {"pad", pad}, {"bias", true},
                                    {"activation", "linear"}}, 0);
    const Tensor x = make(c.at("x"), janus::cpu_device(), DType::F32);
    ASSERT_EQ(layer->build(x.shape(), janus::cpu_device(), DType::F32), shape_of(c.at("y")));
    assign(param(*layer, "W").value, c.at("W"));
    assign(param(*layer, "b").value, c.at("b"));
    const Tensor y = layer->forward(x, true);
    const Tensor dx = layer->backward(make(c.at("dy"), janus::cpu_device(), DType::F32));

    const Shape xs = shape_of(c.at("x")), ys = shape_of(c.at("y"));
    janus::ConvGeometry g;
    g.N = static_cast<int>(xs[0]); g.H = static_cast<int>(xs[1]); g.W = static_cast<int>(xs[2]);
    g.C = static_cast<int>(xs[3]); g.KH = g.KW = k; g.F = c.at("n_out");
    g.stride_h = g.stride_w = s; g.pad_h = g.pad_w = pad;
    g.OH = static_cast<int>(ys[1]); g.OW = static_cast<int>(ys[2]);
    const Tensor ax = abs_rounded(c.at("x")), aw = abs_rounded(c.at("W")), ady = abs_rounded(c.at("dy"));
    Tensor sy = Tensor::empty(ys, ref, DType::F64), sdx = Tensor::empty(xs, ref, DType::F64),
           sdw = Tensor::empty(aw.shape(), ref, DType::F64);
    ref.conv2d_forward(g, ax, aw, Tensor(), sy);
    ref.conv2d_backward_data(g, ady, aw, sdx);
    ref.conv2d_backward_filter(g, ax, ady, sdw);
    const std::vector<double> b = bias_per_output(c.at("b"), ys.numel() / g.F);
    expect_within(y, c.at("y"), sy.to_host(), b, b, int64_t{k} * k * g.C, "Y");
    expect_within(dx, c.at("dx"), sdx.to_host(), {}, {}, int64_t{k} * k * g.F, "dX");
    expect_within(param(*layer, "W").grad, c.at("dW"), sdw.to_host(), {}, {}, int64_t{g.N} * g.OH * g.OW, "dW");
    const std::vector<double> sdb = abs_column_sums(c.at("dy"));
    expect_within(param(*layer, "b").grad, c.at("db"), sdb, sdb, sdb, int64_t{g.N} * g.OH * g.OW, "db");
    ++checked;
  }
  EXPECT_EQ(checked, 2);
}

TEST(GoldenBf16, DenseLayer) {
  using namespace bf16_golden;
  janus::Device& ref = janus::reference_cpu_device();
  int checked = 0;
  for (const json& c : cases()) {
    if (c.contains("kernel") || c.contains("layers")) continue;
    SCOPED_TRACE(c.at("name").get<std::string>());
    const janus::PrecisionScope scope(janus::Precision::BF16);
    const Shape ws = shape_of(c.at("W"));
    const int64_t m = shape_of(c.at("x"))[0], n_in = ws[0], n_out = ws[1];
    janus::FullyConnected fc("fc", n_out, janus::ActivationKind::Linear);
    const Tensor x = make(c.at("x"), janus::cpu_device(), DType::F32);
    fc.build(x.shape(), janus::cpu_device(), DType::F32);
    assign(param(fc, "W").value, c.at("W"));
    assign(param(fc, "b").value, c.at("b"));
    const Tensor y = fc.forward(x, true);
    const Tensor dx = fc.backward(make(c.at("dy"), janus::cpu_device(), DType::F32));

    const Tensor ax = abs_rounded(c.at("x")), aw = abs_rounded(c.at("W")), ady = abs_rounded(c.at("dy"));
    Tensor sy = Tensor::empty(Shape{m, n_out}, ref, DType::F64), sdx = Tensor::empty(Shape{m, n_in}, ref, DType::F64),
           sdw = Tensor::empty(ws, ref, DType::F64);
    ref.gemm(false, false, 1.0, ax, aw, 0.0, sy);
    ref.gemm(false, true, 1.0, ady, aw, 0.0, sdx);
    ref.gemm(true, false, 1.0, ax, ady, 0.0, sdw);
    const std::vector<double> b = bias_per_output(c.at("b"), m);
    expect_within(y, c.at("y"), sy.to_host(), b, b, n_in, "Y");
    expect_within(dx, c.at("dx"), sdx.to_host(), {}, {}, n_out, "dX");
    expect_within(param(fc, "W").grad, c.at("dW"), sdw.to_host(), {}, {}, m, "dW");
    const std::vector<double> sdb = abs_column_sums(c.at("dy"));
    expect_within(param(fc, "b").grad, c.at("db"), sdb, sdb, sdb, m, "db");
    ++checked;
  }
  EXPECT_EQ(checked, 2);
}

// The whole model (conv tanh -> average pool -> flatten -> dense softmax,
// cross-entropy): smooth, so the per-stage errors above propagate to first
// order. Each quantity is checked normwise against the sum, over the bf16
// product stages it depends on, of each stage's relative bound
// (gamma_{n+1}(u_b) + gamma_{n+1}(u_f) + u_b) times the stage's condition
// number kappa = ||(|A||B|)|| / ||AB|| (from the generator; 1 for the
// backward stages it does not measure).
TEST(GoldenBf16, WholeModel) {
  using namespace bf16_golden;
  const json* model = nullptr;
  for (const json& c : cases())
    if (c.contains("layers")) model = &c;
  ASSERT_NE(model, nullptr);
  const json& c = *model;
  const json &kap = c.at("kappa"), &red = c.at("reduction");
  auto stage = [&](const std::string& name, const std::string& kappa_name) {
    const int64_t n = red.at(name);
    const double k = kap.contains(kappa_name) ? std::max(1.0, kap.at(kappa_name).get<double>()) : 1.0;
    return (gamma(kUb, n + 1) + gamma(kUf, n + 1) + kUb) * k;
  };
  const double forward = stage("conv", "conv") + stage("fc", "fc");
  const std::map<std::string, double> eps = {
      {"fc.W", forward + stage("fc_dW", "fc_dW")},
      {"fc.b", forward},
      {"conv.W", forward + stage("fc", "fc_dx") + stage("conv_dW", "")},
      {"conv.b", forward + stage("fc", "fc_dx")}};

  const janus::PrecisionScope scope(janus::Precision::BF16);
  auto net = janus::NeuralNetwork::from_config({{"layers", c.at("layers")}, {"loss", c.at("loss")}, {"seed", 0}});
  const Tensor x = make(c.at("x"), janus::cpu_device(), DType::F32);
  net.build(x.shape(), janus::cpu_device(), DType::F32);
  std::map<std::string, janus::Parameter*> by_name;
  for (const auto& np : net.named_parameters()) by_name[np.name] = np.parameter;
  for (const json& p : c.at("params")) assign(by_name.at(p.at("name"))->value, p.at("value"));
  const Tensor yhat = net.forward(x, janus::Mode::Train);
  const double j = net.backward(make(c.at("target"), janus::cpu_device(), DType::F32), yhat);

  auto normwise = [](const std::vector<double>& got, const std::vector<double>& want, double e, const std::string& what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    double d = 0, n = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      d += (got[i] - want[i]) * (got[i] - want[i]);
      n += want[i] * want[i];
    }
    EXPECT_LE(std::sqrt(d), e * std::sqrt(n)) << what << ": relative difference " << std::sqrt(d / n) << ", bound " << e;
    if (std::getenv("JANUS_GOLDEN_REPORT")) std::printf("%s: relative difference %.3g, bound %.3g\n", what.c_str(), std::sqrt(d / n), e);
  };
  normwise(yhat.to_host(), values_of(c.at("yhat")), forward, "Yhat");
  normwise({j}, {c.at("J").get<double>()}, forward, "loss");
  for (const json& p : c.at("params")) {
    const std::string name = p.at("name");
    normwise(by_name.at(name)->grad.to_host(), values_of(p.at("grad")), eps.at(name), name + " grad");
  }
}

}  // namespace
