// cuDNN convolutions on KRSC filters (real GPUs only; see conv_cudnn.hpp).
// Compiled to nothing under the simulator, which has no cuDNN.
#include "cuda/cuda_compat.hpp"

#if !defined(JANUS_CUDA_SIM)

#include <cudnn.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include "cuda/caching_allocator.hpp"
#include "cuda/conv_algo_choice.hpp"
#include "cuda/conv_cudnn.hpp"
#include "cuda/cuda_check.hpp"
#include "janus/error.hpp"

namespace janus::cuda {

namespace {

constexpr size_t kMaxWorkspace = size_t{512} << 20;  // per-call algorithm workspace limit

using Key = std::tuple<int, int, int, int, int, int, int, int, int, int, int, int, int>;
Key key_of(const ConvGeometry& g, cudnnMathType_t math) {
  return Key{g.N,       g.H,     g.W,     g.C,      g.KH, g.KW, g.F, g.stride_h, g.stride_w,
             g.pad_h,   g.pad_w, g.groups, static_cast<int>(math)};
}

// The math type a plan's convolution descriptor carries: in fp32 true FP32
// (FMA kernels only; CUDNN_DEFAULT_MATH permits TF32 tensor cores on Ampere
// and later), so results stay within the CPU parity bounds; in tf32 and bf16
// tensor-op math (TF32 tensor cores) on inputs the caller rounded.
cudnnMathType_t math_type(bool tensor_op) { return tensor_op ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH; }
const char* cudnn_math_name(cudnnMathType_t m) { return m == CUDNN_TENSOR_OP_MATH ? "tensor-op math" : "FMA math"; }

const char* algo_name(cudnnConvolutionFwdAlgo_t a) {
  switch (a) {
    case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM: return "IMPLICIT_GEMM";
    case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM: return "IMPLICIT_PRECOMP_GEMM";
    case CUDNN_CONVOLUTION_FWD_ALGO_GEMM: return "GEMM";
    case CUDNN_CONVOLUTION_FWD_ALGO_DIRECT: return "DIRECT";
    case CUDNN_CONVOLUTION_FWD_ALGO_FFT: return "FFT";
    case CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING: return "FFT_TILING";
    case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD: return "WINOGRAD";
    case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED: return "WINOGRAD_NONFUSED";
    default: return "UNKNOWN";
  }
}
bool is_transform(cudnnConvolutionFwdAlgo_t a) {
  return a == CUDNN_CONVOLUTION_FWD_ALGO_FFT || a == CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING ||
         a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD || a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
}
const char* algo_name(cudnnConvolutionBwdDataAlgo_t a) {
  switch (a) {
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_0: return "ALGO_0";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_1: return "ALGO_1";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT: return "FFT";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING: return "FFT_TILING";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD: return "WINOGRAD";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED: return "WINOGRAD_NONFUSED";
    default: return "UNKNOWN";
  }
}
bool is_transform(cudnnConvolutionBwdDataAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT || a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING ||
         a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD || a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED;
}
const char* algo_name(cudnnConvolutionBwdFilterAlgo_t a) {
  switch (a) {
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0: return "ALGO_0";
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1: return "ALGO_1";
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT: return "FFT";
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3: return "ALGO_3";
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD: return "WINOGRAD";
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED: return "WINOGRAD_NONFUSED";
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING: return "FFT_TILING";
    default: return "UNKNOWN";
  }
}
bool is_transform(cudnnConvolutionBwdFilterAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT || a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING ||
         a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD ||
         a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED;
}

// cuDNN's ranked list (any of the three AlgoPerf structs) in cuDNN-free terms.
template <class Perf>
std::vector<AlgoCandidate> candidates_of(const std::vector<Perf>& perfs, int count, cudnnMathType_t math) {
  std::vector<AlgoCandidate> out;
  for (int i = 0; i < count; ++i) {
    const Perf& p = perfs[static_cast<size_t>(i)];
    AlgoCandidate c;
    c.algo = static_cast<int>(p.algo);
    c.name = algo_name(p.algo);
    c.status_ok = p.status == CUDNN_STATUS_SUCCESS;
    c.math_matches = p.mathType == math;
    c.workspace = p.memory;
    c.deterministic = p.determinism == CUDNN_DETERMINISTIC;
    c.transform = is_transform(p.algo);
    out.push_back(std::move(c));
  }
  return out;
}

enum Direction { kForward = 0, kBackwardData = 1, kBackwardFilter = 2 };
const char* direction_name(int d) {
  return d == kForward ? "forward" : d == kBackwardData ? "backward-data" : "backward-filter";
}

// One direction of one geometry: the candidates in order, and which one runs.
struct Choice {
  AlgoRanking ranking;
  int chosen = 0;       // index into ranking.order; -1: no cuDNN algorithm works, Janus's own kernel
  bool logged = false;  // the choice has been logged (JANUS_CUDNN_LOG)
  std::vector<std::string> failures;
};

struct Plan {
  cudnnMathType_t math = CUDNN_FMA_MATH;
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  Choice choice[3];
  ~Plan() {
    if (x) cudnnDestroyTensorDescriptor(x);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
  }
};

std::string geometry_str(const ConvGeometry& g) {
  return detail::concat("N", g.N, " ", g.H, "x", g.W, "x", g.C, " -> ", g.F, " k", g.KH, "x", g.KW, " s", g.stride_h,
                        ",", g.stride_w, " p", g.pad_h, ",", g.pad_w, g.groups > 1 ? detail::concat(" g", g.groups) : "");
}

// Status of a cuDNN call that may legitimately refuse a shape: NOT_SUPPORTED
// (and BAD_PARAM, which some engines return for shapes they cannot take)
// move on to the next algorithm; anything else is an error.
AlgoRun run_status(cudnnStatus_t st, const char* call) {
  if (st == CUDNN_STATUS_SUCCESS) return AlgoRun::Ok;
  if (st == CUDNN_STATUS_NOT_SUPPORTED || st == CUDNN_STATUS_BAD_PARAM) return AlgoRun::NotSupported;
  cuda_detail::throw_cuda_error(call, __FILE__, __LINE__, static_cast<int>(st), cudnnGetErrorString(st));
}

class CudnnConvImpl final : public CudnnConv {
 public:
  CudnnConvImpl(cudaStream_t stream, CachingAllocator& allocator) : stream_(stream), alloc_(allocator) {
    JANUS_CUDNN_CHECK(cudnnCreate(&handle_));
    JANUS_CUDNN_CHECK(cudnnSetStream(handle_, stream_));
  }
  ~CudnnConvImpl() override {
    plans_.clear();
    if (handle_) cudnnDestroy(handle_);
  }

  bool forward(const ConvGeometry& g, const float* x, const KrscFilter& w, float* y, bool tensor_op) override {
    std::lock_guard<std::mutex> lock(mu_);
    Plan& p = plan(g, math_type(tensor_op));
    if (p.choice[kForward].chosen < 0) return false;
    const float* wk = w();
    return run(g, p, kForward, [&](const AlgoCandidate& c) {
      const auto algo = static_cast<cudnnConvolutionFwdAlgo_t>(c.algo);
      size_t bytes = 0;
      const AlgoRun q = run_status(cudnnGetConvolutionForwardWorkspaceSize(handle_, p.x, p.w, p.conv, p.y, algo, &bytes),
                                   "cudnnGetConvolutionForwardWorkspaceSize");
      if (q != AlgoRun::Ok) return q;
      return with_workspace(bytes, [&](void* ws) {
        const float one = 1.0f, zero = 0.0f;
        return run_status(cudnnConvolutionForward(handle_, &one, p.x, x, p.w, wk, p.conv, algo, ws, bytes, &zero,
                                                  p.y, y),
                          "cudnnConvolutionForward");
      });
    });
  }

  bool backward_data(const ConvGeometry& g, const float* dy, const KrscFilter& w, float* dx,
                     bool tensor_op) override {
    std::lock_guard<std::mutex> lock(mu_);
    Plan& p = plan(g, math_type(tensor_op));
    if (p.choice[kBackwardData].chosen < 0) return false;
    const float* wk = w();
    return run(g, p, kBackwardData, [&](const AlgoCandidate& c) {
      const auto algo = static_cast<cudnnConvolutionBwdDataAlgo_t>(c.algo);
      size_t bytes = 0;
      const AlgoRun q = run_status(
          cudnnGetConvolutionBackwardDataWorkspaceSize(handle_, p.w, p.y, p.conv, p.x, algo, &bytes),
          "cudnnGetConvolutionBackwardDataWorkspaceSize");
      if (q != AlgoRun::Ok) return q;
      return with_workspace(bytes, [&](void* ws) {
        const float one = 1.0f, zero = 0.0f;
        return run_status(cudnnConvolutionBackwardData(handle_, &one, p.w, wk, p.y, dy, p.conv, algo, ws, bytes,
                                                       &zero, p.x, dx),
                          "cudnnConvolutionBackwardData");
      });
    });
  }

  bool backward_filter(const ConvGeometry& g, const float* x, const float* dy, float* dw_krsc,
                       bool tensor_op) override {
    std::lock_guard<std::mutex> lock(mu_);
    Plan& p = plan(g, math_type(tensor_op));
    if (p.choice[kBackwardFilter].chosen < 0) return false;
    return run(g, p, kBackwardFilter, [&](const AlgoCandidate& c) {
      const auto algo = static_cast<cudnnConvolutionBwdFilterAlgo_t>(c.algo);
      size_t bytes = 0;
      const AlgoRun q = run_status(
          cudnnGetConvolutionBackwardFilterWorkspaceSize(handle_, p.x, p.y, p.conv, p.w, algo, &bytes),
          "cudnnGetConvolutionBackwardFilterWorkspaceSize");
      if (q != AlgoRun::Ok) return q;
      return with_workspace(bytes, [&](void* ws) {
        const float one = 1.0f, zero = 0.0f;
        return run_status(cudnnConvolutionBackwardFilter(handle_, &one, p.x, x, p.y, dy, p.conv, algo, ws, bytes,
                                                         &zero, p.w, dw_krsc),
                          "cudnnConvolutionBackwardFilter");
      });
    });
  }

 private:
  // A workspace from the caching allocator (stream-ordered reuse is safe).
  struct Buffer {
    Buffer(CachingAllocator& a, size_t bytes) : alloc(a), p(a.allocate(bytes)) {}
    ~Buffer() { alloc.deallocate(p); }
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    CachingAllocator& alloc;
    void* p;
  };

  // Runs body(workspace) with `bytes` of workspace, or reports NoWorkspace
  // when the allocator cannot provide them (the next algorithm may need less).
  template <class Body>
  AlgoRun with_workspace(size_t bytes, Body body) {
    std::unique_ptr<Buffer> ws;
    try {
      ws = std::make_unique<Buffer>(alloc_, bytes);
    } catch (const Error&) {
      return AlgoRun::NoWorkspace;
    }
    return body(ws->p);
  }

  // Walks the direction's ranked list from its current choice; remembers the
  // first algorithm that ran (or -1: implicit GEMM from now on) and logs it.
  bool run(const ConvGeometry& g, Plan& p, int dir, const std::function<AlgoRun(const AlgoCandidate&)>& body) {
    Choice& c = p.choice[dir];
    const int before = c.chosen;
    c.chosen = run_first_working(c.ranking, static_cast<size_t>(c.chosen), body, c.failures);
    if (!c.logged || c.chosen != before) log_choice(g, p.math, dir, c);
    return c.chosen >= 0;
  }

  static void log_choice(const ConvGeometry& g, cudnnMathType_t p_math, int dir, Choice& c) {
    c.logged = true;
#ifdef NDEBUG
    if (!cudnn_log_enabled()) return;
#endif
    std::string line = detail::concat("janus: cuDNN ", direction_name(dir), " ", geometry_str(g), ": ");
    if (c.chosen >= 0) {
      const AlgoCandidate& a = c.ranking.order[static_cast<size_t>(c.chosen)];
      line += detail::concat(a.name, " (", cudnn_math_name(p_math), ", workspace ", a.workspace, " bytes",
                             a.deterministic ? "" : ", non-deterministic", ")");
    } else {
      line += g.groups > 1 ? "no cuDNN algorithm ran; Janus's grouped kernel instead"
                           : "no cuDNN algorithm ran; Janus's implicit-GEMM kernel instead";
    }
    for (const std::string& f : c.failures) line += "; failed " + f;
    for (const std::string& r : c.ranking.rejected) line += "; skipped " + r;
    std::fprintf(stderr, "%s\n", line.c_str());
  }

  Plan& plan(const ConvGeometry& g, cudnnMathType_t math) {
    auto it = plans_.find(key_of(g, math));
    if (it != plans_.end()) return *it->second;
    auto p = std::make_unique<Plan>();
    p->math = math;
    JANUS_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->x));
    JANUS_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->y));
    JANUS_CUDNN_CHECK(cudnnCreateFilterDescriptor(&p->w));
    JANUS_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&p->conv));
    JANUS_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, g.N, g.C, g.H, g.W));
    // Grouped: the filter has C/groups input channels and the descriptor
    // carries the group count (cuDNN's grouped and depthwise convolutions).
    JANUS_CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, g.F, g.group_channels(),
                                                 g.KH, g.KW));
    JANUS_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(p->conv, g.pad_h, g.pad_w, g.stride_h, g.stride_w, 1, 1,
                                                      CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    JANUS_CUDNN_CHECK(cudnnSetConvolutionGroupCount(p->conv, g.groups));
    JANUS_CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, math));
    int n = 0, c = 0, h = 0, w = 0;
    JANUS_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &n, &c, &h, &w));
    JANUS_CHECK(n == g.N && c == g.F && h == g.OH && w == g.OW, "cuDNN convolution: output (", n, ", ", h, ", ", w,
                ", ", c, ") differs from the geometry's (", g.N, ", ", g.OH, ", ", g.OW, ", ", g.F, ")");
    JANUS_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, g.N, g.F, g.OH, g.OW));

    const bool transforms = cudnn_transforms_allowed();
    {
      int max_count = 0, count = 0;
      JANUS_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(handle_, &max_count));
      std::vector<cudnnConvolutionFwdAlgoPerf_t> perfs(static_cast<size_t>(std::max(max_count, 1)));
      JANUS_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(handle_, p->x, p->w, p->conv, p->y, max_count, &count,
                                                               perfs.data()));
      p->choice[kForward].ranking = rank_algorithms(candidates_of(perfs, count, math), kMaxWorkspace, false, transforms);
    }
    {
      int max_count = 0, count = 0;
      JANUS_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(handle_, &max_count));
      std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perfs(static_cast<size_t>(std::max(max_count, 1)));
      JANUS_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(handle_, p->w, p->y, p->conv, p->x, max_count,
                                                                    &count, perfs.data()));
      p->choice[kBackwardData].ranking = rank_algorithms(candidates_of(perfs, count, math), kMaxWorkspace, true, transforms);
    }
    {
      int max_count = 0, count = 0;
      JANUS_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(handle_, &max_count));
      std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> perfs(static_cast<size_t>(std::max(max_count, 1)));
      JANUS_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle_, p->x, p->y, p->conv, p->w, max_count,
                                                                      &count, perfs.data()));
      p->choice[kBackwardFilter].ranking =
          rank_algorithms(candidates_of(perfs, count, math), kMaxWorkspace, true, transforms);
    }
    for (int d = kForward; d <= kBackwardFilter; ++d)
      if (p->choice[d].ranking.order.empty()) {
        p->choice[d].chosen = -1;
        log_choice(g, math, d, p->choice[d]);
      }
    Plan& ref = *p;
    plans_.emplace(key_of(g, math), std::move(p));
    return ref;
  }

  cudaStream_t stream_;
  CachingAllocator& alloc_;
  cudnnHandle_t handle_ = nullptr;
  std::mutex mu_;
  std::map<Key, std::unique_ptr<Plan>> plans_;
};

}  // namespace

std::unique_ptr<CudnnConv> make_cudnn_conv(cudaStream_t stream, CachingAllocator& allocator) {
  return std::make_unique<CudnnConvImpl>(stream, allocator);
}

std::string cudnn_version() {
  const size_t v = cudnnGetVersion();  // e.g. 90300 for 9.3.0
  return detail::concat("cuDNN ", v / 10000, ".", (v % 10000) / 100, ".", v % 100);
}

}  // namespace janus::cuda

#endif  // !JANUS_CUDA_SIM
