// Kernels of the fast CPU path (FastCpuDevice): BLAS wrappers, the parallel
// helpers and the im2col convolutions. Raw, contiguous, row-major arrays, as
// in kernels.hpp; the device has validated every argument.
#pragma once

#include <cstddef>
#include <cstdint>

#include "janus/device.hpp"

namespace janus::fast {

// Single-threaded row-major GEMM with leading dimensions (cblas):
// C = alpha op(A) op(B) + beta C; C is (M x N).
void blas_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
               int64_t ldc);
void blas_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
               const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
               int64_t ldc);

// The same GEMM on packed operands (lda/ldb/ldc from the shapes), with C split
// into blocks of rows or columns over `threads` OpenMP threads when big enough.
template <class T>
void parallel_gemm(int threads, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                   double alpha, const T* a, const T* b, double beta, T* c);

// Convolutions. `workspace` holds at least conv_workspace_bytes(...) bytes.
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

// Pooling (max and average), NHWC, parallel over images. `workspace` holds at
// least pool_workspace_bytes(g, threads) bytes.
size_t pool_workspace_bytes(const PoolGeometry& g, int threads);
template <class T>
void pool2d_forward(PoolMode mode, const PoolGeometry& g, const T* x, T* y, int threads);
template <class T>
void pool2d_backward(PoolMode mode, const PoolGeometry& g, const T* x, const T* dy, T* dx,
                     int threads, void* workspace);

// BatchNorm training forward / backward on x viewed as rows x C (see
// fast_batchnorm.cpp). `workspace` holds at least
// batchnorm_workspace_bytes(rows, C) bytes. Deterministic: the result does
// not depend on `threads`.
size_t batchnorm_workspace_bytes(int64_t rows, int64_t C);
template <class T>
void batchnorm_forward_train(int64_t rows, int64_t C, const T* x, const T* gamma, const T* beta,
                             double momentum, double eps, T* running_mean, T* running_var,
                             T* saved_mean, T* saved_invstd, T* y, int threads, void* workspace);
template <class T>
void batchnorm_backward(int64_t rows, int64_t C, const T* x, const T* dy, const T* gamma,
                        const T* saved_mean, const T* saved_invstd, T* dx, T* dgamma, T* dbeta,
                        int threads, void* workspace);

}  // namespace janus::fast
