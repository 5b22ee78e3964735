// Device::max_pool2d_backward_argmax's default: a device whose
// max_pool2d_forward_train keeps no argmax (the default) never hands one out,
// so being called means a caller mixed devices or skipped the forward.
#include "janus/device.hpp"
#include "janus/error.hpp"

namespace janus {

void Device::max_pool2d_backward_argmax(const PoolGeometry& g, const Tensor&, const Tensor& dy, Tensor&) {
  JANUS_CHECK(false, name(), ": max_pool2d_backward_argmax for a ", g.KH, "x", g.KW, " pool with dy ",
              dy.shape().str(), ": this device keeps no argmax (max_pool2d_forward_train returned none); "
              "use pool2d_backward with the input");
}

}  // namespace janus
