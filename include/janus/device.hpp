// Device: the one interface through which layers, losses and optimizers run
// kernels. Layers never contain device-specific code; a backend (CPU, CUDA,
// simulated CUDA) implements this class and nothing else.
//
// Conventions for every operation below
// - All tensors passed to one call live on this device, are contiguous and
//   have the same dtype. The CPU backend computes in F32 and F64 and refuses
//   BF16 operands (janus::Error naming the op, the device and the tensor;
//   convert() and copies take them). CUDA computes in F32; in addition, the
//   ops marked "bf16 storage on CUDA" below take BF16 activation tensors (all
//   of one call's activation tensors one dtype, F32 or BF16; parameters,
//   statistics and losses F32). They read bf16 values exactly, compute in
//   float32 (or double) exactly as the F32 kernel does, and round each stored
//   result once to nearest even: a bf16 output is the F32 kernel's output on
//   the same values, rounded once to bf16. (Matrix products: the float32
//   result of the same products summed in float32, which on a GPU may be
//   summed in another order than the F32 call's; gemm and conv2d below.)
//   Any other mix is refused.
// - "rows x cols" views: an operation "over the last axis" treats a tensor of
//   shape (d0, ..., dk) as a matrix of rows = d0*...*d(k-1) and cols = dk.
//   Dense data (batch, features) and NHWC images (batch*rows*cols, channels)
//   both map onto this, which is how bias, softmax and BatchNorm share kernels.
// - Output tensors are allocated by the caller with the right shape; the
//   device writes every element of them (no reliance on prior contents unless
//   an accumulate flag or beta says so).
// - Losses return the *batch mean* as defined in SPEC.md (divide by m = batch
//   size = shape[0] of the prediction).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "janus/activation_functions.hpp"
#include "janus/tensor.hpp"

namespace janus {

enum class DeviceKind { CPU, CUDA };

enum class PoolMode { Max, Average };

// Geometry of a 2-D convolution on NHWC input with HWIO weights.
// x: (N, H, W, C), w: (KH, KW, C/groups, F), y: (N, OH, OW, F),
// OH = (H + 2*pad_h - KH) / stride_h + 1, likewise OW.
// With Cg = C/groups input and Fg = F/groups output channels per group, output
// channel f belongs to group gi = f / Fg and reads only that group's inputs:
// y[n,r,c,f] = sum_{i,j,k < Cg} w[i,j,k,f] * xpad[n, r*stride_h + i, c*stride_w + j, gi*Cg + k]
// where xpad is x with pad_h rows of zeros above and below (pad_w cols left/right).
// groups = 1 is the ordinary convolution (Cg = C); groups = C is depthwise
// (each input channel convolved with its own F/C filters). These are PyTorch's
// nn.Conv2d(groups=G) semantics, whose weight (F, C/G, KH, KW) is this HWIO
// weight transposed; Janus's w[i,j,k,f] is PyTorch's weight[f,k,i,j].
// check_conv_geometry (below) is the one statement of which geometries are valid.
struct ConvGeometry {
  int N = 0, H = 0, W = 0, C = 0;
  int KH = 0, KW = 0, F = 0;
  int stride_h = 1, stride_w = 1;
  int pad_h = 0, pad_w = 0;
  int OH = 0, OW = 0;
  int groups = 1;  // C and F are both multiples of it
  int group_channels() const { return C / groups; }  // Cg: input channels per group
  int group_filters() const { return F / groups; }   // Fg: output channels per group
};

// "N=8 H=32 W=32 C=16 KH=3 KW=3 F=32 stride=1x1 pad=1x1 OH=32 OW=32 groups=2"
std::string conv_geometry_str(const ConvGeometry& g);
// The contract of every convolution pass on every device, stated once
// (src/core/conv_geometry.cpp): positive extents and strides, non-negative
// padding, a kernel that fits the padded input, OH/OW from the formula above
// (a wrong OH would make kernels read or write out of bounds), groups >= 1
// dividing both C and F. Throws janus::Error starting with `owner` ("cpu
// conv2d_forward", "layer 'dw1' (conv2d)") and naming the field and the
// shapes at fault.
void check_conv_geometry(const std::string& owner, const ConvGeometry& g);

// Geometry of 2-D pooling on NHWC input; channels are pooled independently.
// x: (N, H, W, C), y: (N, OH, OW, C). Padding positions never win a max and,
// for average pooling, count in the divisor (count_include_pad semantics,
// divisor = KH*KW always), as in Caffe and PyTorch's default.
struct PoolGeometry {
  int N = 0, H = 0, W = 0, C = 0;
  int KH = 0, KW = 0;
  int stride_h = 1, stride_w = 1;
  int pad_h = 0, pad_w = 0;
  int OH = 0, OW = 0;
};

// One parameter of a multi-tensor optimizer update (Device::*_update_multi):
// the tensors are updated in place; velocity is null when momentum == 0.
struct SgdParamUpdate {
  Tensor* w;
  const Tensor* g;
  Tensor* velocity;
  double lr, weight_decay;
};
struct AdamParamUpdate {
  Tensor* w;
  const Tensor* g;
  Tensor* m;
  Tensor* v;
  double lr, weight_decay;
};

class StepCapture;  // janus/step_capture.hpp

class Device {
 public:
  virtual ~Device() = default;

  // "cpu", "cuda:0", "cuda:0 (simulated on the CPU)".
  virtual std::string name() const = 0;
  virtual DeviceKind kind() const = 0;
  // True when this is a CUDA device run by the CPU simulator.
  virtual bool simulated() const { return false; }

  // ---- memory -------------------------------------------------------------
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* ptr, size_t bytes) = 0;
  virtual void copy_to_device(void* dst, const void* host_src, size_t bytes) = 0;
  virtual void copy_to_host(void* host_dst, const void* src, size_t bytes) = 0;
  virtual void copy_on_device(void* dst, const void* src, size_t bytes) = 0;
  // Waits for all queued work (no-op on the CPU).
  virtual void synchronize() {}
  // Recording a training step as a CUDA graph (janus/step_capture.hpp), or
  // nullptr where the device cannot (the CPU).
  virtual StepCapture* step_capture() { return nullptr; }

  // ---- dtype conversion (PyTorch's Tensor.to(dtype)) ------------------------
  // dst = src converted to dst's dtype. Both tensors defined, on this device,
  // of equal shapes; the dtypes float32 -> bfloat16, bfloat16 -> float32, or
  // equal (a copy). To bfloat16: round to nearest, ties to even; infinities
  // and zeros kept, values beyond bfloat16's largest finite value (that round
  // up) become infinity, a NaN stays a NaN (janus::float_to_bf16_bits on the
  // CPU keeps its sign and payload, made quiet; CUDA's __float2bfloat16_rn
  // writes the canonical NaN 0x7FFF). To float32: exact. Anything else throws
  // janus::Error naming the device, the shapes and the dtypes. Checked here
  // for every backend; Tensor::to(DType) calls it.
  void convert(const Tensor& src, Tensor& dst);

  // ---- elementwise and BLAS-like ----------------------------------------
  // x[i] = value  (bf16 storage on CUDA: value rounded once)
  virtual void fill(Tensor& x, double value) = 0;
  // y = alpha * x + beta * y   (elementwise, same numel; bf16 storage on CUDA:
  // x and y one dtype, alpha and beta as float, one rounding)
  virtual void axpby(double alpha, const Tensor& x, double beta, Tensor& y) = 0;
  // out = a * b   (elementwise, same numel; out may alias a or b; bf16
  // storage on CUDA: dropout's backward)
  virtual void multiply(const Tensor& a, const Tensor& b, Tensor& out) = 0;
  // Row-major GEMM on 2-D views: C = alpha * op(A) op(B) + beta * C.
  // op(A) is (M, K): A is (M, K), or (K, M) when trans_a. op(B) is (K, N):
  // B is (K, N), or (N, K) when trans_b. C is (M, N). Tensors of higher rank
  // are viewed as (rows, last) matrices.
  // (bf16 storage on CUDA: A, B and C each float32 or bf16, independently:
  // the dense layer multiplies bf16 activations by its float32 master
  // weight (Z = X W, dX = dZ W^T, bf16 outputs) and writes a float32 weight
  // gradient from two bf16 ones (dW = X^T dZ). The products are those of the
  // precision mode on the values (bf16 values are exact in every mode's
  // input type), summed in float32 with alpha and beta * C (a bf16 C read
  // exactly) as the float32 GEMM; a bf16 C is that result rounded once.
  // Other dtypes throw janus::Error naming the tensor.)
  virtual void gemm(bool trans_a, bool trans_b, double alpha, const Tensor& a, const Tensor& b,
                    double beta, Tensor& c) = 0;
  // y (rows x cols) += bias (cols) broadcast over rows. (bf16 storage on
  // CUDA: y bf16, bias float32.)
  virtual void add_bias(Tensor& y, const Tensor& bias) = 0;
  // out (cols) = sum over rows of x (rows x cols) + beta * out.
  // (bf16 storage on CUDA: x bf16, out float32, the bias gradient of the
  // dense and convolution layers; the same sums of the same values.)
  virtual void sum_rows(const Tensor& x, double beta, Tensor& out) = 0;
  // sum of all elements, returned to the host (in double).
  virtual double sum(const Tensor& x) = 0;

  // ---- column blocks (Concat along the last axis, and its backward) --------
  // Viewing src as (rows x src_cols) and dst as (rows x dst_cols) over their
  // last axes: dst[r, dst_col + k] = src[r, src_col + k] for every row r and
  // 0 <= k < width. The other columns of dst are left as they are: Concat
  // fills its output one input at a time. The contract is checked here,
  // once for every backend: both tensors defined, on this device, of one
  // dtype, with the same number of rows, and both column ranges inside their
  // tensors; otherwise an Error naming the op and the shapes. Exact (a copy).
  // (bf16 storage on CUDA: both tensors bf16.)
  void copy_columns(const Tensor& src, int64_t src_col, Tensor& dst, int64_t dst_col, int64_t width);

  // ---- activations (activation_functions.hpp: the maths of each, one entry
  // per activation; SoftMax is over the last axis, stable: subtract row max)
  // y = act(z). y may alias z for elementwise activations. (bf16 storage on
  // CUDA for the element-wise ones, forward and backward, and for
  // bias_activation_forward: z, y, dy, dz one dtype, bias float32. SoftMax
  // takes float32 only: layers run it on float32 copies of bf16 activations,
  // activation.hpp.)
  virtual void activation_forward(const ActivationFunction& act, const Tensor& z, Tensor& y) = 0;
  // The forward of a dense layer after its GEMM: z (rows x cols) += bias
  // (cols) broadcast over rows, then y = act(z), in one pass over z where the
  // backend can (y may alias z for elementwise activations). The default is
  // add_bias followed by activation_forward; a backend that overrides it must
  // give the same result.
  virtual void bias_activation_forward(const ActivationFunction& act, Tensor& z, const Tensor& bias, Tensor& y) {
    add_bias(z, bias);
    activation_forward(act, z, y);
  }
  // dz = act'(z) * dy. Reads z or y = act(z) as activation_reads(act.kind)
  // says (each entry's `reads`; the other tensor may be undefined). ReLU
  // reads y (derivative 0 where y <= 0). SoftMax reads y:
  // dz = y * (dy - sum(dy * y, last axis)).
  virtual void activation_backward(const ActivationFunction& act, const Tensor& z, const Tensor& y,
                                   const Tensor& dy, Tensor& dz) = 0;

  // ---- losses (yhat, y are (m, k); y may hold soft targets) ---------------
  // J = -(1/m) sum y * ln(yhat); yhat is clamped below at 1e-12 (float) so a
  // hard zero does not produce inf. dyhat = -(1/m) y / max(yhat, 1e-12).
  virtual double cross_entropy_forward(const Tensor& yhat, const Tensor& y) = 0;
  virtual void cross_entropy_backward(const Tensor& yhat, const Tensor& y, Tensor& dyhat) = 0;
  // J = (1/m) sum (yhat - y)^2 ; dyhat = (2/m) (yhat - y)
  virtual double l2_forward(const Tensor& yhat, const Tensor& y) = 0;
  virtual void l2_backward(const Tensor& yhat, const Tensor& y, Tensor& dyhat) = 0;
  // Fused, numerically stable softmax + cross-entropy on logits z (m, k):
  // returns J = -(1/m) sum_i sum_j y_ij * log_softmax(z_i)_j, and when dz is
  // non-null writes dz = (softmax(z) - y * ... ) i.e. dz_ij = (s_ij * sum_j y_ij - y_ij) / m
  // (which is (s - y)/m for targets whose rows sum to one).
  // (bf16 storage on CUDA: z and dz bf16; the targets y and the loss float32.)
  virtual double softmax_cross_entropy(const Tensor& z, const Tensor& y, Tensor* dz) = 0;
  // Number of rows where argmax(yhat) == argmax(y) (first maximum on ties).
  virtual int64_t count_correct(const Tensor& yhat, const Tensor& y) = 0;

  // ---- losses and metrics that stay on the device -------------------------
  // The training loop's per-step bookkeeping without a host wait: on a GPU,
  // returning a loss or a count to the host waits for every kernel queued
  // before it. These ops leave their results in device memory instead, in
  // float64 tensors (on CUDA too: these ops and copies are the only ones that
  // touch them), to be read once per log interval. Each gives bit for bit
  // the value its host-returning twin above returns.
  //
  // As softmax_cross_entropy / l2_forward, with J written to loss (one
  // float64 element on this device) instead of returned.
  virtual void softmax_cross_entropy_into(const Tensor& z, const Tensor& y, Tensor* dz, Tensor& loss) = 0;
  virtual void l2_forward_into(const Tensor& yhat, const Tensor& y, Tensor& loss) = 0;
  // Running training metrics: `totals` is a float64 tensor of
  // StepTotal::Count elements on this device, laid out as StepTotal says.
  enum StepTotal : int64_t {
    LossSum = 0,           // sum of loss * weight
    Correct = 1,           // sum of correct counts (exact below 2^53)
    FirstNonfinite = 2,    // the tag of the first non-finite loss added, < 0 while there is none
    FirstNonfiniteLoss = 3,  // that loss
    Count = 4
  };
  // totals[Correct] += count_correct(yhat, y).
  virtual void count_correct_into(const Tensor& yhat, const Tensor& y, Tensor& totals) = 0;
  // With J = loss[0] (float64, one element): totals[LossSum] += J * weight,
  // the product rounded to double before the sum (no fused multiply-add, as
  // the host computes it); if J is not finite and totals[FirstNonfinite] < 0,
  // totals[FirstNonfinite] = tag and totals[FirstNonfiniteLoss] = J.
  virtual void add_loss_into(const Tensor& loss, double weight, double tag, Tensor& totals) = 0;

  // ---- convolution (see ConvGeometry) -------------------------------------
  // (bf16 storage on CUDA, all three passes: x, y, dy, dx one dtype; w, bias
  // and dw float32 (master weights, weight gradient). The products are those
  // of the precision mode, summed in float32; each bf16 output is that float32
  // result (plus the bias) rounded once. They run on Janus's own kernels
  // also where cuDNN is selected (cuda_device.cpp says why), so on a GPU the
  // float32 sums may be in another order than the F32 call's; conv2d_kernel
  // of DType::BF16 names the kernel.)
  // y = conv(x, w) (+ bias if bias is defined, shape (F)).
  virtual void conv2d_forward(const ConvGeometry& g, const Tensor& x, const Tensor& w,
                              const Tensor& bias, Tensor& y) = 0;
  // The forward of a convolution layer: y = act(conv(x, w) + bias) (bias may
  // be undefined, as above), in one pass over y where the backend can (e.g.
  // the activation as a post-op of the convolution kernel, while each output
  // is still in a register). The default is conv2d_forward followed by
  // activation_forward in place (through a temporary for SoftMax); a backend
  // that overrides it must give the same result as those two operations.
  virtual void conv2d_activation_forward(const ActivationFunction& act, const ConvGeometry& g,
                                         const Tensor& x, const Tensor& w, const Tensor& bias,
                                         Tensor& y) {
    if (act.kind == ActivationKind::SoftMax) {  // not element-wise: y cannot alias z
      Tensor z = Tensor::empty(y.shape(), *this, y.dtype());
      conv2d_forward(g, x, w, bias, z);
      activation_forward(act, z, y);
      return;
    }
    conv2d_forward(g, x, w, bias, y);
    if (act.kind != ActivationKind::Linear) activation_forward(act, y, y);
  }
  // Which kernel a convolution of this geometry and dtype runs on this
  // device, in words, for diagnostics (`janus bench`'s per-layer table):
  // e.g. "oneDNN Winograd (jit_wino_4x3:avx512_core)", "cuDNN".
  virtual std::string conv2d_kernel(const ConvGeometry& g, DType dt) = 0;
  // dx = transposed correlation of dy with w, padding cut off.
  virtual void conv2d_backward_data(const ConvGeometry& g, const Tensor& dy, const Tensor& w,
                                    Tensor& dx) = 0;
  // dw[i,j,ch,f] = sum_{n,r,c} dy[n,r,c,f] * xpad[n, r*s+i, c*s+j, ch]  (overwrites dw)
  virtual void conv2d_backward_filter(const ConvGeometry& g, const Tensor& x, const Tensor& dy,
                                      Tensor& dw) = 0;

  // ---- pooling (see PoolGeometry) -----------------------------------------
  // (bf16 storage on CUDA: x, y, dy, dx one dtype; the argmax of
  // max_pool2d_forward_train stays float32.)
  virtual void pool2d_forward(PoolMode mode, const PoolGeometry& g, const Tensor& x,
                              Tensor& y) = 0;
  // Max: each dy goes to the position of its window's maximum in x (the first
  // in row-major window order on ties); Average: dy / (KH*KW) to every
  // in-bounds position of the window. Overlapping windows accumulate. dx is
  // overwritten.
  virtual void pool2d_backward(PoolMode mode, const PoolGeometry& g, const Tensor& x,
                               const Tensor& dy, Tensor& dx) = 0;
  // Max pooling in training: y as pool2d_forward(Max, g, x, y), and, on a
  // backend that keeps one, each window's argmax for max_pool2d_backward_argmax,
  // so the backward need not search the windows again (the Pool2D layer then
  // caches the argmax, of y's size, instead of x). The default keeps none and
  // returns an undefined tensor (the backward then takes pool2d_backward with
  // x). What a returned argmax holds is the backend's own business: it is only
  // passed back to the same device.
  virtual Tensor max_pool2d_forward_train(const PoolGeometry& g, const Tensor& x, Tensor& y) {
    pool2d_forward(PoolMode::Max, g, x, y);
    return Tensor();
  }
  // dx of max pooling (pool2d_backward's contract) from the argmax that
  // max_pool2d_forward_train of this device returned. The default has none to
  // take and throws janus::Error.
  virtual void max_pool2d_backward_argmax(const PoolGeometry& g, const Tensor& argmax, const Tensor& dy,
                                          Tensor& dx);

  // ---- batch normalisation over rows of x (rows x C) ----------------------
  // (bf16 storage on CUDA, the ReLU-fused ops included: x, y, dy, dx one
  // dtype; gamma, beta, the saved and running statistics and dgamma, dbeta
  // float32.)
  // Training: mean/var over rows (biased var for normalising), writes
  // saved_mean (C) and saved_invstd (C) = 1/sqrt(var + eps), and updates
  // running_mean = (1-momentum)*running_mean + momentum*mean,
  // running_var  = (1-momentum)*running_var  + momentum*var_unbiased (rows/(rows-1)).
  // y = gamma * (x - mean) * invstd + beta.
  virtual void batchnorm_forward_train(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                       double momentum, double eps, Tensor& running_mean,
                                       Tensor& running_var, Tensor& saved_mean,
                                       Tensor& saved_invstd, Tensor& y) = 0;
  // Evaluation: y = gamma * (x - running_mean) / sqrt(running_var + eps) + beta.
  virtual void batchnorm_forward_eval(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                      const Tensor& running_mean, const Tensor& running_var,
                                      double eps, Tensor& y) = 0;
  // Backward of the training-mode forward: writes dx, dgamma, dbeta (overwrites).
  virtual void batchnorm_backward(const Tensor& x, const Tensor& dy, const Tensor& gamma,
                                  const Tensor& saved_mean, const Tensor& saved_invstd,
                                  Tensor& dx, Tensor& dgamma, Tensor& dbeta) = 0;

  // BatchNorm followed by ReLU, the pair NeuralNetwork fuses (fusion.cpp):
  // y = relu(batchnorm(x)). The defaults are the unfused sequence (the
  // BatchNorm op, then activation_forward in place); a backend that overrides
  // them must give bit-identical results, so fusing never changes training.
  virtual void batchnorm_relu_forward_train(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                            double momentum, double eps, Tensor& running_mean,
                                            Tensor& running_var, Tensor& saved_mean,
                                            Tensor& saved_invstd, Tensor& y) {
    batchnorm_forward_train(x, gamma, beta, momentum, eps, running_mean, running_var, saved_mean,
                            saved_invstd, y);
    activation_forward(ActivationKind::ReLU, y, y);
  }
  virtual void batchnorm_relu_forward_eval(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                           const Tensor& running_mean, const Tensor& running_var,
                                           double eps, Tensor& y) {
    batchnorm_forward_eval(x, gamma, beta, running_mean, running_var, eps, y);
    activation_forward(ActivationKind::ReLU, y, y);
  }
  // Backward of the pair: y is the forward's output (after the ReLU), dy the
  // gradient of y. dy counts as 0 where y <= 0 (ReLU's backward reads its
  // output), which is exactly where the BatchNorm output z was <= 0.
  virtual void batchnorm_relu_backward(const Tensor& x, const Tensor& y, const Tensor& dy,
                                       const Tensor& gamma, const Tensor& saved_mean,
                                       const Tensor& saved_invstd, Tensor& dx, Tensor& dgamma,
                                       Tensor& dbeta) {
    Tensor dz = Tensor::empty(dy.shape(), *this, dy.dtype());
    activation_backward(ActivationKind::ReLU, Tensor(), y, dy, dz);
    batchnorm_backward(x, dz, gamma, saved_mean, saved_invstd, dx, dgamma, dbeta);
  }

  // ---- dropout ------------------------------------------------------------
  // mask[i] = counter_uniform(seed, i) >= p ? 1/(1-p) : 0 ; y = x * mask.
  // (counter_rng.hpp: the same mask on every device.) Backward is multiply().
  // (bf16 storage on CUDA: x, mask, y one dtype; mask holds the float32 mask
  // rounded to bf16, y = x * the float32 scale rounded once.)
  virtual void dropout_forward(const Tensor& x, double p, uint64_t seed, Tensor& mask,
                               Tensor& y) = 0;

  // ---- optimizer updates (in place on w and the state tensors) ------------
  // g' = g + weight_decay * w; if momentum != 0: v = momentum * v + g';
  //   step = nesterov ? g' + momentum * v : v; else step = g'. w -= lr * step.
  // velocity is undefined when momentum == 0.
  virtual void sgd_update(Tensor& w, const Tensor& g, Tensor& velocity, double lr,
                          double momentum, double weight_decay, bool nesterov) = 0;
  // Adam (decoupled = false: weight decay added to the gradient, as torch.optim.Adam)
  // and AdamW (decoupled = true: w -= lr * weight_decay * w before the Adam step,
  // as torch.optim.AdamW). step is 1 for the first update. With
  // g' the (possibly decayed) gradient:
  //   m = b1 m + (1-b1) g' ; v = b2 v + (1-b2) g'^2
  //   w -= lr * (m / (1-b1^step)) / (sqrt(v / (1-b2^step)) + eps)
  virtual void adam_update(Tensor& w, const Tensor& g, Tensor& m, Tensor& v, double lr,
                           double beta1, double beta2, double eps, double weight_decay,
                           bool decoupled, int64_t step) = 0;
  // Every parameter of an optimizer step at once (a backend may update them
  // all in one launch, as PyTorch's multi_tensor_apply does), each with its
  // own lr and weight decay (per-parameter options); the results are those of
  // sgd_update / adam_update called per entry, which the defaults do.
  virtual void sgd_update_multi(const std::vector<SgdParamUpdate>& updates, double momentum, bool nesterov) {
    Tensor none;
    for (const SgdParamUpdate& u : updates)
      sgd_update(*u.w, *u.g, u.velocity ? *u.velocity : none, u.lr, momentum, u.weight_decay, nesterov);
  }
  virtual void adam_update_multi(const std::vector<AdamParamUpdate>& updates, double beta1, double beta2,
                                 double eps, bool decoupled, int64_t step) {
    for (const AdamParamUpdate& u : updates)
      adam_update(*u.w, *u.g, *u.m, *u.v, u.lr, beta1, beta2, eps, u.weight_decay, decoupled, step);
  }

 protected:
  // The contract of the *_into ops' outputs, checked by every backend the
  // same way: `t` is a float64 tensor of `numel` elements on this device;
  // otherwise an Error naming the op, the argument and what it is instead.
  void check_f64_output(const char* op, const char* what, const Tensor& t, int64_t numel) const;
  // The kernel behind convert, called once its contract holds, for a pair
  // float32 -> bfloat16 or bfloat16 -> float32 of more than zero elements.
  virtual void convert_kernel(const Tensor& src, Tensor& dst) = 0;
  // The kernel behind copy_columns, called once its contract holds (rows =
  // numel / last extent of each; width > 0).
  virtual void copy_columns_kernel(const Tensor& src, int64_t src_col, Tensor& dst, int64_t dst_col,
                                   int64_t width) = 0;
};

// The process-wide CPU device (always available): the fast path (BLAS-backed
// GEMM and convolutions, OpenMP over the cores), named "cpu".
Device& cpu_device();
// The reference CPU device, "cpu:reference": plain loops, accumulating in
// double; the oracle the fast path and the CUDA backend are tested against.
// Tensors of one CPU device cannot be passed to the other (copy with to()).
Device& reference_cpu_device();

// Resolves "cpu", "cpu:reference", "cuda", "cuda:N" or "auto" (CUDA when a device is present,
// else the CPU). "cuda" in a build without CUDA, or an index that does not
// exist, throws janus::Error naming the request and what is available.
Device& get_device(const std::string& spec);

// True when this build has a CUDA backend (real or simulated).
bool cuda_built();
// Number of CUDA devices usable right now (0 without a GPU; the simulator
// provides one). With JANUS_REQUIRE_CUDA set (to anything but "" or "0"),
// zero devices is an error: throws janus::Error with the reason below, so that
// tests that would skip without a GPU fail instead (scripts/test.sh sets it for
// JANUS_CUDA=ON builds).
int cuda_device_count();
// True when JANUS_REQUIRE_CUDA asks for a usable CUDA device.
bool cuda_required();
// Why there is no CUDA device: the CUDA runtime's error from cudaGetDeviceCount
// (e.g. a driver older than the runtime), or that the build has no CUDA
// backend. Empty when devices exist.
std::string cuda_unavailable_reason();
// The CUDA libraries of this build ("cudart 13.0, cuBLAS 13.x, cuDNN 9.x,
// driver 13.0"), or what stands in for them (simulator, none).
std::string cuda_library_versions();

}  // namespace janus
