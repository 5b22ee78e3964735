// Scalars that stay in device memory: a loss divided by its batch size, and
// the running training metrics (Device::StepTotal), so that a training step
// never copies a value back to the host (device.hpp, "losses and metrics
// that stay on the device").
//
// One thread each: these are a handful of double operations per step. The
// products and sums are rounded explicitly (__dmul_rn, __dadd_rn) so that
// nvcc cannot contract them into a fused multiply-add: the results must equal
// the host's `sum += loss * weight` bit for bit.
#include "cuda/cuda_compat.hpp"

#include "cuda/cuda_check.hpp"
#include "cuda/kernel_common.cuh"
#include "cuda/kernels.hpp"

namespace janus::cuda_kernels {

namespace {

__global__ void divide_scalar_kernel(const double* x, double divisor, double* out) { out[0] = x[0] / divisor; }

__global__ void add_count_kernel(const unsigned long long* count, double* total) {
  total[0] = __dadd_rn(total[0], static_cast<double>(count[0]));
}

__global__ void add_loss_kernel(const double* loss, StepValue<double> step_weight, StepValue<double> step_tag,
                                double* totals, int loss_sum, int first_nonfinite, int first_nonfinite_loss) {
  const double weight = step_value(step_weight), tag = step_value(step_tag);
  const double j = loss[0];
  totals[loss_sum] = __dadd_rn(totals[loss_sum], __dmul_rn(j, weight));
  if (!isfinite(j) && totals[first_nonfinite] < 0.0) {
    totals[first_nonfinite] = tag;
    totals[first_nonfinite_loss] = j;
  }
}

}  // namespace

void divide_scalar(const double* x, double divisor, double* out, cudaStream_t s) {
  JANUS_LAUNCH(divide_scalar_kernel, 1, 1, 0, s, x, divisor, out);
  JANUS_CUDA_CHECK_LAUNCH("divide_scalar_kernel");
}

void add_count(const unsigned long long* count, double* total, cudaStream_t s) {
  JANUS_LAUNCH(add_count_kernel, 1, 1, 0, s, count, total);
  JANUS_CUDA_CHECK_LAUNCH("add_count_kernel");
}

void add_loss(const double* loss, StepValue<double> weight, StepValue<double> tag, double* totals, cudaStream_t s) {
  JANUS_LAUNCH(add_loss_kernel, 1, 1, 0, s, loss, weight, tag, totals, static_cast<int>(Device::LossSum),
               static_cast<int>(Device::FirstNonfinite), static_cast<int>(Device::FirstNonfiniteLoss));
  JANUS_CUDA_CHECK_LAUNCH("add_loss_kernel");
}

}  // namespace janus::cuda_kernels
