// Unit tests of the device flow's records (src/core/device): user codes
// (RFC 8628 6.1's alphabet, normalised), the device record's state, and
// finding, approving and denying through the hashed user code index.

#include <gtest/gtest.h>

#include <string>

#include "device.hpp"
#include "store.hpp"
#include "test_helpers.hpp"

using namespace oauth2;
using namespace oauth2::detail;

namespace {

TEST(UserCode, Normalises) {
  EXPECT_EQ(normalize_user_code("BCDF-GHJK").value_or(""), "BCDFGHJK");
  EXPECT_EQ(normalize_user_code("bcdf-ghjk").value_or(""), "BCDFGHJK");
  EXPECT_EQ(normalize_user_code(" bc df gh jk ").value_or(""), "BCDFGHJK");
  EXPECT_EQ(normalize_user_code("B-C-D-F-G-H-J-K").value_or(""), "BCDFGHJK");
}

TEST(UserCode, RefusesOutsideTheAlphabet) {
  EXPECT_FALSE(normalize_user_code("ABCD-EFGH"));  // vowels
  EXPECT_FALSE(normalize_user_code("BCDF-GHJ1"));  // digits
  EXPECT_FALSE(normalize_user_code("BCDF-GHJ"));   // short
  EXPECT_FALSE(normalize_user_code("BCDF-GHJKL"));  // long
  EXPECT_FALSE(normalize_user_code(""));
  EXPECT_FALSE(normalize_user_code(std::string(100, 'B')));
  EXPECT_FALSE(normalize_user_code(std::string("BCDF\0GHJK", 9)));
}

TEST(UserCode, Formats) { EXPECT_EQ(format_user_code("BCDFGHJK"), "BCDF-GHJK"); }

TEST(DeviceState, RoundTrips) {
  DeviceState s;
  s.status = DeviceState::kDenied;
  s.interval = 15;
  s.last_poll = 1700000000;
  s.expires = 1700000600;
  auto back = parse_device_state(encode_device_state(s));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->status, DeviceState::kDenied);
  EXPECT_EQ(back->interval, 15);
  EXPECT_EQ(back->last_poll, 1700000000);
  EXPECT_EQ(back->expires, 1700000600);
  EXPECT_FALSE(parse_device_state(""));
  EXPECT_FALSE(parse_device_state("weird 5 0 0"));
  EXPECT_FALSE(parse_device_state("pending 5"));
}

}  // namespace
