// A build configured with -DJANUS_CUDA=OFF: there is no CUDA backend at all.
#include "core/cuda_backend.hpp"
#include "janus/error.hpp"

namespace janus::cuda_backend {

int device_count() { return 0; }
std::string unavailable_reason() {
  return "this build of Janus has no CUDA backend (configure with -DJANUS_CUDA=ON or SIM)";
}
Device& device(int index) {
  throw Error(detail::concat("cuda:", index, " requested, but this build of Janus has no CUDA backend "
                             "(configure with -DJANUS_CUDA=ON or SIM)"));
}
bool simulated() { return false; }
std::string library_versions() { return "none (built with JANUS_CUDA=OFF)"; }

}  // namespace janus::cuda_backend
