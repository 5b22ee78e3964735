// Janus CUDA simulator: the race detector (see racecheck.hpp for what it
// checks and how accesses reach it).
//
// Happens-before inside one launch is simple enough to track exactly with
// three numbers per access:
//   * a barrier interval id: a new one starts with every block and after
//     every __syncthreads(); ids only grow, across blocks and launches, so a
//     remembered access is from an earlier launch when its id is below the
//     launch's first, from another block when below the block's first, and
//     ordered before the running thread when below the current id;
//   * the thread's linear index in its block (program order within a thread);
//   * the thread's own component of its warp's vector clock within the
//     interval, advanced by __syncwarp (Lamport clocks, Fidge/Mattern vectors).
// Every 4-byte word keeps its last write and two reads (with the bytes they
// touched); a new access is compared with those, then recorded.
#include "cuda/sim/racecheck.hpp"

#include <dlfcn.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "core/env_settings.hpp"
#include "janus/error.hpp"

#include "cuda/sim/device.hpp"
#include "cuda/sim/internal.hpp"

namespace janus::sim {
namespace detail {

std::atomic<bool> g_race_active{false};

namespace {

#if JANUS_SIM_RACECHECK_INSTRUMENTED
constexpr bool kInstrumented = true;
#else
constexpr bool kInstrumented = false;
#endif

// ---- configuration -----------------------------------------------------------------
struct Setting {
  bool on = false;
  std::string error;  // non-empty: JANUS_SIM_RACECHECK is malformed
};

Setting read_environment() {
  Setting s;
  // The error waits for the first checked launch (racecheck_enabled).
  try {
    s.on = env::flag("JANUS_SIM_RACECHECK", false);
  } catch (const Error& e) {
    s.error = e.what();
  }
  return s;
}

const Setting& environment() {
  static const Setting s = read_environment();
  return s;
}

std::atomic<int> g_override{-1};  // -1: none, else 0/1 from set_racecheck

// This OS thread runs a checked launch: only its fibers' accesses count
// (instrumented inline functions also run on other threads, outside kernels).
thread_local bool t_checking = false;

// ---- shadow memory -------------------------------------------------------------------
// One remembered access to a 4-byte word. All zero: none.
struct Access {
  std::uint32_t interval;  // barrier interval id (0: none)
  std::uint32_t clock;     // the thread's own __syncwarp clock in that interval
  std::int32_t pc;         // instrumentation call site, relative to pc_anchor() (0: unknown)
  std::uint16_t thread;    // linear thread index within its block
  std::uint8_t bytes;      // bit i: byte i of the word
  AccessKind kind;
};

struct Word {
  Access write;
  Access read[2];
};
static_assert(sizeof(Word) == 48, "racecheck.hpp states the shadow's size");

// The shadow of one cudaMalloc block: a Word per 4 bytes, in an anonymous
// mapping made on first use (pages never touched cost nothing; fresh pages
// are zero, i.e. "no access").
class DeviceShadow {
 public:
  DeviceShadow(std::uintptr_t start, size_t size) : start_(start), size_(size) {}
  DeviceShadow(const DeviceShadow&) = delete;
  DeviceShadow& operator=(const DeviceShadow&) = delete;
  ~DeviceShadow() { release(); }

  std::uintptr_t start() const { return start_; }
  size_t size() const { return size_; }
  bool contains(std::uintptr_t a) const { return a - start_ < size_; }
  Word& word(std::uintptr_t word_address) {
    if (words_ == nullptr) map();
    return words_[(word_address - start_) / 4];
  }
  // Forgets every remembered access (interval ids restart).
  void release() {
    if (words_ != nullptr) munmap(words_, map_bytes_);
    words_ = nullptr;
  }

 private:
  void map() {
    map_bytes_ = (size_ / 4 + 2) * sizeof(Word);
    void* p = mmap(nullptr, map_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
      std::fprintf(stderr, "Janus racecheck: cannot map %zu bytes of shadow memory\n", map_bytes_);
      std::abort();
    }
    words_ = static_cast<Word*>(p);
  }

  std::uintptr_t start_;
  size_t size_;
  Word* words_ = nullptr;
  size_t map_bytes_ = 0;
};

// The shadow of every other checked address (shared memory): an open-addressing
// hash table keyed by word address. Entries of finished blocks are recognised
// as stale by their interval ids, so the table is only emptied when it grew large.
class LocalShadow {
 public:
  Word& word(std::uintptr_t word_address) {
    size_t i = slot_of(word_address);
    while (true) {
      Slot& s = slots_[i];
      if (s.key == word_address) return s.word;
      if (s.key == 0) break;
      i = (i + 1) & (slots_.size() - 1);
    }
    if (2 * (used_ + 1) > slots_.size()) {
      grow();
      return word(word_address);
    }
    ++used_;
    slots_[i].key = word_address;
    slots_[i].word = Word{};
    return slots_[i].word;
  }
  void clear_if_large() {
    if (used_ > (size_t{1} << 18)) clear();
  }
  void clear() {
    slots_.assign(kInitialSlots, Slot{});
    used_ = 0;
  }

 private:
  struct Slot {
    std::uintptr_t key = 0;  // word address; 0: empty
    Word word{};
  };
  static constexpr size_t kInitialSlots = 4096;
  size_t slot_of(std::uintptr_t key) const {
    return static_cast<size_t>(((key >> 2) * 0x9e3779b97f4a7c15ull) >> 20) & (slots_.size() - 1);
  }
  void grow() {
    std::vector<Slot> old(slots_.size() * 2);
    old.swap(slots_);
    used_ = 0;
    for (const Slot& s : old)
      if (s.key != 0) {
        size_t i = slot_of(s.key);
        while (slots_[i].key != 0) i = (i + 1) & (slots_.size() - 1);
        slots_[i] = s;
        ++used_;
      }
  }

  std::vector<Slot> slots_ = std::vector<Slot>(kInitialSlots);
  size_t used_ = 0;
};

// ---- the detector ----------------------------------------------------------------------
enum class Order { ordered, other_block, no_syncthreads, no_syncwarp };

struct WarpClocks {
  std::uint32_t interval = 0;  // the vectors are valid in this interval only (else all zero)
  std::uint32_t vc[32][32];    // vc[lane][other]: what `lane` knows of `other`'s clock
};

std::uintptr_t pc_anchor() { return reinterpret_cast<std::uintptr_t>(&race_access); }

std::int32_t pc_offset(const void* pc) {
  if (pc == nullptr) return 0;
  const auto d = static_cast<std::int64_t>(reinterpret_cast<std::uintptr_t>(pc) - pc_anchor());
  return d > INT32_MIN && d < INT32_MAX && d != 0 ? static_cast<std::int32_t>(d) : 0;
}

std::string describe_pc(std::int32_t offset) {
  if (offset == 0) return "";
  const auto pc = reinterpret_cast<void*>(pc_anchor() + static_cast<std::uintptr_t>(static_cast<std::int64_t>(offset)));
  Dl_info info{};
  std::ostringstream s;
  if (dladdr(pc, &info) != 0 && info.dli_fname != nullptr) {
    const char* name = std::strrchr(info.dli_fname, '/');
    s << " at " << (name ? name + 1 : info.dli_fname) << "+0x" << std::hex
      << (reinterpret_cast<std::uintptr_t>(pc) - reinterpret_cast<std::uintptr_t>(info.dli_fbase));
  } else {
    s << " at " << pc;
  }
  return s.str();
}

const char* kind_name(AccessKind k) {
  switch (k) {
    case AccessKind::read: return "read";
    case AccessKind::write: return "write";
    case AccessKind::atomic: return "atomic";
  }
  return "?";
}

std::string index3(std::uint64_t linear, dim3 extent) {
  std::ostringstream s;
  s << '(' << linear % extent.x << ',' << linear / extent.x % extent.y << ',' << linear / extent.x / extent.y << ')';
  return s.str();
}

class Detector {
 public:
  void begin_launch(const char* kernel, dim3 grid, dim3 block, const void* params, size_t params_bytes) {
    if (next_interval_ > 0xC0000000u) forget_everything();
    sync_device_blocks();
    local_.clear_if_large();
    kernel_ = kernel;
    grid_ = grid;
    block_ = block;
    params_ = reinterpret_cast<std::uintptr_t>(params);
    params_bytes_ = params_bytes;
    launch_first_ = next_interval_;
    blocks_.clear();
    reports_.clear();
    seen_.clear();
    races_ = 0;
    const unsigned threads = block.x * block.y * block.z;
    if (warps_.size() < (threads + 31) / 32) warps_.resize((threads + 31) / 32);
  }

  void begin_block(std::uint64_t block_linear) {
    interval_ = next_interval_++;
    block_first_ = interval_;
    block_linear_ = block_linear;
    blocks_.emplace_back(interval_, block_linear);
  }

  void resume(unsigned thread, const char* stack, size_t stack_bytes) {
    thread_ = thread;
    stack_ = reinterpret_cast<std::uintptr_t>(stack);
    stack_bytes_ = stack_bytes;
  }

  void block_barrier() { interval_ = next_interval_++; }

  void warp_barrier(unsigned warp, unsigned lanes) {
    WarpClocks& w = warps_[warp];
    if (w.interval != interval_) {
      std::memset(w.vc, 0, sizeof w.vc);
      w.interval = interval_;
    }
    std::uint32_t join[32] = {};
    for (unsigned l = 0; l < 32; ++l) {
      if ((lanes >> l & 1u) == 0) continue;
      ++w.vc[l][l];  // accesses after the barrier are distinguishable from those before
      for (unsigned o = 0; o < 32; ++o) join[o] = std::max(join[o], w.vc[l][o]);
    }
    for (unsigned l = 0; l < 32; ++l)
      if (lanes >> l & 1u) std::memcpy(w.vc[l], join, sizeof join);
  }

  std::string end_launch() {
    if (races_ == 0) return "";
    std::ostringstream s;
    s << "Janus racecheck: " << races_ << " racy access" << (races_ == 1 ? "" : "es") << " in kernel '" << kernel_
      << "' (grid (" << grid_.x << ',' << grid_.y << ',' << grid_.z << "), block (" << block_.x << ',' << block_.y
      << ',' << block_.z << ")), " << seen_.size() << " distinct pair" << (seen_.size() == 1 ? "" : "s")
      << " of call sites";
    if (seen_.size() > reports_.size()) s << " (first " << reports_.size() << " shown)";
    s << "; a call site BINARY+0xOFFSET resolves with addr2line -f -C -i -e BINARY 0xOFFSET:";
    for (const std::string& r : reports_) s << '\n' << r;
    return s.str();
  }

  void access(const void* address, size_t bytes, AccessKind kind, const void* pc) {
    const auto a = reinterpret_cast<std::uintptr_t>(address);
    if (a - stack_ < stack_bytes_) return;            // the thread's own locals
    if (a - params_ < params_bytes_) return;          // kernel parameters: read-only
    if (is_builtin_variable(a)) return;               // threadIdx, blockIdx, blockDim, gridDim
    ++checked_;
    DeviceShadow* region = find_device_block(a);
    std::uintptr_t end = a + bytes;
    if (region != nullptr) end = std::min(end, region->start() + region->size());
    const Access now{interval_, own_clock(), pc_offset(pc), static_cast<std::uint16_t>(thread_), 0, kind};
    const std::uint32_t floor = region != nullptr ? launch_first_ : block_first_;
    bool reported = false;
    for (std::uintptr_t w = a & ~std::uintptr_t{3}; w < end; w += 4) {
      const unsigned lo = static_cast<unsigned>(std::max(a, w) - w);
      const unsigned hi = static_cast<unsigned>(std::min(end, w + 4) - w);
      Access cur = now;
      cur.bytes = static_cast<std::uint8_t>(((1u << hi) - 1u) & ~((1u << lo) - 1u));
      Word& word = region != nullptr ? region->word(w) : local_.word(w);
      check_and_record(word, cur, floor, a, bytes, region, reported);
    }
  }

  void end() { t_checking = false; }
  std::uint64_t checked() const { return checked_; }

 private:
  static bool is_builtin_variable(std::uintptr_t a) {
    auto in = [a](const void* p, size_t n) { return a - reinterpret_cast<std::uintptr_t>(p) < n; };
    return in(&threadIdx, sizeof threadIdx) || in(&blockIdx, sizeof blockIdx) || in(&blockDim, sizeof blockDim) ||
           in(&gridDim, sizeof gridDim);
  }

  std::uint32_t own_clock() const {
    const WarpClocks& w = warps_[thread_ / 32];
    return w.interval == interval_ ? w.vc[thread_ % 32][thread_ % 32] : 0;
  }

  // How a remembered (valid) access relates to the running thread's access now.
  Order order_of(const Access& p) const {
    if (p.interval < block_first_) return Order::other_block;
    if (p.thread == thread_ || p.interval < interval_) return Order::ordered;
    if (p.thread / 32 != thread_ / 32) return Order::no_syncthreads;
    const WarpClocks& w = warps_[thread_ / 32];
    if (w.interval == interval_ && w.vc[thread_ % 32][p.thread % 32] > p.clock) return Order::ordered;
    return Order::no_syncwarp;
  }

  // Made by the same thread with nothing between them that orders other threads differently.
  static bool same_moment(const Access& p, const Access& cur) {
    return p.interval == cur.interval && p.thread == cur.thread && p.clock == cur.clock;
  }

  static bool conflicts(const Access& p, const Access& cur) {
    if ((p.bytes & cur.bytes) == 0) return false;
    if (p.kind == AccessKind::read && cur.kind == AccessKind::read) return false;
    return !(p.kind == AccessKind::atomic && cur.kind == AccessKind::atomic);
  }

  void check_and_record(Word& word, const Access& cur, std::uint32_t floor, std::uintptr_t address, size_t bytes,
                        const DeviceShadow* region, bool& reported) {
    auto check = [&](const Access& p) {
      if (reported || p.interval < floor || !conflicts(p, cur)) return;
      const Order o = order_of(p);
      if (o == Order::ordered) return;
      reported = true;
      report(p, cur, o, address, bytes, region);
    };
    check(word.write);
    if (cur.kind != AccessKind::read) {
      check(word.read[0]);
      check(word.read[1]);
    }
    if (cur.kind == AccessKind::read) {
      for (Access& r : word.read) {
        if (same_moment(r, cur)) {
          r.bytes |= cur.bytes;  // the same thread reading more bytes of the word
          return;
        }
      }
      for (Access& r : word.read) {
        // Replace a slot that no later access can race with more than with `cur`.
        if (r.interval < floor || order_of(r) == Order::ordered) {
          r = cur;
          return;
        }
      }
      return;  // two concurrent reads from other threads are remembered already
    }
    Access& w = word.write;
    if (same_moment(w, cur) && w.kind == cur.kind)
      w.bytes |= cur.bytes;
    else
      w = cur;
    // Plain write: earlier reads either raced with it (reported) or are ordered before it.
    if (cur.kind == AccessKind::write) word.read[0] = word.read[1] = Access{};
  }

  void report(const Access& p, const Access& cur, Order o, std::uintptr_t address, size_t bytes,
              const DeviceShadow* region) {
    ++races_;
    if (!seen_.emplace(p.pc, cur.pc, static_cast<int>(o)).second || reports_.size() >= kMaxReports) return;
    std::uint64_t p_block = block_linear_;
    if (o == Order::other_block) {
      auto it = std::upper_bound(blocks_.begin(), blocks_.end(), std::make_pair(p.interval, ~std::uint64_t{0}));
      p_block = std::prev(it)->second;
    }
    std::ostringstream s;
    s << "  race on " << (region ? "global" : "shared") << " memory at 0x" << std::hex << address << std::dec << " ("
      << bytes << " byte" << (bytes == 1 ? "" : "s");
    if (region) s << ", byte " << address - region->start() << " of a " << region->size() << "-byte cudaMalloc block";
    s << "):\n    " << kind_name(p.kind) << " by block " << index3(p_block, grid_) << " thread "
      << index3(p.thread, block_) << describe_pc(p.pc) << "\n    " << kind_name(cur.kind) << " by block "
      << index3(block_linear_, grid_) << " thread " << index3(cur.thread, block_) << describe_pc(cur.pc)
      << "\n    nothing orders them: ";
    switch (o) {
      case Order::other_block: s << "different blocks of one launch"; break;
      case Order::no_syncthreads: s << "no __syncthreads() between them"; break;
      case Order::no_syncwarp: s << "same warp, no __syncwarp() or __syncthreads() between them"; break;
      case Order::ordered: break;
    }
    reports_.push_back(s.str());
  }

  DeviceShadow* find_device_block(std::uintptr_t a) {
    if (last_ != nullptr && last_->contains(a)) return last_;
    auto it = device_.upper_bound(a);
    if (it == device_.begin()) return nullptr;
    --it;
    if (!it->second.contains(a)) return nullptr;
    last_ = &it->second;
    return last_;
  }

  // Brings the shadows in line with the live cudaMalloc blocks.
  void sync_device_blocks() {
    const std::uint64_t g = device_generation();
    if (g == generation_) return;
    generation_ = g;
    last_ = nullptr;
    std::map<std::uintptr_t, DeviceShadow> kept;
    for (const auto& [start, size] : device_blocks()) {
      auto it = device_.find(start);
      if (it != device_.end() && it->second.size() == size)
        kept.insert(device_.extract(it));
      else
        kept.emplace(std::piecewise_construct, std::forward_as_tuple(start), std::forward_as_tuple(start, size));
    }
    device_.swap(kept);  // shadows of freed blocks are unmapped with `kept`
  }

  // Interval ids would overflow: drop every remembered access and restart them.
  void forget_everything() {
    for (auto& [start, shadow] : device_) shadow.release();
    local_.clear();
    for (WarpClocks& w : warps_) w.interval = 0;
    next_interval_ = 1;
  }

  static constexpr size_t kMaxReports = 8;

  // Whole-process state.
  std::uint64_t checked_ = 0;
  std::uint32_t next_interval_ = 1;
  std::map<std::uintptr_t, DeviceShadow> device_;
  std::uint64_t generation_ = ~std::uint64_t{0};
  DeviceShadow* last_ = nullptr;
  LocalShadow local_;
  std::vector<WarpClocks> warps_;
  // The launch.
  const char* kernel_ = "";
  dim3 grid_, block_;
  std::uintptr_t params_ = 0;
  size_t params_bytes_ = 0;
  std::uint32_t launch_first_ = 1;
  std::vector<std::pair<std::uint32_t, std::uint64_t>> blocks_;  // (first interval, block linear index), run order
  std::vector<std::string> reports_;
  std::set<std::tuple<std::int32_t, std::int32_t, int>> seen_;  // (earlier pc, later pc, order)
  std::uint64_t races_ = 0;
  // The running block and thread.
  std::uint32_t interval_ = 0;
  std::uint32_t block_first_ = 0;
  std::uint64_t block_linear_ = 0;
  unsigned thread_ = 0;
  std::uintptr_t stack_ = 0;
  size_t stack_bytes_ = 0;
};

Detector& detector() {
  static Detector* d = new Detector;  // never destroyed: launches may come from static destructors
  return *d;
}

}  // namespace

void race_access(const void* address, std::size_t bytes, AccessKind kind, const void* pc) {
  if (!t_checking) return;
  detector().access(address, bytes, kind, pc);
}

bool race_begin_launch(const char* kernel, dim3 grid, dim3 block, const void* params, size_t params_bytes) {
  const int forced = g_override.load(std::memory_order_relaxed);
  if (forced < 0 && !environment().error.empty())
    throw KernelError("Janus CUDA simulator: " + environment().error);
  if (!racecheck_enabled()) return false;
  if (!kInstrumented)
    throw KernelError(
        "Janus CUDA simulator: the race detector is on (JANUS_SIM_RACECHECK=1 or set_racecheck) but this build's "
        "kernels are not instrumented: it needs a SIM build without JANUS_SANITIZE/JANUS_FUZZ and with "
        "-DJANUS_SIM_RACECHECK=ON (the default)");
  detector().begin_launch(kernel, grid, block, params, params_bytes);
  t_checking = true;
  g_race_active.store(true, std::memory_order_relaxed);
  return true;
}

void race_begin_block(std::uint64_t block_linear) { detector().begin_block(block_linear); }

void race_resume(unsigned thread_linear, const char* stack, size_t stack_bytes) {
  detector().resume(thread_linear, stack, stack_bytes);
}

void race_block_barrier() { detector().block_barrier(); }

void race_warp_barrier(unsigned warp, unsigned lanes) { detector().warp_barrier(warp, lanes); }

std::string race_end_launch() {
  g_race_active.store(false, std::memory_order_relaxed);
  detector().end();
  return detector().end_launch();
}

void race_abort_launch() {
  g_race_active.store(false, std::memory_order_relaxed);
  detector().end();
}

}  // namespace detail

bool racecheck_available() { return detail::kInstrumented; }

bool racecheck_enabled() {
  const int forced = detail::g_override.load(std::memory_order_relaxed);
  return forced >= 0 ? forced == 1 : detail::environment().on;
}

void set_racecheck(bool on) { detail::g_override.store(on ? 1 : 0, std::memory_order_relaxed); }

std::uint64_t racecheck_checked_accesses() { return detail::detector().checked(); }

}  // namespace janus::sim
