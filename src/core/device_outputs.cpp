// Device::check_f64_output: the contract of the device-resident loss and
// metric outputs (the *_into ops of device.hpp), checked once for every backend.
#include "janus/device.hpp"
#include "janus/error.hpp"

namespace janus {

void Device::check_f64_output(const char* op, const char* what, const Tensor& t, int64_t numel) const {
  JANUS_CHECK(t.defined(), op, " on ", name(), ": '", what, "' is undefined");
  JANUS_CHECK(&t.device() == this, op, " on ", name(), ": '", what, "' is on ", t.device().name());
  JANUS_CHECK(t.dtype() == DType::F64 && t.numel() == numel, op, " on ", name(), ": '", what,
              "' must be float64 with ", numel, " element", numel == 1 ? "" : "s", ", not ", dtype_name(t.dtype()),
              " ", t.shape().str());
}

}  // namespace janus
