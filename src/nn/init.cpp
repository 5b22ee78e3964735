// Weight initialisers: host-side draws from a seeded Rng, then one copy to the device.
#include "janus/init.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "janus/error.hpp"

namespace janus {

Init parse_init(const std::string& name, const std::string& owner) {
  if (name == "xavier_uniform" || name == "glorot_uniform" || name.empty()) return Init::XavierUniform;
  if (name == "xavier_normal" || name == "glorot_normal") return Init::XavierNormal;
  if (name == "he_uniform" || name == "kaiming_uniform") return Init::HeUniform;
  if (name == "he_normal" || name == "kaiming_normal") return Init::HeNormal;
  if (name == "uniform") return Init::Uniform;
  if (name == "normal") return Init::Normal;
  if (name == "zeros") return Init::Zeros;
  throw Error(owner + ": unknown weight initialiser '" + name +
              "' (expected xavier_uniform, xavier_normal, he_uniform, he_normal, uniform, normal, zeros)");
}

const char* init_name(Init init) {
  switch (init) {
    case Init::XavierUniform: return "xavier_uniform";
    case Init::XavierNormal: return "xavier_normal";
    case Init::HeUniform: return "he_uniform";
    case Init::HeNormal: return "he_normal";
    case Init::Uniform: return "uniform";
    case Init::Normal: return "normal";
    case Init::Zeros: return "zeros";
  }
  return "?";
}

Tensor initialise(Init init, const Shape& shape, int64_t fan_in, int64_t fan_out, Rng& rng,
                  Device& device, DType dtype) {
  // Refused before allocating (a sanitizer's operator new aborts instead of throwing).
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  JANUS_CHECK(pages <= 0 || page <= 0 ||
                  static_cast<uint64_t>(shape.numel()) <= static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) / 8,
              "out of memory: a parameter of shape ", shape.str(), " is larger than this machine's memory");
  std::vector<double> values;
  try {
    values.resize(static_cast<size_t>(shape.numel()));
  } catch (const std::exception&) {  // bad_alloc / length_error: absurd shapes from a config
    throw Error("out of memory: cannot allocate the initial values of a parameter of shape " + shape.str());
  }
  const double fi = static_cast<double>(fan_in), fo = static_cast<double>(fan_out);
  auto fill_uniform = [&](double a) {
    for (double& v : values) v = rng.uniform(-a, a);
  };
  auto fill_normal = [&](double s) {
    for (double& v : values) v = s * rng.normal();
  };
  switch (init) {
    case Init::XavierUniform: fill_uniform(std::sqrt(6.0 / (fi + fo))); break;
    case Init::XavierNormal: fill_normal(std::sqrt(2.0 / (fi + fo))); break;
    case Init::HeUniform: fill_uniform(std::sqrt(6.0 / fi)); break;
    case Init::HeNormal: fill_normal(std::sqrt(2.0 / fi)); break;
    case Init::Uniform: fill_uniform(0.05); break;
    case Init::Normal: fill_normal(0.05); break;
    case Init::Zeros: break;
  }
  return Tensor::from_host(values, shape, device, dtype);
}

}  // namespace janus
