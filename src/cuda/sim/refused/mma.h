// Janus CUDA simulator: refused header.
#error "<mma.h> is not supported by the Janus CUDA simulator (JANUS_CUDA=SIM). Include \"cuda/cuda_compat.hpp\" for the runtime, cuBLAS and kernel built-ins; see its header comment for what kernels may use."
