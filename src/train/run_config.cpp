// Run configs: parsing, checking every key, and the resolved form written to
// experiments/RUN/config.json.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "janus/error.hpp"
#include "janus/nlohmann_json.hpp"
#include "janus/optimizer.hpp"
#include "janus/scheduler.hpp"
#include "janus/trainer.hpp"
#include "nn/config_plugins.hpp"

namespace janus {

namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& source, const std::string& msg) {
  throw Error("config " + source + ": " + msg);
}

void check_keys(const json& obj, const std::string& where, const std::set<std::string>& allowed,
                const std::string& source) {
  if (!obj.is_object()) fail(source, where + " must be a JSON object, got " + obj.dump());
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (allowed.count(it.key())) continue;
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    fail(source, "unknown key '" + it.key() + "' in " + where + " (allowed: " + list + ")");
  }
}

int64_t get_int(const json& obj, const char* key, int64_t fallback, int64_t min_value, const std::string& where,
                const std::string& source) {
  if (!obj.contains(key)) return fallback;
  const json& v = obj.at(key);
  if (!v.is_number_integer()) fail(source, where + "'" + key + "' must be an integer, got " + v.dump());
  const int64_t x = v.get<int64_t>();
  if (x < min_value)
    fail(source, where + "'" + key + "' must be at least " + std::to_string(min_value) + ", got " + v.dump());
  return x;
}

double get_num(const json& obj, const char* key, double fallback, double lo, double hi, const std::string& where,
               const std::string& source) {
  if (!obj.contains(key)) return fallback;
  const json& v = obj.at(key);
  if (!v.is_number()) fail(source, where + "'" + key + "' must be a number, got " + v.dump());
  const double x = v.get<double>();
  if (!(x >= lo && x < hi))
    fail(source, where + "'" + key + "' must be in [" + json(lo).dump() + ", " + json(hi).dump() + "), got " +
                     v.dump());
  return x;
}

bool get_bool(const json& obj, const char* key, bool fallback, const std::string& where, const std::string& source) {
  if (!obj.contains(key)) return fallback;
  const json& v = obj.at(key);
  if (!v.is_boolean()) fail(source, where + "'" + key + "' must be true or false, got " + v.dump());
  return v.get<bool>();
}

std::string get_str(const json& obj, const char* key, const std::string& fallback, const std::string& where,
                    const std::string& source) {
  if (!obj.contains(key)) return fallback;
  const json& v = obj.at(key);
  if (!v.is_string()) fail(source, where + "'" + key + "' must be a string, got " + v.dump());
  return v.get<std::string>();
}

json file_list(const json& obj, const char* key, const std::string& dataset, const std::string& source) {
  if (!obj.contains(key)) return json::array();
  json v = obj.at(key);
  if (v.is_string() || v.is_number_integer()) v = json::array({v});
  if (!v.is_array()) fail(source, "dataset '" + std::string(key) + "' must be a list of files, got " + v.dump());
  for (const auto& e : v) {
    const bool ok = e.is_string() || (dataset == "cifar10" && e.is_number_integer() && e.get<int64_t>() >= 1 &&
                                      e.get<int64_t>() <= 5);
    if (!ok)
      fail(source, "dataset '" + std::string(key) + "': entry " + e.dump() +
                       (dataset == "cifar10" ? " is neither a path nor a batch number 1..5" : " is not a path"));
  }
  if (dataset == "fashion_mnist" && !v.empty() && v.size() != 2)
    fail(source, "dataset '" + std::string(key) + "' for fashion_mnist must be [images, labels], got " + v.dump());
  return v;
}

}  // namespace

Json RunConfig::to_json() const {
  json ds = {{"name", dataset.name},
             {"train", dataset.train},
             {"validation", dataset.validation},
             {"validation_fraction", dataset.validation_fraction},
             {"test_fraction", dataset.test_fraction},
             {"augment", {{"crop_pad", dataset.augment.crop_pad}, {"flip", dataset.augment.hflip}}},
             {"label_smoothing", dataset.label_smoothing},
             {"standardize", dataset.standardize}};
  json j = {{"name", name},
            {"dataset", ds},
            {"model", model},
            {"optimizer", optimizer},
            {"schedule", schedule},
            {"batch_size", batch_size},
            {"eval_batch_size", eval_batch_size},
            {"epochs", epochs},
            {"seed", seed},
            {"device", device},
            {"drop_last", drop_last ? json(*drop_last) : json("auto")},
            {"precision", precision_name(precision)},
            {"cuda_graph", cuda_graph}};
  if (dataset.folds >= 2) {  // only with cross-validation: "fold" alone is refused on reading
    j["dataset"]["folds"] = dataset.folds;
    j["dataset"]["fold"] = dataset.fold;
  }
  if (!description.empty()) j["description"] = description;
  if (!plugins.empty()) j["plugins"] = plugins;
  return j;
}

RunConfig parse_run_config(const Json& config, const std::string& source) {
  const json& j = nlohmann_json(config);
  RunConfig c;
  c.source = source;
  check_keys(j, "the run config",
             {"name", "description", "dataset", "model", "optimizer", "schedule", "batch_size", "eval_batch_size",
              "epochs", "seed", "device", "drop_last", "precision", "cuda_graph", "plugins"},
             source);
  // Plugins first: the model below may name their layer types.
  c.plugins = config_detail::load_config_plugins(j, source);
  c.name = get_str(j, "name", "", "", source);
  c.description = get_str(j, "description", "", "", source);
  c.batch_size = get_int(j, "batch_size", 32, 1, "", source);
  c.eval_batch_size = get_int(j, "eval_batch_size", 0, 0, "", source);
  c.epochs = static_cast<int>(get_int(j, "epochs", 10, 1, "", source));
  c.seed = static_cast<uint64_t>(get_int(j, "seed", 0, 0, "", source));
  c.device = get_str(j, "device", "auto", "", source);
  if (j.contains("drop_last") && j.at("drop_last") != "auto") {
    if (!j.at("drop_last").is_boolean())
      fail(source, "'drop_last' must be true, false or \"auto\", got " + j.at("drop_last").dump());
    c.drop_last = j.at("drop_last").get<bool>();
  }
  c.precision = parse_precision(get_str(j, "precision", "fp32", "", source), "config " + source + ": precision");
  c.cuda_graph = get_bool(j, "cuda_graph", false, "", source);

  if (!j.contains("dataset")) fail(source, "missing 'dataset'");
  const json& d = j.at("dataset");
  check_keys(d, "'dataset'",
             {"name", "train", "validation", "validation_fraction", "test_fraction", "folds", "fold", "augment",
              "label_smoothing", "standardize"},
             source);
  c.dataset.name = get_str(d, "name", "", "dataset ", source);
  if (c.dataset.name != "iris" && c.dataset.name != "fashion_mnist" && c.dataset.name != "cifar10")
    fail(source, "dataset 'name' must be iris, fashion_mnist or cifar10, got '" + c.dataset.name + "'");
  c.dataset.train = file_list(d, "train", c.dataset.name, source);
  c.dataset.validation = file_list(d, "validation", c.dataset.name, source);
  if (c.dataset.name == "iris" && c.dataset.train.size() > 1)
    fail(source, "dataset 'train' for iris takes one CSV file");
  c.dataset.validation_fraction = get_num(d, "validation_fraction", c.dataset.name == "iris" && c.dataset.validation.empty() ? 0.2 : 0.0, 0.0, 1.0, "dataset ", source);
  c.dataset.test_fraction = get_num(d, "test_fraction", 0.0, 0.0, 1.0, "dataset ", source);
  if (c.dataset.validation_fraction > 0 && !c.dataset.validation.empty())
    fail(source, "dataset: give either 'validation' files or 'validation_fraction', not both");
  if (c.dataset.validation_fraction + c.dataset.test_fraction >= 1.0)
    fail(source, "dataset: validation_fraction + test_fraction must stay below 1");
  const int64_t folds = get_int(d, "folds", 0, 0, "dataset ", source);
  const int64_t fold = get_int(d, "fold", 0, 0, "dataset ", source);
  if (folds == 1 || folds > 1000000)
    fail(source, "dataset: 'folds' must be 0 (no cross-validation) or between 2 and 1000000, got " +
                     std::to_string(folds));
  if (folds == 0 && d.contains("fold"))
    fail(source, "dataset: 'fold' needs 'folds' (the number of cross-validation folds)");
  if (folds >= 2 && fold >= folds)
    fail(source, "dataset: 'fold' " + std::to_string(fold) + " must be below 'folds' " + std::to_string(folds));
  c.dataset.folds = static_cast<int>(folds);
  c.dataset.fold = static_cast<int>(fold);
  if (c.dataset.folds >= 2 && c.dataset.test_fraction > 0)
    fail(source, "dataset: give either 'folds' (cross-validation) or 'test_fraction', not both");
  if (c.dataset.folds >= 2 && c.dataset.validation_fraction >= 1.0 - 1.0 / c.dataset.folds)
    fail(source, "dataset: validation_fraction must stay below the " + std::to_string(1.0 - 1.0 / c.dataset.folds) +
                     " of the data left outside the test fold");
  if (d.contains("augment")) {
    const json& a = d.at("augment");
    check_keys(a, "'dataset.augment'", {"crop_pad", "flip"}, source);
    c.dataset.augment.crop_pad = static_cast<int>(get_int(a, "crop_pad", 0, 0, "augment ", source));
    c.dataset.augment.hflip = get_bool(a, "flip", false, "augment ", source);
    if (c.dataset.augment.enabled() && c.dataset.name == "iris")
      fail(source, "dataset.augment: image augmentation does not apply to iris");
  }
  c.dataset.label_smoothing =
      static_cast<float>(get_num(d, "label_smoothing", 0.0, 0.0, 1.0, "dataset ", source));
  c.dataset.standardize = get_bool(d, "standardize", true, "dataset ", source);

  if (!j.contains("model")) fail(source, "missing 'model'");
  c.model = j.at("model");
  if (!c.model.is_object()) fail(source, "'model' must be a JSON object");
  if (!c.model.contains("seed")) c.model.set("seed", c.seed);
  if (!c.model.contains("loss")) c.model.set("loss", "cross_entropy");
  c.optimizer = j.value("optimizer", json{{"type", "sgd"}});
  c.schedule = j.value("schedule", json{{"type", "constant"}, {"lr", 0.01}});
  // Build each piece once so that a bad key or value is reported now, with the file.
  try {
    (void)NeuralNetwork::from_config(c.model);
  } catch (const Error& e) {
    fail(source, std::string("model: ") + e.what());
  }
  try {
    (void)make_optimizer(c.optimizer);
  } catch (const Error& e) {
    fail(source, e.what());
  }
  try {
    json s = c.schedule;
    if (s.is_object() && !s.contains("total_steps") && (!s.contains("type") || s.at("type").is_string())) {
      const std::string t = s.value("type", std::string("constant"));
      // A stand-in for the length the trainer fills in: large enough that no
      // warmup_steps is refused for it.
      if (t == "cosine" || t == "onecycle") s["total_steps"] = int64_t(1) << 53;
    }
    (void)make_scheduler(s);
  } catch (const Error& e) {
    fail(source, e.what());
  }
  return c;
}

RunConfig load_run_config(const std::string& path) {
  std::error_code ec;
  JANUS_CHECK(!std::filesystem::is_directory(path, ec), "config ", path, ": is a directory, not a JSON file");
  std::ifstream in(path);
  JANUS_CHECK(in.good(), "config ", path, ": cannot open the file");
  std::stringstream ss;
  ss << in.rdbuf();
  json j;
  try {
    j = json::parse(ss.str());
  } catch (const json::parse_error& e) {
    throw Error("config " + path + ": not valid JSON (" + e.what() + ")");
  }
  return parse_run_config(j, path);
}

}  // namespace janus
