// Janus CUDA simulator: a race detector for shared and global memory, in the
// spirit of compute-sanitizer's racecheck.
//
//   JANUS_SIM_RACECHECK=1   every launch is checked; a launch with a race
//                           throws janus::sim::KernelError naming the kernel,
//                           the address, the two conflicting accesses and the
//                           threads (block and thread index) that made them
//   0 or unset              off (the default; what remains is one call, a
//                           load and a branch per memory access of the kernels)
//
// What is a race. Two accesses to the same byte, at least one a write, made
// by different CUDA threads that nothing orders, where the only orderings
// inside one launch are:
//   * __syncthreads(): every access of a block before it happens before every
//     access of that block after it (the block's "barrier intervals");
//   * __syncwarp(mask): within a barrier interval, orders the accesses of the
//     lanes in mask made before it before those they make after it (vector
//     clocks per warp). Shuffles and votes (__shfl*_sync, __ballot_sync, ...)
//     exchange registers but are NOT treated as ordering memory: the CUDA
//     Programming Guide promises memory ordering among the participants only
//     for __syncwarp, and since Volta the lanes of a warp are not in lockstep;
//   * nothing between different blocks of one launch: for global memory,
//     conflicting accesses from two blocks are always a race;
//   * two atomic operations (atomicAdd, atomicCAS, ...) never race with each
//     other; an atomic and a plain access do.
// Accesses in different launches are ordered (the simulator runs one stream
// in issue order). The detector checks the orders that CUDA guarantees, not
// the order the simulator happened to use, so it finds races that every test
// passes by luck.
//
// How accesses are observed. In the SIM build the kernel sources
// (src/cuda/*.cu and the simulator's own tests) are compiled with the host
// compiler's ThreadSanitizer instrumentation (-fsanitize=thread, without its
// runtime): every load and store the compiler cannot keep in a register
// becomes a call to __tsan_readN / __tsan_writeN, which instrumentation.cpp
// defines to forward here. Kernels need no annotation and run unchanged under
// nvcc. What is checked:
//   * global memory: addresses inside a cudaMalloc block, shadowed per
//     4-byte word (one write and two reads remembered per word, as
//     ThreadSanitizer keeps a bounded history: a race with an access that
//     fell out of that history can be missed, never invented);
//   * block-local memory: every other address except the running thread's
//     own stack (its locals), the kernel's parameters and the built-in index
//     variables. That is __shared__ arrays (statics in the simulator), checked
//     between the threads of one block; __device__ globals are checked only
//     within a block as well (the simulator cannot tell them from shared).
// Not observed: memcpy/memset calls inside kernels, accesses from code the
// linker took from an uninstrumented translation unit (an inline function
// also instantiated outside the kernel files), cuBLAS (host code here).
//
// Cost, measured on the parity suite (ctest -L parity, 2 cores): with the
// detector off, the instrumentation adds about 10% to the simulator's time;
// on, the suite takes about 2.2-2.4x as long (28-41 s against 13-17 s). The
// shadow of global memory takes 48 bytes per 4-byte word touched.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace janus::sim {

// True when this build's kernels are instrumented (a SIM build without
// AddressSanitizer or the fuzzers' instrumentation, which exclude it).
bool racecheck_available();
// The setting in force: set_racecheck's if called, else JANUS_SIM_RACECHECK
// ("1" on, "0" or unset off, anything else makes every launch fail).
bool racecheck_enabled();
// Overrides the environment for the rest of the process (tests).
void set_racecheck(bool on);
// Accesses to shared and global memory the detector has checked so far (all
// launches of the process): evidence that the kernels are observed at all.
std::uint64_t racecheck_checked_accesses();

namespace detail {

enum class AccessKind : std::uint8_t { read, write, atomic };

// True while a checked launch runs (any OS thread may read it: instrumented
// inline functions also run outside kernels).
extern std::atomic<bool> g_race_active;

// The slow path of an observed access (a no-op outside the checked kernel's fibers).
void race_access(const void* address, std::size_t bytes, AccessKind kind, const void* pc);

// An atomic operation of the simulator's atomicAdd/atomicCAS/... family, called from `pc`.
inline void observe_atomic(const void* address, std::size_t bytes, const void* pc) {
  if (g_race_active.load(std::memory_order_relaxed)) race_access(address, bytes, AccessKind::atomic, pc);
}

}  // namespace detail
}  // namespace janus::sim
