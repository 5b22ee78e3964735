// Device::convert on the CPU (both CPU devices): float32 <-> bfloat16 with the
// one host implementation of the rounding (janus::float_to_bf16_bits).
#include <cstdint>

#include "cpu/cpu_device.hpp"
#include "janus/precision.hpp"

namespace janus {

void CpuDevice::convert_kernel(const Tensor& src, Tensor& dst) {
  const int64_t n = src.numel();
  if (src.dtype() == DType::F32) {  // to bfloat16 (Device::convert allows only the two pairs)
    const auto* in = static_cast<const float*>(src.const_raw());
    auto* out = static_cast<uint16_t*>(dst.raw());
    for (int64_t i = 0; i < n; ++i) out[i] = float_to_bf16_bits(in[i]);
  } else {
    const auto* in = static_cast<const uint16_t*>(src.const_raw());
    float* out = dst.f32();
    for (int64_t i = 0; i < n; ++i) out[i] = bf16_bits_to_float(in[i]);
  }
}

}  // namespace janus
