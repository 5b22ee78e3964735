// Janus CUDA simulator: the order in which it runs the blocks of a grid and
// the threads of a block.
//
// Hardware gives no order at all: blocks run on many SMs at once, warps are
// interleaved by the warp schedulers. The simulator, by default, runs blocks
// in linear index order and, between two barriers, the threads of a block in
// linear thread order, each until its next barrier. Code that is only correct
// in that order (a missing __syncthreads() before reading a neighbour's shared
// write, a block reading another block's output in the same launch) passes
// every test here and fails on a GPU. A schedule seed makes the simulator run
// the blocks, and the threads in every barrier interval of every block, in a
// seeded pseudo-random order instead, so such code gives wrong results:
//
//   JANUS_SIM_SCHEDULE_SEED=N   N > 0: permuted orders derived from N
//                               0 or unset: the fixed linear order
//
// The orders depend only on the seed, the block's linear index and the
// barrier interval, so a failure reproduces with the same seed.
#pragma once

#include <cstdint>

namespace janus::sim {

// The seed in force: set_schedule_seed's if called, else JANUS_SIM_SCHEDULE_SEED
// (read once; a value that is not a decimal unsigned 64-bit integer makes
// every launch fail with KernelError naming the variable), else 0.
std::uint64_t schedule_seed();
// Overrides the environment for the rest of the process (tests). 0: fixed order.
void set_schedule_seed(std::uint64_t seed);

namespace detail {

// A seeded bijection of [0, n) onto itself, computed per index without a
// table (grids may have billions of blocks). It scrambles m-bit integers,
// 2^(m-1) < n <= 2^m, with rounds that are each invertible modulo 2^m (a
// multiplication by an odd number, an addition, an xor with the value shifted
// right), and "cycle-walks" an index that lands outside [0, n) until it lands
// inside (Black and Rogaway, "Ciphers with Arbitrary Finite Domains", 2002):
// the walk from a value in [0, n) stays on its cycle of the m-bit bijection,
// so the result is again a bijection on [0, n). Fewer than two steps are
// needed on average since n > 2^(m-1). Key 0 is the identity.
class Permutation {
 public:
  Permutation(std::uint64_t n, std::uint64_t key);
  std::uint64_t operator()(std::uint64_t index) const;

 private:
  static constexpr int kRounds = 3;
  std::uint64_t scramble(std::uint64_t x) const;

  std::uint64_t n_;
  std::uint64_t mask_ = 0;
  int shift_ = 1;
  bool identity_;
  std::uint64_t multiplier_[kRounds] = {};
  std::uint64_t addend_[kRounds] = {};
};

// A 64-bit key for one permutation, from the seed and what it orders
// (SplitMix64 finalisers: distinct inputs give unrelated keys). 0 when the
// seed is 0 (fixed order).
std::uint64_t schedule_key(std::uint64_t seed, std::uint64_t what, std::uint64_t which, std::uint64_t pass);

// What a key orders.
constexpr std::uint64_t kOrderBlocks = 1;
constexpr std::uint64_t kOrderThreads = 2;

// Throws KernelError if JANUS_SIM_SCHEDULE_SEED is malformed; else the seed.
std::uint64_t checked_schedule_seed();

}  // namespace detail
}  // namespace janus::sim
