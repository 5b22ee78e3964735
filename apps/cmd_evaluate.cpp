// janus evaluate: loss, accuracy, per-class accuracy and the confusion matrix
// of a trained run on data files or on one of the run's own splits.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "janus/checkpoint.hpp"
#include "janus/error.hpp"
#include "janus/nlohmann_json.hpp"
#include "janus/trainer.hpp"

namespace janus_cli {

namespace {

struct EvaluateArgs {
  std::string run, checkpoint = "best", split = "validation", device = "auto", precision = "fp32", data_dir, json_out;
  std::vector<std::string> data, plugins;
  int64_t batch_size = 500;
  bool tta = false;
};

int run_evaluate(const EvaluateArgs& a) {
  load_plugins(a.plugins);  // the run's config.json names its own plugins, loaded with it
  janus::Device& device = janus::get_device(a.device);
  const janus::Precision precision = janus::parse_precision(a.precision, "--precision");
  janus::check_precision_supported(device, precision);
  const janus::PrecisionScope precision_scope(precision);
  janus::TrainedRun run = janus::load_trained_run(a.run, a.checkpoint, device);
  if (!run.note.empty()) std::cerr << "janus: note: " << run.note << "\n";
  janus::Dataset data;
  std::string what;
  if (!a.data.empty()) {
    data = janus::load_dataset_files(run.dataset, a.data, /*ignore_labels=*/false);
    what = data.source;
  } else {
    janus::RunData splits = janus::load_run_data(run.config, a.data_dir, "--data-dir");
    if (a.split == "train") data = std::move(splits.train);
    else if (a.split == "test") data = std::move(splits.test);
    else data = std::move(splits.validation);
    JANUS_CHECK(data.size() > 0, "run ", a.run, " has no ", a.split, " split",
                a.split == "test" ? " (set dataset.test_fraction in the config)" : "", "; pass --data FILE...");
    what = "the run's " + a.split + " split";
  }
  janus::prepare_for_run(run, data);
  janus::EvalResult r = janus::evaluate(*run.model, data, a.batch_size, a.tta);
  std::cout << "run        " << a.run << "\ncheckpoint " << run.checkpoint << "\ndata       " << what << "\ndevice     "
            << device.name() << "\nprecision  " << a.precision << (a.tta ? "\ntta        left-right flip averaging" : "") << "\n"
            << janus::format_eval_report(r);
  if (!a.json_out.empty()) {
    nlohmann::json j = {{"run", a.run},          {"checkpoint", run.checkpoint}, {"data", what},
                        {"samples", r.n},        {"tta", a.tta},        {"loss", r.loss},               {"accuracy", r.accuracy},
                        {"class_names", r.class_names}, {"confusion", r.confusion}};
    janus::write_file_atomically(a.json_out, j.dump(2) + "\n");
  }
  return 0;
}

}  // namespace

void add_evaluate(CLI::App& app, Action& action) {
  auto args = std::make_shared<EvaluateArgs>();
  CLI::App* sub = app.add_subcommand("evaluate", "Evaluate a trained run: loss, accuracy, per-class accuracy, confusion matrix");
  sub->add_option("-r,--run", args->run, "Run directory, e.g. experiments/cifar10")->required();
  sub->add_option("--data", args->data,
                  "Labelled data files (cifar10: batch files; fashion_mnist: IMAGES LABELS; iris: a CSV). "
                  "Default: the run's own --split");
  sub->add_option("--split", args->split, "Without --data: the run's split to evaluate")
      ->check(CLI::IsMember({"train", "validation", "test"}))
      ->capture_default_str();
  sub->add_option("--checkpoint", args->checkpoint, "best, last or a .safetensors path")->capture_default_str();
  sub->add_option("--device", args->device, "cpu, cuda, cuda:N or auto")->capture_default_str();
  add_precision_option(sub, args->precision, "checkpoints hold fp32 weights, so any run evaluates in any precision")
      ->capture_default_str();
  sub->add_option("--data-dir", args->data_dir, "Data directory for the run's own splits");
  sub->add_option("--batch-size", args->batch_size, "Evaluation batch size")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_flag("--tta", args->tta,
                "Test-time augmentation (images): average the outputs for each image and its left-right mirror");
  sub->add_option("--json", args->json_out, "Also write the results as JSON to this file");
  add_plugin_option(sub, args->plugins);
  sub->callback([&action, args] { action = [args] { return run_evaluate(*args); }; });
}

}  // namespace janus_cli
