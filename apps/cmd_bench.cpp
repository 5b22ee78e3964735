// janus bench: per-layer forward / backward times, training and inference
// throughput, GFLOP/s and fraction of peak on every device of the build.
//   janus bench                                   SPEC CNN, MLP 784-256-10, default CIFAR-10 model
//   janus bench --config bench/configs/mlp.json --device cpu --json out.json
//   janus bench --model-config configs/cifar10.json --no-layers --csv cifar.csv
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "janus/bench.hpp"
#include "janus/error.hpp"
#include "janus/nlohmann_json.hpp"
#include "janus/precision.hpp"

namespace janus_cli {

namespace {

struct BenchArgs {
  std::vector<std::string> configs, model_configs, plugins;
  std::string device = "all", precision = "fp32", json_out, csv_out;
  janus::bench::Options o;
  bool no_layers = false;
};

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  JANUS_CHECK(static_cast<bool>(out), "cannot write ", path);
  out << text;
  out.close();
  JANUS_CHECK(static_cast<bool>(out), "cannot write ", path);
}

int run_bench(const BenchArgs& a) {
  load_plugins(a.plugins);
  std::vector<janus::bench::Workload> workloads;
  for (const auto& c : a.configs) workloads.push_back(janus::bench::load_workload(c));
  for (const auto& c : a.model_configs) workloads.push_back(janus::bench::workload_from_run_config(c));
  if (workloads.empty()) workloads = janus::bench::default_workloads();
  janus::bench::Options o = a.o;
  o.layers = !a.no_layers;
  const std::vector<std::string> devices = janus::bench::resolve_devices(a.device);
  const janus::Precision precision = janus::parse_precision(a.precision, "--precision");
  for (const std::string& d : devices) janus::check_precision_supported(janus::get_device(d), precision);
  const janus::PrecisionScope precision_scope(precision);
  std::cout << "janus bench: " << workloads.size() << " workload(s) on " << devices.size() << " device(s), precision "
            << a.precision << "\n";
  nlohmann::json report = janus::bench::run(workloads, devices, o, &std::cout);
  report["precision"] = a.precision;
  if (!a.json_out.empty()) {
    write_file(a.json_out, report.dump(2) + "\n");
    std::cout << "wrote " << a.json_out << "\n";
  }
  if (!a.csv_out.empty()) {
    write_file(a.csv_out, janus::bench::to_csv(report));
    std::cout << "wrote " << a.csv_out << "\n";
  }
  return 0;
}

}  // namespace

void add_bench(CLI::App& app, Action& action) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* sub = app.add_subcommand(
      "bench", "Benchmark models: per-layer forward/backward times, training and inference images/s, GFLOP/s and "
               "fraction of peak, on every device of the build");
  sub->add_option("--config", args->configs,
                  "Workload file (bench/configs/*.json: name, input, classes, batch, model) or run config; "
                  "repeatable. Default: the SPEC CNN, the MLP 784-256-10 and configs/cifar10.json's model");
  sub->add_option("--model-config", args->model_configs,
                  "Run config (e.g. configs/cifar10.json): benchmark its model on its dataset's input shape; "
                  "repeatable");
  sub->add_option("--device", args->device,
                  "cpu, cpu:reference, cuda, cuda:N or all (cpu and every CUDA device; a simulated one is listed "
                  "but not timed)")
      ->capture_default_str();
  add_precision_option(sub, args->precision, "pass --device too where a device cannot run it")->capture_default_str();
  sub->add_option("--batch", args->o.batch, "Batch size (default: each workload's own)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--iters", args->o.iters, "Steps per timed run")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--repeats", args->o.repeats, "Timed runs; the best (and the median) is reported")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--warmup", args->o.warmup, "Untimed steps first")->check(CLI::NonNegativeNumber)->capture_default_str();
  sub->add_option("--json", args->json_out, "Write the full report as JSON to this file");
  sub->add_option("--csv", args->csv_out, "Write one row per device x workload x (training, inference, layer) as CSV");
  add_plugin_option(sub, args->plugins);
  sub->add_flag("--no-layers", args->no_layers, "Skip the per-layer forward/backward timings");
  sub->add_flag("--time-simulated", args->o.time_simulated,
                "Also time a simulated CUDA device (CPU timings of the simulator, labelled; never GPU speed)");
  sub->callback([&action, args] { action = [args] { return run_bench(*args); }; });
}

}  // namespace janus_cli
