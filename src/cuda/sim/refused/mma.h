// Janus CUDA simulator: <mma.h> is served, not refused. The warp matrix
// functions Janus's kernels use (nvcuda::wmma with TF32 operands) are
// emulated warp-collectively in src/cuda/sim/wmma.hpp, which says what is
// supported and with which semantics; anything else fails to compile there.
#pragma once
#include "cuda/sim/wmma.hpp"
