// Numerical gradient checks (central differences, float64, CPU) of every
// layer with respect to its input and each of its parameters, of the losses,
// of the fused softmax + cross-entropy, and of a whole small CNN trained
// through NeuralNetwork::backward.
//
// Method. For a layer with output Y we use the scalar objective
//     L(X, params) = sum(G * Y)        with G a fixed random tensor,
// so layer.backward(G) is exactly dL/dX and the parameter gradients it fills
// are dL/dparam. Each element v of the tensor under test is perturbed to v+h
// and v-h (h = 1e-6) and the numerical derivative is (L(v+h) - L(v-h)) / 2h.
//
// Tolerance. For every element we form
//     err = |analytic - numeric| / max(|analytic|, |numeric|, kFloor)
// with kFloor = 0.1 and require err < kTol = 1e-6 everywhere: a relative
// error of 1e-6 for gradients above 0.1, an absolute error of 1e-7 below
// (gradients that are exactly zero, behind a ReLU or at a losing max-pool
// position, included). In float64 the truncation error of the central
// difference is O(h^2) ~ 1e-12; the rounding error of the objective divided
// by 2h dominates: measured up to ~5e-9 absolute for convolutions (L sums a
// few hundred products), i.e. err <= ~5e-8 for correct gradients, a 20x
// margin. Real mistakes (a wrong sign, swapped indices, a missing factor, a
// 1e-4 relative error) give err >= 1e-4. CheckerSensitivity.* proves the
// checker fails on such mistakes.
//
// All helpers live in this file (the one home of the method); every case
// goes through check_gradient().
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "janus/fusion.hpp"
#include "janus/janus.hpp"
#include "janus/nlohmann_json.hpp"

namespace janus {
namespace {

constexpr double kStep = 1e-6;    // h
constexpr double kTol = 1e-6;     // max allowed err
constexpr double kFloor = 0.1;    // denominator floor of err

Device& cpu() { return cpu_device(); }

// ---- the checker -------------------------------------------------------------

struct GradReport {
  bool ok = true;
  double max_err = 0.0;
  int64_t worst = -1;         // flat index of the worst element
  double worst_analytic = 0.0, worst_numeric = 0.0;
  int64_t n_bad = 0;
  std::string what;           // what was checked, for messages

  std::string message() const {
    std::ostringstream os;
    os.precision(12);
    os << what << ": max err " << max_err << " at flat index " << worst << " (analytic " << worst_analytic
       << ", numeric " << worst_numeric << "), " << n_bad << " element(s) above tolerance " << kTol;
    return os.str();
  }
};

// Compares `analytic` (the claimed dL/dwrt, flat) with central differences of
// `objective` obtained by perturbing `wrt` in place (a float64 CPU tensor).
// `wrt` is restored exactly afterwards.
GradReport check_gradient(const std::string& what, const std::function<double()>& objective, Tensor wrt,
                          const std::vector<double>& analytic) {
  GradReport r;
  r.what = what;
  EXPECT_EQ(wrt.dtype(), DType::F64) << what;
  EXPECT_EQ(&wrt.device(), &cpu()) << what;
  EXPECT_EQ(static_cast<int64_t>(analytic.size()), wrt.numel()) << what;
  if (wrt.dtype() != DType::F64 || static_cast<int64_t>(analytic.size()) != wrt.numel()) {
    r.ok = false;
    return r;
  }
  double* p = wrt.f64();
  for (int64_t i = 0; i < wrt.numel(); ++i) {
    const double v = p[i];
    p[i] = v + kStep;
    const double fp = objective();
    p[i] = v - kStep;
    const double fm = objective();
    p[i] = v;
    const double numeric = (fp - fm) / (2.0 * kStep);
    const double a = analytic[static_cast<size_t>(i)];
    const double err = std::fabs(a - numeric) / std::max({std::fabs(a), std::fabs(numeric), kFloor});
    if (!(err < kTol)) {  // also catches NaN
      r.ok = false;
      ++r.n_bad;
    }
    if (std::isnan(err) || err > r.max_err || r.worst < 0) {
      r.max_err = std::isnan(err) ? INFINITY : err;
      r.worst = i;
      r.worst_analytic = a;
      r.worst_numeric = numeric;
    }
  }
  // JANUS_GRADCHECK_VERBOSE=1 prints every check's worst error.
  if (std::getenv("JANUS_GRADCHECK_VERBOSE")) std::printf("  %s\n", r.message().c_str());
  return r;
}

// ---- data helpers --------------------------------------------------------------

Tensor random_tensor(const Shape& s, uint64_t seed, double scale = 1.0) {
  Rng rng(seed);
  std::vector<double> v(static_cast<size_t>(s.numel()));
  for (double& x : v) x = scale * rng.normal();
  return Tensor::from_host(v, s, cpu(), DType::F64);
}

Tensor uniform_tensor(const Shape& s, uint64_t seed, double lo, double hi) {
  Rng rng(seed);
  std::vector<double> v(static_cast<size_t>(s.numel()));
  for (double& x : v) x = rng.uniform(lo, hi);
  return Tensor::from_host(v, s, cpu(), DType::F64);
}

// Distinct values (a shuffled arithmetic progression with gaps of 0.05, signs
// mixed): no two elements of any pooling window are within 1e-3 of each
// other, so a perturbation of 1e-6 can never change which one is the max.
Tensor distinct_tensor(const Shape& s, uint64_t seed) {
  const auto n = static_cast<size_t>(s.numel());
  std::vector<size_t> perm(n);
  std::iota(perm.begin(), perm.end(), size_t{0});
  Rng rng(seed);
  for (size_t i = n; i > 1; --i) std::swap(perm[i - 1], perm[static_cast<size_t>(rng.below(i))]);
  std::vector<double> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = 0.05 * (static_cast<double>(perm[i]) - static_cast<double>(n) / 2.0) + 0.01;
  return Tensor::from_host(v, s, cpu(), DType::F64);
}

double dot(const Tensor& a, const Tensor& b) {
  const std::vector<double> x = a.to_host(), y = b.to_host();
  EXPECT_EQ(x.size(), y.size());
  double s = 0.0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) s += x[i] * y[i];
  return s;
}

// Random values for every parameter of a built layer (gamma kept away from 0).
void randomise_parameters(Layer& layer, uint64_t seed) {
  uint64_t k = seed;
  for (Parameter* p : layer.parameters()) {
    Tensor r = random_tensor(p->value.shape(), ++k, 0.5);
    if (p->name == "gamma") r = uniform_tensor(p->value.shape(), k, 0.5, 1.5);
    p->value.copy_from(r);
  }
}

// Checks dL/dX and dL/dparam for L = sum(G * layer.forward(X, training=true)).
// Returns one report per checked tensor (input first), without asserting, so
// CheckerSensitivity can verify that the pipeline detects broken layers.
std::vector<GradReport> layer_reports(Layer& layer, Tensor x, uint64_t seed) {
  Tensor y = layer.forward(x, true);
  const Tensor g = random_tensor(y.shape(), seed ^ 0xABCDEFull);
  const Tensor dx = layer.backward(g);
  std::vector<GradReport> out;
  EXPECT_EQ(dx.shape(), x.shape()) << layer.name();
  std::vector<std::pair<Parameter*, std::vector<double>>> grads;
  for (Parameter* p : layer.parameters()) grads.push_back({p, p->grad.to_host()});
  const std::vector<double> dx_host = dx.to_host();

  auto objective = [&]() { return dot(g, layer.forward(x, true)); };
  out.push_back(check_gradient(layer.name() + " dL/dX", objective, x, dx_host));
  for (auto& [p, grad] : grads)
    out.push_back(check_gradient(layer.name() + " dL/d" + p->name, objective, p->value, grad));
  return out;
}

void expect_layer_gradients(Layer& layer, const Tensor& x, uint64_t seed = 7) {
  const auto reports = layer_reports(layer, x, seed);
  size_t expected = 1 + layer.parameters().size();
  EXPECT_EQ(reports.size(), expected);
  for (const auto& r : reports) {
    EXPECT_TRUE(r.ok) << r.message();
    EXPECT_GE(r.worst, 0) << r.what << ": nothing was checked";
  }
}

// Builds the layer for x in float64 and gives its parameters random values.
void prepare(Layer& layer, const Tensor& x, uint64_t seed) {
  layer.set_seed(seed);
  layer.build(x.shape(), cpu(), DType::F64);
  randomise_parameters(layer, seed * 31 + 1);
}

// Whether the activation has a kink at 0 (its checks need inputs away from it).
bool kinked(ActivationKind act) { return act == ActivationKind::ReLU || act == ActivationKind::LeakyReLU; }

// Smallest |Z| of a layer's last pre-activation: ReLU checks need it away
// from the kink at 0 (a 1e-6 step must not cross it).
double min_abs_preactivation(const Layer& layer) {
  const std::vector<double> z = layer.activation()->z().to_host();
  double m = INFINITY;
  for (double v : z) m = std::min(m, std::fabs(v));
  return m;
}

// ---- FullyConnected --------------------------------------------------------------

class FullyConnectedGrad : public ::testing::TestWithParam<ActivationKind> {};

TEST_P(FullyConnectedGrad, InputWeightsAndBias) {
  const ActivationKind act = GetParam();
  FullyConnected fc("fc", 5, act);
  Tensor x = random_tensor({6, 4}, 11);
  prepare(fc, x, 3);
  if (kinked(act)) {
    fc.forward(x, true);
    ASSERT_GT(min_abs_preactivation(fc), 1e-3) << "inputs too close to the ReLU kink; pick other data";
  }
  expect_layer_gradients(fc, x);
}

// "bias": false: only W, and the activation applied to X W directly.
TEST(FullyConnectedGrad, WithoutBias) {
  FullyConnected fc("fc", 4, ActivationKind::GELU, Init::XavierUniform, /*use_bias=*/false);
  Tensor x = random_tensor({5, 3}, 13);
  prepare(fc, x, 4);
  EXPECT_EQ(fc.parameters().size(), 1u);
  expect_layer_gradients(fc, x);
}

INSTANTIATE_TEST_SUITE_P(AllActivations, FullyConnectedGrad,
                         ::testing::ValuesIn(kAllActivations),  // every entry of the table
                         [](const ::testing::TestParamInfo<ActivationKind>& i) {
                           return std::string(activation_name(i.param));
                         });

// ---- Conv2D ------------------------------------------------------------------------

struct ConvCase {
  std::string label;
  Shape input;
  int64_t n_out;
  int kr, kc, stride;
  Padding pad;
  bool bias;
  ActivationFunction act;
  int groups = 1;
};

class Conv2DGrad : public ::testing::TestWithParam<ConvCase> {};

TEST_P(Conv2DGrad, InputWeightsAndBias) {
  const ConvCase& c = GetParam();
  Conv2D conv("conv", c.n_out, c.kr, c.kc, c.act, c.stride, c.pad, Init::XavierUniform, c.bias, c.groups);
  Tensor x = random_tensor(c.input, 21);
  prepare(conv, x, 5);
  EXPECT_EQ(conv.parameters().size(), c.bias ? 2u : 1u);
  if (kinked(c.act.kind)) {
    // The layer fuses its ReLU into the convolution and keeps no Z: form Z
    // with the device's unfused convolution instead.
    const std::vector<Parameter*> p = conv.parameters();
    const ConvGeometry g = conv.geometry(x.shape());
    Tensor z = Tensor::empty({g.N, g.OH, g.OW, g.F}, cpu(), DType::F64);
    cpu().conv2d_forward(g, x, p[0]->value, c.bias ? p[1]->value : Tensor(), z);
    double m = INFINITY;
    for (double v : z.to_host()) m = std::min(m, std::fabs(v));
    ASSERT_GT(m, 1e-4) << "inputs too close to the ReLU kink";
  }
  expect_layer_gradients(conv, x);
}

Padding same() { return Padding{Padding::Mode::Same}; }
Padding valid() { return Padding{Padding::Mode::Valid}; }
Padding explicit_pad(int r, int c) { return Padding{Padding::Mode::Explicit, r, c}; }

INSTANTIATE_TEST_SUITE_P(
    Geometries, Conv2DGrad,
    ::testing::Values(
        ConvCase{"s1_same_3x3_bias", {2, 5, 5, 3}, 4, 3, 3, 1, same(), true, ActivationKind::Linear},
        ConvCase{"s1_valid_3x3_nobias", {2, 5, 6, 2}, 3, 3, 3, 1, valid(), false, ActivationKind::Linear},
        ConvCase{"s2_same_3x3_odd", {2, 7, 5, 2}, 3, 3, 3, 2, same(), true, ActivationKind::Linear},
        ConvCase{"s2_valid_nonsquare_2x3", {1, 7, 8, 3}, 2, 2, 3, 2, valid(), true, ActivationKind::Linear},
        ConvCase{"s1_pad1_nonsquare_3x2", {2, 4, 5, 2}, 3, 3, 2, 1, explicit_pad(1, 1), false,
                 ActivationKind::Linear},
        ConvCase{"s2_pad2_5x3_odd", {1, 7, 5, 1}, 2, 5, 3, 2, explicit_pad(2, 2), true, ActivationKind::Linear},
        ConvCase{"s1_pad_rows_cols_1x3", {2, 3, 4, 2}, 2, 1, 3, 1, explicit_pad(0, 1), true,
                 ActivationKind::TanH},
        ConvCase{"s1_same_even_4x4", {1, 6, 6, 2}, 2, 4, 4, 1, same(), true, ActivationKind::Sigmoid},
        ConvCase{"s1_same_relu", {2, 4, 4, 2}, 3, 3, 3, 1, same(), true, ActivationKind::ReLU},
        ConvCase{"s2_valid_relu_nobias", {2, 6, 5, 2}, 3, 3, 2, 2, valid(), false, ActivationKind::ReLU},
        ConvCase{"s1_same_softmax", {1, 4, 4, 2}, 3, 3, 3, 1, same(), true, ActivationKind::SoftMax},
        // The activations whose backward reads z: the layer keeps z for them.
        ConvCase{"s1_same_gelu", {2, 4, 4, 2}, 3, 3, 3, 1, same(), true, ActivationKind::GELU},
        ConvCase{"s2_valid_silu_nobias", {2, 6, 5, 2}, 3, 3, 2, 2, valid(), false, ActivationKind::SiLU},
        ConvCase{"s1_same_leaky_relu", {2, 4, 4, 2}, 3, 3, 3, 1, same(), true,
                 ActivationFunction(ActivationKind::LeakyReLU, 0.2)},
        // Grouped (groups = 2) and depthwise (groups = C, multiplier 1 and 2).
        ConvCase{"groups2_s1_same_3x3", {2, 5, 5, 4}, 6, 3, 3, 1, same(), true, ActivationKind::Linear, 2},
        ConvCase{"groups2_s2_pad1_3x2_nobias", {2, 7, 6, 4}, 4, 3, 2, 2, explicit_pad(1, 1), false,
                 ActivationKind::TanH, 2},
        ConvCase{"depthwise_s1_same_3x3", {2, 5, 4, 3}, 3, 3, 3, 1, same(), true, ActivationKind::Linear, 3},
        ConvCase{"depthwise_mult2_s2_pad1_3x3", {2, 7, 7, 3}, 6, 3, 3, 2, explicit_pad(1, 1), true,
                 ActivationKind::Linear, 3},
        ConvCase{"groups3_1x1_relu", {2, 3, 4, 6}, 3, 1, 1, 1, valid(), true, ActivationKind::ReLU, 3}),
    [](const ::testing::TestParamInfo<ConvCase>& i) { return i.param.label; });

// ---- Pool2D --------------------------------------------------------------------------

struct PoolCase {
  std::string label;
  PoolMode mode;
  Shape input;
  int kr, kc, stride;
  Padding pad;
};

class Pool2DGrad : public ::testing::TestWithParam<PoolCase> {};

TEST_P(Pool2DGrad, Input) {
  const PoolCase& c = GetParam();
  Pool2D pool("pool", c.mode, c.kr, c.kc, c.stride, c.pad);
  Tensor x = distinct_tensor(c.input, 33);
  prepare(pool, x, 9);
  EXPECT_TRUE(pool.parameters().empty());
  expect_layer_gradients(pool, x);
}

INSTANTIATE_TEST_SUITE_P(
    Geometries, Pool2DGrad,
    ::testing::Values(PoolCase{"max_2x2_s2", PoolMode::Max, {2, 4, 6, 3}, 2, 2, 2, valid()},
                      PoolCase{"max_3x3_s2_overlap_odd", PoolMode::Max, {2, 7, 5, 2}, 3, 3, 2, valid()},
                      PoolCase{"max_3x3_s1_pad1", PoolMode::Max, {1, 5, 4, 2}, 3, 3, 1, explicit_pad(1, 1)},
                      PoolCase{"max_2x3_s1_nonsquare", PoolMode::Max, {2, 4, 5, 1}, 2, 3, 1, valid()},
                      PoolCase{"avg_2x2_s2", PoolMode::Average, {2, 4, 6, 3}, 2, 2, 2, valid()},
                      PoolCase{"avg_3x3_s1_same_pad", PoolMode::Average, {2, 5, 5, 2}, 3, 3, 1, same()},
                      PoolCase{"avg_3x3_s2_pad1_overlap", PoolMode::Average, {1, 7, 6, 2}, 3, 3, 2,
                               explicit_pad(1, 1)},
                      PoolCase{"avg_3x2_s1_nonsquare", PoolMode::Average, {2, 5, 4, 1}, 3, 2, 1, valid()}),
    [](const ::testing::TestParamInfo<PoolCase>& i) { return i.param.label; });

// Max pooling with padding: a window of all-negative inputs must not pick a
// padding zero. (The gradient check above covers the routing; this pins the
// value.)
TEST(Pool2DGrad, PaddingNeverWinsMax) {
  Pool2D pool("pool", PoolMode::Max, 3, 3, 1, explicit_pad(1, 1));
  Tensor x = uniform_tensor({1, 3, 3, 1}, 5, -2.0, -1.0);
  Tensor y = pool.forward(x, true);
  for (double v : y.to_host()) EXPECT_LT(v, -0.99);
}

// ---- Flatten, ActivationLayer, BatchNorm ----------------------------------------------

TEST(FlattenGrad, Input) {
  Flatten f("flatten");
  Tensor x = random_tensor({3, 2, 3, 4}, 41);
  prepare(f, x, 1);
  Tensor y = f.forward(x, true);
  EXPECT_EQ(y.shape(), Shape({3, 24}));
  expect_layer_gradients(f, x);
}

class ActivationLayerGrad : public ::testing::TestWithParam<ActivationKind> {};

TEST_P(ActivationLayerGrad, Input) {
  ActivationLayer a("act", GetParam());
  // Values away from 0 (so ReLU is differentiable everywhere), both signs.
  Tensor x = random_tensor({4, 2, 2, 3}, 43);
  std::vector<double> v = x.to_host();
  for (double& e : v) e = (e >= 0 ? 0.1 : -0.1) + e;
  x = Tensor::from_host(v, x.shape(), cpu(), DType::F64);
  prepare(a, x, 1);
  expect_layer_gradients(a, x);
}

// A non-default slope, negative too (PyTorch allows it; y's sign then does
// not tell z's, which is why LeakyReLU's backward reads z).
TEST(ActivationLayerGrad, LeakyReluSlopes) {
  for (double slope : {0.2, -0.3}) {
    ActivationLayer a("act", ActivationFunction(ActivationKind::LeakyReLU, slope));
    Tensor x = random_tensor({3, 5}, 45);
    std::vector<double> v = x.to_host();
    for (double& e : v) e = (e >= 0 ? 0.1 : -0.1) + e;
    x = Tensor::from_host(v, x.shape(), cpu(), DType::F64);
    prepare(a, x, 1);
    expect_layer_gradients(a, x);
  }
}

INSTANTIATE_TEST_SUITE_P(AllActivations, ActivationLayerGrad,
                         ::testing::ValuesIn(kAllActivations),  // every entry of the table
                         [](const ::testing::TestParamInfo<ActivationKind>& i) {
                           return std::string(activation_name(i.param));
                         });

TEST(BatchNormGrad, DenseTrainMode) {
  BatchNorm bn("bn");
  Tensor x = random_tensor({8, 5}, 51, 2.0);
  prepare(bn, x, 2);
  expect_layer_gradients(bn, x);
}

TEST(BatchNormGrad, NhwcTrainMode) {
  BatchNorm bn("bn_nhwc");
  Tensor x = random_tensor({2, 3, 4, 3}, 53, 1.5);
  prepare(bn, x, 4);
  expect_layer_gradients(bn, x);
}

// ---- Dropout ----------------------------------------------------------------------------

// Dropout draws a new mask on every training forward (its stream advances),
// so the objective rebuilds a fresh layer with the same name and seed each
// time: its first forward always uses the same mask, which makes
// X -> sum(G * dropout(X)) a fixed, differentiable function.
TEST(DropoutGrad, InputThroughFixedMask) {
  const double p = 0.4;
  const uint64_t seed = 1234;
  auto fresh = [&]() {
    auto d = std::make_unique<Dropout>("drop", p);
    d->set_seed(seed);
    return d;
  };
  Tensor x = random_tensor({6, 10}, 61);
  auto layer = fresh();
  Tensor y = layer->forward(x, true);
  const Tensor g = random_tensor(y.shape(), 62);
  const Tensor dx = layer->backward(g);

  // The mask recovered from y / x: every element is 0 or 1/(1-p), and
  // backward is mask * dY exactly.
  const std::vector<double> xv = x.to_host(), yv = y.to_host(), gv = g.to_host(), dxv = dx.to_host();
  int zeros = 0;
  for (size_t i = 0; i < xv.size(); ++i) {
    const double m = yv[i] / xv[i];
    const bool dropped = m == 0.0;
    zeros += dropped;
    if (!dropped) {
      EXPECT_NEAR(m, 1.0 / (1.0 - p), 1e-12) << "element " << i;
    }
    EXPECT_NEAR(dxv[i], m * gv[i], 1e-13 * std::fabs(gv[i]) * 2) << "element " << i;
  }
  EXPECT_GT(zeros, 5);
  EXPECT_LT(zeros, 45);

  auto objective = [&]() { return dot(g, fresh()->forward(x, true)); };
  const auto r = check_gradient("dropout dL/dX", objective, x, dxv);
  EXPECT_TRUE(r.ok) << r.message();

  // The stream does advance: the second training forward uses another mask.
  Tensor y2 = layer->forward(x, true);
  EXPECT_NE(y2.to_host(), yv);
  // Evaluation mode is the identity, and so is its backward.
  Tensor ye = layer->forward(x, false);
  EXPECT_EQ(ye.to_host(), xv);
  EXPECT_EQ(layer->backward(g).to_host(), gv);
}

// ---- losses ------------------------------------------------------------------------------

Tensor one_hot(const std::vector<int>& labels, int64_t k) {
  std::vector<double> v(labels.size() * static_cast<size_t>(k), 0.0);
  for (size_t i = 0; i < labels.size(); ++i) v[i * static_cast<size_t>(k) + static_cast<size_t>(labels[i])] = 1.0;
  return Tensor::from_host(v, Shape{static_cast<int64_t>(labels.size()), k}, cpu(), DType::F64);
}

// Soft targets whose rows sum to one.
Tensor soft_targets(const Shape& s, uint64_t seed) {
  Tensor t = uniform_tensor(s, seed, 0.05, 1.0);
  std::vector<double> v = t.to_host();
  for (int64_t r = 0; r < s[0]; ++r) {
    double sum = 0;
    for (int64_t c = 0; c < s[1]; ++c) sum += v[static_cast<size_t>(r * s[1] + c)];
    for (int64_t c = 0; c < s[1]; ++c) v[static_cast<size_t>(r * s[1] + c)] /= sum;
  }
  return Tensor::from_host(v, s, cpu(), DType::F64);
}

TEST(LossGrad, CrossEntropyOneHotAndSoft) {
  CrossEntropy ce;
  Tensor yhat = uniform_tensor({5, 4}, 71, 0.05, 1.0);
  for (const Tensor& y : {one_hot({0, 3, 1, 1, 2}, 4), soft_targets({5, 4}, 72)}) {
    const auto r = check_gradient("cross_entropy dJ/dYhat", [&]() { return ce.forward(yhat, y); }, yhat,
                                  ce.backward(yhat, y).to_host());
    EXPECT_TRUE(r.ok) << r.message();
  }
  // The value itself: J = -(1/m) sum y ln yhat.
  Tensor y = one_hot({0, 3, 1, 1, 2}, 4);
  const std::vector<double> p = yhat.to_host();
  const double expected = -(std::log(p[0]) + std::log(p[7]) + std::log(p[9]) + std::log(p[13]) + std::log(p[18])) / 5;
  EXPECT_NEAR(ce.forward(yhat, y), expected, 1e-12);
}

TEST(LossGrad, L2) {
  L2 l2;
  Tensor yhat = random_tensor({6, 3}, 73);
  Tensor y = random_tensor({6, 3}, 74);
  const auto r = check_gradient("l2 dJ/dYhat", [&]() { return l2.forward(yhat, y); }, yhat,
                                l2.backward(yhat, y).to_host());
  EXPECT_TRUE(r.ok) << r.message();
  double expected = 0;
  const std::vector<double> a = yhat.to_host(), b = y.to_host();
  for (size_t i = 0; i < a.size(); ++i) expected += (a[i] - b[i]) * (a[i] - b[i]);
  EXPECT_NEAR(l2.forward(yhat, y), expected / 6, 1e-12);
}

// The fused softmax + cross-entropy gradient on the logits, one-hot and
// soft targets (including rows that do not sum to one, where the formula is
// (s * sum(y) - y) / m).
TEST(LossGrad, FusedSoftmaxCrossEntropyOnLogits) {
  CrossEntropy ce;
  Tensor z = random_tensor({5, 4}, 75, 3.0);
  Tensor unnormalised = uniform_tensor({5, 4}, 77, 0.0, 1.0);
  for (const Tensor& y : {one_hot({2, 0, 3, 3, 1}, 4), soft_targets({5, 4}, 76), unnormalised}) {
    Tensor dz;
    ce.forward_backward_from_logits(z, y, &dz);
    const auto r = check_gradient("softmax+cross_entropy dJ/dZ",
                                  [&]() { return ce.forward_backward_from_logits(z, y, nullptr); }, z, dz.to_host());
    EXPECT_TRUE(r.ok) << r.message();
  }
}

// The fused path as NeuralNetwork uses it: a dense softmax last layer with
// cross-entropy. The numerical objective is the *unfused* loss of the
// network's output, so this also checks that fusing changes nothing.
TEST(LossGrad, FusedSoftmaxCrossEntropyThroughNetwork) {
  std::vector<std::unique_ptr<Layer>> layers;
  layers.push_back(std::make_unique<FullyConnected>("hidden", 6, ActivationKind::TanH));
  layers.push_back(std::make_unique<FullyConnected>("out", 3, ActivationKind::SoftMax));
  NeuralNetwork net(std::move(layers), std::make_unique<CrossEntropy>(), 17);
  Tensor x = random_tensor({7, 4}, 78);
  Tensor y = one_hot({0, 1, 2, 2, 1, 0, 1}, 3);
  net.build(x.shape(), cpu(), DType::F64);
  for (size_t i = 0; i < net.size(); ++i) randomise_parameters(net.layer(i), 100 + i);
  ASSERT_TRUE(net.uses_fused_softmax_cross_entropy());

  Tensor out = net.forward(x, Mode::Train);
  const double loss = net.backward(y, out);
  EXPECT_NEAR(loss, net.loss().forward(out, y), 1e-12);
  auto objective = [&]() { return net.loss().forward(net.forward(x, Mode::Train), y); };
  int checked = 0;
  for (const NamedParameter& np : net.named_parameters()) {
    const auto r = check_gradient(np.name, objective, np.parameter->value, np.parameter->grad.to_host());
    EXPECT_TRUE(r.ok) << r.message();
    ++checked;
  }
  EXPECT_EQ(checked, 4);
}

// ---- a whole network -------------------------------------------------------------------

// conv -> batchnorm -> relu -> maxpool -> flatten -> dense softmax, with
// cross-entropy, trained through NeuralNetwork::backward (fused softmax + CE).
TEST(NetworkGrad, ConvBatchNormReluMaxPoolFlattenDenseSoftmax) {
  std::vector<std::unique_ptr<Layer>> layers;
  layers.push_back(std::make_unique<Conv2D>("conv", 3, 3, 3, ActivationKind::Linear, 1, same()));
  layers.push_back(std::make_unique<BatchNorm>("bn"));
  layers.push_back(std::make_unique<ActivationLayer>("relu", ActivationKind::ReLU));
  layers.push_back(std::make_unique<Pool2D>("pool", PoolMode::Max, 2, 2, 2));
  layers.push_back(std::make_unique<Flatten>("flatten"));
  layers.push_back(std::make_unique<FullyConnected>("dense", 4, ActivationKind::SoftMax));
  NeuralNetwork net(std::move(layers), std::make_unique<CrossEntropy>(), 5);
  Tensor x = random_tensor({3, 6, 6, 2}, 81);
  Tensor y = one_hot({1, 3, 0}, 4);
  net.build(x.shape(), cpu(), DType::F64);
  for (size_t i = 0; i < net.size(); ++i) randomise_parameters(net.layer(i), 200 + i);
  ASSERT_TRUE(net.uses_fused_softmax_cross_entropy());

  // Safety margins: no pre-ReLU value at the kink and no near-tie inside a
  // max-pool window among the positive values, else a 1e-6 step could switch
  // branches and the finite difference would be meaningless.
  {
    // The ReLU layer's input is the BatchNorm output. NeuralNetwork fuses the
    // pair (fusion.hpp), so that output is never formed: undo the fusion for
    // one forward to read it. The gradients below go through the fused path.
    auto& bn = dynamic_cast<BatchNorm&>(net.layer(1));
    auto& relu = dynamic_cast<ActivationLayer&>(net.layer(2));
    const bool fused = bn.fused_relu();
    bn.set_fused_relu(false);
    relu.set_absorbed(false);
    (void)net.forward(x, Mode::Train);
    const std::vector<double> z = relu.activation()->z().to_host();
    bn.set_fused_relu(fused);
    relu.set_absorbed(fused);
    double m = INFINITY;
    for (double v : z) m = std::min(m, std::fabs(v));
    ASSERT_GT(m, 1e-4) << "pick other data: a BatchNorm output sits at the ReLU kink";
  }
  Tensor out = net.forward(x, Mode::Train);
  net.backward(y, out);
  std::vector<std::pair<NamedParameter, std::vector<double>>> analytic;
  for (const NamedParameter& np : net.named_parameters()) analytic.push_back({np, np.parameter->grad.to_host()});
  ASSERT_EQ(analytic.size(), 6u);  // conv W, b; bn gamma, beta; dense W, b

  auto objective = [&]() { return net.loss().forward(net.forward(x, Mode::Train), y); };
  for (auto& [np, grad] : analytic) {
    const auto r = check_gradient(np.name, objective, np.parameter->value, grad);
    EXPECT_TRUE(r.ok) << r.message();
  }
}

// ---- layers with several inputs, and graphs -------------------------------------------

// Checks dL/dX_k of every input for L = sum(G * layer.graph_forward(Xs)).
void expect_graph_layer_gradients(Layer& layer, const std::vector<Tensor>& xs, uint64_t seed) {
  const Tensor y = layer.graph_forward(xs, true);
  const Tensor g = random_tensor(y.shape(), seed);
  const std::vector<Tensor> dx = layer.graph_backward(g);
  ASSERT_EQ(dx.size(), xs.size()) << layer.name();
  std::vector<std::vector<double>> analytic;
  for (const Tensor& d : dx) analytic.push_back(d.to_host());  // before the objective reruns forward
  auto objective = [&]() { return dot(g, layer.graph_forward(xs, true)); };
  for (size_t k = 0; k < xs.size(); ++k) {
    EXPECT_EQ(dx[k].shape(), xs[k].shape()) << layer.name() << " input " << k;
    const auto r = check_gradient(layer.name() + " dL/dX" + std::to_string(k), objective, xs[k], analytic[k]);
    EXPECT_TRUE(r.ok) << r.message();
  }
}

TEST(AddGrad, ThreeInputs) {
  Add add("add");
  expect_graph_layer_gradients(add, {random_tensor({2, 3, 3, 4}, 301), random_tensor({2, 3, 3, 4}, 302),
                                     random_tensor({2, 3, 3, 4}, 303)}, 304);
}

TEST(ConcatGrad, ChannelsOfNhwcAndDenseFeatures) {
  Concat nhwc("concat_nhwc");
  expect_graph_layer_gradients(nhwc, {random_tensor({2, 3, 4, 2}, 311), random_tensor({2, 3, 4, 5}, 312),
                                      random_tensor({2, 3, 4, 1}, 313)}, 314);
  Concat dense("concat_dense");
  expect_graph_layer_gradients(dense, {random_tensor({3, 4}, 315), random_tensor({3, 2}, 316)}, 317);
}

TEST(GlobalAvgPoolGrad, Input) {
  GlobalAvgPool gap("gap");
  expect_layer_gradients(gap, random_tensor({3, 4, 5, 2}, 321));
  GlobalAvgPool one_pixel("gap_1x1");
  expect_layer_gradients(one_pixel, random_tensor({2, 1, 1, 3}, 322));
}

TEST(ScaleGrad, Input) {
  Scale scale("scale", 0.125);
  expect_layer_gradients(scale, random_tensor({3, 4}, 323));
  Scale negative("scale_negative", -2.5);
  expect_layer_gradients(negative, random_tensor({2, 3, 3, 2}, 324));
}

// Every parameter gradient of a graph network, trained through
// NeuralNetwork::backward, against central differences of its loss. Every
// ReLU's input must stay clear of the kink: the check unfuses BatchNorm +
// ReLU for one forward to read those inputs, then restores the fusion.
void expect_network_gradients(NeuralNetwork& net, const Tensor& x, const Tensor& y, size_t n_parameters) {
  net.build(x.shape(), cpu(), DType::F64);
  for (size_t i = 0; i < net.size(); ++i) randomise_parameters(net.layer(i), 400 + i);
  fuse_batchnorm_relu(net, false);
  (void)net.forward(x, Mode::Train);
  double margin = INFINITY;
  for (size_t i = 0; i < net.size(); ++i)
    if (const Activation* a = net.layer(i).activation(); a && a->kind() == ActivationKind::ReLU && a->z().defined())
      for (double v : a->z().to_host()) margin = std::min(margin, std::fabs(v));
  ASSERT_GT(margin, 1e-4) << "pick other data: a ReLU input sits at the kink";
  fuse_batchnorm_relu(net, fusion_enabled_from_environment());

  net.backward(y, net.forward(x, Mode::Train));
  std::vector<std::pair<NamedParameter, std::vector<double>>> analytic;
  for (const NamedParameter& np : net.named_parameters()) analytic.push_back({np, np.parameter->grad.to_host()});
  ASSERT_EQ(analytic.size(), n_parameters);
  auto objective = [&]() { return net.loss().forward(net.forward(x, Mode::Train), y); };
  for (auto& [np, grad] : analytic) {
    const auto r = check_gradient(np.name, objective, np.parameter->value, grad);
    EXPECT_TRUE(r.ok) << r.message();
  }
}

NeuralNetwork graph_net(const char* layers_json, uint64_t seed) {
  nlohmann::json cfg = {{"loss", "cross_entropy"}, {"seed", seed}, {"layers", nlohmann::json::parse(layers_json)}};
  return NeuralNetwork::from_config(cfg);
}

// A residual block as in ResNet-9: x -> conv-bn-relu -> conv-bn-relu, + x,
// then global average pooling and a softmax classifier. Both BatchNorm +
// ReLU pairs are fused; the block's input fans out to the block and the sum.
TEST(NetworkGrad, ResidualBlock) {
  NeuralNetwork net = graph_net(R"([
    {"type": "conv2d", "name": "prep", "n_out": 3, "kernel": 3, "activation": "tanh"},
    {"type": "conv2d", "name": "c1", "n_out": 3, "kernel": 3, "bias": false},
    {"type": "batchnorm", "name": "bn1"}, {"type": "relu", "name": "r1"},
    {"type": "conv2d", "name": "c2", "n_out": 3, "kernel": 3, "bias": false},
    {"type": "batchnorm", "name": "bn2"}, {"type": "relu", "name": "r2"},
    {"type": "add", "name": "res", "inputs": ["prep", "r2"]},
    {"type": "global_avg_pool", "name": "gap"},
    {"type": "dense", "name": "out", "n_out": 4, "activation": "softmax"}])", 3);
  EXPECT_EQ(dynamic_cast<BatchNorm&>(net.layer(2)).fused_relu(), fusion_enabled_from_environment());
  EXPECT_EQ(dynamic_cast<BatchNorm&>(net.layer(5)).fused_relu(), fusion_enabled_from_environment());
  expect_network_gradients(net, random_tensor({3, 5, 5, 2}, 331), one_hot({1, 3, 0}, 4), 10);
}

// Two convolutions of the model input concatenated along the channels.
TEST(NetworkGrad, Concatenation) {
  NeuralNetwork net = graph_net(R"([
    {"type": "conv2d", "name": "a", "n_out": 2, "kernel": 3, "activation": "tanh"},
    {"type": "conv2d", "name": "b", "n_out": 3, "kernel": 1, "activation": "tanh", "inputs": ["input"]},
    {"type": "concat", "name": "cat", "inputs": ["a", "b"]},
    {"type": "conv2d", "name": "c", "n_out": 2, "kernel": 3, "activation": "tanh"},
    {"type": "flatten"},
    {"type": "dense", "name": "out", "n_out": 3, "activation": "softmax"}])", 4);
  expect_network_gradients(net, random_tensor({2, 4, 4, 2}, 341), one_hot({2, 0}, 3), 8);
}

// A BatchNorm output read by two consumers (its ReLU and a sum taken before
// the ReLU): the pair must not be fused, and the BatchNorm's gradient is the
// sum of both consumers'.
TEST(NetworkGrad, FanOutThroughBatchNorm) {
  NeuralNetwork net = graph_net(R"([
    {"type": "conv2d", "name": "c1", "n_out": 3, "kernel": 3},
    {"type": "batchnorm", "name": "bn"},
    {"type": "relu", "name": "r"},
    {"type": "conv2d", "name": "c2", "n_out": 3, "kernel": 3, "activation": "tanh"},
    {"type": "add", "name": "sum", "inputs": ["bn", "c2"]},
    {"type": "global_avg_pool", "name": "gap"},
    {"type": "dense", "name": "out", "n_out": 3, "activation": "softmax"}])", 5);
  EXPECT_FALSE(dynamic_cast<BatchNorm&>(net.layer(1)).fused_relu());
  EXPECT_FALSE(dynamic_cast<ActivationLayer&>(net.layer(2)).absorbed());
  expect_network_gradients(net, random_tensor({3, 4, 4, 2}, 351), one_hot({0, 2, 1}, 3), 8);
}

// ---- checker sensitivity: the checks bite --------------------------------------------------

// A FullyConnected layer whose backward is wrong in one element of dL/dX.
class BrokenFullyConnected : public FullyConnected {
 public:
  enum class Fault { FlipSignOfOneInputGrad, SwapTwoWeightGrads, DropBiasGrad };
  BrokenFullyConnected(Fault f) : FullyConnected("broken_fc", 4, ActivationKind::TanH), fault_(f) {}
  Tensor backward(const Tensor& dy) override {
    Tensor dx = FullyConnected::backward(dy);
    if (fault_ == Fault::FlipSignOfOneInputGrad) dx.f64()[5] = -dx.f64()[5];
    if (fault_ == Fault::SwapTwoWeightGrads) std::swap(parameters()[0]->grad.f64()[1], parameters()[0]->grad.f64()[6]);
    if (fault_ == Fault::DropBiasGrad) parameters()[1]->grad.f64()[2] = 0.0;
    return dx;
  }

 private:
  Fault fault_;
};

TEST(CheckerSensitivity, CorrectGradientPasses) {
  FullyConnected fc("fc", 4, ActivationKind::TanH);
  Tensor x = random_tensor({5, 3}, 91);
  prepare(fc, x, 8);
  for (const auto& r : layer_reports(fc, x, 7)) {
    EXPECT_TRUE(r.ok) << r.message();
    EXPECT_LT(r.max_err, 1e-7) << r.message();  // correct gradients have a wide margin below kTol
  }
}

TEST(CheckerSensitivity, FlippedSignOfOneElementIsCaught) {
  // The comparator alone: a correct gradient with one element's sign flipped.
  CrossEntropy ce;
  Tensor yhat = uniform_tensor({4, 3}, 92, 0.1, 1.0);
  Tensor y = one_hot({0, 2, 1, 2}, 3);
  std::vector<double> g = ce.backward(yhat, y).to_host();
  auto objective = [&]() { return ce.forward(yhat, y); };
  ASSERT_TRUE(check_gradient("ce", objective, yhat, g).ok);
  g[5] = -g[5];  // element (1, 2): a non-zero entry of the one-hot target
  ASSERT_NE(g[5], 0.0);
  const auto r = check_gradient("ce with one sign flipped", objective, yhat, g);
  EXPECT_FALSE(r.ok) << "the checker missed a flipped sign";
  EXPECT_EQ(r.worst, 5);
  EXPECT_EQ(r.n_bad, 1);
  EXPECT_GT(r.max_err, 1.0);
}

TEST(CheckerSensitivity, SwappedIndicesAreCaught) {
  L2 l2;
  Tensor yhat = random_tensor({3, 4}, 93);
  Tensor y = random_tensor({3, 4}, 94);
  std::vector<double> g = l2.backward(yhat, y).to_host();
  std::swap(g[2], g[9]);
  const auto r = check_gradient("l2 with two indices swapped", [&]() { return l2.forward(yhat, y); }, yhat, g);
  EXPECT_FALSE(r.ok) << "the checker missed two swapped gradient entries";
  EXPECT_EQ(r.n_bad, 2);
}

TEST(CheckerSensitivity, SmallRelativeErrorIsCaught) {
  // A gradient off by 0.01% in one element (e.g. a slightly wrong constant).
  L2 l2;
  Tensor yhat = random_tensor({3, 4}, 95);
  Tensor y = random_tensor({3, 4}, 96);
  std::vector<double> g = l2.backward(yhat, y).to_host();
  g[4] *= 1.0001;
  const auto r = check_gradient("l2 with 1e-4 relative error", [&]() { return l2.forward(yhat, y); }, yhat, g);
  EXPECT_FALSE(r.ok);
}

class BrokenLayerIsCaught : public ::testing::TestWithParam<BrokenFullyConnected::Fault> {};

TEST_P(BrokenLayerIsCaught, ThroughTheLayerPipeline) {
  BrokenFullyConnected fc(GetParam());
  Tensor x = random_tensor({5, 3}, 97);
  prepare(fc, x, 8);
  const auto reports = layer_reports(fc, x, 7);
  ASSERT_EQ(reports.size(), 3u);  // X, W, b
  const size_t broken = GetParam() == BrokenFullyConnected::Fault::FlipSignOfOneInputGrad ? 0
                        : GetParam() == BrokenFullyConnected::Fault::SwapTwoWeightGrads  ? 1
                                                                                          : 2;
  for (size_t i = 0; i < reports.size(); ++i) {
    if (i == broken) {
      EXPECT_FALSE(reports[i].ok) << "missed the fault in " << reports[i].what;
    } else {
      EXPECT_TRUE(reports[i].ok) << reports[i].message();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Faults, BrokenLayerIsCaught,
                         ::testing::Values(BrokenFullyConnected::Fault::FlipSignOfOneInputGrad,
                                           BrokenFullyConnected::Fault::SwapTwoWeightGrads,
                                           BrokenFullyConnected::Fault::DropBiasGrad),
                         [](const ::testing::TestParamInfo<BrokenFullyConnected::Fault>& i) {
                           switch (i.param) {
                             case BrokenFullyConnected::Fault::FlipSignOfOneInputGrad: return std::string("flip_sign_dX");
                             case BrokenFullyConnected::Fault::SwapTwoWeightGrads: return std::string("swap_dW");
                             case BrokenFullyConnected::Fault::DropBiasGrad: return std::string("zero_db");
                           }
                           return std::string("?");
                         });

}  // namespace
}  // namespace janus
