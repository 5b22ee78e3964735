// Iris CSV reader: load_iris_csv on the input as a file.
#include <janus/data.hpp>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = janus_fuzz::write_file("iris.csv", data, size);
  try {
    janus::Dataset d = janus::load_iris_csv(path);
    d.validate();
    if (d.sample_numel() != 4 || d.num_classes < 1) std::abort();
  } catch (const janus::Error&) {
  }
  return 0;
}
