// Scale: Y = factor * X (layers.hpp), on Device::axpby.
#include <cmath>

#include "janus/error.hpp"
#include "janus/layers.hpp"

namespace janus {

Scale::Scale(std::string name, double factor) : Layer(std::move(name)), factor_(factor) {
  JANUS_CHECK(std::isfinite(factor), where(), ": 'factor' must be a finite number, got ", factor);
}

Tensor Scale::forward(const Tensor& x, bool training) {
  check_input(x);
  build(x.shape(), x.device(), x.dtype());
  Tensor y = Tensor::empty(x.shape(), x.device(), x.dtype());
  x.device().axpby(factor_, x, 0.0, y);  // beta 0: y is not read
  return y;
}

Tensor Scale::backward(const Tensor& dy) {
  JANUS_CHECK(built(), where(), ": backward before forward");
  Tensor dx = Tensor::empty(dy.shape(), dy.device(), dy.dtype());
  dy.device().axpby(factor_, dy, 0.0, dx);
  return dx;
}

}  // namespace janus
