// A training run: the experiment directory and its claim, the config, the
// data, the model, the optimizer and the schedule, fresh or resumed; then the
// training loop (training_loop.hpp) with a TrainStep (train_step.hpp) and
// the hooks that validate, log and checkpoint (hooks/).
#include <cctype>
#include <limits>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "janus/checkpoint.hpp"
#include "janus/error.hpp"
#include "janus/optimizer.hpp"
#include "janus/scheduler.hpp"
#include "janus/trainer.hpp"
#include "train/internal.hpp"
#include "train/interrupt.hpp"
#include "train/run_claim.hpp"
#include "train/running_metrics.hpp"
#include "train/train_step.hpp"
#include "train/training_loop.hpp"
#include "train/hooks/checkpoint_hook.hpp"
#include "train/hooks/epoch_log_hook.hpp"
#include "train/hooks/progress_hook.hpp"
#include "train/hooks/validation_hook.hpp"

namespace janus {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace train_detail;

namespace {

void check_run_name(const std::string& name) {
  JANUS_CHECK(!name.empty(), "no run name: the config has no 'name' and --name was not given");
  JANUS_CHECK(name != "." && name != "..", "run name '", name, "' is not a directory name");
  for (char c : name)
    JANUS_CHECK(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.', "run name '", name,
                "' may only contain letters, digits, '_', '-' and '.'");
}

// The first BatchNorm layer to which a training batch of `batch` samples
// would give a single value per channel (which cannot be normalised:
// the variance of one value is 0 and its normalised value undefined), as
// "layer 'bn' (batchnorm) would get input (1, 8)"; "" when none.
std::string batchnorm_single_value(NeuralNetwork& model, const Dataset& d, int64_t batch) {
  // The model's own graph walk: a node with several inputs (add, concat) gets them all.
  const std::vector<std::vector<Shape>> inputs = model.node_input_shapes(d.batch_shape(batch));
  for (size_t i = 0; i < model.size(); ++i) {
    const Layer& layer = model.layer(i);
    const Shape& s = inputs[i].at(0);
    if (layer.type() == "batchnorm" && s.rows() <= 1)
      return detail::concat("layer '", layer.name(), "' (batchnorm) would get input ", s.str(),
                            ", one value per channel");
  }
  return "";
}

// --resume keeps the run's own config.json. A --config given with it whose
// settings differ is not used; say so rather than ignore it silently.
void note_ignored_config(const RunConfig& given, const RunConfig& run, const std::string& dir, bool epochs_flag,
                         std::ostream& out) {
  if (given.source.empty()) return;
  json gs = given.schedule, rs = run.schedule;
  if (gs.is_object() && rs.is_object() && !gs.contains("total_steps")) rs.erase("total_steps");
  std::vector<std::string> differ;
  if (given.model != run.model) differ.push_back("model");
  if (given.optimizer != run.optimizer) differ.push_back("optimizer");
  if (gs != rs) differ.push_back("schedule");
  if (given.batch_size != run.batch_size) differ.push_back("batch_size");
  if (!epochs_flag && given.epochs != run.epochs) differ.push_back("epochs");
  if (differ.empty()) return;
  std::string list;
  for (const auto& d : differ) list += (list.empty() ? "'" : ", '") + d + "'";
  out << "note: --resume continues " << dir << " as its config.json says; " << list << " in " << given.source
      << " differ" << (differ.size() == 1 ? "s" : "") << " and " << (differ.size() == 1 ? "is" : "are")
      << " not used" << (!epochs_flag && given.epochs != run.epochs ? " (pass --epochs N to train longer)" : "")
      << "\n";
}

int64_t count_params(NeuralNetwork& model) {
  int64_t n = 0;
  for (auto& p : model.named_parameters()) n += p.parameter->value.numel();
  return n;
}

}  // namespace

TrainResult train_run(const RunConfig& cfg_in, const TrainOptions& opts) {
  std::ostream& out = opts.out ? *opts.out : std::cout;
  const std::string name = !opts.name.empty() ? opts.name : cfg_in.name;
  check_run_name(name);
  JANUS_CHECK(!(opts.resume && opts.overwrite), "--resume and --overwrite exclude each other");
  const fs::path run_dir = fs::path(opts.experiments_dir.empty() ? "experiments" : opts.experiments_dir) / name;
  const std::string dir = run_dir.string();
  const std::string last_path = (run_dir / "last.safetensors").string();
  std::error_code ec;

  // SIGINT / SIGTERM from here on stop the run at a step boundary with a
  // resumable checkpoint (interrupt.hpp).
  InterruptGuard interrupt_guard;

  // ---- the run directory and the config ---------------------------------------
  RunConfig cfg = cfg_in;
  bool remove_existing = false;
  // The run directory is claimed before anything else (run_claim.hpp): a new
  // run creates it atomically, and every run holds its lock until it ends,
  // so a second process on the same directory is refused here.
  RunClaim claim;
  if (opts.resume) {
    if (fs::is_directory(run_dir, ec)) claim.lock_existing(dir, "--resume");
    claim.commit();
    JANUS_CHECK(fs::is_regular_file(last_path, ec), "--resume: ", dir,
                " has no last.safetensors to continue from (was the run started?)");
    cfg = load_run_config((run_dir / "config.json").string());
    note_ignored_config(cfg_in, cfg, dir, opts.epochs > 0, out);
    if (opts.batch_size > 0)
      JANUS_CHECK(opts.batch_size == cfg.batch_size, "--resume: the run uses batch size ", cfg.batch_size,
                  "; it cannot change to ", opts.batch_size, " when resuming");
  } else if (fs::exists(run_dir, ec)) {
    JANUS_CHECK(opts.overwrite, "experiment directory ", dir,
                " already exists; pass --overwrite to replace it or --resume to continue it");
    auto only_lock_file = [&] {
      for (const auto& e : fs::directory_iterator(run_dir, ec))
        if (e.path().filename() != RunClaim::lock_file_name()) return false;
      return true;
    };
    JANUS_CHECK(fs::is_directory(run_dir, ec) && (only_lock_file() || fs::exists(run_dir / "config.json", ec)),
                "--overwrite: ", dir, " does not look like a Janus run directory (no config.json); not removing it");
    claim.lock_existing(dir, "--overwrite");
    remove_existing = true;  // only once everything else has been checked
  } else {
    claim.create(dir);
  }
  const int planned_epochs = cfg.epochs;  // before --epochs
  cfg.name = name;
  if (opts.epochs > 0) cfg.epochs = opts.epochs;
  if (opts.batch_size > 0) cfg.batch_size = opts.batch_size;
  if (!opts.device.empty()) cfg.device = opts.device;
  if (!opts.precision.empty()) cfg.precision = parse_precision(opts.precision, "--precision");
  if (opts.cuda_graph) cfg.cuda_graph = true;

  Device& device = get_device(cfg.device);
  check_precision_supported(device, cfg.precision);
  const PrecisionScope precision_scope(cfg.precision);

  // ---- data ------------------------------------------------------------------------
  RunData data = load_run_data(cfg, opts.data_dir, opts.data_dir_given_as);
  const int K = data.train.num_classes;
  Standardizer standardizer;
  if (cfg.dataset.standardize) {
    standardizer.fit(data.train);
    standardizer.apply(data.train);
    if (data.validation.size()) standardizer.apply(data.validation);
    if (data.test.size()) standardizer.apply(data.test);
  }
  // Record the files actually read, so that the run can be resumed or re-evaluated as it was.
  auto absolute = [](const std::vector<std::string>& files) {
    std::vector<std::string> abs;
    std::error_code e;
    for (const auto& f : files) abs.push_back(fs::absolute(f, e).lexically_normal().string());
    return abs;
  };
  cfg.dataset.train = absolute(data.train_files);
  if (!data.validation_files.empty()) cfg.dataset.validation = absolute(data.validation_files);

  // ---- model, optimizer, loader, schedule ------------------------------------------
  NeuralNetwork model = NeuralNetwork::from_config(cfg.model);
  {
    const Shape s = model.output_shape(data.train.batch_shape(1));
    JANUS_CHECK(s == (Shape{1, K}), "config ", cfg.source, ": the model's output per sample is ", s.str(),
                " but dataset ", cfg.dataset.name, " has ", K, " classes (expected (1, ", K, "))");
  }
  model.build(data.train.batch_shape(cfg.batch_size), device);
  auto optimizer = make_optimizer(cfg.optimizer);

  // Batch geometry against the layers, before the first step: BatchNorm in
  // training cannot normalise a single value per channel.
  {
    const int64_t n = static_cast<int64_t>(data.train.size());
    std::string fault = batchnorm_single_value(model, data.train, std::min<int64_t>(cfg.batch_size, n));
    JANUS_CHECK(fault.empty(), "config ", cfg.source, ": batch_size ", cfg.batch_size, ": ", fault,
                ", which BatchNorm cannot normalise in training; use a larger batch size");
    const int64_t last = n % cfg.batch_size;
    fault = last > 0 ? batchnorm_single_value(model, data.train, last) : std::string();
    if (!fault.empty()) {
      JANUS_CHECK(!cfg.drop_last.has_value() || *cfg.drop_last, "config ", cfg.source, ": the last training batch of ",
                  "each epoch has ", last, " sample", last == 1 ? "" : "s", " (", n, " = ", n / cfg.batch_size, " x ",
                  cfg.batch_size, " + ", last, ") and ", fault,
                  ", which BatchNorm cannot normalise in training; set \"drop_last\": true (or \"auto\") to drop "
                  "that batch, or choose another batch size");
      if (!cfg.drop_last.has_value())
        out << "drop_last auto: the last training batch of each epoch (" << last << " of " << n
            << " samples) is dropped: " << fault << ", which BatchNorm cannot normalise\n";
      cfg.drop_last = true;
    }
    if (!cfg.drop_last.has_value()) cfg.drop_last = false;  // "auto" resolved: keep every sample (PyTorch's default)
  }

  LoaderOptions lo;
  lo.batch_size = static_cast<size_t>(cfg.batch_size);
  lo.shuffle = true;
  lo.seed = cfg.seed;
  lo.augment = cfg.dataset.augment;
  lo.drop_last = *cfg.drop_last;
  lo.label_smoothing = cfg.dataset.label_smoothing;
  DataLoader loader(data.train, lo);
  const int64_t steps_per_epoch = static_cast<int64_t>(loader.num_batches());
  JANUS_CHECK(steps_per_epoch > 0, "no training batches (", data.train.size(), " samples, batch size ",
              cfg.batch_size, (*cfg.drop_last ? ", drop_last" : ""), ")");

  // Schedules whose shape depends on the run's length (cosine, onecycle)
  // span the whole run unless the config fixes total_steps.
  std::string replanned;
  std::unique_ptr<Scheduler> replanned_from;  // the schedule before re-planning
  const std::string schedule_type =
      cfg.schedule.is_object() ? nlohmann_json(cfg.schedule).value("type", std::string("constant")) : std::string();
  if (schedule_type == "cosine" || schedule_type == "onecycle") {
    const int64_t total = steps_per_epoch * cfg.epochs;
    if (!cfg.schedule.contains("total_steps")) {
      cfg.schedule.set("total_steps", total);
    } else if (opts.resume && cfg.epochs != planned_epochs) {
      // --resume --epochs N: a length taken from the epoch count follows the
      // new count; an explicit one that ends early is refused, since the
      // added steps would all run at the schedule's final rate.
      const json& t = nlohmann_json(cfg.schedule).at("total_steps");
      const int64_t old_total = t.is_number_integer() ? t.get<int64_t>() : -1;
      if (old_total == steps_per_epoch * planned_epochs) {
        replanned_from = make_scheduler(cfg.schedule);
        cfg.schedule.set("total_steps", total);
        replanned = detail::concat("the ", schedule_type, " schedule was planned for ", planned_epochs,
                                   " epochs (total_steps ", old_total, "); re-planned for ", cfg.epochs,
                                   " epochs (total_steps ", total, ")");
      } else {
        JANUS_CHECK(old_total >= total, "--resume --epochs ", cfg.epochs, ": the run's ", schedule_type,
                    " schedule has total_steps ", old_total, " (set in its config, ", dir,
                    "/config.json), which ends before the ", total, " steps of ", cfg.epochs,
                    " epochs: the added epochs would all train at the schedule's final learning rate. Raise "
                    "'total_steps' in that file to at least ", total, " (or remove it: it then spans the run), or "
                    "start a new run");
      }
    }
  }
  auto scheduler = make_scheduler(cfg.schedule);
  const int64_t eval_bs = cfg.eval_batch_size > 0 ? cfg.eval_batch_size : std::max<int64_t>(cfg.batch_size, 256);

  // ---- state: fresh or resumed --------------------------------------------------------
  TrainResult result;
  result.run_dir = dir;
  int start_epoch = 0;
  int64_t step = 0;
  // Sums of a partial epoch (after --max-steps), so that its train metrics
  // come out the same when it is resumed.
  EpochTotals partial;
  if (opts.resume) {
    load_checkpoint_into(last_path, model, optimizer.get());
    SafetensorsFile f = read_safetensors(last_path);
    json st;
    try {
      st = json::parse(f.metadata.at("janus_run"));
    } catch (const std::exception&) {
      throw Error("--resume: " + last_path + " has no valid training state (metadata 'janus_run')");
    }
    start_epoch = st.at("epochs_done").get<int>();
    step = st.at("step").get<int64_t>();
    JANUS_CHECK(st.at("steps_per_epoch").get<int64_t>() == steps_per_epoch, "--resume: the checkpoint had ",
                st.at("steps_per_epoch").get<int64_t>(), " steps per epoch but the data now gives ", steps_per_epoch,
                " (different data or batch size?)");
    if (st.contains("partial")) {
      partial.loss_sum = st["partial"].at("loss_sum").get<double>();
      partial.correct = st["partial"].at("correct").get<int64_t>();
      partial.seen = st["partial"].at("seen").get<int64_t>();
    }
    result.best_val_acc = st.value("best_val_acc", -1.0);
    result.best_val_loss = st.value("best_val_loss", std::numeric_limits<double>::infinity());
    result.best_epoch = st.value("best_epoch", 0);
    for (const auto& m : read_metrics_csv((run_dir / "metrics.csv").string()))
      if (m.epoch <= start_epoch) result.history.push_back(m);
    if (start_epoch >= cfg.epochs) {
      out << "run " << dir << " has already trained " << start_epoch << " epochs (of " << cfg.epochs
          << "); nothing to do (pass --epochs N to train longer)\n";
      result.steps = step;
      return result;
    }
  } else {
    if (remove_existing) {
      fs::remove_all(run_dir, ec);
      JANUS_CHECK(!ec, "--overwrite: cannot remove ", dir, ": ", ec.message());
    }
    fs::create_directories(run_dir, ec);
    JANUS_CHECK(!ec && fs::is_directory(run_dir), "cannot create the experiment directory ", dir, ": ", ec.message());
  }

  if (const int sig = InterruptGuard::requested()) {  // before anything was trained or written
    out << "interrupted by " << InterruptGuard::name(sig) << " before training started; nothing was saved\n";
    result.interrupted_by = sig;
    return result;
  }
  const json std_json = cfg.dataset.standardize ? standardizer_to_json(standardizer) : json(nullptr);
  write_file_atomically((run_dir / "config.json").string(), cfg.to_json().dump(2) + "\n");
  claim.commit();
  {
    json hp = {{"name", cfg.name},
               {"janus_version", JANUS_VERSION},
               {"device", device.name()},
               {"dataset", cfg.dataset.name},
               {"data_dir", data.data_dir},
               {"train_files", data.train_files},
               {"validation_files", data.validation_files},
               {"train_samples", data.train.size()},
               {"validation_samples", data.validation.size()},
               {"test_samples", data.test.size()},
               {"num_classes", K},
               {"class_names", data.train.class_names},
               {"input_shape", data.train.sample_shape.dims()},
               {"parameters", count_params(model)},
               {"batch_size", cfg.batch_size},
               {"epochs", cfg.epochs},
               {"steps_per_epoch", steps_per_epoch},
               {"seed", cfg.seed},
               {"augment", {{"crop_pad", cfg.dataset.augment.crop_pad}, {"flip", cfg.dataset.augment.hflip}}},
               {"label_smoothing", cfg.dataset.label_smoothing},
               {"standardizer", std_json},
               {"model", model.config()},
               {"optimizer", optimizer->config()},
               {"schedule", scheduler->config()}};
    write_file_atomically((run_dir / "hyperparameters.json").string(), hp.dump(2) + "\n");
  }

  out << "run " << dir << ": " << cfg.dataset.name << ", " << data.train.size() << " train / "
      << data.validation.size() << " validation samples, " << count_params(model) << " parameters, device "
      << device.name() << (cfg.precision != Precision::FP32 ? std::string(", precision ") + precision_name(cfg.precision) : "")
      << (model.activation_dtype() != DType::F32 ? std::string(", activations ") + dtype_name(model.activation_dtype()) : "")
      << (cfg.cuda_graph ? ", CUDA graphs" : "") << "\n";
  if (opts.resume)
    out << "resuming after epoch " << start_epoch << " (step " << step << ")\n";
  if (replanned_from) {
    char lrs[128];
    std::snprintf(lrs, sizeof lrs, "%.4g to %.4g", replanned_from->lr(step), scheduler->lr(step));
    out << replanned << "; the learning rate at step " << step << " goes from " << lrs
        << " (a warm restart when the run had finished)\n";
  }
  out.flush();

  // ---- the loop: a step, and hooks for everything around it --------------------------
  TrainStep train_step(model, *optimizer, *scheduler, device, K, opts.check_numerics);
  if (cfg.cuda_graph) train_step.enable_cuda_graph(std::cerr);
  RunningMetrics metrics(device);
  ProgressHook progress(opts.progress);
  ValidationHook validation(model, data.validation, eval_bs);
  CheckpointHook checkpoints(dir, model, *optimizer, cfg, data.train.class_names, std_json, result);
  EpochLogHook epoch_log(out, opts.max_steps);
  // Order matters at an epoch's end: validation fills the metrics that the
  // checkpoint hook judges "best" by, and the summary line prints both.
  const std::vector<TrainHook*> hooks = {&progress, &validation, &checkpoints, &epoch_log};
  LoopPlan plan;
  plan.start_epoch = start_epoch;
  plan.epochs = cfg.epochs;
  plan.start_step = step;
  plan.steps_per_epoch = steps_per_epoch;
  plan.max_steps = opts.max_steps;
  plan.resumed_partial = partial;
  const LoopOutcome outcome = run_training_loop(train_step, loader, metrics, plan, hooks);
  step = outcome.steps;
  const int interrupted = outcome.interrupted_by;

  result.steps = step;
  if (interrupted) {
    std::string resume = "janus train --resume --name " + cfg.name;
    if (!opts.experiments_dir.empty() && opts.experiments_dir != "experiments")
      resume += " --experiments-dir " + opts.experiments_dir;
    if (!opts.data_dir.empty()) resume += " --data-dir " + opts.data_dir;
    out << "interrupted by " << InterruptGuard::name(interrupted) << ": stopped after step " << step
        << "; the checkpoint " << last_path << " holds it; continue with: " << resume << "\n";
    result.interrupted_by = interrupted;
    return result;
  }
  if (result.best_epoch > 0)
    out << "best " << (data.validation.size() ? "validation" : "train") << " accuracy " << format_percent(result.best_val_acc)
        << " at epoch " << result.best_epoch << "; run saved in " << dir << "\n";
  else
    out << "no complete epoch yet (best.safetensors not written); run saved in " << dir << "\n";
  return result;
}

}  // namespace janus
