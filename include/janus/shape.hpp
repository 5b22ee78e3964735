// Shape: the extents of a dense, row-major (C-order) tensor.
//
// Janus stores dense data as (batch, features) and images as NHWC
// (batch, rows, cols, channels); a Shape is just the list of extents.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace janus {

class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims) : dims_(dims) {}
  explicit Shape(std::vector<int64_t> dims) : dims_(std::move(dims)) {}

  int rank() const { return static_cast<int>(dims_.size()); }
  // Extent of axis i; negative i counts from the end, as in NumPy.
  int64_t operator[](int i) const { return dims_.at(static_cast<size_t>(i < 0 ? i + rank() : i)); }
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : dims_) n *= d;
    return n;
  }
  // Product of all extents but the last: the number of "rows" when the last
  // axis is treated as the feature/channel axis (softmax, bias, BatchNorm).
  int64_t rows() const { return rank() == 0 ? 1 : numel() / dims_.back(); }
  int64_t last() const { return dims_.empty() ? 1 : dims_.back(); }

  const std::vector<int64_t>& dims() const { return dims_; }
  bool operator==(const Shape& o) const { return dims_ == o.dims_; }
  bool operator!=(const Shape& o) const { return dims_ != o.dims_; }

  // "(128, 32, 32, 3)", the form used in every error message.
  std::string str() const {
    std::string s = "(";
    for (size_t i = 0; i < dims_.size(); ++i) {
      if (i) s += ", ";
      s += std::to_string(dims_[i]);
    }
    return s + ")";
  }

 private:
  std::vector<int64_t> dims_;
};

}  // namespace janus
