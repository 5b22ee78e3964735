// DataLoader: epoch-based, reproducible batches prepared by a background thread.
#include <janus/data.hpp>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

namespace janus {

struct DataLoader::Impl {
  std::shared_ptr<const Dataset> data;
  LoaderOptions opts;
  size_t n_samples = 0, n_batches = 0;
  bool augment = false;

  // Per-epoch state, written only while no worker runs.
  int epoch = -1;
  std::vector<size_t> order;
  size_t consumed = 0;

  // Producer/consumer queue.
  std::thread worker;
  std::mutex m;
  std::condition_variable cv_space, cv_ready;
  std::deque<Batch> ready;
  std::vector<Batch> pool;  // recycled buffers
  bool stop = false;
  std::exception_ptr error;

  // Batch b of the current epoch into out. Pure function of (data, opts,
  // epoch, b): the same bytes whichever thread runs it, whenever.
  void fill(size_t b, Batch& out) const {
    const Dataset& d = *data;
    const size_t start = b * opts.batch_size;
    const size_t n = std::min(opts.batch_size, n_samples - start);
    const size_t k = d.sample_numel();
    const size_t K = static_cast<size_t>(d.num_classes);
    const float e = opts.label_smoothing;
    const float off = K ? e / static_cast<float>(K) : 0.0f;
    const float on = 1.0f - e + off;

    out.size = static_cast<int>(n);
    out.x_shape = d.batch_shape(static_cast<int64_t>(n));
    out.x.resize(n * k);
    out.labels.resize(n);
    out.indices.resize(n);
    out.y_onehot.resize(n * K);
    const int rows = augment ? static_cast<int>(d.sample_shape[0]) : 0;
    const int cols = augment ? static_cast<int>(d.sample_shape[1]) : 0;
    const int chans = augment ? static_cast<int>(d.sample_shape[2]) : 0;
    for (size_t i = 0; i < n; ++i) {
      const size_t idx = order[start + i];
      float* dst = out.x.data() + i * k;
      if (augment)
        augment_image(d.sample(idx), dst, rows, cols, chans, opts.augment, opts.seed,
                      static_cast<uint64_t>(epoch), idx);
      else if (k)
        std::memcpy(dst, d.sample(idx), k * sizeof(float));
      const int label = d.labels[idx];
      out.labels[i] = label;
      out.indices[i] = idx;
      float* y = out.y_onehot.data() + i * K;
      if (label < 0) {
        std::fill(y, y + K, 0.0f);
      } else {
        std::fill(y, y + K, off);
        y[label] = on;
      }
    }
  }

  void run() {
    for (size_t b = 0; b < n_batches; ++b) {
      Batch buf;
      {
        std::unique_lock<std::mutex> lk(m);
        cv_space.wait(lk, [&] { return stop || ready.size() < static_cast<size_t>(opts.prefetch); });
        if (stop) return;
        if (!pool.empty()) {
          buf = std::move(pool.back());
          pool.pop_back();
        }
      }
      try {
        fill(b, buf);
      } catch (...) {
        std::lock_guard<std::mutex> lk(m);
        error = std::current_exception();
        cv_ready.notify_all();
        return;
      }
      {
        std::lock_guard<std::mutex> lk(m);
        if (stop) return;
        ready.push_back(std::move(buf));
      }
      cv_ready.notify_one();
    }
  }

  void stop_worker() {
    {
      std::lock_guard<std::mutex> lk(m);
      stop = true;
    }
    cv_space.notify_all();
    if (worker.joinable()) worker.join();
    stop = false;
    error = nullptr;
    while (!ready.empty()) {
      pool.push_back(std::move(ready.front()));
      ready.pop_front();
    }
  }
};

DataLoader::DataLoader(std::shared_ptr<const Dataset> data, const LoaderOptions& opts)
    : impl_(std::make_unique<Impl>()) {
  JANUS_CHECK(data != nullptr, "DataLoader: null dataset");
  JANUS_CHECK(opts.batch_size > 0, "DataLoader: batch size must be positive");
  JANUS_CHECK(opts.label_smoothing >= 0.0f && opts.label_smoothing < 1.0f, "DataLoader: label smoothing ",
              opts.label_smoothing, " not in [0, 1)");
  data->validate(/*allow_unlabelled=*/true);
  JANUS_CHECK(data->num_classes > 0, "DataLoader: dataset ", data->source, " has no classes");
  impl_->data = std::move(data);
  impl_->opts = opts;
  impl_->opts.prefetch = std::max(1, opts.prefetch);
  const Dataset& d = *impl_->data;
  if (opts.augment.enabled()) {
    JANUS_CHECK(d.sample_shape.rank() == 3, "DataLoader: augmentation needs (rows, cols, channels) images, ",
                d.source, " has samples of ", d.sample_shape.str());
    impl_->augment = true;
  }
  impl_->n_samples = opts.drop_last ? (d.size() / opts.batch_size) * opts.batch_size : d.size();
  impl_->n_batches = (impl_->n_samples + opts.batch_size - 1) / opts.batch_size;
}

DataLoader::DataLoader(const Dataset& data, const LoaderOptions& opts)
    : DataLoader(std::shared_ptr<const Dataset>(&data, [](const Dataset*) {}), opts) {}

DataLoader::~DataLoader() {
  if (impl_) impl_->stop_worker();
}

void DataLoader::start_epoch(int epoch) {
  JANUS_CHECK(epoch >= 0, "DataLoader: epoch must be >= 0, got ", epoch);
  Impl& s = *impl_;
  s.stop_worker();
  s.epoch = epoch;
  s.consumed = 0;
  const size_t n = s.data->size();
  if (s.opts.shuffle) {
    s.order = seeded_permutation(n, s.opts.seed, static_cast<uint64_t>(epoch));
  } else {
    s.order.resize(n);
    for (size_t i = 0; i < n; ++i) s.order[i] = i;
  }
  if (s.opts.background && s.n_batches > 0) s.worker = std::thread([&s] { s.run(); });
}

bool DataLoader::next(Batch& batch) {
  Impl& s = *impl_;
  if (s.epoch < 0) start_epoch(0);
  if (s.consumed >= s.n_batches) return false;
  if (!s.opts.background) {
    s.fill(s.consumed, batch);
    ++s.consumed;
    return true;
  }
  {
    std::unique_lock<std::mutex> lk(s.m);
    s.cv_ready.wait(lk, [&] { return !s.ready.empty() || s.error; });
    if (s.ready.empty()) std::rethrow_exception(s.error);
    std::swap(batch, s.ready.front());
    if (s.pool.size() < static_cast<size_t>(s.opts.prefetch) + 2) s.pool.push_back(std::move(s.ready.front()));
    s.ready.pop_front();
  }
  s.cv_space.notify_one();
  ++s.consumed;
  return true;
}

size_t DataLoader::num_batches() const { return impl_->n_batches; }
size_t DataLoader::num_samples() const { return impl_->n_samples; }
int DataLoader::epoch() const { return impl_->epoch; }
const Dataset& DataLoader::dataset() const { return *impl_->data; }
const LoaderOptions& DataLoader::options() const { return impl_->opts; }

}  // namespace janus
