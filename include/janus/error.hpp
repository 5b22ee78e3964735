// Errors: every failure a user can cause is a janus::Error whose message names
// the thing at fault (file, layer, shape), never an abort or a silent NaN.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace janus {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
template <class... Args>
std::string concat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}
}  // namespace detail

// JANUS_CHECK(cond, "layer ", name, ": expected ", shape.str())
#define JANUS_CHECK(cond, ...)                                     \
  do {                                                             \
    if (!(cond)) throw ::janus::Error(::janus::detail::concat(__VA_ARGS__)); \
  } while (0)

}  // namespace janus
