// Layer fusion pass (fusion.hpp): BatchNorm + ReLU.
#include "janus/fusion.hpp"

#include <cstdlib>
#include <cstring>

#include "janus/layers.hpp"

namespace janus {

bool fusion_enabled_from_environment() {
  const char* v = std::getenv("JANUS_FUSE");
  return v == nullptr || std::strcmp(v, "0") != 0;
}

int fuse_batchnorm_relu(std::vector<std::unique_ptr<Layer>>& layers, bool enabled) {
  int fused = 0;
  for (size_t i = 0; i < layers.size(); ++i) {
    auto* bn = dynamic_cast<BatchNorm*>(layers[i].get());
    if (bn == nullptr) continue;
    // Only the directly following layer: with anything in between (e.g.
    // Dropout), the ReLU does not act on the BatchNorm's output.
    auto* act = i + 1 < layers.size() ? dynamic_cast<ActivationLayer*>(layers[i + 1].get()) : nullptr;
    const bool pair = act != nullptr && act->activation()->kind() == ActivationKind::ReLU;
    bn->set_fused_relu(enabled && pair);
    if (act != nullptr) act->set_absorbed(enabled && pair);
    if (enabled && pair) ++fused;
  }
  return fused;
}

}  // namespace janus
