// Flatten: (batch, ...) -> (batch, features) as a view (no copy), and back.
#include "janus/error.hpp"
#include "janus/layers.hpp"

namespace janus {

Shape Flatten::output_shape(const Shape& in) const { return Shape{in[0], in.numel() / in[0]}; }

Tensor Flatten::forward(const Tensor& x, bool training) {
  check_input(x);
  const Shape out = build(x.shape(), x.device(), x.dtype());
  in_shape_ = x.shape();
  return x.reshape(out);
}

Tensor Flatten::backward(const Tensor& dy) {
  JANUS_CHECK(in_shape_.rank() > 0, where(), ": backward before forward");
  return dy.reshape(in_shape_);
}

}  // namespace janus
