// Host-side launchers for the CUDA kernels of the Janus CUDA backend.
//
// Each launcher enqueues its kernel(s) on `stream` and returns without
// synchronising. Pointers are device pointers; sizes are element counts.
// Kernels are written once and run both under nvcc and under the CPU
// simulator (JANUS_CUDA_SIM).
//
// Storage types: the launchers templated on T take activations stored as
// float or __nv_bfloat16 (instantiated for exactly these two; Device's "bf16
// storage on CUDA" ops). One kernel body per op: elements of T are read as
// float (exact), the arithmetic is that of the float instantiation, and each
// stored result is rounded once to T (kernel_common.cuh, to_storage).
// Parameters, statistics, targets, losses and the pooling argmax stay float.
#pragma once

#include "cuda/cuda_compat.hpp"

#include <cuda_bf16.h>

#include <cstdint>

#include "janus/device.hpp"
#include "janus/precision.hpp"

namespace janus::cuda_kernels {

// ---- step values (CUDA graphs) ----------------------------------------------
// A kernel argument that changes from one training step to the next (a
// dropout seed, the step number, Adam's bias corrections): the value itself,
// or, while a step is recorded as a CUDA graph, where it lies in device memory
// (written before each replay: src/cuda/step_graph.hpp). Kernels read it with
// step_value() (kernel_common.cuh).
template <class T>
struct StepValue {
  T value;
  const T* at;  // nullptr: `value`
};

// ---- elementwise.cu ---------------------------------------------------------
template <class T>
void fill(T* x, int64_t n, float value, cudaStream_t s);
// y = alpha*x + beta*y; beta == 0 means y is not read (so NaN garbage is overwritten).
template <class T>
void axpby(float alpha, const T* x, float beta, T* y, int64_t n, cudaStream_t s);
template <class T>
void multiply(const T* a, const T* b, T* out, int64_t n, cudaStream_t s);
template <class T>
void add_bias(T* y, const float* bias, int64_t rows, int64_t cols, cudaStream_t s);
// out (cols x rows) = transpose of in (rows x cols), both row-major.
void transpose(const float* in, float* out, int64_t rows, int64_t cols, cudaStream_t s);

// ---- copy_columns.cu --------------------------------------------------------
// dst[r, dst_col + k] = src[r, src_col + k] for r < rows, k < width; src is
// (rows x src_cols), dst (rows x dst_cols), row-major. In the storage type
// (a copy: exact for both).
template <class T>
void copy_columns(const T* src, int64_t src_cols, int64_t src_col, T* dst, int64_t dst_cols, int64_t dst_col,
                  int64_t rows, int64_t width, cudaStream_t s);

// ---- reduce.cu --------------------------------------------------------------
// Number of double partials sum_partials() writes for n elements.
int sum_partial_count(int64_t n);
// Sum of x into `partials` (sum_partial_count(n) doubles) and then into result[0]
// (double). Deterministic: fixed per-block order, one final block.
void sum(const float* x, int64_t n, double* partials, double* result, cudaStream_t s);
// Sums a vector of n doubles (already on the device) into result[0].
void sum_doubles(const double* x, int64_t n, double* partials, double* result, cudaStream_t s);
// Column sums: out[c] = sum_r x[r, c] + beta * out[c]. Workspace: col_partial_count doubles.
// x in the storage type (the bias gradient of bf16 dy), out float: the sums
// of the same values in the same order (double), so bf16 x gives exactly
// the float32 result on its values.
int64_t col_partial_count(int64_t rows, int64_t cols);
template <class T>
void sum_rows(const T* x, int64_t rows, int64_t cols, float beta, float* out, double* partials,
              cudaStream_t s);
// Rows where argmax(yhat) == argmax(y) (first maximum); result[0] (int64 on device).
void count_correct(const float* yhat, const float* y, int64_t rows, int64_t cols,
                   unsigned long long* result, cudaStream_t s);

// ---- device_scalars.cu -------------------------------------------------------
// out[0] = x[0] / divisor (a loss sum to its batch mean), in double.
void divide_scalar(const double* x, double divisor, double* out, cudaStream_t s);
// total[0] += count[0], in double.
void add_count(const unsigned long long* count, double* total, cudaStream_t s);
// Device::add_loss_into on totals (Device::StepTotal::Count doubles).
void add_loss(const double* loss, StepValue<double> weight, StepValue<double> tag, double* totals, cudaStream_t s);

// ---- activation.cu ----------------------------------------------------------
// The element-wise activations (not SoftMax: softmax.cu), each from its entry
// in activation_functions.hpp, in float.
template <class T>
void activation_forward(const ActivationFunction& act, const T* z, T* y, int64_t n, cudaStream_t s);
// saved: z or y as activation_reads(act.kind) says (null when it reads neither).
template <class T>
void activation_backward(const ActivationFunction& act, const T* saved, const T* dy, T* dz, int64_t n,
                         cudaStream_t s);

// ---- softmax.cu -------------------------------------------------------------
void softmax_forward(const float* z, float* y, int64_t rows, int64_t cols, cudaStream_t s);
void softmax_backward(const float* y, const float* dy, float* dz, int64_t rows, int64_t cols,
                      cudaStream_t s);
// Per-row loss terms row_loss[r] = -sum_j y_rj * log_softmax(z_r)_j (double),
// and when dz != nullptr dz_rj = (s_rj * sum_j y_rj - y_rj) * inv_m. Logits z
// and dz in the storage type, targets y float.
template <class T>
void softmax_cross_entropy(const T* z, const float* y, T* dz, float inv_m, double* row_loss, int64_t rows,
                           int64_t cols, cudaStream_t s);

// ---- loss.cu ----------------------------------------------------------------
// Per-element terms (double) whose sum is the loss times m (before the 1/m).
void cross_entropy_terms(const float* yhat, const float* y, double* terms, int64_t n,
                         cudaStream_t s);
void cross_entropy_backward(const float* yhat, const float* y, float* dyhat, float inv_m,
                            int64_t n, cudaStream_t s);
void l2_terms(const float* yhat, const float* y, double* terms, int64_t n, cudaStream_t s);
void l2_backward(const float* yhat, const float* y, float* dyhat, float two_over_m, int64_t n,
                 cudaStream_t s);

// ---- conv_implicit_gemm.cu ------------------------------------------------------
// Convolutions as implicit GEMM (NHWC x, HWIO w, NHWC y). `math` is the input
// type of the products (janus::input_math(matmul_precision(), OpClass::Matmul)):
// F32 on CUDA cores; TF32 and BF16 on tensor cores (WMMA, sm_80 and newer:
// operands rounded to TF32 or bfloat16, float32 sums). Throws janus::Error when the
// geometry needs more than 32-bit indexing.
// The activations x, y, dy, dx in the storage type T (bf16 storage: read
// exactly, each output the float32 accumulator, plus the bias, rounded once);
// the weights w, the bias and the filter gradient dw float in both.
template <class T>
void conv2d_forward_igemm(const ConvGeometry& g, const T* x, const float* w,
                          const float* bias /* nullable */, T* y, MathType math, cudaStream_t s);
template <class T>
void conv2d_backward_data_igemm(const ConvGeometry& g, const T* dy, const float* w, T* dx,
                                MathType math, cudaStream_t s);
// Split-K over the N*OH*OW reduction; workspace floats needed (0 when no split).
int64_t conv2d_backward_filter_workspace(const ConvGeometry& g);
template <class T>
void conv2d_backward_filter_igemm(const ConvGeometry& g, const T* x, const T* dy,
                                  float* dw, float* workspace, MathType math, cudaStream_t s);

// ---- conv_implicit_gemm_v1.cu: the first implicit-GEMM kernel, float32 only,
// kept as the baseline of bench/igemm_variants.cpp (not used by the backend).
void conv2d_forward_igemm_v1(const ConvGeometry& g, const float* x, const float* w,
                             const float* bias /* nullable */, float* y, cudaStream_t s);
void conv2d_backward_data_igemm_v1(const ConvGeometry& g, const float* dy, const float* w, float* dx,
                                   cudaStream_t s);
int64_t conv2d_backward_filter_workspace_v1(const ConvGeometry& g);
void conv2d_backward_filter_igemm_v1(const ConvGeometry& g, const float* x, const float* dy,
                                     float* dw, float* workspace, cudaStream_t s);

// ---- conv_grouped.cu: convolutions with groups > 1 (depthwise included) ------
// Shapes as in ConvGeometry (w / dw: (KH, KW, C/groups, F)); each pass
// overwrites its output. Deterministic (fixed plan, no atomics).
void conv2d_forward_grouped(const ConvGeometry& g, const float* x, const float* w,
                            const float* bias /* nullable */, float* y, cudaStream_t s);
void conv2d_backward_data_grouped(const ConvGeometry& g, const float* dy, const float* w, float* dx,
                                  cudaStream_t s);
void conv2d_backward_filter_grouped(const ConvGeometry& g, const float* x, const float* dy, float* dw,
                                    cudaStream_t s);

// ---- pool.cu ----------------------------------------------------------------
// argmax (N*OH*OW*C floats, Max only, nullable): each window's argmax, the
// window-local position i*KW + j as an exact small integer, for the gather.
// y (nullable when argmax is not) and x in the storage type.
template <class T>
void pool2d_forward(PoolMode mode, const PoolGeometry& g, const T* x, T* y, float* argmax, cudaStream_t s);
// dx from dy through a saved argmax (Max; ignored for Average): one launch.
template <class T>
void pool2d_backward_gather(PoolMode mode, const PoolGeometry& g, const float* argmax, const T* dy, T* dx,
                            cudaStream_t s);
// Without a saved argmax: recomputes it from x into the workspace argmax
// (N*OH*OW*C floats; Max only, may be null for Average), then the gather.
template <class T>
void pool2d_backward(PoolMode mode, const PoolGeometry& g, const T* x, const T* dy, T* dx, float* argmax,
                     cudaStream_t s);

// ---- batchnorm.cu -----------------------------------------------------------
// Training forward in two launches (one-pass Welford/Chan statistics, then the
// normalisation), backward in two (the two per-channel sums, then dx). With
// relu the output is relu(batchnorm(x)) (Device::batchnorm_relu_*); the
// backward then takes that output y and masks dy where y <= 0 (y null: no ReLU).
// Workspace: bn_workspace_count(rows, C) doubles. x, y, dy, dx in the
// storage type; everything per channel float.
int64_t bn_workspace_count(int64_t rows, int64_t cols);
template <class T>
void batchnorm_forward_train(const T* x, const float* gamma, const float* beta, double momentum, double eps,
                             bool relu, float* running_mean, float* running_var, float* saved_mean,
                             float* saved_invstd, T* y, int64_t rows, int64_t cols, double* workspace,
                             cudaStream_t s);
template <class T>
void batchnorm_forward_eval(const T* x, const float* gamma, const float* beta, const float* running_mean,
                            const float* running_var, double eps, bool relu, T* y, int64_t rows, int64_t cols,
                            cudaStream_t s);
template <class T>
void batchnorm_backward(const T* x, const T* y /* nullable */, const T* dy, const float* gamma,
                        const float* saved_mean, const float* saved_invstd, T* dx, float* dgamma, float* dbeta,
                        int64_t rows, int64_t cols, double* workspace, cudaStream_t s);

// ---- dropout.cu -------------------------------------------------------------
// Keep decision: double(counter_uniform(seed, i)) >= p, exactly as the CPU.
// mask[i] = keep ? scale : 0 and y[i] = x[i] * mask as float, each rounded once.
template <class T>
void dropout_forward(const T* x, double p, float scale, StepValue<uint64_t> seed, T* mask, T* y, int64_t n,
                     cudaStream_t s);

// ---- optimizer.cu -----------------------------------------------------------
// Multi-tensor updates: all tensors of a step in one launch. Arithmetic in
// double, each result rounded once (as the CPU backend).
// One tensor of the list (device pointers; the list itself lives in device
// memory). SGD: state1 = velocity (null when momentum == 0); Adam: state1 =
// m, state2 = v. first_block is set by plan_multi_tensor_blocks.
struct TensorUpdate {
  float* w;
  const float* g;
  float* state1;
  float* state2;
  int64_t n;
  double lr, weight_decay;
  int64_t first_block;
};
// Elements per block of a multi-tensor launch.
constexpr int64_t kUpdateChunk = 4 * 256;
// Sets each entry's first_block (host list); returns the launch's block count.
int64_t plan_multi_tensor_blocks(TensorUpdate* list, int count);
void sgd_update_multi(const TensorUpdate* list, int count, int64_t blocks, double momentum, bool nesterov,
                      cudaStream_t s);
// bc1 = 1 - beta1^step, bc2 = 1 - beta2^step (computed on the host in double).
void adam_update_multi(const TensorUpdate* list, int count, int64_t blocks, double beta1, double beta2,
                       double eps, bool decoupled, StepValue<double> bc1, StepValue<double> bc2, cudaStream_t s);

// Explicit instantiation of a templated launcher for both storage types, in
// the .cu file that defines it: JANUS_FOR_STORAGE_TYPES(INSTANTIATE) with
// INSTANTIATE(T) a `template void f<T>(...);`.
#define JANUS_FOR_STORAGE_TYPES(INSTANTIATE) \
  INSTANTIATE(float)                         \
  INSTANTIATE(__nv_bfloat16)

}  // namespace janus::cuda_kernels
