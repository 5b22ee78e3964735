// janus train: trains a run config into experiments/RUN/.
#include <algorithm>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "janus/error.hpp"
#include "janus/trainer.hpp"

namespace janus_cli {

namespace {

struct TrainArgs {
  std::string config, data_dir, device, precision, name, experiments_dir = "experiments";
  std::vector<std::string> plugins;
  int epochs = 0;
  int64_t max_steps = 0, batch_size = 0;
  bool resume = false, overwrite = false, quiet = false, check_numerics = false, cuda_graph = false;
};

int run_train(const TrainArgs& a) {
  const std::vector<std::string> plugins = load_plugins(a.plugins);
  janus::RunConfig cfg;
  if (!a.config.empty()) {
    cfg = janus::load_run_config(a.config);  // loads the config's own "plugins" too
    // The run's config.json records every plugin, so that evaluate, predict
    // and --resume load them again from the run alone.
    for (const std::string& p : plugins)
      if (std::find(cfg.plugins.begin(), cfg.plugins.end(), p) == cfg.plugins.end()) cfg.plugins.push_back(p);
  } else {
    JANUS_CHECK(a.resume && !a.name.empty(),
                "--config is required (only '--resume --name RUN' can continue a run without it)");
  }
  janus::TrainOptions o;
  o.data_dir = a.data_dir;
  o.data_dir_given_as = "--data-dir";
  o.experiments_dir = a.experiments_dir;
  o.device = a.device;
  o.precision = a.precision;
  o.epochs = a.epochs;
  o.batch_size = a.batch_size;
  o.name = a.name;
  o.resume = a.resume;
  o.overwrite = a.overwrite;
  o.max_steps = a.max_steps;
  o.progress = !a.quiet;
  o.check_numerics = a.check_numerics;
  o.cuda_graph = a.cuda_graph;
  const janus::TrainResult r = janus::train_run(cfg, o);
  // Stopped by SIGINT / SIGTERM (with a resumable checkpoint): the status a
  // shell gives a process that signal ended, 128 + its number (130, 143).
  return r.interrupted_by ? 128 + r.interrupted_by : 0;
}

}  // namespace

void add_train(CLI::App& app, Action& action) {
  auto args = std::make_shared<TrainArgs>();
  CLI::App* sub = app.add_subcommand("train", "Train a model from a run config into EXPERIMENTS_DIR/RUN/");
  sub->add_option("-c,--config", args->config, "Run config (JSON), e.g. configs/cifar10.json");
  sub->add_option("--data-dir", args->data_dir,
                  "Data directory (default: $JANUS_DATA_DIR, ./data or ../shared/data)");
  sub->add_option("--device", args->device, "cpu, cuda, cuda:N or auto (default: the config's, else auto)");
  add_precision_option(sub, args->precision, "default: the config's, else fp32");
  sub->add_option("--epochs", args->epochs, "Number of epochs (overrides the config)")->check(CLI::PositiveNumber);
  sub->add_option("--batch-size", args->batch_size, "Batch size (overrides the config)")->check(CLI::PositiveNumber);
  sub->add_option("--name", args->name, "Run name: the directory under the experiments directory (default: the config's name)");
  sub->add_option("--experiments-dir", args->experiments_dir, "Where runs are kept")->capture_default_str();
  sub->add_flag("--resume", args->resume, "Continue the run from its last.safetensors (same result as an uninterrupted run)");
  sub->add_flag("--overwrite", args->overwrite, "Replace an existing run directory");
  sub->add_option("--max-steps", args->max_steps, "Stop after this many optimizer steps (smoke tests)")
      ->check(CLI::PositiveNumber);
  sub->add_flag("--check-numerics", args->check_numerics,
                "Check every layer's output, gradients and parameters for NaN/inf at each step and name the "
                "first layer where one appears (slower)");
  add_plugin_option(sub, args->plugins);
  sub->add_flag("--cuda-graph", args->cuda_graph,
                "On a CUDA device, record the steady-state training step as a CUDA graph and replay it "
                "(\"cuda_graph\": true; steps it cannot take run uncaptured, said once on stderr)");
  sub->add_flag("-q,--quiet", args->quiet, "No progress bar (epoch summaries still go to stdout)");
  sub->callback([&action, args] { action = [args] { return run_train(*args); }; });
}

}  // namespace janus_cli
