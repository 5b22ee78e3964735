// FastCpuDevice: threads, workspace, storage cache and the accel_* hooks.
#include "cpu/fast_device.hpp"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <string>
#include <type_traits>

#include "core/env_settings.hpp"
#include "cpu/fast_elementwise.hpp"
#include "cpu/fast_kernels.hpp"
#include "cpu/kernels.hpp"
#include "cpu/onednn_conv.hpp"
#include "cpu/simd_kernels.hpp"
#include "janus/error.hpp"
#include "janus/precision.hpp"

namespace janus {

namespace {

constexpr std::align_val_t kAlignment{64};

// Element-wise work below this many elements runs on one thread.
constexpr int64_t kParallelElems = 1 << 15;

// As CpuDevice's dispatch: BF16 never gets here (check_args refuses it).
template <class Fn>
bool dispatch(DType dt, Fn&& fn) {
  switch (dt) {
    case DType::F32: fn(float{}); break;
    case DType::F64: fn(double{}); break;
    case DType::BF16: throw Error("cpu: bfloat16 reached a kernel dispatch (check_args refuses it)");
  }
  return true;
}

// Runs fn(lo, hi) over [0, n) split into one contiguous slice per thread, or
// on one thread when the work (in elements; n by default) is small. Slices are
// multiples of `align` items.
template <class Fn>
void parallel_slices(int threads, int64_t n, Fn&& fn, int64_t align = 16, int64_t work = -1) {
  if (threads <= 1 || (work < 0 ? n : work) < kParallelElems || n < 2) {
    fn(int64_t{0}, n);
    return;
  }
  const int64_t per = ((n + threads - 1) / threads + align - 1) / align * align;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int t = 0; t < threads; ++t) {
    const int64_t lo = std::min<int64_t>(t * per, n), hi = std::min<int64_t>(lo + per, n);
    if (lo < hi) fn(lo, hi);
  }
}

// parallel_slices on the device's TaskTeam instead of OpenMP: for the
// operations of dense layers, which come back to back in a training step and
// are small enough that waking a passive OpenMP thread for each would cost
// about as much as the work (see task_team.hpp). Slices depend only on n and
// the team size, and each is written by one task, so results are as
// deterministic as with parallel_slices.
template <class Fn>
void team_slices(fast::TaskTeam& team, int64_t n, Fn&& fn, int64_t align = 16, int64_t work = -1) {
  const int parts = team.threads();
  if (parts <= 1 || (work < 0 ? n : work) < kParallelElems || n < 2) {
    fn(int64_t{0}, n);
    return;
  }
  const int64_t per = ((n + parts - 1) / parts + align - 1) / align * align;
  team.run((n + per - 1) / per, [&](int64_t t) {
    const int64_t lo = t * per;
    fn(lo, std::min(lo + per, n));
  });
}

int thread_count() {
  return env::requested_thread_count().value_or(std::max(1, omp_get_num_procs()));
}

size_t cache_limit() {
  static const size_t limit = [] {
    const int64_t mb = env::integer("JANUS_CPU_CACHE_MB", 0, int64_t{1} << 20, 1024, "(megabytes; 0: no cache)");
    return static_cast<size_t>(mb) << 20;
  }();
  return limit;
}

// Blocks smaller than this go straight back to malloc, which is fast for them.
constexpr size_t kCacheMinBytes = 64 * 1024;

// JANUS_CPU_CONV: the oneDNN algorithm policy ("auto", the default,
// "direct", "winograd"; "onednn" is "auto"), or nothing for "im2col".
std::optional<onednn::ConvAlgorithm> onednn_convolution_policy() {
  using Policy = std::optional<onednn::ConvAlgorithm>;
  return env::choice<Policy>("JANUS_CPU_CONV",
                             {{"auto", onednn::ConvAlgorithm::Auto},
                              {"direct", onednn::ConvAlgorithm::Direct},
                              {"winograd", onednn::ConvAlgorithm::Winograd},
                              {"im2col", std::nullopt},
                              {"onednn", onednn::ConvAlgorithm::Auto}},
                             onednn::ConvAlgorithm::Auto);
}

// JANUS_CPU_BF16: the convolution passes that run oneDNN's bf16 kernels in
// bf16 precision where the CPU has them ("auto", the default: see
// FastCpuDevice::native_bf16; "all", "none", or a comma-separated list of
// forward, backward_data, backward_weights); the others emulate bf16 on the
// float32 kernels. One bit per OneDnnConv::Pass; kAutoBf16 marks "auto".
constexpr unsigned kAutoBf16 = 8u;
unsigned native_bf16_passes() {
  const std::string v = env::string_setting("JANUS_CPU_BF16").value_or("auto");
  if (v == "auto") return kAutoBf16;
  if (v == "all") return 7u;
  if (v == "none") return 0u;
  unsigned mask = 0;
  size_t start = 0;
  while (start <= v.size()) {
    const size_t end = std::min(v.find(',', start), v.size());
    const std::string item = v.substr(start, end - start);
    if (item == "forward") mask |= 1u << static_cast<int>(onednn::OneDnnConv::Pass::Forward);
    else if (item == "backward_data") mask |= 1u << static_cast<int>(onednn::OneDnnConv::Pass::BackwardData);
    else if (item == "backward_weights") mask |= 1u << static_cast<int>(onednn::OneDnnConv::Pass::BackwardWeights);
    else
      env::refuse("JANUS_CPU_BF16", v, "auto, all, none or a comma-separated list of forward, backward_data, "
                                       "backward_weights");
    start = end + 1;
  }
  return mask;
}

}  // namespace

FastCpuDevice::FastCpuDevice() : threads_(thread_count()), team_(threads_) {
  // One BLAS thread per caller: parallelism comes from OpenMP and team_ here.
  openblas_set_num_threads(1);
  if (const auto policy = onednn_convolution_policy())
    onednn_ = std::make_unique<onednn::OneDnnConv>(threads_, onednn::WeightsLayout::Any, *policy);
  native_bf16_passes_ = native_bf16_passes();
}

FastCpuDevice::~FastCpuDevice() {
  release_cache();
  if (workspace_) ::operator delete(workspace_, kAlignment);
}

// ---- memory ---------------------------------------------------------------------

void* FastCpuDevice::allocate(size_t bytes) {
  if (bytes >= kCacheMinBytes) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto it = cache_.find(bytes);
    if (it != cache_.end()) {
      void* p = it->second;
      cache_.erase(it);
      cached_bytes_ -= bytes;
      return p;
    }
  }
  try {
    return ::operator new(bytes, kAlignment);
  } catch (const std::bad_alloc&) {
    release_cache();  // the cache may hold what this allocation needs
    return ::operator new(bytes, kAlignment);
  }
}

void FastCpuDevice::deallocate(void* ptr, size_t bytes) {
  if (!ptr) return;
  if (bytes >= kCacheMinBytes) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cached_bytes_ + bytes <= cache_limit()) {
      cache_.emplace(bytes, ptr);
      cached_bytes_ += bytes;
      return;
    }
  }
  ::operator delete(ptr, kAlignment);
}

void FastCpuDevice::release_cache() {
  std::lock_guard<std::mutex> lock(cache_mutex_);
  for (auto& [bytes, p] : cache_) ::operator delete(p, kAlignment);
  cache_.clear();
  cached_bytes_ = 0;
}

void* FastCpuDevice::workspace(size_t bytes) {
  if (bytes > workspace_bytes_) {
    if (workspace_) ::operator delete(workspace_, kAlignment);
    workspace_ = nullptr;
    workspace_bytes_ = 0;
    workspace_ = ::operator new(bytes, kAlignment);
    workspace_bytes_ = bytes;
  }
  return workspace_;
}

// ---- elementwise and BLAS-like ------------------------------------------------------

bool FastCpuDevice::accel_fill(DType dt, Tensor& x, double value) {
  return dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    T* p = x.data<T>();
    parallel_slices(threads_, x.numel(), [&](int64_t lo, int64_t hi) { cpu::fill<T>(hi - lo, value, p + lo); });
  });
}

bool FastCpuDevice::accel_axpby(DType dt, double alpha, const Tensor& x, double beta, Tensor& y) {
  return dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    parallel_slices(threads_, x.numel(), [&](int64_t lo, int64_t hi) {
      cpu::axpby<T>(hi - lo, alpha, xp + lo, beta, yp + lo);
    });
  });
}

bool FastCpuDevice::accel_multiply(DType dt, const Tensor& a, const Tensor& b, Tensor& out) {
  return dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    const T *ap = a.data<T>(), *bp = b.data<T>();
    T* op = out.data<T>();
    parallel_slices(threads_, a.numel(), [&](int64_t lo, int64_t hi) {
      cpu::multiply<T>(hi - lo, ap + lo, bp + lo, op + lo);
    });
  });
}

// ---- bf16 precision ------------------------------------------------------------------

bool FastCpuDevice::native_bf16(onednn::OneDnnConv::Pass pass, const ConvGeometry& g) const {
  if (!onednn_) return false;
  if (native_bf16_passes_ != kAutoBf16) return (native_bf16_passes_ >> static_cast<int>(pass) & 1u) != 0;
  // auto: forward and backward-data always (1.4-3.3x faster than float32 on
  // the CIFAR layers); backward-weights only on maps of at least 16x16 and
  // at least 16 input channels. Measured per pass (bench_conv_passes, 16
  // threads, AMX, batch 128): bf16 backward-weights took 1.02 / 0.68 / 1.24 ms
  // against 2.17 / 1.19 / 1.63 ms in float32 (+0.3-0.6 ms of rounding) on
  // 32->32@32, 32->64@16, 64->64@16, but 1.03 / 1.78 ms against 0.86 / 1.42
  // ms on 64->128@8, 128->128@8 and 0.57 against 0.24 ms on the 3-channel
  // input layer. The rule depends on the geometry only (reproducible runs).
  if (pass != onednn::OneDnnConv::Pass::BackwardWeights) return true;
  return int64_t{g.OH} * g.OW >= 256 && g.C >= 16;
}

std::string cpu_bf16_path() {
  return onednn::has_native_bf16()
             ? "oneDNN bf16 convolutions (the CPU has AVX512-BF16); dense GEMMs on bf16-rounded inputs"
             : "emulated: inputs rounded to bf16, float32 kernels (no AVX512-BF16 on this CPU; same "
               "numerics, no speed-up)";
}

bool FastCpuDevice::bf16_inputs(DType dt) {
  return dt == DType::F32 && input_math(matmul_precision(), OpClass::Matmul) == MathType::BF16;
}

template <class T>
const T* FastCpuDevice::matmul_input(const Tensor& t, int slot) {
  if constexpr (std::is_same_v<T, float>) {
    if (bf16_inputs(DType::F32)) {
      auto* copy = static_cast<float*>(bf16_copies_[static_cast<size_t>(slot)].get(
          static_cast<size_t>(t.numel()) * sizeof(float)));
      round_to_bf16(t.data<float>(), copy, t.numel());
      return copy;
    }
  }
  return t.data<T>();
}

bool FastCpuDevice::accel_gemm(DType dt, bool trans_a, bool trans_b, int64_t M, int64_t N,
                               int64_t K, double alpha, const Tensor& a, const Tensor& b,
                               double beta, Tensor& c) {
  std::lock_guard<std::mutex> lock(ws_mutex_);  // for the bf16 copies
  return dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    fast::parallel_gemm<T>(team_, trans_a, trans_b, M, N, K, alpha, matmul_input<T>(a, 0),
                           matmul_input<T>(b, 1), beta, c.data<T>());
  });
}

bool FastCpuDevice::accel_add_bias(DType dt, int64_t rows, int64_t cols, Tensor& y,
                                   const Tensor& bias) {
  return dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    T* yp = y.data<T>();
    const T* bp = bias.data<T>();
    // Slices of whole rows.
    team_slices(team_, rows, [&](int64_t lo, int64_t hi) {
      cpu::add_bias<T>(hi - lo, cols, bp, yp + lo * cols);
    }, 1, rows * cols);
  });
}

bool FastCpuDevice::accel_sum_rows(DType dt, int64_t rows, int64_t cols, const Tensor& x,
                                   double beta, Tensor& out) {
  if (team_.threads() <= 1 || rows * cols < kParallelElems || cols > 4096) return false;
  return dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    T* op = out.data<T>();
    // Column sums in double (as the reference) over one slice of rows per
    // team thread, then combined in slice order: deterministic.
    const int64_t parts = team_.threads(), per = (rows + parts - 1) / parts;
    const int64_t slices = (rows + per - 1) / per;
    std::lock_guard<std::mutex> lock(ws_mutex_);
    double* acc = static_cast<double*>(workspace(sizeof(double) * cols * slices));
    team_.run(slices, [&](int64_t t) {
      fast::column_sums(t * per, std::min(rows, (t + 1) * per), cols, xp, acc + t * cols);
    });
    for (int64_t c = 0; c < cols; ++c) {
      double s = 0.0;
      for (int64_t t = 0; t < slices; ++t) s += acc[t * cols + c];
      op[c] = static_cast<T>(beta == 0.0 ? s : s + beta * op[c]);
    }
  });
}

// ---- activations ---------------------------------------------------------------------

bool FastCpuDevice::accel_activation_forward(DType dt, const ActivationFunction& act,
                                             int64_t rows, int64_t cols, const Tensor& z,
                                             Tensor& y) {
  return dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    const T* zp = z.data<T>();
    T* yp = y.data<T>();
    if (act.kind == ActivationKind::SoftMax) {  // whole rows per slice
      team_slices(team_, rows, [&](int64_t lo, int64_t hi) {
        cpu::activation_forward<T>(act, hi - lo, cols, zp + lo * cols, yp + lo * cols);
      }, 1, rows * cols);
      return;
    }
    // ReLU has a cloned vector kernel; the others run the reference kernel
    // on each slice (the same arithmetic, so bit-identical).
    team_slices(team_, rows * cols, [&](int64_t lo, int64_t hi) {
      if (act.kind == ActivationKind::ReLU) {
        fast::relu_forward(hi - lo, zp + lo, yp + lo);
      } else {
        cpu::activation_forward<T>(act, 1, hi - lo, zp + lo, yp + lo);
      }
    });
  });
}

bool FastCpuDevice::accel_bias_activation_forward(DType dt, const ActivationFunction& act,
                                                  int64_t rows, int64_t cols, Tensor& z,
                                                  const Tensor& bias, Tensor& y) {
  return dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    T* zp = z.data<T>();
    T* yp = y.data<T>();
    const T* bp = bias.data<T>();
    // Slices of whole rows (SoftMax needs them); within a slice, ReLU is one
    // fused pass, the others add the bias and apply the reference kernel to
    // the slice while it is still in the cache.
    team_slices(team_, rows, [&](int64_t lo, int64_t hi) {
      T* zs = zp + lo * cols;
      T* ys = yp + lo * cols;
      if (act.kind == ActivationKind::ReLU) {
        fast::bias_relu_forward(hi - lo, cols, bp, zs, ys);
      } else {
        cpu::add_bias<T>(hi - lo, cols, bp, zs);
        cpu::activation_forward<T>(act, hi - lo, cols, zs, ys);
      }
    }, 1, rows * cols);
  });
}

bool FastCpuDevice::accel_activation_backward(DType dt, const ActivationFunction& act,
                                              int64_t rows, int64_t cols, const Tensor* saved,
                                              const Tensor& dy, Tensor& dz) {
  return dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    const T* sp = saved ? saved->data<T>() : nullptr;
    const T* dyp = dy.data<T>();
    T* dzp = dz.data<T>();
    if (act.kind == ActivationKind::SoftMax) {
      team_slices(team_, rows, [&](int64_t lo, int64_t hi) {
        const int64_t o = lo * cols;
        cpu::activation_backward<T>(act, hi - lo, cols, sp + o, dyp + o, dzp + o);
      }, 1, rows * cols);
      return;
    }
    team_slices(team_, rows * cols, [&](int64_t lo, int64_t hi) {
      if (act.kind == ActivationKind::ReLU) {  // sp is y: y > 0 exactly where z > 0
        fast::relu_backward(hi - lo, sp + lo, dyp + lo, dzp + lo);
      } else {
        cpu::activation_backward<T>(act, 1, hi - lo, sp ? sp + lo : nullptr, dyp + lo, dzp + lo);
      }
    });
  });
}

// ---- convolution and pooling ------------------------------------------------------------

// The im2col + OpenBLAS kernels (fast_conv.cpp) run ungrouped convolutions
// only. A grouped one that oneDNN does not run (float64, JANUS_CPU_CONV=im2col,
// or a geometry oneDNN declines) runs the reference loops instead, on the same
// (possibly bf16-rounded) inputs: slower, never wrong.
constexpr const char* kGroupedFallback = "reference loops (grouped: im2col + OpenBLAS has no groups)";

std::string FastCpuDevice::accel_conv2d_kernel(DType dt, const ConvGeometry& g) {
  std::string kernel = g.groups > 1 ? kGroupedFallback : "im2col + OpenBLAS";
  if (dt == DType::F32 && onednn_) {
    std::lock_guard<std::mutex> lock(ws_mutex_);
    using onednn::InputType;
    if (bf16_inputs(dt) && native_bf16(onednn::OneDnnConv::Pass::Forward, g)) {
      const std::string impl = onednn_->implementation(onednn::OneDnnConv::Pass::Forward, g, false,
                                                       false, InputType::BF16);
      if (!impl.empty()) return "oneDNN bf16 direct (" + impl + ")";
    }
    const std::string impl = onednn_->implementation(onednn::OneDnnConv::Pass::Forward, g);
    if (!impl.empty())
      kernel = (impl.find("wino") != std::string::npos ? "oneDNN Winograd (" : "oneDNN direct (") +
               impl + ")";
  }
  return bf16_inputs(dt) ? "bf16 emulated: rounded inputs on " + kernel : kernel;
}

bool FastCpuDevice::accel_conv2d_forward(DType dt, const ConvGeometry& g, const Tensor& x,
                                         const Tensor& w, const Tensor* bias, Tensor& y) {
  std::lock_guard<std::mutex> lock(ws_mutex_);
  // bf16: oneDNN's bf16 kernels where the CPU has them, else (below) the
  // float32 kernels on bf16-rounded copies of x and w.
  if (bf16_inputs(dt) && native_bf16(onednn::OneDnnConv::Pass::Forward, g) &&
      onednn_->forward(g, x.data<float>(), w.data<float>(), bias ? bias->data<float>() : nullptr,
                       y.data<float>(), false, onednn::InputType::BF16))
    return true;
  return dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    const T *xp = matmul_input<T>(x, 0), *wp = matmul_input<T>(w, 1);
    if constexpr (std::is_same_v<T, float>) {
      if (onednn_ && onednn_->forward(g, xp, wp, bias ? bias->data<float>() : nullptr,
                                      y.data<float>()))
        return;
    }
    // F64, im2col, or a geometry oneDNN declined
    if (g.groups > 1)  // kGroupedFallback
      return cpu::conv2d_forward<T>(g, xp, wp, bias ? bias->data<T>() : nullptr, y.data<T>());
    void* ws = workspace(fast::conv_workspace_bytes<T>(fast::ConvPass::Forward, g, threads_));
    fast::conv2d_forward<T>(g, xp, wp, bias ? bias->data<T>() : nullptr, y.data<T>(), threads_, ws);
  });
}

bool FastCpuDevice::accel_conv2d_activation_forward(DType dt, const ActivationFunction& act,
                                                    const ConvGeometry& g, const Tensor& x,
                                                    const Tensor& w, const Tensor* bias,
                                                    Tensor& y) {
  // Only ReLU has a oneDNN post-op that rounds exactly as relu_forward does
  // (max(v, 0) is exact); the others decline and run conv2d_forward, then
  // their activation kernel in place.
  // Grouped convolutions decline too: oneDNN's grouped kernels do not all give
  // bit-identical results with the post-op (a 1x1 layer of 3 groups on its
  // GEMM-based kernel differs in the last bit, test_fast_cpu), so they run the
  // unfused definition.
  if (dt != DType::F32 || !onednn_ || act.kind != ActivationKind::ReLU || g.groups > 1) return false;
  std::lock_guard<std::mutex> lock(ws_mutex_);
  const float* b = bias ? bias->data<float>() : nullptr;
  if (bf16_inputs(dt)) {  // native bf16, or decline: conv2d_forward then emulates
    if (!native_bf16(onednn::OneDnnConv::Pass::Forward, g)) return false;
    return onednn_->forward(g, x.data<float>(), w.data<float>(), b, y.data<float>(),
                            /*relu=*/true, onednn::InputType::BF16);
  }
  return onednn_->forward(g, x.data<float>(), w.data<float>(), b, y.data<float>(), /*relu=*/true);
}

bool FastCpuDevice::accel_conv2d_backward_data(DType dt, const ConvGeometry& g, const Tensor& dy,
                                               const Tensor& w, Tensor& dx) {
  std::lock_guard<std::mutex> lock(ws_mutex_);
  if (bf16_inputs(dt) && native_bf16(onednn::OneDnnConv::Pass::BackwardData, g) &&
      onednn_->backward_data(g, dy.data<float>(), w.data<float>(), dx.data<float>(),
                             onednn::InputType::BF16))
    return true;
  return dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    const T *dyp = matmul_input<T>(dy, 0), *wp = matmul_input<T>(w, 1);
    if constexpr (std::is_same_v<T, float>) {
      if (onednn_ && onednn_->backward_data(g, dyp, wp, dx.data<float>())) return;
    }
    if (g.groups > 1) return cpu::conv2d_backward_data<T>(g, dyp, wp, dx.data<T>());  // kGroupedFallback
    void* ws = workspace(fast::conv_workspace_bytes<T>(fast::ConvPass::BackwardData, g, threads_));
    fast::conv2d_backward_data<T>(g, dyp, wp, dx.data<T>(), threads_, ws);
  });
}

bool FastCpuDevice::accel_conv2d_backward_filter(DType dt, const ConvGeometry& g, const Tensor& x,
                                                 const Tensor& dy, Tensor& dw) {
  std::lock_guard<std::mutex> lock(ws_mutex_);
  if (bf16_inputs(dt) && native_bf16(onednn::OneDnnConv::Pass::BackwardWeights, g) &&
      onednn_->backward_weights(g, x.data<float>(), dy.data<float>(), dw.data<float>(),
                                onednn::InputType::BF16))
    return true;
  return dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    const T *xp = matmul_input<T>(x, 0), *dyp = matmul_input<T>(dy, 1);
    if constexpr (std::is_same_v<T, float>) {
      if (onednn_ && onednn_->backward_weights(g, xp, dyp, dw.data<float>())) return;
    }
    if (g.groups > 1) return cpu::conv2d_backward_filter<T>(g, xp, dyp, dw.data<T>());  // kGroupedFallback
    void* ws =
        workspace(fast::conv_workspace_bytes<T>(fast::ConvPass::BackwardFilter, g, threads_));
    fast::conv2d_backward_filter<T>(g, xp, dyp, dw.data<T>(), threads_, ws);
  });
}

bool FastCpuDevice::accel_pool2d_forward(DType dt, PoolMode mode, const PoolGeometry& g,
                                         const Tensor& x, Tensor& y) {
  return dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    fast::pool2d_forward<T>(mode, g, x.data<T>(), y.data<T>(), team_);
  });
}

bool FastCpuDevice::accel_pool2d_backward(DType dt, PoolMode mode, const PoolGeometry& g,
                                          const Tensor& x, const Tensor& dy, Tensor& dx) {
  return dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    fast::pool2d_backward<T>(mode, g, x.data<T>(), dy.data<T>(), dx.data<T>(), team_);
  });
}

// ---- batch normalisation and optimizers ---------------------------------------------------

// Each BatchNorm operation and its fused BatchNorm+ReLU form share one body
// (the *_impl functions below): the fused form only passes relu = true (or
// the output y for the backward mask), so it is bit-identical to BatchNorm
// followed by ReLU, and both take the same size threshold.

bool FastCpuDevice::batchnorm_eval_impl(DType dt, int64_t rows, int64_t C, const Tensor& x,
                                        const Tensor& gamma, const Tensor& beta,
                                        const Tensor& mean, const Tensor& var, double eps,
                                        Tensor& y, bool relu) {
  if (rows * C < kParallelElems) return false;
  return dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    std::lock_guard<std::mutex> lock(ws_mutex_);
    fast::batchnorm_forward_eval<T>(rows, C, x.data<T>(), gamma.data<T>(), beta.data<T>(),
                                    mean.data<T>(), var.data<T>(), eps, y.data<T>(), team_,
                                    workspace(sizeof(double) * static_cast<size_t>(C)), relu);
  });
}

bool FastCpuDevice::batchnorm_train_impl(DType dt, int64_t rows, int64_t C, const Tensor& x,
                                         const Tensor& gamma, const Tensor& beta,
                                         double momentum, double eps, Tensor& running_mean,
                                         Tensor& running_var, Tensor& saved_mean,
                                         Tensor& saved_invstd, Tensor& y, bool relu) {
  if (rows * C < kParallelElems) return false;
  return dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    std::lock_guard<std::mutex> lock(ws_mutex_);
    void* ws = workspace(fast::batchnorm_workspace_bytes(rows, C));
    fast::batchnorm_forward_train<T>(rows, C, x.data<T>(), gamma.data<T>(), beta.data<T>(),
                                     momentum, eps, running_mean.data<T>(),
                                     running_var.data<T>(), saved_mean.data<T>(),
                                     saved_invstd.data<T>(), y.data<T>(), team_, ws, relu);
  });
}

bool FastCpuDevice::batchnorm_backward_impl(DType dt, int64_t rows, int64_t C, const Tensor& x,
                                            const Tensor* relu_y, const Tensor& dy,
                                            const Tensor& gamma, const Tensor& saved_mean,
                                            const Tensor& saved_invstd, Tensor& dx,
                                            Tensor& dgamma, Tensor& dbeta) {
  if (rows * C < kParallelElems) return false;
  return dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    std::lock_guard<std::mutex> lock(ws_mutex_);
    void* ws = workspace(fast::batchnorm_workspace_bytes(rows, C));
    fast::batchnorm_backward<T>(rows, C, x.data<T>(), dy.data<T>(), gamma.data<T>(),
                                saved_mean.data<T>(), saved_invstd.data<T>(), dx.data<T>(),
                                dgamma.data<T>(), dbeta.data<T>(), team_, ws,
                                relu_y ? relu_y->data<T>() : nullptr);
  });
}

bool FastCpuDevice::accel_batchnorm_forward_eval(DType dt, int64_t rows, int64_t C,
                                                 const Tensor& x, const Tensor& gamma,
                                                 const Tensor& beta, const Tensor& mean,
                                                 const Tensor& var, double eps, Tensor& y) {
  return batchnorm_eval_impl(dt, rows, C, x, gamma, beta, mean, var, eps, y, /*relu=*/false);
}

bool FastCpuDevice::accel_batchnorm_relu_forward_eval(DType dt, int64_t rows, int64_t C,
                                                      const Tensor& x, const Tensor& gamma,
                                                      const Tensor& beta, const Tensor& mean,
                                                      const Tensor& var, double eps, Tensor& y) {
  return batchnorm_eval_impl(dt, rows, C, x, gamma, beta, mean, var, eps, y, /*relu=*/true);
}

bool FastCpuDevice::accel_batchnorm_forward_train(DType dt, int64_t rows, int64_t C,
                                                  const Tensor& x, const Tensor& gamma,
                                                  const Tensor& beta, double momentum, double eps,
                                                  Tensor& running_mean, Tensor& running_var,
                                                  Tensor& saved_mean, Tensor& saved_invstd,
                                                  Tensor& y) {
  return batchnorm_train_impl(dt, rows, C, x, gamma, beta, momentum, eps, running_mean,
                              running_var, saved_mean, saved_invstd, y, /*relu=*/false);
}

bool FastCpuDevice::accel_batchnorm_relu_forward_train(DType dt, int64_t rows, int64_t C,
                                                       const Tensor& x, const Tensor& gamma,
                                                       const Tensor& beta, double momentum,
                                                       double eps, Tensor& running_mean,
                                                       Tensor& running_var, Tensor& saved_mean,
                                                       Tensor& saved_invstd, Tensor& y) {
  return batchnorm_train_impl(dt, rows, C, x, gamma, beta, momentum, eps, running_mean,
                              running_var, saved_mean, saved_invstd, y, /*relu=*/true);
}

bool FastCpuDevice::accel_batchnorm_backward(DType dt, int64_t rows, int64_t C, const Tensor& x,
                                             const Tensor& dy, const Tensor& gamma,
                                             const Tensor& saved_mean,
                                             const Tensor& saved_invstd, Tensor& dx,
                                             Tensor& dgamma, Tensor& dbeta) {
  return batchnorm_backward_impl(dt, rows, C, x, /*relu_y=*/nullptr, dy, gamma, saved_mean,
                                 saved_invstd, dx, dgamma, dbeta);
}

bool FastCpuDevice::accel_batchnorm_relu_backward(DType dt, int64_t rows, int64_t C,
                                                  const Tensor& x, const Tensor& y,
                                                  const Tensor& dy, const Tensor& gamma,
                                                  const Tensor& saved_mean,
                                                  const Tensor& saved_invstd, Tensor& dx,
                                                  Tensor& dgamma, Tensor& dbeta) {
  return batchnorm_backward_impl(dt, rows, C, x, &y, dy, gamma, saved_mean, saved_invstd, dx,
                                 dgamma, dbeta);
}

bool FastCpuDevice::accel_sgd_update(DType dt, Tensor& w, const Tensor& g, Tensor* velocity,
                                     double lr, double momentum, double weight_decay,
                                     bool nesterov) {
  return dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    T* wp = w.data<T>();
    const T* gp = g.data<T>();
    T* vp = velocity ? velocity->data<T>() : nullptr;
    team_slices(team_, w.numel(), [&](int64_t lo, int64_t hi) {
      fast::sgd_update(hi - lo, wp + lo, gp + lo, vp ? vp + lo : nullptr, lr, momentum,
                       weight_decay, nesterov);
    });
  });
}

bool FastCpuDevice::accel_adam_update(DType dt, Tensor& w, const Tensor& g, Tensor& m, Tensor& v,
                                      double lr, double beta1, double beta2, double eps,
                                      double weight_decay, bool decoupled, int64_t step) {
  return dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    T *wp = w.data<T>(), *mp = m.data<T>(), *vp = v.data<T>();
    const T* gp = g.data<T>();
    parallel_slices(threads_, w.numel(), [&](int64_t lo, int64_t hi) {
      cpu::adam_update<T>(hi - lo, wp + lo, gp + lo, mp + lo, vp + lo, lr, beta1, beta2, eps,
                          weight_decay, decoupled, step);
    });
  });
}

// Never destroyed: tensors with static storage duration elsewhere may free
// their memory through it during exit, after this function's statics die.
Device& cpu_device() {
  static FastCpuDevice* device = new FastCpuDevice;
  return *device;
}

}  // namespace janus
