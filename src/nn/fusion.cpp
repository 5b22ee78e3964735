// Layer fusion pass (fusion.hpp): BatchNorm + ReLU, a rewrite of the graph.
#include "janus/fusion.hpp"

#include "core/env_settings.hpp"
#include "janus/layers.hpp"

namespace janus {

bool fusion_enabled_from_environment() {
  return env::flag("JANUS_FUSE", true);
}

int fuse_batchnorm_relu(NeuralNetwork& net, bool enabled) {
  for (size_t i = 0; i < net.size(); ++i) {
    if (auto* bn = dynamic_cast<BatchNorm*>(&net.layer(i))) bn->set_fused_relu(false);
    if (auto* act = dynamic_cast<ActivationLayer*>(&net.layer(i))) act->set_absorbed(false);
  }
  if (!enabled) return 0;
  int fused = 0;
  for (size_t a = 0; a < net.size(); ++a) {
    auto* act = dynamic_cast<ActivationLayer*>(&net.layer(a));
    if (act == nullptr || act->activation()->kind() != ActivationKind::ReLU) continue;
    const int b = net.node_inputs(a).at(0);  // an activation layer has one input
    if (b == NeuralNetwork::kModelInput) continue;
    auto* bn = dynamic_cast<BatchNorm*>(&net.layer(static_cast<size_t>(b)));
    // The ReLU must be the BatchNorm's only consumer: another one would see
    // relu(batchnorm(x)) instead of batchnorm(x).
    if (bn == nullptr || net.consumer_count(static_cast<size_t>(b)) != 1) continue;
    bn->set_fused_relu(true);
    act->set_absorbed(true);
    ++fused;
  }
  return fused;
}

}  // namespace janus
