// Janus CUDA simulator: cuBLAS on top of the CPU BLAS (cblas, column-major).
#include "cuda/sim/cublas.hpp"

#include <cblas.h>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "cuda/sim/internal.hpp"
#include "cuda/tf32_rounding.hpp"

struct cublasContext {
  cudaStream_t stream = nullptr;
  cublasPointerMode_t pointer_mode = CUBLAS_POINTER_MODE_HOST;
  cublasMath_t math_mode = CUBLAS_DEFAULT_MATH;
  void* workspace = nullptr;  // cublasSetWorkspace's; nullptr: the default workspace pool
  size_t workspace_bytes = 0;
};

namespace {

CBLAS_TRANSPOSE to_cblas(cublasOperation_t op) { return op == CUBLAS_OP_N ? CblasNoTrans : CblasTrans; }
bool valid_op(cublasOperation_t op) { return op == CUBLAS_OP_N || op == CUBLAS_OP_T || op == CUBLAS_OP_C; }

// cuBLAS's argument checks for gemm.
cublasStatus_t check_gemm(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                          int k, const float* alpha, const float* beta, int lda, int ldb, int ldc) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!valid_op(transa) || !valid_op(transb) || m < 0 || n < 0 || k < 0) return CUBLAS_STATUS_INVALID_VALUE;
  if (lda < std::max(1, transa == CUBLAS_OP_N ? m : k)) return CUBLAS_STATUS_INVALID_VALUE;
  if (ldb < std::max(1, transb == CUBLAS_OP_N ? k : n)) return CUBLAS_STATUS_INVALID_VALUE;
  if (ldc < std::max(1, m)) return CUBLAS_STATUS_INVALID_VALUE;
  if (alpha == nullptr || beta == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  return CUBLAS_STATUS_SUCCESS;
}

void gemm(cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k, float alpha, const float* A,
          int lda, const float* B, int ldb, float beta, float* C, int ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0 || alpha == 0.0f) {  // C = beta * C; with beta == 0, C is not read
    for (int j = 0; j < n; ++j) {
      float* c = C + static_cast<std::ptrdiff_t>(j) * ldc;
      for (int i = 0; i < m; ++i) c[i] = beta == 0.0f ? 0.0f : beta * c[i];
    }
    return;
  }
  if (beta == 0.0f)  // cuBLAS does not read C when beta == 0: NaNs there must not survive
    for (int j = 0; j < n; ++j) std::fill_n(C + static_cast<std::ptrdiff_t>(j) * ldc, m, 0.0f);
  cblas_sgemm(CblasColMajor, to_cblas(transa), to_cblas(transb), m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

// The operand op(X) of a gemm as float32 values, column-major with leading
// dimension ld: the stored matrix is rows x cols (rows = m or k when op is N).
// `read(j)` returns element j of the stored array as a float (already
// rounded as the math asks). Only the stored rows x cols entries are read.
template <class Read>
std::vector<float> operand(int rows, int cols, int ld, Read read) {
  std::vector<float> out(static_cast<size_t>(rows) * static_cast<size_t>(cols));
  for (int j = 0; j < cols; ++j)
    for (int i = 0; i < rows; ++i)
      out[static_cast<size_t>(j) * static_cast<size_t>(rows) + static_cast<size_t>(i)] =
          read(static_cast<std::ptrdiff_t>(j) * ld + i);
  return out;
}

// A stored operand of type `type` as float32 (TF32-rounded when `tf32` and
// the type is float32); rows x cols column-major with leading dimension ld.
std::vector<float> operand_as_float(const void* x, cudaDataType_t type, bool tf32, int rows, int cols, int ld) {
  switch (type) {
    case CUDA_R_32F: {
      const float* f = static_cast<const float*>(x);
      return operand(rows, cols, ld, [f, tf32](std::ptrdiff_t j) {
        return tf32 ? janus::cuda::round_to_tf32(f[j]) : f[j];
      });
    }
    case CUDA_R_16BF: {
      const __nv_bfloat16* b = static_cast<const __nv_bfloat16*>(x);
      return operand(rows, cols, ld, [b](std::ptrdiff_t j) { return __bfloat162float(b[j]); });
    }
    case CUDA_R_16F: {
      const __half* h = static_cast<const __half*>(x);
      return operand(rows, cols, ld, [h](std::ptrdiff_t j) { return __half2float(h[j]); });
    }
  }
  return {};
}

// gemm on operands converted to float32 first (reduced-precision math): the
// copies are packed, so their leading dimensions are their row counts.
void gemm_converted(cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k, float alpha,
                    const void* A, cudaDataType_t Atype, int lda, const void* B, cudaDataType_t Btype, int ldb,
                    bool tf32, float beta, float* C, int ldc) {
  if (m == 0 || n == 0) return;
  const int a_rows = transa == CUBLAS_OP_N ? m : k, a_cols = transa == CUBLAS_OP_N ? k : m;
  const int b_rows = transb == CUBLAS_OP_N ? k : n, b_cols = transb == CUBLAS_OP_N ? n : k;
  const std::vector<float> a = operand_as_float(A, Atype, tf32, a_rows, a_cols, lda);
  const std::vector<float> b = operand_as_float(B, Btype, tf32, b_rows, b_cols, ldb);
  gemm(transa, transb, m, n, k, alpha, a.data(), std::max(1, a_rows), b.data(), std::max(1, b_rows), beta, C, ldc);
}

// gemm_converted into a bfloat16 C (cublasGemmEx with Ctype CUDA_R_16BF):
// cuBLAS computes alpha * sum + beta * C in float32 (CUBLAS_COMPUTE_32F, C
// read as float) and rounds each result once to bf16 (to nearest even). Here:
// C widened exactly into a float32 matrix, the float path on it (the same
// sums, in the same order, as with a float32 C holding these values), then
// each element rounded once.
void gemm_converted_bf16_c(cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k, float alpha,
                           const void* A, cudaDataType_t Atype, int lda, const void* B, cudaDataType_t Btype,
                           int ldb, bool tf32, float beta, __nv_bfloat16* C, int ldc) {
  if (m == 0 || n == 0) return;
  // beta == 0: C is not read (NaN patterns there must not survive), as in gemm().
  std::vector<float> c = beta == 0.0f ? std::vector<float>(static_cast<size_t>(m) * static_cast<size_t>(n), 0.0f)
                                      : operand_as_float(C, CUDA_R_16BF, false, m, n, ldc);
  gemm_converted(transa, transb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb, tf32, beta, c.data(), m);
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < m; ++i)
      C[static_cast<std::ptrdiff_t>(j) * ldc + i] =
          __float2bfloat16_rn(c[static_cast<size_t>(j) * static_cast<size_t>(m) + static_cast<size_t>(i)]);
}

// cublasSgemm*'s product under the handle's math mode.
void sgemm(cublasMath_t math_mode, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k,
           float alpha, const float* A, int lda, const float* B, int ldb, float beta, float* C, int ldc) {
  if (math_mode == CUBLAS_TF32_TENSOR_OP_MATH)
    gemm_converted(transa, transb, m, n, k, alpha, A, CUDA_R_32F, lda, B, CUDA_R_32F, ldb, true, beta, C, ldc);
  else
    gemm(transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

// A GEMM with operands `pointers` on the handle's stream: run now, or, on a
// capturing stream, recorded as a graph node (host-mode alpha and beta are
// read now, as cuBLAS does). Without a user workspace cuBLAS would take one
// from its default pool, an allocation the capture cannot contain: the call
// is refused (CUBLAS_STATUS_NOT_SUPPORTED) and the capture invalidated, so
// code that forgets cublasSetWorkspace fails here as its graph would on a GPU.
cublasStatus_t issue(cublasHandle_t handle, const char* api, std::vector<const void*> pointers,
                     std::function<void()> work) {
  if (!janus::sim::detail::capture_concerns(handle->stream)) {
    work();
    return CUBLAS_STATUS_SUCCESS;
  }
  if (handle->workspace == nullptr) {
    janus::sim::detail::invalidate_capture(
        handle->stream, cudaErrorStreamCaptureUnsupported,
        std::string(api) + " on a capturing stream with no cublasSetWorkspace workspace (cuBLAS would allocate "
                           "one from its default pool inside the capture)");
    return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  pointers.push_back(handle->workspace);
  const cudaError_t e = janus::sim::detail::capture_node(
      handle->stream, api, api,
      [work = std::move(work)](cudaStream_t) {
        work();
        return cudaSuccess;
      },
      std::move(pointers), false);
  return e == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

// alpha / beta as the call passes them: the value now in host pointer mode,
// read when the GEMM runs in device pointer mode.
std::function<float()> scalar(cublasHandle_t handle, const float* p) {
  if (handle->pointer_mode == CUBLAS_POINTER_MODE_DEVICE) return [p] { return *p; };
  const float v = *p;
  return [v] { return v; };
}

}  // namespace

cublasStatus_t cublasSetWorkspace(cublasHandle_t handle, void* workspace, size_t workspaceSizeInBytes) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (workspace == nullptr && workspaceSizeInBytes != 0) return CUBLAS_STATUS_INVALID_VALUE;
  if (reinterpret_cast<std::uintptr_t>(workspace) % 256 != 0) return CUBLAS_STATUS_INVALID_VALUE;
  if (workspace != nullptr && !janus::sim::detail::is_device_memory(workspace)) return CUBLAS_STATUS_INVALID_VALUE;
  handle->workspace = workspace;
  handle->workspace_bytes = workspaceSizeInBytes;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasCreate(cublasHandle_t* handle) {
  if (handle == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  *handle = new cublasContext;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t handle) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!janus::sim::detail::valid_stream(stream)) return CUBLAS_STATUS_INVALID_VALUE;
  handle->stream = stream;
  handle->workspace = nullptr;  // as cuBLAS: back to the default workspace pool
  handle->workspace_bytes = 0;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetStream(cublasHandle_t handle, cudaStream_t* stream) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (stream == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  *stream = handle->stream;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetPointerMode(cublasHandle_t handle, cublasPointerMode_t mode) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (mode != CUBLAS_POINTER_MODE_HOST && mode != CUBLAS_POINTER_MODE_DEVICE) return CUBLAS_STATUS_INVALID_VALUE;
  handle->pointer_mode = mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetPointerMode(cublasHandle_t handle, cublasPointerMode_t* mode) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (mode == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  *mode = handle->pointer_mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->math_mode = mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t* mode) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (mode == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  *mode = handle->math_mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetVersion(cublasHandle_t handle, int* version) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (version == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  *version = CUBLAS_VER_MAJOR * 10000 + CUBLAS_VER_MINOR * 100 + CUBLAS_VER_PATCH;
  return CUBLAS_STATUS_SUCCESS;
}

const char* cublasGetStatusName(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}

const char* cublasGetStatusString(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
    case CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    case CUBLAS_STATUS_LICENSE_ERROR: return "error detected trying to check the license";
  }
  return "unknown error";
}

cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                           int k, const float* alpha, const float* A, int lda, const float* B, int ldb,
                           const float* beta, float* C, int ldc) {
  if (cublasStatus_t s = check_gemm(handle, transa, transb, m, n, k, alpha, beta, lda, ldb, ldc);
      s != CUBLAS_STATUS_SUCCESS)
    return s;
  return issue(handle, "cublasSgemm", {A, B, C},
               [=, math = handle->math_mode, al = scalar(handle, alpha), be = scalar(handle, beta)] {
                 sgemm(math, transa, transb, m, n, k, al(), A, lda, B, ldb, be(), C, ldc);
               });
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                         int m, int n, int k, const float* alpha, const float* A, int lda,
                                         long long strideA, const float* B, int ldb, long long strideB,
                                         const float* beta, float* C, int ldc, long long strideC, int batchCount) {
  if (cublasStatus_t s = check_gemm(handle, transa, transb, m, n, k, alpha, beta, lda, ldb, ldc);
      s != CUBLAS_STATUS_SUCCESS)
    return s;
  if (batchCount < 0) return CUBLAS_STATUS_INVALID_VALUE;
  return issue(handle, "cublasSgemmStridedBatched", {A, B, C},
               [=, math = handle->math_mode, al = scalar(handle, alpha), be = scalar(handle, beta)] {
                 for (int b = 0; b < batchCount; ++b)
                   sgemm(math, transa, transb, m, n, k, al(), A + b * strideA, lda, B + b * strideB, ldb, be(),
                         C + b * strideC, ldc);
               });
}

cublasStatus_t cublasSgemmBatched(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m,
                                  int n, int k, const float* alpha, const float* const Aarray[], int lda,
                                  const float* const Barray[], int ldb, const float* beta, float* const Carray[],
                                  int ldc, int batchCount) {
  if (cublasStatus_t s = check_gemm(handle, transa, transb, m, n, k, alpha, beta, lda, ldb, ldc);
      s != CUBLAS_STATUS_SUCCESS)
    return s;
  if (batchCount < 0) return CUBLAS_STATUS_INVALID_VALUE;
  // The pointer arrays are device memory the GEMM reads when it runs.
  return issue(handle, "cublasSgemmBatched", {Aarray, Barray, Carray},
               [=, math = handle->math_mode, al = scalar(handle, alpha), be = scalar(handle, beta)] {
                 for (int b = 0; b < batchCount; ++b)
                   sgemm(math, transa, transb, m, n, k, al(), Aarray[b], lda, Barray[b], ldb, be(), Carray[b], ldc);
               });
}

cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                            int k, const void* alpha, const void* A, cudaDataType_t Atype, int lda, const void* B,
                            cudaDataType_t Btype, int ldb, const void* beta, void* C, cudaDataType_t Ctype, int ldc,
                            cublasComputeType_t computeType, cublasGemmAlgo_t algo) {
  const float* a = static_cast<const float*>(alpha);
  const float* b = static_cast<const float*>(beta);
  if (cublasStatus_t s = check_gemm(handle, transa, transb, m, n, k, a, b, lda, ldb, ldc); s != CUBLAS_STATUS_SUCCESS)
    return s;
  auto served = [](cudaDataType_t t) { return t == CUDA_R_32F || t == CUDA_R_16BF || t == CUDA_R_16F; };
  // C is float32, or bf16 with bf16 A and B (cuBLAS's CUDA_R_16BF in / out
  // configuration of CUBLAS_COMPUTE_32F; no mixed A / B types with it).
  const bool bf16_c = Ctype == CUDA_R_16BF && Atype == CUDA_R_16BF && Btype == CUDA_R_16BF;
  if (!served(Atype) || !served(Btype) || (Ctype != CUDA_R_32F && !bf16_c)) return CUBLAS_STATUS_NOT_SUPPORTED;
  if (computeType != CUBLAS_COMPUTE_32F && computeType != CUBLAS_COMPUTE_32F_FAST_TF32)
    return CUBLAS_STATUS_NOT_SUPPORTED;
  if (algo != CUBLAS_GEMM_DEFAULT && algo != CUBLAS_GEMM_DEFAULT_TENSOR_OP) return CUBLAS_STATUS_INVALID_VALUE;
  if (A == nullptr || B == nullptr || C == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  const bool tf32 =
      computeType == CUBLAS_COMPUTE_32F_FAST_TF32 || handle->math_mode == CUBLAS_TF32_TENSOR_OP_MATH;
  return issue(handle, "cublasGemmEx", {A, B, C}, [=, al = scalar(handle, a), be = scalar(handle, b)] {
    if (bf16_c)
      gemm_converted_bf16_c(transa, transb, m, n, k, al(), A, Atype, lda, B, Btype, ldb, tf32, be(),
                            static_cast<__nv_bfloat16*>(C), ldc);
    else
      gemm_converted(transa, transb, m, n, k, al(), A, Atype, lda, B, Btype, ldb, tf32, be(), static_cast<float*>(C),
                     ldc);
  });
}
