// Janus CUDA simulator: how the race detector observes kernels' memory accesses.
//
// The SIM build compiles the kernel sources with the compiler's
// ThreadSanitizer instrumentation (-fsanitize=thread; cmake/JanusCuda.cmake)
// but links no ThreadSanitizer runtime. Instead this file (itself not
// instrumented) defines the entry points that instrumentation calls, with the
// signatures of compiler-rt's public interface (tsan_interface.h,
// tsan_interface_atomic.h), and forwards each access to the race detector
// (racecheck.cpp). When no checked launch runs, every entry point costs one
// relaxed load and a branch; the atomic ones then only perform the operation.
//
// The instrumented code therefore behaves exactly as uninstrumented code: the
// entry points never change memory except to perform the atomic operation
// asked for (always sequentially consistent, at least as strong as asked).
#if JANUS_SIM_RACECHECK_INSTRUMENTED

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "cuda/sim/racecheck.hpp"

namespace {

using janus::sim::detail::AccessKind;

// Must stay a macro: __builtin_return_address(0) has to name the instrumented
// call site, i.e. be evaluated in the entry point itself.
#define JANUS_SIM_OBSERVE(address, bytes, kind)                                           \
  do {                                                                                    \
    if (__builtin_expect(janus::sim::detail::g_race_active.load(std::memory_order_relaxed), 0)) \
      janus::sim::detail::race_access((address), (bytes), (kind), __builtin_return_address(0)); \
  } while (0)

}  // namespace

extern "C" {

// The module constructor of every instrumented translation unit calls this.
void __tsan_init() {}

// Function entry/exit are not instrumented (--param=tsan-instrument-func-entry-exit=0)
// but are defined in case a compiler ignores that.
void __tsan_func_entry(void*) {}
void __tsan_func_exit() {}

// ---- plain loads and stores ------------------------------------------------------------
#define JANUS_SIM_PLAIN_ACCESS(n)                                                                          \
  void __tsan_read##n(void* p) { JANUS_SIM_OBSERVE(p, n, AccessKind::read); }                              \
  void __tsan_write##n(void* p) { JANUS_SIM_OBSERVE(p, n, AccessKind::write); }                            \
  void __tsan_unaligned_read##n(void* p) { JANUS_SIM_OBSERVE(p, n, AccessKind::read); }                    \
  void __tsan_unaligned_write##n(void* p) { JANUS_SIM_OBSERVE(p, n, AccessKind::write); }                  \
  void __tsan_volatile_read##n(void* p) { JANUS_SIM_OBSERVE(p, n, AccessKind::read); }                     \
  void __tsan_volatile_write##n(void* p) { JANUS_SIM_OBSERVE(p, n, AccessKind::write); }
JANUS_SIM_PLAIN_ACCESS(1)
JANUS_SIM_PLAIN_ACCESS(2)
JANUS_SIM_PLAIN_ACCESS(4)
JANUS_SIM_PLAIN_ACCESS(8)
JANUS_SIM_PLAIN_ACCESS(16)
#undef JANUS_SIM_PLAIN_ACCESS

void __tsan_read_range(void* p, unsigned long size) { JANUS_SIM_OBSERVE(p, size, AccessKind::read); }
void __tsan_write_range(void* p, unsigned long size) { JANUS_SIM_OBSERVE(p, size, AccessKind::write); }

// Virtual-table pointers (kernels have no virtual functions; objects on the stack are skipped anyway).
void __tsan_vptr_read(void** p) { JANUS_SIM_OBSERVE(p, sizeof(void*), AccessKind::read); }
void __tsan_vptr_update(void** p, void* new_value) {
  if (*p != new_value) JANUS_SIM_OBSERVE(p, sizeof(void*), AccessKind::write);
}

// Memory intrinsics, which newer compilers route here instead of to memcpy/memset.
void* __tsan_memcpy(void* dst, const void* src, size_t n) {
  JANUS_SIM_OBSERVE(src, n, AccessKind::read);
  JANUS_SIM_OBSERVE(dst, n, AccessKind::write);
  return std::memcpy(dst, src, n);
}
void* __tsan_memmove(void* dst, const void* src, size_t n) {
  JANUS_SIM_OBSERVE(src, n, AccessKind::read);
  JANUS_SIM_OBSERVE(dst, n, AccessKind::write);
  return std::memmove(dst, src, n);
}
void* __tsan_memset(void* dst, int value, size_t n) {
  JANUS_SIM_OBSERVE(dst, n, AccessKind::write);
  return std::memset(dst, value, n);
}

// ---- atomics (std::atomic and the __atomic builtins in instrumented code) -----------
// The memory-order arguments are ignored: every operation is sequentially consistent.
#define JANUS_SIM_ATOMIC_RMW(bits, T, op, builtin)                                       \
  T __tsan_atomic##bits##_##op(volatile T* a, T v, int) {                               \
    JANUS_SIM_OBSERVE(const_cast<T*>(a), sizeof(T), AccessKind::atomic);                \
    return builtin(a, v, __ATOMIC_SEQ_CST);                                              \
  }
#define JANUS_SIM_ATOMICS(bits, T)                                                                       \
  T __tsan_atomic##bits##_load(const volatile T* a, int) {                                              \
    JANUS_SIM_OBSERVE(const_cast<T*>(a), sizeof(T), AccessKind::atomic);                                \
    return __atomic_load_n(a, __ATOMIC_SEQ_CST);                                                         \
  }                                                                                                      \
  void __tsan_atomic##bits##_store(volatile T* a, T v, int) {                                           \
    JANUS_SIM_OBSERVE(const_cast<T*>(a), sizeof(T), AccessKind::atomic);                                \
    __atomic_store_n(a, v, __ATOMIC_SEQ_CST);                                                            \
  }                                                                                                      \
  JANUS_SIM_ATOMIC_RMW(bits, T, exchange, __atomic_exchange_n)                                           \
  JANUS_SIM_ATOMIC_RMW(bits, T, fetch_add, __atomic_fetch_add)                                           \
  JANUS_SIM_ATOMIC_RMW(bits, T, fetch_sub, __atomic_fetch_sub)                                           \
  JANUS_SIM_ATOMIC_RMW(bits, T, fetch_and, __atomic_fetch_and)                                           \
  JANUS_SIM_ATOMIC_RMW(bits, T, fetch_or, __atomic_fetch_or)                                             \
  JANUS_SIM_ATOMIC_RMW(bits, T, fetch_xor, __atomic_fetch_xor)                                           \
  JANUS_SIM_ATOMIC_RMW(bits, T, fetch_nand, __atomic_fetch_nand)                                         \
  int __tsan_atomic##bits##_compare_exchange_strong(volatile T* a, T* expected, T v, int, int) {        \
    JANUS_SIM_OBSERVE(const_cast<T*>(a), sizeof(T), AccessKind::atomic);                                \
    return __atomic_compare_exchange_n(a, expected, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);       \
  }                                                                                                      \
  int __tsan_atomic##bits##_compare_exchange_weak(volatile T* a, T* expected, T v, int, int) {          \
    JANUS_SIM_OBSERVE(const_cast<T*>(a), sizeof(T), AccessKind::atomic);                                \
    return __atomic_compare_exchange_n(a, expected, v, true, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);        \
  }                                                                                                      \
  T __tsan_atomic##bits##_compare_exchange_val(volatile T* a, T expected, T v, int, int) {              \
    JANUS_SIM_OBSERVE(const_cast<T*>(a), sizeof(T), AccessKind::atomic);                                \
    __atomic_compare_exchange_n(a, &expected, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);             \
    return expected;                                                                                     \
  }
JANUS_SIM_ATOMICS(8, std::uint8_t)
JANUS_SIM_ATOMICS(16, std::uint16_t)
JANUS_SIM_ATOMICS(32, std::uint32_t)
JANUS_SIM_ATOMICS(64, std::uint64_t)
#undef JANUS_SIM_ATOMICS
#undef JANUS_SIM_ATOMIC_RMW

void __tsan_atomic_thread_fence(int) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
void __tsan_atomic_signal_fence(int) { __atomic_signal_fence(__ATOMIC_SEQ_CST); }

}  // extern "C"

#endif  // JANUS_SIM_RACECHECK_INSTRUMENTED
