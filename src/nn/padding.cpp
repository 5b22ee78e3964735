// Padding: "same", "valid" or an explicit integer (or [rows, cols]).
#include "janus/error.hpp"
#include "janus/layers.hpp"
#include "janus/nlohmann_json.hpp"

namespace janus {

Padding Padding::parse(const Json& value, const std::string& owner) {
  const nlohmann::json& v = nlohmann_json(value);
  Padding p;
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (s == "same") { p.mode = Mode::Same; return p; }
    if (s == "valid") { p.mode = Mode::Valid; return p; }
    throw Error(owner + ": unknown padding '" + s + "' (expected \"same\", \"valid\" or an integer)");
  }
  // (checked as 64-bit values: a huge pad must not wrap into a plausible int)
  auto extent = [](const nlohmann::json& e) {
    return e.is_number_integer() && e.get<int64_t>() >= 0 && e.get<int64_t>() <= (1 << 16);
  };
  if (extent(v)) {
    p.mode = Mode::Explicit;
    p.rows = p.cols = v.get<int>();
    return p;
  }
  if (v.is_array() && v.size() == 2 && extent(v[0]) && extent(v[1])) {
    p.mode = Mode::Explicit;
    p.rows = v[0].get<int>();
    p.cols = v[1].get<int>();
    return p;
  }
  throw Error(owner + ": invalid padding " + v.dump() +
              " (expected \"same\", \"valid\", an integer 0..65536 or [rows, cols])");
}

Json Padding::to_json() const {
  switch (mode) {
    case Mode::Same: return "same";
    case Mode::Valid: return "valid";
    case Mode::Explicit: return rows == cols ? Json(rows) : Json::array({rows, cols});
  }
  return "valid";
}

std::pair<int, int> Padding::resolve(int kernel_rows, int kernel_cols) const {
  switch (mode) {
    case Mode::Same: return {(kernel_rows - 1) / 2, (kernel_cols - 1) / 2};
    case Mode::Valid: return {0, 0};
    case Mode::Explicit: return {rows, cols};
  }
  return {0, 0};
}

SlidingWindow slide_window(const Shape& in, int kr, int kc, int stride, const Padding& pad,
                           const std::string& owner, const char* window_name) {
  SlidingWindow w;
  std::tie(w.pad_h, w.pad_w) = pad.resolve(kr, kc);
  const int64_t rows = in[1] + 2 * w.pad_h, cols = in[2] + 2 * w.pad_w;
  JANUS_CHECK(rows >= kr && cols >= kc, owner, ": ", window_name, " (", kr, ", ", kc,
              ") is larger than the padded input (", rows, ", ", cols, "): no output for input ", in.str());
  w.out_h = static_cast<int>((rows - kr) / stride + 1);
  w.out_w = static_cast<int>((cols - kc) / stride + 1);
  return w;
}

}  // namespace janus
