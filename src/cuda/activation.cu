// The element-wise activations, forward and backward: one kernel template
// instantiated per entry of the activation table (activation_functions.hpp),
// so a new activation needs no edit here, and per storage type T (float or
// __nv_bfloat16: float arithmetic, one rounding per stored result). SoftMax
// is row-wise and lives in softmax.cu.
#include "cuda/cuda_compat.hpp"

#include "cuda/cuda_check.hpp"
#include "cuda/kernel_common.cuh"
#include "cuda/kernels.hpp"
#include "janus/error.hpp"

namespace janus::cuda_kernels {

namespace {

template <class Entry, class T>
__global__ void activation_forward_kernel(const T* z, T* y, int64_t n, float param) {
  JANUS_KERNEL_LOOP(i, n) { y[i] = to_storage<T>(Entry::forward(to_float(z[i]), param)); }
}

// saved is z or y as Entry::reads says; null (never read) when it reads nothing.
template <class Entry, class T>
__global__ void activation_backward_kernel(const T* saved, const T* dy, T* dz, int64_t n, float param) {
  JANUS_KERNEL_LOOP(i, n) {
    const float x = Entry::reads == ActivationReads::Nothing ? 0.0f : to_float(saved[i]);
    dz[i] = to_storage<T>(Entry::backward(x, to_float(dy[i]), param));
  }
}

// The parameter rounded to float once, as PyTorch rounds negative_slope.
float parameter_of(const ActivationFunction& act) { return static_cast<float>(act.negative_slope); }

}  // namespace

template <class T>
void activation_forward(const ActivationFunction& act, const T* z, T* y, int64_t n, cudaStream_t s) {
  const float param = parameter_of(act);
  const bool elementwise = visit_elementwise_activation(act.kind, [&](auto entry) {
    auto* kernel = &activation_forward_kernel<decltype(entry), T>;
    JANUS_LAUNCH_1D(kernel, n, s, z, y, n, param);
  });
  JANUS_CHECK(elementwise, "cuda activation_forward: softmax is not element-wise (softmax_forward)");
}

template <class T>
void activation_backward(const ActivationFunction& act, const T* saved, const T* dy, T* dz, int64_t n,
                         cudaStream_t s) {
  const float param = parameter_of(act);
  const bool elementwise = visit_elementwise_activation(act.kind, [&](auto entry) {
    auto* kernel = &activation_backward_kernel<decltype(entry), T>;
    JANUS_LAUNCH_1D(kernel, n, s, saved, dy, dz, n, param);
  });
  JANUS_CHECK(elementwise, "cuda activation_backward: softmax is not element-wise (softmax_backward)");
}

#define JANUS_INSTANTIATE(T)                                                                               \
  template void activation_forward<T>(const ActivationFunction&, const T*, T*, int64_t, cudaStream_t);    \
  template void activation_backward<T>(const ActivationFunction&, const T*, const T*, T*, int64_t, cudaStream_t);
JANUS_FOR_STORAGE_TYPES(JANUS_INSTANTIATE)
#undef JANUS_INSTANTIATE

}  // namespace janus::cuda_kernels
