// FP32 peaks for `janus bench` (fraction of peak).
//
// CPU: the peak is *measured*, not computed from a clock. The nominal formula
// (cores x clock x FLOP/cycle) needs the clock the cores really run at under
// vector load, which /proc/cpuinfo does not give: on the machine this was
// written on it reports the 2.6 GHz base clock while the cores boost well
// above it, so the "peak" was exceeded by PyTorch's convolutions. So every
// thread Janus uses runs a loop of independent AVX-512 (or AVX2) FMAs at the
// same time, and the best of a few short runs is the peak; the nominal
// formula is printed beside it for reference.
#include <sched.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <chrono>
#include <thread>
#include <vector>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "core/env_settings.hpp"
#include "janus/bench.hpp"
#include "janus/error.hpp"

#if defined(JANUS_WITH_CUDA) && !defined(JANUS_CUDA_SIM)
#include <cuda_runtime.h>
#endif

namespace janus::bench {

namespace internal {

// The thread count the fast CPU device uses (same rule as src/cpu/fast_device.cpp).
int janus_threads() {
  return env::requested_thread_count().value_or(-1);
}

int available_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return 1;
}

}  // namespace internal

namespace {

// Highest "cpu MHz" in /proc/cpuinfo, else the "@ 2.45GHz" of the model name; 0 if neither.
double cpu_clock_ghz(std::string* model) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  double mhz = 0.0, nominal_ghz = 0.0;
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    while (!key.empty() && (key.back() == ' ' || key.back() == '\t')) key.pop_back();
    const std::string value = line.substr(colon + 1);
    if (key == "cpu MHz") {
      mhz = std::max(mhz, std::atof(value.c_str()));
    } else if (key == "model name") {
      if (model->empty()) {
        const auto start = value.find_first_not_of(" \t");
        if (start != std::string::npos) *model = value.substr(start);
      }
      const auto at = value.find('@');
      if (at != std::string::npos) nominal_ghz = std::max(nominal_ghz, std::atof(value.c_str() + at + 1));
    }
  }
  if (mhz > 0) return mhz / 1000.0;
  return nominal_ghz;
}

#if defined(__x86_64__)
// kChains independent FMA chains: enough to cover FMA latency x FMA units on
// current x86 cores, so the loop is bound by FMA throughput alone.
constexpr int kChains = 12;

__attribute__((target("avx512f"))) float fma_loop_avx512(int64_t iters) {
  __m512 acc[kChains];
  for (int k = 0; k < kChains; ++k) acc[k] = _mm512_set1_ps(static_cast<float>(k) * 1e-3f);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-6f);
  for (int64_t i = 0; i < iters; ++i)
    for (int k = 0; k < kChains; ++k) acc[k] = _mm512_fmadd_ps(acc[k], a, b);
  __m512 sum = acc[0];
  for (int k = 1; k < kChains; ++k) sum = _mm512_add_ps(sum, acc[k]);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, sum);  // (not _mm512_reduce_add_ps: GCC 12 warns inside it)
  float total = 0.0f;
  for (float v : lanes) total += v;
  return total;
}

__attribute__((target("avx2,fma"))) float fma_loop_avx2(int64_t iters) {
  __m256 acc[kChains];
  for (int k = 0; k < kChains; ++k) acc[k] = _mm256_set1_ps(static_cast<float>(k) * 1e-3f);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-6f);
  for (int64_t i = 0; i < iters; ++i)
    for (int k = 0; k < kChains; ++k) acc[k] = _mm256_fmadd_ps(acc[k], a, b);
  __m256 sum = acc[0];
  for (int k = 1; k < kChains; ++k) sum = _mm256_add_ps(sum, acc[k]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum);
  float total = 0.0f;
  for (float v : lanes) total += v;
  return total;
}
#endif

// GFLOP/s of `threads` threads running the FMA loop at once (best of 15 runs
// of about 20 ms: on a shared virtual machine a neighbour's burst can halve
// a single run, so the best of many is the machine's own throughput), or 0
// where no vector FMA exists.
double measured_fma_gflops(int threads, int lanes) {
#if defined(__x86_64__)
  if (lanes != 16 && lanes != 8) return 0.0;
  const int64_t iters = 400000;  // x 12 chains: ~5M FMAs per thread and run
  double best = 0.0;
  std::vector<float> sink(static_cast<size_t>(threads));
  for (int run = 0; run < 15; ++run) {
    std::vector<std::thread> pool;
    const auto t0 = std::chrono::steady_clock::now();
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        sink[static_cast<size_t>(t)] = lanes == 16 ? fma_loop_avx512(iters) : fma_loop_avx2(iters);
      });
    for (auto& th : pool) th.join();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double flops = 2.0 * lanes * kChains * static_cast<double>(iters) * threads;
    best = std::max(best, flops / seconds / 1e9);
  }
  volatile float keep = sink[0];  // the loops' results are used
  (void)keep;
  return best;
#else
  (void)threads;
  (void)lanes;
  return 0.0;
#endif
}

std::string fmt(const char* f, double a) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, a);
  return buf;
}

}  // namespace

Peak cpu_peak() {
  // Measured once per process: it takes about 0.1 s.
  static const Peak peak = [] {
    Peak p;
    int flops_per_cycle = 8, lanes = 0;
    std::string isa = "SSE: 2 x 4-lane fp32 add+mul = 8";
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma")) {
      flops_per_cycle = 64, lanes = 16;
      isa = "AVX-512 FMA: 2 units x 16 fp32 lanes x 2 = 64";
    } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
      flops_per_cycle = 32, lanes = 8;
      isa = "AVX2 FMA: 2 units x 8 fp32 lanes x 2 = 32";
    }
#else
    isa = "non-x86: assumed 8";
#endif
    const int avail = internal::available_cpus();
    const int threads = internal::janus_threads();
    const int cores = threads > 0 ? std::min(threads, avail) : avail;
    std::string model;
    const double ghz = cpu_clock_ghz(&model);
    const double nominal = ghz > 0 ? cores * ghz * flops_per_cycle : 0.0;
    const std::string nominal_text =
        ghz > 0 ? "nominal cores x clock x FLOP/cycle = " + std::to_string(cores) + " x " + fmt("%.2f", ghz) +
                      " GHz ('cpu MHz' of /proc/cpuinfo) x " + std::to_string(flops_per_cycle) + " = " +
                      fmt("%.0f", nominal) + " GFLOP/s, FLOP/cycle from " + isa
                : "no clock in /proc/cpuinfo for a nominal figure";
    const double measured = measured_fma_gflops(cores, lanes);
    const std::string cpu = model.empty() ? std::string("CPU") : model;
    if (measured > 0) {
      p.gflops = measured;
      p.formula = "peak = measured FMA throughput = " + fmt("%.0f", measured) + " GFLOP/s fp32 (" + cpu + "; " +
                  std::to_string(cores) + " thread(s), the threads Janus uses capped at the " +
                  std::to_string(avail) + " CPUs available, each running independent " +
                  (lanes == 16 ? "AVX-512" : "AVX2") + " FMAs at once; " + nominal_text + ")";
    } else if (nominal > 0) {
      p.gflops = nominal;
      p.formula = "peak = cores x clock x FLOP/cycle = " + fmt("%.0f", nominal) + " GFLOP/s fp32 (" + cpu + "; " +
                  nominal_text + ")";
    } else {
      p.formula = "unknown (no vector FMA to measure and no clock in /proc/cpuinfo)";
    }
    return p;
  }();
  return peak;
}

Peak device_peak(const std::string& spec, Device& device) {
  if (device.kind() == DeviceKind::CPU) return cpu_peak();
  Peak p;
  if (device.simulated()) {
    p.formula = "no peak: a simulated CUDA device (the CUDA kernels run on the CPU; not GPU timings)";
    return p;
  }
#if defined(JANUS_WITH_CUDA) && !defined(JANUS_CUDA_SIM)
  int index = 0;
  const auto colon = spec.find(':');
  if (colon != std::string::npos) index = std::atoi(spec.c_str() + colon + 1);
  cudaDeviceProp prop{};
  int khz = 0;
  if (cudaGetDeviceProperties(&prop, index) != cudaSuccess ||
      cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, index) != cudaSuccess || khz <= 0) {
    (void)cudaGetLastError();
    p.formula = "unknown (cudaGetDeviceProperties failed)";
    return p;
  }
  // FP32 lanes (CUDA cores) per SM by compute capability.
  int lanes = 128;
  const int cc = prop.major * 10 + prop.minor;
  if (cc == 60 || (prop.major == 7) || cc == 80) lanes = 64;
  const double ghz = khz / 1e6;
  p.gflops = static_cast<double>(prop.multiProcessorCount) * lanes * ghz * 2.0;
  p.formula = "peak = SMs x fp32 lanes/SM x boost clock x 2 (FMA) = " + std::to_string(prop.multiProcessorCount) +
              " x " + std::to_string(lanes) + " x " + fmt("%.2f", ghz) + " GHz x 2 = " + fmt("%.0f", p.gflops) +
              " GFLOP/s fp32 on CUDA cores (" + prop.name + ", sm_" + std::to_string(cc) +
              "; from cudaDeviceProp; tensor-core TF32/BF16 peaks are higher)";
#else
  (void)spec;
  p.formula = "unknown";
#endif
  return p;
}

}  // namespace janus::bench
