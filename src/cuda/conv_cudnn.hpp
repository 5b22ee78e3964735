// cuDNN convolution glue (real GPUs only: cuDNN is not simulated, so this is
// compiled only when JANUS_CUDA_SIM is not defined).
//
// Tensors are NHWC. Janus's HWIO weights (KH, KW, C, F) are transposed once per
// call into cuDNN's NHWC filter layout (K, R, S, C) = (F, KH, KW, C) by a
// tiled transpose kernel into a cached workspace (the filter gradient takes the
// reverse trip). Descriptors and the chosen algorithms are cached per shape
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

#include <memory>
#include <string>

#include "janus/device.hpp"

namespace janus::cuda {

class CachingAllocator;

class CudnnConv {
 public:
  virtual ~CudnnConv() = default;
  // Each returns false, having written nothing, when no cuDNN algorithm runs
  // this geometry: the caller then uses the implicit-GEMM kernels. With
  // `tensor_op` the descriptor's math type is CUDNN_TENSOR_OP_MATH (TF32
  // tensor cores on float32 data), else CUDNN_FMA_MATH.
  virtual bool forward(const ConvGeometry& g, const float* x, const float* w, float* y, bool tensor_op) = 0;
  virtual bool backward_data(const ConvGeometry& g, const float* dy, const float* w, float* dx, bool tensor_op) = 0;
  virtual bool backward_filter(const ConvGeometry& g, const float* x, const float* dy, float* dw,
                               bool tensor_op) = 0;
};

#if !defined(JANUS_CUDA_SIM)
std::unique_ptr<CudnnConv> make_cudnn_conv(cudaStream_t stream, CachingAllocator& allocator);
// "cuDNN 9.x.y", from cudnnGetVersion().
std::string cudnn_version();
#endif

}  // namespace janus::cuda
