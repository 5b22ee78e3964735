// The subcommands of the janus tool: each registers its CLI11 subcommand and,
// when that subcommand is parsed, sets `action` to the function that runs it
// (run after parsing, so that errors are reported uniformly by main).
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace janus_cli {

using Action = std::function<int()>;

void add_train(CLI::App& app, Action& action);
void add_evaluate(CLI::App& app, Action& action);
void add_predict(CLI::App& app, Action& action);
void add_info(CLI::App& app, Action& action);
void add_bench(CLI::App& app, Action& action);

}  // namespace janus_cli
