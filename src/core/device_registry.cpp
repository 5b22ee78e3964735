// Device selection by name: "cpu", "cuda", "cuda:N", "auto".
#include <cstdio>
#include <cstdlib>
#include <string>
#include <mutex>

#include "core/cuda_backend.hpp"
#include "core/env_settings.hpp"
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

bool cuda_required() {
  return env::flag("JANUS_REQUIRE_CUDA", false);
}

std::string cuda_unavailable_reason() { return cuda_backend::unavailable_reason(); }

std::string cuda_library_versions() { return cuda_backend::library_versions(); }

int cuda_device_count() {
  const int n = cuda_backend::device_count();
  // The one place where "no GPU" turns into an error when a GPU is required:
  // every test skip, device "auto" and `janus bench --device cuda` ask here.
  JANUS_CHECK(n > 0 || !cuda_required(), "JANUS_REQUIRE_CUDA is set, but no CUDA device is usable: ",
              cuda_unavailable_reason());
  return n;
}

Device& get_device(const std::string& spec) {
  if (spec == "cpu") return cpu_device();
  if (spec == "cpu:reference") return reference_cpu_device();
  if (spec == "auto") {
    if (cuda_device_count() > 0) return cuda_backend::device(0);
    // Said once per process: a CUDA build on a machine without a GPU runs on the CPU.
    static std::once_flag told;
    if (cuda_built())
      std::call_once(told, [] {
        std::fprintf(stderr, "janus: no CUDA device found (%s); running on the CPU\n",
                     cuda_unavailable_reason().c_str());
      });
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
                count == 0 ? " (" + cuda_unavailable_reason() + "; use --device cpu or auto)" : std::string());
    return cuda_backend::device(index);
  }
  throw Error("unknown device '" + spec + "': expected cpu, cpu:reference, cuda, cuda:N or auto");
}

}  // namespace janus
