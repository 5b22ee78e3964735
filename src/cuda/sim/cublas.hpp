// Janus CUDA simulator: the cuBLAS subset Janus uses, served by the CPU BLAS
// (OpenBLAS cblas) with cuBLAS's exact column-major semantics and argument
// checks. Device memory is host memory; the pointer mode says when alpha and
// beta are read (at the call, or when the GEMM runs from a graph). Work on a
// capturing stream is recorded into the capture (cublasSetWorkspace).
//
// Reduced precision, emulated by rounding the operands and multiplying in
// float32 (every product of two TF32 or two bf16 values is exact in float32,
// so only the summation order can differ from a tensor core's):
//   * CUBLAS_TF32_TENSOR_OP_MATH (cublasSetMathMode) makes cublasSgemm* read
//     A and B rounded to TF32 as cvt.rna.tf32.f32 does (src/cuda/tf32_rounding.hpp);
//     cuBLAS "may" use TF32 there, the simulator always does (the less
//     accurate of the two, which the parity bounds must cover anyway).
//   * cublasGemmEx with CUDA_R_16BF or CUDA_R_16F A and B reads their exact
//     values; with CUDA_R_32F A and B, CUBLAS_COMPUTE_32F_FAST_TF32 (or the
//     TF32 math mode with CUBLAS_COMPUTE_32F) rounds them to TF32. C is
//     CUDA_R_32F, the compute type CUBLAS_COMPUTE_32F or _FAST_TF32; other
//     combinations return CUBLAS_STATUS_NOT_SUPPORTED.
#pragma once

#include "cuda/sim/runtime.hpp"

struct cublasContext;
typedef cublasContext* cublasHandle_t;

enum cublasStatus_t {  // values as in cublas_api.h
  CUBLAS_STATUS_SUCCESS = 0,
  CUBLAS_STATUS_NOT_INITIALIZED = 1,
  CUBLAS_STATUS_ALLOC_FAILED = 3,
  CUBLAS_STATUS_INVALID_VALUE = 7,
  CUBLAS_STATUS_ARCH_MISMATCH = 8,
  CUBLAS_STATUS_MAPPING_ERROR = 11,
  CUBLAS_STATUS_EXECUTION_FAILED = 13,
  CUBLAS_STATUS_INTERNAL_ERROR = 14,
  CUBLAS_STATUS_NOT_SUPPORTED = 15,
  CUBLAS_STATUS_LICENSE_ERROR = 16,
};

enum cublasOperation_t { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUBLAS_OP_C = 2 };
enum cublasPointerMode_t { CUBLAS_POINTER_MODE_HOST = 0, CUBLAS_POINTER_MODE_DEVICE = 1 };
enum cublasMath_t {
  CUBLAS_DEFAULT_MATH = 0,
  CUBLAS_TENSOR_OP_MATH = 1,
  CUBLAS_PEDANTIC_MATH = 2,
  CUBLAS_TF32_TENSOR_OP_MATH = 3,
};

// Values as in library_types.h (the simulator's subset).
enum cudaDataType_t { CUDA_R_32F = 0, CUDA_R_16F = 2, CUDA_R_16BF = 14 };
typedef cudaDataType_t cudaDataType;
// Values as in cublas_api.h.
enum cublasComputeType_t {
  CUBLAS_COMPUTE_32F = 68,
  CUBLAS_COMPUTE_32F_PEDANTIC = 69,
  CUBLAS_COMPUTE_32F_FAST_16F = 74,
  CUBLAS_COMPUTE_32F_FAST_16BF = 75,
  CUBLAS_COMPUTE_32F_FAST_TF32 = 77,
};
enum cublasGemmAlgo_t { CUBLAS_GEMM_DEFAULT = -1, CUBLAS_GEMM_DEFAULT_TENSOR_OP = 99 };

#define CUBLAS_VER_MAJOR 13
#define CUBLAS_VER_MINOR 0
#define CUBLAS_VER_PATCH 0

cublasStatus_t cublasCreate(cublasHandle_t* handle);
cublasStatus_t cublasDestroy(cublasHandle_t handle);
cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream);
cublasStatus_t cublasGetStream(cublasHandle_t handle, cudaStream_t* stream);
cublasStatus_t cublasSetPointerMode(cublasHandle_t handle, cublasPointerMode_t mode);
cublasStatus_t cublasGetPointerMode(cublasHandle_t handle, cublasPointerMode_t* mode);
cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode);
cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t* mode);
cublasStatus_t cublasGetVersion(cublasHandle_t handle, int* version);
// The device memory cuBLAS may use as its workspace (256-byte aligned; as
// cuBLAS, cublasSetStream resets it to the default pool). A GEMM on a
// capturing stream needs one: the default pool would allocate inside the
// capture, so without it the call returns CUBLAS_STATUS_NOT_SUPPORTED and
// invalidates the capture (runtime.hpp, "stream capture").
cublasStatus_t cublasSetWorkspace(cublasHandle_t handle, void* workspace, size_t workspaceSizeInBytes);
const char* cublasGetStatusString(cublasStatus_t status);
const char* cublasGetStatusName(cublasStatus_t status);

// C = alpha * op(A) * op(B) + beta * C, all column-major; op(A) is m x k,
// op(B) is k x n, C is m x n. With beta == 0, C is not read (NaNs vanish).
cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                           int k, const float* alpha, const float* A, int lda, const float* B, int ldb,
                           const float* beta, float* C, int ldc);
cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                         int m, int n, int k, const float* alpha, const float* A, int lda,
                                         long long strideA, const float* B, int ldb, long long strideB,
                                         const float* beta, float* C, int ldc, long long strideC, int batchCount);
cublasStatus_t cublasSgemmBatched(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m,
                                  int n, int k, const float* alpha, const float* const Aarray[], int lda,
                                  const float* const Barray[], int ldb, const float* beta, float* const Carray[],
                                  int ldc, int batchCount);
// C = alpha * op(A) * op(B) + beta * C with typed A, B and C (see the file
// comment for the types and compute types served). alpha and beta are float
// (the scale type of CUBLAS_COMPUTE_32F*).
cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                            int k, const void* alpha, const void* A, cudaDataType_t Atype, int lda, const void* B,
                            cudaDataType_t Btype, int ldb, const void* beta, void* C, cudaDataType_t Ctype, int ldc,
                            cublasComputeType_t computeType, cublasGemmAlgo_t algo);
