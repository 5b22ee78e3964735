// Batch normalisation over the rows of x (rows x C): one mean and variance per
// column (feature, or channel for NHWC images viewed as (N*H*W, C)).
#include <cmath>
#include <vector>

#include "cpu/batchnorm_eval.hpp"
#include "cpu/kernels.hpp"

namespace janus::cpu {

namespace {

// Per-column mean and biased variance, two passes (mean first, then squared
// deviations): more accurate than E[x^2] - E[x]^2, which cancels badly when
// |mean| >> std.
template <class T>
void column_moments(int64_t rows, int64_t C, const T* x, std::vector<double>& mean,
                    std::vector<double>& var) {
  mean.assign(static_cast<size_t>(C), 0.0);
  var.assign(static_cast<size_t>(C), 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < C; ++c) mean[c] += x[r * C + c];
  for (int64_t c = 0; c < C; ++c) mean[c] /= static_cast<double>(rows);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < C; ++c) {
      const double d = x[r * C + c] - mean[c];
      var[c] += d * d;
    }
  for (int64_t c = 0; c < C; ++c) var[c] /= static_cast<double>(rows);
}

}  // namespace

template <class T>
void batchnorm_forward_train(int64_t rows, int64_t C, const T* x, const T* gamma, const T* beta,
                             double momentum, double eps, T* running_mean, T* running_var,
                             T* saved_mean, T* saved_invstd, T* y) {
  std::vector<double> mean, var;
  column_moments(rows, C, x, mean, var);
  // The running variance estimates the population variance: unbiased (n-1).
  const double unbias = static_cast<double>(rows) / static_cast<double>(rows - 1);
  std::vector<double> invstd(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) {
    invstd[c] = 1.0 / std::sqrt(var[c] + eps);
    saved_mean[c] = static_cast<T>(mean[c]);
    saved_invstd[c] = static_cast<T>(invstd[c]);
    running_mean[c] = static_cast<T>((1.0 - momentum) * running_mean[c] + momentum * mean[c]);
    running_var[c] =
        static_cast<T>((1.0 - momentum) * running_var[c] + momentum * var[c] * unbias);
  }
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t e = r * C + c;
      y[e] = static_cast<T>(gamma[c] * (x[e] - mean[c]) * invstd[c] + beta[c]);
    }
}

template <class T>
void batchnorm_forward_eval(int64_t rows, int64_t C, const T* x, const T* gamma, const T* beta,
                            const T* running_mean, const T* running_var, double eps, T* y) {
  std::vector<double> scale(static_cast<size_t>(C));
  batchnorm_eval_scale(C, gamma, running_var, eps, scale.data());
  batchnorm_eval_rows(rows, C, x, scale.data(), running_mean, beta, y);
}

template <class T>
void batchnorm_backward(int64_t rows, int64_t C, const T* x, const T* dy, const T* gamma,
                        const T* saved_mean, const T* saved_invstd, T* dx, T* dgamma, T* dbeta) {
  // With xhat = (x - mean) * invstd and y = gamma * xhat + beta:
  //   dbeta  = sum_r dy
  //   dgamma = sum_r dy * xhat
  //   dx     = gamma * invstd / rows * (rows * dy - dbeta - xhat * dgamma)
  // (the last line is the gradient through mean and var, simplified).
  std::vector<double> sum_dy(static_cast<size_t>(C), 0.0), sum_dy_xhat(static_cast<size_t>(C), 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t e = r * C + c;
      const double xhat = (x[e] - static_cast<double>(saved_mean[c])) * saved_invstd[c];
      sum_dy[c] += dy[e];
      sum_dy_xhat[c] += dy[e] * xhat;
    }
  const double n = static_cast<double>(rows);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t e = r * C + c;
      const double xhat = (x[e] - static_cast<double>(saved_mean[c])) * saved_invstd[c];
      dx[e] = static_cast<T>(static_cast<double>(gamma[c]) * saved_invstd[c] / n *
                             (n * dy[e] - sum_dy[c] - xhat * sum_dy_xhat[c]));
    }
  for (int64_t c = 0; c < C; ++c) {
    dgamma[c] = static_cast<T>(sum_dy_xhat[c]);
    dbeta[c] = static_cast<T>(sum_dy[c]);
  }
}

#define JANUS_INSTANTIATE(T)                                                                  \
  template void batchnorm_forward_train<T>(int64_t, int64_t, const T*, const T*, const T*,   \
                                           double, double, T*, T*, T*, T*, T*);              \
  template void batchnorm_forward_eval<T>(int64_t, int64_t, const T*, const T*, const T*,    \
                                          const T*, const T*, double, T*);                   \
  template void batchnorm_backward<T>(int64_t, int64_t, const T*, const T*, const T*,        \
                                      const T*, const T*, T*, T*, T*);
JANUS_INSTANTIATE(float)
JANUS_INSTANTIATE(double)
#undef JANUS_INSTANTIATE

}  // namespace janus::cpu
