// Janus CUDA simulator: seeded orders of blocks and threads (schedule_order.hpp).
#include "cuda/sim/schedule_order.hpp"

#include <atomic>
#include <string>

#include "core/env_settings.hpp"
#include "janus/error.hpp"

#include "cuda/sim/device.hpp"

namespace janus::sim {
namespace detail {
namespace {

// SplitMix64's output function (Steele, Lea and Flood, "Fast splittable
// pseudorandom number generators", OOPSLA 2014): a bijective 64-bit mixer.
std::uint64_t mix(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

struct SeedFromEnvironment {
  std::uint64_t seed = 0;
  std::string error;  // non-empty: the variable is malformed
};

SeedFromEnvironment read_environment() {
  SeedFromEnvironment r;
  // The error waits for the first launch that needs the seed (checked_schedule_seed).
  try {
    r.seed = env::unsigned_integer("JANUS_SIM_SCHEDULE_SEED", 0, "(0: the fixed order)");
  } catch (const Error& e) {
    r.error = e.what();
  }
  return r;
}

const SeedFromEnvironment& environment() {
  static const SeedFromEnvironment e = read_environment();
  return e;
}

// UINT64_MAX: no override (set_schedule_seed not called).
std::atomic<std::uint64_t> g_override{~std::uint64_t{0}};
std::atomic<bool> g_overridden{false};

}  // namespace

Permutation::Permutation(std::uint64_t n, std::uint64_t key) : n_(n), identity_(key == 0 || n <= 1) {
  if (identity_) return;
  int m = 0;
  while (m < 64 && (std::uint64_t{1} << m) < n) ++m;
  mask_ = m == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << m) - 1;
  shift_ = m / 2 > 0 ? m / 2 : 1;
  std::uint64_t k = key;
  for (int r = 0; r < kRounds; ++r) {
    k = mix(k + 0x9e3779b97f4a7c15ull);
    multiplier_[r] = k | 1u;  // odd: invertible modulo 2^m
    k = mix(k + 0x9e3779b97f4a7c15ull);
    addend_[r] = k;
  }
}

std::uint64_t Permutation::scramble(std::uint64_t x) const {
  for (int r = 0; r < kRounds; ++r) {
    x = (x * multiplier_[r] + addend_[r]) & mask_;
    x ^= x >> shift_;  // invertible: the top `shift_` bits are unchanged and recover the rest
  }
  return x;
}

std::uint64_t Permutation::operator()(std::uint64_t index) const {
  if (identity_) return index;
  std::uint64_t x = scramble(index);
  while (x >= n_) x = scramble(x);  // cycle walking
  return x;
}

std::uint64_t schedule_key(std::uint64_t seed, std::uint64_t what, std::uint64_t which, std::uint64_t pass) {
  if (seed == 0) return 0;
  const std::uint64_t key = mix(mix(mix(mix(seed) ^ what) ^ which) ^ pass);
  return key == 0 ? 1 : key;
}

std::uint64_t checked_schedule_seed() {
  if (g_overridden.load(std::memory_order_acquire)) return g_override.load(std::memory_order_relaxed);
  const SeedFromEnvironment& e = environment();
  if (!e.error.empty()) throw KernelError("Janus CUDA simulator: " + e.error);
  return e.seed;
}

}  // namespace detail

std::uint64_t schedule_seed() {
  if (detail::g_overridden.load(std::memory_order_acquire)) return detail::g_override.load(std::memory_order_relaxed);
  return detail::environment().seed;
}

void set_schedule_seed(std::uint64_t seed) {
  detail::g_override.store(seed, std::memory_order_relaxed);
  detail::g_overridden.store(true, std::memory_order_release);
}

}  // namespace janus::sim
