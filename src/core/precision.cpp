// Precision modes, the precision table and the bfloat16 conversions (see
// include/janus/precision.hpp).
#include "janus/precision.hpp"

#include <atomic>
#include <cstring>
#include <sstream>

#include "janus/device.hpp"
#include "janus/error.hpp"

namespace janus {

namespace {

// The table of precision.hpp, the only place that decides which operations
// run in which type.
constexpr PrecisionRule kTable[kPrecisionRuleCount] = {
    {OpClass::Matmul, "conv2d forward / backward-data / backward-filter, gemm", MathType::F32,
     MathType::TF32, MathType::BF16},
    {OpClass::Elementwise, "bias add, activations, pooling, dropout", MathType::F32, MathType::F32,
     MathType::F32},
    {OpClass::Normalization, "BatchNorm (statistics, running estimates)", MathType::F32,
     MathType::F32, MathType::F32},
    {OpClass::Loss, "losses, softmax, sums, accuracy", MathType::F32, MathType::F32, MathType::F32},
    {OpClass::Optimizer, "optimizer updates, master weights, checkpoints", MathType::F32,
     MathType::F32, MathType::F32},
};

std::atomic<Precision> g_matmul_precision{Precision::FP32};

// Below this many elements one thread converts (about the cost of waking
// the others).
constexpr int64_t kParallelElements = int64_t{1} << 16;

}  // namespace

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::FP32: return "fp32";
    case Precision::TF32: return "tf32";
    case Precision::BF16: return "bf16";
  }
  return "?";
}

Precision parse_precision(const std::string& name, const std::string& where) {
  for (Precision p : {Precision::FP32, Precision::TF32, Precision::BF16})
    if (name == precision_name(p)) return p;
  throw Error(detail::concat(where, ": unknown precision '", name,
                             "' (expected fp32, tf32 or bf16)"));
}

const char* math_type_name(MathType m) {
  switch (m) {
    case MathType::F32: return "f32";
    case MathType::TF32: return "tf32 x tf32";
    case MathType::BF16: return "bf16 x bf16";
  }
  return "?";
}

const PrecisionRule* precision_table() { return kTable; }

MathType input_math(Precision p, OpClass op) {
  for (const PrecisionRule& r : kTable)
    if (r.op == op) return p == Precision::FP32 ? r.fp32 : p == Precision::TF32 ? r.tf32 : r.bf16;
  throw Error("input_math: operation class missing from the precision table");
}

std::string precision_table_text() {
  std::ostringstream out;
  auto cell = [&out](const std::string& s, size_t width) {
    out << s << std::string(width > s.size() ? width - s.size() : 1, ' ');
  };
  cell("operations", 58);
  cell("fp32", 7);
  cell("tf32", 13);
  out << "bf16\n";
  for (const PrecisionRule& r : kTable) {
    cell(r.operations, 58);
    cell(math_type_name(r.fp32), 7);
    cell(math_type_name(r.tf32), 13);
    out << math_type_name(r.bf16) << "\n";
  }
  out << "(\"bf16 x bf16\": inputs rounded to bfloat16, products summed in float32, float32 output;\n"
         " \"tf32 x tf32\" likewise with TF32 inputs, 10-bit mantissa: CUDA only)\n"
         "activations (layer outputs and their gradients) are stored in float32, and in bfloat16 on CUDA\n"
         "in bf16 mode (as autocast; parameters, statistics, losses stay float32)\n";
  return out.str();
}

Precision matmul_precision() { return g_matmul_precision.load(std::memory_order_relaxed); }

void set_matmul_precision(Precision p) { g_matmul_precision.store(p, std::memory_order_relaxed); }

void check_precision_supported(const Device& device, Precision p) {
  if (p == Precision::FP32) return;
  const std::string where = detail::concat("precision ", precision_name(p), " on device ", device.name(), ": ");
  if (device.kind() == DeviceKind::CPU) {
    JANUS_CHECK(device.name() != "cpu:reference", where,
                "the reference device computes in float32/float64 only (it is the oracle); use 'cpu'");
    JANUS_CHECK(p != Precision::TF32, where,
                "TF32 is tensor-core math of NVIDIA GPUs; the CPU has no TF32 arithmetic "
                "(use fp32, or bf16 for reduced precision on the CPU)");
    return;
  }
  // CUDA runs every mode of the table (src/cuda/cuda_device.cpp, "matrix
  // products"): cuBLAS / cuDNN tensor-op math and rounded inputs.
}

DType activation_dtype(const Device& device, Precision p, DType parameter_dtype) {
  // The CPU computes on float32 only (it emulates bf16 products on float32
  // copies), so only CUDA, whose kernels take bf16 storage, stores bf16.
  const bool bf16 = p == Precision::BF16 && device.kind() == DeviceKind::CUDA && parameter_dtype == DType::F32;
  return bf16 ? DType::BF16 : parameter_dtype;
}

std::string cuda_matmul_path(Precision p) {
  switch (p) {
    case Precision::FP32:
      return "cuBLAS SGEMM (no TF32); cuDNN FMA math or Janus implicit GEMM";
    case Precision::TF32:
      return "cuBLAS SGEMM with TF32 tensor-op math; convolutions on cuDNN tensor-op math (inputs "
             "rounded to TF32, cvt.rna) or Janus implicit GEMM on TF32 tensor cores (WMMA)";
    case Precision::BF16:
      return "cuBLAS GemmEx bf16 x bf16 -> f32 (CUBLAS_COMPUTE_32F); convolutions on cuDNN tensor-op "
             "math (inputs rounded to bf16) or Janus implicit GEMM on bf16 tensor cores (WMMA)";
  }
  return "?";
}

uint16_t float_to_bf16_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  const uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
  const uint32_t quiet_nan = (u >> 16) | 0x0040u;
  // A select, not a branch, so that the array form vectorises.
  return static_cast<uint16_t>((u & 0x7FFFFFFFu) > 0x7F800000u ? quiet_nan : rounded);
}

float bf16_bits_to_float(uint16_t bits) {
  const uint32_t u = static_cast<uint32_t>(bits) << 16;
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

float round_to_bf16(float x) { return bf16_bits_to_float(float_to_bf16_bits(x)); }

void round_to_bf16(const float* in, float* out, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelElements)
  for (int64_t i = 0; i < n; ++i) out[i] = round_to_bf16(in[i]);
}

}  // namespace janus
