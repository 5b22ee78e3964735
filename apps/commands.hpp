// The subcommands of the janus tool: each registers its CLI11 subcommand and,
// when that subcommand is parsed, sets `action` to the function that runs it
// (run after parsing, so that errors are reported uniformly by main).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace janus_cli {

using Action = std::function<int()>;

void add_train(CLI::App& app, Action& action);
void add_evaluate(CLI::App& app, Action& action);
void add_predict(CLI::App& app, Action& action);
void add_info(CLI::App& app, Action& action);
void add_bench(CLI::App& app, Action& action);

// The --precision option of train / evaluate / predict / bench: fp32, tf32
// or bf16 (janus/precision.hpp), stored in `value`; `extra` ends the help.
inline CLI::Option* add_precision_option(CLI::App* sub, std::string& value, const std::string& extra) {
  return sub
      ->add_option("--precision", value,
                   "fp32 (default), bf16 (CPU and CUDA) or tf32 (CUDA tensor-op math; the CPU refuses it): the precision of "
                   "convolutions and GEMMs (`janus info` prints which operations run in which type); " + extra)
      ->check(CLI::IsMember({"fp32", "tf32", "bf16"}));
}

// The --plugin option of every subcommand (repeatable): shared libraries
// that add layer types (janus/plugin.hpp), stored in `paths`.
CLI::Option* add_plugin_option(CLI::App* sub, std::vector<std::string>& paths);
// Loads the --plugin libraries, in order, before any config or checkpoint is
// read; returns their canonical paths. Throws janus::Error naming the file.
std::vector<std::string> load_plugins(const std::vector<std::string>& paths);

}  // namespace janus_cli
