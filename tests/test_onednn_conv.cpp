// The oneDNN convolutions of the fast CPU device (src/cpu/onednn_conv.hpp),
// called directly (so they are tested whatever JANUS_CPU_CONV says), against
// the reference CPU device: direct convolutions with both weight layouts
// (oneDNN's choice with HWIO reordered to and from it, and plain HWIO), and
// Winograd wherever oneDNN has it (direct elsewhere).
//
// Tolerance: each output element is a sum of K products (forward: KH*KW*C,
// backward-data: up to KH*KW*F, backward-weights: N*OH*OW). Whatever the
// summation order, float rounding leaves |fast - exact| <= K * eps *
// sum_k |a_k b_k| (plus one rounding of the result), and the reference is the
// exact sum rounded once. sum_k |a_k b_k| is computed per element by running
// the reference convolution on |a| and |b|. So the bound is rigorous, yet an
// indexing or layout error (a wrongly reordered weight, a shifted window)
// gives errors of the order of sum_k |a_k b_k| itself, far outside it.
// Winograd F(4x4, 3x3) multiplies transformed tiles whose transforms have
// constants up to 8 in magnitude, so its rounding errors are larger by a
// constant factor: the bound is kWinogradFactor (4) times the direct one.
// Measured worst cases over these inputs: 0.10 of the direct bound for
// direct, 0.38 of it for Winograd (0.10 of its own), still far below the
// error of any indexing or layout mistake.
#include <gtest/gtest.h>
#include <omp.h>

#include <oneapi/dnnl/dnnl.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "conv_case.hpp"
#include "cpu/fast_device.hpp"
#include "cpu/fast_layout.hpp"
#include "cpu/onednn_conv.hpp"
#include "janus/device.hpp"
#include "janus/error.hpp"
#include "janus/model.hpp"
#include "janus/nlohmann_json.hpp"
#include "janus/optimizer.hpp"
#include "janus/tensor.hpp"

namespace janus {
namespace {

using onednn::ConvAlgorithm;
using onednn::OneDnnConv;
using onednn::WeightsLayout;
using Pass = OneDnnConv::Pass;

constexpr double kEps = 1.1920929e-7;  // 2^-23
constexpr double kWinogradFactor = 4.0;

// A ConvCase (conv_case.hpp) and whether oneDNN has an optimised kernel for
// it, so that it must not decline.
struct Case : testing::ConvCase {
  bool must_run;
};
using testing::geometry_of;

std::vector<Case> cases() {
  return {
      // N  H   W   C  KH KW F   sh sw ph pw  must_run
      {1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, false},      // smallest
      {2, 9, 9, 3, 3, 3, 16, 1, 1, 1, 1, true},      // C = 3 (an RGB input layer)
      {1, 7, 5, 3, 3, 3, 8, 2, 2, 1, 1, true},       // N = 1, stride 2, odd sizes
      {3, 8, 8, 16, 1, 1, 32, 1, 1, 0, 0, true},     // 1x1
      {2, 9, 8, 20, 1, 1, 12, 2, 2, 0, 0, true},     // 1x1 stride 2, C not a multiple of 16
      {2, 11, 13, 5, 5, 5, 7, 2, 2, 2, 2, true},     // 5x5, padding 2, stride 2
      {2, 10, 9, 12, 1, 3, 24, 1, 1, 0, 1, true},    // 1x3
      {2, 9, 10, 6, 3, 1, 10, 1, 1, 1, 0, true},     // 3x1
      {3, 12, 12, 17, 3, 3, 33, 1, 1, 0, 0, true},   // padding 0, C and F odd
      {2, 7, 7, 8, 3, 3, 8, 1, 1, 2, 2, false},      // padding 2 with a 3x3 kernel
      {1, 6, 6, 1, 3, 3, 1, 3, 3, 2, 1, false},      // stride 3, padding beyond the kernel
      {4, 5, 5, 3, 5, 3, 6, 1, 2, 0, 1, false},      // kernel as tall as the input
      {2, 16, 16, 32, 3, 3, 64, 2, 2, 1, 1, true},   // deep channels, stride 2
      {5, 13, 11, 24, 3, 3, 40, 1, 1, 1, 1, true},   // odd sizes, channels not blocks of 16
      {8, 8, 8, 128, 3, 3, 128, 1, 1, 1, 1, true},   // the CIFAR model's last stage
      {16, 32, 32, 32, 3, 3, 32, 1, 1, 1, 1, true},  // its first stage, 16 images
  };
}

std::string str(const Case& k) {
  return "N" + std::to_string(k.N) + " " + std::to_string(k.H) + "x" + std::to_string(k.W) + "x" +
         std::to_string(k.C) + " k" + std::to_string(k.KH) + "x" + std::to_string(k.KW) + " F" +
         std::to_string(k.F) + " s" + std::to_string(k.sh) + "," + std::to_string(k.sw) + " p" +
         std::to_string(k.ph) + "," + std::to_string(k.pw);
}

Device& ref() { return reference_cpu_device(); }

std::vector<float> random_floats(std::mt19937_64& rng, int64_t n) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& e : v) e = u(rng);
  return v;
}

std::vector<float> abs_of(std::vector<float> v) {
  for (auto& e : v) e = std::abs(e);
  return v;
}

std::vector<float> nans(int64_t n) {
  return std::vector<float>(static_cast<size_t>(n), std::numeric_limits<float>::quiet_NaN());
}

Tensor on_ref(const std::vector<float>& v, const Shape& s) { return Tensor::from_host(v, s, ref()); }

// The reference result and sum_k |a_k b_k| of every element of one pass.
struct Expected {
  std::vector<double> value, magnitude;
};

Expected reference_forward(const ConvGeometry& g, const std::vector<float>& x,
                           const std::vector<float>& w, const std::vector<float>* b) {
  const Shape xs{g.N, g.H, g.W, g.C}, ws{g.KH, g.KW, g.group_channels(), g.F}, ys{g.N, g.OH, g.OW, g.F};
  Tensor y = Tensor::zeros(ys, ref()), m = Tensor::zeros(ys, ref());
  ref().conv2d_forward(g, on_ref(x, xs), on_ref(w, ws), b ? on_ref(*b, {g.F}) : Tensor(), y);
  ref().conv2d_forward(g, on_ref(abs_of(x), xs), on_ref(abs_of(w), ws),
                       b ? on_ref(abs_of(*b), {g.F}) : Tensor(), m);
  return {y.to_host(), m.to_host()};
}

Expected reference_backward_data(const ConvGeometry& g, const std::vector<float>& dy,
                                 const std::vector<float>& w) {
  const Shape xs{g.N, g.H, g.W, g.C}, ws{g.KH, g.KW, g.group_channels(), g.F}, ys{g.N, g.OH, g.OW, g.F};
  Tensor dx = Tensor::zeros(xs, ref()), m = Tensor::zeros(xs, ref());
  ref().conv2d_backward_data(g, on_ref(dy, ys), on_ref(w, ws), dx);
  ref().conv2d_backward_data(g, on_ref(abs_of(dy), ys), on_ref(abs_of(w), ws), m);
  return {dx.to_host(), m.to_host()};
}

Expected reference_backward_weights(const ConvGeometry& g, const std::vector<float>& x,
                                    const std::vector<float>& dy) {
  const Shape xs{g.N, g.H, g.W, g.C}, ws{g.KH, g.KW, g.group_channels(), g.F}, ys{g.N, g.OH, g.OW, g.F};
  Tensor dw = Tensor::zeros(ws, ref()), m = Tensor::zeros(ws, ref());
  ref().conv2d_backward_filter(g, on_ref(x, xs), on_ref(dy, ys), dw);
  ref().conv2d_backward_filter(g, on_ref(abs_of(x), xs), on_ref(abs_of(dy), ys), m);
  return {dw.to_host(), m.to_host()};
}

// |got - value| <= factor * (terms + 2) * eps * magnitude, element by element
// (which also rejects NaN: every element must have been written). Returns
// the largest error as a fraction of its bound.
double expect_within(const std::vector<float>& got, const Expected& e, int64_t terms,
                     const std::string& what, double factor = 1.0) {
  EXPECT_EQ(got.size(), e.value.size()) << what;
  if (got.size() != e.value.size()) return 0.0;
  int reported = 0;
  double worst = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double tol = factor * static_cast<double>(terms + 2) * kEps * e.magnitude[i];
    const double err = std::abs(static_cast<double>(got[i]) - e.value[i]);
    if (tol > 0) worst = std::max(worst, err / tol);
    if (!(err <= tol) && reported++ < 5)
      ADD_FAILURE() << what << ": element " << i << " oneDNN " << got[i] << " reference "
                    << e.value[i] << " (error " << err << ", bound " << tol << ")";
  }
  return worst;
}

// Whether oneDNN has float32 Winograd kernels on this CPU (in oneDNN 2.x only
// for AVX-512 machines; elsewhere the Winograd policies fall back to direct
// convolutions). Asked of oneDNN itself, independently of OneDnnConv.
bool onednn_has_winograd() {
  static const bool has = [] {
    const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    const auto any = [](const dnnl::memory::dims& d) {
      return dnnl::memory::desc(d, dnnl::memory::data_type::f32, dnnl::memory::format_tag::any);
    };
    try {
      const dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_training,
                                              dnnl::algorithm::convolution_winograd, any({8, 64, 16, 16}),
                                              any({64, 64, 3, 3}), any({8, 64, 16, 16}), {1, 1}, {1, 1}, {1, 1});
      const dnnl::convolution_forward::primitive_desc pd(d, engine);
      return true;
    } catch (const dnnl::error&) {
      return false;  // "could not create a primitive descriptor": no implementation here
    }
  }();
  return has;
}

// A weights layout and an algorithm policy.
struct Variant {
  WeightsLayout layout;
  ConvAlgorithm algorithm;
  const char* name;
};

class OneDnnConvTest : public ::testing::TestWithParam<Variant> {
 protected:
  std::mt19937_64 rng{2024};
  OneDnnConv conv{2, GetParam().layout, GetParam().algorithm};
  // Winograd's error bound is wider (see the top of this file).
  double factor() const {
    return GetParam().algorithm == ConvAlgorithm::Direct ? 1.0 : kWinogradFactor;
  }
};

INSTANTIATE_TEST_SUITE_P(Variants, OneDnnConvTest,
                         ::testing::Values(Variant{WeightsLayout::Any, ConvAlgorithm::Direct, "Any"},
                                           Variant{WeightsLayout::Plain, ConvAlgorithm::Direct, "Hwio"},
                                           Variant{WeightsLayout::Any, ConvAlgorithm::Winograd,
                                                   "Winograd"}),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

// The three passes of one geometry against the reference (each with and
// without bias for the forward); counts the passes oneDNN declined and keeps
// the worst error as a fraction of its bound.
struct Tally {
  int declined = 0, winograd = 0;
  double worst = 0.0;
};

void check_all_passes(OneDnnConv& conv, std::mt19937_64& rng, const ConvGeometry& g, bool must_run,
                      const std::string& name, double factor, Tally& t) {
  const int64_t nx = int64_t{g.N} * g.H * g.W * g.C, nw = int64_t{g.KH} * g.KW * g.group_channels() * g.F,
                ny = int64_t{g.N} * g.OH * g.OW * g.F;
  const std::vector<float> x = random_floats(rng, nx), w = random_floats(rng, nw), b = random_floats(rng, g.F),
                           dy = random_floats(rng, ny);
  for (bool with_bias : {true, false}) {
    std::vector<float> y = nans(ny);
    const bool ran = conv.forward(g, x.data(), w.data(), with_bias ? b.data() : nullptr, y.data());
    if (!ran) {
      ++t.declined;
      EXPECT_FALSE(must_run) << "forward declined " << name;
      EXPECT_TRUE(std::isnan(y[0])) << "a declined pass must leave its output alone";
      continue;
    }
    t.worst = std::max(t.worst, expect_within(y, reference_forward(g, x, w, with_bias ? &b : nullptr),
                                              int64_t{g.KH} * g.KW * g.group_channels() + 1,
                                              "forward " + name + (with_bias ? " +bias" : ""), factor));
  }
  if (conv.implementation(Pass::Forward, g).find("wino") != std::string::npos) ++t.winograd;

  std::vector<float> dx = nans(nx);
  if (conv.backward_data(g, dy.data(), w.data(), dx.data())) {
    t.worst = std::max(t.worst, expect_within(dx, reference_backward_data(g, dy, w),
                                              int64_t{g.KH} * g.KW * g.group_filters(), "backward-data " + name,
                                              factor));
  } else {
    ++t.declined;
    EXPECT_FALSE(must_run) << "backward-data declined " << name;
  }

  std::vector<float> dw = nans(nw);
  if (conv.backward_weights(g, x.data(), dy.data(), dw.data())) {
    t.worst = std::max(t.worst, expect_within(dw, reference_backward_weights(g, x, dy), int64_t{g.N} * g.OH * g.OW,
                                              "backward-weights " + name, factor));
  } else {
    ++t.declined;
    EXPECT_FALSE(must_run) << "backward-weights declined " << name;
  }
}

TEST_P(OneDnnConvTest, AllPassesMatchReference) {
  Tally t;
  for (const Case& k : cases()) check_all_passes(conv, rng, geometry_of(k), k.must_run, str(k), factor(), t);
  std::printf("[          ] %d passes declined (left to the im2col path), %d geometries on "
              "Winograd, worst error %.3f of its bound\n",
              t.declined, t.winograd, t.worst);
  // The Winograd variant must really run Winograd on the 3x3 stride-1 cases
  // (five of them) where oneDNN has it, and the direct ones never.
  if (GetParam().algorithm == ConvAlgorithm::Winograd && onednn_has_winograd())
    EXPECT_GE(t.winograd, 4);
  else
    EXPECT_EQ(t.winograd, 0);
}

// Grouped and depthwise convolutions (oneDNN's grouped weights, hwigo = Janus's
// (KH, KW, C/groups, F)): every pass that runs matches the reference, none
// runs Winograd (it takes no groups), and oneDNN runs the forward of every
// one (its depthwise and grouped kernels, or its GEMM-based one).
TEST_P(OneDnnConvTest, GroupedAndDepthwiseMatchReference) {
  struct Grouped {
    Case k;
    int groups;
  };
  const Grouped grouped[] = {
      // N  H   W   C  KH KW F   sh sw ph pw  must_run   groups
      {{2, 9, 9, 4, 3, 3, 6, 1, 1, 1, 1, false}, 2},      // 2 groups of 2 -> 3
      {{2, 9, 8, 16, 3, 3, 16, 1, 1, 1, 1, false}, 16},   // depthwise, "same"
      {{2, 11, 9, 16, 3, 3, 32, 2, 2, 1, 1, false}, 16},  // depthwise, multiplier 2, stride 2
      {{3, 8, 8, 8, 3, 3, 8, 2, 2, 1, 1, false}, 8},      // depthwise, stride 2, 8 channels
      {{2, 7, 6, 12, 5, 3, 6, 1, 2, 2, 0, false}, 3},     // 3 groups of 4 -> 2, non-square
      {{2, 6, 6, 32, 1, 1, 64, 1, 1, 0, 0, false}, 4},    // 1x1, 4 groups
      {{4, 16, 16, 32, 3, 3, 32, 1, 1, 1, 1, false}, 32}, // a MobileNet depthwise layer
  };
  Tally t;
  for (const Grouped& c : grouped) {
    ConvGeometry g = geometry_of(c.k);
    g.groups = c.groups;
    const std::string name = str(c.k) + " g" + std::to_string(c.groups);
    std::printf("[          ] %s: forward %s, backward-data %s, backward-weights %s\n", name.c_str(),
                conv.implementation(Pass::Forward, g).c_str(), conv.implementation(Pass::BackwardData, g).c_str(),
                conv.implementation(Pass::BackwardWeights, g).c_str());
    EXPECT_FALSE(conv.implementation(Pass::Forward, g).empty()) << name;
    check_all_passes(conv, rng, g, c.k.must_run, name, factor(), t);
  }
  std::printf("[          ] grouped: %d passes declined (left to the reference loops), worst error %.3f of its "
              "bound\n",
              t.declined, t.worst);
  EXPECT_EQ(t.winograd, 0);
}

// The same inputs give the same bytes: on the same object (cached primitive,
// reused scratch buffers) and on a fresh one (newly created primitives).
// Backward-weights reduces partial sums across threads; the sizes are chosen
// so that its work is split (2 and 3 threads).
TEST_P(OneDnnConvTest, BitwiseDeterministic) {
  for (int threads : {2, 3}) {
    for (const Case& k : {Case{32, 32, 32, 32, 3, 3, 32, 1, 1, 1, 1, true},
                          Case{64, 8, 8, 128, 3, 3, 128, 1, 1, 1, 1, true},
                          Case{17, 15, 13, 3, 5, 5, 20, 2, 2, 2, 2, true}}) {
      const ConvGeometry g = geometry_of(k);
      const int64_t nx = int64_t{g.N} * g.H * g.W * g.C, nw = int64_t{g.KH} * g.KW * g.C * g.F,
                    ny = int64_t{g.N} * g.OH * g.OW * g.F;
      const std::vector<float> x = random_floats(rng, nx), w = random_floats(rng, nw),
                               b = random_floats(rng, g.F), dy = random_floats(rng, ny);
      auto run_all = [&](OneDnnConv& c) {
        std::vector<float> y = nans(ny), dx = nans(nx), dw = nans(nw);
        EXPECT_TRUE(c.forward(g, x.data(), w.data(), b.data(), y.data()));
        EXPECT_TRUE(c.backward_data(g, dy.data(), w.data(), dx.data()));
        EXPECT_TRUE(c.backward_weights(g, x.data(), dy.data(), dw.data()));
        return std::vector<std::vector<float>>{y, dx, dw};
      };
      OneDnnConv first(threads, GetParam().layout, GetParam().algorithm),
          second(threads, GetParam().layout, GetParam().algorithm);
      const auto a = run_all(first), again = run_all(first), fresh = run_all(second);
      const char* names[] = {"forward", "backward-data", "backward-weights"};
      for (int p = 0; p < 3; ++p) {
        const size_t bytes = a[p].size() * sizeof(float);
        EXPECT_EQ(std::memcmp(a[p].data(), again[p].data(), bytes), 0)
            << names[p] << " differs between two runs, " << threads << " threads, " << str(k);
        EXPECT_EQ(std::memcmp(a[p].data(), fresh[p].data(), bytes), 0)
            << names[p] << " differs on a fresh primitive, " << threads << " threads, " << str(k);
      }
    }
  }
}

TEST(OneDnnConv, UsesOptimisedKernelsAndKeepsTheCallersThreadCount) {
  OneDnnConv conv(2);
  const ConvGeometry g = geometry_of(Case{8, 16, 16, 32, 3, 3, 32, 1, 1, 1, 1, true});
  for (Pass pass : {Pass::Forward, Pass::BackwardData, Pass::BackwardWeights}) {
    const std::string impl = conv.implementation(pass, g);
    EXPECT_FALSE(impl.empty());
    EXPECT_EQ(impl.find("ref"), std::string::npos) << impl;
  }
  // A fused ReLU post-op keeps the forward on the same optimised kernel.
  EXPECT_EQ(conv.implementation(Pass::Forward, g, true, true),
            conv.implementation(Pass::Forward, g, true, false));
  // The thread count is set for oneDNN and restored afterwards.
  const int before = omp_get_max_threads();
  omp_set_num_threads(before + 3);
  std::vector<float> x(8 * 16 * 16 * 32, 0.5f), w(9 * 32 * 32, 0.25f), y(8 * 16 * 16 * 32);
  EXPECT_TRUE(conv.forward(g, x.data(), w.data(), nullptr, y.data()));
  EXPECT_EQ(omp_get_max_threads(), before + 3);
  omp_set_num_threads(before);
  EXPECT_FLOAT_EQ(y[16 * 32 * 5 + 32 * 5], 9 * 32 * 0.5f * 0.25f);  // an interior element
}

// ConvAlgorithm::Auto: Winograd exactly where the rule says (3x3, stride 1,
// >= 32 channels in and out, output maps of at most 16x16), and oneDNN
// really runs its Winograd kernel there, for all three passes (on a CPU
// where oneDNN has no Winograd kernels: direct ones, everywhere).
TEST(OneDnnConv, AutoPicksWinogradWhereItPays) {
  struct Rule {
    Case k;
    bool winograd;
  };
  const Rule rules[] = {
      {{8, 16, 16, 64, 3, 3, 64, 1, 1, 1, 1, true}, true},     // CIFAR stage 2
      {{8, 8, 8, 64, 3, 3, 128, 1, 1, 1, 1, true}, true},      // CIFAR stage 3
      {{8, 32, 32, 32, 3, 3, 32, 1, 1, 1, 1, true}, false},    // 32x32 maps: direct pays
      {{8, 16, 16, 16, 3, 3, 64, 1, 1, 1, 1, true}, false},    // 16 input channels
      {{8, 16, 16, 64, 3, 3, 16, 1, 1, 1, 1, true}, false},    // 16 output channels
      {{8, 16, 16, 64, 3, 3, 64, 2, 2, 1, 1, true}, false},    // stride 2
      {{8, 16, 16, 64, 5, 5, 64, 1, 1, 2, 2, true}, false},    // 5x5
      {{8, 16, 16, 64, 1, 1, 64, 1, 1, 0, 0, true}, false},    // 1x1
  };
  OneDnnConv conv(2);  // Auto is the default
  for (const Rule& r : rules) {
    const ConvGeometry g = geometry_of(r.k);
    EXPECT_EQ(onednn::uses_winograd(ConvAlgorithm::Auto, g), r.winograd) << str(r.k);
    EXPECT_FALSE(onednn::uses_winograd(ConvAlgorithm::Direct, g)) << str(r.k);
    for (Pass pass : {Pass::Forward, Pass::BackwardData, Pass::BackwardWeights}) {
      const std::string impl = conv.implementation(pass, g);
      EXPECT_EQ(impl.find("wino") != std::string::npos, r.winograd && onednn_has_winograd())
          << str(r.k) << ": " << impl;
    }
  }
}

TEST(OneDnnConv, OneDnnErrorsBecomeJanusErrorsNamingTheGeometry) {
  OneDnnConv conv(1);
  ConvGeometry g = geometry_of(Case{2, 8, 8, 4, 3, 3, 4, 1, 1, 1, 1, true});
  g.OH = 5;  // inconsistent with the rest: oneDNN rejects the descriptor
  std::vector<float> x(2 * 8 * 8 * 4), w(9 * 4 * 4), y(2 * 8 * 8 * 4);
  try {
    conv.forward(g, x.data(), w.data(), nullptr, y.data());
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("oneDNN convolution forward"), std::string::npos) << msg;
    EXPECT_NE(msg.find("OH=5"), std::string::npos) << msg;
  }
}

// A few training steps of a small CNN on the CPU device (whichever
// convolution path it uses), run twice from the same seed, end with the same
// parameters bit for bit: what exact resume of a killed training run needs.
TEST(OneDnnConv, TrainingStepsAreBitwiseReproducible) {
  const nlohmann::json config = {
      {"seed", 5},
      {"loss", "cross_entropy"},
      {"layers",
       {{{"type", "conv2d"}, {"n_out", 16}, {"kernel", 3}, {"pad", "same"}, {"bias", false}},
        {{"type", "batchnorm"}},
        {{"type", "relu"}},
        {{"type", "maxpool2d"}, {"kernel", 2}},
        {{"type", "conv2d"}, {"n_out", 32}, {"kernel", 3}, {"stride", 2}, {"pad", 1}, {"activation", "relu"}},
        {{"type", "flatten"}},
        {{"type", "dense"}, {"n_out", 10}, {"activation", "softmax"}}}}};
  const Shape xs{32, 16, 16, 3};
  std::mt19937_64 rng(9);
  const std::vector<float> xv = random_floats(rng, xs.numel());
  std::vector<float> yv(32 * 10, 0.0f);
  for (int i = 0; i < 32; ++i) yv[static_cast<size_t>(i * 10 + (i * 7) % 10)] = 1.0f;
  auto train = [&] {
    NeuralNetwork net = NeuralNetwork::from_config(config);
    net.build(xs, cpu_device());
    const Tensor x = Tensor::from_host(xv, xs, cpu_device());
    const Tensor y = Tensor::from_host(yv, Shape{32, 10}, cpu_device());
    SGD sgd(0.9);
    for (uint64_t step = 0; step < 3; ++step) {
      net.set_step(step);
      const Tensor out = net.forward(x, Mode::Train);
      net.backward(y, out);
      sgd.step(net.named_parameters(), 0.05);
    }
    std::vector<std::vector<float>> params;
    for (const auto& p : net.named_parameters()) params.push_back(p.parameter->value.to_host_f32());
    return params;
  };
  const auto a = train(), b = train();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].size(), b[i].size());
    EXPECT_EQ(std::memcmp(a[i].data(), b[i].data(), a[i].size() * sizeof(float)), 0)
        << "parameter " << i << " differs between two identical runs";
  }
}

// The NHWC <-> nChw16c conversions that stage Winograd's operands: every
// element lands where oneDNN's layout puts it (element (n, c, p) at
// ((n * blocks + c / 16) * HW + p) * 16 + c % 16), the padding lanes of a
// last partial block are zero, nothing is left unwritten, and the way back
// restores the input exactly; C a multiple of 16 or not, one channel.
TEST(OneDnnConv, BlockedLayoutConversionsAreExact) {
  struct Dims {
    int64_t N, HW, C;
  };
  for (const Dims& d : {Dims{2, 5, 16}, Dims{3, 7, 17}, Dims{2, 4, 64}, Dims{1, 3, 1}, Dims{4, 9, 40}}) {
    const int64_t blocks = (d.C + 15) / 16;
    ASSERT_EQ(fast::nchw16c_size(d.N, d.HW, d.C), d.N * blocks * 16 * d.HW);
    std::vector<float> nhwc(static_cast<size_t>(d.N * d.HW * d.C));
    for (size_t i = 0; i < nhwc.size(); ++i) nhwc[i] = static_cast<float>(i + 1);
    std::vector<float> blocked = nans(fast::nchw16c_size(d.N, d.HW, d.C));
    fast::nhwc_to_nchw16c(d.N, d.HW, d.C, nhwc.data(), blocked.data());
    const std::string what = "N" + std::to_string(d.N) + " HW" + std::to_string(d.HW) + " C" + std::to_string(d.C);
    for (int64_t n = 0; n < d.N; ++n)
      for (int64_t b = 0; b < blocks; ++b)
        for (int64_t p = 0; p < d.HW; ++p)
          for (int64_t j = 0; j < 16; ++j) {
            const int64_t c = b * 16 + j;
            const float want = c < d.C ? nhwc[static_cast<size_t>((n * d.HW + p) * d.C + c)] : 0.0f;
            const float got = blocked[static_cast<size_t>(((n * blocks + b) * d.HW + p) * 16 + j)];
            ASSERT_EQ(got, want) << what << " n" << n << " c" << c << " p" << p;
          }
    std::vector<float> back = nans(d.N * d.HW * d.C);
    fast::nchw16c_to_nhwc(d.N, d.HW, d.C, blocked.data(), back.data());
    EXPECT_EQ(back, nhwc) << what;
  }
}

// The device picks oneDNN for F32 unless JANUS_CPU_CONV=im2col.
TEST(OneDnnConv, DeviceConvolutionPath) {
  auto* dev = dynamic_cast<FastCpuDevice*>(&cpu_device());
  ASSERT_NE(dev, nullptr);
  const char* env = std::getenv("JANUS_CPU_CONV");
  const std::string expected = env && std::string(env) == "im2col" ? "im2col" : "onednn";
  EXPECT_EQ(dev->conv_path(), expected);
}

}  // namespace
}  // namespace janus
