// The fast CPU path (cpu_device(), FastCpuDevice) against the reference CPU
// device (reference_cpu_device()): every operation the fast device overrides,
// on random inputs over many shapes (odd sizes, batch 1, strides 1/2/3, all
// paddings, non-square kernels, 1x1 convolutions, sizes above and below the
// parallel thresholds), in float32 and float64.
//
// Tolerances
// - Element-wise operations, activations, optimizer updates and BatchNorm
//   (eval) run the reference kernels on slices of the tensor: bit-identical,
//   checked with a zero tolerance. So is max pooling (it only selects values),
//   ties included.
// - GEMM and convolutions: the reference accumulates in double and rounds once;
//   BLAS accumulates in T, in its own order. The error of a K-term dot product
//   is bounded by about K * eps * sum|a_k b_k|; with inputs in [-1, 1] that is
//   at most K * eps * K, and in practice ~sqrt(K) * eps * |result|. We allow
//   K * eps * 16 * max(1, max|ref|) per element: above the typical error by
//   orders of magnitude, yet far below any indexing bug (which gives O(1)
//   errors). eps is 2^-23 (F32) or 2^-52 (F64).
// - Column sums (sum_rows) keep the reference's double accumulator, so in F32
//   only the final rounding differs (4 eps relative); in F64 the summation
//   order matters like a dot product of length rows.
// - Average pooling sums KH*KW terms in T instead of double: KH*KW*4 eps.
// - BatchNorm (training): see BatchNormTrainMatchesReference.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "conv_case.hpp"
#include "janus/device.hpp"
#include "janus/error.hpp"
#include "janus/model.hpp"
#include "janus/nlohmann_json.hpp"
#include "janus/tensor.hpp"

namespace janus {
namespace {

Device& fast() { return cpu_device(); }
Device& ref() { return reference_cpu_device(); }

double eps_of(DType dt) { return dt == DType::F32 ? 1.1920929e-7 : 2.220446e-16; }

// A pair of tensors with identical values, one on each device.
struct Pair {
  Tensor f, r;
};

class FastCpu : public ::testing::TestWithParam<DType> {
 protected:
  DType dt() const { return GetParam(); }
  std::mt19937_64 rng{12345};

  std::vector<double> random_values(int64_t n, double lo = -1.0, double hi = 1.0) {
    std::uniform_real_distribution<double> u(lo, hi);
    std::vector<double> v(static_cast<size_t>(n));
    for (auto& e : v) e = u(rng);
    return v;
  }
  Pair pair_of(const std::vector<double>& v, const Shape& s) const {
    return {Tensor::from_host(v, s, fast(), dt()), Tensor::from_host(v, s, ref(), dt())};
  }
  Pair random(const Shape& s, double lo = -1.0, double hi = 1.0) {
    return pair_of(random_values(s.numel(), lo, hi), s);
  }
  // Small integers, so that pooling windows hold ties.
  Pair integers(const Shape& s, int levels) {
    std::uniform_int_distribution<int> u(0, levels - 1);
    std::vector<double> v(static_cast<size_t>(s.numel()));
    for (auto& e : v) e = u(rng);
    return pair_of(v, s);
  }
  // Output tensors filled with NaN: the device must write every element.
  Pair nans(const Shape& s) const {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    return {Tensor::full(s, nan, fast(), dt()), Tensor::full(s, nan, ref(), dt())};
  }

  // |fast - ref| <= tol * max(1, max|ref|) element by element (tol 0: equal).
  static void expect_close(const Pair& p, double tol, const std::string& what) {
    const std::vector<double> f = p.f.to_host(), r = p.r.to_host();
    ASSERT_EQ(f.size(), r.size()) << what;
    double scale = 1.0;
    for (double v : r) scale = std::max(scale, std::abs(v));
    int reported = 0;
    for (size_t i = 0; i < f.size(); ++i) {
      const bool ok = (std::isnan(f[i]) && std::isnan(r[i])) ||
                      (tol == 0.0 ? f[i] == r[i] : std::abs(f[i] - r[i]) <= tol * scale);
      if (!ok && reported++ < 5)
        ADD_FAILURE() << what << ": element " << i << " fast " << f[i] << " reference " << r[i]
                      << " (tolerance " << tol * scale << ")";
    }
  }
  double dot_tol(int64_t K) const { return 16.0 * static_cast<double>(std::max<int64_t>(K, 1)) * eps_of(dt()); }
};

INSTANTIATE_TEST_SUITE_P(Dtypes, FastCpu, ::testing::Values(DType::F32, DType::F64),
                         [](const auto& param_info) { return std::string(dtype_name(param_info.param)); });

// ---- devices ----------------------------------------------------------------------

TEST(FastCpuDevice, NamesAndRegistry) {
  EXPECT_EQ(cpu_device().name(), "cpu");
  EXPECT_EQ(reference_cpu_device().name(), "cpu:reference");
  EXPECT_NE(&cpu_device(), &reference_cpu_device());
  EXPECT_EQ(&get_device("cpu"), &cpu_device());
  EXPECT_EQ(&get_device("cpu:reference"), &reference_cpu_device());
  EXPECT_EQ(reference_cpu_device().kind(), DeviceKind::CPU);
}

TEST(FastCpuDevice, RejectsTensorsOfTheOtherCpuDevice) {
  Tensor a = Tensor::zeros({4, 4}, reference_cpu_device());
  Tensor c = Tensor::zeros({4, 4}, cpu_device());
  try {
    cpu_device().gemm(false, false, 1.0, a, c, 0.0, c);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cpu:reference"), std::string::npos) << e.what();
  }
}

TEST(FastCpuDevice, CachedStorageIsAlignedAndReused) {
  Device& d = cpu_device();
  for (size_t bytes : {size_t{100}, size_t{1} << 20, (size_t{1} << 20) + 4}) {
    void* p = d.allocate(bytes);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
    std::vector<char> src(bytes, 7), back(bytes, 0);
    d.copy_to_device(p, src.data(), bytes);
    d.copy_to_host(back.data(), p, bytes);
    EXPECT_EQ(src, back);
    d.deallocate(p, bytes);
    void* q = d.allocate(bytes);  // a large block comes back from the cache
    if (bytes >= (size_t{1} << 20)) {
      EXPECT_EQ(p, q);
    }
    d.deallocate(q, bytes);
  }
}

// ---- GEMM ----------------------------------------------------------------------------

TEST_P(FastCpu, GemmAllTransposesAndShapes) {
  const int64_t sizes[] = {1, 7, 33, 130};
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (int64_t M : sizes)
        for (int64_t N : sizes)
          for (int64_t K : {int64_t{1}, int64_t{17}, int64_t{300}}) {
            if (M * N * K > 130 * 130 * 17 && !(M == 130 && N == 130)) continue;
            Pair a = random(ta ? Shape{K, M} : Shape{M, K});
            Pair b = random(tb ? Shape{N, K} : Shape{K, N});
            const std::string what = "gemm ta=" + std::to_string(ta) + " tb=" + std::to_string(tb) +
                                     " M=" + std::to_string(M) + " N=" + std::to_string(N) +
                                     " K=" + std::to_string(K);
            Pair c = nans({M, N});  // beta = 0 must not read C
            fast().gemm(ta, tb, 1.0, a.f, b.f, 0.0, c.f);
            ref().gemm(ta, tb, 1.0, a.r, b.r, 0.0, c.r);
            expect_close(c, dot_tol(K), what);
            Pair c2 = random({M, N});  // alpha, beta
            fast().gemm(ta, tb, -0.5, a.f, b.f, 0.75, c2.f);
            ref().gemm(ta, tb, -0.5, a.r, b.r, 0.75, c2.r);
            expect_close(c2, dot_tol(K + 1), what + " alpha/beta");
          }
}

// The dense layers' shapes (the MLP 784-256-10 and the CIFAR model's 2048->10
// head at batch 128: forward, dW = X^T dZ, dX = dZ W^T) and odd sizes, big
// enough to be split over the team's threads along M or N; each must match
// the reference and be bit-identical when repeated.
TEST_P(FastCpu, GemmDenseLayerShapesSplitAndDeterministic) {
  struct Case {
    bool ta, tb;
    int64_t M, N, K;
  };
  const Case cases[] = {{false, false, 128, 256, 784}, {true, false, 784, 256, 128},
                        {false, true, 128, 784, 256},  {false, false, 128, 10, 2048},
                        {true, false, 2048, 10, 128},  {false, true, 128, 2048, 10},
                        {true, true, 257, 131, 67},    {false, true, 45, 301, 97},
                        {true, false, 333, 17, 211},   {false, false, 31, 1000, 40}};
  for (const Case& k : cases) {
    const std::string what = "gemm ta=" + std::to_string(k.ta) + " tb=" + std::to_string(k.tb) +
                             " M=" + std::to_string(k.M) + " N=" + std::to_string(k.N) +
                             " K=" + std::to_string(k.K);
    Pair a = random(k.ta ? Shape{k.K, k.M} : Shape{k.M, k.K});
    Pair b = random(k.tb ? Shape{k.N, k.K} : Shape{k.K, k.N});
    Pair c = nans({k.M, k.N});
    fast().gemm(k.ta, k.tb, 1.0, a.f, b.f, 0.0, c.f);
    ref().gemm(k.ta, k.tb, 1.0, a.r, b.r, 0.0, c.r);
    expect_close(c, dot_tol(k.K), what);
    const std::vector<double> first = c.f.to_host();
    for (int repeat = 0; repeat < 3; ++repeat) {
      Tensor again = Tensor::full({k.M, k.N}, std::numeric_limits<double>::quiet_NaN(), fast(), dt());
      fast().gemm(k.ta, k.tb, 1.0, a.f, b.f, 0.0, again);
      ASSERT_EQ(again.to_host(), first) << what << ": not bit-identical on repeat " << repeat;
    }
    Pair c2 = random({k.M, k.N});  // accumulate into C, as beta = 1 would for a folded bias
    fast().gemm(k.ta, k.tb, 0.5, a.f, b.f, 1.0, c2.f);
    ref().gemm(k.ta, k.tb, 0.5, a.r, b.r, 1.0, c2.r);
    expect_close(c2, dot_tol(k.K + 1), what + " beta=1");
  }
}

TEST_P(FastCpu, GemmHigherRankViews) {
  Pair a = random({4, 5, 24});  // (20, 24)
  Pair b = random({24, 31});
  Pair c = nans({4, 5, 31});
  fast().gemm(false, false, 1.0, a.f, b.f, 0.0, c.f);
  ref().gemm(false, false, 1.0, a.r, b.r, 0.0, c.r);
  expect_close(c, dot_tol(24), "gemm rank 3");
}

// ---- convolution -------------------------------------------------------------------

using testing::ConvCase;
using testing::geometry_of;

std::vector<ConvCase> conv_cases() {
  std::vector<ConvCase> cases = {
      // N  H   W   C  KH KW F  sh sw ph pw
      {1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0},      // smallest
      {1, 5, 7, 3, 3, 3, 4, 1, 1, 1, 1},      // batch 1, same padding, odd sizes
      {3, 8, 8, 4, 1, 1, 5, 1, 1, 0, 0},      // 1x1 stride 1: plain GEMM path
      {2, 8, 9, 4, 1, 1, 3, 2, 2, 0, 0},      // 1x1 stride 2: im2col path
      {2, 7, 6, 2, 2, 3, 3, 1, 1, 0, 0},      // non-square kernel, valid
      {3, 9, 7, 3, 3, 2, 2, 2, 1, 1, 0},      // mixed strides and paddings
      {2, 10, 11, 5, 5, 5, 3, 2, 2, 2, 2},    // 5x5 stride 2 same
      {1, 6, 6, 1, 3, 3, 1, 3, 3, 2, 1},      // stride 3, padding larger than needed
      {4, 5, 5, 3, 5, 3, 6, 1, 2, 0, 1},      // kernel as tall as the input
      {5, 4, 4, 2, 3, 3, 7, 1, 1, 2, 2},      // padding 2 with a 3x3 kernel
      {6, 64, 64, 16, 3, 3, 8, 1, 1, 1, 1},   // large images: one image per chunk
      {33, 12, 12, 8, 3, 3, 16, 1, 1, 1, 1},  // many chunks, uneven over threads
      {2, 16, 16, 32, 3, 3, 64, 2, 2, 1, 1},  // deep channels, stride 2
  };
  return cases;
}

// The cases above, and grouped / depthwise ones (oneDNN's grouped kernels for
// float32, the reference loops for float64: im2col takes no groups).
std::vector<ConvGeometry> conv_geometries() {
  std::vector<ConvGeometry> out;
  for (const ConvCase& k : conv_cases()) out.push_back(geometry_of(k));
  struct Grouped {
    ConvCase k;
    int groups;
  };
  for (const Grouped& c : {Grouped{{2, 7, 6, 4, 3, 3, 6, 1, 1, 1, 1}, 2},     // 2 groups of 2 -> 3
                           Grouped{{2, 9, 8, 8, 3, 3, 8, 2, 2, 1, 1}, 8},     // depthwise, stride 2
                           Grouped{{3, 6, 7, 3, 3, 3, 6, 1, 1, 1, 1}, 3},     // depthwise, multiplier 2
                           Grouped{{2, 5, 5, 12, 1, 1, 6, 1, 1, 0, 0}, 3}}) { // 1x1, 3 groups
    ConvGeometry g = geometry_of(c.k);
    g.groups = c.groups;
    out.push_back(g);
  }
  return out;
}

std::string str(const ConvGeometry& g) { return conv_geometry_str(g); }

TEST_P(FastCpu, Conv2dForwardMatchesReference) {
  for (const ConvGeometry& g : conv_geometries()) {
    const int64_t K = int64_t{g.KH} * g.KW * g.group_channels();
    Pair x = random({g.N, g.H, g.W, g.C});
    Pair w = random({g.KH, g.KW, g.group_channels(), g.F});
    Pair b = random({g.F});
    Pair y = nans({g.N, g.OH, g.OW, g.F});
    fast().conv2d_forward(g, x.f, w.f, b.f, y.f);
    ref().conv2d_forward(g, x.r, w.r, b.r, y.r);
    expect_close(y, dot_tol(K + 1), "conv2d_forward " + str(g));
    Pair y2 = nans({g.N, g.OH, g.OW, g.F});  // without bias
    fast().conv2d_forward(g, x.f, w.f, Tensor(), y2.f);
    ref().conv2d_forward(g, x.r, w.r, Tensor(), y2.r);
    expect_close(y2, dot_tol(K), "conv2d_forward (no bias) " + str(g));
  }
}

TEST_P(FastCpu, Conv2dBackwardDataMatchesReference) {
  for (const ConvGeometry& g : conv_geometries()) {
    Pair dy = random({g.N, g.OH, g.OW, g.F});
    Pair w = random({g.KH, g.KW, g.group_channels(), g.F});
    Pair dx = nans({g.N, g.H, g.W, g.C});
    fast().conv2d_backward_data(g, dy.f, w.f, dx.f);
    ref().conv2d_backward_data(g, dy.r, w.r, dx.r);
    // Each dx element sums up to KH*KW dot products of length F/groups.
    expect_close(dx, dot_tol(int64_t{g.group_filters()} * g.KH * g.KW), "conv2d_backward_data " + str(g));
  }
}

TEST_P(FastCpu, Conv2dBackwardFilterMatchesReference) {
  for (const ConvGeometry& g : conv_geometries()) {
    Pair x = random({g.N, g.H, g.W, g.C});
    Pair dy = random({g.N, g.OH, g.OW, g.F});
    Pair dw = nans({g.KH, g.KW, g.group_channels(), g.F});
    fast().conv2d_backward_filter(g, x.f, dy.f, dw.f);
    ref().conv2d_backward_filter(g, x.r, dy.r, dw.r);
    expect_close(dw, dot_tol(int64_t{g.N} * g.OH * g.OW), "conv2d_backward_filter " + str(g));
  }
}

// conv2d_activation_forward (y = act(conv + bias), ReLU fused into oneDNN's
// forward primitive) against conv2d_forward then activation_forward on the
// same device: bit-identical (sign of zero included), on both devices, with
// and without bias. A fused ReLU that rounded differently, skipped the bias or
// clamped the wrong side would fail here.
TEST_P(FastCpu, FusedConvActivationEqualsUnfused) {
  const auto& kinds = kAllActivations;  // every entry of activation_functions.hpp
  auto bits_equal = [](const Tensor& a, const Tensor& b) {
    const std::vector<double> u = a.to_host(), v = b.to_host();
    return u.size() == v.size() && std::memcmp(u.data(), v.data(), sizeof(double) * u.size()) == 0;
  };
  for (const ConvGeometry& g : conv_geometries()) {
    Pair x = random({g.N, g.H, g.W, g.C});
    Pair w = random({g.KH, g.KW, g.group_channels(), g.F});
    Pair b = random({g.F});
    for (ActivationKind act : kinds) {
      for (bool with_bias : {true, false}) {
        const std::string what = "conv+" + std::string(activation_name(act)) +
                                 (with_bias ? "" : " (no bias) ") + str(g);
        for (Device* dev : {&fast(), &ref()}) {
          const bool on_fast = dev == &fast();
          const Tensor& xd = on_fast ? x.f : x.r;
          const Tensor& wd = on_fast ? w.f : w.r;
          const Tensor bd = with_bias ? (on_fast ? b.f : b.r) : Tensor();
          const double nan = std::numeric_limits<double>::quiet_NaN();
          Tensor fused = Tensor::full({g.N, g.OH, g.OW, g.F}, nan, *dev, dt());
          dev->conv2d_activation_forward(act, g, xd, wd, bd, fused);
          Tensor z = Tensor::full({g.N, g.OH, g.OW, g.F}, nan, *dev, dt());
          Tensor y = Tensor::full({g.N, g.OH, g.OW, g.F}, nan, *dev, dt());
          dev->conv2d_forward(g, xd, wd, bd, z);
          dev->activation_forward(act, z, y);
          EXPECT_TRUE(bits_equal(fused, y)) << what << (on_fast ? " (fast)" : " (reference)");
        }
      }
    }
  }
}

TEST(FastCpuDevice, FusedConvActivationChecksItsArguments) {
  ConvGeometry g;
  g.N = 1; g.H = g.W = 4; g.C = 2; g.KH = g.KW = 3; g.F = 3; g.pad_h = g.pad_w = 1; g.OH = g.OW = 4;
  Tensor x = Tensor::zeros({1, 4, 4, 2}, cpu_device()), w = Tensor::zeros({3, 3, 2, 3}, cpu_device());
  Tensor bias = Tensor::zeros({3}, cpu_device()), y = Tensor::zeros({1, 4, 4, 3}, cpu_device());
  EXPECT_NO_THROW(cpu_device().conv2d_activation_forward(ActivationKind::ReLU, g, x, w, bias, y));
  Tensor wrong_bias = Tensor::zeros({4}, cpu_device()), small_y = Tensor::zeros({1, 4, 4, 2}, cpu_device());
  EXPECT_THROW(cpu_device().conv2d_activation_forward(ActivationKind::ReLU, g, x, w, wrong_bias, y), Error);
  EXPECT_THROW(cpu_device().conv2d_activation_forward(ActivationKind::ReLU, g, x, w, bias, small_y), Error);
}

// A grouped convolution says which kernel runs it: oneDNN for float32 (unless
// JANUS_CPU_CONV=im2col), the reference loops for float64, never the im2col
// kernels (which take no groups).
TEST(FastCpuDevice, GroupedConvolutionNamesItsKernel) {
  ConvGeometry g;
  g.N = 2; g.H = g.W = 8; g.C = 8; g.KH = g.KW = 3; g.F = 16; g.pad_h = g.pad_w = 1; g.OH = g.OW = 8;
  g.groups = 8;
  const std::string f64 = cpu_device().conv2d_kernel(g, DType::F64);
  EXPECT_NE(f64.find("reference loops (grouped"), std::string::npos) << f64;
  const char* env = std::getenv("JANUS_CPU_CONV");
  const std::string f32 = cpu_device().conv2d_kernel(g, DType::F32);
  const bool im2col = env && std::string(env) == "im2col";
  EXPECT_NE(f32.find(im2col ? "reference loops (grouped" : "oneDNN"), std::string::npos) << f32;
  std::printf("[          ] depthwise 8x8x8 -> 16: float32 %s; float64 %s\n", f32.c_str(), f64.c_str());
}

// ---- pooling ------------------------------------------------------------------------

TEST_P(FastCpu, Pool2dMatchesReference) {
  struct PoolCase {
    int N, H, W, C, KH, KW, sh, sw, ph, pw;
  };
  const std::vector<PoolCase> cases = {
      {3, 8, 8, 5, 2, 2, 2, 2, 0, 0},     // tiled 2x2 (the CNN case)
      {1, 7, 9, 3, 2, 2, 2, 2, 0, 0},     // 2x2 with a leftover row / column
      {2, 6, 6, 4, 3, 3, 3, 3, 0, 0},     // tiled 3x3
      {2, 9, 8, 3, 3, 3, 2, 2, 1, 1},     // overlapping, padded
      {2, 5, 7, 2, 3, 2, 1, 2, 1, 0},     // non-square, overlapping rows
      {1, 1, 1, 1, 1, 1, 1, 1, 0, 0},     // trivial
      {64, 16, 16, 32, 2, 2, 2, 2, 0, 0}, // large: parallel path
      {2, 7, 7, 70, 2, 2, 1, 1, 0, 0},    // overlapping 2x2, channels over one 64-chunk
      {3, 9, 9, 67, 3, 3, 2, 2, 1, 1},    // padded: 2x2 in-bounds corners, chunked channels
      {2, 6, 8, 131, 3, 3, 3, 3, 0, 0},   // tiled 3x3 over three channel chunks
      {1, 5, 5, 7, 3, 3, 1, 1, 2, 2},     // padding 2: windows of a single position
      {33, 15, 13, 24, 3, 2, 2, 1, 1, 0}, // large, overlapping, uneven blocks over threads
      {5, 32, 32, 3, 2, 2, 2, 2, 0, 0},   // few channels (narrower than a vector)
  };
  for (const PoolCase& k : cases) {
    PoolGeometry g;
    g.N = k.N; g.H = k.H; g.W = k.W; g.C = k.C; g.KH = k.KH; g.KW = k.KW;
    g.stride_h = k.sh; g.stride_w = k.sw; g.pad_h = k.ph; g.pad_w = k.pw;
    g.OH = (g.H + 2 * g.pad_h - g.KH) / g.stride_h + 1;
    g.OW = (g.W + 2 * g.pad_w - g.KW) / g.stride_w + 1;
    const std::string what = "pool N" + std::to_string(k.N) + " " + std::to_string(k.H) + "x" +
                             std::to_string(k.W) + "x" + std::to_string(k.C) + " k" +
                             std::to_string(k.KH) + "x" + std::to_string(k.KW) + " s" +
                             std::to_string(k.sh) + "," + std::to_string(k.sw) + " p" +
                             std::to_string(k.ph) + "," + std::to_string(k.pw);
    for (int data = 0; data < 3; ++data) {  // random, ties, ties with NaNs
      const bool ties = data > 0;
      std::vector<double> xv;
      if (ties) {
        std::uniform_int_distribution<int> u(0, 2);
        xv.resize(static_cast<size_t>(int64_t{g.N} * g.H * g.W * g.C));
        for (auto& e : xv) e = u(rng);
        // NaNs first in some windows and later in others: the reference's
        // scan keeps a leading NaN and never picks a later one.
        if (data == 2)
          for (size_t i = 0; i < xv.size(); i += 7) xv[i] = std::numeric_limits<double>::quiet_NaN();
      } else {
        xv = random_values(int64_t{g.N} * g.H * g.W * g.C);
      }
      Pair x = pair_of(xv, {g.N, g.H, g.W, g.C});
      Pair dy = random({g.N, g.OH, g.OW, g.C});
      for (PoolMode mode : {PoolMode::Max, PoolMode::Average}) {
        const bool max = mode == PoolMode::Max;
        const std::string w2 = what + (max ? " max" : " avg") + (ties ? " ties" : "") +
                               (data == 2 ? " nan" : "");
        Pair y = nans({g.N, g.OH, g.OW, g.C});
        fast().pool2d_forward(mode, g, x.f, y.f);
        ref().pool2d_forward(mode, g, x.r, y.r);
        const double avg_tol = 4.0 * g.KH * g.KW * eps_of(dt());
        expect_close(y, max ? 0.0 : avg_tol, w2 + " forward");
        Pair dx = nans({g.N, g.H, g.W, g.C});
        fast().pool2d_backward(mode, g, x.f, dy.f, dx.f);
        ref().pool2d_backward(mode, g, x.r, dy.r, dx.r);
        // Overlapping max windows may add several gradients in T.
        const bool overlap = g.stride_h < g.KH || g.stride_w < g.KW;
        expect_close(dx, max && !overlap ? 0.0 : avg_tol, w2 + " backward");
      }
    }
  }
}

// ---- element-wise, activations, reductions ------------------------------------------

TEST_P(FastCpu, ElementwiseBitIdentical) {
  for (int64_t n : {int64_t{1}, int64_t{1000}, int64_t{100003}}) {
    const std::string sz = " n=" + std::to_string(n);
    Pair x = random({n}), y = random({n});
    fast().fill(y.f, 0.25);
    ref().fill(y.r, 0.25);
    expect_close(y, 0.0, "fill" + sz);
    Pair z = random({n});
    fast().axpby(1.5, x.f, -0.5, z.f);
    ref().axpby(1.5, x.r, -0.5, z.r);
    expect_close(z, 0.0, "axpby" + sz);
    Pair z0 = nans({n});
    fast().axpby(2.0, x.f, 0.0, z0.f);
    ref().axpby(2.0, x.r, 0.0, z0.r);
    expect_close(z0, 0.0, "axpby beta=0" + sz);
    Pair a = random({n}), o = nans({n});
    fast().multiply(x.f, a.f, o.f);
    ref().multiply(x.r, a.r, o.r);
    expect_close(o, 0.0, "multiply" + sz);
  }
}

TEST_P(FastCpu, BiasAndColumnSums) {
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {7, 13}, {128, 256}, {4099, 32}, {50000, 3}}) {
    const std::string what = " " + std::to_string(rows) + "x" + std::to_string(cols);
    Pair y = random({rows, cols}), b = random({cols});
    fast().add_bias(y.f, b.f);
    ref().add_bias(y.r, b.r);
    expect_close(y, 0.0, "add_bias" + what);
    Pair s = nans({cols});
    fast().sum_rows(y.f, 0.0, s.f);
    ref().sum_rows(y.r, 0.0, s.r);
    // Double accumulators in another order: for F32 only the final rounding
    // differs; for F64 the order matters at the dot-product level.
    const double tol = dt() == DType::F32 ? 4 * eps_of(dt()) : dot_tol(rows);
    expect_close(s, tol, "sum_rows" + what);
    Pair s2 = random({cols});
    fast().sum_rows(y.f, 0.5, s2.f);
    ref().sum_rows(y.r, 0.5, s2.r);
    expect_close(s2, tol, "sum_rows beta" + what);
  }
}

TEST_P(FastCpu, ActivationsBitIdentical) {
  const auto& kinds = kAllActivations;  // every entry of activation_functions.hpp
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {3, 10}, {128, 10}, {4096, 33}}) {
    for (ActivationKind act : kinds) {
      const std::string what = "activation " + std::string(activation_name(act)) + " " +
                               std::to_string(rows) + "x" + std::to_string(cols);
      Pair z = random({rows, cols}, -3.0, 3.0);
      if (act == ActivationKind::ReLU || act == ActivationKind::LeakyReLU) {  // exact zeros: the kink
        fast().fill(z.f, 0.0);
        ref().fill(z.r, 0.0);
        std::vector<double> v = random_values(rows * cols, -3.0, 3.0);
        for (size_t i = 0; i < v.size(); i += 3) v[i] = 0.0;
        z = pair_of(v, {rows, cols});
      }
      Pair y = nans({rows, cols});
      fast().activation_forward(act, z.f, y.f);
      ref().activation_forward(act, z.r, y.r);
      expect_close(y, 0.0, what + " forward");
      Pair dy = random({rows, cols}), dz = nans({rows, cols});
      fast().activation_backward(act, z.f, y.f, dy.f, dz.f);
      ref().activation_backward(act, z.r, y.r, dy.r, dz.r);
      expect_close(dz, 0.0, what + " backward");
      if (act != ActivationKind::SoftMax) {  // in place (y aliases z)
        Pair zz = pair_of(z.r.to_host(), {rows, cols});
        fast().activation_forward(act, zz.f, zz.f);
        ref().activation_forward(act, zz.r, zz.r);
        expect_close(zz, 0.0, what + " in place");
      }
    }
  }
}

// bias_activation_forward (z += bias; y = act(z)) against the unfused
// reference ops add_bias + activation_forward: bit-identical, in place too.
TEST_P(FastCpu, FusedBiasActivationEqualsUnfused) {
  const auto& kinds = kAllActivations;  // every entry of activation_functions.hpp
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {3, 10}, {128, 256}, {129, 257}, {4096, 33}}) {
    for (ActivationKind act : kinds) {
      const std::string what = "bias+activation " + std::string(activation_name(act)) + " " +
                               std::to_string(rows) + "x" + std::to_string(cols);
      std::vector<double> zv = random_values(rows * cols, -3.0, 3.0), bv = random_values(cols);
      // Exact zeros after the bias: ReLU's kink (0 maps to 0, derivative 0).
      for (size_t i = 0; i < zv.size(); i += 5) zv[i] = -bv[i % static_cast<size_t>(cols)];
      Pair b = pair_of(bv, {cols});
      Pair z_fused = pair_of(zv, {rows, cols}), y_fused = nans({rows, cols});
      fast().bias_activation_forward(act, z_fused.f, b.f, y_fused.f);
      ref().bias_activation_forward(act, z_fused.r, b.r, y_fused.r);
      // The unfused reference: add_bias, then activation_forward.
      Tensor z_ref = Tensor::from_host(zv, {rows, cols}, ref(), dt());
      Tensor y_ref = Tensor::full({rows, cols}, 0.0, ref(), dt());
      ref().add_bias(z_ref, b.r);
      ref().activation_forward(act, z_ref, y_ref);
      EXPECT_EQ(z_fused.f.to_host(), z_ref.to_host()) << what << ": z (fast)";
      EXPECT_EQ(y_fused.f.to_host(), y_ref.to_host()) << what << ": y (fast)";
      EXPECT_EQ(z_fused.r.to_host(), z_ref.to_host()) << what << ": z (reference device)";
      EXPECT_EQ(y_fused.r.to_host(), y_ref.to_host()) << what << ": y (reference device)";
      if (act != ActivationKind::SoftMax) {  // y aliasing z
        Tensor zz = Tensor::from_host(zv, {rows, cols}, fast(), dt());
        fast().bias_activation_forward(act, zz, b.f, zz);
        EXPECT_EQ(zz.to_host(), y_ref.to_host()) << what << ": in place";
      }
    }
  }
}

TEST(FastCpuDevice, FusedBiasActivationChecksItsArguments) {
  Tensor z = Tensor::zeros({4, 3}, cpu_device()), y = Tensor::zeros({4, 3}, cpu_device());
  Tensor wrong_bias = Tensor::zeros({4}, cpu_device());
  EXPECT_THROW(cpu_device().bias_activation_forward(ActivationKind::ReLU, z, wrong_bias, y), Error);
  Tensor bias = Tensor::zeros({3}, cpu_device()), small_y = Tensor::zeros({4, 2}, cpu_device());
  EXPECT_THROW(cpu_device().bias_activation_forward(ActivationKind::ReLU, z, bias, small_y), Error);
}

TEST_P(FastCpu, BatchNormEvalBitIdentical) {
  for (auto [rows, C] : {std::pair<int64_t, int64_t>{5, 3}, {8192, 16}, {4099, 37}}) {
    Pair x = random({rows, C}), gamma = random({C}), beta = random({C}), mean = random({C});
    Pair var = random({C}, 0.1, 2.0), y = nans({rows, C});
    fast().batchnorm_forward_eval(x.f, gamma.f, beta.f, mean.f, var.f, 1e-5, y.f);
    ref().batchnorm_forward_eval(x.r, gamma.r, beta.r, mean.r, var.r, 1e-5, y.r);
    expect_close(y, 0.0, "batchnorm_forward_eval " + std::to_string(rows));
  }
}

// BatchNorm training forward and backward: per-channel statistics and
// gradients are sums over `rows` values, accumulated in double by both
// devices, in another order (blocks merged with Chan's update in the fast
// path). In F32 the outputs therefore differ by the final rounding only (a
// few eps; 8 eps allowed, and 8 eps relative for the statistics). In F64 the
// order matters at the level of a dot product of length rows: dot_tol(rows).
// Shapes: below the fast threshold (reference on both), one chunk, many
// chunks with a ragged last chunk and block, C = 1, wide dense features (also
// with fewer rows than a chunk needs: one chunk), and
// channels with a large mean relative to their spread (the case a one-pass
// E[x^2] - E[x]^2 would get wrong).
TEST_P(FastCpu, BatchNormTrainMatchesReference) {
  struct Case {
    int64_t rows, C;
    double offset;  // added to x: |mean| >> std when large
  };
  for (const Case& k : {Case{5, 3, 0.0}, Case{4096, 8, 0.0}, Case{131072, 32, 0.0},
                        Case{32771, 64, 0.0}, Case{40000, 1, 0.0}, Case{128, 4096, 0.0},
                        Case{50003, 17, 100.0}, Case{8192, 128, 0.0}, Case{3, 16384, 0.0}}) {
    const int64_t rows = k.rows, C = k.C;
    const std::string what = " " + std::to_string(rows) + "x" + std::to_string(C);
    const double tol = dt() == DType::F32 ? 8 * eps_of(dt()) : dot_tol(rows);
    Pair x = random({rows, C}, k.offset - 1.0, k.offset + 1.0);
    Pair gamma = random({C}, 0.5, 1.5), beta = random({C});
    Pair rmean = random({C}), rvar = random({C}, 0.5, 2.0);
    Pair smean = nans({C}), sinv = nans({C}), y = nans({rows, C});
    fast().batchnorm_forward_train(x.f, gamma.f, beta.f, 0.1, 1e-5, rmean.f, rvar.f, smean.f,
                                   sinv.f, y.f);
    ref().batchnorm_forward_train(x.r, gamma.r, beta.r, 0.1, 1e-5, rmean.r, rvar.r, smean.r,
                                  sinv.r, y.r);
    // The mean and inverse std are statistics of rows values (relative).
    expect_close(smean, tol, "batchnorm saved_mean" + what);
    expect_close(sinv, tol, "batchnorm saved_invstd" + what);
    expect_close(rmean, tol, "batchnorm running_mean" + what);
    expect_close(rvar, tol, "batchnorm running_var" + what);
    // y = gamma * (x - mean) * invstd + beta, |y| = O(few); with a large
    // offset, x - mean cancels: the error of mean (relative to |mean|) is
    // amplified by |mean| * invstd.
    const double amp = std::max(1.0, k.offset * std::sqrt(3.0));
    expect_close(y, tol * amp, "batchnorm y" + what);

    Pair dy = random({rows, C}), dx = nans({rows, C}), dgamma = nans({C}), dbeta = nans({C});
    fast().batchnorm_backward(x.f, dy.f, gamma.f, smean.f, sinv.f, dx.f, dgamma.f, dbeta.f);
    // The reference gets the fast path's saved statistics too, so that only
    // the backward kernels are compared.
    Pair smean2 = pair_of(smean.f.to_host(), {C}), sinv2 = pair_of(sinv.f.to_host(), {C});
    ref().batchnorm_backward(x.r, dy.r, gamma.r, smean2.r, sinv2.r, dx.r, dgamma.r, dbeta.r);
    // dbeta, dgamma: sums of rows terms of size O(1) (times amp for dgamma,
    // whose terms hold x - mean): the same bounds as the statistics.
    expect_close(dbeta, tol, "batchnorm dbeta" + what);
    expect_close(dgamma, tol * amp, "batchnorm dgamma" + what);
    expect_close(dx, tol * amp, "batchnorm dx" + what);

    // Deterministic: a second run gives the same bits.
    Pair y2 = nans({rows, C});
    Pair rmean2 = random({C}), rvar2 = random({C}, 0.5, 2.0);
    Pair smean3 = nans({C}), sinv3 = nans({C});
    fast().batchnorm_forward_train(x.f, gamma.f, beta.f, 0.1, 1e-5, rmean2.f, rvar2.f, smean3.f,
                                   sinv3.f, y2.f);
    EXPECT_EQ(y2.f.to_host(), y.f.to_host()) << "batchnorm not deterministic" << what;
  }
}

TEST_P(FastCpu, BatchNormTrainInPlace) {
  // y may alias x, and dx may alias dy (the interface allows it).
  const int64_t rows = 32768, C = 16;
  Pair x = random({rows, C}), gamma = random({C}, 0.5, 1.5), beta = random({C});
  Pair rm = random({C}), rv = random({C}, 0.5, 2.0), sm = nans({C}), si = nans({C});
  const std::vector<double> xv = x.r.to_host();
  Pair y = nans({rows, C});
  fast().batchnorm_forward_train(x.f, gamma.f, beta.f, 0.1, 1e-5, rm.f, rv.f, sm.f, si.f, y.f);
  Pair rm2 = random({C}), rv2 = random({C}, 0.5, 2.0), sm2 = nans({C}), si2 = nans({C});
  Pair xi = pair_of(xv, {rows, C});
  fast().batchnorm_forward_train(xi.f, gamma.f, beta.f, 0.1, 1e-5, rm2.f, rv2.f, sm2.f, si2.f, xi.f);
  EXPECT_EQ(xi.f.to_host(), y.f.to_host());
  Pair dy = random({rows, C}), dx = nans({rows, C}), dg = nans({C}), db = nans({C});
  const std::vector<double> dyv = dy.f.to_host();
  fast().batchnorm_backward(x.f, dy.f, gamma.f, sm.f, si.f, dx.f, dg.f, db.f);
  Pair dyi = pair_of(dyv, {rows, C});
  fast().batchnorm_backward(x.f, dyi.f, gamma.f, sm.f, si.f, dyi.f, dg.f, db.f);
  EXPECT_EQ(dyi.f.to_host(), dx.f.to_host());
}

TEST_P(FastCpu, OptimizerUpdatesBitIdentical) {
  for (int64_t n : {int64_t{10}, int64_t{100003}}) {
    for (double momentum : {0.0, 0.9})
      for (bool nesterov : {false, true}) {
        if (momentum == 0.0 && nesterov) continue;
        Pair w = random({n}), g = random({n}), v = random({n});
        Tensor none;
        fast().sgd_update(w.f, g.f, momentum != 0.0 ? v.f : none, 0.1, momentum, 1e-3, nesterov);
        ref().sgd_update(w.r, g.r, momentum != 0.0 ? v.r : none, 0.1, momentum, 1e-3, nesterov);
        expect_close(w, 0.0, "sgd w");
        if (momentum != 0.0) expect_close(v, 0.0, "sgd velocity");
      }
    for (bool decoupled : {false, true}) {
      Pair w = random({n}), g = random({n}), m = random({n}), v = random({n}, 0.0, 1.0);
      fast().adam_update(w.f, g.f, m.f, v.f, 1e-3, 0.9, 0.999, 1e-8, 1e-2, decoupled, 3);
      ref().adam_update(w.r, g.r, m.r, v.r, 1e-3, 0.9, 0.999, 1e-8, 1e-2, decoupled, 3);
      expect_close(w, 0.0, "adam w");
      expect_close(m, 0.0, "adam m");
      expect_close(v, 0.0, "adam v");
    }
  }
}

// ---- a whole network --------------------------------------------------------------------

TEST_P(FastCpu, CnnTrainingStepMatchesReference) {
  const nlohmann::json config = {
      {"seed", 3},
      {"loss", "cross_entropy"},
      {"layers",
       {{{"type", "conv2d"}, {"n_out", 8}, {"kernel", 3}, {"pad", "same"}, {"activation", "relu"}},
        {{"type", "maxpool2d"}, {"kernel", 2}},
        {{"type", "conv2d"}, {"n_out", 6}, {"kernel", {3, 2}}, {"stride", 2}, {"pad", 1}, {"activation", "tanh"}},
        {{"type", "flatten"}},
        {{"type", "dense"}, {"n_out", 5}, {"activation", "softmax"}}}}};
  NeuralNetwork nf = NeuralNetwork::from_config(config), nr = NeuralNetwork::from_config(config);
  const Shape xs{4, 12, 10, 3};
  Pair x = random(xs);
  std::vector<double> yv(4 * 5, 0.0);
  for (int i = 0; i < 4; ++i) yv[i * 5 + (i * 3) % 5] = 1.0;
  Pair y = pair_of(yv, {4, 5});
  const Tensor of = nf.forward(x.f, Mode::Train), orr = nr.forward(x.r, Mode::Train);
  expect_close({of, orr}, dot_tol(200), "network output");
  const double lf = nf.backward(y.f, of), lr = nr.backward(y.r, orr);
  EXPECT_NEAR(lf, lr, dot_tol(200) * std::max(1.0, std::abs(lr)));
  auto pf = nf.named_parameters(), pr = nr.named_parameters();
  ASSERT_EQ(pf.size(), pr.size());
  for (size_t i = 0; i < pf.size(); ++i)
    expect_close({pf[i].parameter->grad, pr[i].parameter->grad}, dot_tol(1000), "gradient " + pf[i].name);
}

}  // namespace
}  // namespace janus
