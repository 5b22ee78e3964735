// Benchmarks: training / inference throughput, per-layer forward and backward
// times, GFLOP/s and the fraction of the device's peak, page faults and peak
// RSS. The engine behind `janus bench` and bench/janus_bench (one
// implementation; bench/compare_pytorch.py reads the JSON report).
//
// A workload is a network, a per-example input shape, a class count and a
// batch size. It comes from
//   - a workload file (bench/configs/*.json):
//       {"name", "input": [per-example shape], "classes", "batch", "model": {...}}
//   - or a run config (configs/*.json, as for `janus train`): its "model", the
//     input shape and class count of its "dataset" (cifar10: 32x32x3, 10;
//     fashion_mnist: 28x28x1, 10; iris: 4, 3) and its "batch_size".
//
// Each measurement is the best of `repeats` runs of `iters` steps after
// `warmup` steps (the machine may be shared; the best run is the least
// disturbed one); the median run is reported too. Training = forward + loss +
// backward + SGD (momentum 0.9) step on random inputs and one-hot labels
// (fixed seed), whatever optimizer a run config names, so that every
// framework and workload is timed on the same step.
//
// FLOPs count the multiply-adds (x2) of convolution and dense layers only;
// backward is twice the forward, a training step three times. A simulated
// CUDA device ("cuda:0 (simulated on the CPU)") is listed but not timed unless
// Options::time_simulated; its rows are then marked "simulated": true and are
// CPU timings of the simulator, never GPU speed.
//
// Not part of <janus/janus.hpp>: its reports are nlohmann::json, so a
// program that includes it links Janus::nlohmann_json (see
// <janus/nlohmann_json.hpp>).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "janus/device.hpp"
#include "janus/nlohmann_json.hpp"

namespace janus::bench {

struct Workload {
  std::string name;
  std::string source;             // the file it was read from
  nlohmann::json model;           // NeuralNetwork::from_config JSON
  std::vector<int64_t> input;     // per-example shape
  int classes = 10;
  int batch = 128;
};

// A workload file or, when the JSON has a "dataset" key, a run config. Either
// may list "plugins" (shared libraries with layer types, janus/plugin.hpp;
// paths relative to the file's folder), loaded here before the model is
// built. Throws janus::Error naming the file and the key at fault.
Workload load_workload(const std::string& path);
// Always read as a run config (its "model", "plugins" and dataset input shape).
Workload workload_from_run_config(const std::string& path);
// The defaults: the SPEC reference CNN (bench/configs/spec_cnn.json), the MLP
// 784-256-10 (bench/configs/mlp.json) and the default CIFAR-10 model
// (configs/cifar10.json's "model", input 32x32x3), read from the source tree.
std::vector<Workload> default_workloads();
// Finds a file given relative to the source tree: as given if it exists, else
// under the source directory the library was built from.
std::string find_source_file(const std::string& relative);

struct Options {
  int batch = 0;  // 0: each workload's own
  int iters = 5;
  int repeats = 3;
  int warmup = 2;
  bool layers = true;           // per-layer forward / backward times
  bool time_simulated = false;  // also time a simulated CUDA device (labelled as such)
};

// Theoretical FP32 peak of a device, and how it was obtained.
struct Peak {
  double gflops = 0.0;  // 0: unknown
  std::string formula;  // e.g. "2 cores x 2.45 GHz x 64 FLOP/cycle (AVX-512 FMA: ...)"
};
// CPU: measured FMA throughput of min(threads Janus uses, CPUs available)
// threads running independent AVX-512 (else AVX2) FMAs at once (the clock
// /proc/cpuinfo reports is the base clock, not the one the cores run at); the
// nominal cores x clock x FLOP/cycle figure is kept in the formula text, and
// is the peak where no vector FMA exists.
Peak cpu_peak();
// Any device: the CPU's for the CPU, cudaDeviceProp-based for a real CUDA
// device (SMs x FP32 lanes/SM x clock x 2), unknown for a simulated one.
Peak device_peak(const std::string& spec, Device& device);

// Device specs for --device: "all" = cpu and every CUDA device of the build
// (cuda:0... ; the simulator's one too), "cuda" = every CUDA device, else the
// spec itself ("cpu", "cpu:reference", "cuda:N").
std::vector<std::string> resolve_devices(const std::string& spec);

// One workload on one device: a JSON object (see the keys in RESULTS.md /
// print_table).
nlohmann::json run_workload(const Workload& w, Device& device, const Options& o, double peak_gflops);

// Everything: {"devices": [{"device", "spec", "simulated", "timed", "note",
// "peak_gflops", "peak_formula", "workloads": [...]}], "peak_rss_mb",
// "iters", "repeats", "warmup", "threads"...}. Progress and tables go to `out`
// (nullptr: silent) as each workload finishes.
nlohmann::json run(const std::vector<Workload>& workloads, const std::vector<std::string>& device_specs,
                   const Options& o, std::ostream* out);

// The human-readable table of one workload result.
void print_workload(const nlohmann::json& result, std::ostream& out);
// One CSV row per (device, workload, item): item = training, inference or a
// layer name. Header included.
std::string to_csv(const nlohmann::json& report);

}  // namespace janus::bench
