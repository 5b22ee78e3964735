// Per-parameter training options in a layer's JSON config: the keys that set
// ParameterOptions (layer.hpp) on the layer's parameters, as PyTorch's
// requires_grad and parameter groups and Caffe's ParamSpec do.
//
// On the layer (every parameter of the layer):
//   "trainable": false      frozen: no update, no optimizer state, no weight
//                           decay; gradients still flow to the layer's input
//                           (Keras's trainable, PyTorch's requires_grad)
//   "lr_mult": 0.1          learning rate = schedule's lr * lr_mult, >= 0
//                           (Caffe's lr_mult)
//   "decay_mult": 0         weight decay = optimizer's weight_decay *
//                           decay_mult, >= 0 (Caffe's decay_mult); overrides
//                           the optimizer's "weight_decay_applies_to" rule
// Per parameter, overriding the layer's keys for that parameter:
//   "parameters": {"gamma": {"trainable": false},
//                  "b": {"lr_mult": 2, "decay_mult": 0}}
// with the layer's parameter names (Layer::named_parameters): "W" and "b"
// (fully_connected, conv2d), "gamma" and "beta" (batchnorm), and for a
// composite layer (composite_layer.hpp) its children's, "CHILD.NAME", e.g.
// {"type": "residual_block", "parameters": {"conv1.W": {"lr_mult": 0.1}}}.
// Example: BatchNorm with its scale frozen,
//   {"type": "batchnorm", "parameters": {"gamma": {"trainable": false}}}.
//
// Errors (janus::Error, starting with "layer 'NAME' (TYPE)"): one of these
// keys on a layer without parameters; a parameter name the layer does not
// have (the message lists those it has); an unknown key in a parameter's
// object; trainable not a boolean; a multiplier that is not a number >= 0.
#pragma once

#include <string>

namespace janus {

// Whether `key` is one of the keys above (make_layer() lets them through to
// parameter_options_from_config()).
bool is_parameter_options_key(const std::string& key);

// (The keys are read and written by parameter_options_from_config and
// add_parameter_options_to_config, in the opt-in <janus/nlohmann_json.hpp>;
// make_layer and NeuralNetwork::config call them for every layer.)

}  // namespace janus
