// Unit tests of src/core/realms and of the realm in the limits' counter
// keys (issue 12): a realm's name, the registry oauth2-admin realm
// add/list/delete keeps, deleting one realm's records in bounded batches
// while every other realm stays byte for byte, and counters kept per realm.

#include "realms.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "change.hpp"
#include "crypto.hpp"
#include "store_records.hpp"
#include "test_helpers.hpp"
#include "throttle.hpp"

using oauth2::AddRealm;
using oauth2::Client;
using oauth2::Db;
using oauth2::Store;
using oauth2::Token;
using oauth2::TokenType;
using oauth2::Txn;
using oauth2::User;

namespace {

TEST(RealmName, LettersDigitsDotDashUnderscoreUpTo64) {
  for (const char* ok : {"default", "shop1", "a", "Shop.example-com_2"}) {
    EXPECT_TRUE(oauth2::valid_realm(ok)) << ok;
  }
  EXPECT_TRUE(oauth2::valid_realm(std::string(64, 'r')));
  EXPECT_FALSE(oauth2::valid_realm(std::string(65, 'r')));
  for (const char* bad : {"", "bad name", "a/b", "a|b",
                          "a\x1f"
                          "b",
                          "caf\xc3\xa9", "\"q\"", "a:b"}) {
    EXPECT_FALSE(oauth2::valid_realm(bad)) << bad;
  }
}

TEST(CounterKey, EachRealmCountsOnItsOwn) {
  EXPECT_NE(oauth2::counter_key("shop1", "a:192.0.2.1"),
            oauth2::counter_key("shop2", "a:192.0.2.1"));
  EXPECT_EQ(oauth2::counter_key("shop1", "a:192.0.2.1"), std::string("shop1\x1f"
                                                                     "a:192.0.2.1"));
  // a realm that is another's prefix plus the key's start cannot collide:
  // no realm name holds the separator
  EXPECT_NE(oauth2::counter_key("shop",
                                "1\x1f"
                                "a:x"),
            oauth2::counter_key("shop1", "a:x"));
}

TEST(CounterKey, TooLongForTheZoneIsHashedPerRealm) {
  const std::string long_key = "c:" + std::string(300, 'x');
  std::string a = oauth2::counter_key("shop1", long_key);
  std::string b = oauth2::counter_key("shop2", long_key);
  EXPECT_LE(a.size(), 255u);
  EXPECT_NE(a, b);
  EXPECT_EQ(a, oauth2::counter_key("shop1", long_key)) << "the same key, the same counter";
  EXPECT_NE(a, oauth2::counter_key("shop1", long_key + "y"));
}

// The shim's rate limits put "R<window>/<limit>:" (up to 32 bytes) before
// a key in a zone whose keys end at 255 bytes, and refuse a longer one:
// every key fits in what is left, and one that fits is kept as it is.
TEST(CounterKey, EveryKeyFitsTheRateLimitsRoom) {
  const std::string realm(64, 'r');  // the longest realm
  for (size_t n = 0; n <= 300; n++) {
    const std::string key(n, 'k');
    EXPECT_LE(oauth2::counter_key(realm, key).size(), 255u - 32) << n;
    EXPECT_LE(oauth2::counter_key("default", key).size(), 255u - 32) << n;
  }
  const std::string fits(255 - 32 - 8, 'k');  // "default\x1f" and the key
  EXPECT_EQ(oauth2::counter_key("default", fits), "default\x1f" + fits);
  EXPECT_NE(oauth2::counter_key("default", fits + "k"), "default\x1f" + fits + "k");
}

class RealmsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<oauth2_test::TempDir>();
    store_ = std::make_unique<Store>(dir_->path() + "/store", size_t(64) << 20);
  }
  void TearDown() override {
    store_.reset();
    dir_.reset();
  }

  std::vector<std::string> realms() {
    Txn txn = store_->read();
    return oauth2::list_realms(txn);
  }

  // a client, a user and a token of each kind the user holds, in realm
  void fill(const std::string& realm, int tokens) {
    store_->change([&](Txn& txn) {
      Client c;
      c.realm = realm;
      c.client_id = "app";
      c.name = "app of " + realm;
      c.secret_hash = oauth2::hash_secret("s3cret-" + realm);
      c.grant_types = {"password"};
      ASSERT_TRUE(txn.put_client(c, true));
      User u;
      u.realm = realm;
      u.username = "alice";
      u.email = "alice@" + realm + ".test";
      ASSERT_EQ(txn.put_user(u, true), oauth2::PutUser::kOk);
      for (int i = 0; i < tokens; i++) {
        Token t;
        t.type = TokenType::kAccess;
        t.issued_at = 1000;
        t.expires_at = 999999;
        t.client_id = "app";
        t.user = std::to_string(u.id);
        ASSERT_TRUE(txn.put_token(realm, oauth2::token_id(oauth2::new_token()), t));
      }
      txn.commit();
    });
  }

  // every record of realm, in every database but meta
  size_t records_of(const std::string& realm) {
    const std::string prefix = oauth2::records::realm_prefix(realm);
    size_t n = 0;
    Txn txn = store_->read();
    for (size_t i = 1; i < oauth2::kDbCount; i++) {
      txn.scan_after(static_cast<Db>(i), prefix, "", [&](std::string_view, std::string_view) {
        n++;
        return true;
      });
    }
    return n;
  }

  std::unique_ptr<oauth2_test::TempDir> dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(RealmsTest, DefaultAlwaysExistsOthersAreRegistered) {
  EXPECT_EQ(realms(), std::vector<std::string>{"default"});
  EXPECT_EQ(oauth2::add_realm(*store_, "shop2", 100), AddRealm::kAdded);
  EXPECT_EQ(oauth2::add_realm(*store_, "shop1", 101), AddRealm::kAdded);
  EXPECT_EQ(oauth2::add_realm(*store_, "shop1", 102), AddRealm::kExists) << "an existing realm";
  EXPECT_EQ(oauth2::add_realm(*store_, "default", 103), AddRealm::kExists);
  EXPECT_THROW(oauth2::add_realm(*store_, "bad name", 104), std::invalid_argument);
  EXPECT_EQ(realms(), (std::vector<std::string>{"default", "shop1", "shop2"}));
  {
    Txn txn = store_->read();
    EXPECT_TRUE(oauth2::realm_known(txn, "default"));
    EXPECT_TRUE(oauth2::realm_known(txn, "shop1"));
    EXPECT_FALSE(oauth2::realm_known(txn, "shop3"));
    EXPECT_FALSE(oauth2::realm_known(txn, "bad name"));
    EXPECT_EQ(txn.get_meta("realm:shop1"), "101");
  }
  EXPECT_TRUE(oauth2::begin_realm_delete(*store_, "shop2"));
  EXPECT_TRUE(oauth2::begin_realm_delete(*store_, "shop2")) << "begun again: to finish it";
  EXPECT_FALSE(oauth2::begin_realm_delete(*store_, "default"));
  EXPECT_FALSE(oauth2::begin_realm_delete(*store_, "shop3")) << "neither registered nor held";
  EXPECT_EQ(realms(), (std::vector<std::string>{"default", "shop1"}));
  oauth2::finish_realm_delete(*store_, "shop2");
  EXPECT_FALSE(oauth2::begin_realm_delete(*store_, "shop2")) << "its delete finished";
}

TEST_F(RealmsTest, DeleteTakesOneRealmInBoundedBatchesAndLeavesTheOthers) {
  fill("default", 3);
  fill("shop1", 20);
  fill("shop10", 4);  // a realm whose name starts with shop1's
  fill("shop2", 5);
  const size_t before_default = records_of("default");
  const size_t before_shop10 = records_of("shop10");
  const size_t before_shop2 = records_of("shop2");
  const size_t doomed = records_of("shop1");
  ASSERT_GT(doomed, 20u) << "a client, a user, its indexes and the tokens with theirs";

  size_t total = 0, batches = 0, n = 0;
  while ((n = oauth2::delete_realm_records(*store_, "shop1", 7)) != 0) {
    EXPECT_LE(n, 7u) << "one batch never holds more than asked";
    total += n;
    batches++;
  }
  EXPECT_EQ(total, doomed);
  {
    Txn txn = store_->read();
    EXPECT_TRUE(txn.get(Db::kMeta, oauth2::records::user_seq_key("shop1")))
        << "the user id sequence outlives the realm";
    EXPECT_FALSE(oauth2::realm_has_records(txn, "shop1"));
    EXPECT_TRUE(oauth2::realm_has_records(txn, "shop10"));
  }
  EXPECT_GE(batches, doomed / 7);
  EXPECT_EQ(records_of("shop1"), 0u);
  EXPECT_EQ(records_of("default"), before_default);
  EXPECT_EQ(records_of("shop10"), before_shop10);
  EXPECT_EQ(records_of("shop2"), before_shop2);

  Txn txn = store_->read();
  EXPECT_FALSE(txn.get_client("shop1", "app"));
  EXPECT_FALSE(txn.get_user_by_username("shop1", "alice"));
  for (const char* other : {"default", "shop10", "shop2"}) {
    auto c = txn.get_client(other, "app");
    ASSERT_TRUE(c) << other;
    EXPECT_TRUE(oauth2::verify_secret("s3cret-" + std::string(other), c->secret_hash)) << other;
    EXPECT_TRUE(txn.get_user_by_username(other, "alice")) << other;
  }
}

// A realm delete that stopped part way (interrupted, a store error; or
// nginx still serving the realm wrote records after it) leaves records
// under a name that is no longer registered.  Adding the realm again
// must not hand them to the new site: its users (staff among them),
// applications and live tokens would be the new tenant's.  It is
// refused until the records are gone; and the user id sequence outlives
// the realm, so that the new site's first user is never given an old
// user's id (OpenID Connect's `sub` is never reassigned).
TEST_F(RealmsTest, ARealmDeletedPartWayIsNotAddedAgainAndIdsAreNeverReused) {
  ASSERT_EQ(oauth2::add_realm(*store_, "shop1", 100), AddRealm::kAdded);
  fill("shop1", 30);
  uint64_t old_id = 0;
  {
    Txn txn = store_->read();
    auto alice = txn.get_user_by_username("shop1", "alice");
    ASSERT_TRUE(alice);
    old_id = alice->id;
  }
  ASSERT_TRUE(oauth2::begin_realm_delete(*store_, "shop1"));
  ASSERT_EQ(oauth2::delete_realm_records(*store_, "shop1", 10), 10u) << "then it stops";
  {
    Txn txn = store_->read();
    EXPECT_TRUE(oauth2::realm_has_records(txn, "shop1"));
  }
  EXPECT_EQ(oauth2::add_realm(*store_, "shop1", 101), AddRealm::kDeleting);
  EXPECT_EQ(oauth2::add_realm(*store_, "shop1", 101, true), AddRealm::kDeleting)
      << "a delete begun is never adopted";
  EXPECT_EQ(realms(), std::vector<std::string>{"default"}) << "not registered";

  while (oauth2::delete_realm_records(*store_, "shop1", 10) != 0) {
  }
  EXPECT_EQ(oauth2::add_realm(*store_, "shop1", 102), AddRealm::kDeleting)
      << "all its records gone, the delete is not finished until it says so";
  oauth2::finish_realm_delete(*store_, "shop1");
  EXPECT_EQ(oauth2::add_realm(*store_, "shop1", 102), AddRealm::kAdded);
  User u;
  u.realm = "shop1";
  u.username = "newcomer";
  store_->change([&](Txn& txn) {
    ASSERT_EQ(txn.put_user(u, true), oauth2::PutUser::kOk);
    txn.commit();
  });
  EXPECT_GT(u.id, old_id) << "a new id, never the old alice's";
  Txn txn = store_->read();
  EXPECT_FALSE(txn.get_user_by_username("shop1", "alice"));
  EXPECT_FALSE(txn.get_client("shop1", "app"));
}

// nginx serves any oauth2_realm it is given, registered or not: a site
// whose realm was never added has records (registrations, sign-ins) and
// no delete begun.  Adding it is refused, so that an operator never hands
// records they did not know of to a site by accident, unless they adopt
// them; records of a delete stopped part way are never adopted.
TEST_F(RealmsTest, ARealmNginxServedBeforeItWasAddedIsAdoptedOnlyWhenAsked) {
  fill("shop1", 3);
  EXPECT_EQ(oauth2::add_realm(*store_, "shop1", 100), AddRealm::kHasRecords);
  EXPECT_EQ(realms(), std::vector<std::string>{"default"}) << "not registered";
  EXPECT_EQ(oauth2::add_realm(*store_, "shop1", 101, true), AddRealm::kAdded);
  EXPECT_EQ(realms(), (std::vector<std::string>{"default", "shop1"}));
  Txn txn = store_->read();
  EXPECT_TRUE(txn.get_user_by_username("shop1", "alice")) << "its records kept";
  EXPECT_TRUE(txn.get_client("shop1", "app"));
  EXPECT_EQ(txn.get_meta("realm:shop1"), "101");
}

}  // namespace
