// Evaluation and prediction with a trained run.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "janus/checkpoint.hpp"
#include "janus/error.hpp"
#include "janus/trainer.hpp"
#include "train/internal.hpp"

namespace janus {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

json parse_meta(const std::map<std::string, std::string>& meta, const std::string& key, const std::string& path) {
  auto it = meta.find(key);
  if (it == meta.end()) return nullptr;
  try {
    return json::parse(it->second);
  } catch (const json::exception& e) {
    throw Error("checkpoint " + path + ": metadata '" + key + "' is not valid JSON (" + e.what() + ")");
  }
}

// Rows [start, start+n) of d as a device tensor (and one-hot targets).
Tensor batch_x(const Dataset& d, size_t start, size_t n, Device& device) {
  const size_t k = d.sample_numel();
  std::vector<float> host(d.x.begin() + static_cast<std::ptrdiff_t>(start * k),
                          d.x.begin() + static_cast<std::ptrdiff_t>((start + n) * k));
  return Tensor::from_host(host, d.batch_shape(static_cast<int64_t>(n)), device);
}

// The same rows mirrored left-right (test-time augmentation): image samples
// (H, W, C) only.
Tensor batch_x_flipped(const Dataset& d, size_t start, size_t n, Device& device) {
  JANUS_CHECK(d.sample_shape.rank() == 3, "test-time flip augmentation needs image samples (rows, cols, "
              "channels); ", d.source, " has samples of shape ", d.sample_shape.str());
  const size_t H = static_cast<size_t>(d.sample_shape[0]), W = static_cast<size_t>(d.sample_shape[1]),
               C = static_cast<size_t>(d.sample_shape[2]), k = d.sample_numel();
  std::vector<float> host(n * k);
  for (size_t i = 0; i < n; ++i) {
    const float* src = d.sample(start + i);
    float* dst = host.data() + i * k;
    for (size_t h = 0; h < H; ++h)
      for (size_t w = 0; w < W; ++w)
        std::copy_n(src + (h * W + w) * C, C, dst + (h * W + (W - 1 - w)) * C);
  }
  return Tensor::from_host(host, d.batch_shape(static_cast<int64_t>(n)), device);
}

// Adds the model's outputs for the flipped batch to p and halves the sum.
void average_with_flipped(std::vector<float>& p, const Tensor& flipped_yhat) {
  const std::vector<float> q = flipped_yhat.to_host_f32();
  JANUS_CHECK(q.size() == p.size(), "test-time augmentation: output sizes differ");
  for (size_t i = 0; i < p.size(); ++i) p[i] = 0.5f * (p[i] + q[i]);
}

}  // namespace

TrainedRun load_trained_run(const std::string& run_dir, const std::string& which, Device& device) {
  TrainedRun r;
  r.run_dir = run_dir;
  JANUS_CHECK(fs::is_directory(run_dir), "run directory ", run_dir, " does not exist");
  if (which == "best" || which == "last") {
    r.checkpoint = (fs::path(run_dir) / (which + ".safetensors")).string();
    if (which == "best" && !fs::exists(r.checkpoint)) {
      const std::string last = (fs::path(run_dir) / "last.safetensors").string();
      JANUS_CHECK(fs::exists(last), "run ", run_dir, " has no checkpoint (best.safetensors / last.safetensors)");
      r.checkpoint = last;
      r.note = "run " + run_dir + " has no best.safetensors (it validated no epoch: no validation split, or "
               "stopped before its first epoch ended); using last.safetensors";
    }
  } else {
    r.checkpoint = which;
  }
  JANUS_CHECK(fs::is_regular_file(r.checkpoint), "checkpoint ", r.checkpoint, " does not exist");
  const std::string cfg_path = (fs::path(run_dir) / "config.json").string();
  JANUS_CHECK(fs::is_regular_file(cfg_path), "run ", run_dir, " has no config.json: not a Janus run directory");
  r.config = load_run_config(cfg_path);

  SafetensorsFile f = read_safetensors(r.checkpoint);
  r.model.emplace(load_model(r.checkpoint, device));
  json st = parse_meta(f.metadata, "standardizer", r.checkpoint);
  if (!st.is_null()) {
    try {
      r.standardizer = train_detail::standardizer_from_json(st);
    } catch (const Error& e) {
      throw Error("checkpoint " + r.checkpoint + ": metadata 'standardizer': " + e.what());
    }
  }
  // A checkpoint given by path may come from elsewhere (a program's own
  // save_checkpoint): evaluating it on this run's data without the run's
  // standardisation would measure nonsense, so it must carry one.
  const bool foreign = which != "best" && which != "last";
  JANUS_CHECK(!foreign || r.standardizer || !r.config.dataset.standardize, "checkpoint ", r.checkpoint,
              " has no 'standardizer' metadata, but run ", run_dir,
              " standardises its inputs (dataset 'standardize': true), so its data would reach this model "
              "unstandardised; evaluate a checkpoint written by this run (--checkpoint best or last) or by "
              "another janus train run on the same dataset");
  auto ds = f.metadata.find("dataset");
  r.dataset = ds != f.metadata.end() ? ds->second : r.config.dataset.name;
  json names = parse_meta(f.metadata, "class_names", r.checkpoint);
  if (names.is_array())
    for (const auto& n : names) {
      JANUS_CHECK(n.is_string(), "checkpoint ", r.checkpoint, ": metadata 'class_names' holds ", n.dump(),
                  ", not a class name");
      r.class_names.push_back(n.get<std::string>());
    }
  r.run_state = parse_meta(f.metadata, "janus_run", r.checkpoint);
  return r;
}

void prepare_for_run(const TrainedRun& run, Dataset& data) {
  train_detail::remap_labels(data, run.class_names);
  if (run.standardizer) {
    JANUS_CHECK(run.standardizer->channels() == static_cast<size_t>(data.sample_shape.last()), "data ", data.source,
                " has ", data.sample_shape.last(), " channels per sample but the run was standardised with ",
                run.standardizer->channels());
    run.standardizer->apply(data);
  }
  if (run.model && run.model->built()) {
    Shape want = run.model->input_shape();
    std::vector<int64_t> per(want.dims().begin() + 1, want.dims().end());
    JANUS_CHECK(Shape(per) == data.sample_shape, "data ", data.source, " has samples of shape ",
                data.sample_shape.str(), " but the model takes ", Shape(per).str());
  }
}

EvalResult evaluate(NeuralNetwork& model, const Dataset& data, int64_t batch_size, bool tta) {
  EvalResult r;
  JANUS_CHECK(batch_size > 0, "evaluate: batch size must be positive");
  const int K = data.num_classes;
  r.class_names = data.class_names;
  r.confusion.assign(static_cast<size_t>(K), std::vector<int64_t>(static_cast<size_t>(K), 0));
  Device& device = model.device();
  double loss_sum = 0;
  int64_t labelled = 0;
  for (size_t start = 0; start < data.size(); start += static_cast<size_t>(batch_size)) {
    const size_t n = std::min(static_cast<size_t>(batch_size), data.size() - start);
    Tensor x = batch_x(data, start, n, device);
    std::vector<float> onehot(n * static_cast<size_t>(K), 0.0f);
    for (size_t i = 0; i < n; ++i) {
      const int l = data.labels[start + i];
      JANUS_CHECK(l >= 0 && l < K, "evaluate: sample ", start + i, " of ", data.source, " has no valid label (", l, ")");
      onehot[i * static_cast<size_t>(K) + static_cast<size_t>(l)] = 1.0f;
    }
    Tensor y = Tensor::from_host(onehot, Shape{static_cast<int64_t>(n), K}, device);
    auto [yhat, loss] = model.predict(x, y);
    JANUS_CHECK(yhat.rank() == 2 && yhat.dim(1) == K, "evaluate: the model outputs ", yhat.shape().str(),
                " but the data has ", K, " classes");
    std::vector<float> p = yhat.to_host_f32();
    if (tta) {  // mean of the outputs; the loss is the mean of the two losses
      auto [yhat_flip, loss_flip] = model.predict(batch_x_flipped(data, start, n, device), y);
      average_with_flipped(p, yhat_flip);
      loss = 0.5 * (loss + loss_flip);
    }
    loss_sum += loss * static_cast<double>(n);
    labelled += static_cast<int64_t>(n);
    for (size_t i = 0; i < n; ++i) {
      const float* row = p.data() + i * static_cast<size_t>(K);
      const int pred = static_cast<int>(std::max_element(row, row + K) - row);
      r.confusion[static_cast<size_t>(data.labels[start + i])][static_cast<size_t>(pred)] += 1;
    }
  }
  r.n = labelled;
  int64_t correct = 0;
  for (int c = 0; c < K; ++c) correct += r.confusion[static_cast<size_t>(c)][static_cast<size_t>(c)];
  r.loss = labelled ? loss_sum / static_cast<double>(labelled) : std::nan("");
  r.accuracy = labelled ? static_cast<double>(correct) / static_cast<double>(labelled) : std::nan("");
  return r;
}

std::string format_eval_report(const EvalResult& r) {
  std::string s;
  char buf[256];
  std::snprintf(buf, sizeof buf, "samples   %lld\nloss      %.6f\naccuracy  %.4f (%.2f%%)\n\n",
                static_cast<long long>(r.n), r.loss, r.accuracy, 100.0 * r.accuracy);
  s += buf;
  const size_t K = r.confusion.size();
  auto name = [&](size_t c) { return c < r.class_names.size() ? r.class_names[c] : std::to_string(c); };
  size_t w = 5;
  for (size_t c = 0; c < K; ++c) w = std::max(w, name(c).size());
  s += "per-class accuracy\n";
  for (size_t c = 0; c < K; ++c) {
    int64_t tot = 0;
    for (int64_t v : r.confusion[c]) tot += v;
    const double acc = tot ? static_cast<double>(r.confusion[c][c]) / static_cast<double>(tot) : std::nan("");
    std::snprintf(buf, sizeof buf, "  %2zu %-*s  %6.2f%%  (%lld/%lld)\n", c, static_cast<int>(w), name(c).c_str(),
                  100.0 * acc, static_cast<long long>(r.confusion[c][c]), static_cast<long long>(tot));
    s += buf;
  }
  s += "\nconfusion matrix (rows: true class, columns: predicted class)\n      ";
  for (size_t c = 0; c < K; ++c) {
    std::snprintf(buf, sizeof buf, " %6zu", c);
    s += buf;
  }
  s += "\n";
  for (size_t t = 0; t < K; ++t) {
    std::snprintf(buf, sizeof buf, "  %2zu  ", t);
    s += buf;
    for (size_t p = 0; p < K; ++p) {
      std::snprintf(buf, sizeof buf, " %6lld", static_cast<long long>(r.confusion[t][p]));
      s += buf;
    }
    s += "   " + name(t) + "\n";
  }
  return s;
}

std::vector<int> predict_classes(NeuralNetwork& model, const Dataset& data, int64_t batch_size, bool tta) {
  JANUS_CHECK(batch_size > 0, "predict: batch size must be positive");
  std::vector<int> out;
  out.reserve(data.size());
  Device& device = model.device();
  for (size_t start = 0; start < data.size(); start += static_cast<size_t>(batch_size)) {
    const size_t n = std::min(static_cast<size_t>(batch_size), data.size() - start);
    Tensor yhat = model.forward(batch_x(data, start, n, device), Mode::Eval);
    JANUS_CHECK(yhat.rank() == 2 && yhat.dim(0) == static_cast<int64_t>(n), "predict: the model outputs ",
                yhat.shape().str(), " for a batch of ", n);
    const int64_t K = yhat.dim(1);
    std::vector<float> p = yhat.to_host_f32();
    if (tta) average_with_flipped(p, model.forward(batch_x_flipped(data, start, n, device), Mode::Eval));
    for (size_t i = 0; i < n; ++i) {
      const float* row = p.data() + i * static_cast<size_t>(K);
      out.push_back(static_cast<int>(std::max_element(row, row + K) - row));
    }
  }
  return out;
}

void write_predictions_csv(const std::string& path, const std::vector<int>& classes) {
  std::string s = "Id,Category\n";
  s.reserve(s.size() + classes.size() * 8);
  for (size_t i = 0; i < classes.size(); ++i) s += std::to_string(i) + "," + std::to_string(classes[i]) + "\n";
  write_file_atomically(path, s);
}

}  // namespace janus
