// Helpers shared by the training engine's sources (not public API).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "janus/nlohmann_json.hpp"

#include "janus/data.hpp"
#include "janus/trainer.hpp"

namespace janus::train_detail {

// entry relative to base when it exists there, else as given.
std::string resolve_path(const std::string& entry, const std::string& base);
// Maps d's labels onto `names` by class name (error for an unknown class).
void remap_labels(Dataset& d, const std::vector<std::string>& names);

nlohmann::json standardizer_to_json(const Standardizer& s);
Standardizer standardizer_from_json(const nlohmann::json& j);

// metrics.csv: epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds,partial
// (partial: 1 for a row that covers only part of its epoch, else 0; files
// without the column read as complete epochs)
std::string metrics_csv(const std::vector<EpochMetrics>& history);
std::vector<EpochMetrics> read_metrics_csv(const std::string& path);
// loss.png and accuracy.png from metrics.csv via gnuplot, complete epochs
// only (nothing is drawn before the first). Returns false (and warns on
// stderr once per process) when gnuplot is missing or fails.
bool draw_plots(const std::string& run_dir);

// Progress bar on stderr: redrawn in place on a terminal, a line every 30 s otherwise.
class Progress {
 public:
  explicit Progress(bool enabled);
  void begin_epoch(int epoch, int epochs, size_t batches, size_t first_batch);
  // Whether update() would draw now: the log interval (0.1 s on a terminal,
  // 30 s otherwise, and the epoch's last batch on a terminal). The running
  // loss and accuracy need reading only then.
  bool due(size_t batches_done) const;
  void update(size_t batches_done, int64_t images, double running_loss, double running_acc);
  void clear();  // erase the bar before printing to stdout

 private:
  using Clock = std::chrono::steady_clock;
  bool enabled_, tty_;
  int epoch_ = 0, epochs_ = 0;
  size_t batches_ = 0, first_ = 0;
  Clock::time_point start_, last_draw_;
  bool drawn_ = false;
};

std::string format_duration(double seconds);
// "57.22%" (width 6 before the sign), "  -   " when not finite.
std::string format_percent(double fraction);
// v with `digits` decimals ("%.4g" from 1e6 on), "-" when not finite.
std::string format_fixed(double v, int digits = 4);

}  // namespace janus::train_detail
