// ActivationLayer: an activation on its own, e.g. ReLU after BatchNorm.
#include "janus/error.hpp"
#include "janus/layers.hpp"
#include "janus/nlohmann_json.hpp"

namespace janus {

Tensor ActivationLayer::forward(const Tensor& x, bool training) {
  check_input(x);
  build(x.shape(), x.device(), x.dtype());
  // Absorbed: the BatchNorm before already applied the ReLU (fusion.hpp).
  if (absorbed_) return x;
  return act_.forward(x);
}

Tensor ActivationLayer::backward(const Tensor& dy) {
  // Absorbed: the BatchNorm before masks the gradient itself.
  if (absorbed_) return dy;
  JANUS_CHECK(act_.z().defined(), where(), ": backward before forward");
  JANUS_CHECK(dy.shape() == act_.z().shape(), where(), ": gradient of shape ", dy.shape().str(),
              " does not match output shape ", act_.z().shape().str());
  return act_.backward(dy);
}

Json ActivationLayer::config() const {
  nlohmann::json cfg = {{"type", type()}, {"name", name()}};
  add_activation_config(cfg, "activation", act_.function());
  return cfg;
}

}  // namespace janus
