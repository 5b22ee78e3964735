// Bit casts between float32 and its IEEE-754 bit pattern, for the tests of
// roundings (bf16, half, TF32) that reason about bits. memcpy is the defined
// way to reinterpret an object's bytes in C++17 (std::bit_cast is C++20).
#pragma once

#include <cstdint>
#include <cstring>

namespace janus::test {

inline uint32_t bits_of(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

inline float float_of(uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

}  // namespace janus::test
