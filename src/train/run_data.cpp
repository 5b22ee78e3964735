// The datasets a run config names: defaults, path resolution, splits.
#include <algorithm>
#include <filesystem>

#include "janus/error.hpp"
#include "janus/trainer.hpp"
#include "train/internal.hpp"

namespace janus {

namespace fs = std::filesystem;
using nlohmann::json;

namespace train_detail {

std::string resolve_path(const std::string& entry, const std::string& base) {
  if (entry.empty() || fs::path(entry).is_absolute() || base.empty()) return entry;
  std::error_code ec;
  fs::path p = fs::path(base) / entry;
  if (fs::exists(p, ec)) return p.string();
  return entry;
}

void remap_labels(Dataset& d, const std::vector<std::string>& names) {
  if (names.empty()) return;
  if (d.class_names == names) return;
  if (d.class_names.empty()) {
    JANUS_CHECK(d.num_classes <= static_cast<int>(names.size()), "dataset ", d.source, " has ", d.num_classes,
                " classes but the run knows only ", names.size());
    d.num_classes = static_cast<int>(names.size());
    d.class_names = names;
    return;
  }
  std::vector<int> map(d.class_names.size(), -1);
  for (size_t i = 0; i < d.class_names.size(); ++i) {
    for (size_t j = 0; j < names.size(); ++j)
      if (d.class_names[i] == names[j]) map[i] = static_cast<int>(j);
    if (map[i] < 0) {
      std::string known;
      for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
      throw Error("dataset " + d.source + ": class '" + d.class_names[i] + "' is not one the run was trained on (" +
                  known + ")");
    }
  }
  for (int& l : d.labels)
    if (l >= 0) l = map[static_cast<size_t>(l)];
  d.class_names = names;
  d.num_classes = static_cast<int>(names.size());
}

}  // namespace train_detail

using train_detail::remap_labels;
using train_detail::resolve_path;

namespace {

std::vector<std::string> strings_of(const json& list, const std::string& base) {
  std::vector<std::string> out;
  for (const auto& e : list) out.push_back(resolve_path(e.get<std::string>(), base));
  return out;
}

std::vector<std::string> cifar_files(const json& list, const std::string& cifar_dir) {
  std::vector<std::string> out;
  for (const auto& e : list) {
    if (e.is_number_integer()) {
      auto f = cifar10_batch_files(cifar_dir, {e.get<int>()});
      out.insert(out.end(), f.begin(), f.end());
    } else {
      out.push_back(resolve_path(e.get<std::string>(), cifar_dir));
    }
  }
  return out;
}

}  // namespace

Dataset load_dataset_files(const std::string& name, const std::vector<std::string>& files, bool ignore_labels) {
  JANUS_CHECK(!files.empty(), "no data files given");
  if (name == "cifar10") return load_cifar10_batches(files, ignore_labels);
  if (name == "fashion_mnist") {
    JANUS_CHECK(files.size() == 2, "fashion_mnist data is two files, images then labels (IDX, optionally gzip); got ",
                files.size());
    Dataset d = load_idx(files[0], files[1], 10);
    d.class_names = fashion_mnist_class_names();
    return d;
  }
  if (name == "iris") {
    JANUS_CHECK(files.size() == 1, "iris data is one CSV file; got ", files.size());
    return load_iris_csv(files[0]);
  }
  throw Error("unknown dataset '" + name + "'");
}

RunData load_run_data(const RunConfig& cfg, const std::string& asked_dir, const std::string& given_as) {
  RunData r;
  const DatasetConfig& dc = cfg.dataset;
  std::string data_dir;
  if (dc.name == "cifar10") {
    data_dir = resolve_data_dir(asked_dir, given_as);
  } else {
    // Iris ships with Janus and Fashion-MNIST has a system location: a
    // missing data directory is only an error when one was asked for.
    if (!asked_dir.empty()) data_dir = resolve_data_dir(asked_dir, given_as);
    else {
      try {
        data_dir = resolve_data_dir("");
      } catch (const Error&) {
        data_dir.clear();
      }
    }
  }
  r.data_dir = data_dir;

  if (dc.name == "iris") {
    std::string train_file;
    if (!dc.train.empty()) {
      train_file = resolve_path(dc.train[0].get<std::string>(), data_dir);
    } else {
      std::error_code ec;
      const fs::path p = fs::path(data_dir.empty() ? "." : data_dir) / "iris.csv";
      train_file = !data_dir.empty() && fs::is_regular_file(p, ec) ? p.string() : default_iris_path();
    }
    r.train_files = {train_file};
    r.train = load_iris_csv(train_file);
    if (!dc.validation.empty()) {
      r.validation_files = strings_of(dc.validation, data_dir);
      r.validation = load_dataset_files("iris", r.validation_files, false);
    }
  } else if (dc.name == "fashion_mnist") {
    std::string fm_dir = data_dir;
    FashionMnistFiles f;
    try {
      f = find_fashion_mnist(data_dir);
      fm_dir = f.dir;
    } catch (const Error&) {
      if (dc.train.empty() || (dc.validation.empty() && dc.validation_fraction == 0)) throw;
    }
    r.train_files = dc.train.empty() ? std::vector<std::string>{f.train_images, f.train_labels}
                                     : strings_of(dc.train, fm_dir);
    r.train = load_dataset_files("fashion_mnist", r.train_files, false);
    if (dc.validation_fraction == 0) {
      r.validation_files = dc.validation.empty() ? std::vector<std::string>{f.test_images, f.test_labels}
                                                 : strings_of(dc.validation, fm_dir);
      r.validation = load_dataset_files("fashion_mnist", r.validation_files, false);
    }
  } else {
    const std::string cifar_dir = find_cifar10_dir(data_dir);
    r.train_files = cifar_files(dc.train.empty() ? json::array({1, 2, 3, 4}) : nlohmann_json(dc.train), cifar_dir);
    r.train = load_cifar10_batches(r.train_files, false);
    if (dc.validation_fraction == 0) {
      r.validation_files = cifar_files(dc.validation.empty() ? json::array({5}) : nlohmann_json(dc.validation), cifar_dir);
      r.validation = load_cifar10_batches(r.validation_files, false);
    }
  }

  // The test split is held out first (a fraction, or one cross-validation fold).
  double test_share = dc.test_fraction;
  if (dc.folds >= 2) {
    Split s = split_kfold(r.train, dc.folds, dc.fold, cfg.seed ^ 0x7e57ull);
    test_share = static_cast<double>(s.validation.size()) / static_cast<double>(r.train.size());
    r.train = std::move(s.train);
    r.test = std::move(s.validation);
  } else if (dc.test_fraction > 0) {
    Split s = split_random(r.train, dc.test_fraction, cfg.seed ^ 0x7e57ull, true);
    r.train = std::move(s.train);
    r.test = std::move(s.validation);
  }
  if (dc.validation_fraction > 0) {
    // Of what is left after the test split, so that the fractions refer to the whole file.
    const double f = std::min(1.0, dc.validation_fraction / (1.0 - test_share));
    Split s = split_random(r.train, f, cfg.seed, true);
    r.train = std::move(s.train);
    r.validation = std::move(s.validation);
  }
  if (r.validation.size() > 0) remap_labels(r.validation, r.train.class_names);
  JANUS_CHECK(r.train.size() > 0, "dataset ", dc.name, ": the training split is empty");
  return r;
}

}  // namespace janus
