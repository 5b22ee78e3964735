// Losses: shape checks here, arithmetic in the device.
#include "janus/loss.hpp"

#include "janus/device.hpp"
#include "janus/error.hpp"

namespace janus {

void Loss::check_shapes(const Tensor& yhat, const Tensor& y) const {
  JANUS_CHECK(yhat.defined() && y.defined(), "loss ", name(), ": undefined prediction or target");
  JANUS_CHECK(yhat.rank() == 2, "loss ", name(), ": prediction must be (batch, classes/outputs), got ",
              yhat.shape().str());
  JANUS_CHECK(yhat.shape() == y.shape(), "loss ", name(), ": target shape ", y.shape().str(),
              " does not match prediction shape ", yhat.shape().str());
  JANUS_CHECK(yhat.dim(0) > 0, "loss ", name(), ": empty batch ", yhat.shape().str());
  JANUS_CHECK(&yhat.device() == &y.device(), "loss ", name(), ": prediction on ", yhat.device().name(),
              " but target on ", y.device().name());
}

void Loss::forward_into(const Tensor& yhat, const Tensor& y, Tensor& loss) const {
  const double j = forward(yhat, y);
  JANUS_CHECK(loss.defined() && loss.dtype() == DType::F64 && loss.numel() == 1, "loss ", name(),
              ": the loss output must be one float64 element, not ", loss.shape().str());
  loss.device().copy_to_device(loss.raw(), &j, sizeof j);
}

double CrossEntropy::forward(const Tensor& yhat, const Tensor& y) const {
  check_shapes(yhat, y);
  return yhat.device().cross_entropy_forward(yhat, y);
}

Tensor CrossEntropy::backward(const Tensor& yhat, const Tensor& y) const {
  check_shapes(yhat, y);
  Tensor d = Tensor::empty(yhat.shape(), yhat.device(), yhat.dtype());
  yhat.device().cross_entropy_backward(yhat, y, d);
  return d;
}

double CrossEntropy::forward_backward_from_logits(const Tensor& z, const Tensor& y, Tensor* dz) const {
  check_shapes(z, y);
  if (dz) *dz = Tensor::empty(z.shape(), z.device(), z.dtype());
  return z.device().softmax_cross_entropy(z, y, dz);
}

void CrossEntropy::forward_backward_from_logits_into(const Tensor& z, const Tensor& y, Tensor* dz,
                                                     Tensor& loss) const {
  check_shapes(z, y);
  if (dz) *dz = Tensor::empty(z.shape(), z.device(), z.dtype());
  z.device().softmax_cross_entropy_into(z, y, dz, loss);
}

double L2::forward(const Tensor& yhat, const Tensor& y) const {
  check_shapes(yhat, y);
  return yhat.device().l2_forward(yhat, y);
}

void L2::forward_into(const Tensor& yhat, const Tensor& y, Tensor& loss) const {
  check_shapes(yhat, y);
  yhat.device().l2_forward_into(yhat, y, loss);
}

Tensor L2::backward(const Tensor& yhat, const Tensor& y) const {
  check_shapes(yhat, y);
  Tensor d = Tensor::empty(yhat.shape(), yhat.device(), yhat.dtype());
  yhat.device().l2_backward(yhat, y, d);
  return d;
}

std::unique_ptr<Loss> make_loss(const std::string& name) {
  if (name == "cross_entropy" || name == "crossentropy") return std::make_unique<CrossEntropy>();
  if (name == "l2" || name == "mse") return std::make_unique<L2>();
  throw Error("unknown loss '" + name + "' (expected cross_entropy or l2)");
}

}  // namespace janus
