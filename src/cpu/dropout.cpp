// Inverted dropout: keep each element with probability 1 - p and scale the kept
// ones by 1/(1-p), so the expected output equals the input and evaluation
// needs no rescaling.
//
// The keep decision for element i is counter_uniform(seed, i) >= p: a pure
// function of (seed, i), so the CUDA backend draws the identical mask. The
// comparison is done exactly as written in device.hpp, i.e. the float uniform
// promoted to double against the double p.
#include "cpu/kernels.hpp"
#include "janus/counter_rng.hpp"

namespace janus::cpu {

template <class T>
void dropout_forward(int64_t n, const T* x, double p, uint64_t seed, T* mask, T* y) {
  const T keep_scale = static_cast<T>(1.0 / (1.0 - p));
  for (int64_t i = 0; i < n; ++i) {
    const double u = counter_uniform(seed, static_cast<uint64_t>(i));
    mask[i] = u >= p ? keep_scale : T(0);
    y[i] = x[i] * mask[i];
  }
}

template void dropout_forward<float>(int64_t, const float*, double, uint64_t, float*, float*);
template void dropout_forward<double>(int64_t, const double*, double, uint64_t, double*, double*);

}  // namespace janus::cpu
