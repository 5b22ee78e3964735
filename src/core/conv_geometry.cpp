// The convolution contract (device.hpp: ConvGeometry, check_conv_geometry),
// stated once: every backend and the Conv2D layer check a geometry here, so
// they accept and refuse exactly the same ones, with the same words.
#include "janus/device.hpp"
#include "janus/error.hpp"

namespace janus {

std::string conv_geometry_str(const ConvGeometry& g) {
  return detail::concat("N=", g.N, " H=", g.H, " W=", g.W, " C=", g.C, " KH=", g.KH, " KW=", g.KW, " F=", g.F,
                        " stride=", g.stride_h, "x", g.stride_w, " pad=", g.pad_h, "x", g.pad_w, " OH=", g.OH,
                        " OW=", g.OW, " groups=", g.groups);
}

void check_conv_geometry(const std::string& owner, const ConvGeometry& g) {
  JANUS_CHECK(g.N > 0 && g.H > 0 && g.W > 0 && g.C > 0 && g.KH > 0 && g.KW > 0 && g.F > 0 && g.stride_h > 0 &&
                  g.stride_w > 0 && g.pad_h >= 0 && g.pad_w >= 0,
              owner, ": invalid geometry ", conv_geometry_str(g));
  // groups: the input channels C and the output channels F both split into
  // `groups` equal parts (PyTorch: "in_channels must be divisible by groups",
  // likewise out_channels).
  JANUS_CHECK(g.groups >= 1, owner, ": 'groups' must be at least 1, got ", g.groups);
  JANUS_CHECK(g.C % g.groups == 0 && g.F % g.groups == 0, owner, ": 'groups' = ", g.groups,
              " must divide both the input channels C = ", g.C, " and the output channels F = ", g.F, " (",
              g.C % g.groups != 0 ? "C" : "F", " is not a multiple of it); input (N, H, W, C) = (", g.N, ", ", g.H,
              ", ", g.W, ", ", g.C, ")");
  JANUS_CHECK(g.H + 2 * g.pad_h >= g.KH && g.W + 2 * g.pad_w >= g.KW, owner,
              ": kernel larger than the padded input: ", conv_geometry_str(g));
  const int oh = (g.H + 2 * g.pad_h - g.KH) / g.stride_h + 1;
  const int ow = (g.W + 2 * g.pad_w - g.KW) / g.stride_w + 1;
  JANUS_CHECK(g.OH == oh && g.OW == ow, owner, ": output size should be ", oh, "x", ow, ": ",
              conv_geometry_str(g));
}

}  // namespace janus
