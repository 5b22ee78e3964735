// Reference element-wise kernels compiled again for the vector units of the
// machine they run on (AVX-512, AVX2, else the baseline build), chosen once
// at load time (GCC/Clang target_clones). The project builds for baseline
// x86-64 (SSE2), where these double-precision loops run two lanes wide.
//
// Bit-identical to the reference: simd_kernels.cpp is compiled with
// -ffp-contract=off (CMakeLists.txt), so no multiply-add is fused into an FMA
// and every operation rounds exactly as in the reference kernel; the lanes of
// a vector are independent elements, so the width changes nothing else.
#pragma once

#include <cstdint>

namespace janus::fast {

// cpu::sgd_update (see sgd_update.hpp).
void sgd_update(int64_t n, float* w, const float* g, float* velocity, double lr, double momentum,
                double weight_decay, bool nesterov);
void sgd_update(int64_t n, double* w, const double* g, double* velocity, double lr,
                double momentum, double weight_decay, bool nesterov);

}  // namespace janus::fast
