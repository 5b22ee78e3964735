// CpuDevice: the reference implementation of the Device interface.
//
// Memory is ordinary host memory. Each operation checks what would otherwise
// be a silent memory error (undefined tensors, tensors of another device,
// mixed dtypes, element counts and shapes that do not fit together) and throws
// janus::Error naming the operation and the shapes; then it dispatches on the
// dtype (F32 or F64) to one templated kernel of src/cpu/kernels.hpp.
//
// reference_cpu_device() is a plain CpuDevice ("cpu:reference"): the oracle
// that the fast path and the CUDA backend are tested against. cpu_device() is
// a FastCpuDevice (src/cpu/fast_device.hpp), which derives from this class and
// overrides the protected accel_* hooks below: every public operation first
// validates its arguments here (one set of checks and messages for both
// devices), then offers the work to its hook, and runs the reference kernel
// only when the hook declines (returns false), as all of them do here.
#pragma once

#include <initializer_list>

#include "janus/device.hpp"

namespace janus {

class CpuDevice : public Device {
 public:
  std::string name() const override { return "cpu:reference"; }
  DeviceKind kind() const override { return DeviceKind::CPU; }

  // ---- memory ---------------------------------------------------------------
  void* allocate(size_t bytes) override;
  void deallocate(void* ptr, size_t bytes) override;
  void copy_to_device(void* dst, const void* host_src, size_t bytes) override;
  void copy_to_host(void* host_dst, const void* src, size_t bytes) override;
  void copy_on_device(void* dst, const void* src, size_t bytes) override;

  // ---- elementwise and BLAS-like -------------------------------------------
  void fill(Tensor& x, double value) override;
  void axpby(double alpha, const Tensor& x, double beta, Tensor& y) override;
  void multiply(const Tensor& a, const Tensor& b, Tensor& out) override;
  void gemm(bool trans_a, bool trans_b, double alpha, const Tensor& a, const Tensor& b,
            double beta, Tensor& c) override;
  void add_bias(Tensor& y, const Tensor& bias) override;
  void sum_rows(const Tensor& x, double beta, Tensor& out) override;
  double sum(const Tensor& x) override;

  // ---- activations ----------------------------------------------------------
  void activation_forward(const ActivationFunction& act, const Tensor& z, Tensor& y) override;
  void bias_activation_forward(const ActivationFunction& act, Tensor& z, const Tensor& bias,
                               Tensor& y) override;
  void activation_backward(const ActivationFunction& act, const Tensor& z, const Tensor& y,
                           const Tensor& dy, Tensor& dz) override;

  // ---- losses ---------------------------------------------------------------
  double cross_entropy_forward(const Tensor& yhat, const Tensor& y) override;
  void cross_entropy_backward(const Tensor& yhat, const Tensor& y, Tensor& dyhat) override;
  double l2_forward(const Tensor& yhat, const Tensor& y) override;
  void l2_backward(const Tensor& yhat, const Tensor& y, Tensor& dyhat) override;
  double softmax_cross_entropy(const Tensor& z, const Tensor& y, Tensor* dz) override;
  int64_t count_correct(const Tensor& yhat, const Tensor& y) override;
  void softmax_cross_entropy_into(const Tensor& z, const Tensor& y, Tensor* dz, Tensor& loss) override;
  void l2_forward_into(const Tensor& yhat, const Tensor& y, Tensor& loss) override;
  void count_correct_into(const Tensor& yhat, const Tensor& y, Tensor& totals) override;
  void add_loss_into(const Tensor& loss, double weight, double tag, Tensor& totals) override;

  // ---- convolution and pooling ----------------------------------------------
  void conv2d_forward(const ConvGeometry& g, const Tensor& x, const Tensor& w,
                      const Tensor& bias, Tensor& y) override;
  void conv2d_activation_forward(const ActivationFunction& act, const ConvGeometry& g, const Tensor& x,
                                 const Tensor& w, const Tensor& bias, Tensor& y) override;
  std::string conv2d_kernel(const ConvGeometry& g, DType dt) override;
  void conv2d_backward_data(const ConvGeometry& g, const Tensor& dy, const Tensor& w,
                            Tensor& dx) override;
  void conv2d_backward_filter(const ConvGeometry& g, const Tensor& x, const Tensor& dy,
                              Tensor& dw) override;
  void pool2d_forward(PoolMode mode, const PoolGeometry& g, const Tensor& x,
                      Tensor& y) override;
  void pool2d_backward(PoolMode mode, const PoolGeometry& g, const Tensor& x, const Tensor& dy,
                       Tensor& dx) override;

  // ---- batch normalisation --------------------------------------------------
  void batchnorm_forward_train(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                               double momentum, double eps, Tensor& running_mean,
                               Tensor& running_var, Tensor& saved_mean, Tensor& saved_invstd,
                               Tensor& y) override;
  void batchnorm_forward_eval(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                              const Tensor& running_mean, const Tensor& running_var, double eps,
                              Tensor& y) override;
  void batchnorm_backward(const Tensor& x, const Tensor& dy, const Tensor& gamma,
                          const Tensor& saved_mean, const Tensor& saved_invstd, Tensor& dx,
                          Tensor& dgamma, Tensor& dbeta) override;
  void batchnorm_relu_forward_train(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                    double momentum, double eps, Tensor& running_mean,
                                    Tensor& running_var, Tensor& saved_mean, Tensor& saved_invstd,
                                    Tensor& y) override;
  void batchnorm_relu_forward_eval(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                   const Tensor& running_mean, const Tensor& running_var,
                                   double eps, Tensor& y) override;
  void batchnorm_relu_backward(const Tensor& x, const Tensor& y, const Tensor& dy,
                               const Tensor& gamma, const Tensor& saved_mean,
                               const Tensor& saved_invstd, Tensor& dx, Tensor& dgamma,
                               Tensor& dbeta) override;

  // ---- dropout and optimizers -----------------------------------------------
  void dropout_forward(const Tensor& x, double p, uint64_t seed, Tensor& mask,
                       Tensor& y) override;
  void sgd_update(Tensor& w, const Tensor& g, Tensor& velocity, double lr, double momentum,
                  double weight_decay, bool nesterov) override;
  void adam_update(Tensor& w, const Tensor& g, Tensor& m, Tensor& v, double lr, double beta1,
                   double beta2, double eps, double weight_decay, bool decoupled,
                   int64_t step) override;

 protected:
  // Concat's copies (src/cpu/copy_columns.cpp): one memcpy per row. The fast
  // device uses it as it is: a copy is bound by memory bandwidth, which
  // memcpy reaches on one core for rows of hundreds of bytes.
  // float32 <-> bfloat16 (src/cpu/convert.cpp), one plain loop on both devices.
  void convert_kernel(const Tensor& src, Tensor& dst) override;
  void copy_columns_kernel(const Tensor& src, int64_t src_col, Tensor& dst, int64_t dst_col,
                           int64_t width) override;

  // ---- fast-path hooks (see the top of this file) ---------------------------
  // Called after validation with the sizes the reference kernel would get; dt
  // is the common dtype of the tensors. Return true when the work is done.
  virtual bool accel_fill(DType, Tensor&, double) { return false; }
  virtual bool accel_axpby(DType, double, const Tensor&, double, Tensor&) { return false; }
  virtual bool accel_multiply(DType, const Tensor&, const Tensor&, Tensor&) { return false; }
  virtual bool accel_gemm(DType, bool /*trans_a*/, bool /*trans_b*/, int64_t /*M*/, int64_t /*N*/,
                          int64_t /*K*/, double /*alpha*/, const Tensor& /*a*/, const Tensor& /*b*/,
                          double /*beta*/, Tensor& /*c*/) {
    return false;
  }
  virtual bool accel_add_bias(DType, int64_t /*rows*/, int64_t /*cols*/, Tensor& /*y*/,
                              const Tensor& /*bias*/) {
    return false;
  }
  virtual bool accel_sum_rows(DType, int64_t /*rows*/, int64_t /*cols*/, const Tensor& /*x*/,
                              double /*beta*/, Tensor& /*out*/) {
    return false;
  }
  virtual bool accel_activation_forward(DType, const ActivationFunction&, int64_t /*rows*/, int64_t /*cols*/,
                                        const Tensor& /*z*/, Tensor& /*y*/) {
    return false;
  }
  // z += bias, then y = act(z); the reference runs add_bias then
  // activation_forward, and an override must give the same values.
  virtual bool accel_bias_activation_forward(DType, const ActivationFunction&, int64_t /*rows*/,
                                             int64_t /*cols*/, Tensor& /*z*/,
                                             const Tensor& /*bias*/, Tensor& /*y*/) {
    return false;
  }
  // saved: z or y as activation_reads(act.kind) says, null when the
  // derivative reads neither.
  virtual bool accel_activation_backward(DType, const ActivationFunction&, int64_t /*rows*/,
                                         int64_t /*cols*/, const Tensor* /*saved*/,
                                         const Tensor& /*dy*/, Tensor& /*dz*/) {
    return false;
  }
  // The accelerated convolution kernel's description (conv2d_kernel), or ""
  // when the reference loops run.
  virtual std::string accel_conv2d_kernel(DType, const ConvGeometry&) { return ""; }
  virtual bool accel_conv2d_forward(DType, const ConvGeometry&, const Tensor& /*x*/,
                                    const Tensor& /*w*/, const Tensor* /*bias or null*/,
                                    Tensor& /*y*/) {
    return false;
  }
  // y = act(conv(x, w) + bias) in one pass; declining runs conv2d_forward,
  // then activation_forward (Device's default), whose hooks an override
  // must match.
  virtual bool accel_conv2d_activation_forward(DType, const ActivationFunction&, const ConvGeometry&,
                                               const Tensor& /*x*/, const Tensor& /*w*/,
                                               const Tensor* /*bias or null*/, Tensor& /*y*/) {
    return false;
  }
  virtual bool accel_conv2d_backward_data(DType, const ConvGeometry&, const Tensor& /*dy*/,
                                          const Tensor& /*w*/, Tensor& /*dx*/) {
    return false;
  }
  virtual bool accel_conv2d_backward_filter(DType, const ConvGeometry&, const Tensor& /*x*/,
                                            const Tensor& /*dy*/, Tensor& /*dw*/) {
    return false;
  }
  virtual bool accel_pool2d_forward(DType, PoolMode, const PoolGeometry&, const Tensor& /*x*/,
                                    Tensor& /*y*/) {
    return false;
  }
  virtual bool accel_pool2d_backward(DType, PoolMode, const PoolGeometry&, const Tensor& /*x*/,
                                     const Tensor& /*dy*/, Tensor& /*dx*/) {
    return false;
  }
  virtual bool accel_batchnorm_forward_eval(DType, int64_t /*rows*/, int64_t /*C*/,
                                            const Tensor& /*x*/, const Tensor& /*gamma*/,
                                            const Tensor& /*beta*/, const Tensor& /*mean*/,
                                            const Tensor& /*var*/, double /*eps*/,
                                            Tensor& /*y*/) {
    return false;
  }
  virtual bool accel_batchnorm_forward_train(DType, int64_t /*rows*/, int64_t /*C*/,
                                             const Tensor& /*x*/, const Tensor& /*gamma*/,
                                             const Tensor& /*beta*/, double /*momentum*/,
                                             double /*eps*/, Tensor& /*running_mean*/,
                                             Tensor& /*running_var*/, Tensor& /*saved_mean*/,
                                             Tensor& /*saved_invstd*/, Tensor& /*y*/) {
    return false;
  }
  virtual bool accel_batchnorm_backward(DType, int64_t /*rows*/, int64_t /*C*/,
                                        const Tensor& /*x*/, const Tensor& /*dy*/,
                                        const Tensor& /*gamma*/, const Tensor& /*saved_mean*/,
                                        const Tensor& /*saved_invstd*/, Tensor& /*dx*/,
                                        Tensor& /*dgamma*/, Tensor& /*dbeta*/) {
    return false;
  }
  // BatchNorm + ReLU (device.hpp batchnorm_relu_*): false falls back to the
  // unfused sequence; a kernel that returns true must be bit-identical to it.
  virtual bool accel_batchnorm_relu_forward_train(DType, int64_t /*rows*/, int64_t /*C*/,
                                                  const Tensor& /*x*/, const Tensor& /*gamma*/,
                                                  const Tensor& /*beta*/, double /*momentum*/,
                                                  double /*eps*/, Tensor& /*running_mean*/,
                                                  Tensor& /*running_var*/, Tensor& /*saved_mean*/,
                                                  Tensor& /*saved_invstd*/, Tensor& /*y*/) {
    return false;
  }
  virtual bool accel_batchnorm_relu_forward_eval(DType, int64_t /*rows*/, int64_t /*C*/,
                                                 const Tensor& /*x*/, const Tensor& /*gamma*/,
                                                 const Tensor& /*beta*/, const Tensor& /*mean*/,
                                                 const Tensor& /*var*/, double /*eps*/,
                                                 Tensor& /*y*/) {
    return false;
  }
  virtual bool accel_batchnorm_relu_backward(DType, int64_t /*rows*/, int64_t /*C*/,
                                             const Tensor& /*x*/, const Tensor& /*y*/,
                                             const Tensor& /*dy*/, const Tensor& /*gamma*/,
                                             const Tensor& /*saved_mean*/,
                                             const Tensor& /*saved_invstd*/, Tensor& /*dx*/,
                                             Tensor& /*dgamma*/, Tensor& /*dbeta*/) {
    return false;
  }
  // velocity is null when momentum == 0.
  virtual bool accel_sgd_update(DType, Tensor& /*w*/, const Tensor& /*g*/, Tensor* /*velocity*/,
                                double /*lr*/, double /*momentum*/, double /*weight_decay*/,
                                bool /*nesterov*/) {
    return false;
  }
  virtual bool accel_adam_update(DType, Tensor& /*w*/, const Tensor& /*g*/, Tensor& /*m*/,
                                 Tensor& /*v*/, double /*lr*/, double /*beta1*/, double /*beta2*/,
                                 double /*eps*/, double /*weight_decay*/, bool /*decoupled*/,
                                 int64_t /*step*/) {
    return false;
  }

  // One tensor argument of an operation, named as in device.hpp for messages.
  struct Arg {
    const char* name;
    const Tensor* tensor;
  };
  // Checks that every argument is defined, lives on this device and that all
  // have one dtype, which is returned. Throws janus::Error naming `op`.
  DType check_args(const char* op, std::initializer_list<Arg> args) const;

 private:
  // The argument checks of conv2d_forward (also those of
  // conv2d_activation_forward); returns the dtype.
  DType check_conv2d_forward(const char* op, const ConvGeometry& g, const Tensor& x,
                             const Tensor& w, const Tensor& bias, const Tensor& y) const;
  // The argument checks of the BatchNorm operations (shared with their
  // batchnorm_relu_* forms); each returns the dtype.
  DType check_batchnorm_forward_train(const char* op, const Tensor& x, const Tensor& gamma,
                                      const Tensor& beta, const Tensor& running_mean,
                                      const Tensor& running_var, const Tensor& saved_mean,
                                      const Tensor& saved_invstd, const Tensor& y) const;
  DType check_batchnorm_forward_eval(const char* op, const Tensor& x, const Tensor& gamma,
                                     const Tensor& beta, const Tensor& running_mean,
                                     const Tensor& running_var, const Tensor& y) const;
  DType check_batchnorm_backward(const char* op, const Tensor& x, const Tensor& dy,
                                 const Tensor& gamma, const Tensor& saved_mean,
                                 const Tensor& saved_invstd, const Tensor& dx,
                                 const Tensor& dgamma, const Tensor& dbeta) const;
};

}  // namespace janus
