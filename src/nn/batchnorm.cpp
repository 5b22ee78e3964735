// BatchNorm over the last axis: features of dense input or channels of NHWC
// input (the device views the input as rows x C either way).
#include "janus/error.hpp"
#include "janus/layers.hpp"

namespace janus {

BatchNorm::BatchNorm(std::string name, double momentum, double eps)
    : Layer(std::move(name)), momentum_(momentum), eps_(eps) {
  JANUS_CHECK(momentum >= 0 && momentum <= 1, where(), ": momentum must be in [0, 1], got ", momentum);
  JANUS_CHECK(eps > 0, where(), ": eps must be positive, got ", eps);
}

void BatchNorm::create_parameters(const Shape& in, Device& device, DType dtype) {
  const Shape c{in.last()};
  gamma_.value = Tensor::full(c, 1.0, device, dtype);
  gamma_.grad = Tensor::zeros(c, device, dtype);
  beta_.value = Tensor::zeros(c, device, dtype);
  beta_.grad = Tensor::zeros(c, device, dtype);
  running_mean_ = Tensor::zeros(c, device, dtype);
  running_var_ = Tensor::full(c, 1.0, device, dtype);
  saved_mean_ = Tensor::zeros(c, device, dtype);
  saved_invstd_ = Tensor::zeros(c, device, dtype);
}

Tensor BatchNorm::forward(const Tensor& x, bool training) {
  check_input(x);
  build(x.shape(), x.device(), x.dtype());
  Device& dev = x.device();
  Tensor y = Tensor::empty(x.shape(), dev, x.dtype());
  if (training) {
    JANUS_CHECK(x.shape().rows() > 1, where(), ": training needs more than one value per channel, got input ",
                x.shape().str());
    if (fused_relu_) {
      dev.batchnorm_relu_forward_train(x, gamma_.value, beta_.value, momentum_, eps_, running_mean_,
                                       running_var_, saved_mean_, saved_invstd_, y);
      y_ = y;
    } else {
      dev.batchnorm_forward_train(x, gamma_.value, beta_.value, momentum_, eps_, running_mean_, running_var_,
                                  saved_mean_, saved_invstd_, y);
    }
    x_ = x;
  } else if (fused_relu_) {
    dev.batchnorm_relu_forward_eval(x, gamma_.value, beta_.value, running_mean_, running_var_, eps_, y);
  } else {
    dev.batchnorm_forward_eval(x, gamma_.value, beta_.value, running_mean_, running_var_, eps_, y);
  }
  return y;
}

Tensor BatchNorm::backward(const Tensor& dy) {
  JANUS_CHECK(x_.defined(), where(), ": backward needs a training-mode forward first");
  JANUS_CHECK(dy.shape() == x_.shape(), where(), ": gradient of shape ", dy.shape().str(),
              " does not match output shape ", x_.shape().str());
  Tensor dx = Tensor::empty(x_.shape(), dy.device(), dy.dtype());
  if (fused_relu_) {
    JANUS_CHECK(y_.defined(), where(), ": backward needs a training-mode forward first");
    dy.device().batchnorm_relu_backward(x_, y_, dy, gamma_.value, saved_mean_, saved_invstd_, dx, gamma_.grad,
                                        beta_.grad);
  } else {
    dy.device().batchnorm_backward(x_, dy, gamma_.value, saved_mean_, saved_invstd_, dx, gamma_.grad, beta_.grad);
  }
  return dx;
}

Json BatchNorm::config() const {
  return {{"type", type()}, {"name", name()}, {"momentum", momentum_}, {"eps", eps_}};
}

}  // namespace janus
