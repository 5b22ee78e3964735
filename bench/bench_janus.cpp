// janus_bench: a thin wrapper over the benchmark engine of the library
// (janus/bench.hpp, src/bench/), the same one `janus bench` runs. Kept as a
// standalone binary with no CLI11 dependency; defaults to the CPU device.
//
//   janus_bench [--config FILE]... [--model-config RUN_CONFIG]... [--device cpu|cuda|all]
//               [--json FILE] [--csv FILE] [--batch N] [--iters N] [--repeats N]
//               [--warmup N] [--no-layers] [--time-simulated]
//
// Without --config / --model-config: the SPEC CNN (bench/configs/spec_cnn.json),
// the MLP 784-256-10 (bench/configs/mlp.json) and configs/cifar10.json's model.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "janus/bench.hpp"
#include "janus/nlohmann_json.hpp"

namespace {

[[noreturn]] void usage(const std::string& msg, int status = 2) {
  std::fprintf(status ? stderr : stdout,
               "janus_bench: %s\nusage: janus_bench [--config FILE]... [--model-config RUN_CONFIG]... "
               "[--device cpu|cuda|all] [--json FILE] [--csv FILE] [--batch N] [--iters N] [--repeats N] "
               "[--warmup N] [--no-layers] [--time-simulated]\n(same engine as `janus bench`)\n",
               msg.c_str());
  std::exit(status);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> configs, model_configs;
  std::string device = "cpu", json_out, csv_out;
  janus::bench::Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage("missing value after " + a);
      return argv[++i];
    };
    auto integer = [&](int min) {
      const std::string v = value();
      char* end = nullptr;
      const long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || n < min || n > 1000000000) usage(a + " needs an integer >= " + std::to_string(min));
      return static_cast<int>(n);
    };
    if (a == "--config") configs.push_back(value());
    else if (a == "--model-config") model_configs.push_back(value());
    else if (a == "--json") json_out = value();
    else if (a == "--csv") csv_out = value();
    else if (a == "--device") device = value();
    else if (a == "--batch") o.batch = integer(1);
    else if (a == "--iters") o.iters = integer(1);
    else if (a == "--repeats") o.repeats = integer(1);
    else if (a == "--warmup") o.warmup = integer(0);
    else if (a == "--no-layers") o.layers = false;
    else if (a == "--time-simulated") o.time_simulated = true;
    else if (a == "-h" || a == "--help") usage("benchmark Janus models", 0);
    else usage("unknown argument " + a);
  }
  try {
    std::vector<janus::bench::Workload> workloads;
    for (const auto& c : configs) workloads.push_back(janus::bench::load_workload(c));
    for (const auto& c : model_configs) workloads.push_back(janus::bench::workload_from_run_config(c));
    if (workloads.empty()) workloads = janus::bench::default_workloads();
    const nlohmann::json report =
        janus::bench::run(workloads, janus::bench::resolve_devices(device), o, &std::cout);
    if (!json_out.empty()) {
      std::ofstream out(json_out);
      out << report.dump(2) << "\n";
      if (!out) throw std::runtime_error("cannot write " + json_out);
    }
    if (!csv_out.empty()) {
      std::ofstream out(csv_out);
      out << janus::bench::to_csv(report);
      if (!out) throw std::runtime_error("cannot write " + csv_out);
    }
  } catch (const std::exception& e) {
    std::cout.flush();
    std::fprintf(stderr, "janus_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
