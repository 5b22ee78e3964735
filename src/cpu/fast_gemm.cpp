// The GEMMs of the fast CPU path (see fast_gemm.hpp).
//
// Why oneDNN's sgemm for F32
//   OpenBLAS is held to its AVX2 "Haswell" kernels on this project's AVX-512
//   machines (OPENBLAS_CORETYPE=Haswell: older OpenBLAS miscomputes there),
//   while oneDNN generates its kernels at run time for the CPU it runs on.
//   Single-threaded, on the shapes of the MLP 784-256-10 and the CIFAR model's
//   2048->10 head at batch 128 (AMD EPYC, AVX-512, best of 7 x 50 calls):
//
//     shape (M x N x K, op)         OpenBLAS   oneDNN
//     128 x 256 x 784   forward       389 us   195 us
//     784 x 256 x 128   dW (A^T)      382 us   196 us
//     128 x 784 x 256   dX (B^T)      397 us   211 us
//     128 x 10 x 256    forward         9 us     5 us
//     256 x 10 x 128    dW              9 us     5 us
//     128 x 256 x 10    dX              7 us     3 us
//     128 x 10 x 2048   forward        73 us    41 us
//     2048 x 10 x 128   dW             92 us    87 us
//     128 x 2048 x 10   dX             55 us    54 us
//
//   oneDNN is as fast or faster on every shape, so F32 always uses it. F64
//   (gradient checks, the reference-precision tests) keeps OpenBLAS's dgemm.
//
// The one allocation of a steady-state training step
//   dnnl_sgemm allocates its packing buffers on each call and frees them on
//   return (traced with an LD_PRELOAD malloc hook: posix_memalign of 570 KB
//   and 74 KB per backward GEMM of the CIFAR model's 2048->10 head). glibc
//   serves them from its heap; `janus bench` counts 14 page faults per
//   CIFAR step while that heap still grows (the first ~30 steps) and 0
//   after. oneDNN's matmul primitive with a user scratchpad was tried
//   instead: it avoids the allocation only on the forward shape (a brgemm
//   kernel); the backward shapes, with a transposed operand, go to the same
//   gemm driver and allocate alike. Everything Janus allocates itself
//   (activations, workspaces, scratchpads) is reused.
//
// Splitting over threads
//   oneDNN's own threading is OpenMP, whose passive waiting made two threads
//   no faster than one on these shapes (see task_team.hpp); split into two
//   blocks on a TaskTeam, the first three shapes above take 97-103 us. C is
//   split along the larger of M and N (the split that measured best on all
//   shapes above) into one block per team thread, in multiples of 16 rows or
//   columns; GEMMs under kTeamWork multiply-adds run as one call.
#include "cpu/fast_gemm.hpp"

#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <atomic>

#include "janus/error.hpp"

namespace janus::fast {

namespace {

// About 4 us of one core's work: below it a split costs more than it saves.
constexpr int64_t kTeamWork = int64_t{1} << 19;

CBLAS_TRANSPOSE tr(bool t) { return t ? CblasTrans : CblasNoTrans; }

// C = beta C for an empty inner dimension (BLAS would do the same; done here
// so that beta == 0 never reads C).
template <class T>
void scale_only(int64_t M, int64_t N, T beta, T* c, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) c[i * ldc + j] = beta == T(0) ? T(0) : beta * c[i * ldc + j];
}

// One single-threaded block of parallel_gemm.
dnnl_status_t block_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                         const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
                         float* c, int64_t ldc) {
  return dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, a, lda, b, ldb, beta,
                    c, ldc);
}

dnnl_status_t block_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                         double alpha, const double* a, int64_t lda, const double* b, int64_t ldb,
                         double beta, double* c, int64_t ldc) {
  blas_gemm(trans_a, trans_b, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc);
  return dnnl_success;
}

}  // namespace

void blas_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
               int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) return scale_only(M, N, beta, c, ldc);
  cblas_sgemm(CblasRowMajor, tr(trans_a), tr(trans_b), static_cast<int>(M), static_cast<int>(N),
              static_cast<int>(K), alpha, a, static_cast<int>(lda), b, static_cast<int>(ldb), beta,
              c, static_cast<int>(ldc));
}

void blas_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
               const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
               int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) return scale_only(M, N, beta, c, ldc);
  cblas_dgemm(CblasRowMajor, tr(trans_a), tr(trans_b), static_cast<int>(M), static_cast<int>(N),
              static_cast<int>(K), alpha, a, static_cast<int>(lda), b, static_cast<int>(ldb), beta,
              c, static_cast<int>(ldc));
}

template <class T>
void parallel_gemm(TaskTeam& team, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                   double alpha, const T* a, const T* b, double beta, T* c) {
  const T al = static_cast<T>(alpha), be = static_cast<T>(beta);
  if (M == 0 || N == 0) return;
  if (K == 0) return scale_only(M, N, be, c, N);
  const int64_t lda = trans_a ? M : K, ldb = trans_b ? K : N;
  const bool split_m = M >= N;
  const int64_t extent = split_m ? M : N;
  const int64_t parts = team.threads() > 1 && M * N * K >= kTeamWork && extent >= 32 ? team.threads() : 1;
  const int64_t block = ((extent + parts - 1) / parts + 15) / 16 * 16;
  // Tasks must not throw: a failure is recorded and reported after the run.
  std::atomic<int> status{dnnl_success};
  team.run((extent + block - 1) / block, [&](int64_t t) {
    const int64_t lo = t * block, len = std::min(block, extent - lo);
    const dnnl_status_t s =
        split_m ? block_gemm(trans_a, trans_b, len, N, K, al, trans_a ? a + lo : a + lo * K, lda, b,
                             ldb, be, c + lo * N, N)
                : block_gemm(trans_a, trans_b, M, len, K, al, a, lda, trans_b ? b + lo * K : b + lo,
                             ldb, be, c + lo, N);
    if (s != dnnl_success) status.store(s, std::memory_order_relaxed);
  });
  JANUS_CHECK(status.load() == dnnl_success, "cpu gemm: oneDNN sgemm failed (status ", status.load(),
              ") for M=", M, " N=", N, " K=", K, trans_a ? " A^T" : "", trans_b ? " B^T" : "");
}

template void parallel_gemm<float>(TaskTeam&, bool, bool, int64_t, int64_t, int64_t, double,
                                   const float*, const float*, double, float*);
template void parallel_gemm<double>(TaskTeam&, bool, bool, int64_t, int64_t, int64_t, double,
                                    const double*, const double*, double, double*);

}  // namespace janus::fast
