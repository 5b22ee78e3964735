# Wires the CUDA backend into the `janus` library according to JANUS_CUDA:
#   OFF: no CUDA at all (src/core/cuda_absent.cpp answers "no CUDA devices");
#        configures on machines without a CUDA toolkit.
#   ON:  src/cuda/*.cu compiled by nvcc, linked with cudart, cuBLAS and cuDNN.
#   SIM: the same src/cuda/*.cu compiled by the host compiler against the
#        CUDA simulator in src/cuda/sim (one source per kernel).
if(JANUS_CUDA STREQUAL "OFF")
  target_sources(janus PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src/core/no_cuda/cuda_absent.cpp)
  return()
endif()

file(GLOB JANUS_CUDA_KERNELS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/src/cuda/*.cu)
file(GLOB JANUS_CUDA_HOST CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/src/cuda/*.cpp)

if(JANUS_CUDA STREQUAL "ON")
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    # A short list keeps CI builds in minutes: Ampere (A100) and Hopper (H100/H200).
    set(CMAKE_CUDA_ARCHITECTURES "80;90" CACHE STRING "CUDA architectures")
  endif()
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  enable_language(CUDA)
  set(CMAKE_CUDA_STANDARD 17)
  include(${PROJECT_SOURCE_DIR}/cmake/JanusFindCUDAToolkit.cmake)
  janus_find_cuda_toolkit()  # find_package(CUDAToolkit REQUIRED), see there
  # cuDNN comes with the toolkit on some machines and as a separate install
  # (or pip's nvidia-cudnn wheel) on others: JANUS_CUDNN_ROOT names its prefix
  # when it is not beside the toolkit (scripts/gpu_check.sh sets it).
  set(JANUS_CUDNN_ROOT "$ENV{CUDNN_ROOT}" CACHE PATH "cuDNN prefix (include/cudnn.h, lib/libcudnn.so)")
  find_path(JANUS_CUDNN_INCLUDE_DIR cudnn.h
    HINTS ${JANUS_CUDNN_ROOT}/include ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda/include REQUIRED)
  find_library(JANUS_CUDNN_LIBRARY cudnn
    HINTS ${JANUS_CUDNN_ROOT}/lib ${JANUS_CUDNN_ROOT}/lib64 ${CUDAToolkit_LIBRARY_DIR} /usr/local/cuda/lib64 REQUIRED)
  message(STATUS "Janus CUDA backend: cuDNN ${JANUS_CUDNN_LIBRARY} (headers in ${JANUS_CUDNN_INCLUDE_DIR})")
  target_sources(janus PRIVATE ${JANUS_CUDA_KERNELS} ${JANUS_CUDA_HOST})
  target_include_directories(janus SYSTEM PRIVATE ${JANUS_CUDNN_INCLUDE_DIR})
  target_compile_definitions(janus PUBLIC JANUS_WITH_CUDA=1)
  target_compile_options(janus PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings --expt-relaxed-constexpr -Xcompiler=-Wall,-Wextra,-Werror,-Wno-unused-parameter>)
  target_link_libraries(janus PRIVATE CUDA::cudart CUDA::cublas ${JANUS_CUDNN_LIBRARY})
else() # SIM
  file(GLOB JANUS_SIM_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/src/cuda/sim/*.cpp)
  # CMake passes `-x c++` for these, so g++ compiles the .cu files as C++.
  set_source_files_properties(${JANUS_CUDA_KERNELS} PROPERTIES LANGUAGE CXX)
  # Rounding of a*b + c. nvcc contracts it into one FMA by default
  # (--fmad=true), the CPU reference rounds the product first. With
  # JANUS_SIM_FP_CONTRACT=ON (the default) the host compiler contracts the
  # kernel sources the same way (-ffp-contract=fast, with FMA instructions), so
  # the parity suite sees GPU-like rounding; OFF rounds every product, like
  # the CPU. CI runs the suite both ways: a kernel whose parity depends on
  # contraction fails one of them (docs/cuda-rounding.md).
  option(JANUS_SIM_FP_CONTRACT "Simulator: contract a*b+c into FMA in the CUDA kernels, as nvcc does" ON)
  if(JANUS_SIM_FP_CONTRACT)
    include(CheckCXXSourceRuns)
    set(CMAKE_REQUIRED_FLAGS -mfma)
    check_cxx_source_runs("int main() { __builtin_cpu_init(); return __builtin_cpu_supports(\"fma\") ? 0 : 1; }"
                          JANUS_SIM_HOST_HAS_FMA)
    unset(CMAKE_REQUIRED_FLAGS)
    if(NOT JANUS_SIM_HOST_HAS_FMA)
      message(FATAL_ERROR "JANUS_SIM_FP_CONTRACT=ON needs a host CPU and compiler with FMA (-mfma); "
                          "configure with -DJANUS_SIM_FP_CONTRACT=OFF on this machine")
    endif()
    set_property(SOURCE ${JANUS_CUDA_KERNELS} APPEND PROPERTY COMPILE_OPTIONS -ffp-contract=fast -mfma)
  else()
    set_property(SOURCE ${JANUS_CUDA_KERNELS} APPEND PROPERTY COMPILE_OPTIONS -ffp-contract=off)
  endif()
  message(STATUS "Janus CUDA simulator: FMA contraction in kernels ${JANUS_SIM_FP_CONTRACT}")
  target_sources(janus PRIVATE ${JANUS_CUDA_KERNELS} ${JANUS_CUDA_HOST} ${JANUS_SIM_SOURCES})
  target_compile_definitions(janus PUBLIC JANUS_WITH_CUDA=1 JANUS_CUDA_SIM=1)
  # The simulator's race detector (src/cuda/sim/racecheck.hpp, run with
  # JANUS_SIM_RACECHECK=1) observes the kernels' loads and stores through the
  # compiler's ThreadSanitizer instrumentation, without its runtime
  # (src/cuda/sim/instrumentation.cpp stands in for it). That instrumentation
  # excludes AddressSanitizer and the fuzzers' builds, which go without it.
  option(JANUS_SIM_RACECHECK "SIM: instrument the simulated kernels for the race detector" ON)
  set(JANUS_SIM_INSTRUMENT_FLAGS "")
  if(JANUS_SIM_RACECHECK AND NOT JANUS_SANITIZE AND NOT JANUS_FUZZ AND NOT CMAKE_CXX_FLAGS MATCHES "-fsanitize")
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      set(JANUS_SIM_INSTRUMENT_FLAGS -fsanitize=thread --param=tsan-instrument-func-entry-exit=0)
    elseif(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
      set(JANUS_SIM_INSTRUMENT_FLAGS -fsanitize=thread "SHELL:-mllvm -tsan-instrument-func-entry-exit=0")
    endif()
  endif()
  # janus_sim_instrument(SOURCES...): kernel sources whose accesses the race detector sees.
  function(janus_sim_instrument)
    if(JANUS_SIM_INSTRUMENT_FLAGS)
      set_property(SOURCE ${ARGN} APPEND PROPERTY COMPILE_OPTIONS ${JANUS_SIM_INSTRUMENT_FLAGS})
    endif()
  endfunction()
  janus_sim_instrument(${JANUS_CUDA_KERNELS})
  if(JANUS_SIM_INSTRUMENT_FLAGS)
    target_compile_definitions(janus PRIVATE JANUS_SIM_RACECHECK_INSTRUMENTED=1)
    message(STATUS "Janus CUDA simulator: kernels instrumented for the race detector")
  else()
    message(STATUS "Janus CUDA simulator: race detector unavailable in this build")
  endif()
  # Stubs that #error for CUDA headers the simulator cannot serve (CUB,
  # cooperative groups, cuDNN, the real runtime headers...). They
  # come first so that a CUDA toolkit on the default include path (some
  # machines link it into /usr/local/include) is never picked up by mistake.
  target_include_directories(janus BEFORE PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/src/cuda/sim/refused)
  # The toolkit headers the simulator serves itself (cuda_bf16.h, cuda_fp16.h).
  target_include_directories(janus PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/src/cuda/sim/headers)
  # Thrust (CCCL) works on the host compiler with its CPP device system. Only
  # thrust/, cuda/ (libcu++) and nv/ are exposed, through links in the build
  # tree; CUB is left out (it needs real device intrinsics).
  find_path(JANUS_CCCL_INCLUDE_DIR thrust/version.h
    HINTS ${CUDAToolkit_ROOT}/include/cccl $ENV{CUDA_HOME}/include/cccl /usr/local/cuda/include/cccl
    NO_DEFAULT_PATH)
  if(JANUS_CCCL_INCLUDE_DIR)
    set(janus_sim_cccl ${CMAKE_BINARY_DIR}/janus_sim_cccl)
    file(MAKE_DIRECTORY ${janus_sim_cccl})
    foreach(part thrust cuda nv)
      file(CREATE_LINK ${JANUS_CCCL_INCLUDE_DIR}/${part} ${janus_sim_cccl}/${part} SYMBOLIC)
    endforeach()
    target_include_directories(janus SYSTEM PUBLIC ${janus_sim_cccl})
    target_compile_definitions(janus PUBLIC JANUS_SIM_HAS_THRUST=1
                                            THRUST_DEVICE_SYSTEM=THRUST_DEVICE_SYSTEM_CPP)
    message(STATUS "Janus CUDA simulator: Thrust from ${JANUS_CCCL_INCLUDE_DIR} (CPP device system)")
  else()
    target_compile_definitions(janus PUBLIC JANUS_SIM_HAS_THRUST=0)
    message(STATUS "Janus CUDA simulator: no CCCL found, Thrust unavailable")
  endif()
endif()
