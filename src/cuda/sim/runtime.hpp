// Janus CUDA simulator: the CUDA runtime API subset, served from host memory.
//
// Every "device" allocation is ordinary host memory (256-byte aligned, filled
// with 0xFF bytes so that reading memory nobody wrote gives NaN / -1 instead
// of a lucky zero). Streams and events exist as handles, but all work runs
// synchronously on the calling thread, in issue order, so stream ordering is
// always respected. Errors follow CUDA: each call returns a cudaError_t and a
// failed call also becomes the calling thread's "last error"
// (cudaGetLastError / cudaPeekAtLastError). cudaGetErrorString returns the
// detailed simulator message for the most recent failure of that code on the
// calling thread, and CUDA's generic text otherwise.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>

// The CUDA version whose API the simulator follows.
#define CUDART_VERSION 13000

// ---- vector and index types --------------------------------------------------
struct uint3 {
  unsigned int x, y, z;
};

struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return uint3{x, y, z}; }
};

struct int2 { int x, y; };
struct int3 { int x, y, z; };
struct alignas(16) int4 { int x, y, z, w; };
struct alignas(8) float2 { float x, y; };
struct float3 { float x, y, z; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(16) double2 { double x, y; };
inline constexpr int2 make_int2(int x, int y) { return {x, y}; }
inline constexpr int3 make_int3(int x, int y, int z) { return {x, y, z}; }
inline constexpr int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }
inline constexpr float2 make_float2(float x, float y) { return {x, y}; }
inline constexpr float3 make_float3(float x, float y, float z) { return {x, y, z}; }
inline constexpr float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline constexpr double2 make_double2(double x, double y) { return {x, y}; }
inline constexpr uint3 make_uint3(unsigned x, unsigned y, unsigned z) { return {x, y, z}; }

// ---- errors ----------------------------------------------------------------------
enum cudaError_t {  // values as in CUDA's driver_types.h
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorInsufficientDriver = 35,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidSymbol = 13,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorIllegalState = 401,
  cudaErrorNotReady = 600,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchFailure = 719,
  cudaErrorNotSupported = 801,
  cudaErrorStreamCaptureUnsupported = 900,
  cudaErrorStreamCaptureInvalidated = 901,
  cudaErrorStreamCaptureMerge = 902,
  cudaErrorStreamCaptureUnmatched = 903,
  cudaErrorStreamCaptureUnjoined = 904,
  cudaErrorStreamCaptureImplicit = 906,
  cudaErrorCapturedEvent = 907,
  cudaErrorStreamCaptureWrongThread = 908,
  cudaErrorUnknown = 999,
};
typedef cudaError_t cudaError;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

// ---- handles -------------------------------------------------------------------
struct CUstream_st;
struct CUevent_st;
typedef CUstream_st* cudaStream_t;
typedef CUevent_st* cudaEvent_t;
#define cudaStreamLegacy ((cudaStream_t)0x1)
#define cudaStreamPerThread ((cudaStream_t)0x2)
#define cudaStreamDefault 0x00
#define cudaStreamNonBlocking 0x01
#define cudaEventDefault 0x00
#define cudaEventBlockingSync 0x01
#define cudaEventDisableTiming 0x02
#define cudaHostAllocDefault 0x00

// ---- stream capture and graphs (see "stream capture" below) ------------------------
struct CUgraph_st;
struct CUgraphExec_st;
struct CUgraphNode_st;
typedef CUgraph_st* cudaGraph_t;
typedef CUgraphNode_st* cudaGraphNode_t;
typedef CUgraphExec_st* cudaGraphExec_t;
enum cudaStreamCaptureMode {
  cudaStreamCaptureModeGlobal = 0,
  cudaStreamCaptureModeThreadLocal = 1,
  cudaStreamCaptureModeRelaxed = 2,
};
enum cudaStreamCaptureStatus {
  cudaStreamCaptureStatusNone = 0,
  cudaStreamCaptureStatusActive = 1,
  cudaStreamCaptureStatusInvalidated = 2,
};

// ---- device properties -------------------------------------------------------------
struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlock;
  int regsPerBlock;
  int warpSize;
  size_t memPitch;
  int maxThreadsPerBlock;
  int maxThreadsDim[3];
  int maxGridSize[3];
  size_t totalConstMem;
  int major;
  int minor;
  size_t textureAlignment;
  int multiProcessorCount;
  int integrated;
  int canMapHostMemory;
  int concurrentKernels;
  int ECCEnabled;
  int pciBusID;
  int pciDeviceID;
  int pciDomainID;
  int asyncEngineCount;
  int unifiedAddressing;
  int memoryBusWidth;
  int l2CacheSize;
  int maxThreadsPerMultiProcessor;
  size_t sharedMemPerMultiprocessor;
  int regsPerMultiprocessor;
  int managedMemory;
  size_t sharedMemPerBlockOptin;
};

enum cudaDeviceAttr {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrMaxBlockDimX = 2,
  cudaDevAttrMaxBlockDimY = 3,
  cudaDevAttrMaxBlockDimZ = 4,
  cudaDevAttrMaxGridDimX = 5,
  cudaDevAttrMaxGridDimY = 6,
  cudaDevAttrMaxGridDimZ = 7,
  cudaDevAttrMaxSharedMemoryPerBlock = 8,
  cudaDevAttrWarpSize = 10,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
};

// ---- the API -------------------------------------------------------------------
const char* cudaGetErrorString(cudaError_t error);
const char* cudaGetErrorName(cudaError_t error);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();

cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaDeviceReset();
cudaError_t cudaRuntimeGetVersion(int* version);
cudaError_t cudaDriverGetVersion(int* version);
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes);

cudaError_t cudaMalloc(void** ptr, size_t size);
cudaError_t cudaFree(void* ptr);
cudaError_t cudaMallocAsync(void** ptr, size_t size, cudaStream_t stream);
cudaError_t cudaFreeAsync(void* ptr, cudaStream_t stream);
cudaError_t cudaMallocHost(void** ptr, size_t size);
cudaError_t cudaHostAlloc(void** ptr, size_t size, unsigned int flags);
cudaError_t cudaFreeHost(void* ptr);
template <class T>
inline cudaError_t cudaMalloc(T** ptr, size_t size) {
  return cudaMalloc(reinterpret_cast<void**>(ptr), size);
}
template <class T>
inline cudaError_t cudaMallocHost(T** ptr, size_t size) {
  return cudaMallocHost(reinterpret_cast<void**>(ptr), size);
}
template <class T>
inline cudaError_t cudaMallocAsync(T** ptr, size_t size, cudaStream_t stream) {
  return cudaMallocAsync(reinterpret_cast<void**>(ptr), size, stream);
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t count, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* ptr, int value, size_t count);
cudaError_t cudaMemsetAsync(void* ptr, int value, size_t count, cudaStream_t stream = nullptr);

cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamQuery(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags = 0);

cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventQuery(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);

// ---- stream capture -----------------------------------------------------------------
// As the CUDA runtime documents it. While a stream captures, kernel launches,
// cudaMemcpyAsync, cudaMemsetAsync, cudaEventRecord and cudaGraphLaunch on it
// are recorded into the capture's graph, not run (a stream that waits on an
// event recorded in a capture joins that capture). Refused during a capture,
// with the real runtime's error, and the capture concerned invalidated (its
// further work fails with cudaErrorStreamCaptureInvalidated and
// cudaStreamEndCapture returns that error and no graph):
//   * synchronising or querying a capturing stream (cudaStreamSynchronize,
//     cudaStreamQuery) or the device (cudaDeviceSynchronize):
//     cudaErrorStreamCaptureUnsupported;
//   * "potentially unsafe" calls (cudaMalloc, cudaFree, cudaFreeHost,
//     synchronous cudaMemcpy / cudaMemset) from the capturing thread (unless
//     its capture is Relaxed) or from any thread while a Global-mode capture
//     runs, as the calling thread's mode (cudaThreadExchangeStreamCaptureMode)
//     says: cudaErrorStreamCaptureUnsupported;
//   * an async copy from or to pageable host memory on a capturing stream:
//     cudaErrorStreamCaptureUnsupported (the copy could not be replayed);
//   * work on the legacy default stream (nullptr, cudaStreamLegacy) while a
//     blocking stream (one created without cudaStreamNonBlocking) captures:
//     cudaErrorStreamCaptureImplicit;
//   * cudaEventSynchronize / cudaEventQuery / cudaEventElapsedTime of an event
//     last recorded in a capture: cudaErrorCapturedEvent;
//   * capturing cudaStreamLegacy or the null stream: cudaErrorStreamCaptureUnsupported;
//     beginning a capture twice or ending one that is not active:
//     cudaErrorIllegalState; ending it on a stream that only joined it:
//     cudaErrorStreamCaptureUnmatched; ending a non-Relaxed capture from
//     another thread: cudaErrorStreamCaptureWrongThread; ending while a joined
//     stream's work has not been joined back: cudaErrorStreamCaptureUnjoined;
//     a stream of one capture waiting on an event of another:
//     cudaErrorStreamCaptureMerge.
// A replayed kernel whose device-pointer argument was cudaMalloc memory at
// capture but has been freed since fails with cudaErrorIllegalAddress (the
// graph does not own memory it did not allocate).
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* pGraph);
cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* pCaptureStatus);
// The calling thread's capture interaction mode (default Global), swapped
// with *mode. Global: this thread may not make potentially unsafe calls while
// its own non-Relaxed capture or another thread's Global capture runs;
// ThreadLocal: only its own capture counts; Relaxed: no restriction.
cudaError_t cudaThreadExchangeStreamCaptureMode(cudaStreamCaptureMode* mode);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* pGraphExec, cudaGraph_t graph, unsigned long long flags = 0);
cudaError_t cudaGraphLaunch(cudaGraphExec_t graphExec, cudaStream_t stream);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t graphExec);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);
// With nodes == nullptr, *numNodes = the node count; else up to *numNodes handles.
cudaError_t cudaGraphGetNodes(cudaGraph_t graph, cudaGraphNode_t* nodes, size_t* numNodes);

namespace janus::sim::detail {
cudaError_t memcpy_symbol(void* symbol, size_t symbol_size, const void* src, size_t count, size_t offset,
                          bool to_symbol);
}  // namespace janus::sim::detail

// __device__ / __constant__ variables are ordinary host globals in the simulator.
template <class T>
inline cudaError_t cudaMemcpyToSymbol(T& symbol, const void* src, size_t count, size_t offset = 0,
                                      cudaMemcpyKind = cudaMemcpyHostToDevice) {
  return janus::sim::detail::memcpy_symbol(const_cast<void*>(static_cast<const volatile void*>(&symbol)),
                                           sizeof(T), src, count, offset, true);
}
template <class T>
inline cudaError_t cudaMemcpyFromSymbol(void* dst, const T& symbol, size_t count, size_t offset = 0,
                                        cudaMemcpyKind = cudaMemcpyDeviceToHost) {
  return janus::sim::detail::memcpy_symbol(const_cast<void*>(static_cast<const volatile void*>(&symbol)),
                                           sizeof(T), dst, count, offset, false);
}

namespace janus::sim {
// Bytes currently held by cudaMalloc / cudaMallocAsync.
size_t allocated_bytes();
// Calls so far after which a GPU's host thread would have waited for the
// stream's earlier work: cudaStreamSynchronize, cudaDeviceSynchronize,
// cudaMemcpy, and cudaMemcpyAsync from or to pageable (not cudaMallocHost)
// host memory; on the lagging device (set_device_lag) also
// cudaEventSynchronize of an event the device has not reached, and
// cudaFreeHost of a block an unfinished copy reads.
unsigned long long host_waits();
// The lagging device model. The simulator runs all work at once, so by
// default every event is complete as soon as it is recorded; a GPU that is
// busy with earlier steps has not reached it. With the lag on, queued work
// (event records, copies from cudaMallocHost memory) completes only when the
// host waits for it (a counted host wait above) or when finish_work() says
// the device got there; until then cudaEventQuery answers cudaErrorNotReady.
// Turning it off completes everything queued. Process-wide, for tests.
void set_device_lag(bool on);
// Position of the last work queued so far (for finish_work).
std::uint64_t queued_work();
// The lagging device has finished the work queued up to `position`.
void finish_work(std::uint64_t position);
// Copies from cudaMallocHost memory whose source bytes changed between the
// copy's queuing and its completion on the lagging device: the host
// overwrote a buffer a GPU's DMA might not have read yet (a race).
unsigned long long pinned_overwrites();
// The device that was current when the cudaMalloc block holding ptr was
// allocated; -1 for a pointer that is not device memory. The simulated
// machine has JANUS_SIM_DEVICES devices (default 1; see runtime.cpp).
int device_of(const void* ptr);
namespace detail {
// Before a launch: the stream belongs to the current device and no pointer
// argument is memory of another device (a GPU without peer access faults).
// Otherwise records the launch error (cudaGetLastError) and returns false.
bool launch_on_current_device(const char* kernel_name, cudaStream_t stream,
                              std::initializer_list<const void*> pointers);
}  // namespace detail
// Number of kernel launches run so far (all threads of the process), those
// that graph launches replay included.
unsigned long long launch_count();
// Kernel launches the host issued on a stream and that ran there (not
// recorded into a capture, not replayed from a graph): what a profiler would
// count as cudaLaunchKernel calls.
unsigned long long stream_launch_count();
// cudaGraphLaunch calls that ran a graph (not recorded into a capture).
unsigned long long graph_launch_count();
// Launches so far of the kernel of this name (as written in the launch, e.g.
// "transpose_kernel").
unsigned long long launch_count(const char* kernel_name);
}  // namespace janus::sim
