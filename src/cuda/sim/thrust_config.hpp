// Janus CUDA simulator: Thrust from CCCL on the host compiler.
//
// Thrust's CPP device system runs thrust::device algorithms sequentially on
// the host. CCCL assumes a CUDA toolkit whenever <cuda_runtime_api.h> can be
// found and then expects the real runtime's types; in the simulator the
// toolkit must stay invisible, so its detection header is pre-empted here
// (CCCL's cuda/std/__cccl/cuda_toolkit.h, same include guard and macros).
#pragma once

#if defined(JANUS_SIM_HAS_THRUST) && JANUS_SIM_HAS_THRUST
#ifndef __CCCL_CUDA_TOOLKIT_H
#define __CCCL_CUDA_TOOLKIT_H
#define _CCCL_HAS_CTK() 0
#define _CCCL_CTK_MAKE_VERSION(_MAJOR, _MINOR) ((_MAJOR) * 1000 + (_MINOR) * 10)
#define _CCCL_CTK() (CUDART_VERSION / 1000, (CUDART_VERSION % 1000) / 10)
#define _CCCL_CTK_BELOW(...) _CCCL_VERSION_COMPARE(_CCCL_CTK_, _CCCL_CTK, <, __VA_ARGS__)
#define _CCCL_CTK_AT_LEAST(...) _CCCL_VERSION_COMPARE(_CCCL_CTK_, _CCCL_CTK, >=, __VA_ARGS__)
#endif
#endif
