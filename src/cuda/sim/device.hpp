// Janus CUDA simulator: what kernel code sees (qualifiers, built-in indices,
// barriers, warp collectives, atomics, fast-math intrinsics) and the launch.
//
// Execution model (see scheduler.cpp):
//   * A launch runs its blocks one after another on the calling OS thread,
//     under a process-wide lock (launches from several OS threads serialize).
//   * Inside a block every CUDA thread is a fiber (own 128 KiB stack, more under
//     ASan) on that one OS thread. A fiber runs until it finishes or reaches a
//     barrier (__syncthreads, __syncwarp, a shuffle/vote); the scheduler then
//     resumes the next runnable fiber. Threads therefore never interleave
//     between barriers, which makes every atomic trivially atomic.
//   * __shared__ is `static`: all fibers of the block see the same object and
//     blocks run one at a time, so a static is exactly one block's shared
//     memory. Function templates get one static per instantiation (one per
//     kernel variant), as in CUDA. Under ASan shared arrays are globals with
//     redzones, so out-of-bounds shared accesses are reported.
//   * Misuse is reported by throwing janus::sim::KernelError out of
//     JANUS_LAUNCH (never a hang): __syncthreads reached by only part of a
//     block or at different call sites, warp collectives whose lanes exited
//     or disagree on the mask, a launch from inside a kernel.
//   * Blocks run in linear order and threads in linear order within each
//     barrier interval, unless a schedule seed permutes both
//     (schedule_order.hpp: JANUS_SIM_SCHEDULE_SEED). Code that is only right
//     in one order is wrong on hardware; the race detector (racecheck.hpp:
//     JANUS_SIM_RACECHECK=1) reports the accesses that CUDA leaves unordered,
//     whatever order the simulator used.
#pragma once

#include <math.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "cuda/sim/racecheck.hpp"
#include "cuda/sim/runtime.hpp"
#include "cuda/sim/schedule_order.hpp"

// ---- qualifiers -------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __grid_constant__
// __restrict__ is a GCC/Clang keyword already.

// ---- built-in variables ------------------------------------------------------------
// Set by the scheduler before it resumes a fiber; a kernel may cache them.
extern uint3 threadIdx;
extern uint3 blockIdx;
extern dim3 blockDim;
extern dim3 gridDim;
constexpr int warpSize = 32;

namespace janus::sim {

// Thrown by JANUS_LAUNCH when a kernel misuses barriers/collectives or throws.
class KernelError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {

// One warp-collective request of the calling lane. Values travel as 64 raw bits.
enum class Collective { syncwarp, shfl, ballot };
struct CollectiveResult {
  std::uint64_t bits;
  bool poison;  // the source lane did not take part: CUDA leaves the value undefined
};
CollectiveResult warp_collective(const char* op, unsigned mask, Collective kind, std::uint64_t bits, int src_lane);
void syncthreads(const char* file, int line);
[[noreturn]] void trap(const char* what);

inline unsigned linear_thread() {
  return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
}
inline int lane_id() { return static_cast<int>(linear_thread() % 32u); }

template <class T>
inline T shfl(const char* op, unsigned mask, T var, int src_lane) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8,
                "warp shuffles of types wider than 8 bytes are not supported");
  std::uint64_t bits = 0;
  std::memcpy(&bits, &var, sizeof(T));
  CollectiveResult r = warp_collective(op, mask, Collective::shfl, bits, src_lane);
  if (r.poison) {  // undefined on hardware: make it loud
    if constexpr (std::is_floating_point_v<T>) return std::numeric_limits<T>::quiet_NaN();
    r.bits = 0xBAADF00DBAADF00Dull;
  }
  T out;
  std::memcpy(&out, &r.bits, sizeof(T));
  return out;
}

// width must be a power of two in [1, 32]; as on hardware, a source outside the
// caller's width-segment (or outside the warp) yields the caller's own value.
inline int seg_base(int lane, int width) { return lane & ~(width - 1); }

}  // namespace detail
}  // namespace janus::sim

// ---- barriers ---------------------------------------------------------------------
#define __syncthreads() ::janus::sim::detail::syncthreads(__FILE__, __LINE__)
inline void __syncwarp(unsigned mask = 0xffffffffu) {
  ::janus::sim::detail::warp_collective("__syncwarp", mask, ::janus::sim::detail::Collective::syncwarp, 0, -1);
}
inline void __threadfence() {}
inline void __threadfence_block() {}
inline void __threadfence_system() {}
[[noreturn]] inline void __trap() { ::janus::sim::detail::trap("__trap() called"); }

// ---- warp shuffles and votes ---------------------------------------------------------
template <class T>
inline T __shfl_sync(unsigned mask, T var, int src_lane, int width = warpSize) {
  using namespace janus::sim::detail;
  const int lane = lane_id();
  return shfl("__shfl_sync", mask, var, seg_base(lane, width) + (src_lane & (width - 1)));
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {
  using namespace janus::sim::detail;
  const int lane = lane_id();
  const int in_seg = (lane & (width - 1)) + static_cast<int>(delta);
  return shfl("__shfl_down_sync", mask, var, in_seg < width ? lane + static_cast<int>(delta) : -1);
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {
  using namespace janus::sim::detail;
  const int lane = lane_id();
  const int in_seg = (lane & (width - 1)) - static_cast<int>(delta);
  return shfl("__shfl_up_sync", mask, var, in_seg >= 0 ? lane - static_cast<int>(delta) : -1);
}
template <class T>
inline T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = warpSize) {
  using namespace janus::sim::detail;
  const int lane = lane_id();
  const int src = lane ^ lane_mask;
  // CUDA: a lane may read earlier width-groups, but reading a later one returns its own value.
  return shfl("__shfl_xor_sync", mask, var, (src >= 0 && src < seg_base(lane, width) + width) ? src : -1);
}
// Ballot results carry the vote in the low 32 bits and the participating lanes in the high 32.
inline unsigned __ballot_sync(unsigned mask, int predicate) {
  using namespace janus::sim::detail;
  return static_cast<unsigned>(warp_collective("__ballot_sync", mask, Collective::ballot, predicate != 0, -1).bits);
}
inline int __all_sync(unsigned mask, int predicate) {
  using namespace janus::sim::detail;
  const std::uint64_t r = warp_collective("__all_sync", mask, Collective::ballot, predicate != 0, -1).bits;
  return static_cast<unsigned>(r) == static_cast<unsigned>(r >> 32);
}
inline int __any_sync(unsigned mask, int predicate) {
  using namespace janus::sim::detail;
  return static_cast<unsigned>(warp_collective("__any_sync", mask, Collective::ballot, predicate != 0, -1).bits) != 0;
}
// __activemask() is not offered: lanes of a fiber warp are never "active together".

// ---- atomics -----------------------------------------------------------------------
// Fibers never interleave between barriers, so a plain read-modify-write is
// atomic. The overload set is CUDA's (no atomicAdd on long long, no float
// atomicMax, ...), so that code accepted here also compiles under nvcc.
// The race detector sees each as one atomic access (atomics do not race with
// each other), not as the plain load and store that implement it: the
// functions are not instrumented and report themselves, with their call site.
#define JANUS_SIM_ATOMIC_FUNCTION __attribute__((no_sanitize("thread"), noinline)) inline
#define JANUS_SIM_OBSERVE_ATOMIC(address) \
  ::janus::sim::detail::observe_atomic(address, sizeof(*(address)), __builtin_return_address(0))
#define JANUS_SIM_ATOMIC(name, T, expr)                 \
  JANUS_SIM_ATOMIC_FUNCTION T name(T* address, T val) { \
    JANUS_SIM_OBSERVE_ATOMIC(address);                  \
    const T old = *address;                             \
    *address = (expr);                                  \
    return old;                                         \
  }
#define JANUS_SIM_ATOMIC_BLOCK(name, T, expr) \
  JANUS_SIM_ATOMIC(name, T, expr)             \
  JANUS_SIM_ATOMIC(name##_block, T, expr)     \
  JANUS_SIM_ATOMIC(name##_system, T, expr)
JANUS_SIM_ATOMIC_BLOCK(atomicAdd, int, old + val)
JANUS_SIM_ATOMIC_BLOCK(atomicAdd, unsigned int, old + val)
JANUS_SIM_ATOMIC_BLOCK(atomicAdd, unsigned long long, old + val)
JANUS_SIM_ATOMIC_BLOCK(atomicAdd, float, old + val)
JANUS_SIM_ATOMIC_BLOCK(atomicAdd, double, old + val)
JANUS_SIM_ATOMIC_BLOCK(atomicSub, int, old - val)
JANUS_SIM_ATOMIC_BLOCK(atomicSub, unsigned int, old - val)
JANUS_SIM_ATOMIC_BLOCK(atomicExch, int, val)
JANUS_SIM_ATOMIC_BLOCK(atomicExch, unsigned int, val)
JANUS_SIM_ATOMIC_BLOCK(atomicExch, unsigned long long, val)
JANUS_SIM_ATOMIC_BLOCK(atomicExch, float, val)
JANUS_SIM_ATOMIC_BLOCK(atomicMax, int, old < val ? val : old)
JANUS_SIM_ATOMIC_BLOCK(atomicMax, unsigned int, old < val ? val : old)
JANUS_SIM_ATOMIC_BLOCK(atomicMax, long long, old < val ? val : old)
JANUS_SIM_ATOMIC_BLOCK(atomicMax, unsigned long long, old < val ? val : old)
JANUS_SIM_ATOMIC_BLOCK(atomicMin, int, val < old ? val : old)
JANUS_SIM_ATOMIC_BLOCK(atomicMin, unsigned int, val < old ? val : old)
JANUS_SIM_ATOMIC_BLOCK(atomicMin, long long, val < old ? val : old)
JANUS_SIM_ATOMIC_BLOCK(atomicMin, unsigned long long, val < old ? val : old)
JANUS_SIM_ATOMIC_BLOCK(atomicAnd, int, old & val)
JANUS_SIM_ATOMIC_BLOCK(atomicAnd, unsigned int, old & val)
JANUS_SIM_ATOMIC_BLOCK(atomicAnd, unsigned long long, old & val)
JANUS_SIM_ATOMIC_BLOCK(atomicOr, int, old | val)
JANUS_SIM_ATOMIC_BLOCK(atomicOr, unsigned int, old | val)
JANUS_SIM_ATOMIC_BLOCK(atomicOr, unsigned long long, old | val)
JANUS_SIM_ATOMIC_BLOCK(atomicXor, int, old ^ val)
JANUS_SIM_ATOMIC_BLOCK(atomicXor, unsigned int, old ^ val)
JANUS_SIM_ATOMIC_BLOCK(atomicXor, unsigned long long, old ^ val)
JANUS_SIM_ATOMIC_BLOCK(atomicInc, unsigned int, old >= val ? 0u : old + 1u)
JANUS_SIM_ATOMIC_BLOCK(atomicDec, unsigned int, (old == 0u || old > val) ? val : old - 1u)
#undef JANUS_SIM_ATOMIC_BLOCK
#undef JANUS_SIM_ATOMIC
#define JANUS_SIM_ATOMIC_CAS(T)                                         \
  JANUS_SIM_ATOMIC_FUNCTION T atomicCAS(T* address, T compare, T val) { \
    JANUS_SIM_OBSERVE_ATOMIC(address);                                  \
    const T old = *address;                                             \
    if (old == compare) *address = val;                                 \
    return old;                                                         \
  }
JANUS_SIM_ATOMIC_CAS(int)
JANUS_SIM_ATOMIC_CAS(unsigned int)
JANUS_SIM_ATOMIC_CAS(unsigned long long)
JANUS_SIM_ATOMIC_CAS(unsigned short)
#undef JANUS_SIM_ATOMIC_CAS
#undef JANUS_SIM_OBSERVE_ATOMIC
#undef JANUS_SIM_ATOMIC_FUNCTION

// ---- intrinsics ---------------------------------------------------------------------
template <class T>
inline T __ldg(const T* p) { return *p; }
inline float __fdividef(float a, float b) { return a / b; }
inline float __frcp_rn(float a) { return 1.0f / a; }
inline float rsqrtf(float a) { return 1.0f / std::sqrt(a); }
inline double rsqrt(double a) { return 1.0 / std::sqrt(a); }
inline float __expf(float a) { return std::exp(a); }
inline float __logf(float a) { return std::log(a); }
inline float __log2f(float a) { return std::log2(a); }
inline float __sinf(float a) { return std::sin(a); }
inline float __cosf(float a) { return std::cos(a); }
inline float __tanf(float a) { return std::tan(a); }
inline float __powf(float a, float b) { return std::pow(a, b); }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }
inline float __saturatef(float a) { return a < 0.0f ? 0.0f : (a > 1.0f ? 1.0f : (a == a ? a : 0.0f)); }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
// The _rn arithmetic intrinsics round their one operation to nearest and are
// never contracted with a neighbouring add or multiply by nvcc. The simulator
// may build kernels with -ffp-contract=fast (as nvcc contracts plain
// expressions), so the result passes through a volatile: an opaque value that
// the optimiser cannot fuse into an FMA.
namespace janus::sim::detail {
template <class T>
inline T rounded(T v) {
  volatile T r = v;
  return r;
}
}  // namespace janus::sim::detail
inline float __fadd_rn(float a, float b) { return janus::sim::detail::rounded(a + b); }
inline float __fsub_rn(float a, float b) { return janus::sim::detail::rounded(a - b); }
inline float __fmul_rn(float a, float b) { return janus::sim::detail::rounded(a * b); }
inline double __dadd_rn(double a, double b) { return janus::sim::detail::rounded(a + b); }
inline double __dsub_rn(double a, double b) { return janus::sim::detail::rounded(a - b); }
inline double __dmul_rn(double a, double b) { return janus::sim::detail::rounded(a * b); }
inline void __sincosf(float a, float* sn, float* cs) {
  *sn = std::sin(a);
  *cs = std::cos(a);
}
inline int __float2int_rn(float a) { return static_cast<int>(std::nearbyint(a)); }
inline int __float2int_rz(float a) { return static_cast<int>(a); }
inline int __float2int_rd(float a) { return static_cast<int>(std::floor(a)); }
inline int __float2int_ru(float a) { return static_cast<int>(std::ceil(a)); }
inline float __int2float_rn(int a) { return static_cast<float>(a); }
inline int __float_as_int(float a) { int r; std::memcpy(&r, &a, 4); return r; }
inline unsigned __float_as_uint(float a) { unsigned r; std::memcpy(&r, &a, 4); return r; }
inline float __int_as_float(int a) { float r; std::memcpy(&r, &a, 4); return r; }
inline float __uint_as_float(unsigned a) { float r; std::memcpy(&r, &a, 4); return r; }
inline long long __double_as_longlong(double a) { long long r; std::memcpy(&r, &a, 8); return r; }
inline double __longlong_as_double(long long a) { double r; std::memcpy(&r, &a, 8); return r; }
inline int __popc(unsigned a) { return __builtin_popcount(a); }
inline int __popcll(unsigned long long a) { return __builtin_popcountll(a); }
inline int __clz(int a) { return a == 0 ? 32 : __builtin_clz(static_cast<unsigned>(a)); }
inline int __clzll(long long a) { return a == 0 ? 64 : __builtin_clzll(static_cast<unsigned long long>(a)); }
inline int __ffs(int a) { return __builtin_ffs(a); }
inline int __ffsll(long long a) { return __builtin_ffsll(a); }
inline unsigned __brev(unsigned a) {
  unsigned r = 0;
  for (int i = 0; i < 32; ++i) r |= ((a >> i) & 1u) << (31 - i);
  return r;
}
inline int __mul24(int a, int b) { return a * b; }
inline unsigned __umul24(unsigned a, unsigned b) { return a * b; }
inline int __mulhi(int a, int b) { return static_cast<int>((static_cast<long long>(a) * b) >> 32); }
inline unsigned __umulhi(unsigned a, unsigned b) {
  return static_cast<unsigned>((static_cast<unsigned long long>(a) * b) >> 32);
}

// CUDA declares min/max overloads in the global namespace for host and device code.
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a < b ? b : a; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a < b ? b : a; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a < b ? b : a; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a < b ? b : a; }
inline float min(float a, float b) { return std::fmin(a, b); }
inline float max(float a, float b) { return std::fmax(a, b); }
inline double min(double a, double b) { return std::fmin(a, b); }
inline double max(double a, double b) { return std::fmax(a, b); }
inline unsigned min(int a, unsigned b) { return min(static_cast<unsigned>(a), b); }
inline unsigned max(int a, unsigned b) { return max(static_cast<unsigned>(a), b); }
inline unsigned min(unsigned a, int b) { return min(a, static_cast<unsigned>(b)); }
inline unsigned max(unsigned a, int b) { return max(a, static_cast<unsigned>(b)); }
inline double min(float a, double b) { return std::fmin(static_cast<double>(a), b); }
inline double max(float a, double b) { return std::fmax(static_cast<double>(a), b); }
inline double min(double a, float b) { return std::fmin(a, static_cast<double>(b)); }
inline double max(double a, float b) { return std::fmax(a, static_cast<double>(b)); }

// ---- launch -----------------------------------------------------------------------
namespace janus::sim {
namespace detail {
using KernelThunk = void (*)(void* context);
// Runs the whole grid (synchronously) or records a launch error as CUDA does.
// `context` (context_bytes long) holds the kernel's parameters.
void launch(const char* kernel_name, dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
            KernelThunk thunk, void* context, size_t context_bytes);
// Stream capture (graph.cpp): whether a launch on `stream` concerns a capture
// (then it goes through capture_launch, which checks the configuration and
// records `run` as the graph's kernel node, or refuses it as CUDA does).
bool capture_concerns(cudaStream_t stream);
void capture_launch(const char* kernel_name, dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
                    std::vector<const void*> pointers, std::function<void(cudaStream_t)> run);
}  // namespace detail

template <class Call>
class Launcher {
 public:
  Launcher(const char* name, dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream, Call call)
      : name_(name), grid_(grid), block_(block), shared_bytes_(shared_bytes), stream_(stream),
        call_(std::move(call)) {}
  // The arguments are evaluated once, on the host, and copied like CUDA kernel
  // parameters; every simulated thread calls the kernel with those copies.
  // On a capturing stream the launch and its argument copies are kept as the
  // graph's kernel node; each replay runs the kernel on fresh copies of them.
  template <class... Args>
  void operator()(Args&&... args) {
    if (!detail::launch_on_current_device(name_, stream_, {pointer_of(args)...})) return;
    using Params = std::tuple<std::decay_t<Args>...>;
    if (detail::capture_concerns(stream_)) {
      std::vector<const void*> pointers{pointer_of(args)...};
      auto kept = std::make_shared<const std::pair<Call, Params>>(call_, Params(std::forward<Args>(args)...));
      detail::capture_launch(name_, grid_, block_, shared_bytes_, stream_, std::move(pointers),
                             [kept, name = name_, grid = grid_, block = block_,
                              shared = shared_bytes_](cudaStream_t s) {
                               run(name, grid, block, shared, s, kept->first, Params(kept->second));
                             });
      return;
    }
    run(name_, grid_, block_, shared_bytes_, stream_, call_, Params(std::forward<Args>(args)...));
  }

 private:
  const char* name_;
  dim3 grid_, block_;
  size_t shared_bytes_;
  cudaStream_t stream_;
  Call call_;

  template <class Params>
  static void run(const char* name, dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
                  const Call& call, Params params) {
    struct Context {
      const Call* call;
      Params params;
    } context{&call, std::move(params)};
    detail::launch(name, grid, block, shared_bytes, stream,
                   [](void* p) {
                     auto* c = static_cast<Context*>(p);
                     std::apply(*c->call, c->params);
                   },
                   &context, sizeof context);
  }

  template <class T>
  static const void* pointer_of(const T& arg) {
    if constexpr (std::is_pointer_v<T> && std::is_object_v<std::remove_pointer_t<T>>)
      return const_cast<const void*>(static_cast<const volatile void*>(arg));
    else return nullptr;
  }
};

template <class Call>
Launcher<Call> make_launcher(const char* name, dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
                             Call call) {
  return Launcher<Call>(name, grid, block, shared_bytes, stream, std::move(call));
}

}  // namespace janus::sim
