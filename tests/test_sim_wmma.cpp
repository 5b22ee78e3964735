// The simulator's warp matrix functions (src/cuda/sim/wmma.hpp; built only
// with -DJANUS_CUDA=SIM): __float_to_tf32 bit-exact against an independent
// rounding, mma_sync (TF32 and bf16) against a float64 product, and the misuse the simulator
// must report (non-TF32 operands, lanes that skip a collective or disagree on
// its pointer). Written like a .cu file: kernels + JANUS_LAUNCH.
#include "cuda/cuda_compat.hpp"

#include <gtest/gtest.h>
#include <cuda_bf16.h>
#include <mma.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "float_bits.hpp"
#include "tf32_reference.hpp"

namespace {

namespace wmma = nvcuda::wmma;

using janus::test::bits_of;
using janus::test::float_of;

void expect_same_rounding(uint32_t u) {
  const float x = float_of(u);
  const float got = wmma::__float_to_tf32(x), want = janus::test::tf32_reference(x);
  if (std::isnan(want)) {
    ASSERT_TRUE(std::isnan(got)) << std::hex << "input 0x" << u;
    return;
  }
  ASSERT_EQ(bits_of(got), bits_of(want)) << std::hex << "input 0x" << u << ": simulator 0x" << bits_of(got)
                                         << ", reference 0x" << bits_of(want);
}

TEST(SimWmma, FloatToTf32MatchesIndependentRounding) {
  // Every exponent and sign, with the dropped 13 bits at the boundaries that
  // decide the rounding (below, at and above one half, and the extremes),
  // over kept mantissas that do and do not carry into the exponent.
  const uint32_t dropped[] = {0x0000u, 0x0001u, 0x0FFFu, 0x1000u, 0x1001u, 0x1FFFu};
  const uint32_t kept[] = {0x000u, 0x001u, 0x200u, 0x3FEu, 0x3FFu};
  int checked = 0;
  for (uint32_t sign = 0; sign < 2; ++sign)
    for (uint32_t exponent = 0; exponent < 256; ++exponent)
      for (uint32_t k : kept)
        for (uint32_t d : dropped) {
          expect_same_rounding(sign << 31 | exponent << 23 | k << 13 | d);
          ++checked;
        }
  // And a spread of arbitrary patterns.
  std::mt19937 rng(2026);
  for (int i = 0; i < 1000000; ++i, ++checked) expect_same_rounding(static_cast<uint32_t>(rng()));
  // Ties go away from zero (cvt.rna), unlike round-to-nearest-even.
  EXPECT_EQ(bits_of(wmma::__float_to_tf32(float_of(0x3F801000u))), 0x3F802000u);
  EXPECT_EQ(bits_of(wmma::__float_to_tf32(float_of(0xBF801000u))), 0xBF802000u);
  EXPECT_TRUE(std::isinf(wmma::__float_to_tf32(float_of(0x7F7FF000u))));  // past TF32's largest
  EXPECT_GT(checked, 1000000);
}

// One warp: C = A (16x8, row- or column-major) . B (8x16) + C0.
template <class LayoutA>
__global__ void mma_once(const float* a, const float* b, const float* c0, float* c, unsigned lda) {
  wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, LayoutA> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fb;
  wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc;
  wmma::load_matrix_sync(fa, a, lda);
  wmma::load_matrix_sync(fb, b, 16);
  for (int i = 0; i < fa.num_elements; ++i) fa.x[i] = wmma::__float_to_tf32(fa.x[i]);
  for (int i = 0; i < fb.num_elements; ++i) fb.x[i] = wmma::__float_to_tf32(fb.x[i]);
  wmma::load_matrix_sync(acc, c0, 16, wmma::mem_row_major);
  wmma::mma_sync(acc, fa, fb, acc);
  wmma::store_matrix_sync(c, acc, 16, wmma::mem_row_major);
}

struct DeviceBuffer {
  float* p = nullptr;
  explicit DeviceBuffer(const std::vector<float>& host) {
    EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&p), host.size() * sizeof(float)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(p, host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  }
  ~DeviceBuffer() { cudaFree(p); }
  std::vector<float> host(size_t n) const {
    std::vector<float> v(n);
    EXPECT_EQ(cudaMemcpy(v.data(), p, n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
    return v;
  }
};

template <class LayoutA>
void check_mma(bool a_row_major) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> a(16 * 8), b(8 * 16), c0(16 * 16);
  for (float& v : a) v = dist(rng);
  for (float& v : b) v = dist(rng);
  for (float& v : c0) v = dist(rng);
  DeviceBuffer da(a), db(b), dc0(c0), dc(std::vector<float>(16 * 16, 0.0f));
  const unsigned lda = a_row_major ? 8 : 16;
  JANUS_LAUNCH(mma_once<LayoutA>, 1, 32, 0, nullptr, da.p, db.p, dc0.p, dc.p, lda);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  const std::vector<float> c = dc.host(16 * 16);
  for (int m = 0; m < 16; ++m)
    for (int n = 0; n < 16; ++n) {
      // The exact sum of the TF32 products (float64 holds each exactly), and
      // the bound of 8 float32 additions: 8 u sum |terms|.
      double exact = c0[m * 16 + n], mag = std::fabs(c0[m * 16 + n]);
      for (int k = 0; k < 8; ++k) {
        const double av = janus::test::tf32_reference(a_row_major ? a[m * 8 + k] : a[k * 16 + m]);
        const double bv = janus::test::tf32_reference(b[k * 16 + n]);
        exact += av * bv;
        mag += std::fabs(av * bv);
      }
      EXPECT_LE(std::fabs(c[m * 16 + n] - exact), 8 * mag / 16777216.0) << "element " << m << "," << n;
    }
}

TEST(SimWmma, MmaSyncIsTheProductOfTf32Operands) {
  check_mma<wmma::row_major>(true);
  check_mma<wmma::col_major>(false);
}

// One warp: C = A (16x16 bf16, column-major) . B (16x16 bf16, row-major) + C0.
__global__ void mma_bf16_once(const __nv_bfloat16* a, const __nv_bfloat16* b, const float* c0, float* c) {
  wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::col_major> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> fb;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
  wmma::load_matrix_sync(fa, a, 16);
  wmma::load_matrix_sync(fb, b, 16);
  wmma::load_matrix_sync(acc, c0, 16, wmma::mem_row_major);
  wmma::mma_sync(acc, fa, fb, acc);
  wmma::store_matrix_sync(c, acc, 16, wmma::mem_row_major);
}

TEST(SimWmma, MmaSyncBf16IsTheProductOfBf16Operands) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<__nv_bfloat16> a(16 * 16), b(16 * 16);
  std::vector<float> c0(16 * 16);
  for (auto& v : a) v = __float2bfloat16(dist(rng));
  for (auto& v : b) v = __float2bfloat16(dist(rng));
  for (float& v : c0) v = dist(rng);
  __nv_bfloat16 *da = nullptr, *db = nullptr;
  ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&da), a.size() * sizeof(__nv_bfloat16)), cudaSuccess);
  ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&db), b.size() * sizeof(__nv_bfloat16)), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(da, a.data(), a.size() * sizeof(__nv_bfloat16), cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(db, b.data(), b.size() * sizeof(__nv_bfloat16), cudaMemcpyHostToDevice), cudaSuccess);
  DeviceBuffer dc0(c0), dc(std::vector<float>(16 * 16, 0.0f));
  JANUS_LAUNCH(mma_bf16_once, 1, 32, 0, nullptr, da, db, dc0.p, dc.p);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  const std::vector<float> c = dc.host(16 * 16);
  for (int m = 0; m < 16; ++m)
    for (int n = 0; n < 16; ++n) {
      double exact = c0[m * 16 + n], mag = std::fabs(c0[m * 16 + n]);
      for (int k = 0; k < 16; ++k) {
        const double p = double(__bfloat162float(a[k * 16 + m])) * __bfloat162float(b[k * 16 + n]);
        exact += p;
        mag += std::fabs(p);
      }
      EXPECT_LE(std::fabs(c[m * 16 + n] - exact), 16 * mag / 16777216.0) << "element " << m << "," << n;
    }
  cudaFree(da);
  cudaFree(db);
}

// The operands are used as loaded, without __float_to_tf32.
__global__ void mma_unrounded(const float* a, const float* b, float* c) {
  wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fb;
  wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc;
  wmma::fill_fragment(acc, 0.0f);
  wmma::load_matrix_sync(fa, a, 8);
  wmma::load_matrix_sync(fb, b, 16);
  wmma::mma_sync(acc, fa, fb, acc);
  wmma::store_matrix_sync(c, acc, 16, wmma::mem_row_major);
}

// Lanes 16..31 skip the load.
__global__ void half_warp_load(const float* a) {
  wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fa;
  if (threadIdx.x < 16) wmma::load_matrix_sync(fa, a, 8);
}

// Each lane passes its own pointer.
__global__ void divergent_pointer(const float* a) {
  wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fa;
  wmma::load_matrix_sync(fa, a + 8 * (threadIdx.x % 2), 8);
}

template <class Launch>
std::string kernel_error(Launch launch) {
  try {
    launch();
  } catch (const janus::sim::KernelError& e) {
    return e.what();
  }
  return "";
}

TEST(SimWmma, ReportsMisuse) {
  std::vector<float> a(16 * 16, 1.0f + 1.0f / 4096.0f), b(16 * 16, 1.0f);  // a needs 12 mantissa bits
  DeviceBuffer da(a), db(b), dc(std::vector<float>(16 * 16, 0.0f));
  std::string e = kernel_error([&] { JANUS_LAUNCH(mma_unrounded, 1, 32, 0, nullptr, da.p, db.p, dc.p); });
  EXPECT_NE(e.find("not a TF32 value"), std::string::npos) << e;
  e = kernel_error([&] { JANUS_LAUNCH(half_warp_load, 1, 32, 0, nullptr, da.p); });
  EXPECT_FALSE(e.empty()) << "a warp-collective load reached by half of the warp was not reported";
  e = kernel_error([&] { JANUS_LAUNCH(divergent_pointer, 1, 32, 0, nullptr, da.p); });
  EXPECT_NE(e.find("different pointers"), std::string::npos) << e;
}

}  // namespace
