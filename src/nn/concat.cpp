// Concat: concatenation along the last axis (layers.hpp), on Device::copy_columns.
#include "janus/error.hpp"
#include "janus/layers.hpp"

namespace janus {

Shape Concat::graph_output_shape(const std::vector<Shape>& input_shapes) const {
  check_input_count(input_shapes.size());
  const Shape& first = input_shapes[0];
  JANUS_CHECK(first.rank() >= 2, where(), ": input 0 of shape ", first.str(), " has no batch axis");
  std::vector<int64_t> out = first.dims();
  for (size_t k = 1; k < input_shapes.size(); ++k) {
    const Shape& s = input_shapes[k];
    bool leading_match = s.rank() == first.rank();
    for (int a = 0; leading_match && a + 1 < first.rank(); ++a) leading_match = s[a] == first[a];
    JANUS_CHECK(leading_match, where(), ": input ", k, " has shape ", s.str(), " but input 0 has ", first.str(),
                " (inputs are concatenated along the last axis and must agree on every other axis)");
    out.back() += s[s.rank() - 1];
  }
  return Shape(out);
}

Tensor Concat::graph_forward(const std::vector<Tensor>& inputs, bool training) {
  const Shape out = build_for(inputs);
  Device& dev = inputs[0].device();
  Tensor y = Tensor::empty(out, dev, inputs[0].dtype());
  int64_t col = 0;
  for (const Tensor& x : inputs) {
    const int64_t width = x.dim(x.rank() - 1);
    dev.copy_columns(x, 0, y, col, width);
    col += width;
  }
  input_shapes_.clear();
  for (const Tensor& x : inputs) input_shapes_.push_back(x.shape());
  return y;
}

std::vector<Tensor> Concat::graph_backward(const Tensor& dy) {
  JANUS_CHECK(!input_shapes_.empty(), where(), ": backward before forward");
  const Shape out = graph_output_shape(input_shapes_);
  JANUS_CHECK(dy.defined() && dy.shape() == out, where(), ": gradient of shape ",
              dy.defined() ? dy.shape().str() : std::string("(undefined)"), " does not match output shape ", out.str());
  std::vector<Tensor> dx;
  int64_t col = 0;
  for (const Shape& s : input_shapes_) {
    const int64_t width = s[s.rank() - 1];
    Tensor g = Tensor::empty(s, dy.device(), dy.dtype());
    dy.device().copy_columns(dy, col, g, 0, width);
    dx.push_back(g);
    col += width;
  }
  return dx;
}

}  // namespace janus
