// The CUDA device a test suite runs on: JANUS_TEST_CUDA_DEVICE, default
// "cuda" (the first device). CTest runs the parity and graph-step suites a
// second time on cuda:1 of a two-device simulator (JANUS_SIM_DEVICES=2) while
// the thread's current device stays 0: every CudaDevice entry point restores
// it, so one without a device guard launches into the other device's stream,
// which the simulator refuses, as a GPU does.
#pragma once

#include <string>

#include "core/env_settings.hpp"

namespace janus::test {

inline std::string cuda_device_under_test() {
  return env::string_setting("JANUS_TEST_CUDA_DEVICE").value_or("cuda");
}

}  // namespace janus::test
