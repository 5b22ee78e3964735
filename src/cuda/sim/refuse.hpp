// Janus CUDA simulator: CUDA features the simulator cannot run fail to compile
// with a message naming the simulator, instead of silently doing something else.
// (Headers such as <cub/...>, <cooperative_groups.h>, <cudnn.h> are refused by
// the #error stubs in src/cuda/sim/refused/, which the SIM build puts first on
// the include path; the headers it serves are in src/cuda/sim/headers/.)
#pragma once

// Inline PTX. Every standard header the simulator and Janus need is already
// included at this point; system headers spell it __asm__, not asm.
#define asm                                                                                     \
  static_assert(false, "inline PTX (asm) is not supported by the Janus CUDA simulator; write " \
                       "portable CUDA C++ (see src/cuda/cuda_compat.hpp)");                     \
  __asm__

namespace janus::sim::detail {
template <class... T>
inline constexpr bool refused = false;
template <class... T>
struct RefusedFeature {
  static_assert(refused<T...>, "this CUDA feature is not supported by the Janus CUDA simulator "
                               "(see src/cuda/cuda_compat.hpp)");
};
}  // namespace janus::sim::detail

// Dynamic parallelism, cooperative launches, textures, clusters.
template <class... T>
inline void cudaLaunchCooperativeKernel(T...) { janus::sim::detail::RefusedFeature<T...>{}; }
template <class... T>
inline void cudaLaunchKernel(T...) { janus::sim::detail::RefusedFeature<T...>{}; }
template <class... T>
inline void tex1Dfetch(T...) { janus::sim::detail::RefusedFeature<T...>{}; }
template <class... T>
inline void __activemask(T...) { janus::sim::detail::RefusedFeature<T...>{}; }
template <class... T>
inline void __nanosleep(T...) { janus::sim::detail::RefusedFeature<T...>{}; }
