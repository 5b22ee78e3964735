// cuDNN convolution glue (real GPUs only: cuDNN is not simulated, so this is
// compiled only when JANUS_CUDA_SIM is not defined).
//
// Tensors are NHWC; filters here are in cuDNN's NHWC filter layout (K, R, S,
// C) = (F, KH, KW, C/groups), "KRSC". Janus keeps its weights HWIO; the
// HWIO <-> KRSC layer between the two (a KRSC copy of the weights kept per
// weight version, the filter gradient's transpose) is conv_cudnn_filters.hpp,
// which tests drive on the simulator with a stand-in for this interface.
// Descriptors and the chosen algorithms are cached per shape
// and math type. The math type is CUDNN_FMA_MATH (true FP32, no TF32) in fp32,
// so results match the CPU; in tf32 and bf16 it is CUDNN_TENSOR_OP_MATH on
// float32 tensors, whose inputs the caller has already rounded to TF32 or
// bf16 (CudaDevice: every product is then exact in TF32 tensor-core math, so
// the result is the table's "tf32 x tf32" / "bf16 x bf16" with float32 sums
// and float32 output; cuDNN's legacy API has no bf16-input / float32-output
// configuration, and its bf16 configurations would round the output).
// Algorithms: cuDNN's ranked list (cudnnGet*Algorithm_v7) filtered and walked
// as conv_algo_choice.hpp describes, keeping the entries ranked for the
// descriptor's math type.
#pragma once

#include "cuda/cuda_compat.hpp"

#include <functional>
#include <memory>
#include <string>

#include "janus/device.hpp"

namespace janus::cuda {

class CachingAllocator;

// The filter of a forward or backward-data pass in KRSC, (F, KH, KW, C/groups)
// row-major, asked for only once an algorithm is about to run (so that a
// geometry cuDNN declines costs no filter copy).
using KrscFilter = std::function<const float*()>;

// cuDNN's three convolution passes on NHWC x / y and KRSC filters.
class CudnnConv {
 public:
  virtual ~CudnnConv() = default;
  // Each returns false, having written nothing, when no cuDNN algorithm runs
  // this geometry: the caller then uses the implicit-GEMM kernels. With
  // `tensor_op` the descriptor's math type is CUDNN_TENSOR_OP_MATH (TF32
  // tensor cores on float32 data), else CUDNN_FMA_MATH.
  // y (N, OH, OW, F) = conv(x (N, H, W, C), w).
  virtual bool forward(const ConvGeometry& g, const float* x, const KrscFilter& w, float* y, bool tensor_op) = 0;
  // dx (N, H, W, C) from dy (N, OH, OW, F) and w.
  virtual bool backward_data(const ConvGeometry& g, const float* dy, const KrscFilter& w, float* dx,
                             bool tensor_op) = 0;
  // dw_krsc (F, KH, KW, C/groups), overwritten.
  virtual bool backward_filter(const ConvGeometry& g, const float* x, const float* dy, float* dw_krsc,
                               bool tensor_op) = 0;
};

#if !defined(JANUS_CUDA_SIM)
std::unique_ptr<CudnnConv> make_cudnn_conv(cudaStream_t stream, CachingAllocator& allocator);
// "cuDNN 9.x.y", from cudnnGetVersion().
std::string cudnn_version();
#endif

}  // namespace janus::cuda
