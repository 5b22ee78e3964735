// In-place parameter updates for SGD (with momentum / Nesterov / weight decay)
// and Adam / AdamW. Each element is updated independently; the arithmetic is
// done in double and the results rounded to T.
#include <cmath>

#include "cpu/kernels.hpp"
#include "cpu/sgd_update.hpp"

namespace janus::cpu {

template <class T>
void sgd_update(int64_t n, T* w, const T* g, T* velocity, double lr, double momentum,
                double weight_decay, bool nesterov) {
  sgd_update_loop(n, w, g, velocity, lr, momentum, weight_decay, nesterov);
}

template <class T>
void adam_update(int64_t n, T* w, const T* g, T* m, T* v, double lr, double beta1, double beta2,
                 double eps, double weight_decay, bool decoupled, int64_t step) {
  // Bias corrections: m and v start at 0, so early averages are scaled up.
  const double c1 = 1.0 - std::pow(beta1, static_cast<double>(step));
  const double c2 = 1.0 - std::pow(beta2, static_cast<double>(step));
  for (int64_t i = 0; i < n; ++i) {
    double wi = w[i];
    double gi = g[i];
    if (decoupled)
      wi -= lr * weight_decay * wi;  // AdamW: decay the weight itself
    else
      gi += weight_decay * wi;  // Adam: L2 penalty in the gradient
    const double mi = beta1 * m[i] + (1.0 - beta1) * gi;
    const double vi = beta2 * v[i] + (1.0 - beta2) * gi * gi;
    m[i] = static_cast<T>(mi);
    v[i] = static_cast<T>(vi);
    w[i] = static_cast<T>(wi - lr * (mi / c1) / (std::sqrt(vi / c2) + eps));
  }
}

#define JANUS_INSTANTIATE(T)                                                                   \
  template void sgd_update<T>(int64_t, T*, const T*, T*, double, double, double, bool);       \
  template void adam_update<T>(int64_t, T*, const T*, T*, T*, double, double, double, double, \
                               double, bool, int64_t);
JANUS_INSTANTIATE(float)
JANUS_INSTANTIATE(double)
#undef JANUS_INSTANTIATE

}  // namespace janus::cpu
