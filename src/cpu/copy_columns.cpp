// Device::copy_columns on the CPU (both CPU devices): one memcpy per row.
#include <cstring>

#include "cpu/cpu_device.hpp"

namespace janus {

void CpuDevice::copy_columns_kernel(const Tensor& src, int64_t src_col, Tensor& dst, int64_t dst_col,
                                    int64_t width) {
  const size_t element = dtype_size(src.dtype());
  const int64_t src_cols = src.dim(src.rank() - 1), dst_cols = dst.dim(dst.rank() - 1);
  const int64_t rows = src.numel() / src_cols;
  const auto* from = static_cast<const unsigned char*>(src.raw());
  auto* to = static_cast<unsigned char*>(dst.raw());
  const size_t bytes = static_cast<size_t>(width) * element;
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(to + static_cast<size_t>(r * dst_cols + dst_col) * element,
                from + static_cast<size_t>(r * src_cols + src_col) * element, bytes);
}

}  // namespace janus
