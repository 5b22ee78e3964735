// ActivationLayer: an activation on its own, e.g. ReLU after BatchNorm.
#include "janus/layers.hpp"

namespace janus {

Tensor ActivationLayer::forward(const Tensor& x, bool training) {
  check_input(x);
  build(x.shape(), x.device(), x.dtype());
  return act_.forward(x);
}

Tensor ActivationLayer::backward(const Tensor& dy) { return act_.backward(dy); }

nlohmann::json ActivationLayer::config() const {
  return {{"type", type()}, {"name", name()}, {"activation", activation_name(act_.kind())}};
}

}  // namespace janus
