// Device selection by name: "cpu", "cuda", "cuda:N", "auto".
#include <cstdio>
#include <mutex>

#include "core/cuda_backend.hpp"
#include "janus/device.hpp"
#include "janus/error.hpp"

namespace janus {

bool cuda_built() {
#ifdef JANUS_WITH_CUDA
  return true;
#else
  return false;
#endif
}

int cuda_device_count() { return cuda_backend::device_count(); }

Device& get_device(const std::string& spec) {
  if (spec == "cpu") return cpu_device();
  if (spec == "cpu:reference") return reference_cpu_device();
  if (spec == "auto") {
    if (cuda_device_count() > 0) return cuda_backend::device(0);
    // Said once per process: a CUDA build on a machine without a GPU runs on the CPU.
    static std::once_flag told;
    if (cuda_built())
      std::call_once(told, [] { std::fprintf(stderr, "janus: no CUDA device found; running on the CPU\n"); });
    return cpu_device();
  }
  if (spec == "cuda" || spec.rfind("cuda:", 0) == 0) {
    int index = 0;
    if (spec.size() > 5) {
      const std::string digits = spec.substr(5);
      JANUS_CHECK(!digits.empty() && digits.find_first_not_of("0123456789") == std::string::npos &&
                      digits.size() < 6,
                  "unknown device '", spec, "': expected cpu, cpu:reference, cuda, cuda:N or auto");
      index = std::stoi(digits);
    }
    JANUS_CHECK(cuda_built(), "device '", spec,
                "' requested, but this build of Janus has no CUDA backend (configure with -DJANUS_CUDA=ON or SIM)");
    const int count = cuda_device_count();
    JANUS_CHECK(index < count, "device '", spec, "' does not exist: ", count, " CUDA device(s) found",
                count == 0 ? " (no GPU on this machine; use --device cpu or auto)" : "");
    return cuda_backend::device(index);
  }
  throw Error("unknown device '" + spec + "': expected cpu, cpu:reference, cuda, cuda:N or auto");
}

}  // namespace janus
