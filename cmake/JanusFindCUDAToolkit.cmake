# janus_find_cuda_toolkit(): find_package(CUDAToolkit REQUIRED), working
# around a bug of CMake 3.25.0 and 3.25.1 (Debian 12 ships 3.25.1). Their
# FindCUDAToolkit marks CUDA::nvToolsExt deprecated whenever the project
# requires CMake 3.25 or newer, without checking that the target exists. CUDA
# 13 has no nvToolsExt library (NVTX 3 is header-only), so the find fails with
# "set_property could not find TARGET CUDA::nvToolsExt". Later CMake releases
# check the target. Found by the GPU-check rehearsal in a bare Debian root
# (scripts/fresh_machine_check.sh --gpu-check). Used by Janus's own build
# (JanusCuda.cmake) and by the installed package (JanusConfig.cmake), whose
# users may require CMake 3.25 too.
macro(janus_find_cuda_toolkit)
  if(CMAKE_VERSION VERSION_LESS 3.25.2 AND CMAKE_MINIMUM_REQUIRED_VERSION VERSION_GREATER_EQUAL 3.25)
    # The module reads the requirement only for that one check: hide it there.
    set(_janus_minimum_required "${CMAKE_MINIMUM_REQUIRED_VERSION}")
    set(CMAKE_MINIMUM_REQUIRED_VERSION 3.24)
    find_package(CUDAToolkit ${ARGN} REQUIRED)
    set(CMAKE_MINIMUM_REQUIRED_VERSION "${_janus_minimum_required}")
    unset(_janus_minimum_required)
  else()
    find_package(CUDAToolkit ${ARGN} REQUIRED)
  endif()
endmacro()
