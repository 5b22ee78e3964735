// bench_igemm_variants: each variant of Janus's implicit-GEMM convolution,
// pass by pass, on the 3x3 layers of the default CIFAR model
// (configs/cifar10.json), in one process, so that a GPU run measures the old
// kernel against the new ones (after llm.c's dev/cuda benchmarks):
//   v1    the first kernel (conv_implicit_gemm_v1.cu), float32
//   fp32  the tiled, double-buffered kernel on CUDA cores (the backend's fp32)
//   tf32  the same tiles on tensor cores (WMMA m16n16k8 TF32)
//   bf16  the same tiles on tensor cores (WMMA m16n16k16 bf16)
// Per layer, pass and variant: milliseconds (median of --reps timed runs
// after two warm-ups, CUDA events on one stream), TFLOP/s (2*M*N*K per
// pass) and the largest difference from v1 relative to K (inputs are uniform
// in [-1, 1], so |sum_k a_k b_k| <= K); a difference beyond the variant's
// rounding bound makes the program exit with 1.
//
// On the simulator (JANUS_CUDA=SIM) the kernels run on the CPU: the program
// checks that every variant runs and agrees, and prints no timings.
//
//   build/<dir>/bench_igemm_variants [--batch N] [--reps R] [--layers L]
#include "cuda/cuda_compat.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cuda/kernels.hpp"
#include "janus/device.hpp"
#include "janus/precision.hpp"

namespace {

namespace k = janus::cuda_kernels;
using janus::ConvGeometry;
using janus::MathType;

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "bench_igemm_variants: %s: %s\n", what, cudaGetErrorString(e));
    std::exit(2);
  }
}

struct Buffer {
  float* p = nullptr;
  size_t n = 0;
  explicit Buffer(size_t count) : n(count) {
    check(cudaMalloc(reinterpret_cast<void**>(&p), std::max<size_t>(1, n) * sizeof(float)), "cudaMalloc");
  }
  ~Buffer() { cudaFree(p); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  void fill_random(uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> d(-1.0f, 1.0f);
    std::vector<float> h(n);
    for (float& v : h) v = d(rng);
    check(cudaMemcpy(p, h.data(), n * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy");
  }
  std::vector<float> host() const {
    std::vector<float> h(n);
    check(cudaMemcpy(h.data(), p, n * sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy");
    return h;
  }
};

ConvGeometry conv3x3(int n, int hw, int c, int f) {
  ConvGeometry g;
  g.N = n;
  g.H = g.W = g.OH = g.OW = hw;
  g.C = c;
  g.F = f;
  g.KH = g.KW = 3;
  g.stride_h = g.stride_w = 1;
  g.pad_h = g.pad_w = 1;
  return g;
}

enum class Variant { V1, F32, TF32, BF16 };
const char* name_of(Variant v) {
  switch (v) {
    case Variant::V1: return "v1";
    case Variant::F32: return "fp32";
    case Variant::TF32: return "tf32";
    case Variant::BF16: return "bf16";
  }
  return "?";
}
MathType math_of(Variant v) {
  return v == Variant::TF32 ? MathType::TF32 : v == Variant::BF16 ? MathType::BF16 : MathType::F32;
}
// Unit roundoff of the operands (0 for float32 inputs).
double operand_roundoff(Variant v) {
  return v == Variant::TF32 ? std::ldexp(1.0, -11) : v == Variant::BF16 ? std::ldexp(1.0, -8) : 0.0;
}

enum class Pass { Forward, BackwardData, BackwardFilter };
const char* name_of(Pass p) {
  return p == Pass::Forward ? "forward" : p == Pass::BackwardData ? "backward-data" : "backward-filter";
}

struct Tensors {
  Buffer x, w, y, dy, dx, dw, ws;
  explicit Tensors(const ConvGeometry& g)
      : x(size_t(g.N) * g.H * g.W * g.C), w(size_t(g.KH) * g.KW * g.C * g.F), y(size_t(g.N) * g.OH * g.OW * g.F),
        dy(y.n), dx(x.n), dw(w.n),
        ws(size_t(std::max(k::conv2d_backward_filter_workspace(g), k::conv2d_backward_filter_workspace_v1(g)))) {
    x.fill_random(1);
    w.fill_random(2);
    dy.fill_random(3);
  }
};

// Runs one pass of one variant; returns the output buffer.
const Buffer& run(Variant v, Pass p, const ConvGeometry& g, Tensors& t, cudaStream_t s) {
  switch (p) {
    case Pass::Forward:
      if (v == Variant::V1) k::conv2d_forward_igemm_v1(g, t.x.p, t.w.p, nullptr, t.y.p, s);
      else k::conv2d_forward_igemm(g, t.x.p, t.w.p, nullptr, t.y.p, math_of(v), s);
      return t.y;
    case Pass::BackwardData:
      if (v == Variant::V1) k::conv2d_backward_data_igemm_v1(g, t.dy.p, t.w.p, t.dx.p, s);
      else k::conv2d_backward_data_igemm(g, t.dy.p, t.w.p, t.dx.p, math_of(v), s);
      return t.dx;
    case Pass::BackwardFilter:
      if (v == Variant::V1) k::conv2d_backward_filter_igemm_v1(g, t.x.p, t.dy.p, t.dw.p, t.ws.p, s);
      else k::conv2d_backward_filter_igemm(g, t.x.p, t.dy.p, t.dw.p, t.ws.p, math_of(v), s);
      return t.dw;
  }
  return t.y;
}

// The GEMM's reduction length of a pass.
double reduction_length(Pass p, const ConvGeometry& g) {
  if (p == Pass::Forward) return double(g.KH) * g.KW * g.C;
  if (p == Pass::BackwardData) return double(g.KH) * g.KW * g.F;
  return double(g.N) * g.OH * g.OW;
}

}  // namespace

int main(int argc, char** argv) {
  int batch = JANUS_SIMULATED ? 1 : 512, reps = JANUS_SIMULATED ? 1 : 20, layers = 6;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](int& out) {
      if (i + 1 >= argc || (out = std::atoi(argv[++i])) <= 0) {
        std::fprintf(stderr, "bench_igemm_variants: %s needs a positive integer\n", a.c_str());
        std::exit(2);
      }
    };
    if (a == "--batch") value(batch);
    else if (a == "--reps") value(reps);
    else if (a == "--layers") value(layers);
    else {
      std::fprintf(stderr, "usage: bench_igemm_variants [--batch N] [--reps R] [--layers L]\n");
      return 2;
    }
  }
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::fprintf(stderr, "bench_igemm_variants: no CUDA device\n");
    return 77;
  }
  const std::vector<ConvGeometry> geoms = {conv3x3(batch, 32, 3, 32),  conv3x3(batch, 32, 32, 32),
                                           conv3x3(batch, 16, 32, 64), conv3x3(batch, 16, 64, 64),
                                           conv3x3(batch, 8, 64, 128), conv3x3(batch, 8, 128, 128)};
  cudaStream_t s = nullptr;
  check(cudaStreamCreate(&s), "cudaStreamCreate");
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&stop), "cudaEventCreate");
  std::printf("%s; batch %d, %d timed runs per cell\n",
              JANUS_SIMULATED ? "SIMULATED CUDA device: correctness only, no timings" : "CUDA device", batch, reps);
  std::printf("%-22s %-16s %-5s %10s %9s %12s\n", "layer", "pass", "var", "ms", "TFLOP/s", "diff/K vs v1");
  bool ok = true;
  const double u = std::ldexp(1.0, -24);
  for (int l = 0; l < std::min<int>(layers, static_cast<int>(geoms.size())); ++l) {
    const ConvGeometry& g = geoms[static_cast<size_t>(l)];
    Tensors t(g);
    const std::string layer = std::to_string(g.C) + "->" + std::to_string(g.F) + " @" + std::to_string(g.H) + "x" +
                              std::to_string(g.W);
    for (Pass p : {Pass::Forward, Pass::BackwardData, Pass::BackwardFilter}) {
      const double K = reduction_length(p, g);
      const double flops = 2.0 * double(g.N) * g.OH * g.OW * g.F * g.KH * g.KW * g.C;
      std::vector<float> reference;
      for (Variant v : {Variant::V1, Variant::F32, Variant::TF32, Variant::BF16}) {
        const Buffer& out = run(v, p, g, t, s);
        check(cudaStreamSynchronize(s), "run");
        const std::vector<float> h = out.host();
        double diff = 0.0;
        if (v == Variant::V1) reference = h;
        else
          for (size_t i = 0; i < h.size(); ++i) diff = std::max(diff, std::fabs(double(h[i]) - reference[i]));
        // |sum a b| <= K: summation error on both sides (K u K for v1, up to
        // 2 K u K on tensor cores), plus the
        // operands' rounding (2 u_r + u_r^2 per product).
        const double ur = operand_roundoff(v);
        const double bound = K * (3 * K * u + 2 * ur + ur * ur) + 4 * K * u;
        if (!(diff <= bound)) ok = false;
        double ms = 0.0;
        if (!JANUS_SIMULATED) {
          run(v, p, g, t, s);
          run(v, p, g, t, s);
          std::vector<float> times;
          for (int r = 0; r < reps; ++r) {
            check(cudaEventRecord(start, s), "cudaEventRecord");
            run(v, p, g, t, s);
            check(cudaEventRecord(stop, s), "cudaEventRecord");
            check(cudaEventSynchronize(stop), "cudaEventSynchronize");
            float e = 0.0f;
            check(cudaEventElapsedTime(&e, start, stop), "cudaEventElapsedTime");
            times.push_back(e);
          }
          std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
          ms = times[times.size() / 2];
        }
        char timing[64];
        if (JANUS_SIMULATED) std::snprintf(timing, sizeof timing, "%10s %9s", "-", "-");
        else std::snprintf(timing, sizeof timing, "%10.4f %9.2f", ms, flops / (ms * 1e-3) / 1e12);
        std::printf("%-22s %-16s %-5s %s %12.3g%s\n", layer.c_str(), name_of(p), name_of(v), timing, diff / K,
                    diff <= bound ? "" : "  BEYOND THE ROUNDING BOUND");
      }
    }
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaStreamDestroy(s);
  return ok ? 0 : 1;
}
