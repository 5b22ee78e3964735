// janus info: version, build options, devices and library versions.
#include <dlfcn.h>
#include <zlib.h>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "janus/data.hpp"
#include "janus/device.hpp"
#include "janus/error.hpp"
#include "janus/nlohmann_json.hpp"
#include "janus/plugin.hpp"
#include "janus/precision.hpp"

namespace janus_cli {

namespace {

int run_info(const std::vector<std::string>& plugin_paths) {
  load_plugins(plugin_paths);
  std::cout << "janus " << JANUS_VERSION << "\n";
  std::cout << "build\n";
  std::cout << "  CUDA backend   " << JANUS_CUDA_MODE
            << (std::string(JANUS_CUDA_MODE) == "SIM"  ? " (CUDA kernels run by the CPU simulator)"
                : std::string(JANUS_CUDA_MODE) == "ON" ? " (real CUDA)"
                                                       : " (CPU only)")
            << "\n";
#if defined(__VERSION__)
  std::cout << "  compiler       " << __VERSION__ << "\n";
#endif
#ifdef NDEBUG
  std::cout << "  assertions     off (release)\n";
#else
  std::cout << "  assertions     on (debug)\n";
#endif
  std::cout << "devices\n";
  std::cout << "  " << janus::cpu_device().name() << "\n";
  if (!janus::cuda_built()) {
    std::cout << "  (no CUDA backend in this build)\n";
  } else {
    int n = 0;
    try {
      n = janus::cuda_device_count();
    } catch (const std::exception& e) {
      std::cout << "  CUDA: cannot count devices: " << e.what() << "\n";
    }
    // The CUDA runtime's own error (a driver older than the runtime, say),
    // never just "none": a broken GPU machine must not look like a CPU one.
    if (n == 0) std::cout << "  CUDA: no device usable: " << janus::cuda_unavailable_reason() << "\n";
    for (int i = 0; i < n; ++i) {
      try {
        janus::Device& d = janus::get_device("cuda:" + std::to_string(i));
        std::cout << "  " << d.name() << (d.simulated() ? "  [simulator: CUDA kernels run on the CPU]" : "") << "\n";
      } catch (const std::exception& e) {
        std::cout << "  cuda:" << i << ": unavailable: " << e.what() << "\n";
      }
    }
  }
  std::cout << "  auto ->        ";
  try {
    std::cout << janus::get_device("auto").name() << "\n";
  } catch (const std::exception& e) {
    std::cout << "unavailable: " << e.what() << "\n";
  }
  std::cout << "precision (--precision; which operations run in which type)\n";
  std::cout << janus::precision_table_text();
  std::cout << "  bf16 on this CPU: " << janus::cpu_bf16_path() << "\n";
  if (janus::cuda_built())
    for (janus::Precision p : {janus::Precision::FP32, janus::Precision::TF32, janus::Precision::BF16})
      std::cout << "  " << janus::precision_name(p) << " on CUDA: " << janus::cuda_matmul_path(p) << "\n";
  std::cout << "data\n  data directory ";
  try {
    std::cout << janus::resolve_data_dir("") << "\n";
  } catch (const std::exception&) {
    std::cout << "(none found; pass --data-dir or set JANUS_DATA_DIR)\n";
  }
  std::cout << "plugins (--plugin; plugin ABI " << JANUS_PLUGIN_ABI_VERSION << ")\n";
  const std::vector<janus::PluginInfo> plugins = janus::loaded_plugins();
  if (plugins.empty()) std::cout << "  (none loaded)\n";
  for (const janus::PluginInfo& p : plugins) {
    std::cout << "  " << p.name << "  " << p.path << "\n    layer types:";
    for (const std::string& t : p.layer_types) std::cout << " " << t;
    std::cout << "\n";
  }
  std::cout << "libraries\n";
  std::cout << "  nlohmann_json  " << NLOHMANN_JSON_VERSION_MAJOR << "." << NLOHMANN_JSON_VERSION_MINOR << "."
            << NLOHMANN_JSON_VERSION_PATCH << "\n";
  std::cout << "  CLI11          " << CLI11_VERSION << "\n";
  std::cout << "  zlib           " << zlibVersion() << "\n";
  if (janus::cuda_built()) std::cout << "  CUDA           " << janus::cuda_library_versions() << "\n";
  // OpenBLAS, when the process has it loaded (looked up at run time: no hard dependency).
  using ConfigFn = char* (*)();
  if (auto fn = reinterpret_cast<ConfigFn>(dlsym(RTLD_DEFAULT, "openblas_get_config")))
    std::cout << "  OpenBLAS       " << fn() << "\n";
  // oneDNN (the fast CPU path's convolutions and SGEMM): dnnl_version() returns
  // a dnnl_version_t, whose first three members are the major, minor and patch ints.
  using VersionFn = const int* (*)();
  if (auto fn = reinterpret_cast<VersionFn>(dlsym(RTLD_DEFAULT, "dnnl_version"))) {
    const int* v = fn();
    std::cout << "  oneDNN         " << v[0] << "." << v[1] << "." << v[2] << "\n";
  }
  return 0;
}

}  // namespace

void add_info(CLI::App& app, Action& action) {
  auto plugins = std::make_shared<std::vector<std::string>>();
  CLI::App* sub =
      app.add_subcommand("info", "Version, build options, devices, library versions and the plugins loaded");
  add_plugin_option(sub, *plugins);
  sub->callback([&action, plugins] { action = [plugins] { return run_info(*plugins); }; });
}

}  // namespace janus_cli
