// Tests of the CPU backend (the reference implementation of Device) on small
// cases whose answers are worked out by hand in the comments, plus a few
// property checks (adjoint identities, numerical gradients, statistics) where a
// hand answer would be too long. Most tests run twice, in float32 and float64.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "cpu/cpu_device.hpp"
#include "janus/counter_rng.hpp"
#include "janus/device.hpp"
#include "janus/error.hpp"
#include "janus/tensor.hpp"

namespace janus {
namespace {

Device& dev() { return cpu_device(); }

// Runs each TEST_P once per dtype; tol() is the comparison tolerance.
class CpuKernels : public ::testing::TestWithParam<DType> {
 protected:
  DType dt() const { return GetParam(); }
  double tol() const { return dt() == DType::F32 ? 2e-6 : 1e-12; }
  Tensor make(const std::vector<double>& v, const Shape& s) const {
    return Tensor::from_host(v, s, dev(), dt());
  }
  Tensor zeros(const Shape& s) const { return Tensor::zeros(s, dev(), dt()); }
  Tensor nans(const Shape& s) const {
    return Tensor::full(s, std::numeric_limits<double>::quiet_NaN(), dev(), dt());
  }
  // Relative-or-absolute comparison, element by element.
  void expect_values(const Tensor& t, const std::vector<double>& want) const {
    std::vector<double> got = t.to_host();
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i)
      EXPECT_NEAR(got[i], want[i], tol() * std::max(1.0, std::abs(want[i]))) << "element " << i;
  }
};

INSTANTIATE_TEST_SUITE_P(Dtypes, CpuKernels, ::testing::Values(DType::F32, DType::F64),
                         [](const auto& param_info) { return std::string(dtype_name(param_info.param)); });

// Expects `fn` to throw a janus::Error whose message contains every fragment.
template <class Fn>
void expect_error(Fn&& fn, const std::vector<std::string>& fragments) {
  try {
    fn();
    ADD_FAILURE() << "no janus::Error thrown";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const std::string& f : fragments)
      EXPECT_NE(msg.find(f), std::string::npos) << "'" << f << "' not in: " << msg;
  }
}

double dot(const Tensor& a, const Tensor& b) {
  std::vector<double> x = a.to_host(), y = b.to_host();
  return std::inner_product(x.begin(), x.end(), y.begin(), 0.0);
}

// ---- device basics -----------------------------------------------------------

TEST(CpuDevice, NameKindAndAlignedMemory) {
  EXPECT_EQ(dev().name(), "cpu");
  EXPECT_EQ(dev().kind(), DeviceKind::CPU);
  EXPECT_FALSE(dev().simulated());
  void* p = dev().allocate(100);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
  const char src[5] = "abcd";
  char back[5] = {};
  dev().copy_to_device(p, src, 5);
  dev().copy_on_device(static_cast<char*>(p) + 10, p, 5);
  dev().copy_to_host(back, static_cast<char*>(p) + 10, 5);
  EXPECT_STREQ(back, "abcd");
  dev().deallocate(p, 100);
  EXPECT_EQ(&cpu_device(), &cpu_device());  // one process-wide instance
}

// ---- elementwise -------------------------------------------------------------------

TEST_P(CpuKernels, FillAxpbyMultiply) {
  Tensor x = make({1, 2, 3, 4}, {2, 2});
  Tensor y = make({10, 20, 30, 40}, {4});
  dev().axpby(2.0, x, 0.5, y);  // 2x + y/2
  expect_values(y, {7, 14, 21, 28});

  // beta == 0 must not read y: NaN there must not leak into the result.
  Tensor n = nans({4});
  dev().axpby(-1.0, x, 0.0, n);
  expect_values(n, {-1, -2, -3, -4});

  Tensor a = make({1, -2, 3, 0.5}, {4});
  dev().multiply(a, x, a);  // out aliases a
  expect_values(a, {1, -4, 9, 2});

  dev().fill(a, 2.5);
  expect_values(a, {2.5, 2.5, 2.5, 2.5});
}

TEST_P(CpuKernels, BiasAndReductions) {
  // y (3 x 2) += bias (1 x 2)
  Tensor y = make({1, 2, 3, 4, 5, 6}, {3, 2});
  dev().add_bias(y, make({10, 100}, {1, 2}));
  expect_values(y, {11, 102, 13, 104, 15, 106});

  // column sums of y: (11+13+15, 102+104+106) = (39, 312), plus beta * out.
  Tensor out = make({1, 2}, {2});
  dev().sum_rows(y, 2.0, out);
  expect_values(out, {41, 316});
  Tensor fresh = nans({2});
  dev().sum_rows(y, 0.0, fresh);  // beta == 0: out not read
  expect_values(fresh, {39, 312});

  // NHWC images are (N*H*W, C) rows: the bias gradient of a convolution.
  Tensor img = make({1, 2, 3, 4, 5, 6, 7, 8}, {1, 2, 2, 2});
  Tensor per_channel = zeros({2});
  dev().sum_rows(img, 0.0, per_channel);
  expect_values(per_channel, {16, 20});

  EXPECT_NEAR(dev().sum(y), 351.0, tol() * 351);
  EXPECT_THROW(dev().add_bias(y, make({1, 2, 3}, {3})), Error);
}

// ---- gemm ------------------------------------------------------------------------

TEST_P(CpuKernels, GemmAllTranspositions) {
  // A = [[1,2,3],[4,5,6]], B = [[7,8],[9,10],[11,12]], A B = [[58,64],[139,154]].
  const std::vector<double> a = {1, 2, 3, 4, 5, 6}, at = {1, 4, 2, 5, 3, 6};
  const std::vector<double> b = {7, 8, 9, 10, 11, 12}, bt = {7, 9, 11, 8, 10, 12};
  const std::vector<double> ab = {58, 64, 139, 154};
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "trans_a=" << ta << " trans_b=" << tb);
      Tensor A = ta ? make(at, {3, 2}) : make(a, {2, 3});
      Tensor B = tb ? make(bt, {2, 3}) : make(b, {3, 2});
      Tensor C = nans({2, 2});
      dev().gemm(ta, tb, 1.0, A, B, 0.0, C);  // beta 0: NaN in C ignored
      expect_values(C, ab);
      // C = 2 A B - C  ->  (116-58, 128-64, 278-139, 308-154)
      dev().gemm(ta, tb, 2.0, A, B, -1.0, C);
      expect_values(C, ab);
    }
}

TEST_P(CpuKernels, GemmViewsHigherRankAsMatrices) {
  // x (2, 1, 3) is viewed as (2, 3); w (3, 1): y = x w with w = (1, 1, 1) -> row sums.
  Tensor x = make({1, 2, 3, 4, 5, 6}, {2, 1, 3});
  Tensor w = make({1, 1, 1}, {3, 1});
  Tensor y = zeros({2, 1});
  dev().gemm(false, false, 1.0, x, w, 0.0, y);
  expect_values(y, {6, 15});
}

TEST(CpuDevice, GemmShapeMismatchNamesShapes) {
  Tensor a = Tensor::zeros({2, 3}, dev()), b = Tensor::zeros({2, 2}, dev()),
         c = Tensor::zeros({2, 2}, dev());
  expect_error([&] { dev().gemm(false, false, 1.0, a, b, 0.0, c); },
               {"gemm", "(2, 3)", "(2, 2)"});
}

// ---- activations ------------------------------------------------------------------

TEST_P(CpuKernels, ElementwiseActivationsForward) {
  Tensor z = make({-1000, -1, 0, 2, 1000}, {1, 5});
  Tensor y = zeros({1, 5});
  dev().activation_forward(ActivationKind::Sigmoid, z, y);
  // sigmoid(-1) = 1/(1+e), sigmoid(2) = 1/(1+e^-2); extremes saturate without NaN.
  expect_values(y, {0, 1 / (1 + std::exp(1.0)), 0.5, 1 / (1 + std::exp(-2.0)), 1});
  dev().activation_forward(ActivationKind::TanH, z, y);
  expect_values(y, {-1, std::tanh(-1.0), 0, std::tanh(2.0), 1});
  dev().activation_forward(ActivationKind::ReLU, z, y);
  expect_values(y, {0, 0, 0, 2, 1000});
  dev().activation_forward(ActivationKind::Linear, z, y);
  expect_values(y, {-1000, -1, 0, 2, 1000});
  dev().activation_forward(ActivationKind::ReLU, z, z);  // in place
  expect_values(z, {0, 0, 0, 2, 1000});
}

TEST_P(CpuKernels, SoftmaxForwardIsStableAndNormalised) {
  // Row 1: softmax(1, 2, 3) = e^j / (e + e^2 + e^3). Row 2 would overflow exp()
  // without subtracting the max. Row 3: equal logits give equal shares.
  Tensor z = make({1, 2, 3, 1000, 1001, 1002, -5, -5, -5}, {3, 3});
  Tensor s = zeros({3, 3});
  dev().activation_forward(ActivationKind::SoftMax, z, s);
  const double d = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  const double p0 = std::exp(1.0) / d, p1 = std::exp(2.0) / d, p2 = std::exp(3.0) / d;
  expect_values(s, {p0, p1, p2, p0, p1, p2, 1 / 3.0, 1 / 3.0, 1 / 3.0});
  std::vector<double> v = s.to_host();
  for (int r = 0; r < 3; ++r) EXPECT_NEAR(v[3 * r] + v[3 * r + 1] + v[3 * r + 2], 1.0, tol());
}

TEST_P(CpuKernels, ActivationsBackward) {
  Tensor undefined;
  Tensor dz = zeros({1, 3});
  // Sigmoid: y (1 - y) dy with y = (0.5, 0.25, 0.9), dy = (2, 4, 10) -> (0.5, 0.75, 0.9)
  Tensor y = make({0.5, 0.25, 0.9}, {1, 3});
  dev().activation_backward(ActivationKind::Sigmoid, undefined, y, make({2, 4, 10}, {1, 3}), dz);
  expect_values(dz, {0.5, 0.75, 0.9});
  // TanH: (1 - y^2) dy -> (0.75, 0.9375*2, 0.19*1)
  dev().activation_backward(ActivationKind::TanH, undefined, y, make({1, 2, 1}, {1, 3}), dz);
  expect_values(dz, {0.75, 1.875, 0.19});
  // ReLU reads y = relu(z) for z = (-1, 0, 3); derivative 0 at z == 0.
  dev().activation_backward(ActivationKind::ReLU, undefined, make({0, 0, 3}, {1, 3}), make({5, 6, 7}, {1, 3}), dz);
  expect_values(dz, {0, 0, 7});
  // LeakyReLU reads z; derivative = slope at z <= 0 (PyTorch's convention at 0).
  Tensor z = make({-1, 0, 3}, {1, 3});
  dev().activation_backward(ActivationFunction(ActivationKind::LeakyReLU, 0.25), z, undefined,
                            make({4, 8, 7}, {1, 3}), dz);
  expect_values(dz, {1, 2, 7});
  dev().activation_backward(ActivationKind::Linear, undefined, undefined,
                            make({5, 6, 7}, {1, 3}), dz);
  expect_values(dz, {5, 6, 7});
}

TEST_P(CpuKernels, SoftmaxBackwardIsJacobianProduct) {
  // s = (0.2, 0.3, 0.5), dy = (1, 0, 0): sum(dy s) = 0.2,
  // dz = s (dy - 0.2) = (0.16, -0.06, -0.1). Second row: dy constant -> dz = 0.
  Tensor s = make({0.2, 0.3, 0.5, 0.1, 0.6, 0.3}, {2, 3});
  Tensor dy = make({1, 0, 0, 7, 7, 7}, {2, 3});
  Tensor dz = nans({2, 3});
  dev().activation_backward(ActivationKind::SoftMax, Tensor(), s, dy, dz);
  expect_values(dz, {0.16, -0.06, -0.1, 0, 0, 0});
}

// ---- losses ---------------------------------------------------------------------

TEST_P(CpuKernels, CrossEntropy) {
  // J = -(ln 0.5 + ln 0.75) / 2 ; dJ/dyhat = -y / (2 yhat).
  Tensor yhat = make({0.5, 0.5, 0.25, 0.75}, {2, 2});
  Tensor y = make({1, 0, 0, 1}, {2, 2});
  EXPECT_NEAR(dev().cross_entropy_forward(yhat, y), -(std::log(0.5) + std::log(0.75)) / 2, tol());
  Tensor d = zeros({2, 2});
  dev().cross_entropy_backward(yhat, y, d);
  expect_values(d, {-1, 0, 0, -1 / 1.5});

  // A hard zero where the target is 1 is clamped at 1e-12: large but finite.
  Tensor zero = make({0, 1}, {1, 2});
  Tensor hot = make({1, 0}, {1, 2});
  const double floor = static_cast<double>(1e-12f);
  EXPECT_NEAR(dev().cross_entropy_forward(zero, hot), -std::log(floor), 1e-9);
  Tensor d1 = zeros({1, 2});
  dev().cross_entropy_backward(zero, hot, d1);
  EXPECT_NEAR(d1.item(0), -1 / floor, 1e-6 / floor);
  EXPECT_EQ(d1.item(1), 0.0);
}

TEST_P(CpuKernels, L2) {
  // diff = (1, 0, 2, 3): J = (1 + 0 + 4 + 9) / 2 = 7, dJ = (2/2) diff.
  Tensor yhat = make({1, 2, 3, 4}, {2, 2});
  Tensor y = make({0, 2, 1, 1}, {2, 2});
  EXPECT_NEAR(dev().l2_forward(yhat, y), 7.0, tol() * 7);
  Tensor d = zeros({2, 2});
  dev().l2_backward(yhat, y, d);
  expect_values(d, {1, 0, 2, 3});
}

TEST_P(CpuKernels, SoftmaxCrossEntropyFused) {
  // Row 0: z = (1, 2, 3), target class 2: loss 0 = lse(1,2,3) - 3.
  // Row 1: z = (0, 0, 0), target class 0: loss 1 = ln 3.   J = (loss 0 + loss 1) / 2.
  Tensor z = make({1, 2, 3, 0, 0, 0}, {2, 3});
  Tensor y = make({0, 0, 1, 1, 0, 0}, {2, 3});
  const double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  const double want = ((lse - 3) + std::log(3.0)) / 2;
  Tensor dz = nans({2, 3});
  EXPECT_NEAR(dev().softmax_cross_entropy(z, y, &dz), want, tol());
  EXPECT_NEAR(dev().softmax_cross_entropy(z, y, nullptr), want, tol());  // loss only
  // dz = (softmax(z) - y) / 2
  const double s0 = std::exp(1 - lse), s1 = std::exp(2 - lse), s2 = std::exp(3 - lse);
  expect_values(dz, {s0 / 2, s1 / 2, (s2 - 1) / 2, 1 / 6.0 - 0.5, 1 / 6.0, 1 / 6.0});

  // Agrees with softmax followed by cross-entropy.
  Tensor s = zeros({2, 3});
  dev().activation_forward(ActivationKind::SoftMax, z, s);
  EXPECT_NEAR(dev().cross_entropy_forward(s, y), want, 10 * tol());

  // Targets whose row does not sum to one: dz = (s * sum(y) - y) / m.
  Tensor y2 = make({0, 2, 0}, {1, 3});
  Tensor dz2 = zeros({1, 3});
  Tensor z1 = make({1, 2, 3}, {1, 3});
  EXPECT_NEAR(dev().softmax_cross_entropy(z1, y2, &dz2), -2 * (2 - lse), 10 * tol());
  expect_values(dz2, {2 * s0, 2 * s1 - 2, 2 * s2});

  // Huge logits stay finite.
  Tensor big = make({10000, 0}, {1, 2});
  EXPECT_NEAR(dev().softmax_cross_entropy(big, make({0, 1}, {1, 2}), nullptr), 10000.0, 1e-3);
}

TEST_P(CpuKernels, CountCorrectFirstMaximumOnTies) {
  // Row 0: argmax 1 vs 1 (correct). Row 1: tie (0.5, 0.5) -> 0, target 1 (wrong).
  // Row 2: tie -> 0, target 0 (correct). Row 3: 2 vs 0 (wrong).
  Tensor yhat = make({0.1, 0.8, 0.1, 0.5, 0.5, 0, 0.4, 0.4, 0.2, 0.1, 0.2, 0.7}, {4, 3});
  Tensor y = make({0, 1, 0, 0, 1, 0, 1, 0, 0, 1, 0, 0}, {4, 3});
  EXPECT_EQ(dev().count_correct(yhat, y), 2);
}

// The device-resident twins of the losses and the count (device.hpp): the
// same values bit for bit, summed into the running totals as the host would.
TEST_P(CpuKernels, LossesAndCountsIntoDeviceTotals) {
  Tensor z = make({1, 2, 3, 0, 0.5, 0, 2, 1, 0}, {3, 3});
  Tensor y = make({0, 0, 1, 1, 0, 0, 0, 1, 0}, {3, 3});
  Tensor loss = Tensor::empty(Shape{1}, dev(), DType::F64);
  Tensor dz = nans({3, 3});
  dev().softmax_cross_entropy_into(z, y, &dz, loss);
  const double ce = dev().softmax_cross_entropy(z, y, nullptr);
  EXPECT_EQ(loss.to_host()[0], ce);
  dev().l2_forward_into(z, y, loss);
  EXPECT_EQ(loss.to_host()[0], dev().l2_forward(z, y));

  Tensor totals = Tensor::from_host(std::vector<double>{0.5, 4, -1, 0}, Shape{Device::StepTotal::Count}, dev(),
                                    DType::F64);
  dev().count_correct_into(z, y, totals);
  dev().softmax_cross_entropy_into(z, y, nullptr, loss);
  dev().add_loss_into(loss, 3.0, 11.0, totals);
  std::vector<double> t = totals.to_host();
  EXPECT_EQ(t[Device::Correct], 4.0 + static_cast<double>(dev().count_correct(z, y)));
  EXPECT_EQ(t[Device::LossSum], 0.5 + ce * 3.0);
  EXPECT_EQ(t[Device::FirstNonfinite], -1.0) << "a finite loss is no fault";

  // The first non-finite loss is recorded with its tag; later ones are not.
  const double inf = std::numeric_limits<double>::infinity();
  Tensor bad = Tensor::from_host(std::vector<double>{-inf}, Shape{1}, dev(), DType::F64);
  dev().add_loss_into(bad, 3.0, 12.0, totals);
  dev().add_loss_into(loss, 3.0, 13.0, totals);
  t = totals.to_host();
  EXPECT_EQ(t[Device::FirstNonfinite], 12.0);
  EXPECT_EQ(t[Device::FirstNonfiniteLoss], -inf);

  // The outputs' contract: float64, of the documented size.
  Tensor f32_totals = Tensor::zeros(Shape{Device::StepTotal::Count}, dev(), DType::F32);
  EXPECT_THROW(dev().count_correct_into(z, y, f32_totals), Error);
  EXPECT_THROW(dev().add_loss_into(loss, 1.0, 0.0, loss), Error);
}

// ---- convolution ----------------------------------------------------------------

ConvGeometry conv_geometry(int N, int H, int W, int C, int KH, int KW, int F, int stride, int pad) {
  ConvGeometry g;
  g.N = N, g.H = H, g.W = W, g.C = C, g.KH = KH, g.KW = KW, g.F = F;
  g.stride_h = g.stride_w = stride;
  g.pad_h = g.pad_w = pad;
  g.OH = (H + 2 * pad - KH) / stride + 1;
  g.OW = (W + 2 * pad - KW) / stride + 1;
  return g;
}

TEST_P(CpuKernels, Conv2dByHand2x3) {
  // x = [[1,2,3],[4,5,6]] (one channel), w = [[1,2],[3,4]], bias 1, valid:
  //   y = (1+4+12+20, 2+6+15+24) + 1 = (38, 48).
  ConvGeometry g = conv_geometry(1, 2, 3, 1, 2, 2, 1, 1, 0);
  Tensor x = make({1, 2, 3, 4, 5, 6}, {1, 2, 3, 1});
  Tensor w = make({1, 2, 3, 4}, {2, 2, 1, 1});
  Tensor y = nans({1, 1, 2, 1});
  dev().conv2d_forward(g, x, w, make({1}, {1}), y);
  expect_values(y, {38, 48});
  dev().conv2d_forward(g, x, w, Tensor(), y);  // no bias
  expect_values(y, {37, 47});

  // dy = (1, 2): dx[h,v] = sum of w[i,j] dy[c] over v = c + j, h = i:
  //   row 0: (1*1, 2*1 + 1*2, 2*2) = (1, 4, 4); row 1: (3, 4 + 6, 8) = (3, 10, 8).
  Tensor dy = make({1, 2}, {1, 1, 2, 1});
  Tensor dx = nans({1, 2, 3, 1});
  dev().conv2d_backward_data(g, dy, w, dx);
  expect_values(dx, {1, 4, 4, 3, 10, 8});
  // dw[i,j] = sum_c dy[c] x[i, c+j]: (1+4, 2+6, 4+10, 5+12) = (5, 8, 14, 17).
  Tensor dw = nans({2, 2, 1, 1});
  dev().conv2d_backward_filter(g, x, dy, dw);
  expect_values(dw, {5, 8, 14, 17});
}

TEST_P(CpuKernels, Conv2dSamePaddingAndChannels) {
  // 3x3 input 1..9, 3x3 kernel of ones, pad 1: each output is the sum of the
  // in-bounds 3x3 neighbourhood. Two output filters: ones and 2*ones.
  // Two input channels: channel 1 is 100 * channel 0, the kernel weight of
  // channel 1 is 0, so it must not contribute.
  ConvGeometry g = conv_geometry(1, 3, 3, 2, 3, 3, 2, 1, 1);
  std::vector<double> xv;
  for (int i = 1; i <= 9; ++i) xv.insert(xv.end(), {double(i), 100.0 * i});
  std::vector<double> wv;
  for (int t = 0; t < 9; ++t) wv.insert(wv.end(), {1, 2, 0, 0});  // [i][j][ch][f]
  Tensor y = zeros({1, 3, 3, 2});
  dev().conv2d_forward(g, make(xv, {1, 3, 3, 2}), make(wv, {3, 3, 2, 2}), Tensor(), y);
  const std::vector<double> sums = {12, 21, 16, 27, 45, 33, 24, 39, 28};
  std::vector<double> want;
  for (double s : sums) want.insert(want.end(), {s, 2 * s});
  expect_values(y, want);

  // Stride 2 on the same input: outputs at (0,0), (0,2), (2,0), (2,2).
  ConvGeometry g2 = conv_geometry(1, 3, 3, 2, 3, 3, 2, 2, 1);
  ASSERT_EQ(g2.OH, 2);
  Tensor y2 = zeros({1, 2, 2, 2});
  dev().conv2d_forward(g2, make(xv, {1, 3, 3, 2}), make(wv, {3, 3, 2, 2}), Tensor(), y2);
  expect_values(y2, {12, 24, 16, 32, 24, 48, 28, 56});
}

// The backward passes are the adjoints of the forward map (x, w) -> y:
//   <conv(x, w), dy> = <x, backward_data(dy, w)> = <w, backward_filter(x, dy)>.
// Checked on a padded, strided, multi-channel, multi-image case in float64.
TEST(CpuDevice, Conv2dBackwardIsAdjointOfForward) {
  for (int stride : {1, 2})
    for (int pad : {0, 1, 2}) {
      SCOPED_TRACE(::testing::Message() << "stride " << stride << " pad " << pad);
      ConvGeometry g = conv_geometry(2, 5, 4, 3, 3, 2, 4, stride, pad);
      auto ramp = [](int64_t n, double scale) {
        std::vector<double> v(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) v[i] = std::sin(scale * (i + 1));
        return v;
      };
      Shape xs{g.N, g.H, g.W, g.C}, ws{g.KH, g.KW, g.C, g.F}, ys{g.N, g.OH, g.OW, g.F};
      Tensor x = Tensor::from_host(ramp(xs.numel(), 0.7), xs, dev());
      Tensor w = Tensor::from_host(ramp(ws.numel(), 1.3), ws, dev());
      Tensor dy = Tensor::from_host(ramp(ys.numel(), 0.4), ys, dev());
      Tensor y = Tensor::zeros(ys, dev(), DType::F64), dx = Tensor::zeros(xs, dev(), DType::F64),
             dw = Tensor::zeros(ws, dev(), DType::F64);
      dev().conv2d_forward(g, x, w, Tensor(), y);
      dev().conv2d_backward_data(g, dy, w, dx);
      dev().conv2d_backward_filter(g, x, dy, dw);
      const double lhs = dot(y, dy);
      EXPECT_NEAR(dot(x, dx), lhs, 1e-10 * (1 + std::abs(lhs)));
      EXPECT_NEAR(dot(w, dw), lhs, 1e-10 * (1 + std::abs(lhs)));
    }
}

TEST(CpuDevice, Conv2dRejectsInconsistentGeometry) {
  ConvGeometry g = conv_geometry(1, 4, 4, 1, 3, 3, 1, 1, 0);
  Tensor x = Tensor::zeros({1, 4, 4, 1}, dev()), w = Tensor::zeros({3, 3, 1, 1}, dev());
  Tensor y = Tensor::zeros({1, 2, 2, 1}, dev());
  g.OH = 3;  // should be 2
  expect_error([&] { dev().conv2d_forward(g, x, w, Tensor(), y); }, {"conv2d_forward", "2x2"});
  g.OH = 2;
  Tensor wrong = Tensor::zeros({1, 4, 4, 2}, dev());
  expect_error([&] { dev().conv2d_forward(g, wrong, w, Tensor(), y); },
               {"conv2d_forward", "(1, 4, 4, 2)", "(1, 4, 4, 1)"});
}

// ---- pooling -------------------------------------------------------------------

PoolGeometry pool_geometry(int N, int H, int W, int C, int K, int stride, int pad) {
  PoolGeometry g;
  g.N = N, g.H = H, g.W = W, g.C = C, g.KH = g.KW = K;
  g.stride_h = g.stride_w = stride;
  g.pad_h = g.pad_w = pad;
  g.OH = (H + 2 * pad - K) / stride + 1;
  g.OW = (W + 2 * pad - K) / stride + 1;
  return g;
}

TEST_P(CpuKernels, MaxPoolForwardBackwardAndTies) {
  // 4x4, 2x2 windows, stride 2. Window (0,0) is all 7s (tie: the first, the
  // top-left, gets the gradient); the others have distinct maxima.
  PoolGeometry g = pool_geometry(1, 4, 4, 1, 2, 2, 0);
  Tensor x = make({7, 7, 1, 2,
                   7, 7, 4, 3,
                   0, 9, 5, 5,
                   8, 1, 6, 5}, {1, 4, 4, 1});
  Tensor y = nans({1, 2, 2, 1});
  dev().pool2d_forward(PoolMode::Max, g, x, y);
  expect_values(y, {7, 4, 9, 6});
  Tensor dx = nans({1, 4, 4, 1});
  dev().pool2d_backward(PoolMode::Max, g, x, make({10, 20, 30, 40}, {1, 2, 2, 1}), dx);
  expect_values(dx, {10, 0, 0, 0,
                     0, 0, 20, 0,
                     0, 30, 0, 0,
                     0, 0, 40, 0});
}

TEST_P(CpuKernels, MaxPoolPaddingNeverWinsAndOverlapsAccumulate) {
  // All inputs negative with padding 1: a zero from the padding must not win.
  PoolGeometry g = pool_geometry(1, 2, 2, 1, 2, 1, 1);  // 3x3 output
  Tensor x = make({-4, -3, -2, -1}, {1, 2, 2, 1});
  Tensor y = zeros({1, 3, 3, 1});
  dev().pool2d_forward(PoolMode::Max, g, x, y);
  expect_values(y, {-4, -3, -3, -2, -1, -1, -2, -1, -1});

  // 3x3 input with the maximum in the centre, 2x2 windows stride 1: all four
  // windows pick the centre, so it receives the sum of their gradients.
  PoolGeometry g2 = pool_geometry(1, 3, 3, 1, 2, 1, 0);
  Tensor x2 = make({1, 2, 3, 4, 9, 5, 6, 7, 8}, {1, 3, 3, 1});
  Tensor dx2 = nans({1, 3, 3, 1});
  dev().pool2d_backward(PoolMode::Max, g2, x2, make({1, 2, 3, 4}, {1, 2, 2, 1}), dx2);
  expect_values(dx2, {0, 0, 0, 0, 10, 0, 0, 0, 0});
}

TEST_P(CpuKernels, AveragePoolCountsPaddingInDivisor) {
  // x = [[1,2],[3,4]], 2x2 windows, stride 1, pad 1: 3x3 output, divisor 4 always.
  PoolGeometry g = pool_geometry(1, 2, 2, 1, 2, 1, 1);
  Tensor x = make({1, 2, 3, 4}, {1, 2, 2, 1});
  Tensor y = nans({1, 3, 3, 1});
  dev().pool2d_forward(PoolMode::Average, g, x, y);
  expect_values(y, {0.25, 0.75, 0.5, 1, 2.5, 1.5, 0.75, 1.75, 1});
  // Each input lies in 4 windows; with dy = 1 everywhere it gets 4 * (1/4) = 1.
  // With dy = window index + 1, input (0,0) is in windows 0,1,3,4 -> (1+2+4+5)/4.
  Tensor dx = nans({1, 2, 2, 1});
  dev().pool2d_backward(PoolMode::Average, g, x, make({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 3, 3, 1}),
                        dx);
  expect_values(dx, {3, 4, 6, 7});
}

TEST_P(CpuKernels, PoolChannelsAreIndependent) {
  // Two channels, one 2x2 window: channel 0 max at (1,0), channel 1 at (0,1).
  PoolGeometry g = pool_geometry(1, 2, 2, 2, 2, 2, 0);
  Tensor x = make({1, 10, 2, 40, 5, 30, 3, 20}, {1, 2, 2, 2});
  Tensor y = zeros({1, 1, 1, 2});
  dev().pool2d_forward(PoolMode::Max, g, x, y);
  expect_values(y, {5, 40});
  Tensor dx = zeros({1, 2, 2, 2});
  dev().pool2d_backward(PoolMode::Max, g, x, make({1, 2}, {1, 1, 1, 2}), dx);
  expect_values(dx, {0, 0, 0, 2, 1, 0, 0, 0});
}

// ---- batch normalisation -----------------------------------------------------------

TEST_P(CpuKernels, BatchNormTrainStatisticsAndRunningAverages) {
  // Column 0 = (1, 2, 3, 4): mean 2.5, biased var 1.25, unbiased 5/3.
  // Column 1 = (10, 10, 10, 14): mean 11, biased var 3, unbiased 4.
  const double eps = 1e-5, momentum = 0.1;
  Tensor x = make({1, 10, 2, 10, 3, 10, 4, 14}, {4, 2});
  Tensor gamma = make({1, 1}, {2}), beta = make({0, 0}, {2});
  Tensor rm = make({0, 1}, {2}), rv = make({1, 2}, {2});
  Tensor mean = nans({2}), invstd = nans({2}), y = nans({4, 2});
  dev().batchnorm_forward_train(x, gamma, beta, momentum, eps, rm, rv, mean, invstd, y);
  expect_values(mean, {2.5, 11});
  expect_values(invstd, {1 / std::sqrt(1.25 + eps), 1 / std::sqrt(3 + eps)});
  expect_values(rm, {0.9 * 0 + 0.1 * 2.5, 0.9 * 1 + 0.1 * 11});
  expect_values(rv, {0.9 * 1 + 0.1 * 5.0 / 3, 0.9 * 2 + 0.1 * 4});
  // Output columns have zero mean and (up to eps) unit variance.
  std::vector<double> v = y.to_host();
  for (int c = 0; c < 2; ++c) {
    double m = 0, s = 0;
    for (int r = 0; r < 4; ++r) m += v[2 * r + c] / 4;
    for (int r = 0; r < 4; ++r) s += (v[2 * r + c] - m) * (v[2 * r + c] - m) / 4;
    EXPECT_NEAR(m, 0.0, 1e-6);
    EXPECT_NEAR(s, 1.0, 1e-4);  // var / (var + eps)
  }

  // gamma and beta scale and shift: column 0 becomes 3 * xhat + 5.
  Tensor g2 = make({3, 1}, {2}), b2 = make({5, 0}, {2}), y2 = zeros({4, 2});
  dev().batchnorm_forward_train(x, g2, b2, momentum, eps, rm, rv, mean, invstd, y2);
  std::vector<double> v2 = y2.to_host();
  for (int r = 0; r < 4; ++r) EXPECT_NEAR(v2[2 * r], 3 * v[2 * r] + 5, 1e-5);

  Tensor one_row = make({1, 2}, {1, 2});
  Tensor y1 = zeros({1, 2});
  EXPECT_THROW(
      dev().batchnorm_forward_train(one_row, gamma, beta, momentum, eps, rm, rv, mean, invstd, y1),
      Error);
}

TEST_P(CpuKernels, BatchNormEval) {
  // y = gamma (x - rm) / sqrt(rv + eps) + beta with rm = 1, rv = 4 - eps: (x - 1) / 2 * 3 + 1.
  const double eps = 1e-3;
  Tensor x = make({1, 3, 5, 7}, {2, 2, 1});  // NHWC-like (2, 2, 1): C = 1
  Tensor y = nans({2, 2, 1});
  dev().batchnorm_forward_eval(x, make({3}, {1}), make({1}, {1}), make({1}, {1}),
                               make({4 - eps}, {1}), eps, y);
  expect_values(y, {1, 4, 7, 10});
}

// Numerical gradient of L = sum(dy * y(x, gamma, beta)) in float64.
TEST(CpuDevice, BatchNormBackwardMatchesNumericalGradient) {
  const int rows = 5, C = 3;
  const double eps = 1e-5;
  std::vector<double> xv(rows * C), dyv(rows * C);
  for (int i = 0; i < rows * C; ++i) {
    xv[i] = std::sin(1.7 * i) * 3 + i % C;
    dyv[i] = std::cos(0.9 * i);
  }
  const std::vector<double> gv = {1.5, -0.5, 2.0}, bv = {0.1, 0.2, -0.3};
  auto loss = [&](const std::vector<double>& x, const std::vector<double>& g,
                  const std::vector<double>& b) {
    Tensor rm = Tensor::zeros({C}, dev(), DType::F64), rv = Tensor::zeros({C}, dev(), DType::F64);
    Tensor mean = Tensor::zeros({C}, dev(), DType::F64), inv = Tensor::zeros({C}, dev(), DType::F64);
    Tensor y = Tensor::zeros({rows, C}, dev(), DType::F64);
    dev().batchnorm_forward_train(Tensor::from_host(x, {rows, C}, dev()),
                                  Tensor::from_host(g, {C}, dev()),
                                  Tensor::from_host(b, {C}, dev()), 0.1, eps, rm, rv, mean, inv, y);
    return dot(y, Tensor::from_host(dyv, {rows, C}, dev()));
  };
  // Analytic gradients.
  Tensor x = Tensor::from_host(xv, {rows, C}, dev());
  Tensor rm = Tensor::zeros({C}, dev(), DType::F64), rv = Tensor::zeros({C}, dev(), DType::F64);
  Tensor mean = Tensor::zeros({C}, dev(), DType::F64), inv = Tensor::zeros({C}, dev(), DType::F64);
  Tensor y = Tensor::zeros({rows, C}, dev(), DType::F64);
  Tensor gamma = Tensor::from_host(gv, {C}, dev());
  dev().batchnorm_forward_train(x, gamma, Tensor::from_host(bv, {C}, dev()), 0.1, eps, rm, rv,
                                mean, inv, y);
  Tensor dx = Tensor::zeros({rows, C}, dev(), DType::F64);
  Tensor dgamma = Tensor::zeros({C}, dev(), DType::F64), dbeta = Tensor::zeros({C}, dev(), DType::F64);
  dev().batchnorm_backward(x, Tensor::from_host(dyv, {rows, C}, dev()), gamma, mean, inv, dx,
                           dgamma, dbeta);
  // Central differences, one coordinate at a time, on copies of the inputs.
  std::vector<double> xs = xv, gs = gv, bs = bv;
  const double h = 1e-5;
  auto numeric = [&](std::vector<double>& which, size_t i) {
    const double keep = which[i];
    which[i] = keep + h;
    const double up = loss(xs, gs, bs);
    which[i] = keep - h;
    const double down = loss(xs, gs, bs);
    which[i] = keep;
    return (up - down) / (2 * h);
  };
  for (size_t i = 0; i < xs.size(); ++i) EXPECT_NEAR(dx.item(i), numeric(xs, i), 1e-6) << "dx " << i;
  for (size_t c = 0; c < gs.size(); ++c) {
    EXPECT_NEAR(dgamma.item(c), numeric(gs, c), 1e-6) << "dgamma " << c;
    EXPECT_NEAR(dbeta.item(c), numeric(bs, c), 1e-6) << "dbeta " << c;
  }
}

// ---- dropout ---------------------------------------------------------------------

TEST_P(CpuKernels, DropoutMaskFractionScaleAndReproducibility) {
  const int64_t n = 100000;
  const double p = 0.3;
  Tensor x = Tensor::full({n}, 2.0, dev(), dt());
  Tensor mask = zeros({n}), y = zeros({n});
  dev().dropout_forward(x, p, 42, mask, y);
  std::vector<double> mv = mask.to_host(), yv = y.to_host();
  int64_t dropped = 0;
  const double keep = 1 / (1 - p);
  for (int64_t i = 0; i < n; ++i) {
    // Every mask value is 0 or 1/(1-p), chosen by the counter RNG exactly.
    const bool kept = counter_uniform(42, static_cast<uint64_t>(i)) >= p;
    ASSERT_NEAR(mv[i], kept ? keep : 0.0, tol() * keep) << i;
    ASSERT_NEAR(yv[i], 2 * mv[i], tol() * keep) << i;
    dropped += !kept;
  }
  // Binomial(n, 0.3): standard deviation ~0.0015 of the fraction.
  EXPECT_NEAR(static_cast<double>(dropped) / n, p, 0.01);

  // Same seed, same mask; another seed, another mask.
  Tensor mask2 = zeros({n}), y2 = zeros({n});
  dev().dropout_forward(x, p, 42, mask2, y2);
  EXPECT_EQ(mask2.to_host(), mv);
  dev().dropout_forward(x, p, 43, mask2, y2);
  EXPECT_NE(mask2.to_host(), mv);

  // p = 0 keeps everything unscaled; p = 1 is rejected (division by zero).
  dev().dropout_forward(x, 0.0, 42, mask2, y2);
  EXPECT_EQ(dev().sum(mask2), static_cast<double>(n));
  EXPECT_THROW(dev().dropout_forward(x, 1.0, 42, mask2, y2), Error);
}

// ---- optimizers -------------------------------------------------------------------

TEST_P(CpuKernels, SgdPlainWeightDecayMomentumNesterov) {
  Tensor g = make({0.5, -1}, {2});
  // Plain: w = 1 - 0.1 * 0.5 = 0.95 ; 2 - 0.1 * (-1) = 2.1. Velocity undefined.
  Tensor w = make({1, 2}, {2});
  Tensor no_velocity;
  dev().sgd_update(w, g, no_velocity, 0.1, 0.0, 0.0, false);
  expect_values(w, {0.95, 2.1});
  // Weight decay 0.1: g' = (0.5 + 0.1, -1 + 0.2) = (0.6, -0.8) -> (0.94, 2.08).
  w = make({1, 2}, {2});
  dev().sgd_update(w, g, no_velocity, 0.1, 0.0, 0.1, false);
  expect_values(w, {0.94, 2.08});
  // Momentum 0.9, v = (1, 1): v = (1.4, -0.1), w = (1 - 0.14, 2 + 0.01).
  w = make({1, 2}, {2});
  Tensor v = make({1, 1}, {2});
  dev().sgd_update(w, g, v, 0.1, 0.9, 0.0, false);
  expect_values(v, {1.4, -0.1});
  expect_values(w, {0.86, 2.01});
  // Nesterov: step = g + 0.9 v_new = (0.5 + 1.26, -1 - 0.09) -> w = (0.824, 2.109).
  w = make({1, 2}, {2});
  v = make({1, 1}, {2});
  dev().sgd_update(w, g, v, 0.1, 0.9, 0.0, true);
  expect_values(v, {1.4, -0.1});
  expect_values(w, {0.824, 2.109});
}

TEST_P(CpuKernels, AdamTwoStepsByHand) {
  const double lr = 0.1, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  Tensor w = make({1}, {1}), m = zeros({1}), v = zeros({1});
  // Step 1, g = 0.5: m = 0.05, v = 0.00025, mhat = 0.5, vhat = 0.25,
  // w = 1 - 0.1 * 0.5 / (0.5 + eps).
  dev().adam_update(w, make({0.5}, {1}), m, v, lr, b1, b2, eps, 0.0, false, 1);
  const double w1 = 1 - lr * 0.5 / (0.5 + eps);
  expect_values(m, {0.05});
  expect_values(v, {0.00025});
  expect_values(w, {w1});
  // Step 2, g = 0.25: m = 0.045 + 0.025 = 0.07, v = 0.00024975 + 0.0000625,
  // bias corrections 1 - 0.9^2 = 0.19 and 1 - 0.999^2 = 0.001999.
  dev().adam_update(w, make({0.25}, {1}), m, v, lr, b1, b2, eps, 0.0, false, 2);
  const double v2 = 0.00024975 + 0.0000625;
  expect_values(m, {0.07});
  expect_values(v, {v2});
  expect_values(w, {w1 - lr * (0.07 / 0.19) / (std::sqrt(v2 / 0.001999) + eps)});
}

TEST_P(CpuKernels, AdamCoupledVersusDecoupledWeightDecay) {
  const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.5;
  // Adam: g' = g + wd w = 0.2 + 0.5 * 2 = 1.2; first step moves by lr * g'/(|g'| + eps).
  Tensor w = make({2}, {1}), m = zeros({1}), v = zeros({1});
  dev().adam_update(w, make({0.2}, {1}), m, v, lr, b1, b2, eps, wd, false, 1);
  expect_values(m, {0.1 * 1.2});
  expect_values(w, {2 - lr * 1.2 / (1.2 + eps)});
  // AdamW: w = 2 - lr * wd * 2 = 1.99 first, then the Adam step on g = 0.2.
  Tensor w2 = make({2}, {1}), m2 = zeros({1}), v2 = zeros({1});
  dev().adam_update(w2, make({0.2}, {1}), m2, v2, lr, b1, b2, eps, wd, true, 1);
  expect_values(m2, {0.1 * 0.2});
  expect_values(w2, {1.99 - lr * 0.2 / (0.2 + eps)});
  EXPECT_THROW(dev().adam_update(w2, make({0.2}, {1}), m2, v2, lr, b1, b2, eps, wd, true, 0),
               Error);
}

// ---- argument checking ------------------------------------------------------------

TEST(CpuDevice, DtypeMismatchNamesOpAndDtypes) {
  Tensor a = Tensor::zeros({2, 2}, dev(), DType::F32);
  Tensor b = Tensor::zeros({2, 2}, dev(), DType::F64);
  expect_error([&] { dev().axpby(1.0, a, 1.0, b); }, {"axpby", "float32", "float64"});
  Tensor c = Tensor::zeros({2, 2}, dev(), DType::F32);
  expect_error([&] { dev().gemm(false, false, 1.0, a, b, 0.0, c); }, {"gemm", "float64"});
}

TEST(CpuDevice, NumelMismatchAndUndefinedTensorsAreErrors) {
  Tensor a = Tensor::zeros({2, 3}, dev()), b = Tensor::zeros({5}, dev());
  expect_error([&] { dev().multiply(a, b, a); }, {"multiply", "(2, 3)", "(5)"});
  Tensor undefined;
  expect_error([&] { dev().fill(undefined, 1.0); }, {"fill", "undefined"});
  // SGD with momentum needs the velocity.
  expect_error([&] { dev().sgd_update(a, a, undefined, 0.1, 0.9, 0.0, false); },
               {"sgd_update", "velocity"});
  // Loss targets of another size.
  expect_error([&] { dev().l2_forward(a, Tensor::zeros({3, 2}, dev())); }, {"l2_forward"});
}

TEST(CpuDevice, TensorOfAnotherDeviceIsRejected) {
  CpuDevice other;
  Tensor mine = Tensor::zeros({2}, dev());
  Tensor theirs = Tensor::zeros({2}, other);
  expect_error([&] { dev().axpby(1.0, theirs, 0.0, mine); }, {"axpby", "x", "not on this"});
}

TEST(CpuDevice, Float64KeepsPrecisionFloat32Cannot) {
  // 1 + 1e-10 is representable in float64 but rounds to 1 in float32.
  Tensor x64 = Tensor::from_host(std::vector<double>{1e-10}, {1}, dev(), DType::F64);
  Tensor y64 = Tensor::full({1}, 1.0, dev(), DType::F64);
  dev().axpby(1.0, x64, 1.0, y64);
  EXPECT_EQ(y64.item(), 1.0 + 1e-10);
  Tensor x32 = x64.to(DType::F32), y32 = Tensor::full({1}, 1.0, dev(), DType::F32);
  dev().axpby(1.0, x32, 1.0, y32);
  EXPECT_EQ(y32.item(), 1.0);
}

}  // namespace
}  // namespace janus
