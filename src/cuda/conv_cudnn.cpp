// cuDNN convolutions (real GPUs only; see conv_cudnn.hpp). Compiled to nothing
// under the simulator, which has no cuDNN.
#include "cuda/cuda_compat.hpp"

#if !defined(JANUS_CUDA_SIM)

#include <cudnn.h>

#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "cuda/caching_allocator.hpp"
#include "cuda/conv_cudnn.hpp"
#include "cuda/cuda_check.hpp"
#include "cuda/kernels.hpp"
#include "janus/error.hpp"

namespace janus::cuda {

namespace {

constexpr size_t kMaxWorkspace = size_t{512} << 20;  // per-call algorithm workspace limit

using Key = std::tuple<int, int, int, int, int, int, int, int, int, int, int>;
Key key_of(const ConvGeometry& g) {
  return Key{g.N, g.H, g.W, g.C, g.KH, g.KW, g.F, g.stride_h, g.stride_w, g.pad_h, g.pad_w};
}

bool fp32_math(cudnnMathType_t m) { return m == CUDNN_DEFAULT_MATH || m == CUDNN_FMA_MATH; }

// Picks from cuDNN's ranked list: the fastest that succeeded, fits the
// workspace limit, runs in true FP32, and (when asked) is deterministic.
template <class Perf>
const Perf* pick(const std::vector<Perf>& perfs, int count, bool want_deterministic) {
  for (int pass = 0; pass < 2; ++pass)
    for (int i = 0; i < count; ++i) {
      const Perf& p = perfs[static_cast<size_t>(i)];
      if (p.status != CUDNN_STATUS_SUCCESS || p.memory > kMaxWorkspace || !fp32_math(p.mathType)) continue;
      if (pass == 0 && want_deterministic && p.determinism != CUDNN_DETERMINISTIC) continue;
      return &p;
    }
  return nullptr;
}

struct Plan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  cudnnConvolutionFwdAlgo_t fwd{};
  cudnnConvolutionBwdDataAlgo_t bwd_data{};
  cudnnConvolutionBwdFilterAlgo_t bwd_filter{};
  size_t fwd_ws = 0, bwd_data_ws = 0, bwd_filter_ws = 0;
  ~Plan() {
    if (x) cudnnDestroyTensorDescriptor(x);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
  }
};

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

  void forward(const ConvGeometry& g, const float* x, const float* w, float* y) override {
    std::lock_guard<std::mutex> lock(mu_);
    const Plan& p = plan(g);
    Buffer wk(alloc_, filter_bytes(g));
    // HWIO viewed as (KH*KW*C, F) -> its transpose (F, KH*KW*C) is KRSC.
    cuda_kernels::transpose(w, wk.f(), int64_t{g.KH} * g.KW * g.C, g.F, stream_);
    Buffer ws(alloc_, p.fwd_ws);
    const float one = 1.0f, zero = 0.0f;
    JANUS_CUDNN_CHECK(cudnnConvolutionForward(handle_, &one, p.x, x, p.w, wk.f(), p.conv, p.fwd, ws.p, p.fwd_ws,
                                              &zero, p.y, y));
  }

  void backward_data(const ConvGeometry& g, const float* dy, const float* w, float* dx) override {
    std::lock_guard<std::mutex> lock(mu_);
    const Plan& p = plan(g);
    Buffer wk(alloc_, filter_bytes(g));
    cuda_kernels::transpose(w, wk.f(), int64_t{g.KH} * g.KW * g.C, g.F, stream_);
    Buffer ws(alloc_, p.bwd_data_ws);
    const float one = 1.0f, zero = 0.0f;
    JANUS_CUDNN_CHECK(cudnnConvolutionBackwardData(handle_, &one, p.w, wk.f(), p.y, dy, p.conv, p.bwd_data, ws.p,
                                                   p.bwd_data_ws, &zero, p.x, dx));
  }

  void backward_filter(const ConvGeometry& g, const float* x, const float* dy, float* dw) override {
    std::lock_guard<std::mutex> lock(mu_);
    const Plan& p = plan(g);
    Buffer wk(alloc_, filter_bytes(g));
    Buffer ws(alloc_, p.bwd_filter_ws);
    const float one = 1.0f, zero = 0.0f;
    JANUS_CUDNN_CHECK(cudnnConvolutionBackwardFilter(handle_, &one, p.x, x, p.y, dy, p.conv, p.bwd_filter, ws.p,
                                                     p.bwd_filter_ws, &zero, p.w, wk.f()));
    // KRSC (F, KH*KW*C) -> HWIO (KH*KW*C, F).
    cuda_kernels::transpose(wk.f(), dw, g.F, int64_t{g.KH} * g.KW * g.C, stream_);
  }

 private:
  // A workspace from the caching allocator (stream-ordered reuse is safe).
  struct Buffer {
    Buffer(CachingAllocator& a, size_t bytes) : alloc(a), p(a.allocate(bytes)) {}
    ~Buffer() { alloc.deallocate(p); }
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    float* f() const { return static_cast<float*>(p); }
    CachingAllocator& alloc;
    void* p;
  };

  static size_t filter_bytes(const ConvGeometry& g) {
    return sizeof(float) * static_cast<size_t>(g.KH) * g.KW * g.C * g.F;
  }

  const Plan& plan(const ConvGeometry& g) {
    auto it = plans_.find(key_of(g));
    if (it != plans_.end()) return *it->second;
    auto p = std::make_unique<Plan>();
    JANUS_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->x));
    JANUS_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->y));
    JANUS_CUDNN_CHECK(cudnnCreateFilterDescriptor(&p->w));
    JANUS_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&p->conv));
    JANUS_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, g.N, g.C, g.H, g.W));
    JANUS_CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, g.F, g.C, g.KH, g.KW));
    JANUS_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(p->conv, g.pad_h, g.pad_w, g.stride_h, g.stride_w, 1, 1,
                                                      CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    // True FP32: no TF32 tensor cores, so results agree with the CPU backend.
    JANUS_CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, CUDNN_FMA_MATH));
    int n = 0, c = 0, h = 0, w = 0;
    JANUS_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &n, &c, &h, &w));
    JANUS_CHECK(n == g.N && c == g.F && h == g.OH && w == g.OW, "cuDNN convolution: output (", n, ", ", h, ", ", w,
                ", ", c, ") differs from the geometry's (", g.N, ", ", g.OH, ", ", g.OW, ", ", g.F, ")");
    JANUS_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, g.N, g.F, g.OH, g.OW));

    {
      int max_count = 0, count = 0;
      JANUS_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(handle_, &max_count));
      std::vector<cudnnConvolutionFwdAlgoPerf_t> perfs(static_cast<size_t>(std::max(max_count, 1)));
      JANUS_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(handle_, p->x, p->w, p->conv, p->y, max_count, &count,
                                                               perfs.data()));
      const auto* best = pick(perfs, count, false);
      JANUS_CHECK(best != nullptr, "cuDNN offers no FP32 forward convolution algorithm for this geometry");
      p->fwd = best->algo;
      JANUS_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(handle_, p->x, p->w, p->conv, p->y, p->fwd, &p->fwd_ws));
    }
    {
      int max_count = 0, count = 0;
      JANUS_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(handle_, &max_count));
      std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perfs(static_cast<size_t>(std::max(max_count, 1)));
      JANUS_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(handle_, p->w, p->y, p->conv, p->x, max_count,
                                                                    &count, perfs.data()));
      const auto* best = pick(perfs, count, true);
      JANUS_CHECK(best != nullptr, "cuDNN offers no FP32 backward-data convolution algorithm for this geometry");
      p->bwd_data = best->algo;
      JANUS_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(handle_, p->w, p->y, p->conv, p->x, p->bwd_data,
                                                                     &p->bwd_data_ws));
    }
    {
      int max_count = 0, count = 0;
      JANUS_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(handle_, &max_count));
      std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> perfs(static_cast<size_t>(std::max(max_count, 1)));
      JANUS_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle_, p->x, p->y, p->conv, p->w, max_count,
                                                                      &count, perfs.data()));
      const auto* best = pick(perfs, count, true);
      JANUS_CHECK(best != nullptr, "cuDNN offers no FP32 backward-filter convolution algorithm for this geometry");
      p->bwd_filter = best->algo;
      JANUS_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(handle_, p->x, p->y, p->conv, p->w,
                                                                       p->bwd_filter, &p->bwd_filter_ws));
    }
    const Plan& ref = *p;
    plans_.emplace(key_of(g), std::move(p));
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
