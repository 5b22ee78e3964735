// Choosing a cuDNN convolution algorithm, as pure logic over cuDNN's ranked
// list (no cuDNN types here, so the simulator build tests it too).
//
// cudnnGetConvolution*Algorithm_v7 returns every algorithm, fastest first
// by cuDNN's heuristics, each with a status, the math type it was ranked for,
// its workspace and whether it is deterministic. Janus runs the first that
//   * reported CUDNN_STATUS_SUCCESS,
//   * was ranked for the convolution descriptor's math type: in fp32
//     CUDNN_FMA_MATH, true FP32 (an entry for CUDNN_DEFAULT_MATH may use TF32
//     tensor cores on Ampere and later, about 10 bits of mantissa, far outside
//     the fp32 parity bound); in tf32 and bf16 CUDNN_TENSOR_OP_MATH (an FMA
//     entry would be exact but forgo the tensor cores the mode is for),
//   * needs at most the workspace limit,
//   * is not a transform algorithm (FFT, FFT_TILING, WINOGRAD,
//     WINOGRAD_NONFUSED): their rounding error is relative to the transformed
//     sums, not to sum |x||w| per output, so they can exceed the
//     dot-product bound of the parity suite; JANUS_CUDNN_TRANSFORMS=1 allows
//     them,
//   * and, for the backward passes, is deterministic (a second pass accepts
//     non-deterministic ones when nothing else is left).
// At run time an algorithm may still fail (CUDNN_STATUS_NOT_SUPPORTED for an
// awkward shape, or its workspace cannot be allocated): the caller walks on
// down the ranked list, and when the list is exhausted falls back to Janus's
// implicit-GEMM kernels. The choice, the rejected entries and the reasons are
// logged once per geometry and direction with JANUS_CUDNN_LOG=1.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace janus::cuda {

// One entry of cuDNN's ranked list, in cuDNN-free terms.
struct AlgoCandidate {
  int algo = 0;             // the cudnnConvolution*Algo_t value
  std::string name;         // "IMPLICIT_PRECOMP_GEMM", ...
  bool status_ok = false;   // perf.status == CUDNN_STATUS_SUCCESS
  bool math_matches = false;  // perf.mathType == the descriptor's math type
  size_t workspace = 0;     // bytes
  bool deterministic = false;
  bool transform = false;   // an FFT or Winograd algorithm
};

// The candidates Janus may run, in the order to try them, and why the others
// were left out ("FFT: transform algorithm (numerics)").
struct AlgoRanking {
  std::vector<AlgoCandidate> order;
  std::vector<std::string> rejected;
};

AlgoRanking rank_algorithms(const std::vector<AlgoCandidate>& ranked, size_t workspace_limit,
                            bool want_deterministic, bool allow_transforms);

// Result of trying to run one candidate.
enum class AlgoRun { Ok, NotSupported, NoWorkspace };

// Runs the candidates of `ranking` in order from `start` until one returns
// Ok; returns its index, or -1 when every one failed (the caller then uses
// the implicit-GEMM kernels). `failures` collects "NAME: NOT_SUPPORTED"-style
// notes for the log. Any other error propagates (an exception from `run`).
int run_first_working(const AlgoRanking& ranking, size_t start,
                      const std::function<AlgoRun(const AlgoCandidate&)>& run, std::vector<std::string>& failures);

// JANUS_CUDNN_TRANSFORMS=1 (FFT / Winograd allowed) and JANUS_CUDNN_LOG=1.
bool cudnn_transforms_allowed();
bool cudnn_log_enabled();

}  // namespace janus::cuda
