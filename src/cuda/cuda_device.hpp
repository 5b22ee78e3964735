// CudaDevice: the Device interface on one CUDA GPU (or on the CPU simulator
// when built with JANUS_CUDA=SIM). One stream per device, all work queued in
// order on it; a caching allocator; cuBLAS for GEMM (the tiled GEMM kernel
// under the simulator); convolutions through cuDNN or the implicit-GEMM
// kernels (JANUS_CONV_ALGO=cudnn|implicit_gemm, or set_conv_algo()).
// Tensors are float32, except that the ops device.hpp marks "bf16 storage on
// CUDA" also take bfloat16 activations (storage_dtype, with_storage in
// cuda_device.cpp); float64 only for the device-resident losses and step
// totals. Other dtypes throw janus::Error naming the op and the tensor. GEMMs and convolutions follow the process-wide precision mode
// (include/janus/precision.hpp): in tf32 and bf16 their two inputs are
// rounded to the mode's type, products are summed in float32 and the output
// is float32, or with bf16 storage that result rounded once (how each path
// does it: cuda_device.cpp, "matrix products").
#pragma once

#include "cuda/cuda_compat.hpp"

#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>

#include "cuda/caching_allocator.hpp"
#include "cuda/conv_cudnn.hpp"
#include "cuda/conv_cudnn_filters.hpp"
#include "cuda/kernels.hpp"
#include "cuda/pinned_staging.hpp"
#include "cuda/step_graph.hpp"
#include "janus/device.hpp"
#include "janus/precision.hpp"

namespace janus::cuda {

enum class ConvAlgo { CuDNN, ImplicitGemm };

const char* conv_algo_name(ConvAlgo a);

class CudaDevice final : public Device {
 public:
  explicit CudaDevice(int index);
  ~CudaDevice() override;
  CudaDevice(const CudaDevice&) = delete;
  CudaDevice& operator=(const CudaDevice&) = delete;

  std::string name() const override;
  DeviceKind kind() const override { return DeviceKind::CUDA; }
  bool simulated() const override;

  void* allocate(size_t bytes) override;
  void deallocate(void* ptr, size_t bytes) override;
  void copy_to_device(void* dst, const void* host_src, size_t bytes) override;
  void copy_to_host(void* host_dst, const void* src, size_t bytes) override;
  void copy_on_device(void* dst, const void* src, size_t bytes) override;
  void synchronize() override;
  // Records training steps as CUDA graphs (step_graph.hpp).
  StepCapture* step_capture() override { return step_graph_.get(); }

  void fill(Tensor& x, double value) override;
  void axpby(double alpha, const Tensor& x, double beta, Tensor& y) override;
  void multiply(const Tensor& a, const Tensor& b, Tensor& out) override;
  void gemm(bool trans_a, bool trans_b, double alpha, const Tensor& a, const Tensor& b, double beta,
            Tensor& c) override;
  void add_bias(Tensor& y, const Tensor& bias) override;
  void sum_rows(const Tensor& x, double beta, Tensor& out) override;
  double sum(const Tensor& x) override;

  void activation_forward(const ActivationFunction& act, const Tensor& z, Tensor& y) override;
  void activation_backward(const ActivationFunction& act, const Tensor& z, const Tensor& y, const Tensor& dy,
                           Tensor& dz) override;

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

  void conv2d_forward(const ConvGeometry& g, const Tensor& x, const Tensor& w, const Tensor& bias,
                      Tensor& y) override;
  std::string conv2d_kernel(const ConvGeometry& g, DType dt) override;
  void conv2d_backward_data(const ConvGeometry& g, const Tensor& dy, const Tensor& w, Tensor& dx) override;
  void conv2d_backward_filter(const ConvGeometry& g, const Tensor& x, const Tensor& dy, Tensor& dw) override;

  void pool2d_forward(PoolMode mode, const PoolGeometry& g, const Tensor& x, Tensor& y) override;
  void pool2d_backward(PoolMode mode, const PoolGeometry& g, const Tensor& x, const Tensor& dy,
                       Tensor& dx) override;
  // Keeps each window's argmax (a float32 tensor of y's shape holding the
  // window-local position i*KW + j of the maximum), so the backward is one
  // gather launch instead of a search and a gather.
  Tensor max_pool2d_forward_train(const PoolGeometry& g, const Tensor& x, Tensor& y) override;
  void max_pool2d_backward_argmax(const PoolGeometry& g, const Tensor& argmax, const Tensor& dy,
                                  Tensor& dx) override;

  void batchnorm_forward_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, double momentum,
                               double eps, Tensor& running_mean, Tensor& running_var, Tensor& saved_mean,
                               Tensor& saved_invstd, Tensor& y) override;
  void batchnorm_forward_eval(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                              const Tensor& running_mean, const Tensor& running_var, double eps,
                              Tensor& y) override;
  void batchnorm_backward(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& saved_mean,
                          const Tensor& saved_invstd, Tensor& dx, Tensor& dgamma, Tensor& dbeta) override;
  // BatchNorm + ReLU in the same kernels as BatchNorm (batchnorm.cu): no
  // separate ReLU launch, no extra pass over y.
  void batchnorm_relu_forward_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, double momentum,
                                    double eps, Tensor& running_mean, Tensor& running_var, Tensor& saved_mean,
                                    Tensor& saved_invstd, Tensor& y) override;
  void batchnorm_relu_forward_eval(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                   const Tensor& running_mean, const Tensor& running_var, double eps,
                                   Tensor& y) override;
  void batchnorm_relu_backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& gamma,
                               const Tensor& saved_mean, const Tensor& saved_invstd, Tensor& dx, Tensor& dgamma,
                               Tensor& dbeta) override;

  void dropout_forward(const Tensor& x, double p, uint64_t seed, Tensor& mask, Tensor& y) override;

  void sgd_update(Tensor& w, const Tensor& g, Tensor& velocity, double lr, double momentum,
                  double weight_decay, bool nesterov) override;
  void adam_update(Tensor& w, const Tensor& g, Tensor& m, Tensor& v, double lr, double beta1, double beta2,
                   double eps, double weight_decay, bool decoupled, int64_t step) override;
  // All parameters of a step in one kernel launch (optimizer.cu).
  void sgd_update_multi(const std::vector<SgdParamUpdate>& updates, double momentum, bool nesterov) override;
  void adam_update_multi(const std::vector<AdamParamUpdate>& updates, double beta1, double beta2, double eps,
                         bool decoupled, int64_t step) override;

  // ---- CUDA-specific ------------------------------------------------------
  int index() const { return index_; }
  cudaStream_t stream() const { return stream_; }
  CachingAllocator& allocator() { return allocator_; }
  // Convolution path. Under the simulator (no cuDNN) CuDNN falls back to the
  // implicit-GEMM kernels.
  void set_conv_algo(ConvAlgo algo);
  ConvAlgo conv_algo() const { return conv_algo_; }
  // Tests: the cuDNN path on `backend` instead of cuDNN (conv algo set to
  // CuDNN). Under the simulator, which has no cuDNN, this is the only way
  // onto that path: tests/test_cudnn_filters.cpp drives the HWIO <-> KRSC
  // layer (conv_cudnn_filters.hpp) with a stand-in that computes in KRSC.
  void set_cudnn_backend_for_testing(std::unique_ptr<CudnnConv> backend);

 protected:
  // float32 <-> bfloat16 by a conversion kernel (__float2bfloat16_rn / __bfloat162float).
  void convert_kernel(const Tensor& src, Tensor& dst) override;
  void copy_columns_kernel(const Tensor& src, int64_t src_col, Tensor& dst, int64_t dst_col,
                           int64_t width) override;

 private:
  // A device buffer from the caching allocator, returned at scope exit. Its
  // address is one the recorded work uses (note_recorded).
  class Scratch {
   public:
    Scratch(CudaDevice& d, size_t bytes) : d_(d), p_(d.allocator_.allocate(bytes)) { d.note_recorded(p_); }
    ~Scratch() { d_.allocator_.deallocate(p_); }
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
    template <class T>
    T* as() const { return static_cast<T*>(p_); }

   private:
    CudaDevice& d_;
    void* p_;
  };

  // The input of a convolution pass in the mode's matmul input type: the
  // tensor itself in fp32, else a float32 copy rounded to bf16 or TF32 (so
  // that cuDNN and the implicit-GEMM kernel multiply the same exact values).
  class MatmulInput {
   public:
    MatmulInput(CudaDevice& d, const float* x, int64_t n, MathType math);
    const float* get() const { return p_; }

   private:
    std::unique_ptr<Scratch> copy_;
    const float* p_;
  };

  // The float32 elements of a convolution's activation tensor, for the
  // kernels that read float32 only (the grouped convolutions): the tensor's
  // own, or for bf16 storage an exact float32 copy (read: filled from the
  // tensor; an output: commit() rounds it once into the tensor).
  class F32Activation {
   public:
    F32Activation(CudaDevice& d, const Tensor& t, const char* op, const char* what, bool read);
    float* get() const { return p_; }
    void commit();

   private:
    CudaDevice& d_;
    std::unique_ptr<Scratch> copy_;
    __nv_bfloat16* bf16_ = nullptr;  // the tensor's elements when it is bf16
    int64_t n_ = 0;
    float* p_ = nullptr;
  };

  // The input type of matrix products now (the precision table's Matmul row).
  static MathType matmul_math();
  // The elements of tensor `what` of `op`, checked (defined, float32, on this
  // device; janus::Error naming op and tensor otherwise) and noted while a
  // step is recorded (note_recorded).
  float* f32(const Tensor& t, const char* op, const char* what) const;
  // The same checks, for an input that must keep its version (Tensor::version):
  // a convolution's weights, whose KRSC copy the cuDNN path keeps per version.
  const float* const_f32(const Tensor& t, const char* op, const char* what) const;
  // The same for a float64 tensor (the device-resident loss and step totals).
  double* f64(const Tensor& t, const char* op, const char* what) const;
  // The activation tensors of an op that takes bf16 storage (device.hpp,
  // "bf16 storage on CUDA"): their one dtype, float32 or bfloat16; a
  // janus::Error naming the op and the tensors for another dtype or a mix.
  // Undefined tensors are skipped here (the accessors refuse them).
  struct Operand {
    const char* name;
    const Tensor* tensor;
  };
  DType storage_dtype(const char* op, std::initializer_list<Operand> activations) const;
  // The elements of such a tensor as its storage type T (float or
  // __nv_bfloat16), checked and noted as by f32().
  template <class T>
  T* storage(const Tensor& t, const char* op, const char* what) const;
  // While a step is recorded as a CUDA graph: a device address the recorded
  // work is given, whatever it holds (tensors of every dtype, scratch
  // buffers, copies' ends); all of them must match for the kept graph to be
  // replayed (StepGraph::note_pointer). Nothing otherwise.
  void note_recorded(const void* p) const;
  // The checks of f32 / const_f32 / f64 for a tensor of `dtype`; its address, noted.
  const void* checked_operand(const Tensor& t, DType dtype, const char* op, const char* what) const;
  // Uploads a multi-tensor update list and calls launch(list on the device, count, blocks).
  void launch_multi_update(std::vector<cuda_kernels::TensorUpdate>& list,
                           const std::function<void(const cuda_kernels::TensorUpdate*, int, int64_t)>& launch);
  // The BatchNorm ops with and without the fused ReLU (relu / relu_output).
  void bn_forward_train(const char* op, bool relu, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                        double momentum, double eps, Tensor& running_mean, Tensor& running_var,
                        Tensor& saved_mean, Tensor& saved_invstd, Tensor& y);
  void bn_forward_eval(const char* op, bool relu, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                       const Tensor& running_mean, const Tensor& running_var, double eps, Tensor& y);
  void bn_backward(const char* op, const Tensor& x, const Tensor* relu_output, const Tensor& dy,
                   const Tensor& gamma, const Tensor& saved_mean, const Tensor& saved_invstd, Tensor& dx,
                   Tensor& dgamma, Tensor& dbeta);
  double fetch_double(const double* device_value);
  // A per-step kernel argument: the value, or, while a step is recorded as a
  // CUDA graph, its slot in the step block (step_graph.hpp).
  template <class T>
  cuda_kernels::StepValue<T> step_value(T v) {
    if (!step_graph_ || !step_graph_->recording()) return {v, nullptr};
    return {v, static_cast<const T*>(step_graph_->stage(&v, sizeof v))};
  }
  // result[0] = count_correct(yhat, y), left on the device.
  void count_correct_on_device(const Tensor& yhat, const Tensor& y, unsigned long long* result);
  bool use_cudnn() const;
  CudnnConvolutions& cudnn();
  // A GEMM operand or result: its elements and their type (float32 or bf16).
  struct GemmOperand {
    void* p;
    DType dtype;
  };
  // Device::gemm on checked row-major operands (cuda_device.cpp, "matrix products").
  void gemm_raw(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const GemmOperand& a,
                const GemmOperand& b, float beta, const GemmOperand& c);

  int index_;
  cudaStream_t stream_ = nullptr;
  CachingAllocator allocator_;
  PinnedStaging uploads_;  // copy_to_device (serialised by upload_mu_)
  std::mutex upload_mu_;
  void* cublas_ = nullptr;  // cublasHandle_t on a real GPU
  void* cublas_workspace_ = nullptr;  // cublasSetWorkspace's (capturable GEMMs)
  size_t cublas_workspace_bytes_ = 0;
  std::unique_ptr<CudnnConvolutions> cudnn_;
  std::mutex cudnn_mu_;
  ConvAlgo conv_algo_;
  std::unique_ptr<StepGraph> step_graph_;  // after allocator_ and uploads_, which it uses
};

}  // namespace janus::cuda
