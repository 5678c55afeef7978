// The account lock (src/core/lockout.hpp, docs/security.md R83, R89), its
// record in the store, and the address the throttles count
// (src/core/throttle.hpp).

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "lockout.hpp"
#include "store.hpp"
#include "test_helpers.hpp"
#include "throttle.hpp"

namespace {

using oauth2::AccountLimit;
using oauth2::LoginOrigin;

constexpr int64_t kNow = 1800000000;
constexpr const char* kRealm = "default";

class LockoutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<oauth2_test::TempDir>();
    store_ = std::make_unique<oauth2::Store>(dir_->path() + "/s", 16 << 20);
  }

  void fail(int n, int64_t at = kNow) {
    for (int i = 0; i < n; i++) {
      store_->change([&](oauth2::Txn& txn) {
        oauth2::account_failed(txn, kRealm, 7, limit_, at);
        txn.commit();
      });
    }
  }
  // the device value the browser is to keep
  std::string sign_in(const LoginOrigin& o, int64_t at = kNow) {
    std::string device;
    store_->change([&](oauth2::Txn& txn) {
      device = oauth2::account_signed_in(txn, kRealm, 7, o, at);
      txn.commit();
    });
    return device;
  }
  unsigned wait(const LoginOrigin& o, int64_t at = kNow) {
    auto txn = store_->read();
    return oauth2::account_wait(txn, kRealm, 7, o, at);
  }

  AccountLimit limit_{5, 3600};
  std::unique_ptr<oauth2_test::TempDir> dir_;
  std::unique_ptr<oauth2::Store> store_;
};

TEST_F(LockoutTest, LocksAtTheCeilingForStrangersOnlyR83) {
  const LoginOrigin home{"192.0.2.1", ""};
  const LoginOrigin stranger{"198.51.100.9", ""};
  sign_in(home, kNow - 86400);
  fail(4);
  EXPECT_EQ(wait(stranger), 0u) << "4 failures are below the ceiling of 5";
  fail(1);
  EXPECT_EQ(wait(stranger), 3600u) << "the 5th locks it for the window";
  EXPECT_EQ(wait(home), 0u) << "an address that signed in before may try";
}

TEST_F(LockoutTest, SigningInUnlocksNothingForOthersR83) {
  const LoginOrigin home{"192.0.2.1", ""};
  fail(5);
  sign_in(home);
  EXPECT_GT(wait({"203.0.113.4", ""}), 0u);
  EXPECT_EQ(wait(home), 0u);
}

TEST_F(LockoutTest, ABrowserIsTrustedByItsDeviceCookie) {
  const std::string device = sign_in({"192.0.2.1", oauth2::new_device_cookie()});
  ASSERT_TRUE(oauth2::valid_device_cookie(device));
  EXPECT_EQ(sign_in({"192.0.2.2", device}), device) << "a trusted value is kept";
  fail(5);
  EXPECT_EQ(wait({"203.0.113.4", device}), 0u) << "the same browser elsewhere";
  EXPECT_GT(wait({"203.0.113.4", oauth2::new_device_cookie()}), 0u);
  EXPECT_GT(wait({"203.0.113.4", ""}), 0u);
}

// R83: a device value the browser sent but this server never gave it for
// the account (a cookie a sibling host planted, Domain=) is not what the
// sign-in trusts: the browser gets a fresh value, and the planted one
// never passes the lock
TEST_F(LockoutTest, APlantedDeviceValueIsNeverTrustedR83) {
  const std::string planted(43, 'P');
  ASSERT_TRUE(oauth2::valid_device_cookie(planted));
  const std::string given = sign_in({"192.0.2.1", planted});
  EXPECT_NE(given, planted);
  EXPECT_TRUE(oauth2::valid_device_cookie(given));
  fail(5);
  EXPECT_GT(wait({"203.0.113.4", planted}), 0u) << "the planted value passes nothing";
  EXPECT_EQ(wait({"203.0.113.4", given}), 0u) << "the server's value does";
}

// R83: sign-ins from many addresses (a phone's password grant on the
// move: an address each, no device) never push a browser that signed in
// out of the list, nor many browsers the addresses: a full list drops
// the oldest of the kind that holds more than half of it
TEST_F(LockoutTest, ManyAddressesNeverPushOutABrowserR83) {
  const std::string laptop = sign_in({"192.0.2.1", oauth2::new_device_cookie()}, kNow);
  for (int i = 0; i < 12; i++) sign_in({"198.51.100." + std::to_string(i), ""}, kNow + 1 + i);
  std::vector<std::string> browsers;
  for (int i = 0; i < 3; i++) {
    browsers.push_back(sign_in({"198.51.100.11", oauth2::new_device_cookie()}, kNow + 20 + i));
  }
  {
    auto txn = store_->read();
    auto l = txn.get_account_lock(kRealm, 7);
    ASSERT_TRUE(l);
    EXPECT_EQ(l->trusted.size(), oauth2::AccountLock::kMaxTrusted);
  }
  fail(5, kNow + 30);
  EXPECT_EQ(wait({"203.0.113.4", laptop}, kNow + 31), 0u)
      << "the laptop's browser, after 12 addresses signed in";
  for (const std::string& b : browsers) EXPECT_EQ(wait({"203.0.113.4", b}, kNow + 31), 0u);
  EXPECT_EQ(wait({"198.51.100.11", ""}, kNow + 31), 0u) << "the newest address";
  EXPECT_GT(wait({"198.51.100.0", ""}, kNow + 31), 0u) << "the oldest addresses went";
  // and many browsers keep the newest addresses
  for (int i = 0; i < 8; i++)
    sign_in({"198.51.100.11", oauth2::new_device_cookie()}, kNow + 40 + i);
  EXPECT_EQ(wait({"198.51.100.11", ""}, kNow + 50), 0u) << "the address stays";
}

// R84: a guess that waited in a hash queue is written with the time it
// arrived, before the window a newer guess opened: it counts in that
// window.  It started a new window before, the count back to one.
TEST_F(LockoutTest, AnOlderGuessNeverResetsTheCountR84) {
  const LoginOrigin stranger{"198.51.100.9", ""};
  fail(4, kNow + 10);
  fail(1, kNow);  // queued since kNow
  EXPECT_EQ(wait(stranger, kNow + 10), 3600u) << "the 5th failure locks";
}

// R39: a new password ends the trust of what signed in with the old one:
// whoever had it meets the lock as a stranger.  The lock itself stays.
TEST_F(LockoutTest, ANewPasswordEndsTrustR39) {
  const LoginOrigin thief{"203.0.113.5", ""};
  const std::string device = sign_in({"203.0.113.5", oauth2::new_device_cookie()});
  const LoginOrigin thief_browser{"198.51.100.77", device};
  fail(5);
  ASSERT_EQ(wait(thief), 0u);
  ASSERT_EQ(wait(thief_browser), 0u);
  store_->change([&](oauth2::Txn& txn) {
    oauth2::account_password_changed(txn, kRealm, 7);
    txn.commit();
  });
  EXPECT_EQ(wait(thief), 3600u) << "its address";
  EXPECT_EQ(wait(thief_browser), 3600u) << "its browser";
}

TEST_F(LockoutTest, TrustEndsAfterThirtyDays) {
  const LoginOrigin home{"192.0.2.1", ""};
  sign_in(home, kNow - oauth2::kTrustedFor - 1);
  fail(5);
  EXPECT_GT(wait(home), 0u);
}

TEST_F(LockoutTest, TheLockEndsWithItsWindowR17) {
  fail(5);
  const LoginOrigin stranger{"198.51.100.9", ""};
  EXPECT_EQ(wait(stranger, kNow + 3599), 1u);
  EXPECT_EQ(wait(stranger, kNow + 3600), 0u);
  fail(1, kNow + 3600);  // a new window counts from one
  EXPECT_EQ(wait(stranger, kNow + 3601), 0u);
}

// R80, R83: a clock stepped forward a month (NTP, a resumed virtual
// machine), then back: the lock its guesses set, and the window they
// opened, would hold for the month; they end with the step instead.  A
// guess that waited in a hash queue still never resets the count (R84)
TEST_F(LockoutTest, AClockSteppedBackEndsTheLockItDatedR80) {
  const LoginOrigin stranger{"198.51.100.9", ""};
  const int64_t month = 30 * 86400;
  fail(5, kNow + month);
  ASSERT_EQ(wait(stranger, kNow + month), 3600u);
  EXPECT_EQ(wait(stranger), 0u) << "a lock dated a month ahead is no lock";
  fail(4);  // the window a month ahead is not this one
  EXPECT_EQ(wait(stranger), 0u) << "4 failures of a new window";
  fail(1);
  EXPECT_EQ(wait(stranger), 3600u) << "the 5th of the new window locks";
  // a day's step is within the bound: the lock holds
  fail(5, kNow + 86400);
  EXPECT_EQ(wait(stranger, kNow + 86400), 3600u);
  EXPECT_GT(wait(stranger, kNow + 3600), 0u) << "a lock a day ahead still holds";
}

TEST_F(LockoutTest, OffNeverLocksNorWrites) {
  limit_.limit = 0;
  fail(50);
  EXPECT_EQ(wait({"198.51.100.9", ""}), 0u);
  auto txn = store_->read();
  EXPECT_FALSE(txn.get_account_lock(kRealm, 7));
}

TEST_F(LockoutTest, TheRecordKeepsEightOriginsNewestFirst) {
  for (int i = 0; i < 12; i++) {
    sign_in({"192.0.2." + std::to_string(i), ""}, kNow + i);
  }
  {
    auto txn = store_->read();
    auto l = txn.get_account_lock(kRealm, 7);
    ASSERT_TRUE(l);
    ASSERT_EQ(l->trusted.size(), oauth2::AccountLock::kMaxTrusted);
    EXPECT_EQ(l->trusted.front().last, kNow + 11);
  }
  fail(5, kNow + 20);
  EXPECT_EQ(wait({"192.0.2.11", ""}, kNow + 21), 0u);
  EXPECT_GT(wait({"192.0.2.0", ""}, kNow + 21), 0u) << "the oldest went";
}

TEST_F(LockoutTest, DeletingTheUserDeletesItsLock) {
  oauth2::User u;
  u.realm = kRealm;
  u.username = "gone";
  u.password = "!";
  ASSERT_NO_FATAL_FAILURE(store_->change([&](oauth2::Txn& txn) {
    ASSERT_EQ(txn.put_user(u, true), oauth2::PutUser::kOk);
    oauth2::account_failed(txn, kRealm, u.id, limit_, kNow);
    txn.commit();
  }));
  store_->change([&](oauth2::Txn& txn) {
    ASSERT_TRUE(txn.get_account_lock(kRealm, u.id));
    ASSERT_TRUE(txn.delete_user(kRealm, u.id));
    EXPECT_FALSE(txn.get_account_lock(kRealm, u.id));
  });
}

TEST(ThrottleAddress, IPv6CountsByItsSlash64) {
  EXPECT_EQ(oauth2::throttle_address("192.0.2.1"), "192.0.2.1");
  EXPECT_EQ(oauth2::throttle_address("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
  EXPECT_EQ(oauth2::throttle_address("2001:db8:1:2:ffff::1"), "2001:db8:1:2::/64");
  EXPECT_EQ(oauth2::throttle_address("::ffff:192.0.2.9"), "192.0.2.9");
  EXPECT_EQ(oauth2::throttle_address("unix:"), "unix:");
  EXPECT_EQ(oauth2::throttle_address(std::string(100, 'a')).size(), 64u);
}

// R83: behind a NAT64 translator (RFC 6052's well-known prefix) each IPv4
// client counts as its own address, not all of them as 64:ff9b::/64; the
// rest of 64:ff9b::/32 (RFC 8215's local-use prefixes) counts by its /64
TEST(ThrottleAddress, ANat64AddressCountsAsItsIPv4Address) {
  EXPECT_EQ(oauth2::throttle_address("64:ff9b::c633:6407"), "198.51.100.7");
  EXPECT_EQ(oauth2::throttle_address("64:ff9b::203.0.113.9"), "203.0.113.9");
  EXPECT_NE(oauth2::throttle_address("64:ff9b::c633:6407"),
            oauth2::throttle_address("64:ff9b::cb00:7109"));
  EXPECT_EQ(oauth2::throttle_address("64:ff9b:1::c633:6407"), "64:ff9b:1::/64");
}

}  // namespace
