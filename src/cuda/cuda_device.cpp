// CudaDevice and the four cuda_backend hooks (device_count, device, simulated,
// library_versions) used by the device registry.
#include "cuda/cuda_compat.hpp"

#include "cuda/cuda_device.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <initializer_list>
#include <type_traits>
#include <vector>

#include "core/cuda_backend.hpp"
#include "core/env_settings.hpp"
#include "cuda/cuda_check.hpp"
#include "cuda/device_guard.hpp"
#include "cuda/kernels.hpp"
#include "cuda/precision_kernels.hpp"
#include "janus/error.hpp"

namespace janus::cuda {

namespace k = ::janus::cuda_kernels;

namespace {

cublasHandle_t as_handle(void* h) { return static_cast<cublasHandle_t>(h); }

int64_t rows_of(const Tensor& t) { return t.shape().rows(); }
int64_t cols_of(const Tensor& t) { return t.shape().last(); }

// Calls fn with a null T* for the storage type T of `dtype` (float or
// __nv_bfloat16; storage_dtype has checked it is one of the two), so that fn
// names the type as StorageOf<decltype(tag)>.
template <class Tag>
using StorageOf = std::remove_pointer_t<Tag>;
template <class Fn>
void with_storage(DType dtype, Fn&& fn) {
  if (dtype == DType::BF16)
    fn(static_cast<__nv_bfloat16*>(nullptr));
  else
    fn(static_cast<float*>(nullptr));
}

}  // namespace

const char* conv_algo_name(ConvAlgo a) { return a == ConvAlgo::CuDNN ? "cudnn" : "implicit_gemm"; }

// ---- construction -----------------------------------------------------------

CudaDevice::CudaDevice(int index) : index_(index), allocator_(index) {
  // The stream and the cuBLAS handle belong to the device current at their
  // creation: this one, whatever the calling thread had selected.
  const DeviceGuard guard(index);
  JANUS_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  cublasHandle_t h = nullptr;
  JANUS_CUBLAS_CHECK(cublasCreate(&h));
  cublas_ = h;
  JANUS_CUBLAS_CHECK(cublasSetStream(h, stream_));
  // A workspace of our own (after cublasSetStream, which resets it): without
  // one cuBLAS takes workspace from its default pool, which allocates inside
  // a CUDA graph capture; with one, GEMMs are capturable (cuBLAS's "CUDA
  // Graphs Support"; the simulator refuses the capture otherwise). 32 MiB is
  // cuBLAS's recommendation for Hopper; the simulator uses none of it.
  cublas_workspace_bytes_ = JANUS_SIMULATED ? size_t{1} << 20 : size_t{32} << 20;
  cublas_workspace_ = allocator_.allocate(cublas_workspace_bytes_);
  JANUS_CUBLAS_CHECK(cublasSetWorkspace(h, cublas_workspace_, cublas_workspace_bytes_));
  // Plain FP32 (no TF32 tensor cores) so results agree with the CPU backend;
  // gemm_raw sets the math mode of each product from the precision mode.
  JANUS_CUBLAS_CHECK(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH));
  conv_algo_ = JANUS_SIMULATED ? ConvAlgo::ImplicitGemm : ConvAlgo::CuDNN;
  step_graph_ = std::make_unique<StepGraph>(index_, stream_, allocator_, [this](void* dst, const void* src, size_t bytes) {
    const DeviceGuard g(index_);
    std::lock_guard<std::mutex> lock(upload_mu_);
    uploads_.upload(dst, src, bytes, stream_);
  });
  set_conv_algo(env::choice("JANUS_CONV_ALGO", {{"cudnn", ConvAlgo::CuDNN}, {"implicit_gemm", ConvAlgo::ImplicitGemm}},
                            conv_algo_));
}

CudaDevice::~CudaDevice() {
  // The registry keeps its devices for the whole process (tensors may be freed
  // during static destruction), so this only runs when a test owns one.
  // Handles and the stream are destroyed on their own device (no throwing
  // guard here: a destructor must not throw).
  int previous = index_;
  const bool switched = cudaGetDevice(&previous) == cudaSuccess && previous != index_ &&
                        cudaSetDevice(index_) == cudaSuccess;
  step_graph_.reset();
  if (cublas_) static_cast<void>(cublasDestroy(as_handle(cublas_)));
  if (cublas_workspace_) allocator_.deallocate(cublas_workspace_);
  cudnn_.reset();
  if (stream_) static_cast<void>(cudaStreamDestroy(stream_));
  if (switched) static_cast<void>(cudaSetDevice(previous));
}

std::string CudaDevice::name() const {
  std::string n = "cuda:" + std::to_string(index_);
  if (simulated()) n += " (simulated on the CPU)";
  return n;
}

bool CudaDevice::simulated() const {
#if defined(JANUS_CUDA_SIM)
  return true;
#else
  return false;
#endif
}

void CudaDevice::set_conv_algo(ConvAlgo algo) {
#if defined(JANUS_CUDA_SIM)
  if (algo == ConvAlgo::CuDNN) {
    static bool told = false;
    if (!told)
      std::fprintf(stderr, "janus: cuDNN is not available under the CUDA simulator; "
                           "convolutions use the implicit-GEMM kernels\n");
    told = true;
    algo = ConvAlgo::ImplicitGemm;
  }
#endif
  conv_algo_ = algo;
}

bool CudaDevice::use_cudnn() const {
#if defined(JANUS_CUDA_SIM)
  if (!cudnn_) return false;  // no cuDNN under the simulator, unless a test gave a stand-in
#endif
  return conv_algo_ == ConvAlgo::CuDNN;
}

CudnnConvolutions& CudaDevice::cudnn() {
  std::lock_guard<std::mutex> lock(cudnn_mu_);
#if defined(JANUS_CUDA_SIM)
  JANUS_CHECK(cudnn_ != nullptr, "cuDNN is not available under the CUDA simulator");
#else
  if (!cudnn_) cudnn_ = std::make_unique<CudnnConvolutions>(make_cudnn_conv(stream_, allocator_), allocator_, stream_);
#endif
  return *cudnn_;
}

void CudaDevice::set_cudnn_backend_for_testing(std::unique_ptr<CudnnConv> backend) {
  std::lock_guard<std::mutex> lock(cudnn_mu_);
  cudnn_ = std::make_unique<CudnnConvolutions>(std::move(backend), allocator_, stream_);
  conv_algo_ = ConvAlgo::CuDNN;
}

// ---- helpers ----------------------------------------------------------------

MathType CudaDevice::matmul_math() { return input_math(matmul_precision(), OpClass::Matmul); }

CudaDevice::MatmulInput::MatmulInput(CudaDevice& d, const float* x, int64_t n, MathType math) : p_(x) {
  if (math == MathType::F32 || n == 0) return;
  copy_ = std::make_unique<Scratch>(d, sizeof(float) * static_cast<size_t>(n));
  float* rounded = copy_->as<float>();
  if (math == MathType::BF16) k::round_to_bf16(x, rounded, n, d.stream_);
  else k::round_to_tf32(x, rounded, n, d.stream_);
  p_ = rounded;
}

float* CudaDevice::f32(const Tensor& t, const char* op, const char* what) const {
  checked_operand(t, DType::F32, op, what);
  return t.f32();
}

const float* CudaDevice::const_f32(const Tensor& t, const char* op, const char* what) const {
  return static_cast<const float*>(checked_operand(t, DType::F32, op, what));
}

double* CudaDevice::f64(const Tensor& t, const char* op, const char* what) const {
  checked_operand(t, DType::F64, op, what);
  return t.f64();
}

template <class T>
T* CudaDevice::storage(const Tensor& t, const char* op, const char* what) const {
  constexpr DType dtype = std::is_same<T, float>::value ? DType::F32 : DType::BF16;
  checked_operand(t, dtype, op, what);
  return static_cast<T*>(t.raw());
}

DType CudaDevice::storage_dtype(const char* op, std::initializer_list<Operand> activations) const {
  const Operand* first = nullptr;
  for (const Operand& a : activations) {
    if (!a.tensor->defined()) continue;
    const DType dt = a.tensor->dtype();
    JANUS_CHECK(dt == DType::F32 || dt == DType::BF16, op, " on ", name(), ": tensor '", a.name, "' ",
                a.tensor->shape().str(), " is ", dtype_name(dt), "; CUDA takes float32 or bfloat16 here");
    if (first == nullptr) {
      first = &a;
      continue;
    }
    JANUS_CHECK(dt == first->tensor->dtype(), op, " on ", name(), ": dtype mismatch: '", first->name, "' is ",
                dtype_name(first->tensor->dtype()), " but '", a.name, "' is ", dtype_name(dt),
                " (an op's activation tensors share one dtype)");
  }
  return first ? first->tensor->dtype() : DType::F32;
}

const void* CudaDevice::checked_operand(const Tensor& t, DType dtype, const char* op, const char* what) const {
  JANUS_CHECK(t.defined(), op, " on ", name(), ": tensor '", what, "' is undefined");
  if (dtype == DType::F32)
    JANUS_CHECK(t.dtype() == DType::F32, op, " on ", name(), ": tensor '", what, "' is ", dtype_name(t.dtype()),
                ", but must be float32 here (CUDA takes bfloat16 only as the activations of the element-wise, "
                "pooling, dropout, BatchNorm, softmax-cross-entropy, GEMM, convolution, sum_rows and "
                "copy_columns ops; parameters, statistics, targets, losses and weight gradients are float32)");
  else
    JANUS_CHECK(t.dtype() == dtype, op, " on ", name(), ": tensor '", what, "' must be ", dtype_name(dtype),
                ", but is ", dtype_name(t.dtype()));
  JANUS_CHECK(&t.device() == static_cast<const Device*>(this), op, " on ", name(), ": tensor '", what,
              "' lives on ", t.device().name());
  const void* p = t.const_raw();  // reading must not advance the version
  note_recorded(p);
  return p;
}

void CudaDevice::note_recorded(const void* p) const {
  if (step_graph_ && step_graph_->recording()) step_graph_->note_pointer(p);
}

double CudaDevice::fetch_double(const double* device_value) {
  double v = 0.0;
  copy_to_host(&v, device_value, sizeof v);
  return v;
}

#define JANUS_SAME_NUMEL(op, a, b)                                                                     \
  JANUS_CHECK((a).numel() == (b).numel(), op, " on ", name(), ": ", #a, " ", (a).shape().str(), " and ", \
              #b, " ", (b).shape().str(), " differ in size")

// ---- memory -----------------------------------------------------------------

void* CudaDevice::allocate(size_t bytes) {
  const DeviceGuard guard(index_);
  return allocator_.allocate(bytes);
}

void CudaDevice::deallocate(void* ptr, size_t) { allocator_.deallocate(ptr); }

void CudaDevice::copy_to_device(void* dst, const void* host_src, size_t bytes) {
  const DeviceGuard guard(index_);
  if (bytes == 0) return;
  // While a step is recorded as a CUDA graph, an upload is a per-step value:
  // its bytes go to the step block, written before each replay, and the
  // graph copies them from there (a staging buffer's would be stale).
  if (step_graph_ && step_graph_->recording()) {
    note_recorded(dst);
    JANUS_CUDA_CHECK(cudaMemcpyAsync(dst, step_graph_->stage(host_src, bytes), bytes, cudaMemcpyDeviceToDevice,
                                     stream_));
    return;
  }
  // Through pinned staging buffers: no wait for the stream's earlier work,
  // and the caller may free host_src right away (pinned_staging.hpp).
  std::lock_guard<std::mutex> lock(upload_mu_);
  uploads_.upload(dst, host_src, bytes, stream_);
}

void CudaDevice::copy_to_host(void* host_dst, const void* src, size_t bytes) {
  const DeviceGuard guard(index_);
  if (bytes == 0) return;
  JANUS_CUDA_CHECK(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
  JANUS_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaDevice::copy_on_device(void* dst, const void* src, size_t bytes) {
  const DeviceGuard guard(index_);
  if (bytes == 0 || dst == src) return;
  note_recorded(dst);
  note_recorded(src);
  JANUS_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_));
}

void CudaDevice::synchronize() {
  const DeviceGuard guard(index_);
  JANUS_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

// ---- dtype conversion ---------------------------------------------------------

void CudaDevice::convert_kernel(const Tensor& src, Tensor& dst) {
  const DeviceGuard guard(index_);
  const char* op = "convert";
  if (src.dtype() == DType::F32)  // Device::convert passes only the two pairs
    k::float_to_bf16(f32(src, op, "src"), storage<__nv_bfloat16>(dst, op, "dst"), src.numel(), stream_);
  else
    k::bf16_to_float(storage<__nv_bfloat16>(src, op, "src"), f32(dst, op, "dst"), src.numel(), stream_);
}

// ---- elementwise and BLAS-like ---------------------------------------------

void CudaDevice::fill(Tensor& x, double value) {
  const DeviceGuard guard(index_);
  with_storage(storage_dtype("fill", {{"x", &x}}), [&](auto tag) {
    using T = StorageOf<decltype(tag)>;
    k::fill(storage<T>(x, "fill", "x"), x.numel(), static_cast<float>(value), stream_);
  });
}

void CudaDevice::axpby(double alpha, const Tensor& x, double beta, Tensor& y) {
  const DeviceGuard guard(index_);
  const char* op = "axpby";
  JANUS_SAME_NUMEL(op, x, y);
  with_storage(storage_dtype(op, {{"x", &x}, {"y", &y}}), [&](auto tag) {
    using T = StorageOf<decltype(tag)>;
    k::axpby(static_cast<float>(alpha), storage<T>(x, op, "x"), static_cast<float>(beta), storage<T>(y, op, "y"),
             y.numel(), stream_);
  });
}

void CudaDevice::copy_columns_kernel(const Tensor& src, int64_t src_col, Tensor& dst, int64_t dst_col,
                                     int64_t width) {
  const DeviceGuard guard(index_);
  const int64_t src_cols = src.dim(src.rank() - 1), dst_cols = dst.dim(dst.rank() - 1);
  const char* op = "copy_columns";
  with_storage(storage_dtype(op, {{"src", &src}, {"dst", &dst}}), [&](auto tag) {
    using T = StorageOf<decltype(tag)>;
    k::copy_columns(storage<T>(src, op, "src"), src_cols, src_col, storage<T>(dst, op, "dst"), dst_cols, dst_col,
                    src.numel() / src_cols, width, stream_);
  });
}

void CudaDevice::multiply(const Tensor& a, const Tensor& b, Tensor& out) {
  const DeviceGuard guard(index_);
  const char* op = "multiply";
  JANUS_SAME_NUMEL(op, a, b);
  JANUS_SAME_NUMEL(op, a, out);
  with_storage(storage_dtype(op, {{"a", &a}, {"b", &b}, {"out", &out}}), [&](auto tag) {
    using T = StorageOf<decltype(tag)>;
    k::multiply(storage<T>(a, op, "a"), storage<T>(b, op, "b"), storage<T>(out, op, "out"), out.numel(), stream_);
  });
}

// Matrix products per precision mode (the Matmul row of precision.hpp's table):
//   fp32  cublasSgemm with CUBLAS_DEFAULT_MATH; cuDNN with CUDNN_FMA_MATH; the
//         implicit-GEMM kernel as it is.
//   tf32  cublasSgemm with CUBLAS_TF32_TENSOR_OP_MATH (the GPU rounds the
//         operands to TF32 itself); convolutions read copies of their inputs
//         rounded to TF32 as cvt.rna.tf32.f32 does, on cuDNN with
//         CUDNN_TENSOR_OP_MATH or on the implicit-GEMM kernel (exact products
//         of those values in float32).
//   bf16  cublasGemmEx on bf16 copies of A and B (CUDA_R_16BF, written by a
//         conversion kernel, round to nearest even) with float32 C and
//         CUBLAS_COMPUTE_32F; convolutions read float32 copies of their inputs
//         rounded to bf16, on cuDNN with CUDNN_TENSOR_OP_MATH (TF32 tensor
//         cores read bf16 values exactly; conv_cudnn.hpp says why not cuDNN's
//         bf16 configurations) or on the implicit-GEMM kernel (its float32
//         products of bf16 values are exact: 8 + 8 significant bits).
// In every mode the products are summed in float32; the output is float32,
// or, with bf16 storage (device.hpp), that float32 result rounded once:
//   gemm  bf16 mode: cublasGemmEx reads bf16 operands as they are (float32
//         ones through a rounded copy, as above) and writes C as CUDA_R_16BF
//         (alpha * sum + beta * C in float32, rounded once) or CUDA_R_32F.
//         fp32 / tf32: cuBLAS has no bf16 x float32 product, so bf16
//         operands are widened exactly into float32 copies and cublasSgemm
//         runs as above, into a float32 copy of a bf16 C (holding C when
//         beta != 0) that a conversion kernel then rounds into C.
//   conv  never cuDNN (the comment above conv2d_kernel says why): the
//         implicit-GEMM kernel in every mode, loading bf16 tiles directly and
//         rounding each float32 result once as it stores it, or for groups > 1
//         the grouped kernels on exact float32 copies.
void CudaDevice::gemm_raw(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const GemmOperand& a,
                          const GemmOperand& b, float beta, const GemmOperand& c) {
  const DeviceGuard guard(index_);
  if (M == 0 || N == 0) return;
  // Row-major C (M x N) is column-major C^T (N x M). C^T = op(B)^T op(A)^T,
  // so cuBLAS gets B first and A second with the same transpose flags: a
  // row-major (r x c) matrix is read as its column-major transpose with
  // leading dimension c, which is exactly op(.)^T when the flag is N.
  const int lda = trans_a ? M : K;  // A stored (M,K) or (K,M) row-major
  const int ldb = trans_b ? K : N;  // B stored (K,N) or (N,K) row-major
  const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasHandle_t h = as_handle(cublas_);
  const MathType math = matmul_math();
  const int64_t a_count = int64_t{M} * K, b_count = int64_t{K} * N, c_count = int64_t{M} * N;
  // Copies converted by a kernel, kept until the product is queued.
  std::vector<std::unique_ptr<Scratch>> copies;
  auto scratch = [&](int64_t n, DType dt) -> void* {
    const size_t element = dt == DType::BF16 ? sizeof(__nv_bfloat16) : sizeof(float);
    copies.push_back(std::make_unique<Scratch>(*this, element * static_cast<size_t>(std::max<int64_t>(n, 1))));
    return copies.back()->as<void>();
  };
  auto converted = [&](const GemmOperand& x, int64_t n, DType to) -> void* {
    if (x.dtype == to) return x.p;
    void* copy = scratch(n, to);
    if (to == DType::BF16)
      k::float_to_bf16(static_cast<const float*>(x.p), static_cast<__nv_bfloat16*>(copy), n, stream_);
    else
      k::bf16_to_float(static_cast<const __nv_bfloat16*>(x.p), static_cast<float*>(copy), n, stream_);
    return copy;
  };
  if (math == MathType::BF16) {
    const void* a16 = converted(a, a_count, DType::BF16);
    const void* b16 = converted(b, b_count, DType::BF16);
    JANUS_CUBLAS_CHECK(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH));
    JANUS_CUBLAS_CHECK(cublasGemmEx(h, op_b, op_a, N, M, K, &alpha, b16, CUDA_R_16BF, ldb, a16, CUDA_R_16BF, lda,
                                    &beta, c.p, c.dtype == DType::BF16 ? CUDA_R_16BF : CUDA_R_32F, N,
                                    CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    return;
  }
  const float* af = static_cast<const float*>(converted(a, a_count, DType::F32));
  const float* bf = static_cast<const float*>(converted(b, b_count, DType::F32));
  // beta == 0: cuBLAS does not read C, so a bf16 C need not be widened.
  float* cf = static_cast<float*>(beta == 0.0f && c.dtype == DType::BF16 ? scratch(c_count, DType::F32)
                                                                         : converted(c, c_count, DType::F32));
  JANUS_CUBLAS_CHECK(cublasSetMathMode(h, math == MathType::TF32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  JANUS_CUBLAS_CHECK(cublasSgemm(h, op_b, op_a, N, M, K, &alpha, bf, ldb, af, lda, &beta, cf, N));
  if (c.dtype == DType::BF16) k::float_to_bf16(cf, static_cast<__nv_bfloat16*>(c.p), c_count, stream_);
}

void CudaDevice::gemm(bool trans_a, bool trans_b, double alpha, const Tensor& a, const Tensor& b, double beta,
                      Tensor& c) {
  const DeviceGuard guard(index_);
  const int64_t ar = rows_of(a), ac = cols_of(a), br = rows_of(b), bc = cols_of(b);
  const int64_t M = trans_a ? ac : ar, K = trans_a ? ar : ac;
  const int64_t Kb = trans_b ? bc : br, N = trans_b ? br : bc;
  JANUS_CHECK(K == Kb && rows_of(c) == M && cols_of(c) == N, "gemm on ", name(), ": op(A) ", M, "x", K,
              " times op(B) ", Kb, "x", N, " does not fit C ", c.shape().str(), " (A ", a.shape().str(),
              trans_a ? "^T" : "", ", B ", b.shape().str(), trans_b ? "^T" : "", ")");
  JANUS_CHECK(M < (int64_t{1} << 31) && N < (int64_t{1} << 31) && K < (int64_t{1} << 31),
              "gemm on ", name(), ": matrix too large for 32-bit BLAS indexing");
  // Each of A, B and C float32 or bf16 on its own (device.hpp: the dense
  // layer multiplies bf16 activations by float32 master weights).
  auto operand = [&](const Tensor& t, const char* what) {
    storage_dtype("gemm", {{what, &t}});  // float32 or bfloat16, else a clear error
    const DType dt = t.dtype();
    return GemmOperand{dt == DType::BF16 ? static_cast<void*>(storage<__nv_bfloat16>(t, "gemm", what))
                                         : static_cast<void*>(f32(t, "gemm", what)),
                       dt};
  };
  gemm_raw(trans_a, trans_b, static_cast<int>(M), static_cast<int>(N), static_cast<int>(K),
           static_cast<float>(alpha), operand(a, "a"), operand(b, "b"), static_cast<float>(beta), operand(c, "c"));
}

void CudaDevice::add_bias(Tensor& y, const Tensor& bias) {
  const DeviceGuard guard(index_);
  JANUS_CHECK(bias.numel() == cols_of(y), "add_bias on ", name(), ": bias ", bias.shape().str(),
              " does not match the last axis of y ", y.shape().str());
  with_storage(storage_dtype("add_bias", {{"y", &y}}), [&](auto tag) {
    using T = StorageOf<decltype(tag)>;
    k::add_bias(storage<T>(y, "add_bias", "y"), f32(bias, "add_bias", "bias"), rows_of(y), cols_of(y), stream_);
  });
}

void CudaDevice::sum_rows(const Tensor& x, double beta, Tensor& out) {
  const DeviceGuard guard(index_);
  JANUS_CHECK(out.numel() == cols_of(x), "sum_rows on ", name(), ": out ", out.shape().str(),
              " does not match the last axis of x ", x.shape().str());
  Scratch partials(*this, sizeof(double) * static_cast<size_t>(std::max<int64_t>(1, k::col_partial_count(rows_of(x), cols_of(x)))));
  const char* op = "sum_rows";
  with_storage(storage_dtype(op, {{"x", &x}}), [&](auto tag) {  // out (a bias gradient) stays float32
    using T = StorageOf<decltype(tag)>;
    k::sum_rows(storage<T>(x, op, "x"), rows_of(x), cols_of(x), static_cast<float>(beta), f32(out, op, "out"),
                partials.as<double>(), stream_);
  });
}

double CudaDevice::sum(const Tensor& x) {
  const DeviceGuard guard(index_);
  const float* px = f32(x, "sum", "x");
  Scratch partials(*this, sizeof(double) * (static_cast<size_t>(k::sum_partial_count(x.numel())) + 1));
  double* result = partials.as<double>() + k::sum_partial_count(x.numel());
  k::sum(px, x.numel(), partials.as<double>(), result, stream_);
  return fetch_double(result);
}

// ---- activations ------------------------------------------------------------

void CudaDevice::activation_forward(const ActivationFunction& act, const Tensor& z, Tensor& y) {
  const DeviceGuard guard(index_);
  const char* op = "activation_forward";
  JANUS_SAME_NUMEL(op, z, y);
  const DType dt = storage_dtype(op, {{"z", &z}, {"y", &y}});
  if (act.kind == ActivationKind::SoftMax) {  // float32 only
    k::softmax_forward(f32(z, op, "z"), f32(y, op, "y"), rows_of(z), cols_of(z), stream_);
    return;
  }
  with_storage(dt, [&](auto tag) {
    using T = StorageOf<decltype(tag)>;
    k::activation_forward(act, storage<T>(z, op, "z"), storage<T>(y, op, "y"), z.numel(), stream_);
  });
}

void CudaDevice::activation_backward(const ActivationFunction& act, const Tensor& z, const Tensor& y,
                                     const Tensor& dy, Tensor& dz) {
  const DeviceGuard guard(index_);
  const char* op = "activation_backward";
  JANUS_SAME_NUMEL(op, dy, dz);
  // Each activation reads only what its entry says (the other may be undefined).
  const ActivationReads reads = activation_reads(act.kind);
  const Tensor* saved = nullptr;
  const char* saved_name = reads == ActivationReads::Input ? "z" : "y";
  if (reads == ActivationReads::Input) saved = &z;
  if (reads == ActivationReads::Output) saved = &y;
  const Tensor none;
  const DType dt = storage_dtype(op, {{saved_name, saved ? saved : &none}, {"dy", &dy}, {"dz", &dz}});
  with_storage(act.kind == ActivationKind::SoftMax ? DType::F32 : dt, [&](auto tag) {  // SoftMax: float32 only
    using T = StorageOf<decltype(tag)>;
    const T* ps = saved ? storage<T>(*saved, op, saved_name) : nullptr;  // (checks it is defined)
    if (saved != nullptr) JANUS_SAME_NUMEL(op, *saved, dz);
    const T* pdy = storage<T>(dy, op, "dy");
    T* pdz = storage<T>(dz, op, "dz");
    if constexpr (std::is_same<T, float>::value) {
      if (act.kind == ActivationKind::SoftMax) {
        k::softmax_backward(ps, pdy, pdz, rows_of(dz), cols_of(dz), stream_);
        return;
      }
    }
    k::activation_backward(act, ps, pdy, pdz, dz.numel(), stream_);
  });
}

// ---- losses -----------------------------------------------------------------

namespace {
int64_t batch_of(const Tensor& t) { return t.rank() == 0 ? 1 : t.dim(0); }
}  // namespace

double CudaDevice::cross_entropy_forward(const Tensor& yhat, const Tensor& y) {
  const DeviceGuard guard(index_);
  JANUS_SAME_NUMEL("cross_entropy_forward", yhat, y);
  const int64_t n = yhat.numel();
  const int np = k::sum_partial_count(n);
  Scratch terms(*this, sizeof(double) * static_cast<size_t>(std::max<int64_t>(n, 1)));
  Scratch partials(*this, sizeof(double) * (static_cast<size_t>(np) + 1));
  k::cross_entropy_terms(f32(yhat, "cross_entropy_forward", "yhat"), f32(y, "cross_entropy_forward", "y"),
                         terms.as<double>(), n, stream_);
  k::sum_doubles(terms.as<double>(), n, partials.as<double>(), partials.as<double>() + np, stream_);
  return fetch_double(partials.as<double>() + np) / static_cast<double>(batch_of(yhat));
}

void CudaDevice::cross_entropy_backward(const Tensor& yhat, const Tensor& y, Tensor& dyhat) {
  const DeviceGuard guard(index_);
  JANUS_SAME_NUMEL("cross_entropy_backward", yhat, y);
  JANUS_SAME_NUMEL("cross_entropy_backward", yhat, dyhat);
  k::cross_entropy_backward(f32(yhat, "cross_entropy_backward", "yhat"), f32(y, "cross_entropy_backward", "y"),
                            f32(dyhat, "cross_entropy_backward", "dyhat"),
                            static_cast<float>(1.0 / static_cast<double>(batch_of(yhat))), yhat.numel(), stream_);
}

double CudaDevice::l2_forward(const Tensor& yhat, const Tensor& y) {
  const DeviceGuard guard(index_);
  Tensor loss = Tensor::empty(Shape{1}, *this, DType::F64);
  l2_forward_into(yhat, y, loss);
  return fetch_double(loss.f64());
}

void CudaDevice::l2_forward_into(const Tensor& yhat, const Tensor& y, Tensor& loss) {
  const DeviceGuard guard(index_);
  JANUS_SAME_NUMEL("l2_forward", yhat, y);
  check_f64_output("l2_forward_into", "loss", loss, 1);
  const int64_t n = yhat.numel();
  const int np = k::sum_partial_count(n);
  Scratch terms(*this, sizeof(double) * static_cast<size_t>(std::max<int64_t>(n, 1)));
  Scratch partials(*this, sizeof(double) * (static_cast<size_t>(np) + 1));
  k::l2_terms(f32(yhat, "l2_forward", "yhat"), f32(y, "l2_forward", "y"), terms.as<double>(), n, stream_);
  k::sum_doubles(terms.as<double>(), n, partials.as<double>(), partials.as<double>() + np, stream_);
  k::divide_scalar(partials.as<double>() + np, static_cast<double>(batch_of(yhat)),
                   f64(loss, "l2_forward_into", "loss"), stream_);
}

void CudaDevice::l2_backward(const Tensor& yhat, const Tensor& y, Tensor& dyhat) {
  const DeviceGuard guard(index_);
  JANUS_SAME_NUMEL("l2_backward", yhat, y);
  JANUS_SAME_NUMEL("l2_backward", yhat, dyhat);
  k::l2_backward(f32(yhat, "l2_backward", "yhat"), f32(y, "l2_backward", "y"), f32(dyhat, "l2_backward", "dyhat"),
                 static_cast<float>(2.0 / static_cast<double>(batch_of(yhat))), yhat.numel(), stream_);
}

double CudaDevice::softmax_cross_entropy(const Tensor& z, const Tensor& y, Tensor* dz) {
  const DeviceGuard guard(index_);
  Tensor loss = Tensor::empty(Shape{1}, *this, DType::F64);
  softmax_cross_entropy_into(z, y, dz, loss);
  return fetch_double(loss.f64());
}

void CudaDevice::softmax_cross_entropy_into(const Tensor& z, const Tensor& y, Tensor* dz, Tensor& loss) {
  const DeviceGuard guard(index_);
  JANUS_SAME_NUMEL("softmax_cross_entropy", z, y);
  if (dz) JANUS_SAME_NUMEL("softmax_cross_entropy", z, *dz);
  check_f64_output("softmax_cross_entropy_into", "loss", loss, 1);
  const int64_t rows = rows_of(z), cols = cols_of(z);
  const int np = k::sum_partial_count(rows);
  Scratch row_loss(*this, sizeof(double) * static_cast<size_t>(std::max<int64_t>(rows, 1)));
  Scratch partials(*this, sizeof(double) * (static_cast<size_t>(np) + 1));
  const double m = static_cast<double>(batch_of(z));
  const char* op = "softmax_cross_entropy";
  const Tensor none;
  with_storage(storage_dtype(op, {{"z", &z}, {"dz", dz ? dz : &none}}), [&](auto tag) {
    using T = StorageOf<decltype(tag)>;
    k::softmax_cross_entropy(storage<T>(z, op, "z"), f32(y, op, "y"), dz ? storage<T>(*dz, op, "dz") : nullptr,
                             static_cast<float>(1.0 / m), row_loss.as<double>(), rows, cols, stream_);
  });
  k::sum_doubles(row_loss.as<double>(), rows, partials.as<double>(), partials.as<double>() + np, stream_);
  k::divide_scalar(partials.as<double>() + np, m, f64(loss, "softmax_cross_entropy_into", "loss"), stream_);
}

void CudaDevice::count_correct_on_device(const Tensor& yhat, const Tensor& y, unsigned long long* result) {
  JANUS_SAME_NUMEL("count_correct", yhat, y);
  k::count_correct(f32(yhat, "count_correct", "yhat"), f32(y, "count_correct", "y"), rows_of(yhat), cols_of(yhat),
                   result, stream_);
}

int64_t CudaDevice::count_correct(const Tensor& yhat, const Tensor& y) {
  const DeviceGuard guard(index_);
  Scratch result(*this, sizeof(unsigned long long));
  count_correct_on_device(yhat, y, result.as<unsigned long long>());
  unsigned long long v = 0;
  copy_to_host(&v, result.as<unsigned long long>(), sizeof v);
  return static_cast<int64_t>(v);
}

void CudaDevice::count_correct_into(const Tensor& yhat, const Tensor& y, Tensor& totals) {
  const DeviceGuard guard(index_);
  check_f64_output("count_correct_into", "totals", totals, StepTotal::Count);
  Scratch result(*this, sizeof(unsigned long long));
  count_correct_on_device(yhat, y, result.as<unsigned long long>());
  k::add_count(result.as<unsigned long long>(), f64(totals, "count_correct_into", "totals") + StepTotal::Correct,
               stream_);
}

void CudaDevice::add_loss_into(const Tensor& loss, double weight, double tag, Tensor& totals) {
  const DeviceGuard guard(index_);
  check_f64_output("add_loss_into", "loss", loss, 1);
  check_f64_output("add_loss_into", "totals", totals, StepTotal::Count);
  const char* op = "add_loss_into";
  k::add_loss(f64(loss, op, "loss"), step_value(weight), step_value(tag), f64(totals, op, "totals"), stream_);
}

// ---- convolution ------------------------------------------------------------

namespace {
void check_conv(const Device& d, const char* op, const ConvGeometry& g, const Tensor& x, const Tensor& w,
                const Tensor& y) {
  check_conv_geometry(detail::concat(op, " on ", d.name()), g);  // the contract every backend shares
  JANUS_CHECK(x.numel() == int64_t{g.N} * g.H * g.W * g.C, op, " on ", d.name(), ": x ", x.shape().str(),
              " is not (N, H, W, C) = (", g.N, ", ", g.H, ", ", g.W, ", ", g.C, ")");
  JANUS_CHECK(w.numel() == int64_t{g.KH} * g.KW * g.group_channels() * g.F, op, " on ", d.name(), ": w ",
              w.shape().str(), " is not (KH, KW, C/groups, F) = (", g.KH, ", ", g.KW, ", ", g.group_channels(), ", ",
              g.F, ")");
  JANUS_CHECK(y.numel() == int64_t{g.N} * g.OH * g.OW * g.F, op, " on ", d.name(), ": y ", y.shape().str(),
              " is not (N, OH, OW, F) = (", g.N, ", ", g.OH, ", ", g.OW, ", ", g.F, ")");
}
}  // namespace

// bf16 storage (device.hpp): cuDNN's legacy API runs bf16 tensors only as
// its BFLOAT16_CONFIG, x, w and y all bf16: no float32 master weights (fp32
// mode would multiply rounded weights), no float32 filter gradient, and the
// bias, added after cuDNN, would round the output a second time. So bf16
// storage always runs on Janus's kernels, also where cuDNN is selected: the
// implicit-GEMM kernel (groups == 1), which loads bf16 tiles directly and
// rounds each float32 result once as it stores it, or the grouped kernels
// (groups > 1) on exact float32 copies (F32Activation). On a cuDNN device a
// bf16 result is therefore the rounding of a float32 result whose sums may be
// in another order than cuDNN's float32 one (tests/test_bf16_storage.cpp).
std::string CudaDevice::conv2d_kernel(const ConvGeometry& g, DType dt) {
  // Janus's own kernels: implicit GEMM, or for groups > 1 the grouped direct
  // kernels (conv_grouped.cu), which read operands rounded as cuDNN's are.
  const bool cudnn = use_cudnn() && dt != DType::BF16;
  const bool grouped = !cudnn && g.groups > 1;
  std::string path = cudnn ? "cuDNN" : grouped ? "Janus grouped direct" : "Janus implicit GEMM";
  switch (matmul_math()) {
    case MathType::F32: break;
    case MathType::TF32:
      path += cudnn     ? " tf32 (inputs rounded to TF32, tensor-op math)"
              : grouped ? " tf32 (inputs rounded to TF32, float32 FMA)"
                        : " tf32 (TF32 tensor cores, WMMA)";
      break;
    case MathType::BF16:
      path += cudnn     ? " bf16 (inputs rounded to bf16, tensor-op math)"
              : grouped ? " bf16 (inputs rounded to bf16, float32 FMA)"
                        : " bf16 (bf16 tensor cores, WMMA)";
      break;
  }
  if (dt == DType::BF16) path += grouped ? ", bf16 storage (float32 copies)" : ", bf16 storage";
  return path;
}

CudaDevice::F32Activation::F32Activation(CudaDevice& d, const Tensor& t, const char* op, const char* what,
                                         bool input)
    : d_(d) {
  if (t.dtype() != DType::BF16) {
    p_ = d.f32(t, op, what);
    return;
  }
  bf16_ = d.storage<__nv_bfloat16>(t, op, what);
  n_ = t.numel();
  copy_ = std::make_unique<Scratch>(d, sizeof(float) * static_cast<size_t>(std::max<int64_t>(n_, 1)));
  p_ = copy_->as<float>();
  if (input) k::bf16_to_float(bf16_, p_, n_, d.stream_);
}

void CudaDevice::F32Activation::commit() {
  if (bf16_ != nullptr) k::float_to_bf16(p_, bf16_, n_, d_.stream_);
}

void CudaDevice::conv2d_forward(const ConvGeometry& g, const Tensor& x, const Tensor& w, const Tensor& bias,
                                Tensor& y) {
  const DeviceGuard guard(index_);
  const char* op = "conv2d_forward";
  check_conv(*this, op, g, x, w, y);
  const DType dt = storage_dtype(op, {{"x", &x}, {"y", &y}});
  const float* pw = const_f32(w, op, "w");  // keeps w's version: the cuDNN path caches its KRSC copy
  const float* pb = nullptr;
  if (bias.defined()) {
    JANUS_CHECK(bias.numel() == g.F, "conv2d_forward on ", name(), ": bias ", bias.shape().str(), " is not (", g.F,
                ")");
    pb = f32(bias, op, "bias");
  }
  // cuDNN reads operands rounded by a conversion kernel; the implicit-GEMM
  // kernel rounds them itself while it loads its tiles (no copies).
  const MathType math = matmul_math();
  if (use_cudnn() && dt == DType::F32) {  // (the KRSC copy of w is rounded with the copy, conv_cudnn_filters.hpp)
    float* py = f32(y, op, "y");
    const MatmulInput xm(*this, f32(x, op, "x"), x.numel(), math);
    if (cudnn().forward(g, xm.get(), w, py, math)) {
      if (pb) k::add_bias(py, pb, int64_t{g.N} * g.OH * g.OW, g.F, stream_);
      return;
    }
  }
  if (g.groups > 1) {  // Janus's grouped kernels: asked for, or no cuDNN algorithm runs this geometry
    // (their products are of operands rounded as cuDNN's are, summed in float32)
    F32Activation xf(*this, x, op, "x", true), yf(*this, y, op, "y", false);
    const MatmulInput xm(*this, xf.get(), x.numel(), math), wm(*this, pw, w.numel(), math);
    k::conv2d_forward_grouped(g, xm.get(), wm.get(), pb, yf.get(), stream_);
    yf.commit();
    return;
  }
  // implicit GEMM: asked for, bf16 storage, or no cuDNN algorithm runs this geometry
  with_storage(dt, [&](auto tag) {
    using T = StorageOf<decltype(tag)>;
    k::conv2d_forward_igemm(g, storage<T>(x, op, "x"), pw, pb, storage<T>(y, op, "y"), math, stream_);
  });
}

void CudaDevice::conv2d_backward_data(const ConvGeometry& g, const Tensor& dy, const Tensor& w, Tensor& dx) {
  const DeviceGuard guard(index_);
  const char* op = "conv2d_backward_data";
  check_conv(*this, op, g, dx, w, dy);
  const DType dt = storage_dtype(op, {{"dy", &dy}, {"dx", &dx}});
  const float* pw = const_f32(w, op, "w");  // keeps w's version (as forward)
  const MathType math = matmul_math();
  if (use_cudnn() && dt == DType::F32) {  // (bf16 storage: Janus's kernels, above conv2d_kernel)
    const MatmulInput dym(*this, f32(dy, op, "dy"), dy.numel(), math);
    if (cudnn().backward_data(g, dym.get(), w, f32(dx, op, "dx"), math)) return;
  }
  if (g.groups > 1) {
    F32Activation dyf(*this, dy, op, "dy", true), dxf(*this, dx, op, "dx", false);
    const MatmulInput dym(*this, dyf.get(), dy.numel(), math), wm(*this, pw, w.numel(), math);
    k::conv2d_backward_data_grouped(g, dym.get(), wm.get(), dxf.get(), stream_);
    dxf.commit();
    return;
  }
  with_storage(dt, [&](auto tag) {
    using T = StorageOf<decltype(tag)>;
    k::conv2d_backward_data_igemm(g, storage<T>(dy, op, "dy"), pw, storage<T>(dx, op, "dx"), math, stream_);
  });
}

void CudaDevice::conv2d_backward_filter(const ConvGeometry& g, const Tensor& x, const Tensor& dy, Tensor& dw) {
  const DeviceGuard guard(index_);
  const char* op = "conv2d_backward_filter";
  check_conv(*this, op, g, x, dw, dy);
  const DType dt = storage_dtype(op, {{"x", &x}, {"dy", &dy}});  // dw (a weight gradient) stays float32
  float* pdw = f32(dw, op, "dw");
  const MathType math = matmul_math();
  if (use_cudnn() && dt == DType::F32) {  // (bf16 storage: Janus's kernels, above conv2d_kernel)
    const MatmulInput xm(*this, f32(x, op, "x"), x.numel(), math), dym(*this, f32(dy, op, "dy"), dy.numel(), math);
    if (cudnn().backward_filter(g, xm.get(), dym.get(), pdw, math)) return;
  }
  if (g.groups > 1) {
    F32Activation xf(*this, x, op, "x", true), dyf(*this, dy, op, "dy", true);
    const MatmulInput xm(*this, xf.get(), x.numel(), math), dym(*this, dyf.get(), dy.numel(), math);
    k::conv2d_backward_filter_grouped(g, xm.get(), dym.get(), pdw, stream_);
    return;
  }
  const int64_t ws = k::conv2d_backward_filter_workspace(g);
  Scratch workspace(*this, sizeof(float) * static_cast<size_t>(ws));
  with_storage(dt, [&](auto tag) {
    using T = StorageOf<decltype(tag)>;
    k::conv2d_backward_filter_igemm(g, storage<T>(x, op, "x"), storage<T>(dy, op, "dy"), pdw,
                                    workspace.as<float>(), math, stream_);
  });
}

// ---- pooling ----------------------------------------------------------------

namespace {
void check_pool(const Device& d, const char* op, const PoolGeometry& g, const Tensor& x, const Tensor& y) {
  JANUS_CHECK(g.N > 0 && g.H > 0 && g.W > 0 && g.C > 0 && g.KH > 0 && g.KW > 0 && g.stride_h > 0 && g.stride_w > 0 &&
                  g.pad_h >= 0 && g.pad_w >= 0 && g.OH > 0 && g.OW > 0,
              op, " on ", d.name(), ": invalid pooling geometry");
  JANUS_CHECK(x.numel() == int64_t{g.N} * g.H * g.W * g.C, op, " on ", d.name(), ": x ", x.shape().str(),
              " is not (N, H, W, C) = (", g.N, ", ", g.H, ", ", g.W, ", ", g.C, ")");
  JANUS_CHECK(y.numel() == int64_t{g.N} * g.OH * g.OW * g.C, op, " on ", d.name(), ": y ", y.shape().str(),
              " is not (N, OH, OW, C) = (", g.N, ", ", g.OH, ", ", g.OW, ", ", g.C, ")");
}
}  // namespace

void CudaDevice::pool2d_forward(PoolMode mode, const PoolGeometry& g, const Tensor& x, Tensor& y) {
  const DeviceGuard guard(index_);
  const char* op = "pool2d_forward";
  check_pool(*this, op, g, x, y);
  with_storage(storage_dtype(op, {{"x", &x}, {"y", &y}}), [&](auto tag) {
    using T = StorageOf<decltype(tag)>;
    k::pool2d_forward(mode, g, storage<T>(x, op, "x"), storage<T>(y, op, "y"), nullptr, stream_);
  });
}

void CudaDevice::pool2d_backward(PoolMode mode, const PoolGeometry& g, const Tensor& x, const Tensor& dy,
                                 Tensor& dx) {
  const DeviceGuard guard(index_);
  const char* op = "pool2d_backward";
  check_pool(*this, op, g, dx, dy);
  const bool is_max = mode == PoolMode::Max;
  const Tensor none;
  const DType dt = storage_dtype(op, {{"x", is_max ? &x : &none}, {"dy", &dy}, {"dx", &dx}});
  const size_t argmax_bytes = is_max ? sizeof(float) * static_cast<size_t>(dy.numel()) : 0;
  Scratch argmax(*this, argmax_bytes);
  with_storage(dt, [&](auto tag) {
    using T = StorageOf<decltype(tag)>;
    const T* px = is_max ? storage<T>(x, op, "x") : nullptr;  // (checks it is defined)
    if (is_max) JANUS_SAME_NUMEL(op, x, dx);
    k::pool2d_backward(mode, g, px, storage<T>(dy, op, "dy"), storage<T>(dx, op, "dx"), argmax.as<float>(), stream_);
  });
}

Tensor CudaDevice::max_pool2d_forward_train(const PoolGeometry& g, const Tensor& x, Tensor& y) {
  const DeviceGuard guard(index_);
  const char* op = "max_pool2d_forward_train";
  check_pool(*this, op, g, x, y);
  const DType dt = storage_dtype(op, {{"x", &x}, {"y", &y}});
  Tensor argmax = Tensor::empty(y.shape(), *this);  // float32 whatever the storage type (exact small integers)
  with_storage(dt, [&](auto tag) {
    using T = StorageOf<decltype(tag)>;
    k::pool2d_forward(PoolMode::Max, g, storage<T>(x, op, "x"), storage<T>(y, op, "y"), f32(argmax, op, "argmax"),
                      stream_);
  });
  return argmax;
}

void CudaDevice::max_pool2d_backward_argmax(const PoolGeometry& g, const Tensor& argmax, const Tensor& dy,
                                            Tensor& dx) {
  const DeviceGuard guard(index_);
  const char* op = "max_pool2d_backward_argmax";
  check_pool(*this, op, g, dx, dy);
  JANUS_SAME_NUMEL(op, argmax, dy);
  with_storage(storage_dtype(op, {{"dy", &dy}, {"dx", &dx}}), [&](auto tag) {
    using T = StorageOf<decltype(tag)>;
    k::pool2d_backward_gather(PoolMode::Max, g, f32(argmax, op, "argmax"), storage<T>(dy, op, "dy"),
                              storage<T>(dx, op, "dx"), stream_);
  });
}

// ---- batch normalisation ------------------------------------------------------
// The plain and the ReLU-fused ops share these three (relu / y selects the
// fused kernels' ReLU), so both check their arguments the same way.

namespace {
void check_per_channel(const char* op, const std::string& device, const Tensor& x,
                       std::initializer_list<const Tensor*> per_channel) {
  for (const Tensor* t : per_channel)
    JANUS_CHECK(t->numel() == cols_of(x), op, " on ", device, ": per-channel tensor ", t->shape().str(),
                " does not match the ", cols_of(x), " channels of x ", x.shape().str());
}
}  // namespace

void CudaDevice::bn_forward_train(const char* op, bool relu, const Tensor& x, const Tensor& gamma,
                                  const Tensor& beta, double momentum, double eps, Tensor& running_mean,
                                  Tensor& running_var, Tensor& saved_mean, Tensor& saved_invstd, Tensor& y) {
  const DeviceGuard guard(index_);
  const int64_t rows = rows_of(x), cols = cols_of(x);
  JANUS_SAME_NUMEL(op, x, y);
  check_per_channel(op, name(), x, {&gamma, &beta, &running_mean, &running_var, &saved_mean, &saved_invstd});
  const DType dt = storage_dtype(op, {{"x", &x}, {"y", &y}});
  Scratch ws(*this, sizeof(double) * static_cast<size_t>(k::bn_workspace_count(rows, cols)));
  with_storage(dt, [&](auto tag) {
    using T = StorageOf<decltype(tag)>;
    k::batchnorm_forward_train(storage<T>(x, op, "x"), f32(gamma, op, "gamma"), f32(beta, op, "beta"), momentum,
                               eps, relu, f32(running_mean, op, "running_mean"), f32(running_var, op, "running_var"),
                               f32(saved_mean, op, "saved_mean"), f32(saved_invstd, op, "saved_invstd"),
                               storage<T>(y, op, "y"), rows, cols, ws.as<double>(), stream_);
  });
}

void CudaDevice::bn_forward_eval(const char* op, bool relu, const Tensor& x, const Tensor& gamma,
                                 const Tensor& beta, const Tensor& running_mean, const Tensor& running_var,
                                 double eps, Tensor& y) {
  const DeviceGuard guard(index_);
  JANUS_SAME_NUMEL(op, x, y);
  check_per_channel(op, name(), x, {&gamma, &beta, &running_mean, &running_var});
  with_storage(storage_dtype(op, {{"x", &x}, {"y", &y}}), [&](auto tag) {
    using T = StorageOf<decltype(tag)>;
    k::batchnorm_forward_eval(storage<T>(x, op, "x"), f32(gamma, op, "gamma"), f32(beta, op, "beta"),
                              f32(running_mean, op, "running_mean"), f32(running_var, op, "running_var"), eps, relu,
                              storage<T>(y, op, "y"), rows_of(x), cols_of(x), stream_);
  });
}

void CudaDevice::bn_backward(const char* op, const Tensor& x, const Tensor* relu_output, const Tensor& dy,
                             const Tensor& gamma, const Tensor& saved_mean, const Tensor& saved_invstd, Tensor& dx,
                             Tensor& dgamma, Tensor& dbeta) {
  const DeviceGuard guard(index_);
  const int64_t rows = rows_of(x), cols = cols_of(x);
  JANUS_SAME_NUMEL(op, x, dy);
  JANUS_SAME_NUMEL(op, x, dx);
  if (relu_output != nullptr) JANUS_SAME_NUMEL(op, x, *relu_output);
  check_per_channel(op, name(), x, {&gamma, &saved_mean, &saved_invstd, &dgamma, &dbeta});
  const Tensor none;
  const DType dt =
      storage_dtype(op, {{"x", &x}, {"y", relu_output ? relu_output : &none}, {"dy", &dy}, {"dx", &dx}});
  Scratch ws(*this, sizeof(double) * static_cast<size_t>(k::bn_workspace_count(rows, cols)));
  with_storage(dt, [&](auto tag) {
    using T = StorageOf<decltype(tag)>;
    k::batchnorm_backward(storage<T>(x, op, "x"), relu_output ? storage<T>(*relu_output, op, "y") : nullptr,
                          storage<T>(dy, op, "dy"), f32(gamma, op, "gamma"), f32(saved_mean, op, "saved_mean"),
                          f32(saved_invstd, op, "saved_invstd"), storage<T>(dx, op, "dx"), f32(dgamma, op, "dgamma"),
                          f32(dbeta, op, "dbeta"), rows, cols, ws.as<double>(), stream_);
  });
}

void CudaDevice::batchnorm_forward_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, double momentum,
                                         double eps, Tensor& running_mean, Tensor& running_var, Tensor& saved_mean,
                                         Tensor& saved_invstd, Tensor& y) {
  bn_forward_train("batchnorm_forward_train", false, x, gamma, beta, momentum, eps, running_mean, running_var,
                   saved_mean, saved_invstd, y);
}

void CudaDevice::batchnorm_relu_forward_train(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                              double momentum, double eps, Tensor& running_mean,
                                              Tensor& running_var, Tensor& saved_mean, Tensor& saved_invstd,
                                              Tensor& y) {
  bn_forward_train("batchnorm_relu_forward_train", true, x, gamma, beta, momentum, eps, running_mean, running_var,
                   saved_mean, saved_invstd, y);
}

void CudaDevice::batchnorm_forward_eval(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                        const Tensor& running_mean, const Tensor& running_var, double eps,
                                        Tensor& y) {
  bn_forward_eval("batchnorm_forward_eval", false, x, gamma, beta, running_mean, running_var, eps, y);
}

void CudaDevice::batchnorm_relu_forward_eval(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                             const Tensor& running_mean, const Tensor& running_var, double eps,
                                             Tensor& y) {
  bn_forward_eval("batchnorm_relu_forward_eval", true, x, gamma, beta, running_mean, running_var, eps, y);
}

void CudaDevice::batchnorm_backward(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& saved_mean,
                                    const Tensor& saved_invstd, Tensor& dx, Tensor& dgamma, Tensor& dbeta) {
  bn_backward("batchnorm_backward", x, nullptr, dy, gamma, saved_mean, saved_invstd, dx, dgamma, dbeta);
}

void CudaDevice::batchnorm_relu_backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& gamma,
                                         const Tensor& saved_mean, const Tensor& saved_invstd, Tensor& dx,
                                         Tensor& dgamma, Tensor& dbeta) {
  bn_backward("batchnorm_relu_backward", x, &y, dy, gamma, saved_mean, saved_invstd, dx, dgamma, dbeta);
}

// ---- dropout ------------------------------------------------------------------

void CudaDevice::dropout_forward(const Tensor& x, double p, uint64_t seed, Tensor& mask, Tensor& y) {
  const DeviceGuard guard(index_);
  JANUS_CHECK(p >= 0.0 && p < 1.0, "dropout_forward on ", name(), ": drop probability ", p, " is not in [0, 1)");
  JANUS_SAME_NUMEL("dropout_forward", x, mask);
  JANUS_SAME_NUMEL("dropout_forward", x, y);
  const char* op = "dropout_forward";
  const float scale = static_cast<float>(1.0 / (1.0 - p));
  with_storage(storage_dtype(op, {{"x", &x}, {"mask", &mask}, {"y", &y}}), [&](auto tag) {
    using T = StorageOf<decltype(tag)>;
    k::dropout_forward(storage<T>(x, op, "x"), p, scale, step_value(seed), storage<T>(mask, op, "mask"),
                       storage<T>(y, op, "y"), x.numel(), stream_);
  });
}

// ---- optimizers ---------------------------------------------------------------

// One launch for the whole list: the descriptors go to device memory through
// the pinned upload path (no host wait), then the multi-tensor kernel runs.
void CudaDevice::launch_multi_update(std::vector<k::TensorUpdate>& list,
                                     const std::function<void(const k::TensorUpdate*, int, int64_t)>& launch) {
  if (list.empty()) return;
  const int64_t blocks = k::plan_multi_tensor_blocks(list.data(), static_cast<int>(list.size()));
  const size_t bytes = sizeof(k::TensorUpdate) * list.size();
  Scratch on_device(*this, bytes);
  copy_to_device(on_device.as<void>(), list.data(), bytes);
  launch(on_device.as<k::TensorUpdate>(), static_cast<int>(list.size()), blocks);
}

void CudaDevice::sgd_update_multi(const std::vector<SgdParamUpdate>& updates, double momentum, bool nesterov) {
  const DeviceGuard guard(index_);
  const char* op = "sgd_update";
  std::vector<k::TensorUpdate> list;
  for (const SgdParamUpdate& u : updates) {
    JANUS_SAME_NUMEL(op, *u.w, *u.g);
    float* pv = nullptr;
    if (momentum != 0.0) {
      JANUS_CHECK(u.velocity != nullptr, op, " on ", name(), ": momentum ", momentum, " needs a velocity");
      JANUS_SAME_NUMEL(op, *u.w, *u.velocity);
      pv = f32(*u.velocity, op, "velocity");
    }
    list.push_back({f32(*u.w, op, "w"), f32(*u.g, op, "g"), pv, nullptr, u.w->numel(), u.lr, u.weight_decay, 0});
  }
  launch_multi_update(list, [&](const k::TensorUpdate* l, int count, int64_t blocks) {
    k::sgd_update_multi(l, count, blocks, momentum, nesterov, stream_);
  });
}

void CudaDevice::adam_update_multi(const std::vector<AdamParamUpdate>& updates, double beta1, double beta2,
                                   double eps, bool decoupled, int64_t step) {
  const DeviceGuard guard(index_);
  const char* op = "adam_update";
  JANUS_CHECK(step >= 1, op, " on ", name(), ": step must be >= 1 (got ", step, ")");
  std::vector<k::TensorUpdate> list;
  for (const AdamParamUpdate& u : updates) {
    JANUS_SAME_NUMEL(op, *u.w, *u.g);
    JANUS_SAME_NUMEL(op, *u.w, *u.m);
    JANUS_SAME_NUMEL(op, *u.w, *u.v);
    list.push_back({f32(*u.w, op, "w"), f32(*u.g, op, "g"), f32(*u.m, op, "m"), f32(*u.v, op, "v"), u.w->numel(),
                    u.lr, u.weight_decay, 0});
  }
  const double bc1 = 1.0 - std::pow(beta1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(beta2, static_cast<double>(step));
  launch_multi_update(list, [&](const k::TensorUpdate* l, int count, int64_t blocks) {
    k::adam_update_multi(l, count, blocks, beta1, beta2, eps, decoupled, step_value(bc1), step_value(bc2), stream_);
  });
}

void CudaDevice::sgd_update(Tensor& w, const Tensor& g, Tensor& velocity, double lr, double momentum,
                            double weight_decay, bool nesterov) {
  sgd_update_multi({SgdParamUpdate{&w, &g, &velocity, lr, weight_decay}}, momentum, nesterov);
}

void CudaDevice::adam_update(Tensor& w, const Tensor& g, Tensor& m, Tensor& v, double lr, double beta1, double beta2,
                             double eps, double weight_decay, bool decoupled, int64_t step) {
  adam_update_multi({AdamParamUpdate{&w, &g, &m, &v, lr, weight_decay}}, beta1, beta2, eps, decoupled, step);
}

}  // namespace janus::cuda

// ---- the registry hooks ---------------------------------------------------------

namespace janus::cuda_backend {

namespace {

// What cudaGetDeviceCount said, asked once per process. An error is kept with
// its text: "no CUDA-capable device" is an ordinary CPU machine, but a driver
// older than the runtime or a failed initialisation is a broken GPU machine,
// and both must be visible (janus info, error messages, JANUS_REQUIRE_CUDA).
struct DeviceCount {
  int count = 0;
  std::string error;  // empty when the query succeeded
};

const DeviceCount& probe() {
  static const DeviceCount result = [] {
    DeviceCount r;
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
      r.error = detail::concat("cudaGetDeviceCount failed: ", cudaGetErrorString(e), " (", cudaGetErrorName(e),
                               ", code ", static_cast<int>(e), ")");
      static_cast<void>(cudaGetLastError());  // clear the thread's last error
      return r;
    }
    r.count = n;
    if (n == 0) r.error = "cudaGetDeviceCount found 0 devices";
    return r;
  }();
  return result;
}

}  // namespace

int device_count() { return probe().count; }

std::string unavailable_reason() { return probe().error; }

Device& device(int index) {
  static std::mutex mu;
  // Never freed: tensors may outlive main(). The list itself is never
  // destroyed either, so the devices stay reachable at exit (a static vector's
  // destructor would drop the only pointers to them: LeakSanitizer reports).
  static auto* devices = new std::vector<cuda::CudaDevice*>();
  std::lock_guard<std::mutex> lock(mu);
  JANUS_CHECK(index >= 0 && index < device_count(), "cuda:", index, " does not exist (", device_count(),
              " CUDA device(s))");
  if (devices->empty()) devices->resize(static_cast<size_t>(device_count()), nullptr);
  auto& slot = (*devices)[static_cast<size_t>(index)];
  if (!slot) slot = new cuda::CudaDevice(index);
  return *slot;
}

bool simulated() {
#if defined(JANUS_CUDA_SIM)
  return true;
#else
  return false;
#endif
}

std::string library_versions() {
#if defined(JANUS_CUDA_SIM)
  int rt = 0;
  static_cast<void>(cudaRuntimeGetVersion(&rt));
  return detail::concat("CUDA simulator (runtime API ", rt / 1000, ".", (rt % 1000) / 10,
                        " subset); cuBLAS not simulated (tiled GEMM kernel); cuDNN not simulated "
                        "(implicit-GEMM convolution)");
#else
  int rt = 0, drv = 0;
  static_cast<void>(cudaRuntimeGetVersion(&rt));
  const bool have_driver = cudaDriverGetVersion(&drv) == cudaSuccess && drv > 0;
  static_cast<void>(cudaGetLastError());
  int cb_major = 0, cb_minor = 0, cb_patch = 0;
  static_cast<void>(cublasGetProperty(MAJOR_VERSION, &cb_major));
  static_cast<void>(cublasGetProperty(MINOR_VERSION, &cb_minor));
  static_cast<void>(cublasGetProperty(PATCH_LEVEL, &cb_patch));
  std::string s = detail::concat("cudart ", rt / 1000, ".", (rt % 1000) / 10, ", cuBLAS ", cb_major, ".", cb_minor,
                                 ".", cb_patch, ", ", cuda::cudnn_version());
  s += have_driver ? detail::concat(", driver ", drv / 1000, ".", (drv % 1000) / 10)
                   : std::string(", no CUDA driver");
  if (device_count() == 0) s += " (no GPU on this machine)";
  return s;
#endif
}

}  // namespace janus::cuda_backend
