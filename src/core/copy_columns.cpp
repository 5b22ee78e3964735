// Device::copy_columns: the op's contract, checked once for every backend
// before its kernel runs (device.hpp).
#include "janus/device.hpp"
#include "janus/error.hpp"

namespace janus {

void Device::copy_columns(const Tensor& src, int64_t src_col, Tensor& dst, int64_t dst_col, int64_t width) {
  JANUS_CHECK(src.defined() && dst.defined(), name(), ": copy_columns: undefined tensor");
  JANUS_CHECK(&src.device() == this && &dst.device() == this, name(), ": copy_columns: tensors on ",
              src.device().name(), " and ", dst.device().name());
  JANUS_CHECK(src.dtype() == dst.dtype(), name(), ": copy_columns: dtypes ", dtype_name(src.dtype()), " and ",
              dtype_name(dst.dtype()));
  JANUS_CHECK(src.rank() >= 1 && dst.rank() >= 1, name(), ": copy_columns: rank-0 tensor");
  const int64_t src_cols = src.dim(src.rank() - 1), dst_cols = dst.dim(dst.rank() - 1);
  const int64_t src_rows = src_cols > 0 ? src.numel() / src_cols : 0;
  const int64_t dst_rows = dst_cols > 0 ? dst.numel() / dst_cols : 0;
  JANUS_CHECK(src_rows == dst_rows, name(), ": copy_columns: ", src.shape().str(), " and ", dst.shape().str(),
              " differ in rows (", src_rows, " and ", dst_rows, ")");
  JANUS_CHECK(width >= 0 && src_col >= 0 && dst_col >= 0 && src_col + width <= src_cols &&
                  dst_col + width <= dst_cols,
              name(), ": copy_columns: columns [", src_col, ", ", src_col + width, ") of ", src.shape().str(),
              " to [", dst_col, ", ", dst_col + width, ") of ", dst.shape().str(), " leave the tensors");
  if (width == 0 || src_rows == 0) return;
  copy_columns_kernel(src, src_col, dst, dst_col, width);
}

}  // namespace janus
