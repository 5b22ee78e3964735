// See fast_elementwise.hpp. Compiled with -ffp-contract=off (CMakeLists.txt):
// every clone rounds as the reference does.
#include "cpu/fast_elementwise.hpp"

#include "cpu/column_sums.hpp"
#include "cpu/vector_clones.hpp"

namespace janus::fast {

namespace {

// ReLU with both operands loaded unconditionally, so that the compiler turns
// the selection into a vector blend instead of a data-dependent branch
// ('omp simd': no loop-carried dependence, also when the output aliases an
// input element for element, which the interface allows).
template <class T>
JANUS_ALWAYS_INLINE void relu_forward_loop(int64_t n, const T* z, T* y) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const T v = z[i];
    y[i] = v > T(0) ? v : T(0);
  }
}

template <class T>
JANUS_ALWAYS_INLINE void bias_relu_forward_loop(int64_t rows, int64_t cols, const T* bias, T* z,
                                                T* y) {
  for (int64_t r = 0; r < rows; ++r) {
    T* zr = z + r * cols;
    T* yr = y + r * cols;
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) {
      const T v = zr[c] + bias[c];
      zr[c] = v;
      yr[c] = v > T(0) ? v : T(0);
    }
  }
}

template <class T>
JANUS_ALWAYS_INLINE void relu_backward_loop(int64_t n, const T* z, const T* dy, T* dz) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const T v = z[i], d = dy[i];
    dz[i] = v > T(0) ? d : T(0);
  }
}

}  // namespace

#define JANUS_CLONED_KERNELS(T)                                                               \
  JANUS_VECTOR_CLONES void relu_forward(int64_t n, const T* z, T* y) {                        \
    relu_forward_loop(n, z, y);                                                               \
  }                                                                                           \
  JANUS_VECTOR_CLONES void bias_relu_forward(int64_t rows, int64_t cols, const T* bias, T* z, \
                                             T* y) {                                          \
    bias_relu_forward_loop(rows, cols, bias, z, y);                                           \
  }                                                                                           \
  JANUS_VECTOR_CLONES void relu_backward(int64_t n, const T* z, const T* dy, T* dz) {         \
    relu_backward_loop(n, z, dy, dz);                                                         \
  }                                                                                           \
  JANUS_VECTOR_CLONES void column_sums(int64_t r0, int64_t r1, int64_t cols, const T* x,      \
                                       double* acc) {                                         \
    all_column_sums(r0, r1, cols, x, acc);                                                    \
  }
JANUS_CLONED_KERNELS(float)
JANUS_CLONED_KERNELS(double)
#undef JANUS_CLONED_KERNELS

}  // namespace janus::fast
