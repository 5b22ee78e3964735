// Janus CUDA simulator: the part of the toolkit's <mma.h> that Janus kernels
// use (nvcuda::wmma). The SIM build puts src/cuda/sim/headers on the include
// path, so kernel sources include it exactly as under nvcc. What is supported
// and with which semantics: src/cuda/sim/wmma.hpp.
#pragma once
#include "cuda/sim/wmma.hpp"
