// Losses (SPEC §2): the batch cost J and its gradient with respect to the
// prediction. Both take (m, k) predictions and targets of the same shape
// (one-hot or soft labels for CrossEntropy).
#pragma once

#include <memory>
#include <string>

#include "janus/tensor.hpp"

namespace janus {

class Loss {
 public:
  virtual ~Loss() = default;
  virtual std::string name() const = 0;
  virtual double forward(const Tensor& yhat, const Tensor& y) const = 0;
  virtual Tensor backward(const Tensor& yhat, const Tensor& y) const = 0;
  // forward() with J written to `loss` (one float64 element on the device of
  // yhat) and not returned: no host wait where the loss has a device op
  // (Device::*_into); the default computes forward() and uploads it.
  virtual void forward_into(const Tensor& yhat, const Tensor& y, Tensor& loss) const;

 protected:
  // Prediction and target must agree in shape; the message names both.
  void check_shapes(const Tensor& yhat, const Tensor& y) const;
};

// J = -(1/m) sum(Y * ln(Yhat)); dJ/dYhat = -(1/m) Y / Yhat, for Yhat a
// distribution (forward / backward). A NeuralNetwork always goes through
// forward_backward_from_logits (PyTorch's CrossEntropyLoss: log-softmax and
// NLL on logits): see model.hpp.
class CrossEntropy : public Loss {
 public:
  std::string name() const override { return "cross_entropy"; }
  double forward(const Tensor& yhat, const Tensor& y) const override;
  Tensor backward(const Tensor& yhat, const Tensor& y) const override;
  // The fused, stable softmax + cross-entropy on logits: returns J and
  // writes dJ/dZ into dz (allocated here) when dz is not null.
  double forward_backward_from_logits(const Tensor& z, const Tensor& y, Tensor* dz) const;
  // The same with J written to `loss` (one float64 element on z's device).
  void forward_backward_from_logits_into(const Tensor& z, const Tensor& y, Tensor* dz, Tensor& loss) const;
};

// J = (1/m) sum ||y_i - yhat_i||^2; dJ/dYhat = (2/m)(Yhat - Y).
class L2 : public Loss {
 public:
  std::string name() const override { return "l2"; }
  double forward(const Tensor& yhat, const Tensor& y) const override;
  Tensor backward(const Tensor& yhat, const Tensor& y) const override;
  void forward_into(const Tensor& yhat, const Tensor& y, Tensor& loss) const override;
};

// "cross_entropy" | "l2" (aliases "crossentropy", "mse").
std::unique_ptr<Loss> make_loss(const std::string& name);

}  // namespace janus
