// Tensor and Storage: ownership, views and explicit copies. No arithmetic
// lives here; all of that goes through the Device.
#include "janus/tensor.hpp"

#include <cstring>
#include <new>
#include <type_traits>

#include "janus/device.hpp"
#include "janus/error.hpp"
#include "janus/precision.hpp"

namespace janus {

Storage::Storage(Device& device, size_t bytes) : device_(&device), data_(nullptr), bytes_(bytes) {
  data_ = device.allocate(bytes == 0 ? 1 : bytes);
}

Storage::~Storage() { device_->deallocate(data_, bytes_ == 0 ? 1 : bytes_); }

Tensor Tensor::empty(const Shape& shape, Device& device, DType dtype) {
  // Checked size: a product that overflows (absurd extents from a config or a
  // file) must not wrap into a small allocation.
  constexpr uint64_t kMaxBytes = uint64_t(1) << 48;
  uint64_t bytes = dtype_size(dtype);
  for (int64_t d : shape.dims()) {
    JANUS_CHECK(d >= 0, "Tensor::empty: negative extent in shape ", shape.str());
    JANUS_CHECK(d == 0 || bytes <= kMaxBytes / static_cast<uint64_t>(d), "tensor of shape ", shape.str(),
                " is too large to allocate");
    bytes *= static_cast<uint64_t>(d);
  }
  Tensor t;
  t.shape_ = shape;
  t.dtype_ = dtype;
  try {
    t.storage_ = std::make_shared<Storage>(device, static_cast<size_t>(bytes));
  } catch (const std::bad_alloc&) {
    throw Error(detail::concat("out of memory: cannot allocate ", bytes, " bytes for a tensor of shape ",
                               shape.str(), " on ", device.name()));
  }
  return t;
}

Tensor Tensor::full(const Shape& shape, double value, Device& device, DType dtype) {
  Tensor t = empty(shape, device, dtype);
  if (t.numel() > 0) device.fill(t, value);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, Device& device, DType dtype) {
  return full(shape, 0.0, device, dtype);
}

namespace {
// The host image of `values` in `dtype`'s bytes: one conversion per element
// (float -> bfloat16 rounds to nearest even, as float_to_bf16_bits).
template <class Dst, class Src, class Convert>
void upload_converted(const std::vector<Src>& values, Tensor& t, Device& device, Convert convert) {
  std::vector<Dst> buf(values.size());
  for (size_t i = 0; i < values.size(); ++i) buf[i] = convert(values[i]);
  device.copy_to_device(t.raw(), buf.data(), t.bytes());
}

template <class Src>
Tensor from_host_values(const std::vector<Src>& values, const Shape& shape, Device& device, DType dtype) {
  JANUS_CHECK(static_cast<int64_t>(values.size()) == shape.numel(), "Tensor::from_host: ",
              values.size(), " values do not fill shape ", shape.str());
  constexpr bool from_float = std::is_same<Src, float>::value;
  JANUS_CHECK(dtype != DType::BF16 || from_float, "Tensor::from_host: float64 values to ",
              "bfloat16 (shape ", shape.str(), ") could round twice through float32; round them to float first");
  Tensor t = Tensor::empty(shape, device, dtype);
  switch (dtype) {
    case DType::F32: upload_converted<float>(values, t, device, [](Src v) { return static_cast<float>(v); }); break;
    case DType::F64: upload_converted<double>(values, t, device, [](Src v) { return static_cast<double>(v); }); break;
    case DType::BF16:
      upload_converted<uint16_t>(values, t, device, [](Src v) { return float_to_bf16_bits(static_cast<float>(v)); });
      break;
  }
  return t;
}
}  // namespace

Tensor Tensor::from_host(const std::vector<float>& values, const Shape& shape, Device& device, DType dtype) {
  return from_host_values(values, shape, device, dtype);
}

Tensor Tensor::from_host(const std::vector<double>& values, const Shape& shape, Device& device, DType dtype) {
  return from_host_values(values, shape, device, dtype);
}

Device& Tensor::device() const {
  JANUS_CHECK(defined(), "Tensor::device on an undefined tensor");
  return storage_->device();
}

void* Tensor::raw() const {
  JANUS_CHECK(defined(), "access to an undefined tensor");
  return static_cast<char*>(storage_->data()) + offset_bytes_;
}

const void* Tensor::const_raw() const {
  JANUS_CHECK(defined(), "access to an undefined tensor");
  return static_cast<const char*>(storage_->const_data()) + offset_bytes_;
}

uint64_t Tensor::version() const {
  JANUS_CHECK(defined(), "version of an undefined tensor");
  return storage_->version();
}

namespace {
void check_dtype(DType have, DType want, const Shape& shape) {
  JANUS_CHECK(have == want, "tensor of shape ", shape.str(), " is ", dtype_name(have), ", ", dtype_name(want),
              " expected");
}
}  // namespace

const float* Tensor::const_f32() const {
  check_dtype(dtype_, DType::F32, shape_);
  return static_cast<const float*>(const_raw());
}

const double* Tensor::const_f64() const {
  check_dtype(dtype_, DType::F64, shape_);
  return static_cast<const double*>(const_raw());
}

float* Tensor::f32() const {
  check_dtype(dtype_, DType::F32, shape_);
  return static_cast<float*>(raw());
}

double* Tensor::f64() const {
  check_dtype(dtype_, DType::F64, shape_);
  return static_cast<double*>(raw());
}

Tensor Tensor::reshape(const Shape& shape) const {
  JANUS_CHECK(shape.numel() == numel(), "cannot reshape ", shape_.str(), " (", numel(),
              " elements) to ", shape.str(), " (", shape.numel(), " elements)");
  Tensor view = *this;
  view.shape_ = shape;
  return view;
}

Tensor Tensor::clone() const { return to(device()); }

Tensor Tensor::to(Device& target) const {
  Tensor out = empty(shape_, target, dtype_);
  out.copy_from(*this);
  return out;
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == dtype_) return clone();
  const bool bf16_pair = (dtype_ == DType::F32 && dtype == DType::BF16) || (dtype_ == DType::BF16 && dtype == DType::F32);
  if (bf16_pair) {  // on the device, without a trip through the host
    Tensor out = empty(shape_, device(), dtype);
    device().convert(*this, out);
    return out;
  }
  std::vector<double> host = to_host();  // exact for float32 and bfloat16 sources
  return from_host(host, shape_, device(), dtype);
}

void Tensor::copy_from(const Tensor& src) {
  JANUS_CHECK(src.numel() == numel() && src.dtype() == dtype(), "copy_from: source ",
              src.shape().str(), " ", dtype_name(src.dtype()), " does not match destination ",
              shape_.str(), " ", dtype_name(dtype_));
  if (bytes() == 0) return;
  Device& from = src.device();
  Device& to_dev = device();
  if (&from == &to_dev) {
    to_dev.copy_on_device(raw(), src.const_raw(), bytes());
  } else if (from.kind() == DeviceKind::CPU) {
    to_dev.copy_to_device(raw(), src.const_raw(), bytes());
  } else if (to_dev.kind() == DeviceKind::CPU) {
    from.copy_to_host(raw(), src.const_raw(), bytes());
  } else {  // device to device through the host
    std::vector<char> staging(bytes());
    from.copy_to_host(staging.data(), src.const_raw(), bytes());
    to_dev.copy_to_device(raw(), staging.data(), bytes());
  }
}

namespace {
// The elements of t (on any device) as float or double, exactly except
// float64 -> float.
template <class Out>
std::vector<Out> host_values(const Tensor& t, int64_t first, int64_t count) {
  std::vector<Out> out(static_cast<size_t>(count));
  if (out.empty()) return out;
  const size_t element = dtype_size(t.dtype());
  const void* src = static_cast<const char*>(t.const_raw()) + static_cast<size_t>(first) * element;
  auto fetch = [&](auto tag, auto convert) {
    if constexpr (std::is_same<decltype(tag), Out>::value) {  // same type: straight into out, no staging copy
      t.device().copy_to_host(out.data(), src, out.size() * element);
      return;
    }
    std::vector<decltype(tag)> raw(out.size());
    t.device().copy_to_host(raw.data(), src, raw.size() * element);
    for (size_t i = 0; i < raw.size(); ++i) out[i] = static_cast<Out>(convert(raw[i]));
  };
  switch (t.dtype()) {
    case DType::F32: fetch(float{}, [](float v) { return v; }); break;
    case DType::F64: fetch(double{}, [](double v) { return v; }); break;
    case DType::BF16: fetch(uint16_t{}, [](uint16_t b) { return bf16_bits_to_float(b); }); break;
  }
  return out;
}
}  // namespace

std::vector<double> Tensor::to_host() const { return host_values<double>(*this, 0, numel()); }

std::vector<float> Tensor::to_host_f32() const { return host_values<float>(*this, 0, numel()); }

double Tensor::item(int64_t flat_index) const {
  JANUS_CHECK(flat_index >= 0 && flat_index < numel(), "item(", flat_index, ") out of range for shape ",
              shape_.str());
  return host_values<double>(*this, flat_index, 1)[0];
}

}  // namespace janus
