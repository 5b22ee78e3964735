// GlobalAvgPool: NHWC -> (N, C) means (layers.hpp), as average pooling whose
// one window covers the whole map.
#include "janus/error.hpp"
#include "janus/layers.hpp"

namespace janus {

PoolGeometry GlobalAvgPool::geometry(const Shape& in) const {
  JANUS_CHECK(in.rank() == 4, where(), ": expects NHWC input (batch, rows, cols, channels) but got ", in.str());
  JANUS_CHECK(in[1] > 0 && in[2] > 0 && in[3] > 0, where(), ": empty map ", in.str());
  PoolGeometry g;
  g.N = static_cast<int>(in[0]);
  g.H = g.KH = static_cast<int>(in[1]);
  g.W = g.KW = static_cast<int>(in[2]);
  g.C = static_cast<int>(in[3]);
  g.OH = g.OW = 1;
  return g;
}

Shape GlobalAvgPool::output_shape(const Shape& in) const {
  const PoolGeometry g = geometry(in);
  return Shape{in[0], g.C};
}

Tensor GlobalAvgPool::forward(const Tensor& x, bool training) {
  check_input(x);
  const Shape out = build(x.shape(), x.device(), x.dtype());
  const PoolGeometry g = geometry(x.shape());
  Tensor y = Tensor::empty(Shape{g.N, 1, 1, g.C}, x.device(), x.dtype());
  x.device().pool2d_forward(PoolMode::Average, g, x, y);
  x_ = x;
  return y.reshape(out);
}

Tensor GlobalAvgPool::backward(const Tensor& dy) {
  JANUS_CHECK(x_.defined(), where(), ": backward before forward");
  const PoolGeometry g = geometry(x_.shape());
  JANUS_CHECK(dy.shape() == Shape({g.N, g.C}), where(), ": gradient of shape ", dy.shape().str(),
              " does not match output shape ", Shape({g.N, g.C}).str());
  Tensor dx = Tensor::empty(x_.shape(), dy.device(), dy.dtype());
  dy.device().pool2d_backward(PoolMode::Average, g, x_, dy.reshape(Shape{g.N, 1, 1, g.C}), dx);
  return dx;
}

}  // namespace janus
