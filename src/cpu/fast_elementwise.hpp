// Element-wise kernels of the fast CPU device (FastCpuDevice), cloned per
// vector width (vector_clones.hpp): ReLU forward / backward, bias + ReLU,
// and the per-slice column sums of the bias gradient. Each one does exactly
// the reference kernel's arithmetic on its slice (bit-identical results);
// the device splits tensors into slices over its TaskTeam.
#pragma once

#include <cstdint>

namespace janus::fast {

// y = max(z, 0) element-wise (y may alias z).
void relu_forward(int64_t n, const float* z, float* y);
void relu_forward(int64_t n, const double* z, double* y);

// z += bias (cols) on every row, then y = max(z, 0): the same two roundings
// as add_bias then relu_forward (y may alias z).
void bias_relu_forward(int64_t rows, int64_t cols, const float* bias, float* z, float* y);
void bias_relu_forward(int64_t rows, int64_t cols, const double* bias, double* z, double* y);

// dz = dy where z > 0, else 0 (dz may alias dy).
void relu_backward(int64_t n, const float* z, const float* dy, float* dz);
void relu_backward(int64_t n, const double* z, const double* dy, double* dz);

// acc[c] = sum over rows [r0, r1) of x[r][c], in double, rows in order.
void column_sums(int64_t r0, int64_t r1, int64_t cols, const float* x, double* acc);
void column_sums(int64_t r0, int64_t r1, int64_t cols, const double* x, double* acc);

}  // namespace janus::fast
