// JANUS_HOST_DEVICE marks a function that both host C++ and CUDA device code
// call (headers included by .cpp and .cu sources alike): __host__ __device__
// under nvcc, nothing for the host compiler (the CUDA simulator included).
#pragma once

#if defined(__CUDACC__)
#define JANUS_HOST_DEVICE __host__ __device__
#else
#define JANUS_HOST_DEVICE
#endif
