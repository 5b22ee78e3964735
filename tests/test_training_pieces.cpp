// Unit tests of the training pieces: learning-rate schedules against hand
// formulas, weight initialisers (statistics, seeding), Tensor basics, and the
// test-time flip augmentation of evaluate / predict_classes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "janus/janus.hpp"
#include "janus/nlohmann_json.hpp"
#include "janus/trainer.hpp"

namespace janus {
namespace {

using nlohmann::json;

Device& cpu() { return cpu_device(); }

constexpr double kPi = 3.14159265358979323846;

// ---- schedules ---------------------------------------------------------------------

TEST(Schedules, Constant) {
  auto s = make_scheduler({{"type", "constant"}, {"lr", 0.03}});
  for (int64_t step : {0, 1, 10, 1000000}) EXPECT_DOUBLE_EQ(s->lr(step), 0.03);
  // The default type is constant.
  EXPECT_DOUBLE_EQ(make_scheduler({{"lr", 0.5}})->lr(7), 0.5);
}

TEST(Schedules, ExponentialSmooth) {
  auto s = make_scheduler({{"type", "exponential"}, {"lr", 0.1}, {"decay", 0.5}, {"stage_length", 10}});
  for (int64_t step : {0, 1, 5, 10, 15, 37, 100})
    EXPECT_NEAR(s->lr(step), 0.1 * std::pow(0.5, step / 10.0), 1e-15) << "step " << step;
  EXPECT_DOUBLE_EQ(s->lr(10), 0.05);
  EXPECT_DOUBLE_EQ(s->lr(20), 0.025);
}

TEST(Schedules, ExponentialStaircase) {
  auto s = make_scheduler(
      {{"type", "exponential"}, {"lr", 0.2}, {"decay", 0.9}, {"stage_length", 4}, {"staircase", true}});
  for (int64_t step = 0; step < 30; ++step)
    EXPECT_NEAR(s->lr(step), 0.2 * std::pow(0.9, static_cast<double>(step / 4)), 1e-15) << "step " << step;
  EXPECT_DOUBLE_EQ(s->lr(3), 0.2);
  EXPECT_DOUBLE_EQ(s->lr(4), 0.2 * 0.9);
}

TEST(Schedules, StepDecay) {
  auto s = make_scheduler({{"type", "step"}, {"lr", 0.1}, {"gamma", 0.1}, {"step_size", 30}});
  EXPECT_DOUBLE_EQ(s->lr(0), 0.1);
  EXPECT_DOUBLE_EQ(s->lr(29), 0.1);
  EXPECT_NEAR(s->lr(30), 0.01, 1e-17);
  EXPECT_NEAR(s->lr(59), 0.01, 1e-17);
  EXPECT_NEAR(s->lr(60), 0.001, 1e-17);
  for (int64_t step = 0; step < 200; step += 7)
    EXPECT_NEAR(s->lr(step), 0.1 * std::pow(0.1, static_cast<double>(step / 30)), 1e-17);
}

// Cosine with linear warm-up. Janus's convention (scheduler.cpp): during the
// warm-up, lr(s) = lr * (s + 1) / W (so step 0 already trains and step W-1
// reaches the peak); then lr(s) = min + (lr - min)(1 + cos(pi (s - W) / (N - W))) / 2,
// reaching min_lr at s = N and staying there.
TEST(Schedules, CosineWithWarmup) {
  const double lr = 0.4, min_lr = 0.004;
  const int64_t N = 100, W = 10;
  auto s = make_scheduler(
      {{"type", "cosine"}, {"lr", lr}, {"total_steps", N}, {"warmup_steps", W}, {"min_lr", min_lr}});
  for (int64_t step = 0; step < W; ++step)
    EXPECT_NEAR(s->lr(step), lr * static_cast<double>(step + 1) / W, 1e-15) << "warm-up step " << step;
  for (int64_t step = W; step <= N; ++step) {
    const double t = static_cast<double>(step - W) / static_cast<double>(N - W);
    EXPECT_NEAR(s->lr(step), min_lr + 0.5 * (lr - min_lr) * (1 + std::cos(kPi * t)), 1e-15) << "step " << step;
  }
  EXPECT_GT(s->lr(0), 0.0);
  EXPECT_DOUBLE_EQ(s->lr(W), lr);                        // the peak
  EXPECT_NEAR(s->lr((N + W) / 2), (lr + min_lr) / 2, 1e-15);  // halfway down
  EXPECT_NEAR(s->lr(N), min_lr, 1e-15);                  // the floor
  EXPECT_NEAR(s->lr(N + 50), min_lr, 1e-15);             // clamped after the end
  for (int64_t step = W; step < N; ++step) EXPECT_GE(s->lr(step), s->lr(step + 1));
}

TEST(Schedules, CosineWithoutWarmupStartsAtPeak) {
  auto s = make_scheduler({{"type", "cosine"}, {"lr", 1.0}, {"total_steps", 8}});
  EXPECT_DOUBLE_EQ(s->lr(0), 1.0);
  EXPECT_NEAR(s->lr(4), 0.5, 1e-15);
  EXPECT_NEAR(s->lr(8), 0.0, 1e-15);
}

// One-cycle (Smith): cosine from lr/div up to lr over pct*N steps, then
// cosine down to lr/(div*final_div) at N.
TEST(Schedules, OneCycleEndpointsAndShape) {
  const double lr = 0.8, div = 25, final_div = 1e4, pct = 0.3;
  const int64_t N = 1000;
  auto s = make_scheduler({{"type", "onecycle"}, {"lr", lr}, {"total_steps", N}, {"pct_start", pct},
                           {"div_factor", div}, {"final_div_factor", final_div}});
  const auto up = static_cast<int64_t>(pct * N);
  EXPECT_NEAR(s->lr(0), lr / div, 1e-15);
  EXPECT_NEAR(s->lr(up), lr, 1e-15);
  EXPECT_NEAR(s->lr(N), lr / (div * final_div), 1e-15);
  // Halfway up and halfway down (cosine midpoints are arithmetic means).
  EXPECT_NEAR(s->lr(up / 2), (lr / div + lr) / 2, 1e-12);
  EXPECT_NEAR(s->lr(up + (N - up) / 2), (lr + lr / (div * final_div)) / 2, 1e-12);
  for (int64_t step = 0; step < up; ++step) EXPECT_LT(s->lr(step), s->lr(step + 1)) << step;
  for (int64_t step = up; step < N; ++step) EXPECT_GT(s->lr(step), s->lr(step + 1)) << step;
  // A hand formula at an arbitrary point of each phase.
  const double a = lr / div, e = a / final_div;
  const double t1 = 123.0 / up, t2 = (700.0 - up) / (N - up);
  EXPECT_NEAR(s->lr(123), lr + 0.5 * (a - lr) * (1 + std::cos(kPi * t1)), 1e-15);
  EXPECT_NEAR(s->lr(700), e + 0.5 * (lr - e) * (1 + std::cos(kPi * t2)), 1e-15);
}

TEST(Schedules, ConfigRoundTrip) {
  for (const json& c : {json{{"type", "constant"}, {"lr", 0.1}},
                        json{{"type", "exponential"}, {"lr", 0.1}, {"decay", 0.9}, {"stage_length", 3.0}, {"staircase", true}},
                        json{{"type", "step"}, {"lr", 0.1}, {"gamma", 0.5}, {"step_size", 7}},
                        json{{"type", "cosine"}, {"lr", 0.1}, {"total_steps", 50}, {"warmup_steps", 5}, {"min_lr", 0.001}},
                        json{{"type", "onecycle"}, {"lr", 0.1}, {"total_steps", 50}, {"pct_start", 0.25},
                             {"div_factor", 10.0}, {"final_div_factor", 100.0}}}) {
    auto a = make_scheduler(c);
    auto b = make_scheduler(a->config());
    for (int64_t step = 0; step < 60; step += 3) EXPECT_DOUBLE_EQ(a->lr(step), b->lr(step)) << c.dump();
  }
}

// ---- initialisers --------------------------------------------------------------------

struct Moments {
  double mean = 0, var = 0, max_abs = 0, within_one_sd = 0;
};

Moments moments(const std::vector<double>& v) {
  Moments m;
  for (double x : v) m.mean += x;
  m.mean /= static_cast<double>(v.size());
  for (double x : v) {
    m.var += (x - m.mean) * (x - m.mean);
    m.max_abs = std::max(m.max_abs, std::fabs(x));
  }
  m.var /= static_cast<double>(v.size());
  const double sd = std::sqrt(m.var);
  for (double x : v) m.within_one_sd += std::fabs(x - m.mean) <= sd;
  m.within_one_sd /= static_cast<double>(v.size());
  return m;
}

struct InitCase {
  Init init;
  double variance;  // expected variance for fan_in = 400, fan_out = 500
  bool uniform;     // uniform on [-a, a] (else normal)
};

class Initialisers : public ::testing::TestWithParam<InitCase> {};

TEST_P(Initialisers, MeanAndVarianceMatchTheFormula) {
  const InitCase c = GetParam();
  Rng rng(99);
  const Shape shape{400, 500};
  const std::vector<double> v = initialise(c.init, shape, 400, 500, rng, cpu(), DType::F64).to_host();
  ASSERT_EQ(v.size(), 200000u);
  const Moments m = moments(v);
  const double n = static_cast<double>(v.size());
  // Mean within 5 standard errors; variance within 2% (its standard error is
  // ~0.3% for normal and ~0.2% for uniform draws of this size).
  EXPECT_NEAR(m.mean, 0.0, 5 * std::sqrt(c.variance / n)) << init_name(c.init);
  EXPECT_NEAR(m.var, c.variance, 0.02 * c.variance) << init_name(c.init);
  if (c.uniform) {
    const double a = std::sqrt(3 * c.variance);  // U(-a, a) has variance a^2 / 3
    EXPECT_LE(m.max_abs, a) << init_name(c.init);
    EXPECT_GT(m.max_abs, 0.999 * a) << init_name(c.init);
    EXPECT_NEAR(m.within_one_sd, 1 / std::sqrt(3.0), 0.01) << init_name(c.init);  // 57.7% for a uniform
  } else {
    EXPECT_NEAR(m.within_one_sd, 0.6827, 0.01) << init_name(c.init);  // 68.3% for a normal
    EXPECT_GT(m.max_abs, 4 * std::sqrt(c.variance)) << init_name(c.init);  // normal tails
  }
}

INSTANTIATE_TEST_SUITE_P(
    All, Initialisers,
    ::testing::Values(InitCase{Init::XavierUniform, 2.0 / 900.0, true},   // a^2/3, a = sqrt(6/(in+out))
                      InitCase{Init::XavierNormal, 2.0 / 900.0, false},   // s^2, s = sqrt(2/(in+out))
                      InitCase{Init::HeUniform, 2.0 / 400.0, true},       // a = sqrt(6/in)
                      InitCase{Init::HeNormal, 2.0 / 400.0, false},       // s = sqrt(2/in)
                      InitCase{Init::Uniform, 0.05 * 0.05 / 3.0, true},   // U(-0.05, 0.05)
                      InitCase{Init::Normal, 0.05 * 0.05, false}),        // N(0, 0.05)
    [](const ::testing::TestParamInfo<InitCase>& i) { return std::string(init_name(i.param.init)); });

TEST(InitialiserZeros, AllZero) {
  Rng rng(1);
  const std::vector<double> v = initialise(Init::Zeros, Shape{50, 60}, 50, 60, rng, cpu(), DType::F64).to_host();
  EXPECT_TRUE(std::all_of(v.begin(), v.end(), [](double x) { return x == 0.0; }));
}

TEST(InitialiserNames, ParseAndPrintRoundTrip) {
  for (Init i : {Init::XavierUniform, Init::XavierNormal, Init::HeUniform, Init::HeNormal, Init::Uniform,
                 Init::Normal, Init::Zeros})
    EXPECT_EQ(parse_init(init_name(i), "test"), i);
  EXPECT_THROW(parse_init("orthogonal", "test"), Error);
}

// The conv fans are KH*KW*C and KH*KW*F: a he_normal 3x3 conv from 16 to 32
// channels has variance 2 / 144.
TEST(InitialiserFans, ConvLayerUsesReceptiveFieldFans) {
  Conv2D conv("conv", 32, 3, 3, ActivationKind::ReLU, 1, Padding{Padding::Mode::Same}, Init::HeNormal);
  conv.set_seed(5);
  conv.build(Shape{1, 8, 8, 16}, cpu(), DType::F64);
  const Moments m = moments(conv.parameters()[0]->value.to_host());
  EXPECT_NEAR(m.var, 2.0 / 144.0, 0.06 * 2.0 / 144.0);  // 4608 draws: standard error ~2%
  Conv2D conv_x("conv_x", 32, 3, 3, ActivationKind::ReLU, 1, Padding{Padding::Mode::Same}, Init::XavierUniform);
  conv_x.build(Shape{1, 8, 8, 16}, cpu(), DType::F64);
  const Moments mx = moments(conv_x.parameters()[0]->value.to_host());
  EXPECT_LE(mx.max_abs, std::sqrt(6.0 / (144.0 + 288.0)));
  EXPECT_NEAR(mx.var, 2.0 / (144.0 + 288.0), 0.06 * 2.0 / 432.0);
  // The bias starts at zero.
  for (double b : conv.parameters()[1]->value.to_host()) EXPECT_EQ(b, 0.0);
}

TEST(InitialiserSeeds, SameSeedSameValuesDifferentSeedDifferentValues) {
  Rng a(2024), b(2024), c(2025);
  const auto va = initialise(Init::HeNormal, Shape{30, 40}, 30, 40, a, cpu(), DType::F32).to_host();
  const auto vb = initialise(Init::HeNormal, Shape{30, 40}, 30, 40, b, cpu(), DType::F32).to_host();
  const auto vc = initialise(Init::HeNormal, Shape{30, 40}, 30, 40, c, cpu(), DType::F32).to_host();
  EXPECT_EQ(va, vb);
  EXPECT_NE(va, vc);
  // The same draws whatever the dtype (values are drawn in double on the host).
  Rng d(2024);
  const auto vd = initialise(Init::HeNormal, Shape{30, 40}, 30, 40, d, cpu(), DType::F64).to_host();
  for (size_t i = 0; i < va.size(); ++i) EXPECT_EQ(va[i], static_cast<double>(static_cast<float>(vd[i])));
}

json two_identical_dense_layers() {
  return {{"layers",
           {{{"type", "dense"}, {"name", "a"}, {"n_out", 8}, {"activation", "tanh"}},
            {{"type", "dense"}, {"name", "b"}, {"n_out", 8}, {"activation", "tanh"}}}},
          {"seed", 11}};
}

TEST(InitialiserSeeds, DifferentLayersGetDifferentValues) {
  NeuralNetwork net = NeuralNetwork::from_config(two_identical_dense_layers());
  net.build(Shape{1, 8}, cpu());
  auto params = net.named_parameters();
  ASSERT_EQ(params[0].name, "a.W");
  ASSERT_EQ(params[2].name, "b.W");
  EXPECT_NE(params[0].parameter->value.to_host(), params[2].parameter->value.to_host());
}

TEST(InitialiserSeeds, SameNetworkSeedSameWeightsOtherSeedOtherWeights) {
  NeuralNetwork n1 = NeuralNetwork::from_config(two_identical_dense_layers());
  NeuralNetwork n2 = NeuralNetwork::from_config(two_identical_dense_layers());
  json other = two_identical_dense_layers();
  other["seed"] = 12;
  NeuralNetwork n3 = NeuralNetwork::from_config(other);
  for (auto* n : {&n1, &n2, &n3}) n->build(Shape{1, 8}, cpu());
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(n1.named_parameters()[i].parameter->value.to_host(), n2.named_parameters()[i].parameter->value.to_host());
  }
  EXPECT_NE(n1.named_parameters()[0].parameter->value.to_host(), n3.named_parameters()[0].parameter->value.to_host());
}

// ---- Tensor basics --------------------------------------------------------------------

TEST(TensorBasics, FromHostToHostRoundTrip) {
  const std::vector<float> f = {1.5f, -2.25f, 3.0e-8f, 1e30f, 0.1f, -0.0f};
  Tensor t = Tensor::from_host(f, Shape{2, 3}, cpu());
  EXPECT_EQ(t.dtype(), DType::F32);
  EXPECT_EQ(t.shape(), Shape({2, 3}));
  EXPECT_EQ(t.numel(), 6);
  EXPECT_EQ(t.bytes(), 24u);
  EXPECT_EQ(t.to_host_f32(), f);
  EXPECT_EQ(0, std::memcmp(t.raw(), f.data(), 24));
  const std::vector<double> d = {0.1, 1e-300, -7.0, 3.141592653589793};
  Tensor u = Tensor::from_host(d, Shape{4}, cpu());
  EXPECT_EQ(u.dtype(), DType::F64);
  EXPECT_EQ(u.to_host(), d);
  EXPECT_THROW(Tensor::from_host(d, Shape{5}, cpu()), Error);
}

TEST(TensorBasics, ItemAndFactories) {
  Tensor t = Tensor::from_host(std::vector<double>{4.0, 5.0, 6.0}, Shape{3, 1}, cpu());
  EXPECT_EQ(t.item(), 4.0);
  EXPECT_EQ(t.item(2), 6.0);
  EXPECT_THROW(t.item(3), Error);
  EXPECT_THROW(t.item(-1), Error);
  for (double v : Tensor::zeros({2, 5}, cpu()).to_host()) EXPECT_EQ(v, 0.0);
  for (double v : Tensor::full({3, 2}, 2.5, cpu(), DType::F64).to_host()) EXPECT_EQ(v, 2.5);
  EXPECT_FALSE(Tensor().defined());
  EXPECT_TRUE(t.defined());
}

TEST(TensorBasics, ReshapeIsAViewThatSharesStorage) {
  Tensor t = Tensor::from_host(std::vector<float>{1, 2, 3, 4, 5, 6}, Shape{2, 3}, cpu());
  Tensor v = t.reshape(Shape{3, 2});
  EXPECT_EQ(v.shape(), Shape({3, 2}));
  EXPECT_TRUE(v.shares_storage_with(t));
  EXPECT_EQ(v.raw(), t.raw());
  v.f32()[4] = 50.0f;  // writes through the view are seen by the original
  EXPECT_EQ(t.item(4), 50.0);
  t.f32()[0] = -1.0f;
  EXPECT_EQ(v.item(0), -1.0);
  EXPECT_THROW(t.reshape(Shape{4, 2}), Error);
}

TEST(TensorBasics, CloneIsADeepCopy) {
  Tensor t = Tensor::from_host(std::vector<float>{1, 2, 3}, Shape{1, 3}, cpu());
  Tensor c = t.clone();
  EXPECT_FALSE(c.shares_storage_with(t));
  EXPECT_NE(c.raw(), t.raw());
  EXPECT_EQ(c.to_host(), t.to_host());
  EXPECT_EQ(c.shape(), t.shape());
  c.f32()[1] = 20.0f;
  EXPECT_EQ(t.item(1), 2.0);
  // to(device) on the same device also copies.
  Tensor d = t.to(cpu());
  EXPECT_FALSE(d.shares_storage_with(t));
}

TEST(TensorBasics, ToDtypeConverts) {
  Tensor d = Tensor::from_host(std::vector<double>{0.1, -2.5, 1e-50, 3.0}, Shape{2, 2}, cpu());
  Tensor f = d.to(DType::F32);
  EXPECT_EQ(f.dtype(), DType::F32);
  EXPECT_EQ(f.shape(), d.shape());
  EXPECT_FALSE(f.shares_storage_with(d));
  const std::vector<float> fv = f.to_host_f32();
  EXPECT_EQ(fv[0], 0.1f);
  EXPECT_EQ(fv[1], -2.5f);
  EXPECT_EQ(fv[2], 0.0f);  // underflows in float
  Tensor back = f.to(DType::F64);
  EXPECT_EQ(back.dtype(), DType::F64);
  EXPECT_EQ(back.item(0), static_cast<double>(0.1f));
  // Typed accessors check the dtype.
  EXPECT_THROW(f.f64(), Error);
  EXPECT_THROW(d.f32(), Error);
  EXPECT_NO_THROW(f.f32());
}

TEST(TensorBasics, CopyFrom) {
  Tensor a = Tensor::zeros({2, 3}, cpu());
  Tensor b = Tensor::from_host(std::vector<float>{1, 2, 3, 4, 5, 6}, Shape{3, 2}, cpu());
  a.copy_from(b);  // same numel and dtype; shapes may differ
  EXPECT_EQ(a.to_host(), b.to_host());
  EXPECT_FALSE(a.shares_storage_with(b));
  EXPECT_THROW(a.copy_from(Tensor::zeros({7}, cpu())), Error);
  EXPECT_THROW(a.copy_from(Tensor::zeros({6}, cpu(), DType::F64)), Error);
}

// ---- test-time flip augmentation (evaluate / predict_classes with tta) ------------

// A small conv net on 4x5x2 images with 3 classes, and n random images.
struct TtaFixture {
  NeuralNetwork model = NeuralNetwork::from_config(
      {{"seed", 5},
       {"loss", "cross_entropy"},
       {"layers",
        {{{"type", "conv2d"}, {"n_out", 4}, {"kernel", 3}, {"pad", "same"}, {"activation", "relu"}},
         {{"type", "flatten"}},
         {{"type", "dense"}, {"n_out", 3}, {"activation", "softmax"}}}}});
  Dataset data;
  explicit TtaFixture(bool symmetric) {
    const int H = 4, W = 5, C = 2, n = 37;
    data.sample_shape = Shape{H, W, C};
    data.num_classes = 3;
    data.source = "tta test";
    Rng rng(11);
    data.x.resize(static_cast<size_t>(n * H * W * C));
    for (auto& v : data.x) v = static_cast<float>(rng.uniform() * 2 - 1);
    if (symmetric)  // x[h][w] = x[h][W-1-w]
      for (int i = 0; i < n; ++i)
        for (int h = 0; h < H; ++h)
          for (int w = 0; w < W / 2; ++w)
            for (int c = 0; c < C; ++c)
              data.x[static_cast<size_t>(((i * H + h) * W + (W - 1 - w)) * C + c)] =
                  data.x[static_cast<size_t>(((i * H + h) * W + w) * C + c)];
    for (int i = 0; i < n; ++i) data.labels.push_back(i % 3);
    model.build(Shape{1, H, W, C}, cpu());
  }
};

TEST(TestTimeAugmentation, SymmetricImagesGiveTheSameResult) {
  TtaFixture f(/*symmetric=*/true);
  const EvalResult a = evaluate(f.model, f.data, 8), b = evaluate(f.model, f.data, 8, /*tta=*/true);
  EXPECT_EQ(a.confusion, b.confusion);
  EXPECT_NEAR(a.loss, b.loss, 1e-6);
  EXPECT_EQ(predict_classes(f.model, f.data, 8), predict_classes(f.model, f.data, 8, true));
}

TEST(TestTimeAugmentation, AveragesTheMirroredOutputs) {
  TtaFixture f(/*symmetric=*/false);
  // By hand: the outputs for the images and for their mirrors, averaged.
  const int64_t n = static_cast<int64_t>(f.data.size());
  const Shape s = f.data.batch_shape(n);
  std::vector<float> flipped(f.data.x.size());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t h = 0; h < s[1]; ++h)
      for (int64_t w = 0; w < s[2]; ++w)
        for (int64_t c = 0; c < s[3]; ++c)
          flipped[static_cast<size_t>(((i * s[1] + h) * s[2] + (s[2] - 1 - w)) * s[3] + c)] =
              f.data.x[static_cast<size_t>(((i * s[1] + h) * s[2] + w) * s[3] + c)];
  const std::vector<float> p = f.model.forward(Tensor::from_host(f.data.x, s, cpu()), Mode::Eval).to_host_f32();
  const std::vector<float> q = f.model.forward(Tensor::from_host(flipped, s, cpu()), Mode::Eval).to_host_f32();
  std::vector<int> want;
  int64_t correct = 0;
  for (int64_t i = 0; i < n; ++i) {
    float m[3];
    for (int k = 0; k < 3; ++k) m[k] = 0.5f * (p[static_cast<size_t>(i * 3 + k)] + q[static_cast<size_t>(i * 3 + k)]);
    want.push_back(static_cast<int>(std::max_element(m, m + 3) - m));
    correct += want.back() == f.data.labels[static_cast<size_t>(i)];
  }
  EXPECT_EQ(predict_classes(f.model, f.data, 10, /*tta=*/true), want);
  const EvalResult r = evaluate(f.model, f.data, 10, /*tta=*/true);
  EXPECT_DOUBLE_EQ(r.accuracy, static_cast<double>(correct) / static_cast<double>(n));
  // The flipped pass changes something for random images.
  EXPECT_NE(p, q);
}

TEST(TestTimeAugmentation, NeedsImages) {
  Dataset d;
  d.sample_shape = Shape{4};
  d.num_classes = 3;
  d.x.assign(8, 0.5f);
  d.labels = {0, 1};
  NeuralNetwork model = NeuralNetwork::from_config(
      {{"loss", "cross_entropy"}, {"layers", {{{"type", "dense"}, {"n_out", 3}, {"activation", "softmax"}}}}});
  model.build(Shape{1, 4}, cpu());
  EXPECT_NO_THROW(evaluate(model, d, 2));
  EXPECT_THROW(evaluate(model, d, 2, /*tta=*/true), Error);
  EXPECT_THROW(predict_classes(model, d, 2, /*tta=*/true), Error);
}

}  // namespace
}  // namespace janus
