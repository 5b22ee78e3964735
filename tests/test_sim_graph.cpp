// Stream capture and CUDA graphs on the simulator (runtime.hpp, "stream
// capture"): work on a capturing stream is recorded, not run; a graph replays
// it reading device memory as it is at each launch; and each operation the
// CUDA runtime refuses during a capture is refused here with the runtime's
// error code and invalidates the capture (planted bugs), so code that would
// break a capture on a GPU breaks on the simulator too.
#include "cuda/cuda_compat.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace {

__global__ void add_scalar(float* x, float v, int n) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) x[i] += v;
}

// y[i] = x[i] * scale[0]: the scale is read from device memory when the kernel runs.
__global__ void scale_by_device_value(const float* x, const float* scale, float* y, int n) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) y[i] = x[i] * scale[0];
}

constexpr int kN = 64;

std::vector<float> read(const float* d, int n = kN) {
  std::vector<float> h(static_cast<size_t>(n));
  EXPECT_EQ(cudaMemcpy(h.data(), d, h.size() * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  return h;
}

// A non-blocking stream and a zeroed device buffer of kN floats.
class Capture : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&x_, kN * sizeof(float)), cudaSuccess);
    ASSERT_EQ(cudaMemset(x_, 0, kN * sizeof(float)), cudaSuccess);
    static_cast<void>(cudaGetLastError());
  }
  void TearDown() override {
    for (cudaGraphExec_t e : execs_) EXPECT_EQ(cudaGraphExecDestroy(e), cudaSuccess);
    for (cudaGraph_t g : graphs_) EXPECT_EQ(cudaGraphDestroy(g), cudaSuccess);
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(stream_, &status) == cudaSuccess && status != cudaStreamCaptureStatusNone) {
      cudaGraph_t g = nullptr;
      static_cast<void>(cudaStreamEndCapture(stream_, &g));
      if (g != nullptr) static_cast<void>(cudaGraphDestroy(g));
    }
    EXPECT_EQ(cudaFree(x_), cudaSuccess);
    EXPECT_EQ(cudaStreamDestroy(stream_), cudaSuccess);
    static_cast<void>(cudaGetLastError());
  }
  void launch_add(float v, cudaStream_t s) { JANUS_LAUNCH(add_scalar, 1, kN, 0, s, x_, v, kN); }
  // Begins an empty capture on stream_.
  void begin_empty(cudaStreamCaptureMode mode = cudaStreamCaptureModeGlobal) {
    static_cast<void>(cudaGetLastError());  // failed calls before set the last error, as in CUDA
    ASSERT_EQ(cudaStreamBeginCapture(stream_, mode), cudaSuccess);
  }
  // Begins a capture with one kernel in it.
  void begin(cudaStreamCaptureMode mode = cudaStreamCaptureModeGlobal) {
    begin_empty(mode);
    launch_add(1.0f, stream_);
    ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  }
  // Ends the capture, expecting a graph (destroyed by TearDown).
  cudaGraph_t end() {
    cudaGraph_t g = nullptr;
    EXPECT_EQ(cudaStreamEndCapture(stream_, &g), cudaSuccess);
    EXPECT_NE(g, nullptr);
    if (g != nullptr) graphs_.push_back(g);
    return g;
  }
  // The graph instantiated (destroyed by TearDown).
  cudaGraphExec_t instantiate(cudaGraph_t g) {
    cudaGraphExec_t exec = nullptr;
    EXPECT_EQ(cudaGraphInstantiate(&exec, g), cudaSuccess);
    if (exec != nullptr) execs_.push_back(exec);
    return exec;
  }
  // Ends the capture expecting `error` and no graph.
  void expect_end_refused(cudaError_t error) {
    cudaGraph_t g = reinterpret_cast<cudaGraph_t>(0x1234);
    EXPECT_EQ(cudaStreamEndCapture(stream_, &g), error);
    EXPECT_EQ(g, nullptr);
    static_cast<void>(cudaGetLastError());
  }
  // Ends the capture expecting it invalidated: no graph comes back.
  void expect_invalidated() {
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    ASSERT_EQ(cudaStreamIsCapturing(stream_, &status), cudaSuccess);
    EXPECT_EQ(status, cudaStreamCaptureStatusInvalidated);
    launch_add(1.0f, stream_);  // further work on the stream fails until the capture ends
    EXPECT_EQ(cudaGetLastError(), cudaErrorStreamCaptureInvalidated);
    expect_end_refused(cudaErrorStreamCaptureInvalidated);
    ASSERT_EQ(cudaStreamIsCapturing(stream_, &status), cudaSuccess);
    EXPECT_EQ(status, cudaStreamCaptureStatusNone);
    EXPECT_EQ(read(x_)[0], 0.0f) << "captured work must not have run";
  }

  cudaStream_t stream_ = nullptr;
  float* x_ = nullptr;
  std::vector<cudaGraph_t> graphs_;
  std::vector<cudaGraphExec_t> execs_;
};

TEST_F(Capture, RecordsInsteadOfRunningThenReplaysOneGraphPerLaunch) {
  const unsigned long long launches = janus::sim::launch_count();
  ASSERT_EQ(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeGlobal), cudaSuccess);
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  ASSERT_EQ(cudaStreamIsCapturing(stream_, &status), cudaSuccess);
  EXPECT_EQ(status, cudaStreamCaptureStatusActive);
  launch_add(1.0f, stream_);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  ASSERT_EQ(cudaMemsetAsync(x_ + 8, 0, 4 * sizeof(float), stream_), cudaSuccess);  // zeroes 8..11 after the add
  launch_add(0.5f, stream_);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(stream_, &graph), cudaSuccess);
  ASSERT_NE(graph, nullptr);
  EXPECT_EQ(janus::sim::launch_count(), launches) << "a captured kernel ran";
  EXPECT_EQ(read(x_)[0], 0.0f);
  size_t nodes = 0;
  ASSERT_EQ(cudaGraphGetNodes(graph, nullptr, &nodes), cudaSuccess);
  EXPECT_EQ(nodes, 3u);

  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  ASSERT_EQ(cudaGraphDestroy(graph), cudaSuccess);  // the exec stays valid
  const unsigned long long stream_launches = janus::sim::stream_launch_count();
  const unsigned long long graph_launches = janus::sim::graph_launch_count();
  for (int i = 0; i < 3; ++i) ASSERT_EQ(cudaGraphLaunch(exec, stream_), cudaSuccess);
  EXPECT_EQ(janus::sim::graph_launch_count(), graph_launches + 3);
  EXPECT_EQ(janus::sim::stream_launch_count(), stream_launches) << "replays are not stream launches";
  EXPECT_EQ(janus::sim::launch_count(), launches + 6) << "each replay runs the graph's two kernels";
  const std::vector<float> x = read(x_);
  EXPECT_EQ(x[0], 4.5f);   // 3 x (1 + 0.5)
  EXPECT_EQ(x[8], 0.5f);   // the memset node ran between the kernels of the last replay
  ASSERT_EQ(cudaGraphExecDestroy(exec), cudaSuccess);
  EXPECT_EQ(cudaGraphLaunch(exec, stream_), cudaErrorInvalidResourceHandle);
  static_cast<void>(cudaGetLastError());
}

TEST_F(Capture, KernelArgumentsAreBakedDeviceMemoryIsReadAtEachReplay) {
  float *scale = nullptr, *y = nullptr;
  ASSERT_EQ(cudaMalloc(&scale, sizeof(float)), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&y, kN * sizeof(float)), cudaSuccess);
  float* pinned = nullptr;
  ASSERT_EQ(cudaMallocHost(&pinned, sizeof(float)), cudaSuccess);
  float v = 2.0f;
  begin_empty();
  launch_add(v, stream_);                                                              // v baked: 2
  ASSERT_EQ(cudaMemcpyAsync(scale, pinned, sizeof(float), cudaMemcpyHostToDevice, stream_), cudaSuccess);
  JANUS_LAUNCH(scale_by_device_value, 1, kN, 0, stream_, x_, scale, y, kN);
  cudaGraphExec_t exec = instantiate(end());
  for (int step = 1; step <= 3; ++step) {
    v = 100.0f;                                  // not seen: the argument was copied at capture
    *pinned = static_cast<float>(step * 10);     // seen: the copy node reads the pinned buffer at replay
    ASSERT_EQ(cudaGraphLaunch(exec, stream_), cudaSuccess);
    EXPECT_EQ(read(y)[5], static_cast<float>(2 * step) * static_cast<float>(step * 10)) << "step " << step;
  }
  EXPECT_EQ(cudaFreeHost(pinned), cudaSuccess);
  EXPECT_EQ(cudaFree(scale), cudaSuccess);
  EXPECT_EQ(cudaFree(y), cudaSuccess);
}

TEST_F(Capture, ReplayWithFreedMemoryIsAnIllegalAddress) {
  float* tmp = nullptr;
  ASSERT_EQ(cudaMalloc(&tmp, kN * sizeof(float)), cudaSuccess);
  begin_empty();
  JANUS_LAUNCH(add_scalar, 1, kN, 0, stream_, tmp, 1.0f, kN);
  cudaGraphExec_t exec = instantiate(end());
  ASSERT_EQ(cudaGraphLaunch(exec, stream_), cudaSuccess);
  ASSERT_EQ(cudaFree(tmp), cudaSuccess);  // planted bug: the graph does not own this memory
  EXPECT_EQ(cudaGraphLaunch(exec, stream_), cudaErrorIllegalAddress);
  EXPECT_NE(std::string(cudaGetErrorString(cudaErrorIllegalAddress)).find("freed"), std::string::npos);
  static_cast<void>(cudaGetLastError());
}

// ---- planted bugs: what a capture refuses ----------------------------------------------
TEST_F(Capture, SynchronisingTheCapturingStreamIsRefused) {
  begin();
  EXPECT_EQ(cudaStreamSynchronize(stream_), cudaErrorStreamCaptureUnsupported);
  expect_invalidated();
}

TEST_F(Capture, QueryingTheCapturingStreamIsRefused) {
  begin();
  EXPECT_EQ(cudaStreamQuery(stream_), cudaErrorStreamCaptureUnsupported);
  expect_invalidated();
}

TEST_F(Capture, SynchronisingTheDeviceIsRefused) {
  begin();
  EXPECT_EQ(cudaDeviceSynchronize(), cudaErrorStreamCaptureUnsupported);
  expect_invalidated();
}

TEST_F(Capture, CudaMallocInGlobalModeIsRefused) {
  begin();
  float* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, 256), cudaErrorStreamCaptureUnsupported);
  EXPECT_EQ(p, nullptr);
  expect_invalidated();
}

TEST_F(Capture, CudaFreeIsRefused) {
  float* p = nullptr;
  ASSERT_EQ(cudaMalloc(&p, 256), cudaSuccess);
  begin();
  EXPECT_EQ(cudaFree(p), cudaErrorStreamCaptureUnsupported);
  expect_invalidated();
  EXPECT_EQ(cudaFree(p), cudaSuccess) << "the block was not freed by the refused call";
}

TEST_F(Capture, SynchronousCopiesAreRefused) {
  begin();
  std::vector<float> h(kN);
  EXPECT_EQ(cudaMemcpy(h.data(), x_, 16, cudaMemcpyDeviceToHost), cudaErrorStreamCaptureUnsupported);
  expect_invalidated();
  begin();
  EXPECT_EQ(cudaMemset(x_, 0, 16), cudaErrorStreamCaptureUnsupported);
  expect_invalidated();
}

TEST_F(Capture, AsyncCopyFromPageableMemoryIsRefused) {
  begin();
  std::vector<float> h(kN, 3.0f);
  EXPECT_EQ(cudaMemcpyAsync(x_, h.data(), 16, cudaMemcpyHostToDevice, stream_), cudaErrorStreamCaptureUnsupported);
  expect_invalidated();
}

TEST_F(Capture, RelaxedModeAllowsUnsafeCallsButNotSynchronisingTheStream) {
  begin(cudaStreamCaptureModeRelaxed);
  float* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, 256), cudaSuccess);
  EXPECT_EQ(cudaFree(p), cudaSuccess);
  EXPECT_EQ(cudaStreamSynchronize(stream_), cudaErrorStreamCaptureUnsupported);
  expect_invalidated();
}

TEST_F(Capture, ARelaxedThreadModeMayAllocateDuringItsOwnCapture) {
  begin();
  cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
  ASSERT_EQ(cudaThreadExchangeStreamCaptureMode(&mode), cudaSuccess);
  EXPECT_EQ(mode, cudaStreamCaptureModeGlobal) << "the default thread mode";
  float* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, 256), cudaSuccess);  // as a caching allocator's pool does (PyTorch's mode guard)
  EXPECT_EQ(cudaStreamSynchronize(stream_), cudaErrorStreamCaptureUnsupported) << "still refused";
  ASSERT_EQ(cudaThreadExchangeStreamCaptureMode(&mode), cudaSuccess);
  EXPECT_EQ(mode, cudaStreamCaptureModeRelaxed);
  expect_invalidated();
  EXPECT_EQ(cudaFree(p), cudaSuccess);
}

TEST_F(Capture, GlobalModeRefusesUnsafeCallsFromOtherThreadsThreadLocalDoesNot) {
  begin(cudaStreamCaptureModeThreadLocal);
  cudaError_t other = cudaErrorUnknown;
  std::thread([&] {
    void* p = nullptr;
    other = cudaMalloc(&p, 256);
    if (other == cudaSuccess) static_cast<void>(cudaFree(p));
  }).join();
  EXPECT_EQ(other, cudaSuccess) << "a thread-local capture does not restrict other threads";
  end();

  begin(cudaStreamCaptureModeGlobal);
  std::thread([&] {
    void* p = nullptr;
    other = cudaMalloc(&p, 256);
  }).join();
  EXPECT_EQ(other, cudaErrorStreamCaptureUnsupported);
  expect_invalidated();
}

TEST_F(Capture, LegacyStreamWorkConflictsWithABlockingStreamsCapture) {
  cudaStream_t blocking = nullptr;
  ASSERT_EQ(cudaStreamCreate(&blocking), cudaSuccess);
  ASSERT_EQ(cudaStreamBeginCapture(blocking, cudaStreamCaptureModeGlobal), cudaSuccess);
  launch_add(1.0f, nullptr);  // planted bug: the legacy stream would wait on the capturing stream
  EXPECT_EQ(cudaGetLastError(), cudaErrorStreamCaptureImplicit);
  cudaGraph_t g = nullptr;
  EXPECT_EQ(cudaStreamEndCapture(blocking, &g), cudaErrorStreamCaptureInvalidated);
  EXPECT_EQ(g, nullptr);
  // A non-blocking stream's capture does not involve the legacy stream.
  begin();
  launch_add(1.0f, nullptr);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  end();
  EXPECT_EQ(read(x_)[0], 1.0f) << "the legacy-stream launch ran at once, the captured one not";
  EXPECT_EQ(cudaStreamDestroy(blocking), cudaSuccess);
  EXPECT_EQ(cudaStreamBeginCapture(nullptr, cudaStreamCaptureModeGlobal), cudaErrorStreamCaptureUnsupported);
  EXPECT_EQ(cudaStreamBeginCapture(cudaStreamLegacy, cudaStreamCaptureModeGlobal),
            cudaErrorStreamCaptureUnsupported);
  static_cast<void>(cudaGetLastError());
}

TEST_F(Capture, EventsRecordedInACaptureCannotBeWaitedOnByTheHost) {
  cudaEvent_t e = nullptr;
  ASSERT_EQ(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), cudaSuccess);
  begin();
  ASSERT_EQ(cudaEventRecord(e, stream_), cudaSuccess);
  EXPECT_EQ(cudaEventSynchronize(e), cudaErrorCapturedEvent);
  EXPECT_EQ(cudaEventQuery(e), cudaErrorCapturedEvent);
  end();
  ASSERT_EQ(cudaEventRecord(e, stream_), cudaSuccess);
  EXPECT_EQ(cudaEventSynchronize(e), cudaSuccess);
  EXPECT_EQ(cudaEventDestroy(e), cudaSuccess);
}

TEST_F(Capture, CaptureStateErrors) {
  begin();
  EXPECT_EQ(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeGlobal), cudaErrorIllegalState);
  cudaError_t from_other = cudaSuccess;
  std::thread([&] {
    cudaGraph_t g = nullptr;
    from_other = cudaStreamEndCapture(stream_, &g);
  }).join();
  EXPECT_EQ(from_other, cudaErrorStreamCaptureWrongThread);
  expect_invalidated();
  expect_end_refused(cudaErrorIllegalState);
}

TEST_F(Capture, AForkedStreamJoinsTheCaptureAndMustJoinBack) {
  cudaStream_t side = nullptr;
  cudaEvent_t fork = nullptr, join = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&side, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaEventCreateWithFlags(&fork, cudaEventDisableTiming), cudaSuccess);
  ASSERT_EQ(cudaEventCreateWithFlags(&join, cudaEventDisableTiming), cudaSuccess);
  for (const bool joined_back : {true, false}) {
    SCOPED_TRACE(joined_back ? "joined back" : "not joined back");
    begin();
    ASSERT_EQ(cudaEventRecord(fork, stream_), cudaSuccess);
    ASSERT_EQ(cudaStreamWaitEvent(side, fork, 0), cudaSuccess);
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    ASSERT_EQ(cudaStreamIsCapturing(side, &status), cudaSuccess);
    EXPECT_EQ(status, cudaStreamCaptureStatusActive);
    launch_add(10.0f, side);
    ASSERT_EQ(cudaGetLastError(), cudaSuccess);
    if (joined_back) {
      ASSERT_EQ(cudaEventRecord(join, side), cudaSuccess);
      ASSERT_EQ(cudaStreamWaitEvent(stream_, join, 0), cudaSuccess);
    }
    if (!joined_back) {
      expect_end_refused(cudaErrorStreamCaptureUnjoined);
      continue;
    }
    cudaGraph_t g = end();
    ASSERT_EQ(cudaStreamIsCapturing(side, &status), cudaSuccess);
    EXPECT_EQ(status, cudaStreamCaptureStatusNone) << "ending the capture ends it on the joined stream";
    ASSERT_EQ(cudaGraphLaunch(instantiate(g), stream_), cudaSuccess);
    EXPECT_EQ(read(x_)[0], 11.0f);
  }
  EXPECT_EQ(cudaEventDestroy(fork), cudaSuccess);
  EXPECT_EQ(cudaEventDestroy(join), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(side), cudaSuccess);
}

// ---- argument checks -----------------------------------------------------------------
// Each graph call's refusal of a bad argument: the runtime's error code and
// the simulator's message (cudaGetErrorString of the last error), one row
// per check the call makes before anything else.
TEST_F(Capture, BadArgumentsAreRefusedWithTheRuntimesErrorAndANamedMessage) {
  int not_a_handle = 0;
  const auto bad_stream = reinterpret_cast<cudaStream_t>(&not_a_handle);
  const auto bad_graph = reinterpret_cast<cudaGraph_t>(&not_a_handle);
  const auto bad_exec = reinterpret_cast<cudaGraphExec_t>(&not_a_handle);
  // 3: not a capture mode, yet a value the enum can hold (its values 0..2
  // need two bits, so its range is 0..3); 42 would be undefined behaviour
  // in the test itself (UBSan: "not a valid value for type").
  const auto bad_mode = static_cast<cudaStreamCaptureMode>(3);
  begin();
  cudaGraph_t graph = end();
  cudaGraphExec_t exec = instantiate(graph);
  cudaGraph_t g = nullptr;
  cudaGraphExec_t e = nullptr;
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  size_t nodes = 0;
  cudaStreamCaptureMode mode = bad_mode;
  struct Row {
    std::function<cudaError_t()> call;
    cudaError_t code;
    const char* message;
  };
  const Row rows[] = {
      {[&] { return cudaStreamBeginCapture(bad_stream, cudaStreamCaptureModeGlobal); }, cudaErrorInvalidResourceHandle,
       "cudaStreamBeginCapture: invalid stream"},
      {[&] { return cudaStreamBeginCapture(stream_, bad_mode); }, cudaErrorInvalidValue,
       "cudaStreamBeginCapture: invalid cudaStreamCaptureMode"},
      {[&] { return cudaStreamEndCapture(stream_, nullptr); }, cudaErrorInvalidValue,
       "cudaStreamEndCapture: null pGraph"},
      {[&] { return cudaStreamEndCapture(bad_stream, &g); }, cudaErrorInvalidResourceHandle,
       "cudaStreamEndCapture: invalid stream"},
      {[&] { return cudaStreamIsCapturing(stream_, nullptr); }, cudaErrorInvalidValue,
       "cudaStreamIsCapturing: null pointer"},
      {[&] { return cudaStreamIsCapturing(bad_stream, &status); }, cudaErrorInvalidResourceHandle,
       "cudaStreamIsCapturing: invalid stream"},
      {[&] { return cudaThreadExchangeStreamCaptureMode(nullptr); }, cudaErrorInvalidValue,
       "cudaThreadExchangeStreamCaptureMode: null pointer"},
      {[&] { return cudaThreadExchangeStreamCaptureMode(&mode); }, cudaErrorInvalidValue,
       "cudaThreadExchangeStreamCaptureMode: invalid mode"},
      {[&] { return cudaGraphInstantiate(nullptr, graph, 0); }, cudaErrorInvalidValue,
       "cudaGraphInstantiate: null pGraphExec"},
      {[&] { return cudaGraphInstantiate(&e, bad_graph, 0); }, cudaErrorInvalidValue,
       "cudaGraphInstantiate: not a live graph"},
      {[&] { return cudaGraphLaunch(exec, bad_stream); }, cudaErrorInvalidResourceHandle,
       "cudaGraphLaunch: invalid stream"},
      {[&] { return cudaGraphLaunch(bad_exec, stream_); }, cudaErrorInvalidResourceHandle,
       "cudaGraphLaunch: not a live graph exec"},
      {[&] { return cudaGraphExecDestroy(bad_exec); }, cudaErrorInvalidValue,
       "cudaGraphExecDestroy: not a live graph exec"},
      {[&] { return cudaGraphDestroy(bad_graph); }, cudaErrorInvalidValue, "cudaGraphDestroy: not a live graph"},
      {[&] { return cudaGraphGetNodes(graph, nullptr, nullptr); }, cudaErrorInvalidValue,
       "cudaGraphGetNodes: null numNodes"},
      {[&] { return cudaGraphGetNodes(bad_graph, nullptr, &nodes); }, cudaErrorInvalidValue,
       "cudaGraphGetNodes: not a live graph"},
  };
  for (const Row& row : rows) {
    static_cast<void>(cudaGetLastError());
    EXPECT_EQ(row.call(), row.code) << row.message;
    // "<generic text> [Janus CUDA simulator: <message>]"
    const std::string said = cudaGetErrorString(row.code), tag = "[Janus CUDA simulator: ";
    const size_t at = said.find(tag);
    EXPECT_EQ(at == std::string::npos ? said : said.substr(at + tag.size()), std::string(row.message) + "]");
    EXPECT_EQ(cudaGetLastError(), row.code) << row.message << ": the last error";
  }
  EXPECT_EQ(g, nullptr);
  EXPECT_EQ(e, nullptr);
  EXPECT_EQ(mode, bad_mode) << "a refused exchange leaves the mode";
}

// ---- cuBLAS --------------------------------------------------------------------------
TEST_F(Capture, CublasNeedsAUserWorkspaceToBeCaptured) {
  constexpr int n = 4;
  float *a = nullptr, *c = nullptr;
  void* workspace = nullptr;
  ASSERT_EQ(cudaMalloc(&a, n * n * sizeof(float)), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&c, n * n * sizeof(float)), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&workspace, 1 << 20), cudaSuccess);
  std::vector<float> ha(n * n);
  for (int i = 0; i < n * n; ++i) ha[static_cast<size_t>(i)] = static_cast<float>(i % 5) - 2.0f;
  ASSERT_EQ(cudaMemcpy(a, ha.data(), ha.size() * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemset(c, 0, n * n * sizeof(float)), cudaSuccess);
  cublasHandle_t h = nullptr;
  ASSERT_EQ(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(cublasSetStream(h, stream_), CUBLAS_STATUS_SUCCESS);
  const float one = 1.0f, zero = 0.0f;

  // Planted bug: no cublasSetWorkspace.
  begin_empty();
  EXPECT_EQ(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, a, n, a, n, &zero, c, n),
            CUBLAS_STATUS_NOT_SUPPORTED);
  expect_end_refused(cudaErrorStreamCaptureInvalidated);

  ASSERT_EQ(cublasSetWorkspace(h, workspace, 1 << 20), CUBLAS_STATUS_SUCCESS);
  begin_empty();
  ASSERT_EQ(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, a, n, a, n, &zero, c, n), CUBLAS_STATUS_SUCCESS);
  cudaGraph_t g = end();
  EXPECT_EQ(read(c, n * n)[0], 0.0f) << "the captured GEMM ran";
  ASSERT_EQ(cudaGraphLaunch(instantiate(g), stream_), cudaSuccess);
  const std::vector<float> replayed = read(c, n * n);
  ASSERT_EQ(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, a, n, a, n, &zero, c, n), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(read(c, n * n), replayed) << "the replayed GEMM differs from a direct one";
  float expect00 = 0.0f;
  for (int k = 0; k < n; ++k) expect00 += ha[static_cast<size_t>(k * n)] * ha[static_cast<size_t>(k)];
  EXPECT_EQ(replayed[0], expect00);

  // cublasSetStream resets the workspace to the default pool, as cuBLAS does.
  ASSERT_EQ(cublasSetStream(h, stream_), CUBLAS_STATUS_SUCCESS);
  begin_empty();
  EXPECT_EQ(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, a, n, a, n, &zero, c, n),
            CUBLAS_STATUS_NOT_SUPPORTED);
  expect_end_refused(cudaErrorStreamCaptureInvalidated);

  EXPECT_EQ(cublasDestroy(h), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(cudaFree(a), cudaSuccess);
  EXPECT_EQ(cudaFree(c), cudaSuccess);
  EXPECT_EQ(cudaFree(workspace), cudaSuccess);
}

}  // namespace
