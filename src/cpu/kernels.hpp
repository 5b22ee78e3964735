// The CPU kernels: plain loops on raw, contiguous, row-major arrays.
//
// These are the reference implementation of every Device operation. They are
// written to be obviously correct rather than fast: the CUDA backend and any
// future fast path are tested against them. CpuDevice (cpu_device.cpp) checks
// shapes and dtypes and then calls exactly one of these; the kernels themselves
// trust their arguments.
//
// Every kernel is a template on the element type T and is explicitly
// instantiated for float and double in the .cpp file that defines it (one file
// per concept). Sums over many terms are accumulated in double, so an F32 result
// differs from the exact one by the final rounding only, not by summation order.
//
// Aliasing: unless noted, an output may alias an input of the same size; each
// kernel reads the inputs of an element before it writes that element.
#pragma once

#include <algorithm>

#include <cstdint>

#include "janus/device.hpp"

namespace janus::cpu {

// ---- elementwise.cpp --------------------------------------------------------
template <class T> void fill(int64_t n, double value, T* x);
// y = alpha*x + beta*y; with beta == 0, y is only written (as BLAS does), so
// uninitialised memory (NaN) in y does not leak into the result.
template <class T> void axpby(int64_t n, double alpha, const T* x, double beta, T* y);
template <class T> void multiply(int64_t n, const T* a, const T* b, T* out);
// y (rows x cols) += bias (cols) on every row.
template <class T> void add_bias(int64_t rows, int64_t cols, const T* bias, T* y);
// out (cols) = column sums of x (rows x cols) + beta*out (out not read if beta == 0).
template <class T> void sum_rows(int64_t rows, int64_t cols, const T* x, double beta, T* out);
template <class T> double sum(int64_t n, const T* x);

// ---- gemm.cpp ---------------------------------------------------------------
// C (M x N) = alpha * op(A) op(B) + beta * C, row-major; A is (M x K) or, when
// trans_a, (K x M); B is (K x N) or, when trans_b, (N x K). C not read if beta == 0.
template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const T* a,
          const T* b, double beta, T* c);

// ---- activation.cpp ---------------------------------------------------------
// log(sum_j exp(z_j)) of one row of k values, computed stably as
// max + log(sum_j exp(z_j - max)). The single home of the softmax maths: the
// SoftMax activation (s_j = exp(z_j - lse)) and the fused softmax
// cross-entropy loss (log_softmax_j = z_j - lse) both build on it.
template <class T> double log_sum_exp(int64_t k, const T* z);
// y = act(z) on a (rows x cols) view; SoftMax works row by row. The maths of
// the element-wise ones is their entry in activation_functions.hpp: forward in
// double rounded to T once, backward in T. y may alias z.
template <class T>
void activation_forward(const ActivationFunction& act, int64_t rows, int64_t cols, const T* z, T* y);
// dz = act'(z) * dy. `saved` is the forward tensor the backward reads, z or
// y as activation_reads(act.kind) says (null when it reads nothing).
template <class T>
void activation_backward(const ActivationFunction& act, int64_t rows, int64_t cols, const T* saved,
                         const T* dy, T* dz);

// ---- loss.cpp ---------------------------------------------------------------
// n elements in all, m = batch size (the divisor of the batch mean).
template <class T> double cross_entropy_forward(int64_t m, int64_t n, const T* yhat, const T* y);
template <class T>
void cross_entropy_backward(int64_t m, int64_t n, const T* yhat, const T* y, T* dyhat);
template <class T> double l2_forward(int64_t m, int64_t n, const T* yhat, const T* y);
template <class T> void l2_backward(int64_t m, int64_t n, const T* yhat, const T* y, T* dyhat);
// Logits z viewed as (rows x k); dz may be null (loss only).
template <class T>
double softmax_cross_entropy(int64_t m, int64_t rows, int64_t k, const T* z, const T* y, T* dz);
// Rows (of rows x k) whose first argmax agrees between yhat and y.
template <class T> int64_t count_correct(int64_t rows, int64_t k, const T* yhat, const T* y);

// ---- conv2d.cpp (NHWC input, HWIO weights; see ConvGeometry) ----------------
// bias may be null.
template <class T>
void conv2d_forward(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* y);
template <class T>
void conv2d_backward_data(const ConvGeometry& g, const T* dy, const T* w, T* dx);
template <class T>
void conv2d_backward_filter(const ConvGeometry& g, const T* x, const T* dy, T* dw);

// ---- pool2d.cpp (NHWC; see PoolGeometry) ------------------------------------
// The in-bounds part [h0, h1) x [v0, v1) of pooling window (r, c): the input
// rows and columns it covers once the padding is cut off (shared by the
// reference and the fast pooling kernels).
struct PoolWindow {
  int64_t h0, h1, v0, v1;
};
inline PoolWindow pool_window(const PoolGeometry& g, int64_t r, int64_t c) {
  const int64_t top = r * g.stride_h - g.pad_h, left = c * g.stride_w - g.pad_w;
  return {std::max<int64_t>(top, 0), std::min<int64_t>(top + g.KH, g.H),
          std::max<int64_t>(left, 0), std::min<int64_t>(left + g.KW, g.W)};
}
template <class T> void pool2d_forward(PoolMode mode, const PoolGeometry& g, const T* x, T* y);
template <class T>
void pool2d_backward(PoolMode mode, const PoolGeometry& g, const T* x, const T* dy, T* dx);

// ---- batchnorm.cpp (x viewed as rows x C; statistics per column) ------------
template <class T>
void batchnorm_forward_train(int64_t rows, int64_t C, const T* x, const T* gamma, const T* beta,
                             double momentum, double eps, T* running_mean, T* running_var,
                             T* saved_mean, T* saved_invstd, T* y);
template <class T>
void batchnorm_forward_eval(int64_t rows, int64_t C, const T* x, const T* gamma, const T* beta,
                            const T* running_mean, const T* running_var, double eps, T* y);
template <class T>
void batchnorm_backward(int64_t rows, int64_t C, const T* x, const T* dy, const T* gamma,
                        const T* saved_mean, const T* saved_invstd, T* dx, T* dgamma, T* dbeta);

// ---- dropout.cpp ------------------------------------------------------------
template <class T>
void dropout_forward(int64_t n, const T* x, double p, uint64_t seed, T* mask, T* y);

// ---- optimizer_update.cpp ---------------------------------------------------
// velocity may be null when momentum == 0.
template <class T>
void sgd_update(int64_t n, T* w, const T* g, T* velocity, double lr, double momentum,
                double weight_decay, bool nesterov);
template <class T>
void adam_update(int64_t n, T* w, const T* g, T* m, T* v, double lr, double beta1, double beta2,
                 double eps, double weight_decay, bool decoupled, int64_t step);

}  // namespace janus::cpu
