// The cuDNN path's filter layout (src/cuda/conv_cudnn_filters.hpp) on the
// simulator: the simulator has no cuDNN, so a stand-in for it (KrscStandIn,
// below) takes cuDNN's place behind CudaDevice. It runs the three passes on
// the KRSC filters it is given with Janus's own kernels, after transposing on
// the host (no kernel launch), so that
// - every transpose_kernel launch counted here is the layer under test's, and
// - a stale KRSC copy of the weights is a wrong result: the filters it was
//   given are compared with the weights as they are now, and whole training
//   runs with the implicit-GEMM path bit for bit.
#include "cuda/cuda_compat.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cuda/cuda_device.hpp"
#include "cuda/kernels.hpp"
#include "cuda/tf32_rounding.hpp"
#include "janus/device.hpp"
#include "janus/model.hpp"
#include "janus/nlohmann_json.hpp"
#include "janus/optimizer.hpp"
#include "janus/precision.hpp"
#include "janus/tensor.hpp"

using namespace janus;
namespace k = ::janus::cuda_kernels;

namespace {

unsigned long long transposes() { return sim::launch_count("transpose_kernel"); }

int64_t filter_rows(const ConvGeometry& g) { return int64_t{g.KH} * g.KW * g.group_channels(); }

// (rows x cols) row-major -> (cols x rows).
std::vector<float> transposed(const std::vector<float>& m, int64_t rows, int64_t cols) {
  std::vector<float> t(m.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) t[static_cast<size_t>(c * rows + r)] = m[static_cast<size_t>(r * cols + c)];
  return t;
}

// Device floats of the stand-in's own (cudaMalloc / cudaFree).
class DeviceFloats {
 public:
  explicit DeviceFloats(int64_t n) {
    EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&p_), sizeof(float) * static_cast<size_t>(n)), cudaSuccess);
  }
  ~DeviceFloats() { static_cast<void>(cudaFree(p_)); }
  DeviceFloats(const DeviceFloats&) = delete;
  DeviceFloats& operator=(const DeviceFloats&) = delete;
  float* get() const { return p_; }

 private:
  float* p_ = nullptr;
};

std::vector<float> download(const float* p, int64_t n, cudaStream_t s) {
  std::vector<float> host(static_cast<size_t>(n));
  EXPECT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(host.data(), p, host.size() * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  return host;
}

void upload(const std::vector<float>& host, float* p) {
  EXPECT_EQ(cudaMemcpy(p, host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
}

// What the stand-in saw: calls per pass and the last filter it was given.
struct StandInLog {
  int forwards = 0, backward_data = 0, backward_filter = 0;
  std::vector<float> last_filter;  // KRSC, as given
  bool decline = false;            // every pass returns false, as for a geometry cuDNN has no algorithm for
};

// cuDNN's place: the CudnnConv contract (KRSC filters, KRSC filter gradient)
// computed by the kernels CudaDevice's implicit-GEMM path runs, so that its
// results equal that path's bit for bit (the bias and the activation are
// CudaDevice's either way). Operands are taken as given (in tf32 / bf16 the
// caller rounded them) and multiplied in float32.
class KrscStandIn final : public cuda::CudnnConv {
 public:
  KrscStandIn(cudaStream_t s, std::shared_ptr<StandInLog> log) : s_(s), log_(std::move(log)) {}

  bool forward(const ConvGeometry& g, const float* x, const cuda::KrscFilter& w, float* y, bool) override {
    if (log_->decline) return false;
    ++log_->forwards;
    const DeviceFloats hwio(filter_rows(g) * g.F);
    to_hwio(g, w(), hwio.get());
    if (g.groups > 1) k::conv2d_forward_grouped(g, x, hwio.get(), nullptr, y, s_);
    else k::conv2d_forward_igemm(g, x, hwio.get(), nullptr, y, MathType::F32, s_);
    EXPECT_EQ(cudaStreamSynchronize(s_), cudaSuccess);
    return true;
  }
  bool backward_data(const ConvGeometry& g, const float* dy, const cuda::KrscFilter& w, float* dx, bool) override {
    if (log_->decline) return false;
    ++log_->backward_data;
    const DeviceFloats hwio(filter_rows(g) * g.F);
    to_hwio(g, w(), hwio.get());
    if (g.groups > 1) k::conv2d_backward_data_grouped(g, dy, hwio.get(), dx, s_);
    else k::conv2d_backward_data_igemm(g, dy, hwio.get(), dx, MathType::F32, s_);
    EXPECT_EQ(cudaStreamSynchronize(s_), cudaSuccess);
    return true;
  }
  bool backward_filter(const ConvGeometry& g, const float* x, const float* dy, float* dw_krsc, bool) override {
    if (log_->decline) return false;
    ++log_->backward_filter;
    const int64_t rows = filter_rows(g), n = rows * g.F;
    const DeviceFloats hwio(n);
    if (g.groups > 1) {
      k::conv2d_backward_filter_grouped(g, x, dy, hwio.get(), s_);
    } else {
      const DeviceFloats workspace(std::max<int64_t>(k::conv2d_backward_filter_workspace(g), 1));
      k::conv2d_backward_filter_igemm(g, x, dy, hwio.get(), workspace.get(), MathType::F32, s_);
      EXPECT_EQ(cudaStreamSynchronize(s_), cudaSuccess);
    }
    upload(transposed(download(hwio.get(), n, s_), rows, g.F), dw_krsc);
    return true;
  }

 private:
  // The KRSC filter back in HWIO, through the host.
  void to_hwio(const ConvGeometry& g, const float* krsc, float* hwio) {
    const int64_t rows = filter_rows(g);
    log_->last_filter = download(krsc, rows * g.F, s_);
    upload(transposed(log_->last_filter, g.F, rows), hwio);
  }

  cudaStream_t s_;
  std::shared_ptr<StandInLog> log_;
};

// A CUDA device whose cuDNN path runs on the stand-in.
struct StandInDevice {
  cuda::CudaDevice dev{0};
  std::shared_ptr<StandInLog> log = std::make_shared<StandInLog>();
  StandInDevice() { dev.set_cudnn_backend_for_testing(std::make_unique<KrscStandIn>(dev.stream(), log)); }
};

std::vector<float> ramp(int64_t n, float scale, float offset) {
  std::vector<float> v(static_cast<size_t>(n));
  for (size_t i = 0; i < v.size(); ++i) v[i] = scale * static_cast<float>(static_cast<int>(i * 7 % 19) - 9) + offset;
  return v;
}

class FilterCopy : public ::testing::Test {
 protected:
  FilterCopy() {
    g.N = 2;
    g.H = g.W = 5;
    g.C = 4;
    g.KH = g.KW = 3;
    g.F = 6;
    g.pad_h = g.pad_w = 1;
    g.OH = g.OW = 5;
  }
  // A forward on the cuDNN path: the stand-in must have been given w as it
  // is now, in KRSC, and `copies` transposes launched for it.
  void expect_current(const std::string& after, unsigned long long copies) {
    const unsigned long long before = transposes();
    d.dev.conv2d_forward(g, x, w, Tensor(), y);
    EXPECT_EQ(transposes() - before, copies) << "filter transposes of a forward after " << after;
    EXPECT_EQ(d.log->last_filter, transposed(w.to_host_f32(), filter_rows(g), g.F))
        << "after " << after << ", the forward read a filter other than the weights as they are";
  }

  ConvGeometry g;
  StandInDevice d;
  const Shape w_shape{3, 3, 4, 6};
  Tensor x = Tensor::from_host(ramp(2 * 5 * 5 * 4, 0.125f, 0.0f), {2, 5, 5, 4}, d.dev);
  Tensor w = Tensor::from_host(ramp(3 * 3 * 4 * 6, 0.0625f, 0.01f), w_shape, d.dev);
  Tensor y = Tensor::empty({2, 5, 5, 6}, d.dev);
  Tensor other = Tensor::from_host(ramp(3 * 3 * 4 * 6, -0.03125f, 0.5f), w_shape, d.dev);
};

// The copy is made once per version of the weights: reading them keeps it,
// and every kind of write is seen (a missed one would be a silent wrong answer).
TEST_F(FilterCopy, MadeOncePerVersionOfTheWeights) {
  expect_current("nothing (the first forward)", 1);
  expect_current("a forward (weights unchanged)", 0);

  // Backward-data reads the same copy.
  Tensor dy = Tensor::full({2, 5, 5, 6}, 0.5, d.dev), dx = Tensor::empty({2, 5, 5, 4}, d.dev);
  unsigned long long before = transposes();
  d.dev.conv2d_backward_data(g, dy, w, dx);
  EXPECT_EQ(transposes() - before, 0u) << "backward-data made its own filter copy";
  EXPECT_EQ(d.log->backward_data, 1);
  EXPECT_EQ(d.log->last_filter, transposed(w.to_host_f32(), filter_rows(g), g.F));

  // Reads (to the host, copies from it, a clone) leave the version as it is.
  static_cast<void>(w.to_host());
  static_cast<void>(w.item(5));
  static_cast<void>(w.clone());
  Tensor copy = Tensor::empty(w_shape, d.dev);
  copy.copy_from(w);
  expect_current("reads of the weights", 0);

  const std::vector<float> host_values = ramp(w.numel(), 0.015625f, -0.25f);
  std::vector<float> grad_values = ramp(w.numel(), 0.25f, 0.0f);
  Tensor grad = Tensor::from_host(grad_values, w_shape, d.dev);
  Tensor none;
  Parameter p("W", w, grad);  // shares w's storage, as a layer's parameter does
  std::vector<NamedParameter> named{{"conv.W", &p}};
  SGD sgd(0.9, 1e-3, true);
  Adam adamw(0.9, 0.999, 1e-8, 1e-2, true);
  const std::vector<std::pair<std::string, std::function<void()>>> writes = {
      {"Device::fill", [&] { d.dev.fill(w, 0.25); }},
      {"Device::axpby into the weights", [&] { d.dev.axpby(0.5, other, 1.0, w); }},
      {"Device::sgd_update", [&] { d.dev.sgd_update(w, grad, none, 0.1, 0.0, 0.0, false); }},
      {"an SGD step (one multi-tensor launch)", [&] { sgd.step(named, 0.05); }},
      {"an AdamW step", [&] { adamw.step(named, 0.01); }},
      {"copy_from a host tensor (how checkpoints load)",
       [&] { w.copy_from(Tensor::from_host(host_values, w_shape, cpu_device())); }},
      {"copy_from a tensor on the device", [&] { w.copy_from(other); }},
      {"a write through a view", [&] {
         Tensor flat = p.value.reshape({w.numel()});
         d.dev.fill(flat, -0.5);
       }},
      {"a copy into raw()", [&] { d.dev.copy_to_device(w.raw(), grad_values.data(), w.bytes()); }},
      {"a device copy into f32()", [&] { d.dev.copy_on_device(w.f32(), other.const_f32(), w.bytes()); }},
      {"the weights replaced by a new tensor", [&] {
         p.value = Tensor();
         w = Tensor();  // freed: the new tensor may well get its memory back
         w = Tensor::from_host(host_values, w_shape, d.dev);
         p.value = w;
       }},
  };
  for (const auto& [what, write] : writes) {
    write();
    expect_current(what, 1);
    expect_current(what + ", then a forward", 0);
  }
}

// In tf32 (and bf16) the copy is rounded once too; each math type keeps its
// own copy, and the fp32 one is not rounded.
TEST_F(FilterCopy, OneCopyPerMathTypeRoundedOnce) {
  expect_current("nothing (fp32)", 1);
  std::vector<float> rounded = transposed(w.to_host_f32(), filter_rows(g), g.F);
  for (float& v : rounded) v = cuda::round_to_tf32(v);
  ASSERT_NE(rounded, d.log->last_filter) << "the weights must have bits TF32 drops for this test to mean anything";
  {
    const PrecisionScope tf32(Precision::TF32);
    const unsigned long long before = transposes();
    d.dev.conv2d_forward(g, x, w, Tensor(), y);
    EXPECT_EQ(transposes() - before, 1u);
    EXPECT_EQ(d.log->last_filter, rounded) << "the tf32 copy is not the TF32-rounded weights";
    d.dev.conv2d_forward(g, x, w, Tensor(), y);
    EXPECT_EQ(transposes() - before, 1u) << "the tf32 copy was made again";
  }
  expect_current("tf32 forwards (the fp32 copy is kept)", 0);
}

// A geometry cuDNN declines costs no filter copy: Janus's kernels run instead.
TEST_F(FilterCopy, NoneWhenCudnnDeclinesTheGeometry) {
  d.log->decline = true;
  Tensor dw = Tensor::empty(w_shape, d.dev), dy = Tensor::full({2, 5, 5, 6}, 0.5, d.dev);
  const unsigned long long before = transposes();
  d.dev.conv2d_forward(g, x, w, Tensor(), y);
  d.dev.conv2d_backward_filter(g, x, dy, dw);
  EXPECT_EQ(transposes() - before, 0u);
  // ... and the implicit-GEMM path did run: its y equals the stand-in's.
  const std::vector<float> fallback = y.to_host_f32();
  d.log->decline = false;
  expect_current("a declined forward", 1);
  EXPECT_EQ(y.to_host_f32(), fallback);
}

// bf16 storage never takes the cuDNN path (cuda_device.cpp, above
// conv2d_kernel: the legacy API has no configuration for it): with cuDNN
// selected, bf16 convolutions run on the implicit-GEMM kernel (groups == 1)
// or the grouped kernels, and their outputs are the float32 ones, which here
// the stand-in computes with the same kernels, rounded once.
TEST_F(FilterCopy, Bf16StorageRunsOnJanusKernels) {
  for (int groups : {1, 2}) {
    g.groups = groups;
    const Shape ws{3, 3, 4 / groups, 6};
    const Tensor wg = Tensor::from_host(ramp(ws.numel(), 0.0625f, 0.01f), ws, d.dev);
    const Tensor dy = Tensor::from_host(ramp(2 * 5 * 5 * 6, 0.25f, 0.125f), {2, 5, 5, 6}, d.dev);
    const std::string tag = "groups=" + std::to_string(groups);
    EXPECT_EQ(d.dev.conv2d_kernel(g, DType::F32), "cuDNN") << tag;
    EXPECT_EQ(d.dev.conv2d_kernel(g, DType::BF16).rfind(groups == 1 ? "Janus implicit GEMM" : "Janus grouped", 0), 0u)
        << tag << ": " << d.dev.conv2d_kernel(g, DType::BF16);
    Tensor dx = Tensor::empty(x.shape(), d.dev), dw = Tensor::empty(ws, d.dev);
    d.dev.conv2d_forward(g, x, wg, Tensor(), y);
    d.dev.conv2d_backward_data(g, dy, wg, dx);
    d.dev.conv2d_backward_filter(g, x, dy, dw);
    const StandInLog seen = *d.log;
    const unsigned long long before = transposes();
    Tensor y16 = Tensor::empty(y.shape(), d.dev, DType::BF16), dx16 = Tensor::empty(x.shape(), d.dev, DType::BF16);
    Tensor dw_b = Tensor::empty(ws, d.dev);
    d.dev.conv2d_forward(g, x.to(DType::BF16), wg, Tensor(), y16);
    d.dev.conv2d_backward_data(g, dy.to(DType::BF16), wg, dx16);
    d.dev.conv2d_backward_filter(g, x.to(DType::BF16), dy.to(DType::BF16), dw_b);
    EXPECT_EQ(d.log->forwards + d.log->backward_data + d.log->backward_filter,
              seen.forwards + seen.backward_data + seen.backward_filter)
        << tag << ": a bf16 pass reached the cuDNN stand-in";
    EXPECT_EQ(transposes() - before, 0u) << tag;
    // (ramp values are exact in bf16, so both runs read the same inputs)
    EXPECT_EQ(y16.to_host_f32(), y.to(DType::BF16).to_host_f32()) << tag;
    EXPECT_EQ(dx16.to_host_f32(), dx.to(DType::BF16).to_host_f32()) << tag;
    EXPECT_EQ(dw_b.to_host_f32(), dw.to_host_f32()) << tag;
  }
}

// ---- a small CNN trained on the cuDNN path ---------------------------------------------------

// Three convolutions (the middle one grouped), no conv bias so that the
// stand-in's y (the convolution, then CudaDevice's bias) cannot differ from
// the implicit-GEMM kernel's fused bias in rounding.
nlohmann::json small_cnn() {
  return nlohmann::json::parse(R"({"seed": 11, "loss": "cross_entropy", "layers": [
      {"type": "conv2d", "n_out": 8, "kernel": 3, "bias": false, "activation": "relu"},
      {"type": "conv2d", "n_out": 8, "kernel": 3, "groups": 4, "bias": false, "activation": "relu"},
      {"type": "pool2d", "mode": "max", "kernel": 2, "stride": 2},
      {"type": "conv2d", "n_out": 6, "kernel": 1, "bias": false},
      {"type": "flatten"},
      {"type": "fully_connected", "n_out": 5}]})");
}
constexpr int kConvLayers = 3;

struct Trainee {
  NeuralNetwork model = NeuralNetwork::from_config(small_cnn());
  std::unique_ptr<Optimizer> sgd = make_optimizer(nlohmann::json::parse(R"({"type": "sgd", "momentum": 0.9})"));
  Device& dev;
  explicit Trainee(Device& d) : dev(d) { model.build(Shape{4, 8, 8, 3}, d); }
  void step(int i) {
    const Tensor x = Tensor::from_host(ramp(4 * 8 * 8 * 3, 0.0625f, 0.01f * static_cast<float>(i)), {4, 8, 8, 3}, dev);
    std::vector<float> y(4 * 5, 0.0f);
    for (int r = 0; r < 4; ++r) y[static_cast<size_t>(r * 5 + (r + i) % 5)] = 1.0f;
    const Tensor target = Tensor::from_host(y, {4, 5}, dev);
    const Tensor out = model.forward(x, Mode::Train);
    model.backward(target, out);
    sgd->step(model.named_parameters(), 0.05);
  }
  std::vector<float> evaluate() {
    const Tensor x = Tensor::from_host(ramp(4 * 8 * 8 * 3, -0.03125f, 0.2f), {4, 8, 8, 3}, dev);
    return model.forward(x, Mode::Eval).to_host_f32();
  }
};

TEST(CudnnPath, TwoFilterTransposesPerConvolutionAndStepOneForAllEvaluations) {
  StandInDevice d;
  cuda::CudaDevice plain(0);
  plain.set_conv_algo(cuda::ConvAlgo::ImplicitGemm);
  Trainee t(d.dev), twin(plain);
  t.step(0);  // the first step allocates what later ones reuse
  twin.step(0);

  const StandInLog at = *d.log;
  const unsigned long long before = transposes();
  t.step(1);
  const unsigned long long now = transposes() - before;
  const int forwards = d.log->forwards - at.forwards, data = d.log->backward_data - at.backward_data,
            filters = d.log->backward_filter - at.backward_filter;
  EXPECT_EQ(forwards, kConvLayers);
  EXPECT_EQ(filters, kConvLayers);
  EXPECT_EQ(data, kConvLayers - 1) << "the first convolution's input needs no gradient";
  // One copy per forward (the weights changed in the last step) and one per
  // filter gradient; backward-data reads the forward's copy.
  EXPECT_EQ(now, static_cast<unsigned long long>(2 * kConvLayers));
  // Before, each of the three passes transposed the filter.
  const int before_layer = forwards + data + filters;
  std::cout << "filter transposes per training step of " << kConvLayers << " convolutions: " << now << " (were "
            << before_layer << ": " << before_layer - static_cast<int>(now) << " fewer)\n";
  twin.step(1);

  for (int i = 2; i < 5; ++i) {
    t.step(i);
    twin.step(i);
  }
  auto p = t.model.named_parameters(), q = twin.model.named_parameters();
  ASSERT_EQ(p.size(), q.size());
  for (size_t i = 0; i < p.size(); ++i)
    EXPECT_EQ(p[i].parameter->value.to_host_f32(), q[i].parameter->value.to_host_f32())
        << p[i].name << ": the cuDNN path (KRSC copies) and the implicit-GEMM path disagree";

  // Evaluation: the weights no longer change, one copy serves every forward.
  const std::vector<float> want = twin.evaluate();
  for (int e = 0; e < 3; ++e) {
    const unsigned long long at_eval = transposes();
    EXPECT_EQ(t.evaluate(), want) << "evaluation " << e;
    EXPECT_EQ(transposes() - at_eval, e == 0 ? static_cast<unsigned long long>(kConvLayers) : 0u)
        << "evaluation forward " << e;
  }
}

}  // namespace
