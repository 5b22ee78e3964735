// bfloat16 tensors on the CPU devices (every build): the conversion op
// Device::convert / Tensor::to(DType) against an independent rounding,
// safetensors BF16 files, and the CPU devices' refusal to compute on bf16.
//
// The independent reference rounds by comparing distances in double to the
// two bf16 neighbours of x (truncation and the next pattern up), ties to the
// even pattern; the library rounds with the add-0x7FFF-and-truncate trick
// (precision.cpp). They must agree on every non-NaN float.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

#include "float_bits.hpp"
#include "janus/checkpoint.hpp"
#include "janus/device.hpp"
#include "janus/error.hpp"
#include "janus/precision.hpp"
#include "janus/tensor.hpp"

using namespace janus;
using janus::test::bits_of;
using janus::test::float_of;

namespace {

// x rounded to bf16 bits by distances: the candidates are the truncated
// pattern t and t + 1 (the next bf16 away from zero; 0x7F80 past the largest
// finite value is infinity, which IEEE round-to-nearest reaches when x is at
// or beyond the midpoint to 2^128). Not for NaN.
uint16_t reference_bf16_bits(float x) {
  const uint32_t u = bits_of(x);
  const uint16_t t = static_cast<uint16_t>(u >> 16);
  if ((u & 0xFFFFu) == 0) return t;  // exact (zeros and infinities included)
  const uint16_t up = static_cast<uint16_t>(t + 1);
  const double ax = std::fabs(static_cast<double>(x));
  const double lo = std::fabs(static_cast<double>(float_of(static_cast<uint32_t>(t) << 16)));
  // The value of `up`, infinity included, as the next binade's magnitude when it is infinite.
  const double hi = (up & 0x7FFFu) == 0x7F80u ? std::ldexp(1.0, 128)
                                               : std::fabs(static_cast<double>(float_of(static_cast<uint32_t>(up) << 16)));
  const double d_lo = ax - lo, d_hi = hi - ax;
  if (d_lo < d_hi) return t;
  if (d_hi < d_lo) return up;
  return (t & 1u) == 0 ? t : up;  // a tie: the even pattern
}

Tensor bf16_from_bits(const std::vector<uint16_t>& bits, Device& device) {
  Tensor host = Tensor::empty(Shape{static_cast<int64_t>(bits.size())}, cpu_device(), DType::BF16);
  std::memcpy(host.raw(), bits.data(), bits.size() * sizeof(uint16_t));
  return host.to(device);
}

std::vector<uint16_t> bits_of_bf16(const Tensor& t) {
  const Tensor host = t.to(cpu_device());
  std::vector<uint16_t> out(static_cast<size_t>(host.numel()));
  std::memcpy(out.data(), host.const_raw(), out.size() * sizeof(uint16_t));
  return out;
}

// The floats the conversion tests feed every device: the hand-picked cases
// of the comments, then random bit patterns (every exponent, both signs).
std::vector<float> conversion_inputs() {
  std::vector<uint32_t> u = {
      0x3F800000u, 0x3F808000u,  // 1 and 1 + 2^-8: a tie, to the even 0x3F80
      0x3F818000u,               // a tie between 0x3F81 and 0x3F82: to 0x3F82
      0x3F808001u, 0x3F807FFFu,  // just above / below the tie
      0xBF808000u, 0xBF818000u,  // the same ties, negative
      0x00008000u, 0x00018000u,  // subnormal ties: to 0x0000 and 0x0002 (no flush to zero)
      0x00000001u, 0x80000001u,  // the smallest subnormals round to signed zeros
      0x7F7F7FFFu,               // below the midpoint above bf16's largest finite: stays finite
      0x7F7F8000u, 0x7F7FFFFFu,  // at the midpoint (tie to the even infinity) and FLT_MAX: overflow to inf
      0xFF7FFFFFu,               // -FLT_MAX: -inf
      0x7F800000u, 0xFF800000u,  // infinities kept
      0x00000000u, 0x80000000u,  // zeros kept with their sign
  };
  std::mt19937 rng(7);
  for (int i = 0; i < 200000; ++i) {
    const uint32_t r = rng();
    if ((r & 0x7FFFFFFFu) > 0x7F800000u) continue;  // NaNs have their own test
    u.push_back(r);
  }
  std::vector<float> x;
  for (uint32_t b : u) x.push_back(float_of(b));
  return x;
}

void expect_reference_rounding(Device& device) {
  const std::vector<float> x = conversion_inputs();
  const Tensor f = Tensor::from_host(x, Shape{static_cast<int64_t>(x.size())}, device);
  Tensor b = Tensor::empty(f.shape(), device, DType::BF16);
  device.convert(f, b);
  const std::vector<uint16_t> got = bits_of_bf16(b);
  int64_t mismatches = 0, rounded_up = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const uint16_t want = reference_bf16_bits(x[i]);
    if (got[i] != want && ++mismatches <= 5)
      ADD_FAILURE() << device.name() << ": " << std::hex << bits_of(x[i]) << " -> " << got[i] << ", expected "
                    << want;
    rounded_up += want != static_cast<uint16_t>(bits_of(x[i]) >> 16);
  }
  EXPECT_EQ(mismatches, 0) << device.name();
  // A truncating conversion would fail: about half of the inputs round up.
  EXPECT_GT(rounded_up, static_cast<int64_t>(x.size()) / 3);
  // The hand-picked cases, spelled out.
  EXPECT_EQ(got[1], 0x3F80u);
  EXPECT_EQ(got[2], 0x3F82u);
  EXPECT_EQ(got[7], 0x0000u);
  EXPECT_EQ(got[8], 0x0002u);
  EXPECT_EQ(got[12], 0x7F80u);
  EXPECT_EQ(got[13], 0x7F80u);
  EXPECT_EQ(got[14], 0xFF80u);
}

void expect_nan_stays_nan(Device& device) {
  const std::vector<uint32_t> nans = {0x7FC00000u, 0xFFC00000u, 0x7F800001u, 0xFF800001u, 0x7FFFFFFFu, 0x7F80FFFFu};
  std::vector<float> x;
  for (uint32_t b : nans) x.push_back(float_of(b));
  const Tensor f = Tensor::from_host(x, Shape{static_cast<int64_t>(x.size())}, device);
  const Tensor back = f.to(DType::BF16).to(DType::F32);
  const std::vector<float> y = back.to_host_f32();
  for (size_t i = 0; i < x.size(); ++i)
    EXPECT_TRUE(std::isnan(y[i])) << device.name() << ": NaN " << std::hex << nans[i] << " became " << y[i];
}

// Every bf16 pattern that is not a NaN goes to float32 exactly and back unchanged.
void expect_round_trip(Device& device) {
  std::vector<uint16_t> all;
  for (uint32_t b = 0; b <= 0xFFFFu; ++b)
    if ((b & 0x7FFFu) <= 0x7F80u) all.push_back(static_cast<uint16_t>(b));
  const Tensor b16 = bf16_from_bits(all, device);
  const Tensor f = b16.to(DType::F32);
  const std::vector<float> values = f.to_host_f32();
  for (size_t i = 0; i < all.size(); ++i)
    ASSERT_EQ(bits_of(values[i]), static_cast<uint32_t>(all[i]) << 16) << device.name() << " pattern " << all[i];
  EXPECT_EQ(bits_of_bf16(f.to(DType::BF16)), all) << device.name();
}

std::vector<Device*> cpu_devices() { return {&cpu_device(), &reference_cpu_device()}; }

// call() must throw janus::Error whose message holds every one of `parts`.
void expect_error(const std::string& what, const std::vector<std::string>& parts, const std::function<void()>& call) {
  try {
    call();
    ADD_FAILURE() << what << ": no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    for (const std::string& part : parts)
      EXPECT_NE(m.find(part), std::string::npos) << what << ": '" << part << "' missing from: " << m;
  }
}

}  // namespace

TEST(Bf16Tensor, DTypeTable) {
  EXPECT_EQ(dtype_size(DType::BF16), 2u);
  EXPECT_STREQ(dtype_name(DType::BF16), "bfloat16");
  const Tensor t = Tensor::empty(Shape{3, 5}, cpu_device(), DType::BF16);
  EXPECT_EQ(t.bytes(), 30u);
}

TEST(Bf16Tensor, ConversionMatchesAnIndependentRounding) {
  for (Device* d : cpu_devices()) expect_reference_rounding(*d);
  if (cuda_device_count() > 0) expect_reference_rounding(get_device("cuda"));
}

TEST(Bf16Tensor, NanStaysNan) {
  for (Device* d : cpu_devices()) expect_nan_stays_nan(*d);
  if (cuda_device_count() > 0) expect_nan_stays_nan(get_device("cuda"));
}

TEST(Bf16Tensor, RoundTripIsExact) {
  for (Device* d : cpu_devices()) expect_round_trip(*d);
  if (cuda_device_count() > 0) expect_round_trip(get_device("cuda"));
}

TEST(Bf16Tensor, HostValuesAndItem) {
  const Tensor b = Tensor::from_host(std::vector<float>{1.0f, float_of(0x3F818000u), -3.0f}, Shape{3}, cpu_device(),
                                     DType::BF16);
  EXPECT_EQ(b.dtype(), DType::BF16);
  EXPECT_EQ(b.item(1), static_cast<double>(float_of(0x3F820000u)));  // the tie went to the even pattern
  EXPECT_EQ(b.to_host(), (std::vector<double>{1.0, static_cast<double>(float_of(0x3F820000u)), -3.0}));
  const Tensor d = b.to(DType::F64);  // exact
  EXPECT_EQ(d.dtype(), DType::F64);
  EXPECT_EQ(d.to_host(), b.to_host());
  // float64 -> bfloat16 could round twice through float32: refused, with a way out.
  EXPECT_THROW(d.to(DType::BF16), Error);
  EXPECT_THROW(Tensor::from_host(std::vector<double>{0.1}, Shape{1}, cpu_device(), DType::BF16), Error);
}

TEST(Bf16Tensor, ConvertContract) {
  Device& cpu = cpu_device();
  const Tensor f = Tensor::full(Shape{2, 3}, 1.5, cpu);
  Tensor wrong_shape = Tensor::empty(Shape{3, 2}, cpu, DType::BF16);
  expect_error("shape mismatch", {"differ in shape", "(2, 3)", "(3, 2)"}, [&] { cpu.convert(f, wrong_shape); });
  Tensor d = Tensor::empty(Shape{2, 3}, cpu, DType::F64);
  Tensor b = Tensor::empty(Shape{2, 3}, cpu, DType::BF16);
  expect_error("float64 -> bfloat16", {"float64 to bfloat16"}, [&] { cpu.convert(d, b); });
  Tensor other = Tensor::empty(Shape{2, 3}, reference_cpu_device(), DType::BF16);
  EXPECT_THROW(cpu.convert(f, other), Error);  // tensors of another device
  Tensor same = Tensor::empty(Shape{2, 3}, cpu, DType::F32);
  cpu.convert(f, same);  // equal dtypes: a copy
  EXPECT_EQ(same.to_host(), f.to_host());
}

// One shared check refuses bf16 operands in every computing op of both CPU
// devices, naming the op, the device and the tensor.
TEST(Bf16Tensor, CpuDevicesRefuseToComputeOnBf16) {
  for (Device* d : cpu_devices()) {
    Tensor y = Tensor::full(Shape{4, 3}, 1.0, *d).to(DType::BF16);
    const Tensor bias = Tensor::zeros(Shape{3}, *d);
    const auto expect_refusal = [&](const std::string& op, const std::string& tensor,
                                    const std::function<void()>& call) {
      expect_error(d->name() + " " + op, {op, d->name(), tensor + " (4, 3)", "bfloat16"}, call);
    };
    expect_refusal("add_bias", "y", [&] { d->add_bias(y, bias); });
    expect_refusal("activation_forward", "z", [&] { d->activation_forward(ActivationKind::ReLU, y, y); });
    expect_refusal("fill", "x", [&] { d->fill(y, 0.0); });
    expect_refusal("sum", "x", [&] { d->sum(y); });
    Tensor f = Tensor::zeros(Shape{4, 3}, *d);
    expect_refusal("axpby", "y", [&] { d->axpby(1.0, f, 1.0, y); });
    // Copies are not computing: Concat's column copies take bf16.
    Tensor wide = Tensor::empty(Shape{4, 6}, *d, DType::BF16);
    d->copy_columns(y, 0, wide, 3, 3);
    EXPECT_EQ(wide.to(DType::F32).item(5), 1.0);
  }
}

TEST(Bf16Tensor, SafetensorsKeepsBf16) {
  const std::string path =
      ::testing::TempDir() + "janus_test_bf16_" + std::to_string(::getpid()) + ".safetensors";
  const Tensor b = Tensor::from_host(std::vector<float>{0.5f, -2.25f, 3.0e38f, 1.0e-40f}, Shape{2, 2}, cpu_device(),
                                     DType::BF16);
  write_safetensors(path, {{"w", b}}, {});
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // safetensors' own name, so that Python's safetensors reads it as torch.bfloat16
  EXPECT_NE(bytes.find("\"dtype\":\"BF16\""), std::string::npos);
  const SafetensorsFile f = read_safetensors(path);
  std::remove(path.c_str());
  const Tensor& r = f.tensors.at("w");
  EXPECT_EQ(r.dtype(), DType::BF16);
  EXPECT_EQ(r.shape(), (Shape{2, 2}));
  EXPECT_EQ(bits_of_bf16(r), bits_of_bf16(b));
}
