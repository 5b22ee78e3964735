// Tensor::version (include/janus/tensor.hpp): the counter a cache of data
// derived from a tensor relies on (the cuDNN path's KRSC filter copies). Every
// mutable access advances it, for every view of the storage; read-only access
// and reads through Tensor's own methods do not.
#include <gtest/gtest.h>

#include <vector>

#include "janus/device.hpp"
#include "janus/error.hpp"
#include "janus/tensor.hpp"

using namespace janus;

namespace {

TEST(TensorVersion, EveryMutableAccessAdvancesItForEveryView) {
  Device& cpu = cpu_device();
  Tensor t = Tensor::from_host(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3}, cpu);
  const Tensor view = t.reshape({6});
  uint64_t v = t.version();
  EXPECT_EQ(view.version(), v) << "views share their storage's version";
  const auto advanced = [&](const char* what) {
    EXPECT_GT(t.version(), v) << what;
    EXPECT_EQ(view.version(), t.version()) << what;
    v = t.version();
  };
  static_cast<void>(t.raw());
  advanced("raw()");
  static_cast<void>(view.f32());
  advanced("f32() of a view");
  static_cast<void>(t.data<float>());
  advanced("data<float>()");
  cpu.fill(t, 2.0);
  advanced("Device::fill");
  t.copy_from(Tensor::full({2, 3}, 1.0, cpu));
  advanced("copy_from");
  Tensor d = Tensor::full({2}, 1.0, cpu, DType::F64);
  const uint64_t dv = d.version();
  static_cast<void>(d.f64());
  EXPECT_GT(d.version(), dv) << "f64()";
}

TEST(TensorVersion, ReadsLeaveItAsItIs) {
  Device& cpu = cpu_device();
  const Tensor t = Tensor::from_host(std::vector<float>{1, 2, 3, 4}, {4}, cpu);
  const uint64_t v = t.version();
  static_cast<void>(t.const_raw());
  static_cast<void>(t.const_f32());
  static_cast<void>(t.to_host());
  static_cast<void>(t.to_host_f32());
  static_cast<void>(t.item(2));
  static_cast<void>(t.clone());
  Tensor copy = Tensor::empty({4}, cpu);
  copy.copy_from(t);
  EXPECT_EQ(t.version(), v);
  EXPECT_EQ(copy.to_host_f32(), t.to_host_f32());
  EXPECT_THROW(static_cast<void>(t.const_f64()), Error) << "const_f64 of a float32 tensor";
  EXPECT_THROW(static_cast<void>(Tensor().version()), Error);
}

TEST(TensorVersion, StorageRefNamesTheStorageUntilItIsFreed) {
  Device& cpu = cpu_device();
  Tensor t = Tensor::zeros({3}, cpu);
  const std::weak_ptr<const Storage> ref = t.storage_ref();
  Tensor view = t.reshape({1, 3});
  EXPECT_FALSE(ref.owner_before(view.storage_ref()) || view.storage_ref().owner_before(ref));
  const Tensor other = Tensor::zeros({3}, cpu);
  EXPECT_TRUE(ref.owner_before(other.storage_ref()) || other.storage_ref().owner_before(ref));
  t = Tensor();
  EXPECT_FALSE(ref.expired()) << "the view still holds it";
  view = Tensor();
  EXPECT_TRUE(ref.expired());
}

}  // namespace
