// error_of(fn): the message of the janus::Error that fn() throws, or
// "(no error)" when it returns normally. Tests compare or search that text,
// so a call that should have been refused fails the test with "(no error)"
// in its output. Any other exception propagates: GoogleTest reports it as a
// failure naming its type and message (Janus throws only janus::Error for
// bad input).
#pragma once

#include <string>
#include <utility>

#include "janus/error.hpp"

namespace janus::test {

template <class Fn>
std::string error_of(Fn&& fn) {
  try {
    std::forward<Fn>(fn)();
  } catch (const janus::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace janus::test
