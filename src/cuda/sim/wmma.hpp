// Janus CUDA simulator: the warp matrix functions of <mma.h> (nvcuda::wmma)
// that Janus's kernels use: TF32 operands (m16n16k8) and __nv_bfloat16
// operands (m16n16k16), float accumulators. A kernel includes <mma.h> as
// under nvcc; in the SIM build that name is src/cuda/sim/headers/mma.h, which
// includes this file.
//
// Semantics emulated (CUDA C++ Programming Guide, "Warp Matrix Functions"):
//   * fill_fragment, load_matrix_sync, mma_sync and store_matrix_sync are
//     warp-collective: every lane of the warp must reach them, with the same
//     pointer, leading dimension and layout. The simulator checks this (a
//     __syncwarp with the full mask, then a comparison with lane 0's
//     arguments) and reports a violation as a KernelError naming the call.
//   * How a fragment's elements map to lanes is unspecified by CUDA (a kernel
//     may only apply the same element-wise operation to every x[i]), so the
//     simulator emulates the operation, not a lane layout: every lane's
//     fragment holds the whole matrix (num_elements = rows x cols here, fewer
//     on hardware). Element-wise loops over x[0..num_elements) mean the same
//     on both.
//   * mma_sync with precision::tf32 operands reads them as TF32 (10 stored
//     mantissa bits); CUDA asks the kernel to convert them with
//     __float_to_tf32 first. The simulator refuses an operand that is not a
//     TF32 value (low 13 mantissa bits set) instead of silently computing in
//     float32, which hardware would not do.
//   * The products of two TF32 (or two bf16) values are exact in float32; the simulator sums
//     them into the accumulator in k order, rounding to nearest after each
//     addition. Hardware's order and internal rounding inside one mma are not
//     documented: parity tests bound the accumulation error for any order
//     with float32's unit roundoff doubled (a directed rounding), see
//     tests/test_parity_ops.cpp.
//   * store_matrix_sync writes each element once (lane e % 32 writes element
//     e), so the race detector sees one writer per address, as on hardware.
//   * ldm: a multiple of 16 bytes (4 floats, 8 bf16) and pointers 32-byte
//     aligned, as CUDA requires; checked.
#pragma once

#include <cstdint>
#include <cstring>

#include <cuda_bf16.h>

#include "cuda/sim/device.hpp"

namespace nvcuda::wmma {

struct matrix_a;
struct matrix_b;
struct accumulator;
struct row_major;
struct col_major;
namespace precision {
struct tf32;
}
enum layout_t { mem_row_major, mem_col_major };

// Rounds to TF32 (sign, 8 exponent bits, 10 stored mantissa bits) as
// cvt.rna.tf32.f32 does: to nearest, ties away from zero; the result is a
// float whose low 13 mantissa bits are zero. Infinities stay; a finite value
// past TF32's largest rounds to infinity; a NaN stays a NaN.
inline float __float_to_tf32(float in) {
  std::uint32_t u;
  std::memcpy(&u, &in, sizeof u);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) {
    u = (u | 0x00400000u) & 0xFFFFE000u;  // quiet NaN, still a NaN after the mask
  } else {
    u = (u + 0x00001000u) & 0xFFFFE000u;  // on the magnitude bits: a tie carries away from zero
  }
  float out;
  std::memcpy(&out, &u, sizeof out);
  return out;
}

namespace sim_detail {

// Rows x cols of the matrix a fragment holds, for m16n16k8.
template <class Use, int M, int N, int K>
struct Extent;
template <int M, int N, int K>
struct Extent<matrix_a, M, N, K> {
  static constexpr int rows = M, cols = K;
};
template <int M, int N, int K>
struct Extent<matrix_b, M, N, K> {
  static constexpr int rows = K, cols = N;
};
template <int M, int N, int K>
struct Extent<accumulator, M, N, K> {
  static constexpr int rows = M, cols = N;
};

// What a fragment's x[] holds: floats for TF32 operands and accumulators,
// __nv_bfloat16 for bf16 operands (as in CUDA's <mma.h>).
template <class T>
struct Storage {
  using type = float;
};
template <>
struct Storage<__nv_bfloat16> {
  using type = __nv_bfloat16;
};

// The warp-collective entry check: all 32 lanes, same pointer and ldm.
inline void enter_collective(const char* op, const void* p, unsigned ldm, unsigned element_bytes = 4) {
  __syncwarp(0xFFFFFFFFu);
  const auto bits = static_cast<unsigned long long>(reinterpret_cast<std::uintptr_t>(p));
  const unsigned long long lane0_p = __shfl_sync(0xFFFFFFFFu, bits, 0);
  const unsigned lane0_ldm = __shfl_sync(0xFFFFFFFFu, ldm, 0);
  if (lane0_p != bits || lane0_ldm != ldm)
    ::janus::sim::detail::trap("nvcuda::wmma: lanes of one warp passed different pointers or ldm "
                               "to a warp-collective matrix function");
  if (p != nullptr && (bits % 32u != 0u))
    ::janus::sim::detail::trap("nvcuda::wmma: matrix pointer not 32-byte aligned");
  if (ldm * element_bytes % 16u != 0u) ::janus::sim::detail::trap("nvcuda::wmma: ldm is not a multiple of 16 bytes");
  (void)op;
}

inline bool is_tf32(float v) {
  std::uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  return (u & 0x1FFFu) == 0u || (u & 0x7FFFFFFFu) > 0x7F800000u;
}

}  // namespace sim_detail

template <class Use, int M, int N, int K, class T, class Layout = void>
class fragment {
 public:
  static constexpr int rows = sim_detail::Extent<Use, M, N, K>::rows;
  static constexpr int cols = sim_detail::Extent<Use, M, N, K>::cols;
  static constexpr int num_elements = rows * cols;
  using element_type = typename sim_detail::Storage<T>::type;
  element_type x[num_elements];
  // Element (r, c) of the matrix, row-major: the simulator's own layout.
  element_type& at(int r, int c) { return x[r * cols + c]; }
  const element_type& at(int r, int c) const { return x[r * cols + c]; }
};

template <class Use, int M, int N, int K, class T, class Layout, class V>
inline void fill_fragment(fragment<Use, M, N, K, T, Layout>& f, const V& v) {
  sim_detail::enter_collective("fill_fragment", nullptr, 0);
  for (auto& e : f.x) e = v;
}

// Operand fragments: the layout is the fragment's own (row_major or col_major).
template <class Use, int M, int N, int K, class T, class Layout, class P>
inline void load_matrix_sync(fragment<Use, M, N, K, T, Layout>& f, const P* p, unsigned ldm) {
  using F = fragment<Use, M, N, K, T, Layout>;
  static_assert(std::is_same_v<P, typename F::element_type>,
                "load_matrix_sync: the pointer's type must be the fragment's element type");
  sim_detail::enter_collective("load_matrix_sync", p, ldm, sizeof(P));
  constexpr bool row = std::is_same_v<Layout, row_major>;
  static_assert(row || std::is_same_v<Layout, col_major>, "operand fragments need row_major or col_major");
  for (int r = 0; r < F::rows; ++r)
    for (int c = 0; c < F::cols; ++c) f.at(r, c) = row ? p[r * ldm + c] : p[c * ldm + r];
}

// Accumulators: the layout is given at the call.
template <int M, int N, int K>
inline void load_matrix_sync(fragment<accumulator, M, N, K, float, void>& f, const float* p, unsigned ldm,
                             layout_t layout) {
  sim_detail::enter_collective("load_matrix_sync", p, ldm);
  for (int r = 0; r < M; ++r)
    for (int c = 0; c < N; ++c) f.at(r, c) = layout == mem_row_major ? p[r * ldm + c] : p[c * ldm + r];
}

template <int M, int N, int K>
inline void store_matrix_sync(float* p, const fragment<accumulator, M, N, K, float, void>& f, unsigned ldm,
                              layout_t layout) {
  sim_detail::enter_collective("store_matrix_sync", p, ldm);
  const int lane = ::janus::sim::detail::lane_id();
  for (int e = lane; e < M * N; e += 32) {
    const int r = e / N, c = e % N;
    p[layout == mem_row_major ? r * ldm + c : c * ldm + r] = f.at(r, c);
  }
  __syncwarp(0xFFFFFFFFu);  // the whole tile is in memory when any lane returns
}

// d = a * b + c (d may be c). T: precision::tf32 (m16n16k8) or __nv_bfloat16 (m16n16k16).
template <int M, int N, int K, class T, class LayoutA, class LayoutB>
inline void mma_sync(fragment<accumulator, M, N, K, float, void>& d, const fragment<matrix_a, M, N, K, T, LayoutA>& a,
                     const fragment<matrix_b, M, N, K, T, LayoutB>& b,
                     const fragment<accumulator, M, N, K, float, void>& c) {
  static_assert((std::is_same_v<T, precision::tf32> && K == 8) || (std::is_same_v<T, __nv_bfloat16> && K == 16),
                "the simulator's mma_sync: tf32 m16n16k8 or bf16 m16n16k16");
  sim_detail::enter_collective("mma_sync", nullptr, 0);
  if constexpr (std::is_same_v<T, precision::tf32>) {
    for (float v : a.x)
      if (!sim_detail::is_tf32(v))
        ::janus::sim::detail::trap("nvcuda::wmma::mma_sync: a matrix_a element is not a TF32 value "
                                   "(convert operands with __float_to_tf32)");
    for (float v : b.x)
      if (!sim_detail::is_tf32(v))
        ::janus::sim::detail::trap("nvcuda::wmma::mma_sync: a matrix_b element is not a TF32 value "
                                   "(convert operands with __float_to_tf32)");
  }
  float out[M * N];
  for (int r = 0; r < M; ++r)
    for (int col = 0; col < N; ++col) {
      float acc = c.at(r, col);
      // The product is exact (11 x 11 or 8 x 8 significant bits): one rounding per addition.
      for (int k = 0; k < K; ++k)
        acc = __fmaf_rn(static_cast<float>(a.at(r, k)), static_cast<float>(b.at(k, col)), acc);
      out[r * N + col] = acc;
    }
  std::memcpy(d.x, out, sizeof out);
}

}  // namespace nvcuda::wmma
