// See simd_kernels.hpp. Measured on the MLP's 784x256 weights (200704
// floats, one thread, -O3): 100 us baseline, 33 us with AVX-512.
#include "cpu/simd_kernels.hpp"

#include "cpu/sgd_update.hpp"
#include "cpu/vector_clones.hpp"

namespace janus::fast {

JANUS_VECTOR_CLONES
void sgd_update(int64_t n, float* w, const float* g, float* velocity, double lr, double momentum,
                double weight_decay, bool nesterov) {
  cpu::sgd_update_loop(n, w, g, velocity, lr, momentum, weight_decay, nesterov);
}

JANUS_VECTOR_CLONES
void sgd_update(int64_t n, double* w, const double* g, double* velocity, double lr,
                double momentum, double weight_decay, bool nesterov) {
  cpu::sgd_update_loop(n, w, g, velocity, lr, momentum, weight_decay, nesterov);
}

}  // namespace janus::fast
