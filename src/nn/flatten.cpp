// Flatten: (batch, ...) -> (batch, features) as a view (no copy), and back.
#include "janus/error.hpp"
#include "janus/layers.hpp"

namespace janus {

Shape Flatten::output_shape(const Shape& in) const {
  JANUS_CHECK(in.rank() >= 1, where(), ": input of shape ", in.str(), " has no batch axis");
  // The product of the per-example extents (not numel / batch: the batch may be 0).
  int64_t features = 1;
  for (int i = 1; i < in.rank(); ++i) features *= in[i];
  return Shape{in[0], features};
}

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
