// Activations: Linear, Sigmoid, TanH, ReLU (elementwise) and SoftMax (over
// each row), forward and backward. Also the stable log-sum-exp that the fused
// softmax cross-entropy loss shares with SoftMax.
#include <algorithm>
#include <cmath>

#include "cpu/kernels.hpp"

namespace janus::cpu {

template <class T>
double log_sum_exp(int64_t k, const T* z) {
  // Subtracting the row maximum keeps every exp() in (0, 1]: no overflow for
  // large logits, and the largest term is exactly 1 so the sum is >= 1.
  double mx = z[0];
  for (int64_t j = 1; j < k; ++j) mx = std::max(mx, static_cast<double>(z[j]));
  double s = 0.0;
  for (int64_t j = 0; j < k; ++j) s += std::exp(z[j] - mx);
  return mx + std::log(s);
}

namespace {

// 1 / (1 + e^-z) without overflow: for negative z use e^z / (1 + e^z).
double sigmoid(double z) {
  if (z >= 0) return 1.0 / (1.0 + std::exp(-z));
  const double e = std::exp(z);
  return e / (1.0 + e);
}

}  // namespace

template <class T>
void activation_forward(ActivationKind act, int64_t rows, int64_t cols, const T* z, T* y) {
  const int64_t n = rows * cols;
  switch (act) {
    case ActivationKind::Linear:
      for (int64_t i = 0; i < n; ++i) y[i] = z[i];
      return;
    case ActivationKind::Sigmoid:
      for (int64_t i = 0; i < n; ++i) y[i] = static_cast<T>(sigmoid(z[i]));
      return;
    case ActivationKind::TanH:
      for (int64_t i = 0; i < n; ++i) y[i] = static_cast<T>(std::tanh(static_cast<double>(z[i])));
      return;
    case ActivationKind::ReLU:
      for (int64_t i = 0; i < n; ++i) y[i] = z[i] > T(0) ? z[i] : T(0);
      return;
    case ActivationKind::SoftMax:
      // s_j = exp(z_j - lse): the same as exp(z_j) / sum exp(z), but stable.
      for (int64_t r = 0; r < rows; ++r) {
        const T* zr = z + r * cols;
        T* yr = y + r * cols;
        const double lse = log_sum_exp(cols, zr);
        for (int64_t j = 0; j < cols; ++j) yr[j] = static_cast<T>(std::exp(zr[j] - lse));
      }
      return;
  }
}

template <class T>
void activation_backward(ActivationKind act, int64_t rows, int64_t cols, const T* z, const T* y,
                         const T* dy, T* dz) {
  const int64_t n = rows * cols;
  switch (act) {
    case ActivationKind::Linear:
      for (int64_t i = 0; i < n; ++i) dz[i] = dy[i];
      return;
    case ActivationKind::Sigmoid:  // s' = s (1 - s)
      for (int64_t i = 0; i < n; ++i) dz[i] = dy[i] * y[i] * (T(1) - y[i]);
      return;
    case ActivationKind::TanH:  // tanh' = 1 - tanh^2
      for (int64_t i = 0; i < n; ++i) dz[i] = dy[i] * (T(1) - y[i] * y[i]);
      return;
    case ActivationKind::ReLU:  // derivative 0 where z <= 0 (including at 0)
      for (int64_t i = 0; i < n; ++i) dz[i] = z[i] > T(0) ? dy[i] : T(0);
      return;
    case ActivationKind::SoftMax:
      // Jacobian-vector product of softmax, one row at a time:
      // dz_j = s_j * (dy_j - sum_k dy_k s_k).
      for (int64_t r = 0; r < rows; ++r) {
        const T* yr = y + r * cols;
        const T* dyr = dy + r * cols;
        T* dzr = dz + r * cols;
        double dot = 0.0;
        for (int64_t j = 0; j < cols; ++j) dot += static_cast<double>(dyr[j]) * yr[j];
        for (int64_t j = 0; j < cols; ++j) dzr[j] = static_cast<T>(yr[j] * (dyr[j] - dot));
      }
      return;
  }
}

#define JANUS_INSTANTIATE(T)                                                                  \
  template double log_sum_exp<T>(int64_t, const T*);                                          \
  template void activation_forward<T>(ActivationKind, int64_t, int64_t, const T*, T*);        \
  template void activation_backward<T>(ActivationKind, int64_t, int64_t, const T*, const T*,  \
                                       const T*, T*);
JANUS_INSTANTIATE(float)
JANUS_INSTANTIATE(double)
#undef JANUS_INSTANTIATE

}  // namespace janus::cpu
