// Layer: lazy building from the first input shape, and shared checks.
#include "janus/layer.hpp"

#include "janus/error.hpp"

namespace janus {

namespace {
// The per-example part of a shape (everything but the batch axis).
Shape per_example(const Shape& s) {
  std::vector<int64_t> d(s.dims().begin() + (s.rank() > 0 ? 1 : 0), s.dims().end());
  return Shape(d);
}
}  // namespace

Shape Layer::build(const Shape& input_shape, Device& device, DType dtype) {
  JANUS_CHECK(input_shape.rank() >= 2, where(), ": input of shape ", input_shape.str(),
              " has no batch axis (expected (batch, features) or (batch, rows, cols, channels))");
  const Shape example = per_example(input_shape);
  if (built_) {
    JANUS_CHECK(example == built_input_, where(), ": built for inputs (batch, ",
                built_input_.str().substr(1), " but got ", input_shape.str());
    return output_shape(input_shape);
  }
  const Shape out = output_shape(input_shape);  // validates before allocating
  create_parameters(input_shape, device, dtype);
  built_input_ = example;
  built_ = true;
  return out;
}

void Layer::check_input(const Tensor& x) const {
  JANUS_CHECK(x.defined(), where(), ": undefined input");
  JANUS_CHECK(x.dim(0) > 0, where(), ": empty batch, input shape ", x.shape().str());
}

Tensor Layer::backward_from_preactivation(const Tensor&) {
  throw Error(where() + ": has no activation to fuse with the loss");
}

}  // namespace janus
