// Janus CUDA simulator: kernel launches, fibers, barriers and warp collectives.
//
// A launch runs blocks one after another. For a block, every CUDA thread gets
// a fiber (a stack from a pool that is kept between launches). The scheduler
// makes passes over the fibers in thread order and resumes each runnable one;
// a fiber runs until it finishes or waits at a barrier:
//   * __syncthreads: the fiber records its call site and parks; the thread
//     that arrives last releases all parked threads and carries on.
//   * warp collectives (__shfl*_sync, votes, __syncwarp): each lane deposits
//     its value and source lane in its own slot and parks; the last lane of
//     the mask computes every participant's result, releases them and carries
//     on. Results live in per-lane slots, so nothing can be overwritten before
//     it is read.
// When a pass finds nothing runnable while threads still wait, the block is
// deadlocked: the scheduler explains who waits where and throws KernelError.
//
// Order: blocks in linear index order and, in every pass, fibers in linear
// thread order; with a schedule seed (schedule_order.hpp) both are seeded
// permutations, a new one for every pass of every block. With the race
// detector on (racecheck.hpp) the scheduler tells it which thread runs and
// where the barriers are.
//
// Context switching: a few instructions of x86-64 assembly (callee-saved
// registers + stack pointer; no signal mask syscall as in swapcontext), with
// ucontext as the fallback on other architectures. Under AddressSanitizer
// every switch is announced with __sanitizer_start/finish_switch_fiber.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <vector>

#include "cuda/sim/device.hpp"
#include "cuda/sim/internal.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define JANUS_SIM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define JANUS_SIM_ASAN 1
#endif
#endif
#ifndef JANUS_SIM_ASAN
#define JANUS_SIM_ASAN 0
#endif

#if JANUS_SIM_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

uint3 threadIdx{0, 0, 0};
uint3 blockIdx{0, 0, 0};
dim3 blockDim{1, 1, 1};
dim3 gridDim{1, 1, 1};

#if defined(__x86_64__)
// void janus_sim_switch(void** save_sp, void* load_sp): saves the callee-saved
// registers on the current stack, stores the stack pointer in *save_sp, loads
// load_sp and restores the registers saved there. A new fiber's stack is
// prepared so that the final `ret` lands in janus_sim_fiber_start, which calls
// r13(r12).
asm(R"(
  .text
  .p2align 4
  .globl janus_sim_switch
  .hidden janus_sim_switch
  .type janus_sim_switch, @function
janus_sim_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size janus_sim_switch, .-janus_sim_switch

  .p2align 4
  .globl janus_sim_fiber_start
  .hidden janus_sim_fiber_start
  .type janus_sim_fiber_start, @function
janus_sim_fiber_start:
  movq %r12, %rdi
  callq *%r13
  ud2
  .size janus_sim_fiber_start, .-janus_sim_fiber_start
)");
extern "C" void janus_sim_switch(void** save_sp, void* load_sp);
extern "C" void janus_sim_fiber_start();
#endif

namespace janus::sim::detail {
namespace {

constexpr unsigned kMaxThreadsPerBlock = 1024;
#if JANUS_SIM_ASAN
constexpr size_t kStackSize = 512 * 1024;  // ASan frames are large
#else
constexpr size_t kStackSize = 128 * 1024;
#endif

enum class FiberState { ready, block_barrier, warp_barrier, done, faulted };

struct Fiber {
  // Context.
#if defined(__x86_64__)
  void* sp = nullptr;
#else
  ucontext_t uc{};
#endif
  char* stack = nullptr;  // lowest usable byte (a guard page lies below)
  void* asan_fake_stack = nullptr;
  // CUDA identity and state.
  uint3 tid{};
  unsigned linear = 0;
  FiberState state = FiberState::ready;
  // Barrier bookkeeping.
  const char* sync_file = nullptr;
  int sync_line = 0;
  const char* collective = nullptr;  // op name while waiting in a warp collective
  unsigned mask = 0;
  Collective kind = Collective::syncwarp;
  std::uint64_t value = 0;
  int src_lane = -1;
  CollectiveResult result{};
};

struct Warp {
  unsigned existing = 0;  // lanes that exist in this block (partial last warp)
  unsigned arrived = 0;
  unsigned participants = 0;
  unsigned mask = 0;
  const char* op = nullptr;
};

struct BlockRun {
  const char* kernel = nullptr;
  KernelThunk thunk = nullptr;
  void* context = nullptr;
  std::vector<Fiber> fibers;  // the pool; only the first `count` are used
  std::vector<Warp> warps;
  unsigned count = 0;
  Fiber* current = nullptr;
#if defined(__x86_64__)
  void* scheduler_sp = nullptr;
#else
  ucontext_t scheduler_uc{};
#endif
  // ASan: the scheduler's (OS thread's) stack, learnt on the first switch.
  const void* main_stack_bottom = nullptr;
  size_t main_stack_size = 0;
  // Block barrier.
  unsigned block_arrived = 0;
  const char* block_file = nullptr;
  int block_line = 0;
  // Failure of the running block.
  std::string failure;
  bool stacks_dirty = false;  // a fiber was abandoned mid-kernel (ASan shadow must be cleared)
  // Checks of the running launch.
  std::uint64_t schedule_seed = 0;  // 0: fixed order
  std::uint64_t block_linear = 0;   // of the running block
  bool racecheck = false;
};

std::mutex g_launch_mutex;
BlockRun g_run;
thread_local bool t_in_kernel = false;  // this OS thread is running a launch
unsigned long long g_launches = 0;
unsigned long long g_stream_launches = 0;  // not replayed from a graph
std::map<std::string, unsigned long long> g_launches_by_kernel;  // tests count one kernel's launches

std::string dim_str(uint3 d) {
  std::ostringstream s;
  s << '(' << d.x << ',' << d.y << ',' << d.z << ')';
  return s.str();
}
std::string where() {
  std::ostringstream s;
  s << "kernel '" << g_run.kernel << "', block " << dim_str(blockIdx);
  return s.str();
}

// ---- stacks ------------------------------------------------------------------------
void ensure_stacks(unsigned n) {
  BlockRun& r = g_run;
  if (r.fibers.size() >= n) return;
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t old = r.fibers.size();
  r.fibers.resize(n);
  for (size_t i = old; i < n; ++i) {
    void* p = mmap(nullptr, kStackSize + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED) throw KernelError("Janus CUDA simulator: cannot map a fiber stack");
    mprotect(p, page, PROT_NONE);  // guard page: a stack overflow faults instead of corrupting
    r.fibers[i].stack = static_cast<char*>(p) + page;
  }
}

// ---- switching -------------------------------------------------------------------------
void fiber_main(void*);
#if !defined(__x86_64__)
void fiber_main_trampoline();
#endif

inline void asan_start_switch([[maybe_unused]] void** fake_save, [[maybe_unused]] const void* bottom,
                              [[maybe_unused]] size_t size) {
#if JANUS_SIM_ASAN
  __sanitizer_start_switch_fiber(fake_save, bottom, size);
#endif
}
inline void asan_finish_switch([[maybe_unused]] void* fake_save, [[maybe_unused]] const void** old_bottom,
                               [[maybe_unused]] size_t* old_size) {
#if JANUS_SIM_ASAN
  __sanitizer_finish_switch_fiber(fake_save, old_bottom, old_size);
#endif
}

void prepare(Fiber& f) {
#if defined(__x86_64__)
  // Stack, from sp upwards: r15 r14 r13 r12 rbx rbp <return address>, then
  // padding. After the final `ret` rsp = sp + 56, which must be 16-byte
  // aligned so that the `call` in janus_sim_fiber_start enters fiber_main with
  // rsp = 8 (mod 16), as the SysV ABI requires.
  // Tops are staggered: stacks at the same page offset would all compete for
  // the same few L1 sets.
  const size_t stagger = (f.linear % 61) * 64;
  auto top = reinterpret_cast<std::uintptr_t>(f.stack + kStackSize - stagger) & ~std::uintptr_t{15};
  auto* slot = reinterpret_cast<void**>(top - 72);
  slot[0] = nullptr;                                                    // r15
  slot[1] = nullptr;                                                    // r14
  slot[2] = reinterpret_cast<void*>(&fiber_main);                       // r13
  slot[3] = &f;                                                         // r12
  slot[4] = nullptr;                                                    // rbx
  slot[5] = nullptr;                                                    // rbp
  slot[6] = reinterpret_cast<void*>(&janus_sim_fiber_start);            // return address
  slot[7] = nullptr;
  f.sp = slot;
#else
  getcontext(&f.uc);
  f.uc.uc_stack.ss_sp = f.stack;
  f.uc.uc_stack.ss_size = kStackSize;
  f.uc.uc_link = nullptr;
  makecontext(&f.uc, reinterpret_cast<void (*)()>(&fiber_main_trampoline), 0);
#endif
}

// Scheduler -> fiber.
void resume(Fiber& f) {
  BlockRun& r = g_run;
  r.current = &f;
  threadIdx = f.tid;
  if (r.racecheck) race_resume(f.linear, f.stack, kStackSize);
  void* fake = nullptr;
  asan_start_switch(&fake, f.stack, kStackSize);
#if defined(__x86_64__)
  janus_sim_switch(&r.scheduler_sp, f.sp);
#else
  swapcontext(&r.scheduler_uc, &f.uc);
#endif
  asan_finish_switch(fake, nullptr, nullptr);
  r.current = nullptr;
}

// Fiber -> scheduler (the fiber is parked, finished or faulted).
void yield_to_scheduler(Fiber& f, bool final_switch) {
  BlockRun& r = g_run;
  asan_start_switch(final_switch ? nullptr : &f.asan_fake_stack, r.main_stack_bottom, r.main_stack_size);
#if defined(__x86_64__)
  janus_sim_switch(&f.sp, r.scheduler_sp);
#else
  swapcontext(&f.uc, &r.scheduler_uc);
#endif
  asan_finish_switch(f.asan_fake_stack, nullptr, nullptr);
  threadIdx = f.tid;  // the scheduler set it for whoever ran meanwhile
}

void fiber_main(void* arg) {
  auto& f = *static_cast<Fiber*>(arg);
  BlockRun& r = g_run;
  asan_finish_switch(nullptr, &r.main_stack_bottom, &r.main_stack_size);
  try {
    r.thunk(r.context);
    f.state = FiberState::done;
  } catch (const std::exception& e) {
    std::ostringstream s;
    s << "thread " << dim_str(f.tid) << " of " << where() << " threw: " << e.what();
    r.failure = s.str();
    f.state = FiberState::faulted;
  } catch (...) {
    std::ostringstream s;
    s << "thread " << dim_str(f.tid) << " of " << where() << " threw an unknown exception";
    r.failure = s.str();
    f.state = FiberState::faulted;
  }
  yield_to_scheduler(f, true);
  std::abort();  // a finished fiber is never resumed
}

#if !defined(__x86_64__)
void fiber_main_trampoline() { fiber_main(g_run.current); }
#endif

// Abandons the calling fiber; g_run.failure holds the message.
[[noreturn]] void fault(Fiber& f) {
  f.state = FiberState::faulted;
  yield_to_scheduler(f, false);
  std::abort();  // a faulted fiber is never resumed
}

Fiber& current_fiber(const char* op) {
  if (g_run.current == nullptr) {
    std::fprintf(stderr, "Janus CUDA simulator: %s called outside a kernel\n", op);
    std::abort();
  }
  return *g_run.current;
}

// ---- deadlock diagnosis -----------------------------------------------------------
std::string explain_deadlock() {
  BlockRun& r = g_run;
  unsigned at_block = 0, done = 0;
  for (unsigned i = 0; i < r.count; ++i) {
    at_block += r.fibers[i].state == FiberState::block_barrier;
    done += r.fibers[i].state == FiberState::done;
  }
  std::ostringstream s;
  s << "Janus CUDA simulator: deadlock in " << where() << " (blockDim " << dim_str(blockDim) << "): ";
  if (at_block > 0) {
    s << "__syncthreads() at " << r.block_file << ':' << r.block_line << " was reached by " << at_block << " of "
      << r.count << " threads; " << done << " threads exited without reaching it";
    const unsigned others = r.count - at_block - done;
    if (others) s << " and " << others << " wait in warp collectives";
    for (unsigned i = 0; i < r.count; ++i)
      if (r.fibers[i].state == FiberState::done) {
        s << " (first exited thread: " << dim_str(r.fibers[i].tid) << ')';
        break;
      }
    s << ". Every thread of a block must reach each __syncthreads().";
    return s.str();
  }
  for (size_t w = 0; w < r.warps.size(); ++w) {
    const Warp& warp = r.warps[w];
    if (warp.arrived == 0) continue;
    s << "in warp " << w << ", " << warp.op << " with mask 0x" << std::hex << warp.mask << " was reached by lanes 0x"
      << warp.arrived << " but lanes 0x" << (warp.participants & ~warp.arrived) << std::dec
      << " never arrived (exited or waiting elsewhere). Every lane named in the mask must take part.";
    return s.str();
  }
  s << "threads wait but no barrier is pending (simulator bug)";
  return s.str();
}

// ---- one block ----------------------------------------------------------------------
void run_block() {
  BlockRun& r = g_run;
  r.block_arrived = 0;
  for (Warp& w : r.warps) w.arrived = 0;
  if (r.racecheck) race_begin_block(r.block_linear);
  for (unsigned i = 0; i < r.count; ++i) {
    Fiber& f = r.fibers[i];
    f.state = FiberState::ready;
    f.asan_fake_stack = nullptr;
    prepare(f);
  }
  unsigned live = r.count;
  for (std::uint64_t pass = 0; live > 0; ++pass) {
    bool progressed = false;
    const Permutation order(r.count, schedule_key(r.schedule_seed, kOrderThreads, r.block_linear, pass));
    for (unsigned i = 0; i < r.count; ++i) {
      Fiber& f = r.fibers[order(i)];
      if (f.state != FiberState::ready) continue;
      progressed = true;
      resume(f);
      if (f.state == FiberState::done) --live;
      if (f.state == FiberState::faulted) {
        r.stacks_dirty = true;
        throw KernelError(r.failure);
      }
    }
    if (!progressed) {
      r.stacks_dirty = true;
      throw KernelError(explain_deadlock());
    }
  }
}

void clean_stacks() {
  BlockRun& r = g_run;
  if (!r.stacks_dirty) return;
  r.stacks_dirty = false;
#if JANUS_SIM_ASAN
  // Abandoned fibers leave poisoned frames behind; the next kernel reuses the stacks.
  for (Fiber& f : r.fibers) __asan_unpoison_memory_region(f.stack, kStackSize);
#endif
}

}  // namespace

// ---- barriers called by kernel code -----------------------------------------------------
void syncthreads(const char* file, int line) {
  BlockRun& r = g_run;
  Fiber& f = current_fiber("__syncthreads()");
  if (r.block_arrived == 0) {
    r.block_file = file;
    r.block_line = line;
  } else if (r.block_line != line || std::strcmp(r.block_file, file) != 0) {
    {
      std::ostringstream s;
      s << "Janus CUDA simulator: divergent __syncthreads() in " << where() << ": thread " << dim_str(f.tid)
        << " reached the one at " << file << ':' << line << " while " << r.block_arrived
        << " threads wait at the one at " << r.block_file << ':' << r.block_line
        << ". Every thread of a block must reach the same __syncthreads().";
      g_run.failure = s.str();
    }  // no heap object may stay alive on an abandoned fiber stack
    fault(f);
  }
  if (++r.block_arrived == r.count) {  // last one: release everybody, carry on
    r.block_arrived = 0;
    if (r.racecheck) race_block_barrier();
    for (unsigned i = 0; i < r.count; ++i)
      if (r.fibers[i].state == FiberState::block_barrier) r.fibers[i].state = FiberState::ready;
    return;
  }
  f.state = FiberState::block_barrier;
  yield_to_scheduler(f, false);
}

CollectiveResult warp_collective(const char* op, unsigned mask, Collective kind, std::uint64_t bits, int src_lane) {
  BlockRun& r = g_run;
  Fiber& f = current_fiber(op);
  const unsigned warp_index = f.linear / 32;
  const unsigned lane = f.linear % 32;
  Warp& w = r.warps[warp_index];
  if ((mask >> lane & 1u) == 0) {
    {
      std::ostringstream s;
      s << "Janus CUDA simulator: " << op << " in " << where() << ": thread " << dim_str(f.tid) << " (lane " << lane
        << ") calls it with mask 0x" << std::hex << mask << " that does not include its own lane.";
      g_run.failure = s.str();
    }  // no heap object may stay alive on an abandoned fiber stack
    fault(f);
  }
  if (w.arrived == 0) {
    w.mask = mask;
    w.op = op;
    w.participants = mask & w.existing;
  } else if (w.mask != mask || std::strcmp(w.op, op) != 0) {
    {
      std::ostringstream s;
      s << "Janus CUDA simulator: " << where() << ", warp " << warp_index << ": lane " << lane << " calls " << op
        << " with mask 0x" << std::hex << mask << " while lanes 0x" << w.arrived << " wait in " << w.op
        << " with mask 0x" << w.mask << std::dec
        << ". All lanes in the mask must execute the same collective with the same mask"
           " (concurrent collectives of disjoint lane groups are not simulated).";
      g_run.failure = s.str();
    }  // no heap object may stay alive on an abandoned fiber stack
    fault(f);
  }
  f.kind = kind;
  f.value = bits;
  f.src_lane = src_lane;
  w.arrived |= 1u << lane;
  if (w.arrived != w.participants) {
    f.state = FiberState::warp_barrier;
    f.collective = op;
    f.mask = mask;
    yield_to_scheduler(f, false);
    return f.result;
  }
  // Last lane: compute every participant's result, release them.
  Fiber* lanes = &r.fibers[warp_index * 32];
  std::uint64_t votes = 0;
  if (kind == Collective::ballot)
    for (unsigned l = 0; l < 32; ++l)
      if (w.participants >> l & 1u) votes |= (lanes[l].value != 0 ? 1ull : 0ull) << l;
  for (unsigned l = 0; l < 32; ++l) {
    if ((w.participants >> l & 1u) == 0) continue;
    Fiber& p = lanes[l];
    switch (kind) {
      case Collective::syncwarp:
        p.result = {0, false};
        break;
      case Collective::ballot:
        p.result = {votes | (std::uint64_t{w.participants} << 32), false};
        break;
      case Collective::shfl: {
        const int src = p.src_lane < 0 ? static_cast<int>(l) : p.src_lane;
        if (src < 32 && (w.participants >> src & 1u))
          p.result = {lanes[src].value, false};
        else
          p.result = {0, true};
        break;
      }
    }
    if (&p != &f) p.state = FiberState::ready;
  }
  w.arrived = 0;
  if (kind == Collective::syncwarp && r.racecheck) race_warp_barrier(warp_index, w.participants);
  return f.result;
}

void trap(const char* what) {
  Fiber& f = current_fiber(what);
  {
    std::ostringstream s;
    s << "Janus CUDA simulator: thread " << dim_str(f.tid) << " of " << where() << ": " << what;
    g_run.failure = s.str();
  }  // no heap object may stay alive on an abandoned fiber stack
  fault(f);
}

// ---- launch -------------------------------------------------------------------------------
namespace {
// The checks CUDA makes when a kernel is launched (or captured): false, with
// the launch error recorded, if the configuration or the stream is invalid.
// Throws KernelError for a launch from inside a kernel.
bool launch_config_ok(const char* kernel_name, dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream) {
  if (t_in_kernel) {
    std::ostringstream s;
    s << "Janus CUDA simulator: kernel '" << kernel_name << "' launched from inside " << where()
      << " (dynamic parallelism is not supported)";
    throw KernelError(s.str());
  }
  std::ostringstream bad;
  const unsigned long long threads = 1ull * block.x * block.y * block.z;
  if (block.x == 0 || block.y == 0 || block.z == 0 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
      threads > kMaxThreadsPerBlock || block.x > 1024 || block.y > 1024 || block.z > 64 || grid.y > 65535 ||
      grid.z > 65535 || grid.x > 2147483647u) {
    bad << "invalid configuration argument: kernel '" << kernel_name << "' launched with grid "
        << dim_str(grid) << " and block " << dim_str(block)
        << " (blocks may have at most 1024 threads, block.z <= 64, grid.y/z <= 65535, no zero dimension)";
    set_error(cudaErrorInvalidConfiguration, bad.str());
    return false;
  }
  if (shared_bytes != 0) {
    bad << "kernel '" << kernel_name << "' launched with " << shared_bytes
        << " bytes of dynamic shared memory: the Janus CUDA simulator supports only static __shared__ arrays";
    set_error(cudaErrorInvalidValue, bad.str());
    return false;
  }
  if (!valid_stream(stream)) {
    bad << "kernel '" << kernel_name << "' launched on an invalid stream";
    set_error(cudaErrorInvalidResourceHandle, bad.str());
    return false;
  }
  return true;
}
}  // namespace

void capture_launch(const char* kernel_name, dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
                    std::vector<const void*> pointers, std::function<void(cudaStream_t)> run) {
  if (!launch_config_ok(kernel_name, grid, block, shared_bytes, stream)) return;
  capture_node(
      stream, "kernel launch", std::string("kernel '") + kernel_name + "'",
      [run = std::move(run)](cudaStream_t s) {
        run(s);
        return cudaSuccess;
      },
      std::move(pointers), false);
}

void launch(const char* kernel_name, dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
            KernelThunk thunk, void* context, size_t context_bytes) {
  if (!launch_config_ok(kernel_name, grid, block, shared_bytes, stream)) return;

  std::lock_guard<std::mutex> lock(g_launch_mutex);
  BlockRun& r = g_run;
  ++g_launches;
  if (!replaying_graph()) ++g_stream_launches;
  const unsigned long long threads = 1ull * block.x * block.y * block.z;
  ++g_launches_by_kernel[kernel_name];
  clean_stacks();
  ensure_stacks(static_cast<unsigned>(threads));
  r.kernel = kernel_name;
  r.thunk = thunk;
  r.context = context;
  r.count = static_cast<unsigned>(threads);
  r.warps.assign((r.count + 31) / 32, Warp{});
  for (unsigned w = 0; w < r.warps.size(); ++w) {
    const unsigned lanes = std::min(32u, r.count - w * 32);
    r.warps[w].existing = lanes == 32 ? 0xffffffffu : ((1u << lanes) - 1u);
  }
  for (unsigned z = 0, i = 0; z < block.z; ++z)
    for (unsigned y = 0; y < block.y; ++y)
      for (unsigned x = 0; x < block.x; ++x, ++i) {
        r.fibers[i].tid = uint3{x, y, z};
        r.fibers[i].linear = i;
      }
  blockDim = block;
  gridDim = grid;
  r.schedule_seed = checked_schedule_seed();
  r.racecheck = race_begin_launch(kernel_name, grid, block, context, context_bytes);
  t_in_kernel = true;
  try {
    const std::uint64_t blocks = std::uint64_t{grid.x} * grid.y * grid.z;
    const Permutation order(blocks, schedule_key(r.schedule_seed, kOrderBlocks, 0, 0));
    for (std::uint64_t i = 0; i < blocks; ++i) {
      const std::uint64_t b = order(i);
      blockIdx = uint3{static_cast<unsigned>(b % grid.x), static_cast<unsigned>(b / grid.x % grid.y),
                       static_cast<unsigned>(b / grid.x / grid.y)};
      r.block_linear = b;
      run_block();
    }
  } catch (...) {
    t_in_kernel = false;
    r.current = nullptr;
    if (r.racecheck) race_abort_launch();
    r.racecheck = false;
    clean_stacks();
    throw;
  }
  t_in_kernel = false;
  if (r.racecheck) {
    r.racecheck = false;
    const std::string races = race_end_launch();
    if (!races.empty()) throw KernelError(races);
  }
}

}  // namespace janus::sim::detail

namespace janus::sim {
unsigned long long launch_count() {
  std::lock_guard<std::mutex> lock(detail::g_launch_mutex);
  return detail::g_launches;
}
unsigned long long stream_launch_count() {
  std::lock_guard<std::mutex> lock(detail::g_launch_mutex);
  return detail::g_stream_launches;
}
unsigned long long launch_count(const char* kernel_name) {
  std::lock_guard<std::mutex> lock(detail::g_launch_mutex);
  const auto it = detail::g_launches_by_kernel.find(kernel_name);
  return it == detail::g_launches_by_kernel.end() ? 0 : it->second;
}
}  // namespace janus::sim
