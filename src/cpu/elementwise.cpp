// Elementwise and reduction kernels: fill, axpby, multiply, add_bias,
// sum_rows, sum.
#include <vector>

#include "cpu/kernels.hpp"

namespace janus::cpu {

template <class T>
void fill(int64_t n, double value, T* x) {
  const T v = static_cast<T>(value);
  for (int64_t i = 0; i < n; ++i) x[i] = v;
}

template <class T>
void axpby(int64_t n, double alpha, const T* x, double beta, T* y) {
  if (beta == 0.0) {  // do not read y: it may be uninitialised
    for (int64_t i = 0; i < n; ++i) y[i] = static_cast<T>(alpha * x[i]);
    return;
  }
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<T>(alpha * x[i] + beta * y[i]);
}

template <class T>
void multiply(int64_t n, const T* a, const T* b, T* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] * b[i];
}

template <class T>
void add_bias(int64_t rows, int64_t cols, const T* bias, T* y) {
  for (int64_t r = 0; r < rows; ++r) {
    T* row = y + r * cols;
    for (int64_t c = 0; c < cols; ++c) row[c] += bias[c];
  }
}

template <class T>
void sum_rows(int64_t rows, int64_t cols, const T* x, double beta, T* out) {
  // Walk x row by row (contiguous) and keep one double accumulator per column.
  std::vector<double> acc(static_cast<size_t>(cols), 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = x + r * cols;
    for (int64_t c = 0; c < cols; ++c) acc[c] += row[c];
  }
  for (int64_t c = 0; c < cols; ++c)
    out[c] = static_cast<T>(beta == 0.0 ? acc[c] : acc[c] + beta * out[c]);
}

template <class T>
double sum(int64_t n, const T* x) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += x[i];
  return s;
}

#define JANUS_INSTANTIATE(T)                                                   \
  template void fill<T>(int64_t, double, T*);                                  \
  template void axpby<T>(int64_t, double, const T*, double, T*);               \
  template void multiply<T>(int64_t, const T*, const T*, T*);                  \
  template void add_bias<T>(int64_t, int64_t, const T*, T*);                   \
  template void sum_rows<T>(int64_t, int64_t, const T*, double, T*);           \
  template double sum<T>(int64_t, const T*);
JANUS_INSTANTIATE(float)
JANUS_INSTANTIATE(double)
#undef JANUS_INSTANTIATE

}  // namespace janus::cpu
