// bench_conv_passes: times each pass of the default CIFAR model's
// convolutions (batch 128) on oneDNN in float32 and with bf16 inputs
// (onednn_conv.hpp), and the cost of rounding a pass's inputs to bf16 (the
// emulated bf16 path: rounding + the float32 kernels). Prints one row per
// layer and pass with oneDNN's implementation names. For choosing and
// documenting the CPU's bf16 path; threads from JANUS_NUM_THREADS, else
// OMP_NUM_THREADS, else all cores, read as the library reads them
// (core/env_settings.hpp: a malformed JANUS_NUM_THREADS is an error).
//   build/release-off/bench_conv_passes [reps]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/env_settings.hpp"
#include "cpu/onednn_conv.hpp"
#include "janus/error.hpp"
#include "janus/precision.hpp"

namespace {

using janus::ConvGeometry;
using janus::onednn::InputType;
using janus::onednn::OneDnnConv;
using Pass = OneDnnConv::Pass;

ConvGeometry conv3x3(int n, int hw, int c, int f) {
  ConvGeometry g;
  g.N = n; g.H = g.W = g.OH = g.OW = hw; g.C = c; g.F = f;
  g.KH = g.KW = 3; g.pad_h = g.pad_w = 1;
  return g;
}

// Best wall time of `reps` calls of fn, in ms.
template <class Fn>
double best_ms(int reps, Fn&& fn) {
  fn();  // primitive creation, first touch
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) try {
  const int reps = argc > 1 ? std::atoi(argv[1]) : 10;
  const int threads = janus::env::requested_thread_count().value_or(omp_get_max_threads());
  OneDnnConv conv(threads);
  std::printf("threads %d, native bf16: %s, best of %d\n", threads, janus::onednn::has_native_bf16() ? "yes" : "no",
              reps);
  std::printf("%-16s %-16s %9s %9s %9s  %-34s %s\n", "layer", "pass", "f32 ms", "bf16 ms", "round ms", "f32 impl",
              "bf16 impl");
  const ConvGeometry layers[] = {conv3x3(128, 32, 3, 32),  conv3x3(128, 32, 32, 32), conv3x3(128, 16, 32, 64),
                                 conv3x3(128, 16, 64, 64), conv3x3(128, 8, 64, 128), conv3x3(128, 8, 128, 128)};
  double totals[3] = {0, 0, 0};
  for (const ConvGeometry& g : layers) {
    const size_t nx = size_t(g.N) * g.H * g.W * g.C, nw = size_t(g.KH) * g.KW * g.C * g.F,
                 ny = size_t(g.N) * g.OH * g.OW * g.F;
    std::vector<float> x(nx, 0.5f), w(nw, 0.25f), y(ny, 0.125f), bx(nx), bw(nw), by(ny);
    const std::string name = std::to_string(g.C) + "->" + std::to_string(g.F) + "@" + std::to_string(g.H);
    for (Pass pass : {Pass::Forward, Pass::BackwardData, Pass::BackwardWeights}) {
      auto run = [&](InputType in) {
        switch (pass) {
          case Pass::Forward: conv.forward(g, x.data(), w.data(), nullptr, y.data(), false, in); break;
          case Pass::BackwardData: conv.backward_data(g, y.data(), w.data(), x.data(), in); break;
          case Pass::BackwardWeights: conv.backward_weights(g, x.data(), y.data(), w.data(), in); break;
        }
      };
      // The emulated path rounds the pass's two inputs.
      auto round_inputs = [&] {
        if (pass != Pass::BackwardData) janus::round_to_bf16(x.data(), bx.data(), int64_t(nx));
        if (pass != Pass::BackwardWeights) janus::round_to_bf16(w.data(), bw.data(), int64_t(nw));
        if (pass != Pass::Forward) janus::round_to_bf16(y.data(), by.data(), int64_t(ny));
      };
      const double f32 = best_ms(reps, [&] { run(InputType::F32); });
      const std::string bf16_impl = conv.implementation(pass, g, false, false, InputType::BF16);
      const double bf16 = bf16_impl.empty() ? 0.0 : best_ms(reps, [&] { run(InputType::BF16); });
      const double rnd = best_ms(reps, round_inputs);
      const int p = static_cast<int>(pass);
      totals[0] += f32; totals[1] += bf16_impl.empty() ? f32 + rnd : bf16; totals[2] += rnd;
      std::printf("%-16s %-16s %9.3f %9.3f %9.3f  %-34s %s\n", name.c_str(),
                  p == 0 ? "forward" : p == 1 ? "backward-data" : "backward-weights", f32, bf16, rnd,
                  conv.implementation(pass, g).c_str(), bf16_impl.empty() ? "(declined)" : bf16_impl.c_str());
    }
  }
  std::printf("total: f32 %.2f ms, bf16 %.2f ms (native, or f32 + rounding where declined), rounding %.2f ms\n",
              totals[0], totals[1], totals[2]);
  return 0;
} catch (const janus::Error& e) {
  std::fprintf(stderr, "bench_conv_passes: error: %s\n", e.what());
  return 1;
}
