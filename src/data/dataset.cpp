// Dataset helpers, subsets and train/validation splits.
#include <janus/counter_rng.hpp>
#include <janus/data.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

namespace janus {

Shape Dataset::batch_shape(int64_t n) const {
  std::vector<int64_t> dims;
  dims.reserve(sample_shape.dims().size() + 1);
  dims.push_back(n);
  for (int64_t d : sample_shape.dims()) dims.push_back(d);
  return Shape(std::move(dims));
}

void Dataset::validate(bool allow_unlabelled) const {
  JANUS_CHECK(x.size() == size() * sample_numel(), "dataset ", source, ": ", x.size(), " values for ", size(),
              " samples of ", sample_shape.str());
  for (size_t i = 0; i < labels.size(); ++i) {
    int l = labels[i];
    JANUS_CHECK((l >= 0 && l < num_classes) || (allow_unlabelled && l == -1), "dataset ", source,
                ": sample ", i, " has label ", l, ", out of range 0..", num_classes - 1);
  }
}

std::vector<size_t> seeded_permutation(size_t n, uint64_t seed, uint64_t stream) {
  std::vector<size_t> p(n);
  for (size_t i = 0; i < n; ++i) p[i] = i;
  const uint64_t key = splitmix64(splitmix64(seed) ^ (stream * 0xD1B54A32D192ED03ull + 0x2545F4914F6CDD1Dull));
  for (size_t i = n; i > 1; --i) {
    uint64_t h = splitmix64(key ^ splitmix64(i));
    // Unbiased enough for n << 2^64: multiply-shift onto [0, i).
    size_t j = static_cast<size_t>((static_cast<unsigned __int128>(h) * i) >> 64);
    std::swap(p[i - 1], p[j]);
  }
  return p;
}

Dataset subset(const Dataset& data, const std::vector<size_t>& indices) {
  Dataset out;
  out.sample_shape = data.sample_shape;
  out.num_classes = data.num_classes;
  out.class_names = data.class_names;
  out.source = data.source;
  const size_t k = data.sample_numel();
  out.x.resize(indices.size() * k);
  out.labels.resize(indices.size());
  for (size_t i = 0; i < indices.size(); ++i) {
    size_t src = indices[i];
    JANUS_CHECK(src < data.size(), "subset of ", data.source, ": index ", src, " out of range (", data.size(),
                " samples)");
    if (k) std::memcpy(out.x.data() + i * k, data.x.data() + src * k, k * sizeof(float));
    out.labels[i] = data.labels[src];
  }
  return out;
}

namespace {

Split split_by_mask(const Dataset& data, const std::vector<char>& is_val, const std::string& what) {
  std::vector<size_t> train, val;
  for (size_t i = 0; i < data.size(); ++i) (is_val[i] ? val : train).push_back(i);
  Split s{subset(data, train), subset(data, val)};
  s.train.source = data.source + " [" + what + " train]";
  s.validation.source = data.source + " [" + what + " validation]";
  return s;
}

}  // namespace

Split split_tail(const Dataset& data, size_t n_validation) {
  JANUS_CHECK(n_validation <= data.size(), "split of ", data.source, ": ", n_validation,
              " validation samples requested from ", data.size());
  std::vector<char> is_val(data.size(), 0);
  for (size_t i = data.size() - n_validation; i < data.size(); ++i) is_val[i] = 1;
  return split_by_mask(data, is_val, "tail");
}

Split split_random(const Dataset& data, double validation_fraction, uint64_t seed, bool stratified) {
  JANUS_CHECK(validation_fraction >= 0.0 && validation_fraction <= 1.0, "split of ", data.source,
              ": validation fraction ", validation_fraction, " not in [0, 1]");
  std::vector<char> is_val(data.size(), 0);
  if (stratified) {
    std::map<int, std::vector<size_t>> by_class;
    for (size_t i = 0; i < data.size(); ++i) by_class[data.labels[i]].push_back(i);
    for (auto& [label, idx] : by_class) {
      size_t take = static_cast<size_t>(std::llround(validation_fraction * static_cast<double>(idx.size())));
      auto perm = seeded_permutation(idx.size(), seed, static_cast<uint64_t>(static_cast<int64_t>(label) + 1));
      for (size_t k = 0; k < take; ++k) is_val[idx[perm[k]]] = 1;
    }
  } else {
    size_t take = static_cast<size_t>(std::llround(validation_fraction * static_cast<double>(data.size())));
    auto perm = seeded_permutation(data.size(), seed, 0);
    for (size_t k = 0; k < take; ++k) is_val[perm[k]] = 1;
  }
  return split_by_mask(data, is_val, stratified ? "stratified" : "random");
}

Split split_kfold(const Dataset& data, int folds, int fold, uint64_t seed) {
  JANUS_CHECK(folds >= 2 && static_cast<size_t>(folds) <= data.size(), "k-fold split of ", data.source, ": ",
              folds, " folds for ", data.size(), " samples (need 2 <= folds <= samples)");
  JANUS_CHECK(fold >= 0 && fold < folds, "k-fold split of ", data.source, ": fold ", fold, " not in [0, ", folds,
              ")");
  std::map<int, std::vector<size_t>> by_class;
  for (size_t i = 0; i < data.size(); ++i) by_class[data.labels[i]].push_back(i);
  std::vector<char> in_fold(data.size(), 0);
  // Dealing continues across classes (a class's first sample goes to the fold
  // after its predecessor's last), so fold sizes differ by at most one overall.
  size_t dealt = 0;
  for (auto& [label, idx] : by_class) {
    auto perm = seeded_permutation(idx.size(), seed, static_cast<uint64_t>(static_cast<int64_t>(label) + 1));
    for (size_t k = 0; k < idx.size(); ++k, ++dealt)
      if (static_cast<int>(dealt % static_cast<size_t>(folds)) == fold) in_fold[idx[perm[k]]] = 1;
  }
  return split_by_mask(data, in_fold, "fold " + std::to_string(fold) + "/" + std::to_string(folds));
}

}  // namespace janus
