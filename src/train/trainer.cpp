// The training loop: experiment directory, epochs, checkpoints, metrics,
// plots and exact resumption.
#include <cctype>
#include <chrono>
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
#include "core/test_hooks.hpp"
#include "train/internal.hpp"
#include "train/interrupt.hpp"
#include "train/numerics.hpp"
#include "train/run_claim.hpp"

namespace janus {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace train_detail;

namespace {

using Clock = std::chrono::steady_clock;

void check_run_name(const std::string& name) {
  JANUS_CHECK(!name.empty(), "no run name: the config has no 'name' and --name was not given");
  JANUS_CHECK(name != "." && name != "..", "run name '", name, "' is not a directory name");
  for (char c : name)
    JANUS_CHECK(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.', "run name '", name,
                "' may only contain letters, digits, '_', '-' and '.'");
}

std::string pct(double v) {
  if (!std::isfinite(v)) return "  -   ";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%6.2f%%", 100.0 * v);
  return buf;
}

std::string fixed(double v, int digits = 4) {
  if (!std::isfinite(v)) return "-";
  char buf[32];
  if (std::fabs(v) >= 1e6)
    std::snprintf(buf, sizeof buf, "%.4g", v);
  else
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// The first BatchNorm layer to which a training batch of `batch` samples
// would give a single value per channel (which cannot be normalised:
// the variance of one value is 0 and its normalised value undefined), as
// "layer 'bn' (batchnorm) would get input (1, 8)"; "" when none.
std::string batchnorm_single_value(NeuralNetwork& model, const Dataset& d, int64_t batch) {
  Shape s = d.batch_shape(batch);
  for (size_t i = 0; i < model.size(); ++i) {
    const Layer& layer = model.layer(i);
    if (layer.type() == "batchnorm" && s.rows() <= 1)
      return detail::concat("layer '", layer.name(), "' (batchnorm) would get input ", s.str(),
                            ", one value per channel");
    s = layer.output_shape(s);
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
  const std::string best_path = (run_dir / "best.safetensors").string();
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

  Device& device = get_device(cfg.device);
  check_precision_supported(device, cfg.precision);
  const PrecisionScope precision_scope(cfg.precision);

  // ---- data ------------------------------------------------------------------------
  RunData data = load_run_data(cfg, opts.data_dir);
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
      cfg.schedule.is_object() ? cfg.schedule.value("type", std::string("constant")) : std::string();
  if (schedule_type == "cosine" || schedule_type == "onecycle") {
    const int64_t total = steps_per_epoch * cfg.epochs;
    if (!cfg.schedule.contains("total_steps")) {
      cfg.schedule["total_steps"] = total;
    } else if (opts.resume && cfg.epochs != planned_epochs) {
      // --resume --epochs N: a length taken from the epoch count follows the
      // new count; an explicit one that ends early is refused, since the
      // added steps would all run at the schedule's final rate.
      const json& t = cfg.schedule.at("total_steps");
      const int64_t old_total = t.is_number_integer() ? t.get<int64_t>() : -1;
      if (old_total == steps_per_epoch * planned_epochs) {
        replanned_from = make_scheduler(cfg.schedule);
        cfg.schedule["total_steps"] = total;
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
  double partial_loss_sum = 0;
  int64_t partial_correct = 0, partial_seen = 0;
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
      partial_loss_sum = st["partial"].at("loss_sum").get<double>();
      partial_correct = st["partial"].at("correct").get<int64_t>();
      partial_seen = st["partial"].at("seen").get<int64_t>();
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

  auto checkpoint_meta = [&](int epochs_done, const json& partial) {
    json st = {{"epochs_done", epochs_done},         {"step", step},
               {"steps_per_epoch", steps_per_epoch}, {"best_val_acc", result.best_val_acc},
               {"best_val_loss", result.best_val_loss}, {"best_epoch", result.best_epoch},    {"seed", cfg.seed},
               {"run_name", cfg.name}};
    if (!partial.is_null()) st["partial"] = partial;
    std::map<std::string, std::string> meta = {{"janus_run", st.dump()},
                                               {"dataset", cfg.dataset.name},
                                               {"class_names", json(data.train.class_names).dump()},
                                               {"run_config", cfg.to_json().dump()}};
    if (!std_json.is_null()) meta["standardizer"] = std_json.dump();
    return meta;
  };
  auto write_metrics = [&] {
    write_file_atomically((run_dir / "metrics.csv").string(), metrics_csv(result.history));
  };

  out << "run " << dir << ": " << cfg.dataset.name << ", " << data.train.size() << " train / "
      << data.validation.size() << " validation samples, " << count_params(model) << " parameters, device "
      << device.name() << (cfg.precision != Precision::FP32 ? std::string(", precision ") + precision_name(cfg.precision) : "")
      << "\n";
  if (opts.resume)
    out << "resuming after epoch " << start_epoch << " (step " << step << ")\n";
  if (replanned_from) {
    char lrs[128];
    std::snprintf(lrs, sizeof lrs, "%.4g to %.4g", replanned_from->lr(step), scheduler->lr(step));
    out << replanned << "; the learning rate at step " << step << " goes from " << lrs
        << " (a warm restart when the run had finished)\n";
  }
  out.flush();

  // ---- the loop -------------------------------------------------------------------------
  Progress progress(opts.progress);
  int64_t steps_this_run = 0;
  bool stopped_early = false;
  int interrupted = 0;  // the signal that stopped the run
  auto last_plot = Clock::now() - std::chrono::hours(1);
  Batch batch;
  for (int epoch = start_epoch; epoch < cfg.epochs && !stopped_early && !interrupted; ++epoch) {
    const auto t0 = Clock::now();
    loader.start_epoch(epoch);
    // A resumed partial epoch skips the batches already trained on (same order: seed, epoch).
    const int64_t skip = std::max<int64_t>(0, step - static_cast<int64_t>(epoch) * steps_per_epoch);
    for (int64_t b = 0; b < skip && loader.next(batch); ++b) {
    }
    progress.begin_epoch(epoch + 1, cfg.epochs, static_cast<size_t>(steps_per_epoch), static_cast<size_t>(skip));
    double loss_sum = 0, lr = scheduler->lr(step);
    int64_t seen = 0, correct = 0, images = 0;
    if (skip > 0) {
      loss_sum = partial_loss_sum;
      correct = partial_correct;
      seen = partial_seen;
    }
    int64_t b = skip;
    while (loader.next(batch)) {
      Tensor x = Tensor::from_host(batch.x, batch.x_shape, device);
      Tensor y = Tensor::from_host(batch.y_onehot, Shape{batch.size, K}, device);
      model.set_step(static_cast<uint64_t>(step));
      // A NaN or infinity stops the run, naming the step (and with
      // --check-numerics the first layer where it appeared); last.safetensors
      // stays the last good checkpoint.
      auto stop = [&](const std::string& what) {
        progress.clear();
        write_metrics();
        draw_plots(dir);
        const std::string kept = fs::exists(last_path, ec)
                                     ? "the last good checkpoint is " + last_path
                                     : std::string("no checkpoint was written yet");
        throw Error(detail::concat("training stopped: ", what, " at step ", step, " (epoch ", epoch + 1, ", batch ",
                                   b + 1, " of ", steps_per_epoch, "); lower the learning rate? ", kept));
      };
      std::string fault;
      Tensor yhat = opts.check_numerics ? forward_checked(model, x, /*training=*/true, &fault)
                                        : model.forward(x, Mode::Train);
      if (!fault.empty()) stop("a NaN or infinity appeared first in " + fault + ",");
      const int64_t c = device.count_correct(yhat, y);
      const double loss = model.backward(y, yhat);
      if (!std::isfinite(loss)) stop(detail::concat("the loss became ", loss));
      if (opts.check_numerics && !(fault = nonfinite_gradient(model)).empty())
        stop("a NaN or infinity appeared first in " + fault + ",");
      lr = scheduler->lr(step);
      optimizer->step(model.named_parameters(), lr);
      if (opts.check_numerics && !(fault = nonfinite_parameter(model)).empty())
        stop("a NaN or infinity appeared first in " + fault + ",");
      ++step;
      test_hooks::kill_point("step");  // test-only (core/test_hooks.hpp)
      ++b;
      ++steps_this_run;
      loss_sum += loss * batch.size;
      correct += c;
      seen += batch.size;
      images += batch.size;
      progress.update(static_cast<size_t>(b), images, loss_sum / static_cast<double>(seen),
                      static_cast<double>(correct) / static_cast<double>(seen));
      if (opts.max_steps > 0 && steps_this_run >= opts.max_steps) {
        stopped_early = b < steps_per_epoch;
        break;
      }
      if ((interrupted = InterruptGuard::requested()) != 0) {  // a step boundary: stop here, saved below
        stopped_early = b < steps_per_epoch;
        break;
      }
    }
    progress.clear();

    EpochMetrics m;
    m.epoch = epoch + 1;
    m.train_loss = seen ? loss_sum / static_cast<double>(seen) : std::nan("");
    m.train_acc = seen ? static_cast<double>(correct) / static_cast<double>(seen) : std::nan("");
    m.val_loss = m.val_acc = std::nan("");
    // A partial epoch stopped by a signal skips validation: its metrics row
    // is replaced when the run resumes, and the user asked to stop now.
    if (data.validation.size() > 0 && !(interrupted && stopped_early)) {
      EvalResult v = evaluate(model, data.validation, eval_bs);
      m.val_loss = v.loss;
      m.val_acc = v.accuracy;
    }
    m.lr = lr;
    m.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    JANUS_CHECK(std::isfinite(m.train_loss) || seen == 0, "training stopped: non-finite mean loss in epoch ", m.epoch);

    const bool has_val = std::isfinite(m.val_acc);
    const double score = has_val ? m.val_acc : m.train_acc;
    const double score_loss = has_val ? m.val_loss : m.train_loss;
    // Best = highest accuracy, ties broken by lower loss (small validation
    // sets tie often, and the earliest tie is rarely the best model).
    // A partial epoch (--max-steps) never becomes "best": a resumed run then
    // picks the same best epoch as an uninterrupted one.
    const bool best = !stopped_early && (score > result.best_val_acc ||
                                         (score == result.best_val_acc && score_loss < result.best_val_loss));
    if (best) {
      result.best_val_acc = score;
      result.best_val_loss = score_loss;
      result.best_epoch = m.epoch;
    }
    result.history.push_back(m);
    const int epochs_done = stopped_early ? epoch : epoch + 1;
    const json partial =
        stopped_early ? json{{"loss_sum", loss_sum}, {"correct", correct}, {"seen", seen}} : json(nullptr);
    // last.safetensors is written last: it is the commit point of the epoch.
    // A crash before it resumes from the previous epoch and redoes this one
    // identically (rewriting best.safetensors and metrics.csv the same way);
    // a crash after it finds both already up to date.
    if (best) save_checkpoint(best_path, model, optimizer.get(), checkpoint_meta(epochs_done, partial));
    write_metrics();
    save_checkpoint(last_path, model, optimizer.get(), checkpoint_meta(epochs_done, partial));
    const bool final_epoch = stopped_early || epoch + 1 == cfg.epochs ||
                             (opts.max_steps > 0 && steps_this_run >= opts.max_steps);
    if (final_epoch || Clock::now() - last_plot > std::chrono::seconds(20)) {
      draw_plots(dir);
      last_plot = Clock::now();
    }

    char lrbuf[32];
    std::snprintf(lrbuf, sizeof lrbuf, "%.3g", m.lr);
    out << "epoch " << m.epoch << "/" << cfg.epochs << (stopped_early ? " (partial)" : "") << "  train loss "
        << fixed(m.train_loss) << " acc " << pct(m.train_acc) << "  val loss " << fixed(m.val_loss) << " acc "
        << pct(m.val_acc) << "  lr " << lrbuf << "  " << fixed(m.seconds, 1) << "s" << (best ? "  *best" : "")
        << "\n";
    out.flush();
    if (opts.max_steps > 0 && steps_this_run >= opts.max_steps) {
      if (!stopped_early && epoch + 1 < cfg.epochs) stopped_early = true;
      if (stopped_early) out << "stopped after --max-steps " << opts.max_steps << " steps (step " << step << ")\n";
    }
  }
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
    out << "best " << (data.validation.size() ? "validation" : "train") << " accuracy " << pct(result.best_val_acc)
        << " at epoch " << result.best_epoch << "; run saved in " << dir << "\n";
  else
    out << "no complete epoch yet (best.safetensors not written); run saved in " << dir << "\n";
  return result;
}

}  // namespace janus
