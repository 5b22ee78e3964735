// OneDnnConv: F32 convolutions of the fast CPU device (FastCpuDevice) run by
// oneDNN's JIT-compiled convolution primitives, on Janus's own layouts.
//
// Why oneDNN
//   OpenBLAS is held to its AVX2 ("Haswell") kernels on this machine, which
//   caps im2col + SGEMM at about half of what the CPU can do; oneDNN's direct
//   convolutions are generated at run time for the CPU's actual instruction
//   set (AVX-512 here) and need no im2col copy.
//
// Layouts
//   Activations stay plain NHWC (format_tag::nhwc) in and out, so nothing is
//   converted per step on the large tensors. Weights are Janus's HWIO; by
//   default each primitive is created with format_tag::any for the weights,
//   i.e. oneDNN picks its preferred blocked layout, and the HWIO weights are
//   reordered into it before the forward / backward-data pass (the reordered
//   gradient of backward-weights is reordered back into HWIO). The weights
//   are small next to the activations, so the reorders are cheap; with
//   WeightsLayout::Plain the primitives read and write HWIO directly instead
//   (oneDNN then usually falls back to a slower GEMM-based kernel).
//
// Algorithms (ConvAlgorithm)
//   Direct: oneDNN's direct convolutions, on NHWC as it is; the result
//   equals the reference up to float rounding (the same products, summed in
//   another order).
//   Winograd: oneDNN's Winograd F(4x4, 3x3) kernels (3x3 stride 1,
//   ungrouped only; other geometries fall back to direct). They compute each 4x4 output tile
//   from 6x6 transformed tiles with 2.25x fewer multiplications than direct,
//   at the price of larger rounding errors (the transforms' constants reach
//   a few units: relative errors of about 1e-5 instead of 1e-6 in float32,
//   tested in test_onednn_conv). They only read and write oneDNN's blocked
//   layout (nChw16c), so each Winograd pass reorders its NHWC activations
//   into blocked copies (grow-only buffers) and its output back.
//   Auto (the default): Winograd for 3x3 stride-1 layers with at least 32
//   input and output channels on output maps of at most 16x16, direct
//   otherwise. Measured on this project's CIFAR layers (2 threads, batch
//   128, cold caches, the three passes together, reorders included):
//   64->64 at 16x16 16.0 -> 11.3 ms, 128->128 at 8x8 14.6 -> 10.0 ms,
//   32->64 at 16x16 8.2 -> 6.8 ms, while 32->32 at 32x32 gains nothing
//   (18.4 -> 16.2 ms before 2.2 ms of reorders). The rule depends on the
//   geometry only, never on timings, so runs stay reproducible.
//
// Groups (ConvGeometry::groups > 1)
//   Janus's grouped weights (KH, KW, C/groups, F) are oneDNN's grouped
//   weights in its hwigo layout, so they are passed as they are (and
//   reordered to the primitive's choice like any weights); oneDNN runs its
//   depthwise kernels when groups == C and its grouped (or GEMM-based) ones
//   otherwise. Where it has only a reference kernel, the pass declines as
//   below and the device runs Janus's reference loops (im2col has no groups).
//
// Steady state allocates nothing
//   Primitives, reorder primitives and the memory objects bound to them are
//   created once per (pass, geometry, bias, fused ReLU) and kept in a small map; each
//   call only rebinds the data pointers and executes. Primitives run with
//   scratchpad_mode::user: their scratch memory, and the reordered weights,
//   live in grow-only buffers owned by this object.
//
// Declining
//   A pass returns false when oneDNN has only its reference (plain loop)
//   implementation for a geometry, or none: the caller then runs its own
//   im2col path, which is faster than oneDNN's reference kernels. The
//   decision is cached with the primitive. Any other oneDNN failure throws
//   janus::Error naming the pass and the geometry.
//
// Threads and determinism
//   oneDNN here runs on the GNU OpenMP runtime, as Janus does, and sizes its
//   parallel regions from omp_get_max_threads(): every creation and
//   execution runs with that set to the `threads` given at construction
//   (restored afterwards). For a fixed thread count the primitives split work
//   statically, so results are bit-identical from run to run (tested, for
//   backward-weights' cross-thread reduction too).
//
// bf16 inputs (InputType::BF16, precision bf16: precision.hpp)
//   Each pass can instead read its two inputs as bfloat16: the activation
//   input(s) are converted (oneDNN's reorder, round to nearest even) into a
//   bf16 copy in a grow-only buffer, the weights into the primitive's bf16
//   layout; products accumulate in float32 and the output (y, dx or dw) is
//   float32, as before. Only direct kernels (no bf16 Winograd). These passes
//   are offered only where the CPU has bf16 dot-product instructions
//   (AVX512-BF16 or AMX, has_native_bf16()); elsewhere oneDNN would emulate
//   them more slowly than float32 runs, and the pass declines so that the
//   caller emulates bf16 on the float32 kernels (precision.hpp).
//
// Not thread-safe: one object serves one caller at a time (FastCpuDevice
// holds its workspace mutex around every call).
#pragma once

#include <memory>
#include <string>

#include "janus/device.hpp"

namespace janus::onednn {

enum class WeightsLayout {
  Any,    // oneDNN chooses (usually blocked); HWIO is reordered to and from it
  Plain,  // the primitives use HWIO as it is
};

enum class ConvAlgorithm {
  Auto,      // Winograd where it pays (uses_winograd), direct elsewhere
  Direct,    // always direct
  Winograd,  // Winograd wherever oneDNN has it, direct elsewhere
};

// Whether `algorithm` asks for Winograd on this geometry (oneDNN may still
// decline it, and the pass then runs direct).
bool uses_winograd(ConvAlgorithm algorithm, const ConvGeometry& g);

// The type the convolution reads its inputs in (its output is always F32).
enum class InputType { F32, BF16 };

// Whether this CPU has bf16 dot-product instructions that oneDNN uses
// (AVX512-BF16 or AMX): without them the BF16 passes decline.
bool has_native_bf16();

class OneDnnConv {
 public:
  explicit OneDnnConv(int threads, WeightsLayout layout = WeightsLayout::Any,
                      ConvAlgorithm algorithm = ConvAlgorithm::Auto);
  ~OneDnnConv();
  OneDnnConv(const OneDnnConv&) = delete;
  OneDnnConv& operator=(const OneDnnConv&) = delete;

  // The three passes on raw contiguous arrays (shapes as in ConvGeometry:
  // x/dx NHWC, w/dw HWIO, y/dy NHWC, bias (F) or null). Each overwrites its
  // output, returns false (output untouched) when it declines the geometry,
  // and throws janus::Error if oneDNN fails. forward with relu writes
  // max(conv + bias, 0) (a oneDNN post-op: one pass over y).
  // With InputType::BF16 the float32 inputs are rounded to bf16 first (see
  // above); the arrays passed are float32 in both cases.
  bool forward(const ConvGeometry& g, const float* x, const float* w, const float* bias,
               float* y, bool relu = false, InputType in = InputType::F32);
  bool backward_data(const ConvGeometry& g, const float* dy, const float* w, float* dx,
                     InputType in = InputType::F32);
  bool backward_weights(const ConvGeometry& g, const float* x, const float* dy, float* dw,
                        InputType in = InputType::F32);

  // The oneDNN implementation a pass uses for a geometry (creating its
  // primitive if needed), e.g. "brgconv:avx512_core", "jit:avx512_core" or
  // "jit_wino_4x3:avx512_core", or ""
  // when the pass declines it. For tests and diagnostics.
  enum class Pass { Forward, BackwardData, BackwardWeights };
  std::string implementation(Pass pass, const ConvGeometry& g, bool bias = false,
                             bool relu = false, InputType in = InputType::F32);

  int threads() const { return threads_; }

 private:
  struct Impl;
  int threads_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace janus::onednn
