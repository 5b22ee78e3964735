// The run's record on disk at the end of each epoch: the best-epoch choice,
// best.safetensors, metrics.csv, last.safetensors and the plots.
//
// Crash safety: every file is written atomically (a complete temporary file,
// then rename(2)), and last.safetensors is written last: it is the commit
// point of the epoch. A crash before it resumes from the previous epoch and
// redoes this one identically (rewriting best.safetensors and metrics.csv the
// same way); a crash after it finds both already up to date. A partial epoch
// (--max-steps, or SIGINT/SIGTERM at a step boundary) is saved with its
// running sums, so that a resumed run reaches bit-identical parameters and
// metrics; it never becomes "best", so a resumed run picks the same best
// epoch as an uninterrupted one.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "janus/nlohmann_json.hpp"

#include "janus/model.hpp"
#include "janus/optimizer.hpp"
#include "janus/trainer.hpp"
#include "train/train_hooks.hpp"

namespace janus::train_detail {

class CheckpointHook final : public TrainHook {
 public:
  // Writes into run_dir; `result` holds the history and the best epoch so
  // far (resumed runs: as read back) and is updated here. `standardizer` is
  // null when the run does not standardise.
  CheckpointHook(std::string run_dir, NeuralNetwork& model, Optimizer& optimizer, const RunConfig& cfg,
                 std::vector<std::string> class_names, nlohmann::json standardizer, TrainResult& result);

  void on_epoch_end(const LoopState& s, EpochEnd& end) override;
  // Writes metrics.csv and the plots so far, and says which checkpoint holds.
  void on_failure(const LoopState& s, std::string& message) override;

  std::string last_path() const;
  std::string best_path() const;

 private:
  // The safetensors metadata of a checkpoint after `epochs_done` complete
  // epochs and `step` steps; `partial` holds a partial epoch's sums (or null).
  std::map<std::string, std::string> metadata(int epochs_done, int64_t step, int64_t steps_per_epoch,
                                              const nlohmann::json& partial) const;
  void write_metrics() const;

  std::string dir_;
  NeuralNetwork& model_;
  Optimizer& optimizer_;
  const RunConfig& cfg_;
  std::vector<std::string> class_names_;
  nlohmann::json standardizer_;
  TrainResult& result_;
  std::chrono::steady_clock::time_point last_plot_;
};

}  // namespace janus::train_detail
