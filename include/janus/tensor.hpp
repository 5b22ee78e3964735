// Tensor: a dense, contiguous, row-major array that lives on one Device.
//
// Storage is allocated through the Device and shared between a tensor and its
// views (reshape() makes a view, clone() a copy). Copies between devices are
// always explicit: to(device). float32 is the working type everywhere; float64
// exists on the CPU so that gradient checks can use central differences
// without drowning in rounding error; bfloat16 is a storage type: tensors of
// it are made by Device::convert / to(DType) (or read from a checkpoint), the
// CUDA backend's element-wise, pooling, dropout, BatchNorm and softmax-cross-
// entropy kernels read and write it (device.hpp says which ops), and the CPU
// devices refuse it in every computing op (they convert and copy it).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "janus/shape.hpp"

namespace janus {

class Device;

// F32: IEEE binary32. F64: IEEE binary64. BF16: bfloat16, the top 16 bits of
// a binary32 (precision.hpp: float_to_bf16_bits), stored as uint16_t.
enum class DType { F32, F64, BF16 };

// Exhaustive switches (no default): a new dtype is a compile error (-Werror
// -Wswitch) wherever a dtype is mapped, never silently another dtype.
inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F64: return 8;
    case DType::BF16: return 2;
  }
  return 0;  // unreachable: every enumerator returns above
}
inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "float32";
    case DType::F64: return "float64";
    case DType::BF16: return "bfloat16";
  }
  return "unknown dtype";  // unreachable
}

// A block of device memory; freed through its device when the last tensor
// that refers to it goes away.
class Storage {
 public:
  Storage(Device& device, size_t bytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  Device& device() const { return *device_; }
  // The bytes, for writing: handing this pointer out counts as a write and
  // advances version() (Tensor::version says why).
  void* data() const {
    version_.fetch_add(1, std::memory_order_acq_rel);
    return data_;
  }
  // The bytes, for reading only: version() stays as it is.
  const void* const_data() const { return data_; }
  size_t bytes() const { return bytes_; }
  uint64_t version() const { return version_.load(std::memory_order_acquire); }

 private:
  Device* device_;
  void* data_;
  size_t bytes_;
  mutable std::atomic<uint64_t> version_{0};
};

class Tensor {
 public:
  Tensor() = default;  // an undefined tensor: defined() is false

  // Uninitialised memory of the given shape on the given device.
  static Tensor empty(const Shape& shape, Device& device, DType dtype = DType::F32);
  static Tensor zeros(const Shape& shape, Device& device, DType dtype = DType::F32);
  static Tensor full(const Shape& shape, double value, Device& device, DType dtype = DType::F32);
  // Copies host values into a new tensor (converting to dtype). To BF16 each
  // float is rounded to nearest even (float_to_bf16_bits); from doubles to
  // BF16 throws janus::Error (via float32 it could round twice: round the
  // values to float first).
  static Tensor from_host(const std::vector<float>& values, const Shape& shape, Device& device,
                          DType dtype = DType::F32);
  static Tensor from_host(const std::vector<double>& values, const Shape& shape, Device& device,
                          DType dtype = DType::F64);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int64_t numel() const { return shape_.numel(); }
  int rank() const { return shape_.rank(); }
  int64_t dim(int i) const { return shape_[i]; }
  DType dtype() const { return dtype_; }
  size_t bytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  Device& device() const;

  // Raw element pointers (device memory for a GPU tensor). The typed
  // accessors check the dtype. These are the mutable accessors: each call
  // counts as a write to the storage and advances version(), whatever the
  // caller then does with the pointer (every device op's output, copy_from,
  // a checkpoint load, a user's own kernel or memcpy all obtain their
  // pointer here).
  void* raw() const;
  float* f32() const;
  double* f64() const;
  template <class T>
  T* data() const;
  // Read-only element pointers (PyTorch's const_data_ptr): version() stays
  // as it is. For readers whose reading must not invalidate a cache keyed by
  // version() (a convolution's weights on the cuDNN path).
  const void* const_raw() const;
  const float* const_f32() const;
  const double* const_f64() const;

  // The version of the elements, PyTorch's tensor version counter: a counter
  // of the storage (so shared by all views of it) that every mutable access
  // above advances. Data derived from a tensor and cached (the cuDNN path's
  // KRSC copy of a convolution's weights, src/cuda/conv_cudnn_filters.hpp)
  // is current while the storage is the same (storage_ref()) and its
  // version() has not changed. A pointer kept from a mutable access and
  // written through after a later version() was read is not seen (as with
  // PyTorch's data_ptr()): take the pointer again for each write.
  uint64_t version() const;
  // The storage's identity for as long as a cache keeps it (it never refers
  // to another storage, and expires when this one is freed).
  std::weak_ptr<const Storage> storage_ref() const { return storage_; }

  // A view with another shape of the same number of elements: no copy.
  Tensor reshape(const Shape& shape) const;
  // A deep copy on the same device / on another device / in another dtype.
  // to(DType): float32 <-> bfloat16 is Device::convert on this tensor's
  // device (round to nearest even; device.hpp); float32 -> float64 and
  // bfloat16 -> float64 (exact) and float64 -> float32 (rounded to nearest)
  // go through the host; float64 -> bfloat16 throws janus::Error (it could
  // round twice: convert to float32 first).
  Tensor clone() const;
  Tensor to(Device& device) const;
  Tensor to(DType dtype) const;
  // Copies src's elements into this tensor (same numel and dtype; any devices).
  void copy_from(const Tensor& src);

  // Values brought to the host, converted to double / float (exactly, except
  // float64 -> float, rounded to nearest).
  std::vector<double> to_host() const;
  std::vector<float> to_host_f32() const;
  // Single element by flat index (slow; for tests and small scalars).
  double item(int64_t flat_index = 0) const;

  // True when both refer to the same storage (a view relation).
  bool shares_storage_with(const Tensor& o) const { return storage_ == o.storage_; }

 private:
  std::shared_ptr<Storage> storage_;
  size_t offset_bytes_ = 0;
  Shape shape_;
  DType dtype_ = DType::F32;
};

template <>
inline float* Tensor::data<float>() const { return f32(); }
template <>
inline double* Tensor::data<double>() const { return f64(); }

}  // namespace janus
