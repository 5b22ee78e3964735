// janus predict: predicted classes of a trained run for data files, as a CSV
// "Id,Category" (Id from 0 in file order, Category the class index).
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "janus/error.hpp"
#include "janus/trainer.hpp"

namespace janus_cli {

namespace {

struct PredictArgs {
  std::string run, checkpoint = "best", device = "auto", precision = "fp32", out = "predictions.csv";
  std::vector<std::string> data, plugins;
  int64_t batch_size = 500;
  bool tta = false;
};

int run_predict(const PredictArgs& a) {
  load_plugins(a.plugins);  // the run's config.json names its own plugins, loaded with it
  janus::Device& device = janus::get_device(a.device);
  const janus::Precision precision = janus::parse_precision(a.precision, "--precision");
  janus::check_precision_supported(device, precision);
  const janus::PrecisionScope precision_scope(precision);
  janus::TrainedRun run = janus::load_trained_run(a.run, a.checkpoint, device);
  if (!run.note.empty()) std::cerr << "janus: note: " << run.note << "\n";
  // Labels are never used: CIFAR-10 label bytes are skipped whatever they hold.
  janus::Dataset data = janus::load_dataset_files(run.dataset, a.data, /*ignore_labels=*/true);
  data.class_names.clear();
  for (int& l : data.labels) l = -1;
  janus::prepare_for_run(run, data);
  const std::vector<int> classes = janus::predict_classes(*run.model, data, a.batch_size, a.tta);
  janus::write_predictions_csv(a.out, classes);
  std::cout << "wrote " << classes.size() << " predictions to " << a.out << " (checkpoint " << run.checkpoint
            << ", device " << device.name() << ", precision " << a.precision << ")\n";
  return 0;
}

}  // namespace

void add_predict(CLI::App& app, Action& action) {
  auto args = std::make_shared<PredictArgs>();
  CLI::App* sub = app.add_subcommand("predict", "Predict classes for data files; write a CSV 'Id,Category'");
  sub->add_option("-r,--run", args->run, "Run directory, e.g. experiments/cifar10")->required();
  sub->add_option("--data", args->data,
                  "Data files in order (cifar10: batch files, labels ignored; fashion_mnist: IMAGES LABELS; iris: a CSV)")
      ->required();
  sub->add_option("-o,--out", args->out, "Output CSV")->capture_default_str();
  sub->add_option("--checkpoint", args->checkpoint, "best, last or a .safetensors path")->capture_default_str();
  sub->add_option("--device", args->device, "cpu, cuda, cuda:N or auto")->capture_default_str();
  add_precision_option(sub, args->precision, "checkpoints hold fp32 weights, so any run predicts in any precision")
      ->capture_default_str();
  sub->add_option("--batch-size", args->batch_size, "Batch size")->check(CLI::PositiveNumber)->capture_default_str();
  add_plugin_option(sub, args->plugins);
  sub->add_flag("--tta", args->tta,
                "Test-time augmentation (images): average the outputs for each image and its left-right mirror");
  sub->callback([&action, args] { action = [args] { return run_predict(*args); }; });
}

}  // namespace janus_cli
