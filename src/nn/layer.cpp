// Layer: lazy building from the first input shapes, and shared checks.
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
  return build(std::vector<Shape>{input_shape}, device, dtype);
}

Shape Layer::build(const std::vector<Shape>& input_shapes, Device& device, DType dtype) {
  check_input_count(input_shapes.size());
  std::vector<Shape> examples;
  for (size_t k = 0; k < input_shapes.size(); ++k) {
    const Shape& s = input_shapes[k];
    const std::string which = input_shapes.size() > 1 ? " " + std::to_string(k) : std::string();
    JANUS_CHECK(s.rank() >= 2, where(), ": input", which, " of shape ", s.str(),
                " has no batch axis (expected (batch, features) or (batch, rows, cols, channels))");
    examples.push_back(per_example(s));
  }
  if (built_) {
    for (size_t k = 0; k < examples.size(); ++k)
      JANUS_CHECK(examples[k] == built_inputs_.at(k), where(), ": built for inputs (batch, ",
                  built_inputs_[k].str().substr(1), " but got ", input_shapes[k].str(),
                  input_shapes.size() > 1 ? " as input " + std::to_string(k) : std::string());
    return graph_output_shape(input_shapes);
  }
  const Shape out = graph_output_shape(input_shapes);  // validates before allocating
  // Every layer with parameters has one input: its parameters follow its shape.
  // bf16 activations (model.hpp, "activation storage") keep float32 master
  // weights, as autocast does: the bf16 kernels take float32 parameters.
  create_parameters(input_shapes[0], device, dtype == DType::BF16 ? DType::F32 : dtype);
  built_inputs_ = examples;
  built_ = true;
  return out;
}

std::vector<std::pair<std::string, Parameter*>> Layer::named_parameters() {
  std::vector<std::pair<std::string, Parameter*>> out;
  for (Parameter* p : parameters()) out.emplace_back(p->name, p);
  return out;
}

void Layer::check_input_count(size_t n) const {
  const auto lo = static_cast<size_t>(min_inputs()), hi = static_cast<size_t>(max_inputs());
  if (n >= lo && n <= hi) return;
  const std::string expected = lo == hi ? std::to_string(lo)
                               : max_inputs() == kAnyNumberOfInputs ? "at least " + std::to_string(lo)
                                                                    : std::to_string(lo) + " to " + std::to_string(hi);
  throw Error(where() + ": takes " + expected + " input" + (hi == 1 ? "" : "s") + ", got " + std::to_string(n));
}

Shape Layer::graph_output_shape(const std::vector<Shape>& input_shapes) const {
  check_input_count(input_shapes.size());
  return output_shape(input_shapes[0]);
}

Tensor Layer::graph_forward(const std::vector<Tensor>& inputs, bool training) {
  check_input_count(inputs.size());
  return forward(inputs[0], training);
}

std::vector<Tensor> Layer::graph_backward(const Tensor& dy) { return {backward(dy)}; }

Shape MultiInputLayer::build_for(const std::vector<Tensor>& inputs) {
  check_input_count(inputs.size());
  std::vector<Shape> shapes;
  for (const Tensor& x : inputs) {
    check_input(x);
    shapes.push_back(x.shape());
  }
  return build(shapes, inputs[0].device(), inputs[0].dtype());
}

void Layer::check_input(const Tensor& x) const {
  JANUS_CHECK(x.defined(), where(), ": undefined input");
  JANUS_CHECK(x.dim(0) > 0, where(), ": empty batch, input shape ", x.shape().str());
}

Tensor Layer::backward_from_preactivation(const Tensor&) {
  throw Error(where() + ": has no activation to fuse with the loss");
}

}  // namespace janus
