// Per-column sums over rows of a row-major matrix, in double, for the
// cloned kernels (vector_clones.hpp) of BatchNorm and of the bias gradient.
//
// The sums run over rows for a group of G adjacent columns at a time, with
// the G accumulators in vector registers (G = 32 doubles: four AVX-512
// registers, so four independent add chains per row). Written as one loop
// over all columns per row instead, the accumulators would live in memory
// and every row would wait for the previous row's stores. Each column still
// adds its rows in order, starting from 0.0: the same sums, bit for bit, as
// the plain row-by-row loop of the reference kernels.
#pragma once

#include <cstdint>
#include <type_traits>

#include "cpu/vector_clones.hpp"

namespace janus::fast {

// Runs group(std::integral_constant<int, G>, c0) over all C columns: groups
// of 32, then of 8, then single columns.
template <class Group>
JANUS_ALWAYS_INLINE void by_column_groups(int64_t C, Group&& group) {
  int64_t c = 0;
  for (; c + 32 <= C; c += 32) group(std::integral_constant<int, 32>(), c);
  for (; c + 8 <= C; c += 8) group(std::integral_constant<int, 8>(), c);
  for (; c < C; ++c) group(std::integral_constant<int, 1>(), c);
}

// s[c0 + j] = sum of x[r][c0 + j] over rows [r0, r1), j < G (x has C columns).
template <int G, class T>
JANUS_ALWAYS_INLINE void column_sums(int64_t r0, int64_t r1, int64_t C, int64_t c0, const T* x,
                                     double* s) {
  double acc[G] = {};
  for (int64_t r = r0; r < r1; ++r) {
    const T* row = x + r * C + c0;
#pragma omp simd
    for (int j = 0; j < G; ++j) acc[j] += static_cast<double>(row[j]);
  }
  for (int j = 0; j < G; ++j) s[c0 + j] = acc[j];
}

// s[c] = sum of x[r][c] over rows [r0, r1), for all C columns.
template <class T>
JANUS_ALWAYS_INLINE void all_column_sums(int64_t r0, int64_t r1, int64_t C, const T* x, double* s) {
  by_column_groups(C, [&](auto g, int64_t c0) { column_sums<decltype(g)::value>(r0, r1, C, c0, x, s); });
}

}  // namespace janus::fast
