// The element-wise activations, forward and backward: one kernel template
// instantiated per entry of the activation table (activation_functions.hpp),
// so a new activation needs no edit here. SoftMax is row-wise and lives in
// softmax.cu.
#include "cuda/cuda_compat.hpp"

#include "cuda/cuda_check.hpp"
#include "cuda/kernel_common.cuh"
#include "cuda/kernels.hpp"
#include "janus/error.hpp"

namespace janus::cuda_kernels {

namespace {

template <class Entry>
__global__ void activation_forward_kernel(const float* z, float* y, int64_t n, float param) {
  JANUS_KERNEL_LOOP(i, n) { y[i] = Entry::forward(z[i], param); }
}

// saved is z or y as Entry::reads says; null (never read) when it reads nothing.
template <class Entry>
__global__ void activation_backward_kernel(const float* saved, const float* dy, float* dz,
                                           int64_t n, float param) {
  JANUS_KERNEL_LOOP(i, n) {
    const float x = Entry::reads == ActivationReads::Nothing ? 0.0f : saved[i];
    dz[i] = Entry::backward(x, dy[i], param);
  }
}

// The parameter rounded to float once, as PyTorch rounds negative_slope.
float parameter_of(const ActivationFunction& act) { return static_cast<float>(act.negative_slope); }

}  // namespace

void activation_forward(const ActivationFunction& act, const float* z, float* y, int64_t n,
                        cudaStream_t s) {
  const float param = parameter_of(act);
  const bool elementwise = visit_elementwise_activation(act.kind, [&](auto entry) {
    auto* kernel = &activation_forward_kernel<decltype(entry)>;
    JANUS_LAUNCH_1D(kernel, n, s, z, y, n, param);
  });
  JANUS_CHECK(elementwise, "cuda activation_forward: softmax is not element-wise (softmax_forward)");
}

void activation_backward(const ActivationFunction& act, const float* saved, const float* dy,
                         float* dz, int64_t n, cudaStream_t s) {
  const float param = parameter_of(act);
  const bool elementwise = visit_elementwise_activation(act.kind, [&](auto entry) {
    auto* kernel = &activation_backward_kernel<decltype(entry)>;
    JANUS_LAUNCH_1D(kernel, n, s, saved, dy, dz, n, param);
  });
  JANUS_CHECK(elementwise, "cuda activation_backward: softmax is not element-wise (softmax_backward)");
}

}  // namespace janus::cuda_kernels
