// The BatchNorm inference arithmetic, inline, so that the reference kernel
// (cpu::batchnorm_forward_eval, batchnorm.cpp) and the fast device's cloned
// copy (fast_batchnorm.cpp) are one definition and cannot drift apart.
#pragma once

#include <cmath>
#include <cstdint>

namespace janus::cpu {

// scale[c] = gamma[c] / sqrt(running_var[c] + eps), in double.
template <class T>
inline void batchnorm_eval_scale(int64_t C, const T* gamma, const T* running_var, double eps,
                                 double* scale) {
  for (int64_t c = 0; c < C; ++c) scale[c] = gamma[c] / std::sqrt(running_var[c] + eps);
}

// y = scale * (x - running_mean) + beta for rows x C values, in double,
// rounded to T once.
template <class T>
inline void batchnorm_eval_rows(int64_t rows, int64_t C, const T* x, const double* scale,
                                const T* running_mean, const T* beta, T* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * C;
    T* yr = y + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c)
      yr[c] = static_cast<T>(scale[c] * (xr[c] - static_cast<double>(running_mean[c])) + beta[c]);
  }
}

}  // namespace janus::cpu
