// Tests of the Janus CUDA simulator (built only with -DJANUS_CUDA=SIM).
// The first part is written like a .cu file: kernels + JANUS_LAUNCH.
#include "cuda/cuda_compat.hpp"

#include <gtest/gtest.h>

#include "cuda/kernels.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <numeric>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#if JANUS_SIM_HAS_THRUST
#include <thrust/execution_policy.h>
#include <thrust/reduce.h>
#include <thrust/scan.h>
#endif

// ================================ kernels =====================================
namespace {

__global__ void record_indices(unsigned* hits, uint3* dims, int total) {
  const unsigned bx = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const unsigned tx = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const unsigned threads = blockDim.x * blockDim.y * blockDim.z;
  const unsigned g = bx * threads + tx;
  if (static_cast<int>(g) < total) atomicAdd(&hits[g], 1u);
  if (g == 0) {
    dims[0] = uint3{blockDim.x, blockDim.y, blockDim.z};
    dims[1] = uint3{gridDim.x, gridDim.y, gridDim.z};
  }
}

template <int kThreads>
__global__ void __launch_bounds__(kThreads) block_sum(const float* __restrict__ in, float* __restrict__ out, int n) {
  __shared__ float partial[kThreads];
  const int i = blockIdx.x * kThreads + threadIdx.x;
  partial[threadIdx.x] = i < n ? in[i] : 0.0f;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (static_cast<int>(threadIdx.x) < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = partial[0];
}

__global__ void atomics(int* i, unsigned long long* u, float* f, double* d, int* mx, int* mn, int* cas_counter) {
  const int g = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  atomicAdd(i, 1);
  atomicAdd(u, 2ull);
  atomicAdd(f, 0.5f);
  atomicAdd(d, 0.25);
  atomicMax(mx, g);
  atomicMin(mn, -g);
  // The classic CAS loop, seeded by an atomic read: a plain read of a word
  // other threads update atomically is a data race (the race detector says so).
  int old = atomicAdd(cas_counter, 0), assumed;
  do {
    assumed = old;
    old = atomicCAS(cas_counter, assumed, assumed + 3);
  } while (old != assumed);
}

__device__ __forceinline__ float warp_sum_down(float v) {
  for (int offset = warpSize / 2; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

__global__ void warp_ops(const float* in, float* down_sum, float* xor_sum, int* broadcast, unsigned* ballots,
                         double* dsum) {
  const int g = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  const int lane = static_cast<int>(threadIdx.x) % warpSize;
  const float v = in[g];
  const float s = warp_sum_down(v);
  if (lane == 0) down_sum[g / warpSize] = s;
  float x = v;
  for (int m = 16; m > 0; m >>= 1) x += __shfl_xor_sync(0xffffffffu, x, m);
  xor_sum[g] = x;  // every lane holds the warp's total
  broadcast[g] = __shfl_sync(0xffffffffu, g * 10, 3);
  const unsigned b = __ballot_sync(0xffffffffu, lane % 3 == 0);
  double dv = static_cast<double>(g);
  for (int offset = 16; offset > 0; offset /= 2) dv += __shfl_down_sync(0xffffffffu, dv, offset);
  if (lane == 0) {
    ballots[g / warpSize] = b;
    dsum[g / warpSize] = dv;
  }
}

__global__ void divergent_barrier(int* out) {
  if (threadIdx.x < 128) __syncthreads();
  out[threadIdx.x] = 1;
}

__global__ void if_else_barrier(int* out) {
  if (threadIdx.x % 2 == 0) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1;
}

__global__ void early_exit_shuffle(float* out) {
  if (threadIdx.x % 32 == 7) return;
  out[threadIdx.x] = __shfl_down_sync(0xffffffffu, 1.0f, 1);
}

__global__ void throws_inside(int* out) {
  if (threadIdx.x == 5 && blockIdx.x == 1) __trap();
  out[threadIdx.x] = 1;
}

__global__ void syncthreads_timing(float* out) {
  __shared__ float s[256];
  s[threadIdx.x] = static_cast<float>(threadIdx.x);
  __syncthreads();
  out[blockIdx.x * blockDim.x + threadIdx.x] = s[255 - threadIdx.x];
}

__global__ void no_barrier_timing(float* out) { out[blockIdx.x * blockDim.x + threadIdx.x] = 1.0f; }

__global__ void partial_warp_sum(const float* in, float* out, int n) {
  // 48 threads: warp 1 has 16 lanes; its mask names only lanes that exist.
  const unsigned lane = threadIdx.x % 32;
  const unsigned mask = threadIdx.x < 32 ? 0xffffffffu : 0x0000ffffu;
  float v = static_cast<int>(threadIdx.x) < n ? in[threadIdx.x] : 0.0f;
  const int width = threadIdx.x < 32 ? 32 : 16;
  for (int offset = width / 2; offset > 0; offset /= 2) v += __shfl_down_sync(mask, v, offset, width);
  if (lane == 0) out[threadIdx.x / 32] = v;
}

// ---- kernels for the race detector and the schedule permutations --------------------
// Each planted bug has a correct twin (kFixed = true). Shared arrays live at
// namespace scope so that the tests know their addresses.
constexpr int kTileThreads = 64;
__shared__ float g_neighbour_tile[kTileThreads];

// out[i] = in[i - 1] within each block of 64 (thread 0: its own). The bug: no
// __syncthreads() between writing the tile and reading the left neighbour's
// slot. The simulator's fixed order (thread t-1 before thread t) hides it.
template <bool kFixed>
__global__ void left_neighbour(const float* in, float* out) {
  const unsigned t = threadIdx.x;
  const unsigned i = blockIdx.x * kTileThreads + t;
  g_neighbour_tile[t] = in[i];
  if (kFixed) __syncthreads();
  out[i] = g_neighbour_tile[t > 0 ? t - 1 : 0];
}

// The same within one warp; the fix is __syncwarp(). kShuffleOnly puts a
// shuffle (which exchanges registers, not memory) where the __syncwarp() belongs.
__shared__ float g_warp_tile[32];
template <bool kFixed, bool kShuffleOnly = false>
__global__ void warp_left_neighbour(const float* in, float* out) {
  const unsigned lane = threadIdx.x;
  g_warp_tile[lane] = in[lane];
  if (kFixed) __syncwarp();
  const float lane0 = kShuffleOnly ? __shfl_sync(0xffffffffu, in[lane], 0) : in[0];
  out[lane] = g_warp_tile[lane > 0 ? lane - 1 : 0] + 0.0f * lane0;
}

// Warp-synchronous tree reduction through shared memory (one warp). The bug
// is the pre-Volta idiom: no __syncwarp() between the steps.
__shared__ float g_reduce_tile[32];
template <bool kFixed>
__global__ void warp_tree_sum(const float* in, float* out) {
  const unsigned lane = threadIdx.x;
  g_reduce_tile[lane] = in[lane];
  if (kFixed) __syncwarp();
  for (unsigned offset = 16; offset > 0; offset /= 2) {
    const float v = lane < offset ? g_reduce_tile[lane] + g_reduce_tile[lane + offset] : 0.0f;
    if (kFixed) __syncwarp();  // every read of this step before any write
    if (lane < offset) g_reduce_tile[lane] = v;
    if (kFixed) __syncwarp();  // every write before the next step's reads
  }
  if (lane == 0) out[0] = g_reduce_tile[0];
}

// Per block of 32: total[b] = 2 * (sum of its inputs); sums[b] = total[b] + total[b-1].
// The bug: one launch, so block b reads block b-1's total, which only the
// simulator's fixed block order has written already.
__device__ inline void block_total(const float* in, float* totals) {
  float v = in[blockIdx.x * 32 + threadIdx.x];
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  if (threadIdx.x == 0) totals[blockIdx.x] = 2.0f * v;
}
__global__ void totals_and_pair_sums(const float* in, float* totals, float* sums) {
  block_total(in, totals);
  if (threadIdx.x == 0) sums[blockIdx.x] = totals[blockIdx.x] + (blockIdx.x > 0 ? totals[blockIdx.x - 1] : 0.0f);
}
// The fix: a second launch reads the totals.
__global__ void totals_only(const float* in, float* totals) { block_total(in, totals); }
__global__ void pair_sums(const float* totals, float* sums) {
  const unsigned b = blockIdx.x;
  if (threadIdx.x == 0) sums[b] = totals[b] + (b > 0 ? totals[b - 1] : 0.0f);
}

// Atomics from every block do not race with each other; a plain read of the
// counter by another block of the same launch does.
template <bool kPeek>
__global__ void count_blocks(unsigned* counter, unsigned* peek) {
  if (threadIdx.x == 0) atomicAdd(counter, 1u);
  if (kPeek && blockIdx.x == 1 && threadIdx.x == 0) peek[0] = *counter;
}

// Records the order in which blocks and threads run (a ticket per arrival).
__global__ void arrival_order(unsigned* ticket, unsigned* block_at, unsigned* thread_ticket, unsigned* thread_at) {
  if (threadIdx.x == 0) block_at[blockIdx.x] = atomicAdd(ticket, 1u);
  thread_at[blockIdx.x * blockDim.x + threadIdx.x] = atomicAdd(&thread_ticket[blockIdx.x], 1u);
}

}  // namespace

// ================================== tests ======================================
namespace {

template <class T>
T* device_alloc(size_t n) {
  T* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, n * sizeof(T)), cudaSuccess);
  return p;
}

template <class T>
std::vector<T> to_host(const T* d, size_t n) {
  std::vector<T> h(n);
  EXPECT_EQ(cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
  return h;
}

// Turns the race detector and the schedule seed on for a scope, then restores them.
class SimChecks {
 public:
  SimChecks(bool racecheck, std::uint64_t seed)
      : racecheck_(janus::sim::racecheck_enabled()), seed_(janus::sim::schedule_seed()) {
    janus::sim::set_racecheck(racecheck);
    janus::sim::set_schedule_seed(seed);
  }
  ~SimChecks() {
    janus::sim::set_racecheck(racecheck_);
    janus::sim::set_schedule_seed(seed_);
  }
  SimChecks(const SimChecks&) = delete;
  SimChecks& operator=(const SimChecks&) = delete;

 private:
  bool racecheck_;
  std::uint64_t seed_;
};

TEST(CudaSim, IsSimulated) {
  EXPECT_TRUE(JANUS_SIMULATED);
  int count = 0;
  ASSERT_EQ(cudaGetDeviceCount(&count), cudaSuccess);
  EXPECT_EQ(count, 1);
  cudaDeviceProp prop;
  ASSERT_EQ(cudaGetDeviceProperties(&prop, 0), cudaSuccess);
  EXPECT_STREQ(prop.name, "Janus CUDA simulator");
  EXPECT_EQ(prop.warpSize, 32);
  EXPECT_EQ(cudaSetDevice(1), cudaErrorInvalidDevice);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidDevice);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  int version = 0;
  EXPECT_EQ(cudaRuntimeGetVersion(&version), cudaSuccess);
  EXPECT_GT(version, 0);
  size_t free_b = 0, total_b = 0;
  EXPECT_EQ(cudaMemGetInfo(&free_b, &total_b), cudaSuccess);
  EXPECT_GT(total_b, 0u);
  EXPECT_LE(free_b, total_b);
}

TEST(CudaSim, IndicesCoverTheGrid) {
  const dim3 grid(3, 2, 2), block(8, 4, 2);
  const int total = 3 * 2 * 2 * 8 * 4 * 2;
  unsigned* hits = device_alloc<unsigned>(total);
  uint3* dims = device_alloc<uint3>(2);
  ASSERT_EQ(cudaMemset(hits, 0, total * sizeof(unsigned)), cudaSuccess);
  JANUS_LAUNCH(record_indices, grid, block, 0, nullptr, hits, dims, total);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  for (unsigned h : to_host(hits, total)) ASSERT_EQ(h, 1u);
  const auto d = to_host(dims, 2);
  EXPECT_EQ(d[0].x, 8u);
  EXPECT_EQ(d[0].y, 4u);
  EXPECT_EQ(d[0].z, 2u);
  EXPECT_EQ(d[1].x, 3u);
  EXPECT_EQ(d[1].y, 2u);
  EXPECT_EQ(d[1].z, 2u);
  cudaFree(hits);
  cudaFree(dims);
}

TEST(CudaSim, SharedMemoryTreeReduction) {
  const int n = 2500, blocks = (n + 255) / 256;
  std::vector<float> h(n);
  for (int i = 0; i < n; ++i) h[i] = static_cast<float>(i % 17);
  float* in = device_alloc<float>(n);
  float* out = device_alloc<float>(blocks);
  ASSERT_EQ(cudaMemcpy(in, h.data(), n * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  JANUS_LAUNCH((block_sum<256>), blocks, 256, 0, nullptr, in, out, n);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  const auto r = to_host(out, blocks);
  for (int b = 0; b < blocks; ++b) {
    float expect = 0;
    for (int i = b * 256; i < std::min(n, b * 256 + 256); ++i) expect += h[i];
    EXPECT_EQ(r[b], expect) << "block " << b;
  }
  // Another instantiation has its own shared array; also a kernel via a function pointer.
  auto* k64 = &block_sum<64>;
  float* out64 = device_alloc<float>((n + 63) / 64);
  JANUS_LAUNCH(k64, (n + 63) / 64, 64, 0, nullptr, in, out64, n);
  const auto r64 = to_host(out64, (n + 63) / 64);
  EXPECT_EQ(std::accumulate(r64.begin(), r64.end(), 0.0), std::accumulate(h.begin(), h.end(), 0.0));
  cudaFree(in);
  cudaFree(out);
  cudaFree(out64);
}

TEST(CudaSim, AtomicsFromManyBlocks) {
  int* i = device_alloc<int>(1);
  unsigned long long* u = device_alloc<unsigned long long>(1);
  float* f = device_alloc<float>(1);
  double* d = device_alloc<double>(1);
  int* mx = device_alloc<int>(1);
  int* mn = device_alloc<int>(1);
  int* cas = device_alloc<int>(1);
  for (int* p : {i, mx, mn, cas}) cudaMemset(p, 0, sizeof(int));
  cudaMemset(u, 0, sizeof(*u));
  cudaMemset(f, 0, sizeof(*f));
  cudaMemset(d, 0, sizeof(*d));
  const int blocks = 100, threads = 256, total = blocks * threads;
  JANUS_LAUNCH(atomics, blocks, threads, 0, nullptr, i, u, f, d, mx, mn, cas);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_EQ(to_host(i, 1)[0], total);
  EXPECT_EQ(to_host(u, 1)[0], 2ull * total);
  EXPECT_EQ(to_host(f, 1)[0], 0.5f * total);
  EXPECT_EQ(to_host(d, 1)[0], 0.25 * total);
  EXPECT_EQ(to_host(mx, 1)[0], total - 1);
  EXPECT_EQ(to_host(mn, 1)[0], -(total - 1));
  EXPECT_EQ(to_host(cas, 1)[0], 3 * total);
  for (void* p : {static_cast<void*>(i), static_cast<void*>(u), static_cast<void*>(f), static_cast<void*>(d),
                  static_cast<void*>(mx), static_cast<void*>(mn), static_cast<void*>(cas)})
    EXPECT_EQ(cudaFree(p), cudaSuccess);
}

TEST(CudaSim, WarpShuffleReduction) {
  const int blocks = 3, threads = 128, n = blocks * threads, warps = n / 32;
  std::vector<float> h(n);
  for (int k = 0; k < n; ++k) h[k] = static_cast<float>((k * 7) % 11);
  float* in = device_alloc<float>(n);
  float* down = device_alloc<float>(warps);
  float* xr = device_alloc<float>(n);
  int* bc = device_alloc<int>(n);
  unsigned* ballots = device_alloc<unsigned>(warps);
  double* dsum = device_alloc<double>(warps);
  cudaMemcpy(in, h.data(), n * sizeof(float), cudaMemcpyHostToDevice);
  JANUS_LAUNCH(warp_ops, blocks, threads, 0, nullptr, in, down, xr, bc, ballots, dsum);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  const auto hd = to_host(down, warps);
  const auto hx = to_host(xr, n);
  const auto hb = to_host(bc, n);
  const auto hballot = to_host(ballots, warps);
  const auto hdsum = to_host(dsum, warps);
  unsigned expect_ballot = 0;
  for (int l = 0; l < 32; l += 3) expect_ballot |= 1u << l;
  for (int w = 0; w < warps; ++w) {
    float s = 0;
    double ds = 0;
    for (int l = 0; l < 32; ++l) {
      s += h[w * 32 + l];
      ds += w * 32 + l;
    }
    EXPECT_EQ(hd[w], s) << "warp " << w;
    EXPECT_EQ(hdsum[w], ds) << "warp " << w;
    EXPECT_EQ(hballot[w], expect_ballot);
    for (int l = 0; l < 32; ++l) {
      EXPECT_EQ(hx[w * 32 + l], s);
      EXPECT_EQ(hb[w * 32 + l], (w * 32 + 3) * 10);
    }
  }
  for (void* p : {static_cast<void*>(in), static_cast<void*>(down), static_cast<void*>(xr), static_cast<void*>(bc),
                  static_cast<void*>(ballots), static_cast<void*>(dsum)})
    cudaFree(p);
}

TEST(CudaSim, PartialWarpWithWidth) {
  std::vector<float> h(48);
  std::iota(h.begin(), h.end(), 1.0f);
  float* in = device_alloc<float>(48);
  float* out = device_alloc<float>(2);
  cudaMemcpy(in, h.data(), sizeof(float) * 48, cudaMemcpyHostToDevice);
  JANUS_LAUNCH(partial_warp_sum, 1, 48, 0, nullptr, in, out, 48);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  const auto r = to_host(out, 2);
  EXPECT_EQ(r[0], 32.0f * 33.0f / 2.0f);
  EXPECT_EQ(r[1], (33.0f + 48.0f) * 16.0f / 2.0f);
  cudaFree(in);
  cudaFree(out);
}

TEST(CudaSim, DivergentSyncthreadsIsReported) {
  SimChecks fixed_order(false, 0);  // the messages name the first block that runs
  int* out = device_alloc<int>(256);
  try {
    JANUS_LAUNCH(divergent_barrier, 2, 256, 0, nullptr, out);
    FAIL() << "no error";
  } catch (const janus::sim::KernelError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("divergent_barrier"), std::string::npos) << m;
    EXPECT_NE(m.find("128 of 256"), std::string::npos) << m;
    EXPECT_NE(m.find("block (0,0,0)"), std::string::npos) << m;
  }
  try {
    JANUS_LAUNCH(if_else_barrier, 1, 64, 0, nullptr, out);
    FAIL() << "no error";
  } catch (const janus::sim::KernelError& e) {
    EXPECT_NE(std::string(e.what()).find("divergent __syncthreads()"), std::string::npos) << e.what();
  }
  float* f = device_alloc<float>(64);
  try {
    JANUS_LAUNCH(early_exit_shuffle, 1, 64, 0, nullptr, f);
    FAIL() << "no error";
  } catch (const janus::sim::KernelError& e) {
    EXPECT_NE(std::string(e.what()).find("__shfl_down_sync"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("0x80"), std::string::npos) << e.what();  // lane 7 missing
  }
  EXPECT_THROW(JANUS_LAUNCH(throws_inside, 2, 32, 0, nullptr, out), janus::sim::KernelError);
  // The simulator is usable after an aborted launch.
  float* in = device_alloc<float>(256);
  float* sum = device_alloc<float>(1);
  std::vector<float> ones(256, 1.0f);
  cudaMemcpy(in, ones.data(), sizeof(float) * 256, cudaMemcpyHostToDevice);
  JANUS_LAUNCH((block_sum<256>), 1, 256, 0, nullptr, in, sum, 256);
  EXPECT_EQ(to_host(sum, 1)[0], 256.0f);
  cudaFree(out);
  cudaFree(f);
  cudaFree(in);
  cudaFree(sum);
}

TEST(CudaSim, LaunchConfigurationErrors) {
  unsigned* hits = device_alloc<unsigned>(1);
  uint3* dims = device_alloc<uint3>(2);
  const auto before = janus::sim::launch_count();
  JANUS_LAUNCH(record_indices, 1, 2048, 0, nullptr, hits, dims, 1);
  EXPECT_EQ(cudaPeekAtLastError(), cudaErrorInvalidConfiguration);
  EXPECT_NE(std::string(cudaGetErrorString(cudaErrorInvalidConfiguration)).find("record_indices"), std::string::npos);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  JANUS_LAUNCH(record_indices, dim3(1, 70000), 32, 0, nullptr, hits, dims, 1);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  JANUS_LAUNCH(record_indices, 0, 32, 0, nullptr, hits, dims, 1);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  JANUS_LAUNCH(record_indices, 1, 32, 1024, nullptr, hits, dims, 1);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  EXPECT_EQ(janus::sim::launch_count(), before);
  cudaFree(hits);
  cudaFree(dims);
}

TEST(CudaSim, MemcpyRoundTripAndChecks) {
  std::vector<float> h(1000), back(1000);
  for (int k = 0; k < 1000; ++k) h[k] = static_cast<float>(k) * 0.5f;
  float* a = device_alloc<float>(1000);
  float* b = device_alloc<float>(1000);
  cudaStream_t s = nullptr;
  ASSERT_EQ(cudaStreamCreate(&s), cudaSuccess);
  ASSERT_EQ(cudaMemcpyAsync(a, h.data(), 4000, cudaMemcpyHostToDevice, s), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(b, a, 4000, cudaMemcpyDeviceToDevice), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(back.data(), b, 4000, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(h, back);
  ASSERT_EQ(cudaMemsetAsync(b, 0, 4000, s), cudaSuccess);
  EXPECT_EQ(to_host(b, 1000), std::vector<float>(1000, 0.0f));
  // Fresh device memory is not zero: 0xFF bytes are NaN.
  float* fresh = device_alloc<float>(4);
  EXPECT_TRUE(std::isnan(to_host(fresh, 4)[0]));
  // Misuse is reported.
  EXPECT_EQ(cudaMemcpy(h.data(), back.data(), 4000, cudaMemcpyHostToDevice), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpy(a, h.data(), 4004, cudaMemcpyHostToDevice), cudaErrorInvalidValue);
  EXPECT_EQ(cudaFree(h.data()), cudaErrorInvalidValue);
  cudaGetLastError();
  ASSERT_EQ(cudaStreamDestroy(s), cudaSuccess);
  cudaFree(a);
  cudaFree(b);
  cudaFree(fresh);
}

// Naive column-major reference of cuBLAS gemm.
void ref_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const std::vector<float>& A, int lda,
              const std::vector<float>& B, int ldb, float beta, std::vector<float>& C, int ldc) {
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < m; ++i) {
      double acc = 0;
      for (int p = 0; p < k; ++p) {
        const float a = ta ? A[p + i * lda] : A[i + p * lda];
        const float b = tb ? B[j + p * ldb] : B[p + j * ldb];
        acc += static_cast<double>(a) * b;
      }
      float& c = C[i + j * ldc];
      c = static_cast<float>(alpha * acc + (beta == 0.0f ? 0.0 : beta * static_cast<double>(c)));
    }
}

TEST(CudaSim, CublasSgemmMatchesColumnMajorReference) {
  cublasHandle_t handle;
  ASSERT_EQ(cublasCreate(&handle), CUBLAS_STATUS_SUCCESS);
  const int m = 7, n = 5, k = 9;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb)
      for (float beta : {0.0f, 0.5f}) {
        const int lda = (ta ? k : m) + 2, ldb = (tb ? n : k) + 1, ldc = m + 3;
        std::vector<float> A(lda * (ta ? m : k)), B(ldb * (tb ? k : n)), C(ldc * n);
        for (size_t q = 0; q < A.size(); ++q) A[q] = std::sin(0.3f * q);
        for (size_t q = 0; q < B.size(); ++q) B[q] = std::cos(0.7f * q);
        for (size_t q = 0; q < C.size(); ++q) C[q] = beta == 0.0f ? NAN : 0.1f * q;
        std::vector<float> expect = C;
        ref_gemm(ta, tb, m, n, k, 1.5f, A, lda, B, ldb, beta, expect, ldc);
        float* dA = device_alloc<float>(A.size());
        float* dB = device_alloc<float>(B.size());
        float* dC = device_alloc<float>(C.size());
        cudaMemcpy(dA, A.data(), A.size() * 4, cudaMemcpyHostToDevice);
        cudaMemcpy(dB, B.data(), B.size() * 4, cudaMemcpyHostToDevice);
        cudaMemcpy(dC, C.data(), C.size() * 4, cudaMemcpyHostToDevice);
        const float alpha = 1.5f;
        ASSERT_EQ(cublasSgemm(handle, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k, &alpha,
                              dA, lda, dB, ldb, &beta, dC, ldc),
                  CUBLAS_STATUS_SUCCESS);
        const auto got = to_host(dC, C.size());
        for (int j = 0; j < n; ++j)
          for (int i = 0; i < ldc; ++i) {
            const float e = expect[i + j * ldc], g = got[i + j * ldc];
            if (i >= m) {  // rows past m are untouched padding
              EXPECT_TRUE((std::isnan(e) && std::isnan(g)) || e == g);
            } else {
              EXPECT_NEAR(g, e, 1e-4f) << "ta=" << ta << " tb=" << tb << " beta=" << beta;
            }
          }
        cudaFree(dA);
        cudaFree(dB);
        cudaFree(dC);
      }
  const float one = 1.0f;
  EXPECT_EQ(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, nullptr, 3, nullptr, 4, &one, nullptr, 4),
            CUBLAS_STATUS_INVALID_VALUE);  // lda < m
  EXPECT_STREQ(cublasGetStatusName(CUBLAS_STATUS_INVALID_VALUE), "CUBLAS_STATUS_INVALID_VALUE");
  EXPECT_NE(cublasGetStatusString(CUBLAS_STATUS_SUCCESS), nullptr);

  // Strided batched: two 3x2 * 2x4 products.
  const int bm = 3, bn = 4, bk = 2, batch = 2;
  std::vector<float> A(bm * bk * batch), B(bk * bn * batch), C(bm * bn * batch, 0.0f);
  std::iota(A.begin(), A.end(), 1.0f);
  std::iota(B.begin(), B.end(), -3.0f);
  float* dA = device_alloc<float>(A.size());
  float* dB = device_alloc<float>(B.size());
  float* dC = device_alloc<float>(C.size());
  cudaMemcpy(dA, A.data(), A.size() * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(dB, B.data(), B.size() * 4, cudaMemcpyHostToDevice);
  const float zero = 0.0f;
  ASSERT_EQ(cublasSgemmStridedBatched(handle, CUBLAS_OP_N, CUBLAS_OP_N, bm, bn, bk, &one, dA, bm, bm * bk, dB, bk,
                                      bk * bn, &zero, dC, bm, bm * bn, batch),
            CUBLAS_STATUS_SUCCESS);
  const auto got = to_host(dC, C.size());
  for (int b = 0; b < batch; ++b) {
    std::vector<float> a(A.begin() + b * bm * bk, A.begin() + (b + 1) * bm * bk);
    std::vector<float> bb(B.begin() + b * bk * bn, B.begin() + (b + 1) * bk * bn);
    std::vector<float> c(bm * bn, 0.0f);
    ref_gemm(false, false, bm, bn, bk, 1.0f, a, bm, bb, bk, 0.0f, c, bm);
    for (int q = 0; q < bm * bn; ++q) EXPECT_FLOAT_EQ(got[b * bm * bn + q], c[q]);
  }
  cudaFree(dA);
  cudaFree(dB);
  cudaFree(dC);
  EXPECT_EQ(cublasDestroy(handle), CUBLAS_STATUS_SUCCESS);
}

TEST(CudaSim, LaunchCost) {
  const int blocks = 100, threads = 256;
  float* out = device_alloc<float>(blocks * threads);
  auto time_ms = [&](auto&& launch) {
    launch();  // warm-up (maps the fiber stacks)
    const int reps = 5;
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; ++r) launch();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / reps;
  };
  const double with_sync = time_ms([&] { JANUS_LAUNCH(syncthreads_timing, blocks, threads, 0, nullptr, out); });
  const double plain = time_ms([&] { JANUS_LAUNCH(no_barrier_timing, blocks, threads, 0, nullptr, out); });
  std::printf("[ sim cost ] %d blocks x %d threads: %.3f ms with one __syncthreads, %.3f ms without\n", blocks,
              threads, with_sync, plain);
  const auto h = to_host(out, blocks * threads);
  EXPECT_EQ(h[0], 1.0f);
  JANUS_LAUNCH(syncthreads_timing, blocks, threads, 0, nullptr, out);
  EXPECT_EQ(to_host(out, blocks * threads)[3], 252.0f);
  cudaFree(out);
}

#if JANUS_SIM_HAS_THRUST
TEST(CudaSim, ThrustOnDeviceMemory) {
  // Raw device pointers with the thrust::device policy (works under nvcc too).
  // (thrust::sort and thrust::device_ptr dereferences in the CPP system trip
  // UBSan inside thrust/detail/reference.h, a null execution_policy
  // reference in Thrust itself, so they are not used here.)
  std::vector<float> h = {5, 3, 9, 1, 7};
  float* d = device_alloc<float>(h.size());
  float* s = device_alloc<float>(h.size());
  cudaMemcpy(d, h.data(), h.size() * 4, cudaMemcpyHostToDevice);
  EXPECT_EQ(thrust::reduce(thrust::device, d, d + h.size(), 0.0f), 25.0f);
  thrust::inclusive_scan(thrust::device, d, d + h.size(), s);
  EXPECT_EQ(to_host(s, h.size()), (std::vector<float>{5, 8, 17, 18, 25}));
  cudaFree(d);
  cudaFree(s);
}
#endif

}  // namespace

// ============================ race detector and schedules ============================
namespace {

// The race detector's report of one launch (fixed order), "" when it found no race.
template <class Launch>
std::string race_report(Launch&& launch) {
  SimChecks checks(true, 0);
  try {
    launch();
  } catch (const janus::sim::KernelError& e) {
    return e.what();
  }
  return "";
}

std::string hex_address(const void* p) {
  std::ostringstream s;
  s << "0x" << std::hex << reinterpret_cast<std::uintptr_t>(p);
  return s.str();
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Builds without instrumented kernels (AddressSanitizer) cannot check races:
// the detector must then refuse to run, never report "no race".
#define REQUIRE_RACECHECK()                                                                          \
  do {                                                                                               \
    if (!janus::sim::racecheck_available()) {                                                        \
      float* p = device_alloc<float>(32);                                                            \
      const std::string refusal = race_report([&] { JANUS_LAUNCH(warp_left_neighbour<true>, 1, 32, 0, nullptr, p, p); }); \
      cudaFree(p);                                                                                   \
      EXPECT_TRUE(contains(refusal, "not instrumented")) << refusal;                                 \
      GTEST_SKIP() << "the race detector needs a SIM build without sanitizers (kernels not instrumented)"; \
    }                                                                                                \
  } while (0)

// What each planted bug below shows. `racy` (the bug) and `fixed` (its
// correct twin) each run kernels that leave their result in `result()`:
//   * the fixed order hides the bug: `racy` gives `expect`;
//   * permuted orders expose it: under schedule seeds 1 and 2 it does not;
//   * `fixed` gives `expect` in every order and the detector finds nothing.
// Returns the race detector's report of `racy` (fixed order).
template <class T>
std::string expect_hidden_exposed_and_fixed(const std::function<void()>& racy, const std::function<void()>& fixed,
                                            const std::function<std::vector<T>()>& result,
                                            const std::vector<T>& expect) {
  racy();
  EXPECT_EQ(result(), expect) << "the fixed order was expected to hide the bug";
  for (std::uint64_t seed : {1, 2}) {
    {
      SimChecks seeded(false, seed);
      racy();
    }
    EXPECT_NE(result(), expect) << "schedule seed " << seed << " did not expose the bug";
  }
  EXPECT_EQ(race_report(fixed), "");
  for (std::uint64_t seed : {0, 1, 2}) {
    {
      SimChecks seeded(false, seed);
      fixed();
    }
    EXPECT_EQ(result(), expect) << "the correct kernel under schedule seed " << seed;
  }
  return race_report(racy);
}

TEST(RaceCheck, MissingSyncthreadsIsReported) {
  REQUIRE_RACECHECK();
  SimChecks defaults(false, 0);  // whatever the environment says
  const int blocks = 4, n = blocks * kTileThreads;
  std::vector<float> h(n), expect(n);
  for (int i = 0; i < n; ++i) h[i] = static_cast<float>(i + 1);
  for (int i = 0; i < n; ++i) expect[i] = h[i % kTileThreads > 0 ? i - 1 : i];
  float* in = device_alloc<float>(n);
  float* out = device_alloc<float>(n);
  cudaMemcpy(in, h.data(), n * sizeof(float), cudaMemcpyHostToDevice);
  // A thread that runs before its left neighbour reads the previous block's tile.
  auto racy = [&] { JANUS_LAUNCH(left_neighbour<false>, blocks, kTileThreads, 0, nullptr, in, out); };
  auto fixed = [&] {
    cudaMemset(out, 0xFF, n * sizeof(float));
    JANUS_LAUNCH(left_neighbour<true>, blocks, kTileThreads, 0, nullptr, in, out);
  };
  const std::string r =
      expect_hidden_exposed_and_fixed<float>(racy, fixed, [&] { return to_host(out, n); }, expect);

  // The report: kernel, address, both accesses and their threads.
  EXPECT_TRUE(contains(r, "252 racy accesses in kernel 'left_neighbour<false>'")) << r;  // threads 1..63 of 4 blocks
  EXPECT_TRUE(contains(r, "race on shared memory at " + hex_address(&g_neighbour_tile[0]) + " (4 bytes)")) << r;
  EXPECT_TRUE(contains(r, "write by block (0,0,0) thread (0,0,0)")) << r;
  EXPECT_TRUE(contains(r, "read by block (0,0,0) thread (1,0,0)")) << r;
  EXPECT_TRUE(contains(r, "same warp, no __syncwarp() or __syncthreads() between them")) << r;  // t = 1..31
  EXPECT_TRUE(contains(r, "nothing orders them: no __syncthreads() between them")) << r;        // t = 32: warp 1
  // The same races whatever order the simulator runs the threads in.
  {
    SimChecks seeded(true, 1);
    try {
      racy();
      ADD_FAILURE() << "no race reported under schedule seed 1";
    } catch (const janus::sim::KernelError& e) {
      EXPECT_TRUE(contains(e.what(), "252 racy accesses")) << e.what();
    }
  }
  cudaFree(in);
  cudaFree(out);
}

TEST(RaceCheck, WarpSynchronousCodeNeedsSyncwarp) {
  REQUIRE_RACECHECK();
  SimChecks defaults(false, 0);  // whatever the environment says
  std::vector<float> h(32), expect(32);
  for (int i = 0; i < 32; ++i) h[i] = static_cast<float>(3 * i + 1);
  for (int i = 0; i < 32; ++i) expect[i] = h[i > 0 ? i - 1 : 0];
  float* in = device_alloc<float>(32);
  float* zeros = device_alloc<float>(32);
  float* out = device_alloc<float>(32);
  cudaMemcpy(in, h.data(), sizeof(float) * 32, cudaMemcpyHostToDevice);
  cudaMemset(zeros, 0, sizeof(float) * 32);
  auto result = [&] { return to_host(out, 32); };
  // One block: the tile is first filled with zeros, which a lane that runs
  // before its left neighbour then reads.
  auto racy = [&] {
    JANUS_LAUNCH(warp_left_neighbour<true>, 1, 32, 0, nullptr, zeros, out);
    JANUS_LAUNCH(warp_left_neighbour<false>, 1, 32, 0, nullptr, in, out);
  };
  auto fixed = [&] {
    JANUS_LAUNCH(warp_left_neighbour<true>, 1, 32, 0, nullptr, zeros, out);
    JANUS_LAUNCH(warp_left_neighbour<true>, 1, 32, 0, nullptr, in, out);
  };
  std::string r = expect_hidden_exposed_and_fixed<float>(racy, fixed, result, expect);
  EXPECT_TRUE(contains(r, "31 racy accesses in kernel 'warp_left_neighbour<false>'")) << r;
  EXPECT_TRUE(contains(r, "race on shared memory at " + hex_address(&g_warp_tile[0]))) << r;
  EXPECT_TRUE(contains(r, "same warp, no __syncwarp()")) << r;
  // A shuffle exchanges registers: it does not order the tile's accesses.
  r = race_report([&] { JANUS_LAUNCH((warp_left_neighbour<false, true>), 1, 32, 0, nullptr, in, out); });
  EXPECT_TRUE(contains(r, "31 racy accesses")) << r;
  EXPECT_EQ(race_report([&] { JANUS_LAUNCH((warp_left_neighbour<true, true>), 1, 32, 0, nullptr, in, out); }), "");

  // The pre-Volta warp-synchronous reduction, and the same with __syncwarp().
  // (The fiber order does not hide this one: lane 0 runs every step alone.)
  r = race_report([&] { JANUS_LAUNCH(warp_tree_sum<false>, 1, 32, 0, nullptr, in, out); });
  EXPECT_TRUE(contains(r, "in kernel 'warp_tree_sum<false>'")) << r;
  // Lane 1's first write hits what lane 0 read in its last step.
  EXPECT_TRUE(contains(r, "race on shared memory at " + hex_address(&g_reduce_tile[1]))) << r;
  EXPECT_TRUE(contains(r, "read by block (0,0,0) thread (0,0,0)")) << r;
  EXPECT_TRUE(contains(r, "write by block (0,0,0) thread (1,0,0)")) << r;
  EXPECT_TRUE(contains(r, "same warp, no __syncwarp()")) << r;
  EXPECT_EQ(race_report([&] { JANUS_LAUNCH(warp_tree_sum<true>, 1, 32, 0, nullptr, in, out); }), "");
  const float total = std::accumulate(h.begin(), h.end(), 0.0f);
  for (std::uint64_t seed : {0, 1, 2}) {
    SimChecks seeded(false, seed);
    JANUS_LAUNCH(warp_tree_sum<true>, 1, 32, 0, nullptr, in, out);
    EXPECT_EQ(to_host(out, 1)[0], total) << "seed " << seed;
  }
  cudaFree(in);
  cudaFree(zeros);
  cudaFree(out);
}

TEST(RaceCheck, BlockReadingAnotherBlocksOutputIsReported) {
  REQUIRE_RACECHECK();
  SimChecks defaults(false, 0);  // whatever the environment says
  const int blocks = 8, n = blocks * 32;
  std::vector<float> h(n);
  for (int i = 0; i < n; ++i) h[i] = static_cast<float>(i % 5 + 1);
  std::vector<float> expect(blocks), totals_h(blocks);
  for (int b = 0; b < blocks; ++b)
    totals_h[b] = 2.0f * std::accumulate(h.begin() + b * 32, h.begin() + b * 32 + 32, 0.0f);
  for (int b = 0; b < blocks; ++b) expect[b] = totals_h[b] + (b > 0 ? totals_h[b - 1] : 0.0f);
  float* in = device_alloc<float>(n);
  float* totals = device_alloc<float>(blocks);
  float* sums = device_alloc<float>(blocks);
  cudaMemcpy(in, h.data(), n * sizeof(float), cudaMemcpyHostToDevice);
  auto racy = [&] {
    cudaMemset(totals, 0xFF, blocks * sizeof(float));  // NaN: "not written yet"
    JANUS_LAUNCH(totals_and_pair_sums, blocks, 32, 0, nullptr, in, totals, sums);
  };
  auto fixed = [&] {
    cudaMemset(totals, 0xFF, blocks * sizeof(float));
    JANUS_LAUNCH(totals_only, blocks, 32, 0, nullptr, in, totals);
    JANUS_LAUNCH(pair_sums, blocks, 32, 0, nullptr, totals, sums);
  };
  const std::string r =
      expect_hidden_exposed_and_fixed<float>(racy, fixed, [&] { return to_host(sums, blocks); }, expect);
  EXPECT_TRUE(contains(r, "7 racy accesses in kernel 'totals_and_pair_sums'")) << r;
  EXPECT_TRUE(contains(r, "race on global memory at " + hex_address(totals) +
                              " (4 bytes, byte 0 of a 32-byte cudaMalloc block)"))
      << r;
  EXPECT_TRUE(contains(r, "write by block (0,0,0) thread (0,0,0)")) << r;
  EXPECT_TRUE(contains(r, "read by block (1,0,0) thread (0,0,0)")) << r;
  EXPECT_TRUE(contains(r, "nothing orders them: different blocks of one launch")) << r;
  cudaFree(in);
  cudaFree(totals);
  cudaFree(sums);
}

TEST(RaceCheck, AtomicsDoNotRaceButPlainReadsOfThemDo) {
  REQUIRE_RACECHECK();
  SimChecks defaults(false, 0);  // whatever the environment says
  unsigned* counter = device_alloc<unsigned>(1);
  unsigned* peek = device_alloc<unsigned>(1);
  cudaMemset(counter, 0, sizeof(unsigned));
  EXPECT_EQ(race_report([&] { JANUS_LAUNCH(count_blocks<false>, 16, 32, 0, nullptr, counter, peek); }), "");
  EXPECT_EQ(to_host(counter, 1)[0], 16u);
  const std::string r =
      race_report([&] { JANUS_LAUNCH(count_blocks<true>, 16, 32, 0, nullptr, counter, peek); });
  // Block 1's read follows its own atomicAdd (the last write remembered);
  // each later block's atomicAdd races with the read.
  EXPECT_TRUE(contains(r, "14 racy accesses in kernel 'count_blocks<true>'")) << r;
  EXPECT_TRUE(contains(r, "race on global memory at " + hex_address(counter))) << r;
  EXPECT_TRUE(contains(r, "read by block (1,0,0) thread (0,0,0)")) << r;
  EXPECT_TRUE(contains(r, "atomic by block (2,0,0) thread (0,0,0)")) << r;
  EXPECT_TRUE(contains(r, "different blocks of one launch")) << r;
  cudaFree(counter);
  cudaFree(peek);
}

TEST(RaceCheck, CorrectKernelsPassClean) {
  REQUIRE_RACECHECK();
  SimChecks defaults(false, 0);  // whatever the environment says
  // Shared-memory tree reduction with a barrier per step, several blocks.
  const int n = 2500, blocks = (n + 255) / 256;
  std::vector<float> h(n);
  for (int i = 0; i < n; ++i) h[i] = static_cast<float>(i % 13);
  float* in = device_alloc<float>(n);
  float* out = device_alloc<float>(n);
  cudaMemcpy(in, h.data(), n * sizeof(float), cudaMemcpyHostToDevice);
  EXPECT_EQ(race_report([&] { JANUS_LAUNCH((block_sum<256>), blocks, 256, 0, nullptr, in, out, n); }), "");
  EXPECT_EQ(to_host(out, 1)[0], std::accumulate(h.begin(), h.begin() + 256, 0.0f));
  // Shuffles, votes and per-warp results.
  float* down = device_alloc<float>(n);
  int* bc = device_alloc<int>(n);
  unsigned* ballots = device_alloc<unsigned>(n);
  double* dsum = device_alloc<double>(n);
  EXPECT_EQ(race_report([&] { JANUS_LAUNCH(warp_ops, 3, 128, 0, nullptr, in, down, out, bc, ballots, dsum); }), "");
  // Every thread of a 3-D grid of 3-D blocks, atomics on distinct counters.
  unsigned* hits = device_alloc<unsigned>(384);
  uint3* dims = device_alloc<uint3>(2);
  cudaMemset(hits, 0, 384 * sizeof(unsigned));
  EXPECT_EQ(race_report([&] { JANUS_LAUNCH(record_indices, dim3(3, 2, 2), dim3(8, 4, 1), 0, nullptr, hits, dims, 384); }),
            "");
  for (void* p : {static_cast<void*>(in), static_cast<void*>(out), static_cast<void*>(down), static_cast<void*>(bc),
                  static_cast<void*>(ballots), static_cast<void*>(dsum), static_cast<void*>(hits),
                  static_cast<void*>(dims)})
    cudaFree(p);
}

TEST(RaceCheck, ObservesTheBackendsKernels) {
  REQUIRE_RACECHECK();
  SimChecks defaults(false, 0);
  // src/cuda/*.cu, compiled into the janus library, are instrumented like this file.
  const int rows = 70, cols = 45, n = rows * cols;
  std::vector<float> h(n);
  std::iota(h.begin(), h.end(), 0.0f);
  float* in = device_alloc<float>(n);
  float* out = device_alloc<float>(n);
  cudaMemcpy(in, h.data(), n * sizeof(float), cudaMemcpyHostToDevice);
  const std::uint64_t before = janus::sim::racecheck_checked_accesses();
  {
    SimChecks on(true, 0);
    janus::cuda_kernels::transpose(in, out, rows, cols, nullptr);
  }
  // Each element: a global read, a shared write, a shared read, a global write.
  const std::uint64_t checked = janus::sim::racecheck_checked_accesses() - before;
  EXPECT_GE(checked, 4u * n);
  const auto t = to_host(out, n);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) ASSERT_EQ(t[c * rows + r], h[r * cols + c]);
  // Off, nothing is checked.
  janus::cuda_kernels::transpose(in, out, rows, cols, nullptr);
  EXPECT_EQ(janus::sim::racecheck_checked_accesses() - before, checked);
  cudaFree(in);
  cudaFree(out);
}

TEST(ScheduleOrder, PermutationIsABijection) {
  using janus::sim::detail::Permutation;
  for (std::uint64_t n : {1ull, 2ull, 3ull, 5ull, 31ull, 32ull, 33ull, 100ull, 256ull, 1000ull, 1024ull, 4097ull}) {
    for (std::uint64_t key : {0ull, 1ull, 0xdeadbeefull}) {
      const Permutation p(n, key);
      std::vector<int> hit(n, 0);
      bool identity = true;
      for (std::uint64_t i = 0; i < n; ++i) {
        const std::uint64_t j = p(i);
        ASSERT_LT(j, n) << "n " << n << " key " << key;
        ++hit[j];
        identity = identity && j == i;
      }
      for (std::uint64_t j = 0; j < n; ++j) ASSERT_EQ(hit[j], 1) << "n " << n << " key " << key << " value " << j;
      if (key == 0) {
        EXPECT_TRUE(identity);
      } else if (n >= 8) {
        EXPECT_FALSE(identity) << "n " << n << " key " << key;
      }
    }
  }
  // Huge grids need no table.
  const Permutation big(std::uint64_t{1} << 40, 7);
  EXPECT_LT(big(12345), std::uint64_t{1} << 40);
  EXPECT_NE(big(12345), big(12346));
}

TEST(ScheduleOrder, SeedPermutesBlocksAndThreadsReproducibly) {
  SimChecks defaults(false, 0);
  const int blocks = 64, threads = 64;
  unsigned* ticket = device_alloc<unsigned>(1);
  unsigned* block_at = device_alloc<unsigned>(blocks);
  unsigned* thread_ticket = device_alloc<unsigned>(blocks);
  unsigned* thread_at = device_alloc<unsigned>(blocks * threads);
  auto orders = [&](std::uint64_t seed) {
    SimChecks seeded(false, seed);
    EXPECT_EQ(janus::sim::schedule_seed(), seed);
    cudaMemset(ticket, 0, sizeof(unsigned));
    cudaMemset(thread_ticket, 0, blocks * sizeof(unsigned));
    JANUS_LAUNCH(arrival_order, blocks, threads, 0, nullptr, ticket, block_at, thread_ticket, thread_at);
    return std::make_pair(to_host(block_at, blocks), to_host(thread_at, blocks * threads));
  };
  auto is_permutation_of_iota = [](std::vector<unsigned> v) {
    std::sort(v.begin(), v.end());
    for (size_t i = 0; i < v.size(); ++i)
      if (v[i] != i) return false;
    return true;
  };
  std::vector<unsigned> iota_blocks(blocks), iota_threads(threads);
  std::iota(iota_blocks.begin(), iota_blocks.end(), 0u);
  std::iota(iota_threads.begin(), iota_threads.end(), 0u);

  const auto fixed = orders(0);
  EXPECT_EQ(fixed.first, iota_blocks);
  for (int b = 0; b < blocks; ++b)
    EXPECT_EQ(std::vector<unsigned>(fixed.second.begin() + b * threads, fixed.second.begin() + (b + 1) * threads),
              iota_threads);

  const auto seeded = orders(5);
  EXPECT_TRUE(is_permutation_of_iota(seeded.first));
  EXPECT_NE(seeded.first, iota_blocks);
  std::vector<unsigned> first_block(seeded.second.begin(), seeded.second.begin() + threads);
  std::vector<unsigned> second_block(seeded.second.begin() + threads, seeded.second.begin() + 2 * threads);
  EXPECT_TRUE(is_permutation_of_iota(first_block));
  EXPECT_NE(first_block, iota_threads);
  EXPECT_NE(first_block, second_block);  // every block gets its own thread order
  EXPECT_EQ(orders(5), seeded);          // reproducible
  EXPECT_NE(orders(6).first, seeded.first);
  for (void* p : {static_cast<void*>(ticket), static_cast<void*>(block_at), static_cast<void*>(thread_ticket),
                  static_cast<void*>(thread_at)})
    cudaFree(p);
}

}  // namespace
