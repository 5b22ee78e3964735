// Tensor: a dense, contiguous, row-major array that lives on one Device.
//
// Storage is allocated through the Device and shared between a tensor and its
// views (reshape() makes a view, clone() a copy). Copies between devices are
// always explicit: to(device). float32 is the working type everywhere; float64
// exists on the CPU so that gradient checks can use central differences
// without drowning in rounding error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "janus/shape.hpp"

namespace janus {

class Device;

enum class DType { F32, F64 };

inline size_t dtype_size(DType t) { return t == DType::F32 ? 4 : 8; }
inline const char* dtype_name(DType t) { return t == DType::F32 ? "float32" : "float64"; }

// A block of device memory; freed through its device when the last tensor
// that refers to it goes away.
class Storage {
 public:
  Storage(Device& device, size_t bytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  Device& device() const { return *device_; }
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }

 private:
  Device* device_;
  void* data_;
  size_t bytes_;
};

class Tensor {
 public:
  Tensor() = default;  // an undefined tensor: defined() is false

  // Uninitialised memory of the given shape on the given device.
  static Tensor empty(const Shape& shape, Device& device, DType dtype = DType::F32);
  static Tensor zeros(const Shape& shape, Device& device, DType dtype = DType::F32);
  static Tensor full(const Shape& shape, double value, Device& device, DType dtype = DType::F32);
  // Copies host values into a new tensor (converting to dtype).
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
  // accessors check the dtype.
  void* raw() const;
  float* f32() const;
  double* f64() const;
  template <class T>
  T* data() const;

  // A view with another shape of the same number of elements: no copy.
  Tensor reshape(const Shape& shape) const;
  // A deep copy on the same device / on another device / in another dtype.
  Tensor clone() const;
  Tensor to(Device& device) const;
  Tensor to(DType dtype) const;
  // Copies src's elements into this tensor (same numel and dtype; any devices).
  void copy_from(const Tensor& src);

  // Values brought to the host, converted to double / float.
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
