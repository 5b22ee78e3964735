// Layer fusion: NeuralNetwork's graph rewrite that lets a BatchNorm apply
// the ReLU layer that consumes it (the pair in every block of the CIFAR
// models), so the ReLU's separate forward and backward passes over the
// activations go away. The fused device operations are bit-identical to the
// unfused sequence (device.hpp, batchnorm_relu_*), so configs, layer names,
// checkpoints and results do not change; only the work does.
//
// The other fusions are not graph rewrites: conv + bias + activation and
// dense + bias + activation are one layer each (the activation is the
// layer's option, Device::conv2d_activation_forward), and softmax +
// cross-entropy belongs to the output node, whose only consumer is the loss
// (NeuralNetwork::uses_fused_softmax_cross_entropy).
#pragma once

#include "janus/model.hpp"

namespace janus {

// False when the environment sets JANUS_FUSE=0 (for A/B checks); else true.
bool fusion_enabled_from_environment();

// For each BatchNorm whose output feeds exactly one input of one later node,
// an activation layer with ReLU: tells the BatchNorm to apply the ReLU and
// the activation layer that it is absorbed (when `enabled`). A BatchNorm
// whose output has other consumers too (a residual branch taken before the
// ReLU) is never fused: they must see the output without the ReLU. Every
// other BatchNorm and activation layer is reset to unfused. Returns the
// number of pairs fused.
int fuse_batchnorm_relu(NeuralNetwork& net, bool enabled);

}  // namespace janus
