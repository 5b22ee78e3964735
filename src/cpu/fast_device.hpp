// FastCpuDevice: the CPU device that cpu_device() returns ("cpu").
//
// It is the reference CpuDevice with its hot operations replaced (the
// accel_* hooks of cpu_device.hpp): argument validation, error messages and
// every operation not listed here stay those of the reference.
//
// - Precision bf16 (precision.hpp), F32 tensors: the convolutions run
//   oneDNN's bf16 kernels where the CPU has bf16 instructions
//   (onednn_conv.hpp); elsewhere, and for the GEMMs, the inputs are rounded to
//   bf16 into copies (grow-only buffers) that the float32 kernels below read:
//   the same exact products, summed in float32.
// - gemm (the dense layers): oneDNN's JIT sgemm (AVX-512 here) for F32,
//   OpenBLAS dgemm for F64, C split over the device's TaskTeam
//   (fast_gemm.hpp).
// - conv2d forward / backward-data / backward-filter, F32: oneDNN's JIT
//   (AVX-512 / AVX2) direct convolutions on the NHWC activations, weights
//   reordered from HWIO to oneDNN's blocked layout, and its Winograd kernels
//   (activations staged through blocked copies) for the 3x3 layers on small
//   maps where they pay (onednn_conv.hpp).
//   Primitives are cached per geometry; their scratch memory comes from
//   grow-only buffers. A convolution layer's ReLU (conv2d_activation_forward)
//   is fused into the forward primitive as a oneDNN post-op; other
//   activations run after it, in place. Geometries for which oneDNN has only
//   its reference kernel, and all of F64, take the im2col path below.
// - conv2d, im2col path: im2col on chunks of images (NHWC makes each im2col
//   row a run of KW*C contiguous values) and one OpenBLAS GEMM per chunk; 1x1
//   stride-1 unpadded convolutions skip im2col. Chunks run in parallel;
//   backward-filter reduces per-thread partial gradients.
//   JANUS_CPU_CONV=auto (default), direct, winograd (oneDNN algorithm
//   policies, onednn::ConvAlgorithm) or im2col, read once when the device is
//   created, picks the F32 path (im2col: for comparisons and benchmarks).
// - bias, activations (also fused: bias_activation_forward), column sums
//   and the SGD update: on the TaskTeam when the tensor is big enough to pay
//   for it; SGD runs the reference arithmetic vectorised for the machine
//   (simd_kernels.hpp).
// - pooling (fast_pool.cpp): vectorised over channels, on the TaskTeam.
// - Adam, BatchNorm (eval), fill, axpby, multiply: OpenMP over the cores when
//   the tensor is big enough to pay for it.
// - The element-wise ones run the reference kernels (or the same arithmetic)
//   on slices, so their results are bit-identical to the reference.
// - BatchNorm + ReLU (batchnorm_relu_*): the same kernels with the ReLU
//   folded into their passes, bit-identical to BatchNorm then ReLU; below
//   the size where the plain BatchNorm falls back to the reference kernels,
//   the fused forms fall back to the unfused sequence too, for the same result.
// - BatchNorm, pooling and the SGD update run kernels compiled per vector
//   width (vector_clones.hpp: AVX-512, AVX2, baseline; the build itself is
//   baseline x86-64), with the same results on every width.
// - BatchNorm training forward / backward (fast_batchnorm.cpp): row-major
//   per-channel statistics in double over fixed row chunks (deterministic,
//   independent of the thread count) on the TaskTeam, cache-blocked two-pass
//   variance merged with Chan's update; equal to the reference up to double
//   rounding.
//
// Threads: convolutions use OpenMP; OpenBLAS is set to one thread (each
// OpenMP thread calls it on its own block), so the thread pools never
// oversubscribe the cores. oneDNN's convolutions run on the same OpenMP
// runtime, with the device's thread count. The dense layers' GEMMs, the
// element-wise passes, pooling and BatchNorm training, short and back to
// back, run on a TaskTeam instead (task_team.hpp: helpers that spin briefly
// between operations, where a passive OpenMP thread would have to be woken
// for each), with oneDNN's sgemm single-threaded per block. JANUS_NUM_THREADS (else OMP_NUM_THREADS,
// else all cores) sets the thread count of both.
//
// Memory: im2col / partial-gradient workspaces are cached in the device and
// only grow, and freed tensor storage is kept in an exact-size cache (up to a
// bound) so the steady state of a training loop allocates nothing from the
// system. Operations lock a mutex around their use of the workspace, so the
// device stays safe to call from several threads (they then take turns).
#pragma once

#include <array>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "cpu/cpu_device.hpp"
#include "cpu/onednn_conv.hpp"
#include "cpu/scoped_resources.hpp"
#include "cpu/task_team.hpp"

namespace janus {


class FastCpuDevice final : public CpuDevice {
 public:
  FastCpuDevice();
  ~FastCpuDevice() override;
  std::string name() const override { return "cpu"; }

  void* allocate(size_t bytes) override;
  void deallocate(void* ptr, size_t bytes) override;

  // Number of OpenMP threads the kernels use.
  int threads() const { return threads_; }
  // Bytes held by the workspace and by the storage cache (for diagnostics).
  size_t workspace_bytes() const { return workspace_bytes_; }
  size_t cached_bytes() const { return cached_bytes_; }
  // Gives the cached storage back to the system.
  void release_cache();
  // The F32 convolution path: "onednn" or "im2col" (JANUS_CPU_CONV).
  const char* conv_path() const { return onednn_ ? "onednn" : "im2col"; }

 protected:
  bool accel_fill(DType dt, Tensor& x, double value) override;
  bool accel_axpby(DType dt, double alpha, const Tensor& x, double beta, Tensor& y) override;
  bool accel_multiply(DType dt, const Tensor& a, const Tensor& b, Tensor& out) override;
  bool accel_gemm(DType dt, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                  double alpha, const Tensor& a, const Tensor& b, double beta,
                  Tensor& c) override;
  bool accel_add_bias(DType dt, int64_t rows, int64_t cols, Tensor& y,
                      const Tensor& bias) override;
  bool accel_sum_rows(DType dt, int64_t rows, int64_t cols, const Tensor& x, double beta,
                      Tensor& out) override;
  bool accel_activation_forward(DType dt, const ActivationFunction& act, int64_t rows, int64_t cols,
                                const Tensor& z, Tensor& y) override;
  bool accel_bias_activation_forward(DType dt, const ActivationFunction& act, int64_t rows, int64_t cols,
                                     Tensor& z, const Tensor& bias, Tensor& y) override;
  bool accel_activation_backward(DType dt, const ActivationFunction& act, int64_t rows, int64_t cols,
                                 const Tensor* saved, const Tensor& dy, Tensor& dz) override;
  std::string accel_conv2d_kernel(DType dt, const ConvGeometry& g) override;
  bool accel_conv2d_forward(DType dt, const ConvGeometry& g, const Tensor& x, const Tensor& w,
                            const Tensor* bias, Tensor& y) override;
  bool accel_conv2d_activation_forward(DType dt, const ActivationFunction& act, const ConvGeometry& g,
                                       const Tensor& x, const Tensor& w, const Tensor* bias,
                                       Tensor& y) override;
  bool accel_conv2d_backward_data(DType dt, const ConvGeometry& g, const Tensor& dy,
                                  const Tensor& w, Tensor& dx) override;
  bool accel_conv2d_backward_filter(DType dt, const ConvGeometry& g, const Tensor& x,
                                    const Tensor& dy, Tensor& dw) override;
  bool accel_pool2d_forward(DType dt, PoolMode mode, const PoolGeometry& g, const Tensor& x,
                            Tensor& y) override;
  bool accel_pool2d_backward(DType dt, PoolMode mode, const PoolGeometry& g, const Tensor& x,
                             const Tensor& dy, Tensor& dx) override;
  bool accel_batchnorm_forward_eval(DType dt, int64_t rows, int64_t C, const Tensor& x,
                                    const Tensor& gamma, const Tensor& beta, const Tensor& mean,
                                    const Tensor& var, double eps, Tensor& y) override;
  bool accel_batchnorm_forward_train(DType dt, int64_t rows, int64_t C, const Tensor& x,
                                     const Tensor& gamma, const Tensor& beta, double momentum,
                                     double eps, Tensor& running_mean, Tensor& running_var,
                                     Tensor& saved_mean, Tensor& saved_invstd, Tensor& y) override;
  bool accel_batchnorm_backward(DType dt, int64_t rows, int64_t C, const Tensor& x,
                                const Tensor& dy, const Tensor& gamma, const Tensor& saved_mean,
                                const Tensor& saved_invstd, Tensor& dx, Tensor& dgamma,
                                Tensor& dbeta) override;
  bool accel_batchnorm_relu_forward_train(DType dt, int64_t rows, int64_t C, const Tensor& x,
                                          const Tensor& gamma, const Tensor& beta, double momentum,
                                          double eps, Tensor& running_mean, Tensor& running_var,
                                          Tensor& saved_mean, Tensor& saved_invstd,
                                          Tensor& y) override;
  bool accel_batchnorm_relu_forward_eval(DType dt, int64_t rows, int64_t C, const Tensor& x,
                                         const Tensor& gamma, const Tensor& beta,
                                         const Tensor& mean, const Tensor& var, double eps,
                                         Tensor& y) override;
  bool accel_batchnorm_relu_backward(DType dt, int64_t rows, int64_t C, const Tensor& x,
                                     const Tensor& y, const Tensor& dy, const Tensor& gamma,
                                     const Tensor& saved_mean, const Tensor& saved_invstd,
                                     Tensor& dx, Tensor& dgamma, Tensor& dbeta) override;
  bool accel_sgd_update(DType dt, Tensor& w, const Tensor& g, Tensor* velocity, double lr,
                        double momentum, double weight_decay, bool nesterov) override;
  bool accel_adam_update(DType dt, Tensor& w, const Tensor& g, Tensor& m, Tensor& v, double lr,
                         double beta1, double beta2, double eps, double weight_decay,
                         bool decoupled, int64_t step) override;

 private:
  // The bodies shared by each BatchNorm hook and its fused BatchNorm+ReLU form.
  bool batchnorm_eval_impl(DType dt, int64_t rows, int64_t C, const Tensor& x, const Tensor& gamma,
                           const Tensor& beta, const Tensor& mean, const Tensor& var, double eps,
                           Tensor& y, bool relu);
  bool batchnorm_train_impl(DType dt, int64_t rows, int64_t C, const Tensor& x,
                            const Tensor& gamma, const Tensor& beta, double momentum, double eps,
                            Tensor& running_mean, Tensor& running_var, Tensor& saved_mean,
                            Tensor& saved_invstd, Tensor& y, bool relu);
  bool batchnorm_backward_impl(DType dt, int64_t rows, int64_t C, const Tensor& x,
                               const Tensor* relu_y, const Tensor& dy, const Tensor& gamma,
                               const Tensor& saved_mean, const Tensor& saved_invstd, Tensor& dx,
                               Tensor& dgamma, Tensor& dbeta);

  // A grow-only scratch buffer of at least `bytes` (64-byte aligned). Callers
  // hold ws_mutex_ while they use it.
  void* workspace(size_t bytes);

  // Precision bf16 (precision.hpp) on F32 tensors: whether the convolutions
  // and GEMMs read bf16 inputs.
  static bool bf16_inputs(DType dt);
  // The input `t` of a convolution pass or GEMM as its kernels read it:
  // t's own data, or in bf16 precision (F32 only) a bf16-rounded copy in
  // bf16_copies_[slot] (0 or 1, one per input). Callers hold ws_mutex_.
  template <class T>
  const T* matmul_input(const Tensor& t, int slot);
  // Whether bf16 precision runs `pass` of geometry g on oneDNN's bf16
  // kernels (JANUS_CPU_BF16, default auto: the rule and its measurements are
  // in fast_device.cpp); they still decline where the CPU lacks bf16
  // instructions, and the pass is then emulated.
  bool native_bf16(onednn::OneDnnConv::Pass pass, const ConvGeometry& g) const;

  int threads_ = 1;
  // Runs the dense layers' GEMMs and element-wise passes (see task_team.hpp).
  fast::TaskTeam team_;
  std::mutex ws_mutex_;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  // oneDNN convolutions (F32), null when JANUS_CPU_CONV=im2col. Used under
  // ws_mutex_ like the workspace.
  std::unique_ptr<onednn::OneDnnConv> onednn_;
  // The bf16-rounded inputs of the emulated bf16 passes (matmul_input).
  std::array<fast::GrowBuffer, 2> bf16_copies_;
  unsigned native_bf16_passes_ = 0;  // JANUS_CPU_BF16: a bit per OneDnnConv::Pass, or auto

  // Exact-size cache of freed storage: bytes -> free blocks.
  std::mutex cache_mutex_;
  std::multimap<size_t, void*> cache_;
  size_t cached_bytes_ = 0;
};

}  // namespace janus
