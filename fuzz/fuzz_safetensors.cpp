// Safetensors checkpoints: read_safetensors, then load_model (which rebuilds
// the model from the config in the metadata) on the input as a file.
#include <janus/checkpoint.hpp>
#include <janus/error.hpp>
#include <janus/device.hpp>
#include <janus/model.hpp>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = janus_fuzz::write_file("last.safetensors", data, size);
  try {
    janus::SafetensorsFile f = janus::read_safetensors(path);
    (void)f;
  } catch (const janus::Error&) {
    return 0;
  }
  try {
    janus::NeuralNetwork m = janus::load_model(path, janus::cpu_device());
    (void)m;
  } catch (const janus::Error&) {
  }
  return 0;
}
