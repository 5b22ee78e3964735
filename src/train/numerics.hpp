// Optional per-layer numeric checks for training (`janus train
// --check-numerics`): find the first layer where a NaN or an infinity
// appears. Each check is one device sum per tensor (a non-finite element
// makes the sum non-finite), so it costs a host sync per layer and step;
// off by default.
#pragma once

#include <string>

#include "janus/model.hpp"
#include "janus/tensor.hpp"

namespace janus::train_detail {

// True when every element of t is finite (t empty: true).
bool all_finite(const Tensor& t);

// model.forward(x, training) layer by layer, checking the input and every
// layer's output. On the first non-finite one, returns an undefined tensor
// and sets *fault to where it appeared ("the output of layer 'fc_1'
// (fully_connected)"); otherwise returns the output and leaves *fault empty.
Tensor forward_checked(NeuralNetwork& model, const Tensor& x, bool training, std::string* fault);

// After backward: the first parameter gradient (in backward order, i.e.
// from the last layer to the first, as they are computed) that is not
// finite, as "the gradient of 'fc_1.W' (layer 'fc_1', fully_connected)";
// "" when all are finite.
std::string nonfinite_gradient(NeuralNetwork& model);

// After an optimizer step: the first parameter (in layer order) that is not
// finite, described as above; "" when all are finite.
std::string nonfinite_parameter(NeuralNetwork& model);

}  // namespace janus::train_detail
