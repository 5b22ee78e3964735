// HWIO weights <-> cuDNN's KRSC filters: the per-version KRSC copy and the
// filter gradient's transpose (see conv_cudnn_filters.hpp).
#include "cuda/cuda_compat.hpp"

#include "cuda/conv_cudnn_filters.hpp"

#include <algorithm>
#include <utility>

#include "cuda/caching_allocator.hpp"
#include "cuda/kernels.hpp"
#include "cuda/precision_kernels.hpp"
#include "janus/error.hpp"

namespace janus::cuda {

namespace k = ::janus::cuda_kernels;

namespace {

// HWIO as a matrix: rows = KH*KW*C/groups, cols = F; KRSC is its transpose.
int64_t filter_rows(const ConvGeometry& g) { return int64_t{g.KH} * g.KW * g.group_channels(); }

bool same_storage(const std::weak_ptr<const Storage>& a, const std::weak_ptr<const Storage>& b) {
  return !a.owner_before(b) && !b.owner_before(a);
}

}  // namespace

CudnnConvolutions::CudnnConvolutions(std::unique_ptr<CudnnConv> backend, CachingAllocator& allocator,
                                     cudaStream_t stream)
    : backend_(std::move(backend)), alloc_(allocator), stream_(stream) {
  JANUS_CHECK(backend_ != nullptr, "CudnnConvolutions: no backend");
}

CudnnConvolutions::~CudnnConvolutions() {
  // Stream order makes the return safe with passes still queued (the
  // allocator's rule); the backend goes first, as it may hold work of its own.
  backend_.reset();
  for (Entry& e : entries_) alloc_.deallocate(e.krsc);
}

bool CudnnConvolutions::forward(const ConvGeometry& g, const float* x, const Tensor& w, float* y, MathType math) {
  const std::lock_guard<std::mutex> lock(mu_);
  return backend_->forward(g, x, [&] { return krsc_filter(g, w, math); }, y, math != MathType::F32);
}

bool CudnnConvolutions::backward_data(const ConvGeometry& g, const float* dy, const Tensor& w, float* dx,
                                      MathType math) {
  const std::lock_guard<std::mutex> lock(mu_);
  return backend_->backward_data(g, dy, [&] { return krsc_filter(g, w, math); }, dx, math != MathType::F32);
}

bool CudnnConvolutions::backward_filter(const ConvGeometry& g, const float* x, const float* dy, float* dw,
                                        MathType math) {
  const std::lock_guard<std::mutex> lock(mu_);
  const int64_t rows = filter_rows(g);
  // cuDNN writes the gradient KRSC (no filter format is HWIO: see the header).
  float* krsc = static_cast<float*>(alloc_.allocate(sizeof(float) * static_cast<size_t>(rows) * g.F));
  bool ran = false;
  try {
    ran = backend_->backward_filter(g, x, dy, krsc, math != MathType::F32);
    if (ran) k::transpose(krsc, dw, g.F, rows, stream_);  // (F, rows) -> HWIO (rows, F)
  } catch (...) {
    alloc_.deallocate(krsc);
    throw;
  }
  alloc_.deallocate(krsc);
  return ran;
}

size_t CudnnConvolutions::cached_filters() const {
  const std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

const float* CudnnConvolutions::krsc_filter(const ConvGeometry& g, const Tensor& w, MathType math) {
  const int64_t rows = filter_rows(g), cols = g.F;
  JANUS_CHECK(w.numel() == rows * cols, "cuDNN filter: weights ", w.shape().str(), " are not (KH, KW, C/groups, F) = (",
              g.KH, ", ", g.KW, ", ", g.group_channels(), ", ", g.F, ")");
  const std::weak_ptr<const Storage> storage = w.storage_ref();
  const float* hwio = w.const_f32();  // reading must not advance the version
  const uint64_t version = w.version();
  const auto find = [&] {
    return std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) {
      return e.weights == hwio && e.rows == rows && e.cols == cols && e.math == math &&
             same_storage(e.storage, storage);
    });
  };
  auto it = find();
  if (it != entries_.end() && it->version == version) return it->krsc;
  drop_expired();  // the copies of freed weights go back (w's own storage is alive)
  it = find();
  if (it == entries_.end()) {
    Entry e;
    e.storage = storage;
    e.weights = hwio;
    e.rows = rows;
    e.cols = cols;
    e.math = math;
    e.krsc = static_cast<float*>(alloc_.allocate(sizeof(float) * static_cast<size_t>(rows * cols)));
    entries_.push_back(std::move(e));
    it = entries_.end() - 1;
  }
  // HWIO (rows, F) -> KRSC (F, rows); in tf32 / bf16 rounded in place
  // (rounding commutes with the transpose), so the passes read exactly the
  // operands CudaDevice's MatmulInput would have given them.
  k::transpose(hwio, it->krsc, rows, cols, stream_);
  if (math == MathType::TF32) k::round_to_tf32(it->krsc, it->krsc, rows * cols, stream_);
  if (math == MathType::BF16) k::round_to_bf16(it->krsc, it->krsc, rows * cols, stream_);
  it->version = version;
  return it->krsc;
}

void CudnnConvolutions::drop_expired() {
  auto dead = std::stable_partition(entries_.begin(), entries_.end(), [](const Entry& e) { return !e.storage.expired(); });
  for (auto it = dead; it != entries_.end(); ++it) alloc_.deallocate(it->krsc);
  entries_.erase(dead, entries_.end());
}

}  // namespace janus::cuda
