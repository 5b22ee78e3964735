// The filter layout between Janus and cuDNN on the cuDNN path of the CUDA
// backend, and the cache that keeps filter transposes out of the training
// step.
//
// Janus keeps a convolution's weights HWIO, (KH, KW, C/groups, F), everywhere
// (layers, optimizers, checkpoints, the CPU backend, Janus's own CUDA
// kernels). cuDNN wants them KRSC, (F, KH, KW, C/groups): its filter
// descriptor (cudnnSetFilter4dDescriptor / cudnnSetFilterNdDescriptor) takes a
// format, NCHW, NHWC (which is KRSC) or NCHW_VECT_C, and no strides, and HWIO,
// with the output channel innermost, is none of them. (The graph API's weight
// tensor takes strides, but which engines accept an output-channel-innermost
// weight is not documented per engine and cannot be tried without a GPU.)
// Seen as matrices, HWIO is (KH*KW*C/groups, F) and KRSC its transpose, for
// grouped and depthwise filters too. So:
// - forward and backward-data read a KRSC copy of the weights made once per
//   version of the weights (Tensor::version, which every write advances) and
//   math type (in tf32 / bf16 the copy is rounded too, once), kept on the
//   device while the weights live. Training: one transpose per weight update
//   (by the forward after it) instead of one in each pass; evaluation: one
//   for every forward until the weights change.
// - backward-filter has cuDNN write KRSC into a scratch buffer, transposed
//   into the HWIO gradient: the one transpose a pass still launches.
// Filter transposes per convolution and training step: 2 (forward's copy,
// the gradient), where each pass had its own before (3 with backward-data).
// The price: one filter-sized copy per convolution (and math type used) on
// the device while its weights live.
//
// Compiled in every CUDA build: the simulator has no cuDNN, and its tests run
// this layer over a stand-in CudnnConv (tests/test_cudnn_filters.cpp).
#pragma once

#include "cuda/cuda_compat.hpp"

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "cuda/conv_cudnn.hpp"
#include "janus/device.hpp"
#include "janus/precision.hpp"
#include "janus/tensor.hpp"

namespace janus::cuda {

class CachingAllocator;

class CudnnConvolutions {
 public:
  // The passes run on `backend` (cuDNN, or a test's stand-in); the KRSC
  // copies and scratch filters come from `allocator`, the transposes and
  // roundings are queued on `stream` (the backend's).
  CudnnConvolutions(std::unique_ptr<CudnnConv> backend, CachingAllocator& allocator, cudaStream_t stream);
  ~CudnnConvolutions();
  CudnnConvolutions(const CudnnConvolutions&) = delete;
  CudnnConvolutions& operator=(const CudnnConvolutions&) = delete;

  // CudnnConv's passes with Janus's weights: w is the HWIO weight tensor
  // (float32, on the device of `stream`), dw the HWIO gradient (KH*KW*C/groups
  // x F floats, overwritten). x and dy are already rounded to `math`'s input
  // type (CudaDevice does it); the filter copy is rounded here. `math` other
  // than F32 selects tensor-op math. Each returns false, having written
  // nothing, when no cuDNN algorithm runs this geometry (the backend says so
  // before any filter is copied).
  bool forward(const ConvGeometry& g, const float* x, const Tensor& w, float* y, MathType math);
  bool backward_data(const ConvGeometry& g, const float* dy, const Tensor& w, float* dx, MathType math);
  bool backward_filter(const ConvGeometry& g, const float* x, const float* dy, float* dw, MathType math);

  // KRSC copies held now (one per live weight tensor and math type used).
  size_t cached_filters() const;

 private:
  // One KRSC copy: of which weights (storage, element pointer, extents), at
  // which version, in which math type.
  struct Entry {
    std::weak_ptr<const Storage> storage;
    const void* weights = nullptr;
    int64_t rows = 0, cols = 0;  // HWIO as a matrix: (KH*KW*C/groups, F)
    MathType math = MathType::F32;
    uint64_t version = 0;
    float* krsc = nullptr;  // cols x rows, from the allocator
  };

  // The KRSC copy of w for this geometry and math, made now unless the cache
  // holds one of w's current version.
  const float* krsc_filter(const ConvGeometry& g, const Tensor& w, MathType math);
  // Returns the copies of freed weights to the allocator.
  void drop_expired();

  std::unique_ptr<CudnnConv> backend_;
  CachingAllocator& alloc_;
  cudaStream_t stream_;
  mutable std::mutex mu_;  // one pass at a time: the entries and the backend
  std::vector<Entry> entries_;
};

}  // namespace janus::cuda
