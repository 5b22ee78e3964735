// Janus's environment variables, read in one place (internal, not a public header).
//
// Every JANUS_* variable the library reads goes through one of these typed
// readers. An unset variable and an empty one mean the same: "not given", the
// caller's default. A value a reader does not accept is refused with a
// janus::Error that names the variable, the value and what was expected, e.g.
//     environment variable JANUS_FUSE='yes' is not valid: expected 0 (off) or 1 (on)
// so a typo never silently turns a setting into its default.
//
// The readers read the environment on every call; call sites that read a
// variable once per process keep the result in a function-local static.
// The list of variables and their meaning is in README.md ("Environment
// variables"); tests/test_env_settings.cpp covers the readers.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>

namespace janus::env {

// The value of `name`, or nullopt when it is unset or empty.
std::optional<std::string> string_setting(const char* name);

// Throws janus::Error "environment variable NAME='VALUE' is not valid: expected EXPECTED".
[[noreturn]] void refuse(const char* name, const std::string& value, const std::string& expected);

// A switch: "0" is off, "1" is on, unset or empty is `fallback`; any other
// value is refused (no "true", "yes", "on": one spelling per state).
bool flag(const char* name, bool fallback);

// A decimal integer in [lo, hi] (digits with an optional leading '-'; no
// sign '+', spaces, or trailing text), or `fallback` when unset or empty.
// `meaning` is appended to the error's "expected" part, e.g. "(kilobytes)".
int64_t integer(const char* name, int64_t lo, int64_t hi, int64_t fallback, const char* meaning = "");

// An unsigned decimal integer of up to 64 bits (digits only), or `fallback`
// when unset or empty. `meaning` as for integer().
uint64_t unsigned_integer(const char* name, uint64_t fallback, const char* meaning = "");

// One of several names, each mapped to a value; `fallback` when unset or
// empty. Names are compared exactly (case-sensitive); the error lists them
// ("expected cudnn or implicit_gemm").
template <class T>
T choice(const char* name, std::initializer_list<std::pair<const char*, T>> options, T fallback) {
  const std::optional<std::string> v = string_setting(name);
  if (!v) return fallback;
  std::string expected;
  size_t i = 0;
  for (const auto& [option, value] : options) {
    if (*v == option) return value;
    if (i > 0) expected += i + 1 == options.size() ? " or " : ", ";
    expected += option;
    ++i;
  }
  refuse(name, *v, expected);
}

// The thread count asked for by JANUS_NUM_THREADS (1..4096; 0 or unset: not
// asked), else by OMP_NUM_THREADS, or nullopt when neither asks. OpenMP's
// variable is read as OpenMP reads it: its leading number (it may be a list
// for nested levels, "4,2"); a value without one is not an error here.
std::optional<int> requested_thread_count();

}  // namespace janus::env
