// Experiment-directory files: metrics.csv, gnuplot plots, the progress bar.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "janus/checkpoint.hpp"
#include "janus/error.hpp"
#include "train/internal.hpp"

extern char** environ;

namespace janus::train_detail {

namespace fs = std::filesystem;
using nlohmann::json;

json standardizer_to_json(const Standardizer& s) { return {{"mean", s.mean()}, {"std", s.stddev()}}; }

Standardizer standardizer_from_json(const json& j) {
  JANUS_CHECK(j.is_object() && j.contains("mean") && j.contains("std"), "bad standardizer metadata: ", j.dump());
  // float32 values, each finite and within float32's range (a larger one would become infinity)
  auto floats = [&](const char* key) {
    const json& a = j.at(key);
    JANUS_CHECK(a.is_array(), "standardizer metadata: '", key, "' is not a list of numbers");
    std::vector<float> out;
    for (const auto& v : a) {
      JANUS_CHECK(v.is_number() && std::isfinite(v.get<double>()) && std::fabs(v.get<double>()) <= FLT_MAX,
                  "standardizer metadata: '", key, "' entry ", out.size(), " is ", v.dump(),
                  ", not a number within float32's range");
      out.push_back(v.get<float>());
    }
    return out;
  };
  return Standardizer::from_state(floats("mean"), floats("std"));
}

namespace {

std::string num(double v) {
  if (!std::isfinite(v)) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

double parse_num(const std::string& s) {
  if (s.empty()) return std::nan("");
  try {
    return std::stod(s);
  } catch (...) {
    return std::nan("");
  }
}

}  // namespace

std::string metrics_csv(const std::vector<EpochMetrics>& history) {
  // "partial" last, so that the older columns keep their positions for existing readers.
  std::string s = "epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds,partial\n";
  for (const auto& m : history)
    s += std::to_string(m.epoch) + "," + num(m.train_loss) + "," + num(m.train_acc) + "," + num(m.val_loss) + "," +
         num(m.val_acc) + "," + num(m.lr) + "," + num(m.seconds) + "," + (m.partial ? "1" : "0") + "\n";
  return s;
}

std::vector<EpochMetrics> read_metrics_csv(const std::string& path) {
  std::vector<EpochMetrics> out;
  std::ifstream in(path);
  if (!in) return out;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) f.push_back(cell);
    while (f.size() < 8) f.emplace_back();  // files from before the "partial" column: read as complete
    EpochMetrics m;
    m.epoch = static_cast<int>(parse_num(f[0]));
    m.train_loss = parse_num(f[1]);
    m.train_acc = parse_num(f[2]);
    m.val_loss = parse_num(f[3]);
    m.val_acc = parse_num(f[4]);
    m.lr = parse_num(f[5]);
    m.seconds = parse_num(f[6]);
    m.partial = f[7] == "1";
    out.push_back(m);
  }
  return out;
}

bool draw_plots(const std::string& run_dir) {
  static bool warned = false;
  auto warn = [&](const std::string& why) {
    if (!warned) std::cerr << "janus: warning: plots not drawn: " << why << "\n";
    warned = true;
    return false;
  };
  std::error_code ec;
  const std::string dir = fs::absolute(run_dir, ec).string();
  if (dir.find('\'') != std::string::npos) return warn("the run directory name contains a quote");
  const std::string csv = dir + "/metrics.csv";
  // The plots show complete epochs only; a run stopped inside its first has none to draw yet
  // (and gnuplot refuses a plot without a point).
  const std::vector<EpochMetrics> rows = read_metrics_csv(csv);
  if (std::all_of(rows.begin(), rows.end(), [](const EpochMetrics& m) { return m.partial; })) return true;
  // The run's name in each title, so a plot copied elsewhere still says what it shows.
  std::string run = fs::path(dir).filename().string();
  for (char& c : run)
    if (c == '_') c = ' ';  // '_' would subscript in the enhanced text mode
  std::string gp;
  gp += "# Drawn by janus from metrics.csv; rerun with: gnuplot plot.gp\n";
  gp += "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) { set terminal pngcairo size 900,560 enhanced font ',11' }"
        " else { set terminal png size 900,560 }\n";
  gp += "set datafile separator ','\nset key top right\nset grid\nset xlabel 'epoch'\n";
  gp += "set style data linespoints\nset datafile missing ''\n";
  // Complete epochs only: a partial epoch's row (column 8 is 1) covers a few batches, not an epoch.
  gp += "full(v) = column(8) == 1 ? NaN : v\n";
  gp += "set output '" + dir + "/loss.png'\nset title '" + run + ": loss'\nset ylabel 'loss'\n";
  gp += "plot '" + csv + "' every ::1 using 1:(full($2)) title 'train' lw 2 pt 7 ps 0.6, '' every ::1 using 1:(full($4)) title 'validation' lw 2 pt 7 ps 0.6\n";
  gp += "set output '" + dir + "/accuracy.png'\nset title '" + run + ": accuracy'\nset ylabel 'accuracy'\nset key bottom right\n";
  gp += "plot '" + csv + "' every ::1 using 1:(full($3)) title 'train' lw 2 pt 7 ps 0.6, '' every ::1 using 1:(full($5)) title 'validation' lw 2 pt 7 ps 0.6\n";
  gp += "unset output\n";
  const std::string script = dir + "/plot.gp";
  write_file_atomically(script, gp);

  // gnuplot's chatter goes to a log file so that it never mixes with the progress output.
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  const std::string log = dir + "/plot.log";
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  std::string prog = "gnuplot";
  std::vector<char*> argv = {prog.data(), const_cast<char*>(script.c_str()), nullptr};
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, "gnuplot", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return warn(std::string("cannot run gnuplot (") + std::strerror(rc) + "); install gnuplot");
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return warn("waiting for gnuplot failed");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127) return warn("gnuplot is not installed");
    return warn("gnuplot failed; see " + log);
  }
  fs::remove(log, ec);
  return true;
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

std::string format_percent(double v) {
  if (!std::isfinite(v)) return "  -   ";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%6.2f%%", 100.0 * v);
  return buf;
}

std::string format_fixed(double v, int digits) {
  if (!std::isfinite(v)) return "-";
  char buf[32];
  if (std::fabs(v) >= 1e6)
    std::snprintf(buf, sizeof buf, "%.4g", v);
  else
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

Progress::Progress(bool enabled) : enabled_(enabled), tty_(isatty(STDERR_FILENO) != 0) {}

void Progress::begin_epoch(int epoch, int epochs, size_t batches, size_t first_batch) {
  epoch_ = epoch;
  epochs_ = epochs;
  batches_ = batches;
  first_ = first_batch;
  start_ = last_draw_ = Clock::now();
  drawn_ = false;
}

bool Progress::due(size_t done) const {
  if (!enabled_) return false;
  const double since_draw = std::chrono::duration<double>(Clock::now() - last_draw_).count();
  return tty_ ? (since_draw >= 0.1 || done >= batches_) : since_draw >= 30.0;
}

void Progress::update(size_t done, int64_t images, double loss, double acc) {
  if (!due(done)) return;
  const auto now = Clock::now();
  last_draw_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(images) / elapsed : 0.0;
  const size_t this_run = done > first_ ? done - first_ : 0;
  const double eta = this_run ? elapsed / static_cast<double>(this_run) * static_cast<double>(batches_ - done) : NAN;
  char line[256];
  if (tty_) {
    const int width = 24;
    const int fill = batches_ ? static_cast<int>(width * done / batches_) : width;
    std::string bar(static_cast<size_t>(fill), '#');
    bar += std::string(static_cast<size_t>(width - fill), '.');
    std::snprintf(line, sizeof line, "\r\033[Kepoch %d/%d [%s] %zu/%zu  %.0f img/s  loss %.4f  acc %.2f%%  ETA %s",
                  epoch_, epochs_, bar.c_str(), done, batches_, rate, loss, 100.0 * acc, format_duration(eta).c_str());
    std::fputs(line, stderr);
    drawn_ = true;
  } else {
    std::snprintf(line, sizeof line, "epoch %d/%d: batch %zu/%zu  %.0f img/s  loss %.4f  acc %.2f%%  ETA %s\n",
                  epoch_, epochs_, done, batches_, rate, loss, 100.0 * acc, format_duration(eta).c_str());
    std::fputs(line, stderr);
  }
  std::fflush(stderr);
}

void Progress::clear() {
  if (enabled_ && tty_ && drawn_) {
    std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
    drawn_ = false;
  }
}

}  // namespace janus::train_detail
