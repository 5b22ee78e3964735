// Kernels of the fast CPU path (FastCpuDevice): the im2col convolutions,
// pooling and BatchNorm; the GEMMs they and the dense layers use are in
// fast_gemm.hpp. Raw, contiguous, row-major arrays, as in kernels.hpp; the
// device has validated every argument.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cpu/fast_gemm.hpp"
#include "cpu/task_team.hpp"
#include "janus/device.hpp"

namespace janus::fast {

// Convolutions, ungrouped only (groups == 1; a grouped geometry throws).
// `workspace` holds at least conv_workspace_bytes(...) bytes.
enum class ConvPass { Forward, BackwardData, BackwardFilter };
template <class T>
size_t conv_workspace_bytes(ConvPass pass, const ConvGeometry& g, int threads);
template <class T>
void conv2d_forward(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* y,
                    int threads, void* workspace);
template <class T>
void conv2d_backward_data(const ConvGeometry& g, const T* dy, const T* w, T* dx, int threads,
                          void* workspace);
template <class T>
void conv2d_backward_filter(const ConvGeometry& g, const T* x, const T* dy, T* dw, int threads,
                            void* workspace);

// Pooling (max and average), NHWC, vectorised over channels, in fixed blocks
// of output rows (forward) or images (backward) on `team` (fast_pool.cpp).
template <class T>
void pool2d_forward(PoolMode mode, const PoolGeometry& g, const T* x, T* y, TaskTeam& team);
template <class T>
void pool2d_backward(PoolMode mode, const PoolGeometry& g, const T* x, const T* dy, T* dx,
                     TaskTeam& team);

// BatchNorm training forward / backward on x viewed as rows x C (see
// fast_batchnorm.cpp). `workspace` holds at least
// batchnorm_workspace_bytes(rows, C) bytes. Runs on `team`; deterministic:
// the result does not depend on its thread count.
// Fused ReLU (Device::batchnorm_relu_*): with relu, the forward writes
// y = relu(batchnorm(x)); with relu_y (that forward's y) non-null, the
// backward treats dy as 0 where relu_y <= 0. Bit-identical to the separate
// ReLU forward / backward passes.
size_t batchnorm_workspace_bytes(int64_t rows, int64_t C);
template <class T>
void batchnorm_forward_train(int64_t rows, int64_t C, const T* x, const T* gamma, const T* beta,
                             double momentum, double eps, T* running_mean, T* running_var,
                             T* saved_mean, T* saved_invstd, T* y, TaskTeam& team,
                             void* workspace, bool relu = false);
template <class T>
void batchnorm_backward(int64_t rows, int64_t C, const T* x, const T* dy, const T* gamma,
                        const T* saved_mean, const T* saved_invstd, T* dx, T* dgamma, T* dbeta,
                        TaskTeam& team, void* workspace, const T* relu_y = nullptr);
// BatchNorm inference, then max(0, .) when relu: the reference's arithmetic
// (batchnorm_eval.hpp), bit-identical, vectorised and on `team`. `workspace`
// holds at least C doubles.
template <class T>
void batchnorm_forward_eval(int64_t rows, int64_t C, const T* x, const T* gamma, const T* beta,
                            const T* running_mean, const T* running_var, double eps, T* y,
                            TaskTeam& team, void* workspace, bool relu = false);

}  // namespace janus::fast
