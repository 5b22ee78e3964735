// The SGD update arithmetic, inline, so that the reference kernel
// (cpu::sgd_update, optimizer_update.cpp) and its vectorised copy for the fast
// device (simd_kernels.cpp) are one definition and cannot drift apart.
#pragma once

#include <cstdint>

namespace janus::cpu {

// g' = g + weight_decay * w; with momentum v = momentum * v + g' and
// step = nesterov ? g' + momentum * v : v (else step = g'); w -= lr * step.
// In double, rounded to T once per stored value. velocity may be null when
// momentum == 0.
template <class T>
inline void sgd_update_loop(int64_t n, T* w, const T* g, T* velocity, double lr, double momentum,
                            double weight_decay, bool nesterov) {
  for (int64_t i = 0; i < n; ++i) {
    const double gi = g[i] + weight_decay * w[i];  // L2 penalty folded into the gradient
    double step = gi;
    if (momentum != 0.0) {
      const double v = momentum * velocity[i] + gi;
      velocity[i] = static_cast<T>(v);
      // Nesterov looks ahead along the updated velocity.
      step = nesterov ? gi + momentum * v : v;
    }
    w[i] = static_cast<T>(w[i] - lr * step);
  }
}

}  // namespace janus::cpu
