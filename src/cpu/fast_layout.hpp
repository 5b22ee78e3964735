// Layout conversions between Janus's NHWC activations and oneDNN's blocked
// nChw16c layout (channels in blocks of 16: [N][ceil(C/16)][H][W][16], the
// lanes past C zero), which oneDNN's Winograd convolutions read and write
// (onednn_conv.cpp stages their operands through these).
//
// Both directions move whole 64-byte lines when C is a multiple of 16 (16
// channels of one position are contiguous on both sides), so they run at
// memory speed: 0.11 ms for 128x64x16x16 on two threads with warm caches,
// where oneDNN's reorder primitive took 0.49-0.55 ms inside a training step
// (ONEDNN_VERBOSE). In a whole CIFAR training step the gain is small (1-2%:
// the copies of a step are memory-bound either way), but the code is short
// and exact. Pure data movement. Images are split over the OpenMP threads
// (the caller sets their count, as for oneDNN).
#pragma once

#include <cstdint>

namespace janus::fast {

// Number of floats of an nChw16c tensor of N images of H*W positions and C
// channels (C rounded up to a multiple of 16).
int64_t nchw16c_size(int64_t N, int64_t HW, int64_t C);

// dst (nChw16c) = src (NHWC); the padding lanes of the last block are zeroed.
void nhwc_to_nchw16c(int64_t N, int64_t HW, int64_t C, const float* src, float* dst);
// dst (NHWC) = src (nChw16c).
void nchw16c_to_nhwc(int64_t N, int64_t HW, int64_t C, const float* src, float* dst);

}  // namespace janus::fast
