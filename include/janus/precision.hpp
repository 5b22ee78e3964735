// Precision: the arithmetic of a run's matrix products (convolutions and
// GEMMs), and the one table that says which operations run in which type.
//
// Modes (`precision` in a run config, `--precision` on the tool)
//   fp32  the default and the parity mode: everything in float32, results
//         bit-identical to a build without this module.
//   tf32  for CUDA: cuBLAS and cuDNN tensor-op math, whose products read the
//         operands with a 10-bit mantissa (TF32, unit roundoff 2^-11) and
//         accumulate in float32. The CPU has no TF32 arithmetic and refuses it
//         (check_precision_supported).
//   bf16  autocast style, after PyTorch's torch.autocast: the two inputs of
//         every convolution pass and GEMM are rounded to bfloat16 (8-bit
//         mantissa, float32's exponent range; round to nearest, ties to even)
//         and their products are summed in float32. On CUDA the activations
//         are stored in bfloat16 (below, "activation storage"); on the CPU
//         they stay float32. Everything else (master weights, optimizer
//         state, BatchNorm statistics, losses, reductions, biases) stays
//         float32.
//
// The table (kPrecisionTable below is its source; `janus info` prints it)
//
//   operations                                        fp32  tf32        bf16
//   conv2d forward / backward-data / backward-filter  f32   tf32 x tf32 bf16 x bf16
//   gemm (dense forward, dX, dW)                      f32   tf32 x tf32 bf16 x bf16
//   bias add, activations, pooling, dropout           f32   f32         f32
//   BatchNorm (statistics, running estimates)         f32   f32         f32
//   losses, softmax, sums, accuracy                   f32   f32         f32
//   optimizer updates, master weights, checkpoints    f32   f32         f32
//
// "bf16 x bf16" means: both inputs rounded to bf16, every product exact in
// float32 (8 + 8 significant bits fit in 24), summed in float32. This is the
// numerics of oneDNN's bf16 primitives and of tensor cores. Every row computes
// in float32 (or double) as the table says; what bf16 mode changes besides
// the products is where the results are stored:
//
//   activation storage (layer outputs, the gradients flowing back through them)
//                          fp32  tf32  bf16
//   CUDA                   f32   f32   bf16 (each result rounded once)
//   CPU                    f32   f32   f32
//
// With bf16 storage, as with autocast, each layer output (a product's float32
// sum, a BatchNorm or activation output, ...) is rounded once to bf16, and
// the next layer reads it exactly; parameters, their gradients, optimizer
// state, BatchNorm statistics, losses and metrics stay float32. On the CPU
// Janus keeps float32 activations (its bf16 products are an emulation on
// float32 copies), so there it is never less accurate than autocast.
// activation_dtype() below is the rule; NeuralNetwork::build applies it
// (model.hpp, "Activation storage").
// "tf32 x tf32" likewise with TF32 inputs (11 + 11 significant bits: products
// exact in float32 too).
//
// On CUDA (src/cuda/cuda_device.cpp, "matrix products"):
//   tf32  GEMMs: cublasSgemm with CUBLAS_TF32_TENSOR_OP_MATH (the GPU rounds
//         the operands). Convolutions: both inputs rounded to TF32 by a
//         conversion kernel (cvt.rna: to nearest, ties away from zero), then
//         cuDNN with CUDNN_TENSOR_OP_MATH or Janus's implicit-GEMM kernel.
//   bf16  GEMMs: cublasGemmEx on bf16 copies of A and B (CUDA_R_16BF, round
//         to nearest even) with float32 C and CUBLAS_COMPUTE_32F.
//         Convolutions on cuDNN: both inputs rounded to bf16 into float32
//         copies, then CUDNN_TENSOR_OP_MATH (TF32 tensor cores read bf16
//         values exactly; cuDNN's legacy API has no bf16-input / float32-output
//         configuration). On Janus's implicit-GEMM kernel: its bf16 WMMA
//         variant (m16n16k16, bf16 shared tiles, float32 accumulators), which
//         rounds the operands to bf16 as it loads its tiles.
//   The CUDA simulator runs the same code: its cuBLAS emulates TF32 math and
//   GemmEx by rounding the operands (and a bf16 C by one rounding of the
//   float32 result), and its __nv_bfloat16 converts as the GPU does
//   (src/cuda/sim/reduced_float.hpp).
//
// bfloat16 storage (DType::BF16, tensor.hpp), the first step towards
// autocast's bf16 activations:
//   exists now  Device::convert / Tensor::to(DType) between float32 and
//               bfloat16 on every device (round to nearest even), and on CUDA
//               the bf16 storage of the element-wise activations (forward and
//               backward), bias add, axpby, multiply, fill, max/average
//               pooling (forward, backward, the argmax path), dropout,
//               BatchNorm and BatchNorm+ReLU (train, eval, backward) and
//               softmax-cross-entropy: x, y, dy, dx, logits and dz in bf16,
//               parameters, statistics, targets and losses float32; each
//               stored result is the float32 kernel's result rounded to
//               bf16 (pooling and BatchNorm, which sum in double, thus round
//               double -> float32 -> bf16, as the float32 kernel does first)
//               (device.hpp, "bf16 storage on CUDA";
//               tests/test_bf16_storage.cpp). Since increment 2a, also the
//               matrix products on CUDA, in every mode of the table: gemm
//               (A, B and C each float32 or bf16: the dense layer's bf16
//               activations times float32 master weights, float32 dW) and
//               conv2d forward / backward-data / backward-filter (x, y, dy,
//               dx bf16; w, bias and dW float32), their products as the
//               table says, summed in float32, a bf16 output rounded once
//               from that float32 result (cublasGemmEx with a CUDA_R_16BF C
//               in bf16 mode; the implicit-GEMM kernel for convolutions,
//               never cuDNN: cuda_device.cpp, "matrix products"); sum_rows
//               (the bias gradient) of bf16 dy into float32, and
//               copy_columns (Concat) of bf16 tensors. Safetensors files
//               read and write BF16 tensors. The CPU devices refuse to
//               compute on bf16 (they convert and copy it).
//               Since increment 2b, the models: on CUDA in bf16 mode every
//               layer's output and the gradient flowing back are bf16
//               tensors (every layer type: the ops above; Add, Scale on
//               axpby; global average pooling on average pooling; Flatten a
//               view). The float32 batch is converted once at the model's
//               entry, and forward() returns a float32 copy of the output
//               (what train, evaluate and predict read). The ops without a
//               bf16 kernel get exact float32 copies of their bf16 inputs:
//               SoftMax (forward and backward; its float32 result rounded
//               once to bf16: activation.hpp), L2 (the returned float32
//               output; its gradient rounded once), count_correct (the
//               returned output), and --check-numerics' sums. Softmax
//               cross-entropy reads the bf16 logits directly.
//   not yet     sum, SoftMax, cross-entropy on probabilities, L2 and
//               count_correct have no bf16 kernels (above: float32 copies),
//               and the optimizers take float32 only (as they must: master
//               weights). bf16 storage on the CPU.
//
// Where it lives
//   The mode is process-wide (as PyTorch's torch.set_float32_matmul_precision):
//   set_matmul_precision / PrecisionScope set it, and the devices read it at
//   each convolution and GEMM on float32 tensors (float64 is never affected:
//   gradient checks stay exact). check_precision_supported says whether a
//   device can run a mode; train / evaluate / predict / bench call it first.
//   CUDA devices run all three modes (above). The CPU runs bf16 on oneDNN's bf16 convolutions where the CPU has
//   AVX512-BF16 (or AMX), and otherwise emulates it exactly: the inputs are
//   rounded to bf16 into float32 copies and the float32 kernels multiply them
//   (the products are the same exact values; only the summation order can
//   differ). `janus info` and `janus bench` name the path taken.
#pragma once

#include <cstdint>
#include <string>

namespace janus {

class Device;
enum class DType;  // tensor.hpp

enum class Precision { FP32, TF32, BF16 };

// "fp32", "tf32", "bf16".
const char* precision_name(Precision p);
// Parses a name as above; throws janus::Error naming `where` (e.g. "config
// configs/x.json: precision", "--precision") and the accepted values.
Precision parse_precision(const std::string& name, const std::string& where);

// ---- the table -----------------------------------------------------------------

// The classes of operations of the table above.
enum class OpClass {
  Matmul,         // conv2d (all three passes) and gemm
  Elementwise,    // bias add, activations, pooling, dropout
  Normalization,  // BatchNorm and its statistics
  Loss,           // losses, softmax, sums, accuracy counts
  Optimizer,      // updates, master weights, optimizer state, checkpoints
};

// The type the multiplications of an operation read their inputs in; every
// sum is float32 (or wider) in all modes.
enum class MathType { F32, TF32, BF16 };

const char* math_type_name(MathType m);

// One row of the table.
struct PrecisionRule {
  OpClass op;
  const char* operations;  // in words, for the printed table
  MathType fp32, tf32, bf16;
};

// The table's rows, in the order printed above (kPrecisionRuleCount of them).
constexpr int kPrecisionRuleCount = 5;
const PrecisionRule* precision_table();
// The input type of `op` in mode `p` (a lookup in the table).
MathType input_math(Precision p, OpClass op);
// The table as aligned text, one row per line (for `janus info`).
std::string precision_table_text();

// ---- the process-wide mode -------------------------------------------------------

// The mode of matrix products on float32 tensors (default fp32). Thread-safe
// to read; set it before running a model, not while one runs.
Precision matmul_precision();
void set_matmul_precision(Precision p);

// Sets the mode for a scope and restores the previous one on exit.
class PrecisionScope {
 public:
  explicit PrecisionScope(Precision p) : saved_(matmul_precision()) { set_matmul_precision(p); }
  ~PrecisionScope() { set_matmul_precision(saved_); }
  PrecisionScope(const PrecisionScope&) = delete;
  PrecisionScope& operator=(const PrecisionScope&) = delete;

 private:
  Precision saved_;
};

// Throws janus::Error, naming the device and the mode, when `device` cannot
// run `p`: tf32 on a CPU device, and any mode but fp32 on cpu:reference (the
// float64 oracle). CUDA devices run all three.
void check_precision_supported(const Device& device, Precision p);

// The dtype a model stores its activations in (layer outputs and the
// gradients flowing back through them), the one place this is decided:
// bfloat16 on a CUDA device in bf16 mode for a float32 model, as autocast;
// otherwise the parameters' dtype (fp32 and tf32 modes, every CPU device,
// float64 models). NeuralNetwork::build asks it once, in the mode in force
// then (model.hpp, "activation storage").
DType activation_dtype(const Device& device, Precision p, DType parameter_dtype);

// How a CUDA device runs the matrix products of mode `p`, in words (for
// `janus info`; `janus bench` names each convolution's kernel).
std::string cuda_matmul_path(Precision p);

// How the CPU device runs bf16 on this machine, in words: oneDNN's bf16
// kernels (AVX512-BF16 / AMX) or the exact emulation on float32 kernels.
std::string cpu_bf16_path();

// ---- bfloat16 conversions --------------------------------------------------
//
// bfloat16 is the top 16 bits of an IEEE-754 binary32: sign, 8 exponent bits,
// 7 stored mantissa bits (unit roundoff 2^-8). The conversion rounds to
// nearest, ties to even (as cvt.rn.bf16.f32 on NVIDIA GPUs, __float2bfloat16,
// and PyTorch's c10::BFloat16; x86's VCVTNEPS2BF16 differs only in flushing
// subnormals to zero): add 0x7FFF plus the lowest kept bit, then truncate. Infinities and
// zeros are kept; overflow rounds to infinity; a NaN stays a NaN (quiet,
// sign kept), which the plain add-and-truncate could turn into infinity.

uint16_t float_to_bf16_bits(float x);
float bf16_bits_to_float(uint16_t bits);
// float_to_bf16_bits then back: x rounded to the nearest bfloat16, as a float.
float round_to_bf16(float x);
// out[i] = round_to_bf16(in[i]) for i < n (out may equal in). Large arrays
// are split over OpenMP threads (element-wise: the result does not depend on
// the split).
void round_to_bf16(const float* in, float* out, int64_t n);


}  // namespace janus
