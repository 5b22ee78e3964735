// The domain of a numeric config field (internal): an interval, open or
// closed at each end, optionally integers only. Every numeric field of a
// run config (optimizer, schedule) is read through config_number(), so an
// impossible value is refused when the config is read, with a message that
// names the field, its value and the domain, e.g.
//   optimizer adam: 'beta2' is 1.5, outside its domain [0, 1)
#pragma once

#include <cmath>
#include <iomanip>
#include <sstream>
#include <limits>
#include <string>

#include "janus/nlohmann_json.hpp"

#include "janus/error.hpp"

namespace janus::config_detail {

struct Domain {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool lo_closed = true, hi_closed = true;
  bool integer = false;

  bool contains(double x) const {
    if (!std::isfinite(x)) return false;
    if (integer && x != std::floor(x)) return false;
    return (lo_closed ? x >= lo : x > lo) && (hi_closed ? x <= hi : x < hi);
  }
  // "[0, 1)", "(0, inf)", "integers >= 1"
  std::string str() const {
    auto num = [](double v) {
      if (std::isinf(v)) return std::string(v > 0 ? "inf" : "-inf");
      std::ostringstream s;
      s << std::setprecision(17) << v;  // 0.1 -> 0.10000000000000001; use the shortest that round-trips
      for (int p = 1; p <= 17; ++p) {
        std::ostringstream t;
        t << std::setprecision(p) << v;
        if (std::stod(t.str()) == v) return t.str();
      }
      return s.str();
    };
    if (integer && hi >= 9007199254740992.0) return "integers >= " + num(lo_closed ? lo : lo + 1);
    return std::string(integer ? "integers in " : "") + (lo_closed ? "[" : "(") + num(lo) + ", " + num(hi) +
           (hi_closed ? "]" : ")");
  }
};

// The usual domains.
inline Domain positive() { return {0.0, std::numeric_limits<double>::infinity(), false, false}; }           // (0, inf)
inline Domain non_negative() { return {0.0, std::numeric_limits<double>::infinity(), true, false}; }        // [0, inf)
inline Domain unit_open() { return {0.0, 1.0, true, false}; }                                              // [0, 1)
inline Domain unit_closed() { return {0.0, 1.0, true, true}; }                                             // [0, 1]
inline Domain decay_factor() { return {0.0, 1.0, false, true}; }                                           // (0, 1]
// Integers from lo up to 2^53 (beyond, a double no longer holds every integer).
inline Domain count_from(double lo) { return {lo, 9007199254740992.0, true, true, true}; }

// x itself, when in `domain`; else throws janus::Error "WHERE: 'KEY' is X,
// outside its domain D" (the C++ constructors and the JSON reader alike).
inline double check_domain(double x, const Domain& domain, const std::string& where, const char* key) {
  if (!domain.contains(x)) {
    std::ostringstream v;
    v << std::setprecision(17) << x;
    throw Error(where + ": '" + key + "' is " + v.str() + ", outside its domain " + domain.str());
  }
  return x;
}

// obj[key] as a number in `domain` (fallback when absent). `where` prefixes
// messages, e.g. "optimizer adam".
inline double config_number(const nlohmann::json& obj, const char* key, double fallback, const Domain& domain,
                            const std::string& where) {
  if (!obj.contains(key)) return fallback;
  const nlohmann::json& v = obj.at(key);
  JANUS_CHECK(v.is_number(), where, ": '", key, "' must be a number, got ", v.dump());
  const double x = v.get<double>();
  JANUS_CHECK(domain.contains(x), where, ": '", key, "' is ", v.dump(), ", outside its domain ", domain.str());
  return x;
}

}  // namespace janus::config_detail
