// Counter-based random numbers: value i of stream `seed` is a pure function of
// (seed, i). CPU and CUDA kernels draw the same numbers in any order or
// parallel schedule, which is what makes Dropout reproducible across devices.
// This header is included by both host C++ and .cu sources.
#pragma once

#include <cstdint>

#include "janus/host_device.hpp"

namespace janus {

// SplitMix64 finaliser (Steele, Lea, Flood 2014): a strong 64-bit mixer.
JANUS_HOST_DEVICE inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Uniform float in [0, 1) with 24 random bits, element `index` of stream `seed`.
JANUS_HOST_DEVICE inline float counter_uniform(uint64_t seed, uint64_t index) {
  uint64_t h = splitmix64(seed ^ splitmix64(index));
  return static_cast<float>(h >> 40) * (1.0f / 16777216.0f);
}

}  // namespace janus
