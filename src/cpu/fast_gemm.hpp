// The GEMMs of the fast CPU path (FastCpuDevice), row-major, on raw arrays:
// C = alpha op(A) op(B) + beta C with C (M x N), op(A) (M x K), op(B) (K x N).
//
// - blas_gemm: one single-threaded OpenBLAS call with leading dimensions. The
//   im2col convolutions (fast_conv.cpp) issue one per chunk of images from
//   each of their OpenMP threads.
// - parallel_gemm: the GEMM of Device::gemm (the dense layers) on packed
//   operands. C is split into one block of rows or columns per thread of a
//   TaskTeam, each block one single-threaded call: oneDNN's sgemm for F32,
//   OpenBLAS's dgemm for F64 (see fast_gemm.cpp for why and the timings).
#pragma once

#include <cstdint>

#include "cpu/task_team.hpp"

namespace janus::fast {

void blas_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
               int64_t ldc);
void blas_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
               const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
               int64_t ldc);

// Packed operands: lda = trans_a ? M : K, ldb = trans_b ? K : N, ldc = N.
// When beta is 0, C is not read (it may hold garbage, NaN included). The
// blocks depend only on the shape and team.threads(), so the result is
// bit-identical from run to run.
template <class T>
void parallel_gemm(TaskTeam& team, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                   double alpha, const T* a, const T* b, double beta, T* c);

}  // namespace janus::fast
