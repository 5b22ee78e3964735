// General matrix multiply, row-major: C = alpha * op(A) op(B) + beta * C.
//
// Loop order i-k-j: for each row i of C, add a(i,k) times row k of op(B) into
// a row of double accumulators. The innermost loop then runs along contiguous
// memory in both B and the accumulator row, which is what makes a naive GEMM
// reasonably cache friendly. When B is transposed its rows are not contiguous
// in that sense, so it is first copied into a (K x N) buffer.
#include <algorithm>
#include <vector>

#include "cpu/kernels.hpp"

namespace janus::cpu {

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const T* a,
          const T* b, double beta, T* c) {
  // op(B) as a contiguous (K x N) array.
  std::vector<T> b_packed;
  const T* bk = b;
  if (trans_b) {  // B is (N x K): b_packed[k][j] = B[j][k]
    b_packed.resize(static_cast<size_t>(K * N));
    for (int64_t j = 0; j < N; ++j)
      for (int64_t k = 0; k < K; ++k) b_packed[k * N + j] = b[j * K + k];
    bk = b_packed.data();
  }

  std::vector<double> acc(static_cast<size_t>(N));
  for (int64_t i = 0; i < M; ++i) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t k = 0; k < K; ++k) {
      // op(A)[i][k]: A is (M x K), or (K x M) when transposed.
      const double aik = trans_a ? a[k * M + i] : a[i * K + k];
      const T* brow = bk + k * N;
      for (int64_t j = 0; j < N; ++j) acc[j] += aik * brow[j];
    }
    T* crow = c + i * N;
    for (int64_t j = 0; j < N; ++j)
      crow[j] = static_cast<T>(beta == 0.0 ? alpha * acc[j] : alpha * acc[j] + beta * crow[j]);
  }
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, double, const float*,
                          const float*, double, float*);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*,
                           const double*, double, double*);

}  // namespace janus::cpu
