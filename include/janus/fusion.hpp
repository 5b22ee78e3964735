// Layer fusion: NeuralNetwork's pass that lets a BatchNorm apply the ReLU
// layer right after it (the pair in every block of the CIFAR models), so the
// ReLU's separate forward and backward passes over the activations go away.
// The fused device operations are bit-identical to the unfused sequence
// (device.hpp, batchnorm_relu_*), so configs, layer names, checkpoints and
// results do not change; only the work does.
#pragma once

#include <memory>
#include <vector>

#include "janus/layer.hpp"

namespace janus {

// False when the environment sets JANUS_FUSE=0 (for A/B checks); else true.
bool fusion_enabled_from_environment();

// For each BatchNorm immediately followed by an activation layer with ReLU:
// tells the BatchNorm to apply the ReLU and the activation layer that it is
// absorbed (when `enabled`), or undoes both (when not). Returns the number of
// pairs fused.
int fuse_batchnorm_relu(std::vector<std::unique_ptr<Layer>>& layers, bool enabled);

}  // namespace janus
