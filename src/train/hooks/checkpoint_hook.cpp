// The run's record on disk at the end of each epoch (checkpoint_hook.hpp).
#include "train/hooks/checkpoint_hook.hpp"

#include <cmath>
#include <filesystem>

#include "janus/checkpoint.hpp"
#include "train/internal.hpp"

namespace janus::train_detail {

namespace fs = std::filesystem;
using nlohmann::json;

CheckpointHook::CheckpointHook(std::string run_dir, NeuralNetwork& model, Optimizer& optimizer, const RunConfig& cfg,
                               std::vector<std::string> class_names, json standardizer, TrainResult& result)
    : dir_(std::move(run_dir)),
      model_(model),
      optimizer_(optimizer),
      cfg_(cfg),
      class_names_(std::move(class_names)),
      standardizer_(std::move(standardizer)),
      result_(result),
      last_plot_(std::chrono::steady_clock::now() - std::chrono::hours(1)) {}

std::string CheckpointHook::last_path() const { return (fs::path(dir_) / "last.safetensors").string(); }
std::string CheckpointHook::best_path() const { return (fs::path(dir_) / "best.safetensors").string(); }

std::map<std::string, std::string> CheckpointHook::metadata(int epochs_done, int64_t step, int64_t steps_per_epoch,
                                                            const json& partial) const {
  json st = {{"epochs_done", epochs_done},         {"step", step},
             {"steps_per_epoch", steps_per_epoch}, {"best_val_acc", result_.best_val_acc},
             {"best_val_loss", result_.best_val_loss}, {"best_epoch", result_.best_epoch},    {"seed", cfg_.seed},
             {"run_name", cfg_.name}};
  if (!partial.is_null()) st["partial"] = partial;
  std::map<std::string, std::string> meta = {{"janus_run", st.dump()},
                                             {"dataset", cfg_.dataset.name},
                                             {"class_names", json(class_names_).dump()},
                                             {"run_config", cfg_.to_json().dump()}};
  if (!standardizer_.is_null()) meta["standardizer"] = standardizer_.dump();
  return meta;
}

void CheckpointHook::write_metrics() const {
  write_file_atomically((fs::path(dir_) / "metrics.csv").string(), metrics_csv(result_.history));
}

void CheckpointHook::on_epoch_end(const LoopState& s, EpochEnd& end) {
  const EpochMetrics& m = end.metrics;
  const bool has_val = std::isfinite(m.val_acc);
  const double score = has_val ? m.val_acc : m.train_acc;
  const double score_loss = has_val ? m.val_loss : m.train_loss;
  // Best = highest accuracy, ties broken by lower loss (small validation
  // sets tie often, and the earliest tie is rarely the best model).
  end.best = !end.partial && (score > result_.best_val_acc ||
                              (score == result_.best_val_acc && score_loss < result_.best_val_loss));
  if (end.best) {
    result_.best_val_acc = score;
    result_.best_val_loss = score_loss;
    result_.best_epoch = m.epoch;
  }
  result_.history.push_back(m);
  const int epochs_done = end.partial ? s.epoch : s.epoch + 1;
  const json partial =
      end.partial ? json{{"loss_sum", end.totals.loss_sum}, {"correct", end.totals.correct}, {"seen", end.totals.seen}}
                  : json(nullptr);
  // last.safetensors last: the commit point (see the header).
  if (end.best)
    save_checkpoint(best_path(), model_, &optimizer_, metadata(epochs_done, s.step, s.steps_per_epoch, partial));
  write_metrics();
  save_checkpoint(last_path(), model_, &optimizer_, metadata(epochs_done, s.step, s.steps_per_epoch, partial));
  const bool final_epoch = end.partial || s.epoch + 1 == s.epochs || end.max_steps_reached;
  const auto now = std::chrono::steady_clock::now();
  if (final_epoch || now - last_plot_ > std::chrono::seconds(20)) {
    draw_plots(dir_);
    last_plot_ = std::chrono::steady_clock::now();
  }
}

void CheckpointHook::on_failure(const LoopState&, std::string& message) {
  write_metrics();
  draw_plots(dir_);
  std::error_code ec;
  message += fs::exists(last_path(), ec) ? "the last good checkpoint is " + last_path()
                                         : std::string("no checkpoint was written yet");
}

}  // namespace janus::train_detail
