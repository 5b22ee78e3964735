// Janus CUDA simulator: the runtime API on host memory.
#include "cuda/sim/runtime.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <mutex>
#include <new>
#include <optional>
#include <set>
#include <sstream>
#include <string>

#include "core/env_settings.hpp"
#include "cuda/sim/internal.hpp"
#include "janus/error.hpp"


namespace janus::sim::detail {
namespace {

constexpr size_t kAlignment = 256;  // cudaMalloc guarantees at least 256 bytes

struct LastError {
  cudaError_t code = cudaSuccess;
  cudaError_t detailed_code = cudaSuccess;
  std::string detail;
};
thread_local LastError t_error;

struct Memory {
  std::mutex mutex;
  std::map<std::uintptr_t, size_t> device;  // start -> size of cudaMalloc blocks
  std::map<std::uintptr_t, int> owner;      // start -> device that was current at its cudaMalloc
  std::map<void*, size_t> pinned;           // cudaMallocHost blocks: start -> size
  std::set<CUstream_st*> streams;
  std::set<CUevent_st*> events;
  size_t allocated = 0;
  unsigned long long host_waits = 0;  // see janus::sim::host_waits()
  // The lagging device model (janus::sim::set_device_lag): positions of the
  // queued work (event records and copies from pinned memory) and how far
  // the device has got. Off, all queued work is complete at once.
  bool lagging = false;
  std::uint64_t queued = 0;
  std::uint64_t completed = 0;
  // Pinned host bytes a queued, unfinished copy still has to read, with a
  // hash of what they held when the copy was queued.
  struct PendingRead {
    const unsigned char* host;
    size_t bytes;
    std::uint64_t hash;
    std::uint64_t position;
  };
  std::vector<PendingRead> pending_reads;
  unsigned long long pinned_overwrites = 0;  // see janus::sim::pinned_overwrites()
  std::uint64_t device_generation = 0;  // changes whenever `device` does
};
Memory& memory() {
  static Memory* m = new Memory;  // never destroyed: usable from static destructors
  return *m;
}

size_t total_memory() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0) return static_cast<size_t>(pages) * static_cast<size_t>(page);
  return size_t{16} << 30;
}

cudaError_t ok() { return cudaSuccess; }

std::uint64_t fnv1a(const unsigned char* p, size_t bytes) {
  std::uint64_t h = 14695981039346656037ull;
  for (size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

// The lagging device has finished the work queued up to `position`: the
// copies among it have read their pinned sources, which must still hold
// what they held when the copy was queued (else the host overwrote a buffer
// a GPU's DMA had not read yet). Called with m.mutex held.
void complete_up_to(Memory& m, std::uint64_t position) {
  if (position <= m.completed) return;
  m.completed = position;
  auto& reads = m.pending_reads;
  for (auto it = reads.begin(); it != reads.end();) {
    if (it->position > position) {
      ++it;
      continue;
    }
    if (fnv1a(it->host, it->bytes) != it->hash) ++m.pinned_overwrites;
    it = reads.erase(it);
  }
}

// The next position in the queued work (an event record, a pinned copy).
std::uint64_t queue_position(Memory& m) { return ++m.queued; }

// A call after which the host has waited for the stream's earlier work (on a
// GPU; the simulator runs everything at once, so it only counts them). All
// the queued work is then complete.
void host_waited() {
  auto& m = memory();
  std::lock_guard<std::mutex> lock(m.mutex);
  ++m.host_waits;
  complete_up_to(m, m.queued);
}
bool pinned(const void* p) {
  auto& m = memory();
  std::lock_guard<std::mutex> lock(m.mutex);
  return m.pinned.count(const_cast<void*>(p)) != 0;
}

// The simulated machine, from JANUS_SIM_DEVICES: a device count (default 1,
// at most kMaxDevices; 0 makes cudaGetDeviceCount fail with cudaErrorNoDevice
// as the real runtime does), or the name of the error cudaGetDeviceCount
// fails with (cudaErrorInsufficientDriver: a driver older than the runtime;
// cudaErrorInitializationError). Read once per process.
constexpr int kMaxDevices = 8;
struct Machine {
  int count = 1;
  cudaError_t count_error = cudaSuccess;
  std::string setting;  // what JANUS_SIM_DEVICES said, for messages
};
const Machine& machine() {
  static const Machine m = [] {
    Machine r;
    const std::optional<std::string> v = janus::env::string_setting("JANUS_SIM_DEVICES");
    if (!v) return r;
    r.setting = *v;
    if (*v == "cudaErrorInsufficientDriver") {
      r.count = 0, r.count_error = cudaErrorInsufficientDriver;
    } else if (*v == "cudaErrorInitializationError") {
      r.count = 0, r.count_error = cudaErrorInitializationError;
    } else {
      // A CUDA runtime call cannot throw: a malformed setting ends the process.
      try {
        r.count = static_cast<int>(janus::env::integer(
            "JANUS_SIM_DEVICES", 0, kMaxDevices, 1,
            "(simulated devices), cudaErrorInsufficientDriver or cudaErrorInitializationError"));
      } catch (const janus::Error& e) {
        std::fprintf(stderr, "Janus CUDA simulator: %s\n", e.what());
        std::abort();
      }
      if (r.count == 0) r.count_error = cudaErrorNoDevice;
    }
    return r;
  }();
  return m;
}

thread_local int t_current_device = 0;  // cudaSetDevice is per host thread, as in CUDA

cudaError_t check_device(const char* api, int device) {
  if (device >= 0 && device < machine().count) return cudaSuccess;
  std::ostringstream s;
  s << api << "(" << device << "): the simulator has " << machine().count << " device(s)"
    << (machine().setting.empty() ? "" : " (JANUS_SIM_DEVICES=" + machine().setting + ")");
  return set_error(cudaErrorInvalidDevice, s.str());
}

// Which cudaMalloc block holds [p, p + count)? 0: none, 1: inside one, -1: overruns one.
int device_range(const void* p, size_t count) {
  auto& m = memory();
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  auto it = m.device.upper_bound(a);
  if (it == m.device.begin()) return 0;
  --it;
  if (a >= it->first + it->second && !(it->second == 0 && a == it->first)) return 0;
  return a + count <= it->first + it->second ? 1 : -1;
}

cudaError_t check_range(const char* api, const char* role, const void* p, size_t count, bool must_be_device) {
  const int where = device_range(p, count);
  if (must_be_device && where == 0) {
    std::ostringstream s;
    s << api << ": the " << role << " pointer " << p << " is not device memory from cudaMalloc";
    return set_error(cudaErrorInvalidValue, s.str());
  }
  if (where < 0) {
    std::ostringstream s;
    s << api << ": " << count << " bytes at the " << role << " pointer " << p
      << " run past the end of its cudaMalloc block";
    return set_error(cudaErrorInvalidValue, s.str());
  }
  return cudaSuccess;
}

const char* generic_string(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidSymbol: return "invalid device symbol";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotSupported: return "operation not supported";
    case cudaErrorIllegalState: return "the operation cannot be performed in the present state";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureUnjoined: return "capture was not joined back";
    case cudaErrorStreamCaptureMerge: return "operation would result in a merge of separate capture sequences";
    case cudaErrorStreamCaptureUnmatched: return "capture was not initiated in this stream";
    case cudaErrorStreamCaptureImplicit: return "operation would make the legacy stream depend on a capturing blocking stream";
    case cudaErrorCapturedEvent: return "operation not permitted on an event last recorded in a capturing stream";
    case cudaErrorStreamCaptureWrongThread: return "attempt to terminate a thread-local capture sequence from another thread";
    case cudaErrorUnknown: return "unknown error";
  }
  return "unrecognized error code";
}

}  // namespace

cudaError_t set_error(cudaError_t error, std::string message) {
  t_error.code = error;
  t_error.detailed_code = error;
  t_error.detail = std::string(generic_string(error)) + " [Janus CUDA simulator: " + message + "]";
  return error;
}

bool valid_stream(cudaStream_t stream) {
  if (stream == nullptr || stream == cudaStreamLegacy || stream == cudaStreamPerThread) return true;
  auto& m = memory();
  std::lock_guard<std::mutex> lock(m.mutex);
  return m.streams.count(stream) != 0;
}

cudaError_t check_stream(cudaStream_t stream, const char* api) {
  return valid_stream(stream) ? cudaSuccess
                              : set_error(cudaErrorInvalidResourceHandle, std::string(api) + ": invalid stream");
}

std::uint64_t device_generation() {
  auto& m = memory();
  std::lock_guard<std::mutex> lock(m.mutex);
  return m.device_generation;
}

std::vector<std::pair<std::uintptr_t, size_t>> device_blocks() {
  auto& m = memory();
  std::lock_guard<std::mutex> lock(m.mutex);
  return {m.device.begin(), m.device.end()};
}

bool is_device_memory(const void* p) {
  auto& m = memory();
  std::lock_guard<std::mutex> lock(m.mutex);
  return device_range(p, 1) != 0;
}

bool is_pinned(const void* p) { return pinned(p); }

cudaError_t check_copy(const char* api, void* dst, const void* src, size_t count, cudaMemcpyKind kind) {
  if (count == 0) return ok();
  if (dst == nullptr || src == nullptr) return set_error(cudaErrorInvalidValue, std::string(api) + ": null pointer");
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault)
    return set_error(cudaErrorInvalidMemcpyDirection, std::string(api) + ": invalid cudaMemcpyKind");
  auto& m = memory();
  std::lock_guard<std::mutex> lock(m.mutex);
  const bool dst_device = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool src_device = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (cudaError_t e = check_range(api, "destination", dst, count, dst_device); e != cudaSuccess) return e;
  return check_range(api, "source", src, count, src_device);
}

cudaError_t check_set(const char* api, void* ptr, size_t count) {
  if (count == 0) return ok();
  auto& m = memory();
  std::lock_guard<std::mutex> lock(m.mutex);
  return check_range(api, "destination", ptr, count, true);
}

cudaError_t memcpy_symbol(void* symbol, size_t symbol_size, const void* other, size_t count, size_t offset,
                          bool to_symbol) {
  if (offset > symbol_size || count > symbol_size - offset)
    return set_error(cudaErrorInvalidValue, "cudaMemcpy{To,From}Symbol: count + offset exceed the symbol's size");
  char* s = static_cast<char*>(symbol) + offset;
  if (count == 0) return cudaSuccess;
  if (to_symbol)
    std::memmove(s, other, count);
  else
    std::memmove(const_cast<void*>(other), s, count);
  return cudaSuccess;
}

}  // namespace janus::sim::detail

using janus::sim::detail::Memory;
using janus::sim::detail::memory;
using janus::sim::detail::ok;
using janus::sim::detail::set_error;

// ---- errors ----------------------------------------------------------------------------
const char* cudaGetErrorString(cudaError_t error) {
  auto& e = janus::sim::detail::t_error;
  if (error != cudaSuccess && error == e.detailed_code && !e.detail.empty()) return e.detail.c_str();
  return janus::sim::detail::generic_string(error);
}

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
#define JANUS_SIM_NAME(x) \
  case x: return #x;
    JANUS_SIM_NAME(cudaSuccess)
    JANUS_SIM_NAME(cudaErrorInvalidValue)
    JANUS_SIM_NAME(cudaErrorMemoryAllocation)
    JANUS_SIM_NAME(cudaErrorInitializationError)
    JANUS_SIM_NAME(cudaErrorInsufficientDriver)
    JANUS_SIM_NAME(cudaErrorInvalidConfiguration)
    JANUS_SIM_NAME(cudaErrorInvalidSymbol)
    JANUS_SIM_NAME(cudaErrorInvalidDevicePointer)
    JANUS_SIM_NAME(cudaErrorInvalidMemcpyDirection)
    JANUS_SIM_NAME(cudaErrorNoDevice)
    JANUS_SIM_NAME(cudaErrorInvalidDevice)
    JANUS_SIM_NAME(cudaErrorInvalidResourceHandle)
    JANUS_SIM_NAME(cudaErrorNotReady)
    JANUS_SIM_NAME(cudaErrorIllegalAddress)
    JANUS_SIM_NAME(cudaErrorLaunchFailure)
    JANUS_SIM_NAME(cudaErrorNotSupported)
    JANUS_SIM_NAME(cudaErrorIllegalState)
    JANUS_SIM_NAME(cudaErrorStreamCaptureUnsupported)
    JANUS_SIM_NAME(cudaErrorStreamCaptureInvalidated)
    JANUS_SIM_NAME(cudaErrorStreamCaptureUnjoined)
    JANUS_SIM_NAME(cudaErrorStreamCaptureMerge)
    JANUS_SIM_NAME(cudaErrorStreamCaptureUnmatched)
    JANUS_SIM_NAME(cudaErrorStreamCaptureImplicit)
    JANUS_SIM_NAME(cudaErrorCapturedEvent)
    JANUS_SIM_NAME(cudaErrorStreamCaptureWrongThread)
    JANUS_SIM_NAME(cudaErrorUnknown)
#undef JANUS_SIM_NAME
  }
  return "cudaErrorUnknown";
}

cudaError_t cudaGetLastError() {
  const cudaError_t e = janus::sim::detail::t_error.code;
  janus::sim::detail::t_error.code = cudaSuccess;
  return e;
}

cudaError_t cudaPeekAtLastError() { return janus::sim::detail::t_error.code; }

// ---- device ------------------------------------------------------------------------------
cudaError_t cudaGetDeviceCount(int* count) {
  if (count == nullptr) return set_error(cudaErrorInvalidValue, "cudaGetDeviceCount: null pointer");
  const auto& m = janus::sim::detail::machine();
  *count = m.count;
  if (m.count_error != cudaSuccess)
    return set_error(m.count_error, "cudaGetDeviceCount fails as JANUS_SIM_DEVICES=" + m.setting + " asks");
  return ok();
}

cudaError_t cudaSetDevice(int device) {
  if (cudaError_t e = janus::sim::detail::check_device("cudaSetDevice", device); e != cudaSuccess) return e;
  janus::sim::detail::t_current_device = device;
  return ok();
}

cudaError_t cudaGetDevice(int* device) {
  if (device == nullptr) return set_error(cudaErrorInvalidValue, "cudaGetDevice: null pointer");
  if (janus::sim::detail::machine().count == 0)
    return set_error(cudaErrorNoDevice, "cudaGetDevice: the simulator has no device");
  *device = janus::sim::detail::t_current_device;
  return ok();
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (prop == nullptr) return set_error(cudaErrorInvalidValue, "cudaGetDeviceProperties: null pointer");
  if (cudaError_t e = janus::sim::detail::check_device("cudaGetDeviceProperties", device); e != cudaSuccess)
    return e;
  *prop = cudaDeviceProp{};
  std::strncpy(prop->name, "Janus CUDA simulator", sizeof(prop->name) - 1);
  prop->totalGlobalMem = janus::sim::detail::total_memory();
  prop->sharedMemPerBlock = 48 * 1024;
  prop->sharedMemPerBlockOptin = 48 * 1024;
  prop->regsPerBlock = 65536;
  prop->warpSize = 32;
  prop->memPitch = 2147483647;
  prop->maxThreadsPerBlock = 1024;
  prop->maxThreadsDim[0] = 1024;
  prop->maxThreadsDim[1] = 1024;
  prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = 2147483647;
  prop->maxGridSize[1] = 65535;
  prop->maxGridSize[2] = 65535;
  prop->totalConstMem = 64 * 1024;
  prop->major = 8;
  prop->minor = 0;
  prop->textureAlignment = 512;
  prop->multiProcessorCount = 1;
  prop->integrated = 1;
  prop->canMapHostMemory = 1;
  prop->concurrentKernels = 0;
  prop->unifiedAddressing = 1;
  prop->memoryBusWidth = 64;
  prop->l2CacheSize = 1 << 20;
  prop->maxThreadsPerMultiProcessor = 1024;
  prop->sharedMemPerMultiprocessor = 48 * 1024;
  prop->regsPerMultiprocessor = 65536;
  prop->managedMemory = 0;
  return ok();
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (value == nullptr) return set_error(cudaErrorInvalidValue, "cudaDeviceGetAttribute: null pointer");
  cudaDeviceProp p;
  if (cudaError_t e = cudaGetDeviceProperties(&p, device); e != cudaSuccess) return e;
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = p.maxThreadsPerBlock; break;
    case cudaDevAttrMaxBlockDimX: *value = p.maxThreadsDim[0]; break;
    case cudaDevAttrMaxBlockDimY: *value = p.maxThreadsDim[1]; break;
    case cudaDevAttrMaxBlockDimZ: *value = p.maxThreadsDim[2]; break;
    case cudaDevAttrMaxGridDimX: *value = p.maxGridSize[0]; break;
    case cudaDevAttrMaxGridDimY: *value = p.maxGridSize[1]; break;
    case cudaDevAttrMaxGridDimZ: *value = p.maxGridSize[2]; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = static_cast<int>(p.sharedMemPerBlock); break;
    case cudaDevAttrWarpSize: *value = p.warpSize; break;
    case cudaDevAttrMultiProcessorCount: *value = p.multiProcessorCount; break;
    case cudaDevAttrComputeCapabilityMajor: *value = p.major; break;
    case cudaDevAttrComputeCapabilityMinor: *value = p.minor; break;
    default: return set_error(cudaErrorInvalidValue, "cudaDeviceGetAttribute: attribute not simulated");
  }
  return ok();
}

cudaError_t cudaDeviceSynchronize() {
  if (cudaError_t e = janus::sim::detail::check_synchronize(nullptr, "cudaDeviceSynchronize", true); e != cudaSuccess)
    return e;
  janus::sim::detail::host_waited();
  return ok();
}
cudaError_t cudaDeviceReset() { return ok(); }

cudaError_t cudaRuntimeGetVersion(int* version) {
  if (version == nullptr) return set_error(cudaErrorInvalidValue, "cudaRuntimeGetVersion: null pointer");
  *version = CUDART_VERSION;
  return ok();
}

cudaError_t cudaDriverGetVersion(int* version) {
  if (version == nullptr) return set_error(cudaErrorInvalidValue, "cudaDriverGetVersion: null pointer");
  *version = CUDART_VERSION;
  return ok();
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  if (free_bytes == nullptr || total_bytes == nullptr)
    return set_error(cudaErrorInvalidValue, "cudaMemGetInfo: null pointer");
  const size_t total = janus::sim::detail::total_memory();
  const size_t used = janus::sim::allocated_bytes();
  *total_bytes = total;
  *free_bytes = used < total ? total - used : 0;
  return ok();
}

// ---- memory ------------------------------------------------------------------------------
cudaError_t cudaMalloc(void** ptr, size_t size) {
  if (ptr == nullptr) return set_error(cudaErrorInvalidValue, "cudaMalloc: null pointer");
  *ptr = nullptr;
  if (cudaError_t e = janus::sim::detail::check_unsafe_call("cudaMalloc"); e != cudaSuccess) return e;
  if (size == 0) return ok();
  // More than the simulated device's memory (the host's, as cudaMemGetInfo
  // reports) fails like it would on a GPU, without asking the host allocator
  // (under AddressSanitizer an impossible request aborts instead of failing).
  void* p = size > janus::sim::detail::total_memory()
                ? nullptr
                : ::operator new(size, std::align_val_t(janus::sim::detail::kAlignment), std::nothrow);
  if (p == nullptr) {
    std::ostringstream s;
    s << "cudaMalloc of " << size << " bytes failed";
    return set_error(cudaErrorMemoryAllocation, s.str());
  }
  std::memset(p, 0xFF, size);  // never rely on fresh device memory being zero
  auto& m = memory();
  std::lock_guard<std::mutex> lock(m.mutex);
  m.device[reinterpret_cast<std::uintptr_t>(p)] = size;
  m.owner[reinterpret_cast<std::uintptr_t>(p)] = janus::sim::detail::t_current_device;
  m.allocated += size;
  ++m.device_generation;
  *ptr = p;
  return ok();
}

cudaError_t cudaFree(void* ptr) {
  if (cudaError_t e = janus::sim::detail::check_unsafe_call("cudaFree"); e != cudaSuccess) return e;
  if (ptr == nullptr) return ok();
  auto& m = memory();
  {
    std::lock_guard<std::mutex> lock(m.mutex);
    auto it = m.device.find(reinterpret_cast<std::uintptr_t>(ptr));
    if (it == m.device.end()) {
      std::ostringstream s;
      s << "cudaFree(" << ptr << "): not a live cudaMalloc block (double free or foreign pointer)";
      return set_error(cudaErrorInvalidValue, s.str());
    }
    m.allocated -= it->second;
    m.device.erase(it);
    m.owner.erase(reinterpret_cast<std::uintptr_t>(ptr));
    ++m.device_generation;
  }
  ::operator delete(ptr, std::align_val_t(janus::sim::detail::kAlignment));
  return ok();
}

cudaError_t cudaMallocAsync(void** ptr, size_t size, cudaStream_t stream) {
  if (cudaError_t e = janus::sim::detail::check_stream(stream, "cudaMallocAsync"); e != cudaSuccess) return e;
  if (janus::sim::detail::capture_concerns(stream))
    return set_error(cudaErrorNotSupported, "cudaMallocAsync on a capturing stream: graph memory nodes are not "
                                            "simulated");
  return cudaMalloc(ptr, size);
}

cudaError_t cudaFreeAsync(void* ptr, cudaStream_t stream) {
  if (cudaError_t e = janus::sim::detail::check_stream(stream, "cudaFreeAsync"); e != cudaSuccess) return e;
  if (janus::sim::detail::capture_concerns(stream))
    return set_error(cudaErrorNotSupported, "cudaFreeAsync on a capturing stream: graph memory nodes are not "
                                            "simulated");
  return cudaFree(ptr);
}

cudaError_t cudaMallocHost(void** ptr, size_t size) {
  if (ptr == nullptr) return set_error(cudaErrorInvalidValue, "cudaMallocHost: null pointer");
  *ptr = nullptr;
  if (size == 0) return ok();
  void* p = ::operator new(size, std::align_val_t(janus::sim::detail::kAlignment), std::nothrow);
  if (p == nullptr) return set_error(cudaErrorMemoryAllocation, "cudaMallocHost failed");
  auto& m = memory();
  std::lock_guard<std::mutex> lock(m.mutex);
  m.pinned.emplace(p, size);
  *ptr = p;
  return ok();
}

cudaError_t cudaHostAlloc(void** ptr, size_t size, unsigned int) { return cudaMallocHost(ptr, size); }

cudaError_t cudaFreeHost(void* ptr) {
  if (cudaError_t e = janus::sim::detail::check_unsafe_call("cudaFreeHost"); e != cudaSuccess) return e;
  if (ptr == nullptr) return ok();
  auto& m = memory();
  {
    std::lock_guard<std::mutex> lock(m.mutex);
    const auto block = m.pinned.find(ptr);
    if (block == m.pinned.end())
      return set_error(cudaErrorInvalidValue, "cudaFreeHost: not a live cudaMallocHost block");
    // cudaFreeHost waits for the copies still reading the block.
    const auto* first = static_cast<const unsigned char*>(ptr);
    for (const auto& r : m.pending_reads)
      if (r.host >= first && r.host < first + block->second) {
        ++m.host_waits;
        janus::sim::detail::complete_up_to(m, m.queued);
        break;
      }
    m.pinned.erase(block);
  }
  ::operator delete(ptr, std::align_val_t(janus::sim::detail::kAlignment));
  return ok();
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t count, cudaMemcpyKind kind) {
  if (cudaError_t e = janus::sim::detail::check_unsafe_call("cudaMemcpy"); e != cudaSuccess) return e;
  const cudaError_t e = janus::sim::detail::copy(dst, src, count, kind);
  if (e == cudaSuccess && count != 0) janus::sim::detail::host_waited();  // always synchronous
  return e;
}

cudaError_t janus::sim::detail::copy(void* dst, const void* src, size_t count, cudaMemcpyKind kind) {
  if (cudaError_t e = check_copy("cudaMemcpy", dst, src, count, kind); e != cudaSuccess) return e;
  if (count != 0) std::memmove(dst, src, count);
  return ok();
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, cudaMemcpyKind kind, cudaStream_t stream) {
  if (cudaError_t e = janus::sim::detail::check_stream(stream, "cudaMemcpyAsync"); e != cudaSuccess) return e;
  // From or to pageable host memory the copy is synchronous: host-to-device
  // waits for the stream's earlier work, device-to-host returns when done.
  const bool pageable = (kind == cudaMemcpyHostToDevice && !janus::sim::detail::pinned(src)) ||
                        (kind == cudaMemcpyDeviceToHost && !janus::sim::detail::pinned(dst));
  if (janus::sim::detail::capture_concerns(stream)) {
    if (cudaError_t e = janus::sim::detail::check_copy("cudaMemcpyAsync", dst, src, count, kind); e != cudaSuccess)
      return e;
    const bool host_side = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToHost;
    return janus::sim::detail::capture_node(
        stream, "cudaMemcpyAsync", "cudaMemcpyAsync",
        [=](cudaStream_t) { return janus::sim::detail::copy(dst, src, count, kind); }, {dst, src},
        host_side && pageable && count != 0);
  }
  const cudaError_t e = janus::sim::detail::copy(dst, src, count, kind);
  if (e == cudaSuccess && count != 0 && pageable) janus::sim::detail::host_waited();
  if (e == cudaSuccess && count != 0 && kind == cudaMemcpyHostToDevice && !pageable) {
    auto& m = memory();
    std::lock_guard<std::mutex> lock(m.mutex);
    if (m.lagging) {
      const auto* host = static_cast<const unsigned char*>(src);
      m.pending_reads.push_back({host, count, janus::sim::detail::fnv1a(host, count),
                                 janus::sim::detail::queue_position(m)});
    }
  }
  return e;
}

namespace {
cudaError_t set_memory(void* ptr, int value, size_t count) {
  if (cudaError_t e = janus::sim::detail::check_set("cudaMemset", ptr, count); e != cudaSuccess) return e;
  if (count != 0) std::memset(ptr, value, count);
  return ok();
}
}  // namespace

cudaError_t cudaMemset(void* ptr, int value, size_t count) {
  if (cudaError_t e = janus::sim::detail::check_unsafe_call("cudaMemset"); e != cudaSuccess) return e;
  return set_memory(ptr, value, count);
}

cudaError_t cudaMemsetAsync(void* ptr, int value, size_t count, cudaStream_t stream) {
  if (cudaError_t e = janus::sim::detail::check_stream(stream, "cudaMemsetAsync"); e != cudaSuccess) return e;
  if (janus::sim::detail::capture_concerns(stream)) {
    if (cudaError_t e = janus::sim::detail::check_set("cudaMemsetAsync", ptr, count); e != cudaSuccess) return e;
    return janus::sim::detail::capture_node(
        stream, "cudaMemsetAsync", "cudaMemsetAsync", [=](cudaStream_t) { return set_memory(ptr, value, count); },
        {ptr}, false);
  }
  return set_memory(ptr, value, count);
}

// ---- streams and events -----------------------------------------------------------------
cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, cudaStreamDefault); }

// Streams and events are heap objects whose live handles the runtime keeps in
// a set, so that a call with a destroyed or made-up handle fails as on a GPU.
template <class Object>
cudaError_t create_handle(Object** out, unsigned int flags, std::set<Object*> Memory::*live, const char* call) {
  if (out == nullptr) return set_error(cudaErrorInvalidValue, std::string(call) + ": null pointer");
  auto* h = new Object;
  h->flags = flags;
  auto& m = memory();
  std::lock_guard<std::mutex> lock(m.mutex);
  (m.*live).insert(h);
  *out = h;
  return ok();
}

template <class Object>
cudaError_t destroy_handle(Object* h, std::set<Object*> Memory::*live, const char* call, const char* what) {
  auto& m = memory();
  {
    std::lock_guard<std::mutex> lock(m.mutex);
    if ((m.*live).erase(h) == 0)
      return set_error(cudaErrorInvalidResourceHandle, std::string(call) + ": not a live " + what);
  }
  delete h;
  return ok();
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags) {
  const cudaError_t e = create_handle(stream, flags, &Memory::streams, "cudaStreamCreate");
  if (e == cudaSuccess) (*stream)->device = janus::sim::detail::t_current_device;
  return e;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  return destroy_handle(stream, &Memory::streams, "cudaStreamDestroy", "stream");
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  if (cudaError_t e = janus::sim::detail::check_stream(stream, "cudaStreamSynchronize"); e != cudaSuccess) return e;
  if (cudaError_t e = janus::sim::detail::check_synchronize(stream, "cudaStreamSynchronize", false); e != cudaSuccess)
    return e;
  janus::sim::detail::host_waited();
  return ok();
}

cudaError_t cudaStreamQuery(cudaStream_t stream) {  // never waits: all work is already done
  if (cudaError_t e = janus::sim::detail::check_stream(stream, "cudaStreamQuery"); e != cudaSuccess) return e;
  return janus::sim::detail::check_synchronize(stream, "cudaStreamQuery", false);
}

namespace {
// A call's event argument: cudaSuccess for a live cudaEventCreate handle, else
// cudaErrorInvalidResourceHandle set as the last error ("<api>: not a live event").
cudaError_t check_live_event(cudaEvent_t event, const char* api) {
  auto& m = memory();
  std::lock_guard<std::mutex> lock(m.mutex);
  return m.events.count(event) != 0
             ? cudaSuccess
             : set_error(cudaErrorInvalidResourceHandle, std::string(api) + ": not a live event");
}
}  // namespace

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int) {
  if (cudaError_t e = janus::sim::detail::check_stream(stream, "cudaStreamWaitEvent"); e != cudaSuccess) return e;
  if (cudaError_t e = check_live_event(event, "cudaStreamWaitEvent"); e != cudaSuccess) return e;
  return janus::sim::detail::capture_stream_wait(stream, event);
}

cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
  return create_handle(event, flags, &Memory::events, "cudaEventCreate");
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  return destroy_handle(event, &Memory::events, "cudaEventDestroy", "event");
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  if (cudaError_t e = janus::sim::detail::check_stream(stream, "cudaEventRecord"); e != cudaSuccess) return e;
  if (cudaError_t e = check_live_event(event, "cudaEventRecord"); e != cudaSuccess) return e;
  if (cudaError_t e = janus::sim::detail::capture_event_record(event, stream); e != cudaSuccess) return e;
  if (event->capture != 0) return ok();  // recorded into the capture: no time yet
  event->when = std::chrono::steady_clock::now();
  event->recorded = true;
  auto& m = memory();
  std::lock_guard<std::mutex> lock(m.mutex);
  event->position = janus::sim::detail::queue_position(m);
  return ok();
}

namespace {
cudaError_t check_event_done(cudaEvent_t event, const char* api) {
  if (cudaError_t e = check_live_event(event, api); e != cudaSuccess) return e;
  if (janus::sim::detail::event_in_active_capture(event))
    return set_error(cudaErrorCapturedEvent, std::string(api) + " of an event last recorded in a capturing stream");
  return ok();
}
}  // namespace

// On the lagging device, an event the device has not reached is not ready,
// and waiting for it is a host wait that completes the work up to it.
cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  if (cudaError_t e = check_event_done(event, "cudaEventSynchronize"); e != cudaSuccess) return e;
  auto& m = memory();
  std::lock_guard<std::mutex> lock(m.mutex);
  if (m.lagging && event->recorded && event->position > m.completed) {
    ++m.host_waits;
    janus::sim::detail::complete_up_to(m, event->position);
  }
  return ok();
}

cudaError_t cudaEventQuery(cudaEvent_t event) {
  if (cudaError_t e = check_event_done(event, "cudaEventQuery"); e != cudaSuccess) return e;
  auto& m = memory();
  std::lock_guard<std::mutex> lock(m.mutex);
  return m.lagging && event->recorded && event->position > m.completed ? cudaErrorNotReady : ok();
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (ms == nullptr) return set_error(cudaErrorInvalidValue, "cudaEventElapsedTime: null pointer");
  for (cudaEvent_t e : {start, end})
    if (cudaError_t err = check_event_done(e, "cudaEventElapsedTime"); err != cudaSuccess) return err;
  auto& m = memory();
  std::lock_guard<std::mutex> lock(m.mutex);
  if (m.events.count(start) == 0 || m.events.count(end) == 0)
    return set_error(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: not a live event");
  if (!start->recorded || !end->recorded)
    return set_error(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: event not recorded");
  if ((start->flags | end->flags) & cudaEventDisableTiming)
    return set_error(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: event created with DisableTiming");
  *ms = std::chrono::duration<float, std::milli>(end->when - start->when).count();
  return ok();
}

namespace janus::sim {
int device_of(const void* ptr) {
  auto& m = detail::memory();
  std::lock_guard<std::mutex> lock(m.mutex);
  const auto a = reinterpret_cast<std::uintptr_t>(ptr);
  auto it = m.device.upper_bound(a);
  if (it == m.device.begin()) return -1;
  --it;
  if (a >= it->first + it->second) return -1;
  return m.owner[it->first];
}

namespace detail {
bool launch_on_current_device(const char* kernel_name, cudaStream_t stream,
                              std::initializer_list<const void*> pointers) {
  const int current = t_current_device;
  std::ostringstream s;
  if (stream != nullptr && stream != cudaStreamLegacy && stream != cudaStreamPerThread && valid_stream(stream) &&
      stream->device != current) {
    s << "kernel '" << kernel_name << "' launched on a stream of device " << stream->device << " while device "
      << current << " is current (call cudaSetDevice first)";
    set_error(cudaErrorInvalidResourceHandle, s.str());
    return false;
  }
  for (const void* p : pointers) {
    if (p == nullptr) continue;
    const int owner = device_of(p);
    if (owner < 0 || owner == current) continue;
    s << "kernel '" << kernel_name << "' on device " << current << " was passed " << p
      << ", memory of device " << owner << " (no peer access: an illegal address on a GPU)";
    set_error(cudaErrorIllegalAddress, s.str());
    return false;
  }
  return true;
}
}  // namespace detail

unsigned long long host_waits() {
  auto& m = detail::memory();
  std::lock_guard<std::mutex> lock(m.mutex);
  return m.host_waits;
}

void set_device_lag(bool on) {
  auto& m = detail::memory();
  std::lock_guard<std::mutex> lock(m.mutex);
  if (!on) detail::complete_up_to(m, m.queued);
  m.lagging = on;
}

std::uint64_t queued_work() {
  auto& m = detail::memory();
  std::lock_guard<std::mutex> lock(m.mutex);
  return m.queued;
}

void finish_work(std::uint64_t position) {
  auto& m = detail::memory();
  std::lock_guard<std::mutex> lock(m.mutex);
  detail::complete_up_to(m, position < m.queued ? position : m.queued);
}

unsigned long long pinned_overwrites() {
  auto& m = detail::memory();
  std::lock_guard<std::mutex> lock(m.mutex);
  return m.pinned_overwrites;
}

size_t allocated_bytes() {
  auto& m = detail::memory();
  std::lock_guard<std::mutex> lock(m.mutex);
  return m.allocated;
}
}  // namespace janus::sim
