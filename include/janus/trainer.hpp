// The training engine behind `janus train`, `janus evaluate` and
// `janus predict`: run configs (JSON), dataset assembly, the epoch loop with
// checkpoints, metrics and plots in an experiment directory, and evaluation /
// prediction from a finished run.
//
// Run config (every key is checked; an unknown key is an error naming the key
// and the file):
//   {
//     "name": "cifar10",                       run directory name under experiments/
//     "description": "...",                    free text (optional)
//     "dataset": {
//       "name": "iris" | "fashion_mnist" | "cifar10",
//       "train": [...], "validation": [...],   files (see below); omitted = defaults
//       "validation_fraction": 0.2,            > 0: validation split off the train data
//       "test_fraction": 0.0,                  > 0: a test split held out first (evaluate --split test)
//       "folds": 0, "fold": 0,                 folds >= 2: k-fold cross-validation, the test split is
//                                              fold `fold` of a stratified `folds`-fold partition
//                                              (seeded by "seed"; instead of test_fraction)
//       "augment": {"crop_pad": 4, "flip": true},
//       "label_smoothing": 0.0,
//       "standardize": true                    per-channel, statistics of the train split
//     },
//     "model": {"layers": [...], "loss": "cross_entropy", "seed": 0},   NeuralNetwork::from_config
//                                          cross_entropy reads logits (PyTorch's CrossEntropyLoss): the
//                                          last layer may end in softmax or not (model.hpp)
//     "optimizer": {"type": "sgd", ...},                                make_optimizer
//     "schedule": {"type": "cosine", "lr": 0.1, ...},                   make_scheduler (total_steps filled in)
//     "batch_size": 128, "eval_batch_size": 500, "epochs": 10, "seed": 0,
//     "device": "auto" | "cpu" | "cuda" | "cuda:N", "drop_last": "auto" | true | false,
//     "precision": "fp32" | "tf32" | "bf16", "cuda_graph": false | true,
//     "plugins": ["build/libmylayers.so"]    layer types from shared libraries (plugin.hpp), paths
//                                          relative to the config file; loaded when the config is read
//   }
// Numeric domains (checked when the config is read; a value outside its
// domain is an error naming the file, the field, the value and the domain):
//   batch_size, epochs: integers >= 1; eval_batch_size: integers >= 0
//   (0 = max(batch_size, 256)); seed: integers >= 0;
//   dataset: validation_fraction, test_fraction [0, 1) with their sum < 1;
//   folds 0 or 2..1000000, fold [0, folds); label_smoothing [0, 1);
//   augment.crop_pad: integers >= 0;
//   optimizer (include/janus/optimizer.hpp): momentum [0, 1),
//   weight_decay [0, inf), beta1 [0, 1), beta2 [0, 1), eps (0, inf),
//   weight_decay_applies_to "weights" (default) or "all";
//   layers' per-parameter options (include/janus/parameter_options.hpp):
//   trainable true/false, lr_mult and decay_mult [0, inf);
//   schedule (include/janus/scheduler.hpp): lr (0, inf), decay and gamma
//   (0, 1], stage_length (0, inf), step_size and total_steps integers >= 1,
//   warmup_steps integers in [0, total_steps], min_lr [0, lr], pct_start
//   [0, 1], div_factor and final_div_factor (0, inf).
// drop_last: true drops the last partial batch of every epoch, false keeps
//   it (PyTorch's DataLoader default), "auto" (the default) keeps it unless
//   the model has BatchNorm and the last batch would give a BatchNorm layer a
//   single value per channel, which cannot be normalised (PyTorch fails there
//   too); then that batch is dropped and the run says so. With false, such a
//   run is refused before the first step, naming the layer and the remedy.
//   The resolved choice is what the run's config.json records.
// Resuming (--resume) keeps the run's own config.json; a --config whose
//   model, optimizer, schedule, batch size or epochs differ is refused.
//   --epochs N re-plans a schedule whose length came from the epoch count
//   (cosine, onecycle without an explicit total_steps) to the new length and
//   says so; a schedule with an explicit total_steps shorter than the new
//   run is refused (the added epochs would train at its final rate).
// Dataset files: cifar10 entries are batch numbers (1..5 = data_batch_N.bin)
// or paths; defaults train [1,2,3,4], validation [5]. fashion_mnist entries
// are [images, labels] paths; defaults: the standard train split and, for
// validation, the standard test split. iris: one CSV path; default the
// data directory's iris.csv (else the bundled datasets/iris.csv) with
// validation_fraction 0.2. Relative paths are looked up in the dataset's
// directory first, then taken as given.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "janus/data.hpp"
#include "janus/json.hpp"
#include "janus/model.hpp"
#include "janus/precision.hpp"

namespace janus {

struct DatasetConfig {
  std::string name;
  Json train = Json::array();       // as in the config (empty: defaults)
  Json validation = Json::array();
  double validation_fraction = 0.0;
  double test_fraction = 0.0;
  int folds = 0;  // >= 2: the test split is fold `fold` of a k-fold partition
  int fold = 0;
  AugmentOptions augment;
  float label_smoothing = 0.0f;
  bool standardize = true;
};

struct RunConfig {
  std::string name;
  std::string description;
  std::string source;  // the file it was read from (for messages)
  DatasetConfig dataset;
  Json model, optimizer, schedule;  // the configs of from_config, make_optimizer, make_scheduler
  int64_t batch_size = 32;
  int64_t eval_batch_size = 0;  // 0: max(batch_size, 256)
  int epochs = 10;
  uint64_t seed = 0;
  std::string device = "auto";
  std::optional<bool> drop_last;  // unset: "auto" (see the file comment)
  Precision precision = Precision::FP32;  // "precision": fp32, tf32 or bf16 (precision.hpp)
  // "plugins": shared libraries with layer types (plugin.hpp), paths relative
  // to the config file; parse_run_config loads them (before it checks the
  // model) and keeps their canonical paths, which config.json records.
  std::vector<std::string> plugins;
  // "cuda_graph": on a CUDA device, record the steady-state training step as
  // a CUDA graph and replay it (janus/step_capture.hpp); steps it cannot take
  // run uncaptured, said once on stderr. Bit-identical to false on the
  // simulator; not yet run on a GPU, hence off by default.
  bool cuda_graph = false;

  // The resolved config, as the run's config.json records it.
  Json to_json() const;
};

// Parses and checks a run config (unknown keys, types, ranges; the model,
// optimizer and schedule are built once to check them). Errors start with
// "config <source>: ".
RunConfig parse_run_config(const Json& j, const std::string& source);
RunConfig load_run_config(const std::string& path);

// ---- data --------------------------------------------------------------------

struct RunData {
  Dataset train, validation, test;  // raw (not standardised); validation/test may be empty
  std::string data_dir;
  std::vector<std::string> train_files, validation_files;  // the files actually read
};
// Loads the splits a config names. data_dir and given_as as for
// resolve_data_dir (for iris a missing data directory falls back to the
// bundled CSV).
RunData load_run_data(const RunConfig& cfg, const std::string& data_dir,
                      const std::string& given_as = "the data_dir argument of load_run_data()");
// Files given on the command line (evaluate / predict) for a dataset kind:
// cifar10: batch files; fashion_mnist: images labels; iris: CSV files.
// ignore_labels: CIFAR label bytes are skipped (labels -1).
Dataset load_dataset_files(const std::string& dataset_name, const std::vector<std::string>& files,
                           bool ignore_labels);

// ---- training ----------------------------------------------------------------

struct TrainOptions {
  std::string data_dir;                      // "" -> resolve_data_dir("")
  std::string data_dir_given_as = "TrainOptions::data_dir";  // names data_dir in errors (the CLI: "--data-dir")
  std::string experiments_dir = "experiments";
  std::string device;                        // "" -> the config's
  std::string precision;                     // "" -> the config's; else fp32, tf32 or bf16
  bool cuda_graph = false;                   // true: CUDA graphs whatever the config says (--cuda-graph)
  int epochs = 0;                            // 0 -> the config's
  int64_t batch_size = 0;                    // 0 -> the config's
  std::string name;                          // "" -> the config's
  bool resume = false;
  bool overwrite = false;
  int64_t max_steps = 0;                     // > 0: stop after this many optimizer steps (this invocation)
  bool check_numerics = false;               // check every layer's output, gradients and parameters for
                                             // NaN/inf each step and name the first layer at fault
  bool progress = true;                      // progress bar on stderr
  std::ostream* out = nullptr;               // epoch summaries (nullptr: std::cout)
};

// One row of metrics.csv (columns epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds,partial).
struct EpochMetrics {
  int epoch = 0;  // 1-based
  double train_loss = 0, train_acc = 0, val_loss = 0, val_acc = 0, lr = 0, seconds = 0;
  // The run stopped inside this epoch (--max-steps, SIGINT/SIGTERM): the train_* columns cover
  // only its first batches, and validation ran on the parameters of that step. A resumed run
  // replaces the row with the whole epoch's. metrics.csv writes 1 (partial) or 0.
  bool partial = false;
};

struct TrainResult {
  std::string run_dir;
  std::vector<EpochMetrics> history;
  int best_epoch = 0;
  double best_val_acc = -1;
  double best_val_loss = 1e300;  // tie-break between epochs of equal accuracy
  int64_t steps = 0;
  int interrupted_by = 0;  // SIGINT / SIGTERM that stopped the run at a step boundary (0: none)
};

// Trains a run into <experiments_dir>/<name>/ (see the file comment). With
// opts.resume the run's own config.json is used (cfg only supplies the name
// when opts.name is empty) and training continues from last.safetensors.
// A non-finite loss throws janus::Error naming the step, after the metrics
// so far are written; last.safetensors stays the last good checkpoint. (The
// loss stays on the device and is read once per log interval and at each
// epoch's end, so the run stops at the first read after that step, before
// anything is written; --check-numerics checks at every step.)
// The run directory is claimed for the call's life (a second process on it
// is refused). A SIGINT or SIGTERM stops training at the next step boundary,
// writes last.safetensors (resumable mid-epoch, bit-identical to an
// uninterrupted run) and returns with interrupted_by set; a second signal
// ends the process at once (the checkpoint on disk stays the previous one).
TrainResult train_run(const RunConfig& cfg, const TrainOptions& opts);

// ---- evaluation and prediction ----------------------------------------------

struct TrainedRun {
  std::string run_dir, checkpoint;
  std::optional<NeuralNetwork> model;
  std::optional<Standardizer> standardizer;  // empty when the run did not standardise
  std::string dataset;                       // iris | fashion_mnist | cifar10
  std::vector<std::string> class_names;
  RunConfig config;
  Json run_state;                            // epoch, step, best_val_acc ...
  std::string note;  // what the user should be told (e.g. "best" fell back to last.safetensors); empty if nothing
};
// which: "best" (falls back to last.safetensors, saying so in `note`, when
// the run validated no epoch), "last", or a path to a .safetensors file. A
// path's checkpoint must carry a standardizer when the run standardises
// (else its inputs would reach the model unstandardised). Throws
// janus::Error naming the run directory or the file at fault.
TrainedRun load_trained_run(const std::string& run_dir, const std::string& which, Device& device);

// Standardises (when the run did) and maps labels onto the run's class order
// by class name where both carry names.
void prepare_for_run(const TrainedRun& run, Dataset& data);

struct EvalResult {
  int64_t n = 0;
  double loss = 0, accuracy = 0;
  std::vector<std::vector<int64_t>> confusion;  // [true][predicted]
  std::vector<std::string> class_names;
};
// tta: test-time augmentation for images: the outputs for each sample and its
// left-right mirror are averaged (the reported loss is the mean of the two
// passes' losses).
EvalResult evaluate(NeuralNetwork& model, const Dataset& data, int64_t batch_size, bool tta = false);
std::string format_eval_report(const EvalResult& r);
// Predicted class of every sample, in order.
std::vector<int> predict_classes(NeuralNetwork& model, const Dataset& data, int64_t batch_size,
                                 bool tta = false);
// "Id,Category\n0,3\n..." written atomically.
void write_predictions_csv(const std::string& path, const std::vector<int>& classes);

}  // namespace janus
