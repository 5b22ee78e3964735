// Training-time augmentation of HWC images: random crop after zero padding,
// horizontal flip. Randomness is a pure function of (seed, epoch, sample).
#include <janus/counter_rng.hpp>
#include <janus/data.hpp>

#include <algorithm>
#include <cstring>

namespace janus {

void augment_image(const float* src, float* dst, int rows, int cols, int channels, const AugmentOptions& opts,
                   uint64_t seed, uint64_t epoch, uint64_t sample_index) {
  const size_t row_len = static_cast<size_t>(cols) * static_cast<size_t>(channels);
  const uint64_t h =
      splitmix64(splitmix64(splitmix64(seed ^ 0xA0761D6478BD642Full) ^ epoch) ^ (sample_index * 0x9E3779B97F4A7C15ull));
  const int pad = std::max(0, opts.crop_pad);
  const uint64_t span = static_cast<uint64_t>(2 * pad + 1);
  // Offsets of the crop window in the padded image, minus the padding.
  const int dy = pad ? static_cast<int>((h & 0xFFFF) % span) - pad : 0;
  const int dx = pad ? static_cast<int>(((h >> 16) & 0xFFFF) % span) - pad : 0;
  const bool flip = opts.hflip && ((h >> 63) & 1u);

  for (int r = 0; r < rows; ++r) {
    float* out = dst + static_cast<size_t>(r) * row_len;
    const int sr = r + dy;
    if (sr < 0 || sr >= rows) {
      std::fill(out, out + row_len, opts.pad_value);
      continue;
    }
    const float* in = src + static_cast<size_t>(sr) * row_len;
    if (!flip) {
      // Columns c whose source c + dx is inside [0, cols).
      const int c0 = std::min(cols, std::max(0, -dx)), c1 = std::min(cols, cols - dx);
      std::fill(out, out + static_cast<size_t>(c0) * channels, opts.pad_value);
      if (c1 > c0)
        std::memcpy(out + static_cast<size_t>(c0) * channels, in + static_cast<size_t>(c0 + dx) * channels,
                    static_cast<size_t>(c1 - c0) * channels * sizeof(float));
      std::fill(out + static_cast<size_t>(std::max(c0, c1)) * channels, out + row_len, opts.pad_value);
    } else {
      // Crop then flip: out(r, c) = cropped(r, cols-1-c) = src(r+dy, cols-1-c+dx).
      for (int c = 0; c < cols; ++c) {
        const int sc = cols - 1 - c + dx;
        float* o = out + static_cast<size_t>(c) * channels;
        if (sc < 0 || sc >= cols) {
          std::fill(o, o + channels, opts.pad_value);
        } else {
          const float* p = in + static_cast<size_t>(sc) * channels;
          for (int ch = 0; ch < channels; ++ch) o[ch] = p[ch];
        }
      }
    }
  }
}

}  // namespace janus
