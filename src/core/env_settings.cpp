// Typed readers of Janus's environment variables (env_settings.hpp).
#include "core/env_settings.hpp"

#include <cstdlib>
#include <limits>

#include "janus/error.hpp"

namespace janus::env {

namespace {

// Digits only, at least one; accumulates into `out` without overflowing
// (false when the value exceeds `max`).
bool parse_digits(const std::string& s, size_t start, uint64_t max, uint64_t& out) {
  if (start >= s.size()) return false;
  uint64_t n = 0;
  for (size_t i = start; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    const uint64_t digit = static_cast<uint64_t>(s[i] - '0');
    if (n > (max - digit) / 10) return false;
    n = n * 10 + digit;
  }
  out = n;
  return true;
}

std::string with_meaning(std::string expected, const char* meaning) {
  if (meaning != nullptr && *meaning != '\0') expected += std::string(" ") + meaning;
  return expected;
}

}  // namespace

std::optional<std::string> string_setting(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

void refuse(const char* name, const std::string& value, const std::string& expected) {
  throw Error(detail::concat("environment variable ", name, "='", value, "' is not valid: expected ", expected));
}

bool flag(const char* name, bool fallback) {
  const std::optional<std::string> v = string_setting(name);
  if (!v) return fallback;
  if (*v == "0") return false;
  if (*v == "1") return true;
  refuse(name, *v, "0 (off) or 1 (on)");
}

int64_t integer(const char* name, int64_t lo, int64_t hi, int64_t fallback, const char* meaning) {
  const std::optional<std::string> v = string_setting(name);
  if (!v) return fallback;
  const bool negative = (*v)[0] == '-';
  // |INT64_MIN| = INT64_MAX + 1: the bound on the magnitude of a negative value.
  const uint64_t max_magnitude = static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + (negative ? 1 : 0);
  uint64_t magnitude = 0;
  const bool parsed = parse_digits(*v, negative ? 1 : 0, max_magnitude, magnitude);
  // Negation in unsigned arithmetic, then back: exact for INT64_MIN too.
  const int64_t n = negative ? static_cast<int64_t>(0 - magnitude) : static_cast<int64_t>(magnitude);
  if (!parsed || n < lo || n > hi)
    refuse(name, *v, with_meaning(detail::concat("an integer from ", lo, " to ", hi), meaning));
  return n;
}

uint64_t unsigned_integer(const char* name, uint64_t fallback, const char* meaning) {
  const std::optional<std::string> v = string_setting(name);
  if (!v) return fallback;
  uint64_t n = 0;
  if (!parse_digits(*v, 0, std::numeric_limits<uint64_t>::max(), n))
    refuse(name, *v, with_meaning("an unsigned decimal integer below 2^64", meaning));
  return n;
}

std::optional<int> requested_thread_count() {
  const int64_t janus = integer("JANUS_NUM_THREADS", 0, 4096, 0, "(CPU threads; 0: not set)");
  if (janus > 0) return static_cast<int>(janus);
  if (const std::optional<std::string> omp = string_setting("OMP_NUM_THREADS")) {
    const int n = std::atoi(omp->c_str());
    if (n > 0) return n;
  }
  return std::nullopt;
}

}  // namespace janus::env
