// Datasets and the data loader (host side: everything here produces float32
// host arrays; moving a batch to a device is the caller's business).
//
//   Dataset             samples as one flat float array plus integer labels
//   load_cifar10_batches / load_idx / load_iris_csv   the three readers
//   resolve_data_dir / find_cifar10_dir / find_fashion_mnist / default_iris_path
//   Standardizer        per-channel (last axis) mean/std, fitted on train only
//   subset / split_*    train/validation splits
//   augment_image       random crop with zero padding + horizontal flip (NHWC)
//   DataLoader          epoch-based, reproducible, background-prefetching batches
//
// Images are NHWC with the raw 0..255 pixel values converted to float: the
// readers never normalise; fit a Standardizer on the training split for that.
// Every failure a user can cause (missing file, malformed record) throws a
// janus::Error naming the file and the record, line or byte at fault.
#pragma once

#include <janus/error.hpp>
#include <janus/shape.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace janus {

// ---- Dataset -----------------------------------------------------------------

struct Dataset {
  std::vector<float> x;           // size() * sample_shape.numel() values, sample-major
  std::vector<int> labels;        // one per sample, 0..num_classes-1 (-1: unknown, see below)
  Shape sample_shape;             // (rows, cols, channels) for images, (features) for dense
  int num_classes = 0;
  std::vector<std::string> class_names;
  std::string source;             // where it came from, for messages and logs

  size_t size() const { return labels.size(); }
  size_t sample_numel() const { return static_cast<size_t>(sample_shape.numel()); }
  // (n, sample_shape...): the shape of a batch of n samples.
  Shape batch_shape(int64_t n) const;
  const float* sample(size_t i) const { return x.data() + i * sample_numel(); }
  float* sample(size_t i) { return x.data() + i * sample_numel(); }
  // Throws unless x.size() == size() * sample_numel() and every label is in
  // range (or -1 when allow_unlabelled).
  void validate(bool allow_unlabelled = false) const;
};

// ---- readers -----------------------------------------------------------------

// CIFAR-10 official binary layout: records of 1 label byte + 3072 pixel bytes
// (1024 red, 1024 green, 1024 blue, each 32x32 row-major), concatenated over
// `files` in order. Result: NHWC (32, 32, 3), values 0..255. Each file must be
// a non-zero multiple of 3073 bytes; labels must be 0..9 unless ignore_labels,
// in which case the label bytes are skipped and every label is -1 (for
// prediction on files whose label bytes are arbitrary, e.g. a Kaggle test set).
// Class names come from batches.meta.txt next to the first file when present,
// else the standard ten names.
Dataset load_cifar10_batches(const std::vector<std::string>& files, bool ignore_labels = false);
std::vector<std::string> cifar10_class_names();   // airplane, automobile, ... truck

// IDX (MNIST / Fashion-MNIST): images magic 0x00000803 (ubyte, 3 dims N,R,C),
// labels magic 0x00000801 (ubyte, 1 dim N); each file gzip (detected by the
// magic bytes 1f 8b) or plain. Header dimensions are checked against the file
// size before anything is allocated. Result: NHWC (R, C, 1), values 0..255;
// labels must be < num_classes and as many as the images.
Dataset load_idx(const std::string& images_path, const std::string& labels_path,
                 int num_classes = 10);
std::vector<std::string> fashion_mnist_class_names();  // T-shirt/top, Trouser, ...

// Iris CSV: a header row, then rows of 4 numeric features and the species
// name. Class indices follow the order of first appearance in the file
// (setosa=0, versicolor=1, virginica=2 for the standard file). Blank lines are
// skipped; CRLF is accepted. sample_shape is (4).
Dataset load_iris_csv(const std::string& path);

// ---- locating data -----------------------------------------------------------

// The data directory: `dir` when non-empty (it must exist: a directory
// asked for is never silently ignored), else the first existing of
// $JANUS_DATA_DIR, ./data, ../shared/data and <source dir>/../shared/data.
// Throws janus::Error when `dir` is not a directory, or when `dir` is empty
// and none is found (the error lists every place it looked). `given_as`
// names where `dir` came from in those errors: the CLI passes "--data-dir",
// a library caller gets this function's argument named.
std::string resolve_data_dir(const std::string& dir,
                             const std::string& given_as = "the dir argument of resolve_data_dir()");

// The folder holding data_batch_*.bin: <dir>/cifar-10-batches-bin or <dir>.
std::string find_cifar10_dir(const std::string& data_dir);
// <cifar_dir>/data_batch_<i>.bin for each i (existence checked by the reader).
std::vector<std::string> cifar10_batch_files(const std::string& cifar_dir,
                                             const std::vector<int>& batch_numbers);

struct FashionMnistFiles {
  std::string dir;
  std::string train_images, train_labels, test_images, test_labels;
};
// Looks in dir (when non-empty), dir/fashion-mnist, dir/fashion_mnist, then
// /usr/share/datasets/fashion-mnist, for the four standard files, each as
// "<name>" or "<name>.gz" (also the "train-images.idx3-ubyte" spelling).
FashionMnistFiles find_fashion_mnist(const std::string& dir = "");
// The train (60,000) or test (10,000) split, with class names.
Dataset load_fashion_mnist(const std::string& dir, bool train);

// The Iris CSV that ships with Janus (datasets/iris.csv in the source tree).
std::string default_iris_path();

// ---- standardisation ---------------------------------------------------------

// Per-channel standardisation over the last axis of the samples: channels of
// an NHWC image, features of dense data. x <- (x - mean) / std, where std is
// the population standard deviation (a channel with std < 1e-6 gets std 1).
class Standardizer {
 public:
  Standardizer() = default;
  Standardizer(std::vector<float> mean, std::vector<float> stddev);

  // Statistics over every sample of `train` (fit on the training split only).
  void fit(const Dataset& train);
  void fit(const float* x, size_t count, size_t channels);  // count values, last axis = channels
  void apply(Dataset& data) const;                          // in place
  void apply(float* x, size_t count) const;                 // in place; count % channels == 0
  void invert(float* x, size_t count) const;                // back to raw values

  bool fitted() const { return !mean_.empty(); }
  size_t channels() const { return mean_.size(); }
  const std::vector<float>& mean() const { return mean_; }
  const std::vector<float>& stddev() const { return std_; }

  // For checkpoints: (mean, std), and back (sizes must match and be non-zero).
  std::pair<std::vector<float>, std::vector<float>> state() const { return {mean_, std_}; }
  static Standardizer from_state(const std::vector<float>& mean, const std::vector<float>& stddev);

 private:
  std::vector<float> mean_, std_, inv_std_;
};

// ---- splits ------------------------------------------------------------------

struct Split {
  Dataset train;
  Dataset validation;
};

// The samples at `indices`, in that order (metadata copied).
Dataset subset(const Dataset& data, const std::vector<size_t>& indices);
// Index ranges: the first size()-n_validation samples train, the last
// n_validation validate (e.g. CIFAR batches 1-4 / 5 when loaded together).
Split split_tail(const Dataset& data, size_t n_validation);
// Seeded random split. stratified: each class contributes
// round(fraction * class count) samples to validation (class balance kept);
// otherwise round(fraction * size()) samples drawn at random. Both parts keep
// the original file order. Identical (data, fraction, seed) give identical splits.
Split split_random(const Dataset& data, double validation_fraction, uint64_t seed,
                   bool stratified = true);
// Stratified k-fold cross-validation: the samples of each class are put in a
// seeded order and dealt round-robin into `folds` folds, so the folds
// partition the data, every fold keeps the class balance (sizes differ by at
// most one per class), and the same seed gives the same folds for every
// `fold` index. Returns fold `fold` as .validation and the rest as .train,
// both in file order. Needs 2 <= folds <= size() and 0 <= fold < folds.
Split split_kfold(const Dataset& data, int folds, int fold, uint64_t seed);

// Deterministic permutation of 0..n-1 from (seed, stream) (Fisher-Yates on
// SplitMix64): the DataLoader's epoch shuffle uses stream = epoch.
std::vector<size_t> seeded_permutation(size_t n, uint64_t seed, uint64_t stream);

// ---- augmentation ------------------------------------------------------------

struct AugmentOptions {
  int crop_pad = 0;        // random crop after zero padding by this many pixels (4 for 32x32)
  bool hflip = false;      // horizontal flip with probability 1/2
  float pad_value = 0.0f;  // value of the padding pixels
  bool enabled() const { return crop_pad > 0 || hflip; }
};

// Augment one HWC image src into dst (dst != src). The crop offsets and the
// flip are a pure function of (seed, epoch, sample_index), so results never
// depend on thread timing or batch composition.
void augment_image(const float* src, float* dst, int rows, int cols, int channels,
                   const AugmentOptions& opts, uint64_t seed, uint64_t epoch,
                   uint64_t sample_index);

// ---- loader ------------------------------------------------------------------

struct Batch {
  std::vector<float> x;         // size * sample numel, (size, sample_shape...)
  std::vector<float> y_onehot;  // size * num_classes (label smoothing applied)
  std::vector<int> labels;      // size
  Shape x_shape;                // (size, sample_shape...)
  int size = 0;
  std::vector<size_t> indices;  // dataset index of each row
};

struct LoaderOptions {
  size_t batch_size = 32;
  bool shuffle = true;
  uint64_t seed = 0;
  AugmentOptions augment;      // training split only: leave default for validation
  bool drop_last = false;      // drop a final partial batch
  float label_smoothing = 0;   // y = (1 - e) * onehot + e / num_classes; label -1 -> all zeros
  int prefetch = 2;            // batches prepared ahead by the background thread
  bool background = true;      // false: prepare each batch in next() (same results)
};

// Epoch-based loader. start_epoch(e) fixes the order of epoch e from
// (seed, e) alone, so a run resumed at epoch e sees exactly the batches an
// uninterrupted run would. A background thread fills a bounded queue of
// `prefetch` batches; next() hands them over by swapping buffers (no copy).
// start_epoch() mid-epoch and the destructor stop that thread cleanly.
class DataLoader {
 public:
  // The dataset is shared; the reference form does not own it (it must
  // outlive the loader).
  DataLoader(std::shared_ptr<const Dataset> data, const LoaderOptions& opts);
  DataLoader(const Dataset& data, const LoaderOptions& opts);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  void start_epoch(int epoch);
  // The next batch of the current epoch into `batch` (its old buffers are
  // recycled); false at the end of the epoch. The first call without a
  // start_epoch() starts epoch 0. Rethrows an error raised by the worker.
  bool next(Batch& batch);

  size_t num_batches() const;   // per epoch
  size_t num_samples() const;   // per epoch (after drop_last)
  int epoch() const;
  const Dataset& dataset() const;
  const LoaderOptions& options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace janus
