// Activations, forward and backward: the element-wise ones from their entries
// in activation_functions.hpp, SoftMax (over each row) here. Also the stable
// log-sum-exp that the fused softmax cross-entropy loss shares with SoftMax.
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

// The parameter as the kernels of type T see it: rounded to T first, as
// PyTorch rounds negative_slope to the tensor's scalar type.
template <class T>
double parameter_of(const ActivationFunction& act) {
  return static_cast<double>(static_cast<T>(act.negative_slope));
}

}  // namespace

template <class T>
void activation_forward(const ActivationFunction& act, int64_t rows, int64_t cols, const T* z, T* y) {
  const int64_t n = rows * cols;
  const double p = parameter_of<T>(act);
  const bool elementwise = visit_elementwise_activation(act.kind, [&](auto entry) {
    using Entry = decltype(entry);
    for (int64_t i = 0; i < n; ++i)
      y[i] = static_cast<T>(Entry::forward(static_cast<double>(z[i]), p));
  });
  if (elementwise) return;
  // SoftMax: s_j = exp(z_j - lse), the same as exp(z_j) / sum exp(z), but stable.
  for (int64_t r = 0; r < rows; ++r) {
    const T* zr = z + r * cols;
    T* yr = y + r * cols;
    const double lse = log_sum_exp(cols, zr);
    for (int64_t j = 0; j < cols; ++j) yr[j] = static_cast<T>(std::exp(zr[j] - lse));
  }
}

template <class T>
void activation_backward(const ActivationFunction& act, int64_t rows, int64_t cols, const T* saved,
                         const T* dy, T* dz) {
  const int64_t n = rows * cols;
  const T p = static_cast<T>(act.negative_slope);
  // In T, as PyTorch's kernels and the GPU's: every backward here is a few
  // products of saved values that are already rounded to T.
  const bool elementwise = visit_elementwise_activation(act.kind, [&](auto entry) {
    using Entry = decltype(entry);
    for (int64_t i = 0; i < n; ++i) dz[i] = Entry::backward(saved ? saved[i] : T(0), dy[i], p);  // Linear reads nothing
  });
  if (elementwise) return;
  // SoftMax (saved = y): the Jacobian-vector product, one row at a time:
  // dz_j = s_j * (dy_j - sum_k dy_k s_k).
  for (int64_t r = 0; r < rows; ++r) {
    const T* yr = saved + r * cols;
    const T* dyr = dy + r * cols;
    T* dzr = dz + r * cols;
    double dot = 0.0;
    for (int64_t j = 0; j < cols; ++j) dot += static_cast<double>(dyr[j]) * yr[j];
    for (int64_t j = 0; j < cols; ++j) dzr[j] = static_cast<T>(yr[j] * (dyr[j] - dot));
  }
}

#define JANUS_INSTANTIATE(T)                                                                  \
  template double log_sum_exp<T>(int64_t, const T*);                                          \
  template void activation_forward<T>(const ActivationFunction&, int64_t, int64_t, const T*, T*); \
  template void activation_backward<T>(const ActivationFunction&, int64_t, int64_t, const T*,     \
                                       const T*, T*);
JANUS_INSTANTIATE(float)
JANUS_INSTANTIATE(double)
#undef JANUS_INSTANTIATE

}  // namespace janus::cpu
