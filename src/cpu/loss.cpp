// Losses (batch means, divided by the batch size m) and their gradients:
// cross-entropy on probabilities, L2, fused softmax + cross-entropy on logits,
// and the accuracy count.
#include <algorithm>
#include <cmath>

#include "cpu/kernels.hpp"

namespace janus::cpu {

namespace {

// Probabilities are clamped below so that a hard 0 gives a large finite loss
// and gradient instead of inf. The constant is the float value of 1e-12 so
// that F32 and F64 (and the CUDA backend) clamp at the same point.
constexpr double kProbFloor = static_cast<double>(1e-12f);

template <class T>
int64_t argmax(int64_t k, const T* v) {
  int64_t best = 0;
  for (int64_t j = 1; j < k; ++j)
    if (v[j] > v[best]) best = j;  // strict: the first maximum wins ties
  return best;
}

}  // namespace

template <class T>
double cross_entropy_forward(int64_t m, int64_t n, const T* yhat, const T* y) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += y[i] * std::log(std::max<double>(yhat[i], kProbFloor));
  return -s / static_cast<double>(m);
}

template <class T>
void cross_entropy_backward(int64_t m, int64_t n, const T* yhat, const T* y, T* dyhat) {
  const double scale = -1.0 / static_cast<double>(m);
  for (int64_t i = 0; i < n; ++i)
    dyhat[i] = static_cast<T>(scale * y[i] / std::max<double>(yhat[i], kProbFloor));
}

template <class T>
double l2_forward(int64_t m, int64_t n, const T* yhat, const T* y) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(yhat[i]) - y[i];
    s += d * d;
  }
  return s / static_cast<double>(m);
}

template <class T>
void l2_backward(int64_t m, int64_t n, const T* yhat, const T* y, T* dyhat) {
  const double scale = 2.0 / static_cast<double>(m);
  for (int64_t i = 0; i < n; ++i)
    dyhat[i] = static_cast<T>(scale * (static_cast<double>(yhat[i]) - y[i]));
}

template <class T>
double softmax_cross_entropy(int64_t m, int64_t rows, int64_t k, const T* z, const T* y, T* dz) {
  // With lse = log sum exp(z_i): log_softmax_ij = z_ij - lse, never -inf, so no
  // clamping is needed (unlike cross_entropy_forward on probabilities).
  const double inv_m = 1.0 / static_cast<double>(m);
  double total = 0.0;
  for (int64_t r = 0; r < rows; ++r) {
    const T* zr = z + r * k;
    const T* yr = y + r * k;
    const double lse = log_sum_exp(k, zr);
    double ysum = 0.0;
    for (int64_t j = 0; j < k; ++j) {
      total -= yr[j] * (zr[j] - lse);
      ysum += yr[j];
    }
    if (dz) {
      // d/dz_j of -sum_l y_l (z_l - lse) = s_j * sum_l y_l - y_j.
      T* dzr = dz + r * k;
      for (int64_t j = 0; j < k; ++j)
        dzr[j] = static_cast<T>((std::exp(zr[j] - lse) * ysum - yr[j]) * inv_m);
    }
  }
  return total * inv_m;
}

template <class T>
int64_t count_correct(int64_t rows, int64_t k, const T* yhat, const T* y) {
  int64_t correct = 0;
  for (int64_t r = 0; r < rows; ++r)
    if (argmax(k, yhat + r * k) == argmax(k, y + r * k)) ++correct;
  return correct;
}

#define JANUS_INSTANTIATE(T)                                                          \
  template double cross_entropy_forward<T>(int64_t, int64_t, const T*, const T*);     \
  template void cross_entropy_backward<T>(int64_t, int64_t, const T*, const T*, T*);  \
  template double l2_forward<T>(int64_t, int64_t, const T*, const T*);                \
  template void l2_backward<T>(int64_t, int64_t, const T*, const T*, T*);             \
  template double softmax_cross_entropy<T>(int64_t, int64_t, int64_t, const T*, const T*, T*); \
  template int64_t count_correct<T>(int64_t, int64_t, const T*, const T*);
JANUS_INSTANTIATE(float)
JANUS_INSTANTIATE(double)
#undef JANUS_INSTANTIATE

}  // namespace janus::cpu
