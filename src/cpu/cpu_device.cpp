// CpuDevice: host memory, argument checks and dtype dispatch. The arithmetic
// lives in the kernel files (src/cpu/*.cpp, declared in kernels.hpp).
#include "cpu/cpu_device.hpp"

#include <cmath>
#include <cstring>
#include <new>

#include "cpu/kernels.hpp"
#include "janus/error.hpp"

namespace janus {

namespace {

// 64 bytes: a cache line, and enough for any SIMD load the compiler may emit.
constexpr std::align_val_t kAlignment{64};

// Calls fn with a value of the C++ type of `dtype` (float or double), so that
// fn can name it as decltype(tag) and instantiate the right kernel. BF16 never
// gets here: check_args refuses it first.
template <class Fn>
auto dispatch(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::F32: break;
    case DType::F64: return fn(double{});
    case DType::BF16: throw Error("cpu: bfloat16 reached a kernel dispatch (check_args refuses it)");
  }
  return fn(float{});
}

// A tensor seen as a (rows x cols) matrix over its last axis. Shape::rows()
// divides by the last extent; an empty last axis gives 0 rows here instead.
struct Matrix {
  int64_t rows, cols;
};
Matrix as_matrix(const Tensor& t) {
  const int64_t cols = t.shape().last();
  return {cols == 0 ? 0 : t.numel() / cols, cols};
}

std::string prefix(const char* op) { return std::string("cpu ") + op + ": "; }

void check_same_numel(const char* op, const char* a_name, const Tensor& a, const char* b_name,
                      const Tensor& b) {
  JANUS_CHECK(a.numel() == b.numel(), prefix(op), a_name, " ", a.shape().str(), " and ", b_name,
              " ", b.shape().str(), " have different numbers of elements");
}

void check_shape(const char* op, const char* name, const Tensor& t, const Shape& expected) {
  JANUS_CHECK(t.shape() == expected, prefix(op), name, " has shape ", t.shape().str(), ", expected ",
              expected.str());
}

void check_numel(const char* op, const char* name, const Tensor& t, int64_t expected) {
  JANUS_CHECK(t.numel() == expected, prefix(op), name, " ", t.shape().str(), " has ", t.numel(),
              " elements, expected ", expected);
}

// The batch size m of a loss: shape[0] of the prediction, which must be > 0
// because the loss is a mean over it.
int64_t batch_size(const char* op, const Tensor& yhat) {
  JANUS_CHECK(yhat.rank() >= 1 && yhat.dim(0) > 0, prefix(op), "prediction ", yhat.shape().str(),
              " has no batch axis or an empty batch");
  return yhat.dim(0);
}

// The same two-argument checks for all (yhat, y) losses.
int64_t check_loss_pair(const char* op, const Tensor& yhat, const Tensor& y) {
  check_same_numel(op, "yhat", yhat, "y", y);
  JANUS_CHECK(yhat.shape().last() == y.shape().last(), prefix(op), "yhat ", yhat.shape().str(),
              " and y ", y.shape().str(), " differ in their last axis");
  return batch_size(op, yhat);
}

std::string pool_str(const PoolGeometry& g) {
  return detail::concat("N=", g.N, " H=", g.H, " W=", g.W, " C=", g.C, " KH=", g.KH, " KW=", g.KW,
                        " stride=", g.stride_h, "x", g.stride_w, " pad=", g.pad_h, "x", g.pad_w,
                        " OH=", g.OH, " OW=", g.OW);
}

void check_pool_geometry(const char* op, const PoolGeometry& g) {
  JANUS_CHECK(g.N > 0 && g.H > 0 && g.W > 0 && g.C > 0 && g.KH > 0 && g.KW > 0 && g.stride_h > 0 &&
                  g.stride_w > 0 && g.pad_h >= 0 && g.pad_w >= 0,
              prefix(op), "invalid geometry ", pool_str(g));
  // pad < kernel guarantees every window contains at least one real position.
  JANUS_CHECK(g.pad_h < g.KH && g.pad_w < g.KW, prefix(op),
              "padding must be smaller than the window: ", pool_str(g));
  JANUS_CHECK(g.H + 2 * g.pad_h >= g.KH && g.W + 2 * g.pad_w >= g.KW, prefix(op),
              "window larger than the padded input: ", pool_str(g));
  const int oh = (g.H + 2 * g.pad_h - g.KH) / g.stride_h + 1;
  const int ow = (g.W + 2 * g.pad_w - g.KW) / g.stride_w + 1;
  JANUS_CHECK(g.OH == oh && g.OW == ow, prefix(op), "output size should be ", oh, "x", ow, ": ",
              pool_str(g));
}

}  // namespace

DType CpuDevice::check_args(const char* op, std::initializer_list<Arg> args) const {
  const Arg* first = nullptr;
  for (const Arg& a : args) {
    JANUS_CHECK(a.tensor->defined(), prefix(op), a.name, " is an undefined tensor");
    JANUS_CHECK(&a.tensor->device() == this, prefix(op), a.name, " ", a.tensor->shape().str(),
                " lives on ", a.tensor->device().name(), ", not on this cpu device");
    // bfloat16 is a storage type on the CPU: converted and copied, never computed on.
    JANUS_CHECK(a.tensor->dtype() != DType::BF16, op, " on ", name(), ": ", a.name, " ", a.tensor->shape().str(),
                " is bfloat16, which the CPU devices do not compute on (float32 and float64 only; convert it with "
                "Tensor::to(DType::F32) or Device::convert)");
    if (!first) {
      first = &a;
      continue;
    }
    JANUS_CHECK(a.tensor->dtype() == first->tensor->dtype(), prefix(op), "dtype mismatch: ",
                first->name, " is ", dtype_name(first->tensor->dtype()), " but ", a.name, " is ",
                dtype_name(a.tensor->dtype()));
  }
  return first ? first->tensor->dtype() : DType::F32;
}

// ---- memory -----------------------------------------------------------------

void* CpuDevice::allocate(size_t bytes) { return ::operator new(bytes, kAlignment); }

void CpuDevice::deallocate(void* ptr, size_t /*bytes*/) { ::operator delete(ptr, kAlignment); }

// memcpy with a null pointer is undefined even for 0 bytes, hence the guards.
void CpuDevice::copy_to_device(void* dst, const void* host_src, size_t bytes) {
  if (bytes) std::memcpy(dst, host_src, bytes);
}
void CpuDevice::copy_to_host(void* host_dst, const void* src, size_t bytes) {
  if (bytes) std::memcpy(host_dst, src, bytes);
}
void CpuDevice::copy_on_device(void* dst, const void* src, size_t bytes) {
  if (bytes) std::memmove(dst, src, bytes);  // memmove: overlapping views are allowed
}

// ---- elementwise and BLAS-like ----------------------------------------------

void CpuDevice::fill(Tensor& x, double value) {
  const DType dt = check_args("fill", {{"x", &x}});
  if (accel_fill(dt, x, value)) return;
  dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    cpu::fill<T>(x.numel(), value, x.data<T>());
  });
}

void CpuDevice::axpby(double alpha, const Tensor& x, double beta, Tensor& y) {
  const DType dt = check_args("axpby", {{"x", &x}, {"y", &y}});
  check_same_numel("axpby", "x", x, "y", y);
  if (accel_axpby(dt, alpha, x, beta, y)) return;
  dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    cpu::axpby<T>(x.numel(), alpha, x.data<T>(), beta, y.data<T>());
  });
}

void CpuDevice::multiply(const Tensor& a, const Tensor& b, Tensor& out) {
  const DType dt = check_args("multiply", {{"a", &a}, {"b", &b}, {"out", &out}});
  check_same_numel("multiply", "a", a, "b", b);
  check_same_numel("multiply", "a", a, "out", out);
  if (accel_multiply(dt, a, b, out)) return;
  dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    cpu::multiply<T>(a.numel(), a.data<T>(), b.data<T>(), out.data<T>());
  });
}

void CpuDevice::gemm(bool trans_a, bool trans_b, double alpha, const Tensor& a, const Tensor& b,
                     double beta, Tensor& c) {
  const DType dt = check_args("gemm", {{"a", &a}, {"b", &b}, {"c", &c}});
  const Matrix am = as_matrix(a), bm = as_matrix(b), cm = as_matrix(c);
  const int64_t M = trans_a ? am.cols : am.rows, K = trans_a ? am.rows : am.cols;
  const int64_t Kb = trans_b ? bm.cols : bm.rows, N = trans_b ? bm.rows : bm.cols;
  JANUS_CHECK(K == Kb && cm.rows == M && cm.cols == N, prefix("gemm"), "op(A) is (", M, ", ", K,
              ") from a ", a.shape().str(), trans_a ? " transposed" : "", ", op(B) is (", Kb, ", ", N,
              ") from b ", b.shape().str(), trans_b ? " transposed" : "", ", C is (", cm.rows, ", ",
              cm.cols, ") from c ", c.shape().str(), ": expected op(A) (M, K), op(B) (K, N), C (M, N)");
  if (accel_gemm(dt, trans_a, trans_b, M, N, K, alpha, a, b, beta, c)) return;
  dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    cpu::gemm<T>(trans_a, trans_b, M, N, K, alpha, a.data<T>(), b.data<T>(), beta, c.data<T>());
  });
}

void CpuDevice::add_bias(Tensor& y, const Tensor& bias) {
  const DType dt = check_args("add_bias", {{"y", &y}, {"bias", &bias}});
  const Matrix ym = as_matrix(y);
  check_numel("add_bias", "bias", bias, ym.cols);
  if (accel_add_bias(dt, ym.rows, ym.cols, y, bias)) return;
  dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    cpu::add_bias<T>(ym.rows, ym.cols, bias.data<T>(), y.data<T>());
  });
}

void CpuDevice::sum_rows(const Tensor& x, double beta, Tensor& out) {
  const DType dt = check_args("sum_rows", {{"x", &x}, {"out", &out}});
  const Matrix xm = as_matrix(x);
  check_numel("sum_rows", "out", out, xm.cols);
  if (accel_sum_rows(dt, xm.rows, xm.cols, x, beta, out)) return;
  dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    cpu::sum_rows<T>(xm.rows, xm.cols, x.data<T>(), beta, out.data<T>());
  });
}

double CpuDevice::sum(const Tensor& x) {
  const DType dt = check_args("sum", {{"x", &x}});
  return dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    return cpu::sum<T>(x.numel(), x.data<T>());
  });
}

// ---- activations -------------------------------------------------------------

void CpuDevice::activation_forward(const ActivationFunction& act, const Tensor& z, Tensor& y) {
  const DType dt = check_args("activation_forward", {{"z", &z}, {"y", &y}});
  check_same_numel("activation_forward", "z", z, "y", y);
  JANUS_CHECK(act.kind != ActivationKind::SoftMax || z.shape().last() == y.shape().last(),
              prefix("activation_forward"), "softmax: z ", z.shape().str(), " and y ",
              y.shape().str(), " differ in their last axis");
  const Matrix zm = as_matrix(z);
  if (accel_activation_forward(dt, act, zm.rows, zm.cols, z, y)) return;
  dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    cpu::activation_forward<T>(act, zm.rows, zm.cols, z.data<T>(), y.data<T>());
  });
}

void CpuDevice::bias_activation_forward(const ActivationFunction& act, Tensor& z, const Tensor& bias,
                                        Tensor& y) {
  const char* op = "bias_activation_forward";
  const DType dt = check_args(op, {{"z", &z}, {"bias", &bias}, {"y", &y}});
  const Matrix zm = as_matrix(z);
  check_numel(op, "bias", bias, zm.cols);
  check_same_numel(op, "z", z, "y", y);
  JANUS_CHECK(act.kind != ActivationKind::SoftMax || z.shape().last() == y.shape().last(), prefix(op),
              "softmax: z ", z.shape().str(), " and y ", y.shape().str(),
              " differ in their last axis");
  if (accel_bias_activation_forward(dt, act, zm.rows, zm.cols, z, bias, y)) return;
  dispatch(dt, [&](auto tag) {  // the unfused definition
    using T = decltype(tag);
    cpu::add_bias<T>(zm.rows, zm.cols, bias.data<T>(), z.data<T>());
    cpu::activation_forward<T>(act, zm.rows, zm.cols, z.data<T>(), y.data<T>());
  });
}

void CpuDevice::activation_backward(const ActivationFunction& act, const Tensor& z, const Tensor& y,
                                    const Tensor& dy, Tensor& dz) {
  // Only the tensor the derivative reads (activation_functions.hpp) must be defined.
  const ActivationReads reads = activation_reads(act.kind);
  const char* op = "activation_backward";
  const Tensor* saved = reads == ActivationReads::Input ? &z : reads == ActivationReads::Output ? &y : nullptr;
  const char* saved_name = reads == ActivationReads::Input ? "z" : "y";
  const DType dt = saved ? check_args(op, {{saved_name, saved}, {"dy", &dy}, {"dz", &dz}})
                         : check_args(op, {{"dy", &dy}, {"dz", &dz}});
  check_same_numel(op, "dy", dy, "dz", dz);
  if (saved) check_same_numel(op, saved_name, *saved, "dy", dy);
  JANUS_CHECK(act.kind != ActivationKind::SoftMax || y.shape().last() == dy.shape().last(), prefix(op),
              "softmax: y ", y.shape().str(), " and dy ", dy.shape().str(),
              " differ in their last axis");
  const Matrix m = as_matrix(dy);
  if (accel_activation_backward(dt, act, m.rows, m.cols, saved, dy, dz)) return;
  dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    cpu::activation_backward<T>(act, m.rows, m.cols, saved ? saved->data<T>() : nullptr,
                                dy.data<T>(), dz.data<T>());
  });
}

// ---- losses ------------------------------------------------------------------

double CpuDevice::cross_entropy_forward(const Tensor& yhat, const Tensor& y) {
  const DType dt = check_args("cross_entropy_forward", {{"yhat", &yhat}, {"y", &y}});
  const int64_t m = check_loss_pair("cross_entropy_forward", yhat, y);
  return dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    return cpu::cross_entropy_forward<T>(m, yhat.numel(), yhat.data<T>(), y.data<T>());
  });
}

void CpuDevice::cross_entropy_backward(const Tensor& yhat, const Tensor& y, Tensor& dyhat) {
  const char* op = "cross_entropy_backward";
  const DType dt = check_args(op, {{"yhat", &yhat}, {"y", &y}, {"dyhat", &dyhat}});
  const int64_t m = check_loss_pair(op, yhat, y);
  check_same_numel(op, "yhat", yhat, "dyhat", dyhat);
  dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    cpu::cross_entropy_backward<T>(m, yhat.numel(), yhat.data<T>(), y.data<T>(), dyhat.data<T>());
  });
}

double CpuDevice::l2_forward(const Tensor& yhat, const Tensor& y) {
  const DType dt = check_args("l2_forward", {{"yhat", &yhat}, {"y", &y}});
  const int64_t m = check_loss_pair("l2_forward", yhat, y);
  return dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    return cpu::l2_forward<T>(m, yhat.numel(), yhat.data<T>(), y.data<T>());
  });
}

void CpuDevice::l2_backward(const Tensor& yhat, const Tensor& y, Tensor& dyhat) {
  const char* op = "l2_backward";
  const DType dt = check_args(op, {{"yhat", &yhat}, {"y", &y}, {"dyhat", &dyhat}});
  const int64_t m = check_loss_pair(op, yhat, y);
  check_same_numel(op, "yhat", yhat, "dyhat", dyhat);
  dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    cpu::l2_backward<T>(m, yhat.numel(), yhat.data<T>(), y.data<T>(), dyhat.data<T>());
  });
}

double CpuDevice::softmax_cross_entropy(const Tensor& z, const Tensor& y, Tensor* dz) {
  const char* op = "softmax_cross_entropy";
  const DType dt = dz ? check_args(op, {{"z", &z}, {"y", &y}, {"dz", dz}})
                      : check_args(op, {{"z", &z}, {"y", &y}});
  const int64_t m = check_loss_pair(op, z, y);
  if (dz) check_same_numel(op, "z", z, "dz", *dz);
  const Matrix zm = as_matrix(z);
  return dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    return cpu::softmax_cross_entropy<T>(m, zm.rows, zm.cols, z.data<T>(), y.data<T>(),
                                         dz ? dz->data<T>() : nullptr);
  });
}

int64_t CpuDevice::count_correct(const Tensor& yhat, const Tensor& y) {
  const DType dt = check_args("count_correct", {{"yhat", &yhat}, {"y", &y}});
  check_same_numel("count_correct", "yhat", yhat, "y", y);
  JANUS_CHECK(yhat.shape().last() == y.shape().last(), prefix("count_correct"), "yhat ",
              yhat.shape().str(), " and y ", y.shape().str(), " differ in their last axis");
  const Matrix m = as_matrix(yhat);
  return dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    return cpu::count_correct<T>(m.rows, m.cols, yhat.data<T>(), y.data<T>());
  });
}

// ---- losses and metrics left in (host) memory: no wait to avoid on the CPU, so
// each is its host-returning twin, stored.

void CpuDevice::softmax_cross_entropy_into(const Tensor& z, const Tensor& y, Tensor* dz, Tensor& loss) {
  check_f64_output("softmax_cross_entropy_into", "loss", loss, 1);
  loss.f64()[0] = softmax_cross_entropy(z, y, dz);
}

void CpuDevice::l2_forward_into(const Tensor& yhat, const Tensor& y, Tensor& loss) {
  check_f64_output("l2_forward_into", "loss", loss, 1);
  loss.f64()[0] = l2_forward(yhat, y);
}

void CpuDevice::count_correct_into(const Tensor& yhat, const Tensor& y, Tensor& totals) {
  check_f64_output("count_correct_into", "totals", totals, StepTotal::Count);
  totals.f64()[StepTotal::Correct] += static_cast<double>(count_correct(yhat, y));
}

void CpuDevice::add_loss_into(const Tensor& loss, double weight, double tag, Tensor& totals) {
  check_f64_output("add_loss_into", "loss", loss, 1);
  check_f64_output("add_loss_into", "totals", totals, StepTotal::Count);
  double* t = totals.f64();
  const double j = loss.f64()[0];
  const double weighted = j * weight;  // rounded, then added (the build targets no FMA on the host)
  t[StepTotal::LossSum] += weighted;
  if (!std::isfinite(j) && t[StepTotal::FirstNonfinite] < 0) {
    t[StepTotal::FirstNonfinite] = tag;
    t[StepTotal::FirstNonfiniteLoss] = j;
  }
}

// ---- convolution ---------------------------------------------------------------

DType CpuDevice::check_conv2d_forward(const char* op, const ConvGeometry& g, const Tensor& x,
                                      const Tensor& w, const Tensor& bias, const Tensor& y) const {
  const DType dt = bias.defined() ? check_args(op, {{"x", &x}, {"w", &w}, {"bias", &bias}, {"y", &y}})
                                  : check_args(op, {{"x", &x}, {"w", &w}, {"y", &y}});
  check_conv_geometry(std::string("cpu ") + op, g);  // the contract every backend shares
  check_shape(op, "x", x, {g.N, g.H, g.W, g.C});
  check_shape(op, "w", w, {g.KH, g.KW, g.group_channels(), g.F});
  check_shape(op, "y", y, {g.N, g.OH, g.OW, g.F});
  if (bias.defined()) check_numel(op, "bias", bias, g.F);
  return dt;
}

std::string CpuDevice::conv2d_kernel(const ConvGeometry& g, DType dt) {
  std::string k = accel_conv2d_kernel(dt, g);
  return k.empty() ? "reference loops" : k;
}

void CpuDevice::conv2d_forward(const ConvGeometry& g, const Tensor& x, const Tensor& w,
                               const Tensor& bias, Tensor& y) {
  const DType dt = check_conv2d_forward("conv2d_forward", g, x, w, bias, y);
  if (accel_conv2d_forward(dt, g, x, w, bias.defined() ? &bias : nullptr, y)) return;
  dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    cpu::conv2d_forward<T>(g, x.data<T>(), w.data<T>(), bias.defined() ? bias.data<T>() : nullptr,
                           y.data<T>());
  });
}

void CpuDevice::conv2d_activation_forward(const ActivationFunction& act, const ConvGeometry& g,
                                          const Tensor& x, const Tensor& w, const Tensor& bias,
                                          Tensor& y) {
  const DType dt = check_conv2d_forward("conv2d_activation_forward", g, x, w, bias, y);
  if (accel_conv2d_activation_forward(dt, act, g, x, w, bias.defined() ? &bias : nullptr, y))
    return;
  Device::conv2d_activation_forward(act, g, x, w, bias, y);  // the unfused definition
}

void CpuDevice::conv2d_backward_data(const ConvGeometry& g, const Tensor& dy, const Tensor& w,
                                     Tensor& dx) {
  const char* op = "conv2d_backward_data";
  const DType dt = check_args(op, {{"dy", &dy}, {"w", &w}, {"dx", &dx}});
  check_conv_geometry(std::string("cpu ") + op, g);  // the contract every backend shares
  check_shape(op, "dy", dy, {g.N, g.OH, g.OW, g.F});
  check_shape(op, "w", w, {g.KH, g.KW, g.group_channels(), g.F});
  check_shape(op, "dx", dx, {g.N, g.H, g.W, g.C});
  if (accel_conv2d_backward_data(dt, g, dy, w, dx)) return;
  dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    cpu::conv2d_backward_data<T>(g, dy.data<T>(), w.data<T>(), dx.data<T>());
  });
}

void CpuDevice::conv2d_backward_filter(const ConvGeometry& g, const Tensor& x, const Tensor& dy,
                                       Tensor& dw) {
  const char* op = "conv2d_backward_filter";
  const DType dt = check_args(op, {{"x", &x}, {"dy", &dy}, {"dw", &dw}});
  check_conv_geometry(std::string("cpu ") + op, g);  // the contract every backend shares
  check_shape(op, "x", x, {g.N, g.H, g.W, g.C});
  check_shape(op, "dy", dy, {g.N, g.OH, g.OW, g.F});
  check_shape(op, "dw", dw, {g.KH, g.KW, g.group_channels(), g.F});
  if (accel_conv2d_backward_filter(dt, g, x, dy, dw)) return;
  dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    cpu::conv2d_backward_filter<T>(g, x.data<T>(), dy.data<T>(), dw.data<T>());
  });
}

// ---- pooling -------------------------------------------------------------------

void CpuDevice::pool2d_forward(PoolMode mode, const PoolGeometry& g, const Tensor& x, Tensor& y) {
  const char* op = "pool2d_forward";
  const DType dt = check_args(op, {{"x", &x}, {"y", &y}});
  check_pool_geometry(op, g);
  check_shape(op, "x", x, {g.N, g.H, g.W, g.C});
  check_shape(op, "y", y, {g.N, g.OH, g.OW, g.C});
  if (accel_pool2d_forward(dt, mode, g, x, y)) return;
  dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    cpu::pool2d_forward<T>(mode, g, x.data<T>(), y.data<T>());
  });
}

void CpuDevice::pool2d_backward(PoolMode mode, const PoolGeometry& g, const Tensor& x,
                                const Tensor& dy, Tensor& dx) {
  const char* op = "pool2d_backward";
  const DType dt = check_args(op, {{"x", &x}, {"dy", &dy}, {"dx", &dx}});
  check_pool_geometry(op, g);
  check_shape(op, "x", x, {g.N, g.H, g.W, g.C});
  check_shape(op, "dy", dy, {g.N, g.OH, g.OW, g.C});
  check_shape(op, "dx", dx, {g.N, g.H, g.W, g.C});
  if (accel_pool2d_backward(dt, mode, g, x, dy, dx)) return;
  dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    cpu::pool2d_backward<T>(mode, g, x.data<T>(), dy.data<T>(), dx.data<T>());
  });
}

// ---- batch normalisation ---------------------------------------------------------

DType CpuDevice::check_batchnorm_forward_train(const char* op, const Tensor& x, const Tensor& gamma,
                                               const Tensor& beta, const Tensor& running_mean,
                                               const Tensor& running_var, const Tensor& saved_mean,
                                               const Tensor& saved_invstd, const Tensor& y) const {
  const DType dt = check_args(op, {{"x", &x}, {"gamma", &gamma}, {"beta", &beta},
                                   {"running_mean", &running_mean}, {"running_var", &running_var},
                                   {"saved_mean", &saved_mean}, {"saved_invstd", &saved_invstd},
                                   {"y", &y}});
  const Matrix xm = as_matrix(x);
  // The unbiased running variance divides by rows - 1.
  JANUS_CHECK(xm.rows >= 2, prefix(op), "x ", x.shape().str(),
              " has fewer than 2 rows per channel; batch statistics need at least 2");
  for (const Arg& a : {Arg{"gamma", &gamma}, Arg{"beta", &beta}, Arg{"running_mean", &running_mean},
                       Arg{"running_var", &running_var}, Arg{"saved_mean", &saved_mean},
                       Arg{"saved_invstd", &saved_invstd}})
    check_numel(op, a.name, *a.tensor, xm.cols);
  check_same_numel(op, "x", x, "y", y);
  return dt;
}

void CpuDevice::batchnorm_forward_train(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                        double momentum, double eps, Tensor& running_mean,
                                        Tensor& running_var, Tensor& saved_mean,
                                        Tensor& saved_invstd, Tensor& y) {
  const DType dt = check_batchnorm_forward_train("batchnorm_forward_train", x, gamma, beta, running_mean,
                                                 running_var, saved_mean, saved_invstd, y);
  const Matrix xm = as_matrix(x);
  if (accel_batchnorm_forward_train(dt, xm.rows, xm.cols, x, gamma, beta, momentum, eps,
                                    running_mean, running_var, saved_mean, saved_invstd, y))
    return;
  dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    cpu::batchnorm_forward_train<T>(xm.rows, xm.cols, x.data<T>(), gamma.data<T>(), beta.data<T>(),
                                    momentum, eps, running_mean.data<T>(), running_var.data<T>(),
                                    saved_mean.data<T>(), saved_invstd.data<T>(), y.data<T>());
  });
}

DType CpuDevice::check_batchnorm_forward_eval(const char* op, const Tensor& x, const Tensor& gamma,
                                              const Tensor& beta, const Tensor& running_mean,
                                              const Tensor& running_var, const Tensor& y) const {
  const DType dt = check_args(op, {{"x", &x}, {"gamma", &gamma}, {"beta", &beta},
                                   {"running_mean", &running_mean}, {"running_var", &running_var},
                                   {"y", &y}});
  const Matrix xm = as_matrix(x);
  for (const Arg& a : {Arg{"gamma", &gamma}, Arg{"beta", &beta}, Arg{"running_mean", &running_mean},
                       Arg{"running_var", &running_var}})
    check_numel(op, a.name, *a.tensor, xm.cols);
  check_same_numel(op, "x", x, "y", y);
  return dt;
}

void CpuDevice::batchnorm_forward_eval(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                       const Tensor& running_mean, const Tensor& running_var,
                                       double eps, Tensor& y) {
  const DType dt = check_batchnorm_forward_eval("batchnorm_forward_eval", x, gamma, beta, running_mean,
                                                running_var, y);
  const Matrix xm = as_matrix(x);
  if (accel_batchnorm_forward_eval(dt, xm.rows, xm.cols, x, gamma, beta, running_mean,
                                   running_var, eps, y))
    return;
  dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    cpu::batchnorm_forward_eval<T>(xm.rows, xm.cols, x.data<T>(), gamma.data<T>(), beta.data<T>(),
                                   running_mean.data<T>(), running_var.data<T>(), eps, y.data<T>());
  });
}

DType CpuDevice::check_batchnorm_backward(const char* op, const Tensor& x, const Tensor& dy,
                                          const Tensor& gamma, const Tensor& saved_mean,
                                          const Tensor& saved_invstd, const Tensor& dx,
                                          const Tensor& dgamma, const Tensor& dbeta) const {
  const DType dt = check_args(op, {{"x", &x}, {"dy", &dy}, {"gamma", &gamma},
                                   {"saved_mean", &saved_mean}, {"saved_invstd", &saved_invstd},
                                   {"dx", &dx}, {"dgamma", &dgamma}, {"dbeta", &dbeta}});
  const Matrix xm = as_matrix(x);
  check_same_numel(op, "x", x, "dy", dy);
  check_same_numel(op, "x", x, "dx", dx);
  for (const Arg& a : {Arg{"gamma", &gamma}, Arg{"saved_mean", &saved_mean},
                       Arg{"saved_invstd", &saved_invstd}, Arg{"dgamma", &dgamma},
                       Arg{"dbeta", &dbeta}})
    check_numel(op, a.name, *a.tensor, xm.cols);
  return dt;
}

void CpuDevice::batchnorm_backward(const Tensor& x, const Tensor& dy, const Tensor& gamma,
                                   const Tensor& saved_mean, const Tensor& saved_invstd,
                                   Tensor& dx, Tensor& dgamma, Tensor& dbeta) {
  const DType dt = check_batchnorm_backward("batchnorm_backward", x, dy, gamma, saved_mean, saved_invstd, dx,
                                            dgamma, dbeta);
  const Matrix xm = as_matrix(x);
  if (accel_batchnorm_backward(dt, xm.rows, xm.cols, x, dy, gamma, saved_mean, saved_invstd, dx,
                               dgamma, dbeta))
    return;
  dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    cpu::batchnorm_backward<T>(xm.rows, xm.cols, x.data<T>(), dy.data<T>(), gamma.data<T>(),
                               saved_mean.data<T>(), saved_invstd.data<T>(), dx.data<T>(),
                               dgamma.data<T>(), dbeta.data<T>());
  });
}

// ---- batch normalisation + ReLU (fused where the backend can) ----------------------
// The argument checks of the plain operations, then the backend's fused
// kernel if it has one, else the unfused sequence (Device's defaults).

void CpuDevice::batchnorm_relu_forward_train(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                             double momentum, double eps, Tensor& running_mean,
                                             Tensor& running_var, Tensor& saved_mean,
                                             Tensor& saved_invstd, Tensor& y) {
  const DType dt = check_batchnorm_forward_train("batchnorm_relu_forward_train", x, gamma, beta,
                                                 running_mean, running_var, saved_mean, saved_invstd, y);
  const Matrix xm = as_matrix(x);
  if (accel_batchnorm_relu_forward_train(dt, xm.rows, xm.cols, x, gamma, beta, momentum, eps,
                                         running_mean, running_var, saved_mean, saved_invstd, y))
    return;
  Device::batchnorm_relu_forward_train(x, gamma, beta, momentum, eps, running_mean, running_var,
                                       saved_mean, saved_invstd, y);
}

void CpuDevice::batchnorm_relu_forward_eval(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                            const Tensor& running_mean, const Tensor& running_var,
                                            double eps, Tensor& y) {
  const DType dt = check_batchnorm_forward_eval("batchnorm_relu_forward_eval", x, gamma, beta,
                                                running_mean, running_var, y);
  const Matrix xm = as_matrix(x);
  if (accel_batchnorm_relu_forward_eval(dt, xm.rows, xm.cols, x, gamma, beta, running_mean,
                                        running_var, eps, y))
    return;
  Device::batchnorm_relu_forward_eval(x, gamma, beta, running_mean, running_var, eps, y);
}

void CpuDevice::batchnorm_relu_backward(const Tensor& x, const Tensor& y, const Tensor& dy,
                                        const Tensor& gamma, const Tensor& saved_mean,
                                        const Tensor& saved_invstd, Tensor& dx, Tensor& dgamma,
                                        Tensor& dbeta) {
  const char* op = "batchnorm_relu_backward";
  const DType dt = check_batchnorm_backward(op, x, dy, gamma, saved_mean, saved_invstd, dx, dgamma, dbeta);
  check_args(op, {{"x", &x}, {"y", &y}});
  check_same_numel(op, "x", x, "y", y);
  const Matrix xm = as_matrix(x);
  if (accel_batchnorm_relu_backward(dt, xm.rows, xm.cols, x, y, dy, gamma, saved_mean, saved_invstd,
                                    dx, dgamma, dbeta))
    return;
  Device::batchnorm_relu_backward(x, y, dy, gamma, saved_mean, saved_invstd, dx, dgamma, dbeta);
}

// ---- dropout and optimizers --------------------------------------------------------

void CpuDevice::dropout_forward(const Tensor& x, double p, uint64_t seed, Tensor& mask,
                                Tensor& y) {
  const char* op = "dropout_forward";
  const DType dt = check_args(op, {{"x", &x}, {"mask", &mask}, {"y", &y}});
  JANUS_CHECK(p >= 0.0 && p < 1.0, prefix(op), "drop probability p = ", p, " is not in [0, 1)");
  check_same_numel(op, "x", x, "mask", mask);
  check_same_numel(op, "x", x, "y", y);
  dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    cpu::dropout_forward<T>(x.numel(), x.data<T>(), p, seed, mask.data<T>(), y.data<T>());
  });
}

void CpuDevice::sgd_update(Tensor& w, const Tensor& g, Tensor& velocity, double lr,
                           double momentum, double weight_decay, bool nesterov) {
  const char* op = "sgd_update";
  const bool uses_velocity = momentum != 0.0;  // velocity may be undefined otherwise
  const DType dt = uses_velocity ? check_args(op, {{"w", &w}, {"g", &g}, {"velocity", &velocity}})
                                 : check_args(op, {{"w", &w}, {"g", &g}});
  check_same_numel(op, "w", w, "g", g);
  if (uses_velocity) check_same_numel(op, "w", w, "velocity", velocity);
  if (accel_sgd_update(dt, w, g, uses_velocity ? &velocity : nullptr, lr, momentum,
                       weight_decay, nesterov))
    return;
  dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    cpu::sgd_update<T>(w.numel(), w.data<T>(), g.data<T>(),
                       uses_velocity ? velocity.data<T>() : nullptr, lr, momentum, weight_decay,
                       nesterov);
  });
}

void CpuDevice::adam_update(Tensor& w, const Tensor& g, Tensor& m, Tensor& v, double lr,
                            double beta1, double beta2, double eps, double weight_decay,
                            bool decoupled, int64_t step) {
  const char* op = "adam_update";
  const DType dt = check_args(op, {{"w", &w}, {"g", &g}, {"m", &m}, {"v", &v}});
  JANUS_CHECK(step >= 1, prefix(op), "step = ", step, ", but steps count from 1");
  check_same_numel(op, "w", w, "g", g);
  check_same_numel(op, "w", w, "m", m);
  check_same_numel(op, "w", w, "v", v);
  if (accel_adam_update(dt, w, g, m, v, lr, beta1, beta2, eps, weight_decay, decoupled, step))
    return;
  dispatch(dt, [&](auto tag) {
    using T = decltype(tag);
    cpu::adam_update<T>(w.numel(), w.data<T>(), g.data<T>(), m.data<T>(), v.data<T>(), lr, beta1,
                        beta2, eps, weight_decay, decoupled, step);
  });
}

Device& reference_cpu_device() {
  static CpuDevice device;
  return device;
}

}  // namespace janus
