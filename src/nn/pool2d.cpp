// Pool2D: max or average pooling of NHWC windows. The backward pass needs
// only the input (max pooling re-finds each window's first maximum), so the
// layer caches X and nothing else; except max pooling in training on a device
// that keeps each window's argmax (Device::max_pool2d_forward_train): the
// layer then caches that argmax instead, and the backward routes dy through it.
#include "janus/error.hpp"
#include "janus/layers.hpp"

namespace janus {

Pool2D::Pool2D(std::string name, PoolMode mode, int kernel_rows, int kernel_cols, int stride, Padding pad)
    : Layer(std::move(name)), mode_(mode), kr_(kernel_rows), kc_(kernel_cols), stride_(stride), pad_(pad) {
  JANUS_CHECK(kernel_rows > 0 && kernel_cols > 0, where(), ": kernel shape must be positive, got (",
              kernel_rows, ", ", kernel_cols, ")");
  JANUS_CHECK(stride > 0, where(), ": stride must be positive, got ", stride);
}

PoolGeometry Pool2D::geometry(const Shape& in) const {
  JANUS_CHECK(in.rank() == 4, where(), ": expects NHWC input (batch, rows, cols, channels) but got ",
              in.str());
  PoolGeometry g;
  g.N = static_cast<int>(in[0]);
  g.H = static_cast<int>(in[1]);
  g.W = static_cast<int>(in[2]);
  g.C = static_cast<int>(in[3]);
  g.KH = kr_;
  g.KW = kc_;
  g.stride_h = g.stride_w = stride_;
  const SlidingWindow w = slide_window(in, kr_, kc_, stride_, pad_, where(), "pooling window");
  // A window made only of padding would have no maximum.
  JANUS_CHECK(w.pad_h < g.KH && w.pad_w < g.KW, where(), ": padding (", w.pad_h, ", ", w.pad_w,
              ") must be smaller than the window (", kr_, ", ", kc_, ")");
  g.pad_h = w.pad_h;
  g.pad_w = w.pad_w;
  g.OH = w.out_h;
  g.OW = w.out_w;
  return g;
}

Shape Pool2D::output_shape(const Shape& in) const {
  const PoolGeometry g = geometry(in);
  return Shape{g.N, g.OH, g.OW, g.C};
}

Tensor Pool2D::forward(const Tensor& x, bool training) {
  check_input(x);
  const Shape out = build(x.shape(), x.device(), x.dtype());
  Tensor y = Tensor::empty(out, x.device(), x.dtype());
  const PoolGeometry g = geometry(x.shape());
  argmax_ = Tensor();
  if (training && mode_ == PoolMode::Max)
    argmax_ = x.device().max_pool2d_forward_train(g, x, y);
  else
    x.device().pool2d_forward(mode_, g, x, y);
  x_ = argmax_.defined() ? Tensor() : x;
  in_shape_ = x.shape();
  return y;
}

Tensor Pool2D::backward(const Tensor& dy) {
  JANUS_CHECK(x_.defined() || argmax_.defined(), where(), ": backward before forward");
  const PoolGeometry g = geometry(in_shape_);
  JANUS_CHECK(dy.shape() == Shape({g.N, g.OH, g.OW, g.C}), where(), ": gradient of shape ", dy.shape().str(),
              " does not match output shape ", Shape({g.N, g.OH, g.OW, g.C}).str());
  Tensor dx = Tensor::empty(in_shape_, dy.device(), dy.dtype());
  if (argmax_.defined())
    dy.device().max_pool2d_backward_argmax(g, argmax_, dy, dx);
  else
    dy.device().pool2d_backward(mode_, g, x_, dy, dx);
  return dx;
}

Json Pool2D::config() const {
  return {{"type", type()},
          {"name", name()},
          {"mode", mode_ == PoolMode::Max ? "max" : "average"},
          {"kernel", {kr_, kc_}},
          {"stride", stride_},
          {"pad", pad_.to_json()}};
}

}  // namespace janus
