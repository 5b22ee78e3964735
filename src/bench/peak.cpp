// Theoretical FP32 peaks for `janus bench` (fraction of peak).
#include <sched.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "janus/bench.hpp"
#include "janus/error.hpp"

#if defined(JANUS_WITH_CUDA) && !defined(JANUS_CUDA_SIM)
#include <cuda_runtime.h>
#endif

namespace janus::bench {

namespace internal {

// The thread count the fast CPU device uses (same rule as src/cpu/fast_device.cpp).
int janus_threads() {
  for (const char* var : {"JANUS_NUM_THREADS", "OMP_NUM_THREADS"}) {
    if (const char* env = std::getenv(var)) {
      const int n = std::atoi(env);
      if (n > 0) return n;
    }
  }
  return -1;
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

std::string fmt(const char* f, double a) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, a);
  return buf;
}

}  // namespace

Peak cpu_peak() {
  Peak p;
  int flops_per_cycle = 8;
  std::string isa = "SSE: 2 x 4-lane fp32 add+mul = 8";
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma")) {
    flops_per_cycle = 64;
    isa = "AVX-512 FMA: 2 units x 16 fp32 lanes x 2 = 64";
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    flops_per_cycle = 32;
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
  if (ghz <= 0) {
    p.formula = "unknown (no clock in /proc/cpuinfo)";
    return p;
  }
  p.gflops = cores * ghz * flops_per_cycle;
  p.formula = "peak = cores x clock x FLOP/cycle = " + std::to_string(cores) + " x " + fmt("%.2f", ghz) +
              " GHz x " + std::to_string(flops_per_cycle) + " = " + fmt("%.0f", p.gflops) +
              " GFLOP/s fp32 (" + (model.empty() ? std::string("CPU") : model) +
              "; cores: threads Janus uses, capped at the " + std::to_string(avail) +
              " CPUs available; clock: highest 'cpu MHz' in /proc/cpuinfo; FLOP/cycle from " + isa + ")";
  return p;
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
