// CIFAR-10 binary batch reader: load_cifar10_batches on the input as a file.
// The input's size parity picks ignore_labels, so both paths are reached.
#include <janus/data.hpp>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = janus_fuzz::write_file("data_batch_1.bin", data, size);
  try {
    janus::Dataset d = janus::load_cifar10_batches({path}, /*ignore_labels=*/size % 2 == 1);
    d.validate(/*allow_unlabelled=*/true);
    if (d.size() != size / 3073 || d.x.size() != d.size() * 3072) std::abort();
  } catch (const janus::Error&) {
  }
  return 0;
}
