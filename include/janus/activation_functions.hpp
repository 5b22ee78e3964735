// The activation table: each activation is ONE entry here, and every backend
// (the CPU reference, the fast CPU path, the CUDA kernels and the simulator,
// which compiles the .cu files as C++) reads its maths, its name and what its
// backward needs from that entry (PyTorch's derivatives.yaml idea, without
// the code generator).
//
// Adding an activation:
//   1. append its name to JANUS_ELEMENTWISE_ACTIVATIONS below;
//   2. write its entry in namespace activation_table (name, PyTorch
//      equivalent, `reads`, forward, backward);
//   3. add a golden case to tests/golden/generate.py and its kind to the
//      lists in the golden, gradcheck and parity tests.
// Nothing else: the enum, the config names, the error messages, the device
// checks of which saved tensor the backward reads, the CPU kernels and the
// CUDA kernels all follow from the entry.
//
// An entry holds, as static members:
//   name      the config name (lower case), also used in messages;
//   pytorch   the PyTorch module it matches (golden values come from it);
//   reads     what the backward reads besides dy: the forward's input z, its
//             output y, or nothing. A layer keeps only y (its z may be
//             overwritten in place) when reads != Input.
//   forward(z, p)       y = act(z); p is the parameter (LeakyReLU's
//                       negative_slope), ignored by the others;
//   backward(x, dy, p)  dz = act'(z) * dy, where x is z or y as `reads` says.
// Both are templates on the compute type T (float on the GPU; the CPU
// reference runs forward in double, rounded once, backward in the tensor's
// type) and are __host__ __device__ under nvcc.
//
// Floating-point contraction: nvcc contracts a*b + c into one FMA, the host
// compiler does not for the CPU backend (ISO C++ mode, baseline x86-64), but
// the CUDA simulator builds the kernels contracted as nvcc does. Every product that feeds a
// sum is written mul(a, b), which is __fmul_rn / __dmul_rn on the GPU (never
// contracted), so the GPU rounds each operation as the host does and the
// result does not depend on contraction.
#pragma once

#include <math.h>

#include <cstdint>

#include "janus/host_device.hpp"

namespace janus {

// The element-wise activations, in enum order. SoftMax (over the last axis,
// not element-wise) follows them in the enum and has its own kernels.
#define JANUS_ELEMENTWISE_ACTIVATIONS(X) X(Linear) X(Sigmoid) X(TanH) X(ReLU) X(GELU) X(SiLU) X(LeakyReLU)

#define JANUS_ACTIVATION_ENUM_ENTRY(K) K,
enum class ActivationKind { JANUS_ELEMENTWISE_ACTIVATIONS(JANUS_ACTIVATION_ENUM_ENTRY) SoftMax };
#undef JANUS_ACTIVATION_ENUM_ENTRY

// One activation with its parameter, as the Device operations take it. It
// converts implicitly from ActivationKind (LeakyReLU then has PyTorch's
// default slope). negative_slope is read by LeakyReLU only; kernels round it
// to the tensor's type first, as PyTorch does.
struct ActivationFunction {
  ActivationKind kind = ActivationKind::Linear;
  double negative_slope = 0.01;  // torch.nn.LeakyReLU's default

  ActivationFunction(ActivationKind k = ActivationKind::Linear,  // NOLINT: implicit on purpose
                     double slope = 0.01)
      : kind(k), negative_slope(slope) {}
};

// What an activation's backward reads besides dy.
enum class ActivationReads { Nothing, Input, Output };

// ---- arithmetic shared by the entries ------------------------------------------------

namespace activation_math {

JANUS_HOST_DEVICE inline float exp_of(float x) { return ::expf(x); }
JANUS_HOST_DEVICE inline double exp_of(double x) { return ::exp(x); }
JANUS_HOST_DEVICE inline float tanh_of(float x) { return ::tanhf(x); }
JANUS_HOST_DEVICE inline double tanh_of(double x) { return ::tanh(x); }
JANUS_HOST_DEVICE inline float erfc_of(float x) { return ::erfcf(x); }
JANUS_HOST_DEVICE inline double erfc_of(double x) { return ::erfc(x); }

// a * b rounded on its own, never fused with a following add (see the top).
// On the host the product passes through a volatile, an opaque value the
// optimiser cannot fuse: the CUDA simulator compiles these same kernels with
// -ffp-contract=fast (as nvcc contracts), and a plain a * b there would be
// fused into the following subtraction (tanh backward's 1 - y*y).
JANUS_HOST_DEVICE inline float mul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  const volatile float product = a * b;
  return product;
#endif
}
JANUS_HOST_DEVICE inline double mul(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  const volatile double product = a * b;
  return product;
#endif
}

// 1 / (1 + e^-z) without overflow: for negative z, e^z / (1 + e^z).
template <class T>
JANUS_HOST_DEVICE inline T sigmoid(T z) {
  if (z >= T(0)) return T(1) / (T(1) + exp_of(-z));
  const T e = exp_of(z);
  return e / (T(1) + e);
}

}  // namespace activation_math

// ---- the entries ----------------------------------------------------------------------

namespace activation_table {

using activation_math::mul;

struct Linear {
  static constexpr const char* name = "linear";
  static constexpr const char* pytorch = "torch.nn.Identity()";
  static constexpr ActivationReads reads = ActivationReads::Nothing;
  template <class T> JANUS_HOST_DEVICE static T forward(T z, T) { return z; }
  template <class T> JANUS_HOST_DEVICE static T backward(T, T dy, T) { return dy; }
};

struct Sigmoid {
  static constexpr const char* name = "sigmoid";
  static constexpr const char* pytorch = "torch.nn.Sigmoid()";
  static constexpr ActivationReads reads = ActivationReads::Output;
  template <class T> JANUS_HOST_DEVICE static T forward(T z, T) { return activation_math::sigmoid(z); }
  // s' = s (1 - s)
  template <class T> JANUS_HOST_DEVICE static T backward(T y, T dy, T) { return dy * y * (T(1) - y); }
};

struct TanH {
  static constexpr const char* name = "tanh";
  static constexpr const char* pytorch = "torch.nn.Tanh()";
  static constexpr ActivationReads reads = ActivationReads::Output;
  template <class T> JANUS_HOST_DEVICE static T forward(T z, T) { return activation_math::tanh_of(z); }
  // tanh' = 1 - tanh^2
  template <class T> JANUS_HOST_DEVICE static T backward(T y, T dy, T) { return dy * (T(1) - mul(y, y)); }
};

struct ReLU {
  static constexpr const char* name = "relu";
  static constexpr const char* pytorch = "torch.nn.ReLU()";
  // Reads y as PyTorch does (threshold_backward(grad, result, 0)): y > 0
  // exactly where z > 0, so a ReLU applied in place still has its backward.
  static constexpr ActivationReads reads = ActivationReads::Output;
  template <class T> JANUS_HOST_DEVICE static T forward(T z, T) { return z > T(0) ? z : T(0); }
  // derivative 0 where z <= 0 (including at 0)
  template <class T> JANUS_HOST_DEVICE static T backward(T y, T dy, T) { return y > T(0) ? dy : T(0); }
};

struct GELU {
  static constexpr const char* name = "gelu";
  static constexpr const char* pytorch = "torch.nn.GELU()  (approximate='none', the erf form)";
  static constexpr ActivationReads reads = ActivationReads::Input;
  // gelu(z) = z Phi(z), Phi(z) = (1 + erf(z / sqrt 2)) / 2 = erfc(-z / sqrt 2) / 2.
  // The erfc form keeps full relative accuracy in the left tail, where
  // 1 + erf cancels (PyTorch's float kernels use 1 + erf).
  template <class T> JANUS_HOST_DEVICE static T forward(T z, T) {
    return T(0.5) * z * activation_math::erfc_of(-z * T(0.70710678118654752440));
  }
  // gelu'(z) = Phi(z) + z phi(z), phi(z) = exp(-z^2 / 2) / sqrt(2 pi).
  template <class T> JANUS_HOST_DEVICE static T backward(T z, T dy, T) {
    const T cdf = T(0.5) * activation_math::erfc_of(-z * T(0.70710678118654752440));
    const T pdf = activation_math::exp_of(T(-0.5) * mul(z, z)) * T(0.39894228040143267794);
    return dy * (cdf + mul(z, pdf));
  }
};

struct SiLU {
  static constexpr const char* name = "silu";
  static constexpr const char* pytorch = "torch.nn.SiLU()";
  static constexpr ActivationReads reads = ActivationReads::Input;
  // silu(z) = z sigmoid(z) (also called swish)
  template <class T> JANUS_HOST_DEVICE static T forward(T z, T) { return z * activation_math::sigmoid(z); }
  // silu'(z) = s (1 + z (1 - s)), s = sigmoid(z)
  template <class T> JANUS_HOST_DEVICE static T backward(T z, T dy, T) {
    const T s = activation_math::sigmoid(z);
    return dy * (s * (T(1) + mul(z, T(1) - s)));
  }
};

struct LeakyReLU {
  static constexpr const char* name = "leaky_relu";
  static constexpr const char* pytorch = "torch.nn.LeakyReLU(negative_slope)";
  // Reads z: with a negative slope, y's sign does not tell z's.
  static constexpr ActivationReads reads = ActivationReads::Input;
  template <class T> JANUS_HOST_DEVICE static T forward(T z, T slope) { return z > T(0) ? z : z * slope; }
  // derivative slope where z <= 0 (including at 0, as PyTorch)
  template <class T> JANUS_HOST_DEVICE static T backward(T z, T dy, T slope) {
    return z > T(0) ? dy : dy * slope;
  }
};

}  // namespace activation_table

// ---- lookups over the table -------------------------------------------------------------

// Calls f(entry{}) with the entry of an element-wise activation and returns
// true, or returns false for SoftMax (not element-wise).
template <class F>
inline bool visit_elementwise_activation(ActivationKind kind, F&& f) {
#define JANUS_ACTIVATION_CASE(K) \
  case ActivationKind::K:        \
    f(activation_table::K{});    \
    return true;
  switch (kind) {
    JANUS_ELEMENTWISE_ACTIVATIONS(JANUS_ACTIVATION_CASE)
    case ActivationKind::SoftMax: return false;
  }
#undef JANUS_ACTIVATION_CASE
  return false;
}

// Every activation kind, in enum order.
constexpr ActivationKind kAllActivations[] = {
#define JANUS_ACTIVATION_LIST_ENTRY(K) ActivationKind::K,
    JANUS_ELEMENTWISE_ACTIVATIONS(JANUS_ACTIVATION_LIST_ENTRY)
#undef JANUS_ACTIVATION_LIST_ENTRY
    ActivationKind::SoftMax};

// What the backward of `kind` reads besides dy. SoftMax's reads y:
// dz = y * (dy - sum(dy * y, last axis)).
inline ActivationReads activation_reads(ActivationKind kind) {
  ActivationReads r = ActivationReads::Output;
  visit_elementwise_activation(kind, [&](auto entry) { r = decltype(entry)::reads; });
  return r;
}

// The config name ("gelu", ..., "softmax").
inline const char* activation_name(ActivationKind kind) {
  const char* n = "softmax";
  visit_elementwise_activation(kind, [&](auto entry) { n = decltype(entry)::name; });
  return n;
}

}  // namespace janus
