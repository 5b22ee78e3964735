// The typed readers of Janus's environment variables (src/core/env_settings.hpp):
// accepted spellings, defaults for unset and empty variables, and the error
// text that names the variable, the value and what was expected.
#include "core/env_settings.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>

#include "janus/error.hpp"
#include "janus/fusion.hpp"

#include "error_message.hpp"

namespace {

using janus::test::error_of;

constexpr const char* kVar = "JANUS_TEST_ENV_SETTING";

// Sets (or, with nullptr, unsets) one variable for the lifetime of the object.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) setenv(name, value, 1);
    else unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_) setenv(name_, old_->c_str(), 1);
    else unsetenv(name_);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(EnvSettings, StringUnsetAndEmptyAreNotGiven) {
  {
    ScopedEnv e(kVar, nullptr);
    EXPECT_FALSE(janus::env::string_setting(kVar).has_value());
  }
  {
    ScopedEnv e(kVar, "");
    EXPECT_FALSE(janus::env::string_setting(kVar).has_value());
  }
  ScopedEnv e(kVar, "some dir/x");
  EXPECT_EQ(janus::env::string_setting(kVar), std::optional<std::string>("some dir/x"));
}

TEST(EnvSettings, FlagAcceptsZeroAndOneOnly) {
  {
    ScopedEnv e(kVar, nullptr);
    EXPECT_TRUE(janus::env::flag(kVar, true));
    EXPECT_FALSE(janus::env::flag(kVar, false));
  }
  {
    ScopedEnv e(kVar, "");
    EXPECT_TRUE(janus::env::flag(kVar, true));
  }
  {
    ScopedEnv e(kVar, "0");
    EXPECT_FALSE(janus::env::flag(kVar, true));
  }
  {
    ScopedEnv e(kVar, "1");
    EXPECT_TRUE(janus::env::flag(kVar, false));
  }
  for (const char* bad : {"yes", "true", "on", "2", " 1", "1 ", "01"}) {
    ScopedEnv e(kVar, bad);
    EXPECT_EQ(error_of([] { janus::env::flag(kVar, false); }),
              std::string("environment variable JANUS_TEST_ENV_SETTING='") + bad +
                  "' is not valid: expected 0 (off) or 1 (on)");
  }
}

TEST(EnvSettings, IntegerWithinBounds) {
  {
    ScopedEnv e(kVar, nullptr);
    EXPECT_EQ(janus::env::integer(kVar, 1, 10, 7), 7);
  }
  for (const auto& [text, value] : {std::pair<const char*, int64_t>{"1", 1}, {"10", 10}, {"007", 7}, {"-3", -3}}) {
    ScopedEnv e(kVar, text);
    EXPECT_EQ(janus::env::integer(kVar, -5, 10, 0), value) << text;
  }
  ScopedEnv e(kVar, "-9223372036854775808");
  EXPECT_EQ(janus::env::integer(kVar, INT64_MIN, 0, 0), INT64_MIN);
}

TEST(EnvSettings, IntegerRefusesOutOfRangeAndMalformed) {
  for (const char* bad : {"0", "11", "-1", "4k", "+4", " 4", "4.0", "0x4", "-", "99999999999999999999"}) {
    ScopedEnv e(kVar, bad);
    EXPECT_EQ(error_of([] { janus::env::integer(kVar, 1, 10, 5, "(kilobytes)"); }),
              std::string("environment variable JANUS_TEST_ENV_SETTING='") + bad +
                  "' is not valid: expected an integer from 1 to 10 (kilobytes)");
  }
}

TEST(EnvSettings, UnsignedIntegerCoversSixtyFourBits) {
  {
    ScopedEnv e(kVar, "18446744073709551615");
    EXPECT_EQ(janus::env::unsigned_integer(kVar, 0), UINT64_MAX);
  }
  {
    ScopedEnv e(kVar, nullptr);
    EXPECT_EQ(janus::env::unsigned_integer(kVar, 42), 42u);
  }
  for (const char* bad : {"18446744073709551616", "-1", "12a"}) {
    ScopedEnv e(kVar, bad);
    EXPECT_EQ(error_of([] { janus::env::unsigned_integer(kVar, 0, "(0: the fixed order)"); }),
              std::string("environment variable JANUS_TEST_ENV_SETTING='") + bad +
                  "' is not valid: expected an unsigned decimal integer below 2^64 (0: the fixed order)");
  }
}

enum class Algo { A, B, C };

TEST(EnvSettings, ChoiceMapsNamesAndListsThemInTheError) {
  const auto read = [] { return janus::env::choice(kVar, {{"alpha", Algo::A}, {"beta", Algo::B}, {"gamma", Algo::C}}, Algo::B); };
  {
    ScopedEnv e(kVar, nullptr);
    EXPECT_EQ(read(), Algo::B);
  }
  {
    ScopedEnv e(kVar, "gamma");
    EXPECT_EQ(read(), Algo::C);
  }
  {
    ScopedEnv e(kVar, "alpha");
    EXPECT_EQ(read(), Algo::A);
  }
  ScopedEnv e(kVar, "Alpha");
  EXPECT_EQ(error_of(read),
            "environment variable JANUS_TEST_ENV_SETTING='Alpha' is not valid: expected alpha, beta or gamma");
}

TEST(EnvSettings, RequestedThreadCountPrefersJanusThenOpenMp) {
  {
    ScopedEnv j("JANUS_NUM_THREADS", "3"), o("OMP_NUM_THREADS", "5");
    EXPECT_EQ(janus::env::requested_thread_count(), 3);
  }
  {
    ScopedEnv j("JANUS_NUM_THREADS", "0"), o("OMP_NUM_THREADS", "4,2");  // OpenMP's nested list: its first level
    EXPECT_EQ(janus::env::requested_thread_count(), 4);
  }
  {
    ScopedEnv j("JANUS_NUM_THREADS", nullptr), o("OMP_NUM_THREADS", nullptr);
    EXPECT_FALSE(janus::env::requested_thread_count().has_value());
  }
  ScopedEnv j("JANUS_NUM_THREADS", "two"), o("OMP_NUM_THREADS", nullptr);
  EXPECT_EQ(error_of([] { janus::env::requested_thread_count(); }),
            "environment variable JANUS_NUM_THREADS='two' is not valid: expected an integer from 0 to 4096 "
            "(CPU threads; 0: not set)");
}

// A call site: JANUS_FUSE keeps its spellings (unset: on, "0": off) and a
// typo is now an error instead of silently leaving the fusion on.
TEST(EnvSettings, FusionSwitchUsesTheFlagReader) {
  {
    ScopedEnv e("JANUS_FUSE", "0");
    EXPECT_FALSE(janus::fusion_enabled_from_environment());
  }
  {
    ScopedEnv e("JANUS_FUSE", nullptr);
    EXPECT_TRUE(janus::fusion_enabled_from_environment());
  }
  ScopedEnv e("JANUS_FUSE", "off");
  EXPECT_EQ(error_of([] { janus::fusion_enabled_from_environment(); }),
            "environment variable JANUS_FUSE='off' is not valid: expected 0 (off) or 1 (on)");
}

}  // namespace
