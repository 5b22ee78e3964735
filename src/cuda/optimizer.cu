// Optimizer updates: every parameter of a step in one launch (multi-tensor,
// as PyTorch's multi_tensor_apply and apex do). The host passes a list of
// TensorUpdate descriptors in device memory; each tensor owns a run of
// consecutive blocks of kUpdateChunk elements (first_block), so a block finds
// its tensor by a binary search over the list and updates one chunk of it.
// The arithmetic is done in double and each stored value rounded once, as in
// the CPU backend (these kernels are memory-bound, so double costs nothing
// noticeable on data-centre GPUs), which makes the two backends agree to the
// last bit in almost every element. A single-tensor update is a list of one.
#include "cuda/cuda_compat.hpp"

#include <cmath>

#include "cuda/cuda_check.hpp"
#include "cuda/kernel_common.cuh"
#include "cuda/kernels.hpp"

namespace janus::cuda_kernels {

namespace {

// The tensor whose blocks include this one: the last entry with
// first_block <= blockIdx.x (first_block ascends, entry 0 starts at 0).
__device__ inline const TensorUpdate& tensor_of_block(const TensorUpdate* list, int count) {
  int lo = 0, hi = count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (list[mid].first_block <= static_cast<int64_t>(blockIdx.x)) lo = mid;
    else hi = mid - 1;
  }
  return list[lo];
}

// Runs step(t, i) for the elements i of this block's chunk of its tensor t.
template <class Step>
__device__ inline void for_chunk_elements(const TensorUpdate* list, int count, Step step) {
  const TensorUpdate& t = tensor_of_block(list, count);
  const int64_t begin = (static_cast<int64_t>(blockIdx.x) - t.first_block) * kUpdateChunk;
  const int64_t end = begin + kUpdateChunk < t.n ? begin + kUpdateChunk : t.n;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) step(t, i);
}

// state1 = velocity (null when momentum == 0).
__global__ void sgd_multi_kernel(const TensorUpdate* list, int count, double momentum, int nesterov) {
  for_chunk_elements(list, count, [&](const TensorUpdate& t, int64_t i) {
    const double gi = static_cast<double>(t.g[i]) + t.weight_decay * static_cast<double>(t.w[i]);
    double step = gi;
    if (momentum != 0.0) {
      const double v = momentum * static_cast<double>(t.state1[i]) + gi;
      t.state1[i] = static_cast<float>(v);
      step = nesterov ? gi + momentum * v : v;
    }
    t.w[i] = static_cast<float>(static_cast<double>(t.w[i]) - t.lr * step);
  });
}

// state1 = m, state2 = v.
__global__ void adam_multi_kernel(const TensorUpdate* list, int count, double beta1, double beta2, double eps,
                                  int decoupled, StepValue<double> step_bc1, StepValue<double> step_bc2) {
  const double bc1 = step_value(step_bc1), bc2 = step_value(step_bc2);
  for_chunk_elements(list, count, [&](const TensorUpdate& t, int64_t i) {
    double wi = t.w[i];
    double gi = t.g[i];
    if (decoupled) wi -= t.lr * t.weight_decay * wi;
    else gi += t.weight_decay * wi;
    const double mi = beta1 * static_cast<double>(t.state1[i]) + (1.0 - beta1) * gi;
    const double vi = beta2 * static_cast<double>(t.state2[i]) + (1.0 - beta2) * gi * gi;
    t.state1[i] = static_cast<float>(mi);
    t.state2[i] = static_cast<float>(vi);
    t.w[i] = static_cast<float>(wi - t.lr * (mi / bc1) / (sqrt(vi / bc2) + eps));
  });
}

}  // namespace

int64_t plan_multi_tensor_blocks(TensorUpdate* list, int count) {
  int64_t blocks = 0;
  for (int k = 0; k < count; ++k) {
    list[k].first_block = blocks;
    blocks += (list[k].n + kUpdateChunk - 1) / kUpdateChunk;
  }
  return blocks;
}

void sgd_update_multi(const TensorUpdate* list, int count, int64_t blocks, double momentum, bool nesterov,
                      cudaStream_t s) {
  if (count <= 0 || blocks <= 0) return;
  JANUS_LAUNCH(sgd_multi_kernel, static_cast<unsigned>(blocks), kThreads, 0, s, list, count, momentum,
               nesterov ? 1 : 0);
  JANUS_CUDA_CHECK_LAUNCH("sgd_multi_kernel");
}

void adam_update_multi(const TensorUpdate* list, int count, int64_t blocks, double beta1, double beta2, double eps,
                       bool decoupled, StepValue<double> bc1, StepValue<double> bc2, cudaStream_t s) {
  if (count <= 0 || blocks <= 0) return;
  JANUS_LAUNCH(adam_multi_kernel, static_cast<unsigned>(blocks), kThreads, 0, s, list, count, beta1, beta2, eps,
               decoupled ? 1 : 0, bc1, bc2);
  JANUS_CUDA_CHECK_LAUNCH("adam_multi_kernel");
}

}  // namespace janus::cuda_kernels
