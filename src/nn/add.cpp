// Add: the residual sum of n inputs (layers.hpp), on Device::axpby.
#include "janus/error.hpp"
#include "janus/layers.hpp"

namespace janus {

Shape Add::graph_output_shape(const std::vector<Shape>& input_shapes) const {
  check_input_count(input_shapes.size());
  for (size_t k = 1; k < input_shapes.size(); ++k)
    JANUS_CHECK(input_shapes[k] == input_shapes[0], where(), ": input ", k, " has shape ", input_shapes[k].str(),
                " but input 0 has ", input_shapes[0].str(), " (all inputs of a sum must have one shape)");
  return input_shapes[0];
}

Tensor Add::graph_forward(const std::vector<Tensor>& inputs, bool training) {
  build_for(inputs);
  // y = x0, then y += xk in input order: the same additions on every device.
  Tensor y = inputs[0].clone();
  for (size_t k = 1; k < inputs.size(); ++k) y.device().axpby(1.0, inputs[k], 1.0, y);
  inputs_ = inputs.size();
  return y;
}

std::vector<Tensor> Add::graph_backward(const Tensor& dy) {
  JANUS_CHECK(inputs_ > 0, where(), ": backward before forward");
  JANUS_CHECK(dy.defined(), where(), ": undefined gradient");
  // d(x0 + x1 + ...)/dxk = 1: every input receives dy itself.
  return std::vector<Tensor>(inputs_, dy);
}

}  // namespace janus
