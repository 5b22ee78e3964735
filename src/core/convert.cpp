// Device::convert: the op's contract, checked once for every backend before
// its kernel runs (device.hpp).
#include "janus/device.hpp"
#include "janus/error.hpp"

namespace janus {

void Device::convert(const Tensor& src, Tensor& dst) {
  JANUS_CHECK(src.defined() && dst.defined(), name(), ": convert: undefined tensor (src ",
              src.defined() ? "defined" : "undefined", ", dst ", dst.defined() ? "defined" : "undefined", ")");
  JANUS_CHECK(&src.device() == this && &dst.device() == this, name(), ": convert: tensors on ", src.device().name(),
              " and ", dst.device().name());
  JANUS_CHECK(src.shape() == dst.shape(), name(), ": convert: src ", src.shape().str(), " and dst ",
              dst.shape().str(), " differ in shape");
  const DType from = src.dtype(), to = dst.dtype();
  if (from == to) {
    copy_on_device(dst.raw(), src.const_raw(), src.bytes());
    return;
  }
  const bool supported = (from == DType::F32 && to == DType::BF16) || (from == DType::BF16 && to == DType::F32);
  JANUS_CHECK(supported, name(), ": convert: ", dtype_name(from), " to ", dtype_name(to), " (shape ",
              src.shape().str(), ") is not supported (float32 <-> bfloat16 only; float64 through Tensor::to)");
  if (src.numel() == 0) return;
  convert_kernel(src, dst);
}

}  // namespace janus
