// A convolution test case written as one brace list, and its ConvGeometry:
// shared by the fast-CPU and oneDNN convolution tests.
#pragma once

#include "janus/device.hpp"

namespace janus::testing {

struct ConvCase {
  int N, H, W, C, KH, KW, F, sh, sw, ph, pw;
};

inline ConvGeometry geometry_of(const ConvCase& k) {
  ConvGeometry g;
  g.N = k.N; g.H = k.H; g.W = k.W; g.C = k.C;
  g.KH = k.KH; g.KW = k.KW; g.F = k.F;
  g.stride_h = k.sh; g.stride_w = k.sw; g.pad_h = k.ph; g.pad_w = k.pw;
  g.OH = (g.H + 2 * g.pad_h - g.KH) / g.stride_h + 1;
  g.OW = (g.W + 2 * g.pad_w - g.KW) / g.stride_w + 1;
  return g;
}

}  // namespace janus::testing
