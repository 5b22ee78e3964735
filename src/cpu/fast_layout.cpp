// NHWC <-> nChw16c (see fast_layout.hpp). The per-image kernels are cloned
// per vector width (vector_clones.hpp): a block of 16 floats is one AVX-512
// register.
#include "cpu/fast_layout.hpp"

#include "cpu/vector_clones.hpp"

namespace janus::fast {

namespace {

constexpr int64_t kBlock = 16;

int64_t blocks_of(int64_t C) { return (C + kBlock - 1) / kBlock; }

// One image: position by position (reading NHWC in order), each position's
// channel blocks go to their planes.
JANUS_VECTOR_CLONES void image_to_blocked(int64_t HW, int64_t C, const float* src, float* dst) {
  const int64_t full = C / kBlock, tail = C - full * kBlock;
  for (int64_t p = 0; p < HW; ++p) {
    const float* s = src + p * C;
    for (int64_t b = 0; b < full; ++b) {
      float* d = dst + (b * HW + p) * kBlock;
#pragma omp simd
      for (int64_t j = 0; j < kBlock; ++j) d[j] = s[b * kBlock + j];
    }
    if (tail > 0) {
      float* d = dst + (full * HW + p) * kBlock;
      for (int64_t j = 0; j < kBlock; ++j) d[j] = j < tail ? s[full * kBlock + j] : 0.0f;
    }
  }
}

JANUS_VECTOR_CLONES void image_to_nhwc(int64_t HW, int64_t C, const float* src, float* dst) {
  const int64_t full = C / kBlock, tail = C - full * kBlock;
  for (int64_t p = 0; p < HW; ++p) {
    float* d = dst + p * C;
    for (int64_t b = 0; b < full; ++b) {
      const float* s = src + (b * HW + p) * kBlock;
#pragma omp simd
      for (int64_t j = 0; j < kBlock; ++j) d[b * kBlock + j] = s[j];
    }
    if (tail > 0) {
      const float* s = src + (full * HW + p) * kBlock;
      for (int64_t j = 0; j < tail; ++j) d[full * kBlock + j] = s[j];
    }
  }
}

}  // namespace

int64_t nchw16c_size(int64_t N, int64_t HW, int64_t C) { return N * blocks_of(C) * kBlock * HW; }

void nhwc_to_nchw16c(int64_t N, int64_t HW, int64_t C, const float* src, float* dst) {
  const int64_t image = blocks_of(C) * kBlock * HW;
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) image_to_blocked(HW, C, src + n * HW * C, dst + n * image);
}

void nchw16c_to_nhwc(int64_t N, int64_t HW, int64_t C, const float* src, float* dst) {
  const int64_t image = blocks_of(C) * kBlock * HW;
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) image_to_nhwc(HW, C, src + n * image, dst + n * HW * C);
}

}  // namespace janus::fast
