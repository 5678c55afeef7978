// Unit tests of the background expiry (src/core/expiry.hpp): the sweep
// removes only what has expired, in bounded rounds that resume where the
// last stopped, and one process at a time holds the lease.

#include "expiry.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "codec.hpp"
#include "crypto.hpp"
#include "store.hpp"
#include "test_helpers.hpp"

using oauth2::ExpiryRound;
using oauth2::Store;
using oauth2::Token;
using oauth2::TokenId;
using oauth2::TokenType;
using oauth2::Txn;

namespace {

constexpr int64_t kNow = 1700000000;

class ExpiryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<oauth2_test::TempDir>();
    store_ = std::make_unique<Store>(dir_->path() + "/store", size_t(64) << 20);
  }

  // n tokens of client "c" expiring at `expires`
  std::vector<TokenId> add(int n, int64_t expires, const std::string& realm = "default") {
    std::vector<TokenId> out;
    store_->change([&](Txn& txn) {
      out.clear();
      for (int i = 0; i < n; i++) {
        Token t;
        t.type = TokenType::kAccess;
        t.issued_at = kNow - 100;
        t.expires_at = expires;
        t.client_id = "c";
        TokenId d = oauth2::token_id(realm + std::to_string(expires) + "/" + std::to_string(i));
        EXPECT_TRUE(txn.put_token(realm, d, t));
        out.push_back(d);
      }
      txn.commit();
    });
    return out;
  }
  // a token of client "c" expiring at `expires` whose id sorts as one
  // new_token() made at ms
  TokenId add_made_at(int64_t ms, int64_t expires, const std::string& realm = "default") {
    unsigned char buf[32];
    for (int i = 0; i < 6; i++) buf[i] = static_cast<unsigned char>(ms >> (8 * (5 - i)));
    oauth2::random_bytes(buf + 6, sizeof(buf) - 6);
    TokenId d = oauth2::token_id(oauth2::base64url_encode(buf, sizeof(buf)));
    store_->change([&](Txn& txn) {
      Token t;
      t.type = TokenType::kAccess;
      t.issued_at = ms / 1000;
      t.expires_at = expires;
      t.client_id = "c";
      EXPECT_TRUE(txn.put_token(realm, d, t));
      txn.commit();
    });
    return d;
  }
  bool present(const TokenId& d, const std::string& realm = "default") {
    Txn txn = store_->read();
    return txn.get_token(realm, d).has_value();
  }

  std::unique_ptr<oauth2_test::TempDir> dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(ExpiryTest, RemovesOnlyWhatHasExpiredInBoundedRounds) {
  auto dead = add(25, kNow - 1);
  auto live = add(10, kNow + 3600);
  size_t removed = 0;
  int rounds = 0;
  for (;;) {
    ExpiryRound r = oauth2::expiry_round(*store_, "a", kNow, 30, 10);
    ASSERT_TRUE(r.held);
    EXPECT_LE(r.removed, 10u);
    removed += r.removed;
    rounds++;
    if (!r.more) break;
    ASSERT_LT(rounds, 100);
  }
  EXPECT_EQ(removed, 25u);
  EXPECT_GE(rounds, 3);
  for (const auto& d : dead) EXPECT_FALSE(present(d));
  for (const auto& d : live) EXPECT_TRUE(present(d));
  // the client's index lost the dead entries too
  Txn txn = store_->read();
  EXPECT_EQ(txn.client_tokens_of_type("default", "c", TokenType::kAccess).size(), 10u);
}

// R45, R82: at exp a record has expired and goes; a second before, it stays
TEST_F(ExpiryTest, ARecordGoesAtItsExpiryToTheSecondR45) {
  auto at = add(3, kNow);
  auto after = add(3, kNow + 1);
  ExpiryRound r = oauth2::expiry_round(*store_, "a", kNow, 30, 100);
  ASSERT_TRUE(r.held);
  EXPECT_FALSE(r.more);
  EXPECT_EQ(r.removed, 3u);
  for (const auto& d : at) EXPECT_FALSE(present(d));
  for (const auto& d : after) EXPECT_TRUE(present(d));
}

TEST_F(ExpiryTest, RoundsResumeWhereTheLastStopped) {
  add(5, kNow - 1);
  add(200, kNow + 3600);  // live records to walk past
  // a round looks at batch * 10 records at most: with batch 2, 20
  ExpiryRound first = oauth2::expiry_round(*store_, "a", kNow, 30, 2);
  EXPECT_LE(first.scanned, 20u);
  EXPECT_TRUE(first.more);
  size_t removed = first.removed;
  for (int i = 0; i < 50 && removed < 5; i++) {
    removed += oauth2::expiry_round(*store_, "a", kNow, 30, 2).removed;
  }
  EXPECT_EQ(removed, 5u);
}

TEST_F(ExpiryTest, OneHolderAtATime) {
  add(3, kNow - 1);
  EXPECT_TRUE(oauth2::expiry_round(*store_, "worker-a", kNow, 30, 100).held);
  ExpiryRound b = oauth2::expiry_round(*store_, "worker-b", kNow + 10, 30, 100);
  EXPECT_FALSE(b.held) << "the lease of worker-a runs until kNow + 30";
  EXPECT_EQ(b.removed, 0u);
  // worker-a renews it on each round
  EXPECT_TRUE(oauth2::expiry_round(*store_, "worker-a", kNow + 20, 30, 100).held);
  EXPECT_FALSE(oauth2::expiry_round(*store_, "worker-b", kNow + 40, 30, 100).held);
  // a lapsed lease is taken over
  EXPECT_TRUE(oauth2::expiry_round(*store_, "worker-b", kNow + 51, 30, 100).held);
  EXPECT_FALSE(oauth2::expiry_round(*store_, "worker-a", kNow + 52, 30, 100).held);
  // a released one at once
  oauth2::expiry_release(*store_, "worker-b");
  EXPECT_TRUE(oauth2::expiry_round(*store_, "worker-a", kNow + 53, 30, 100).held);
  // releasing another's lease does nothing
  oauth2::expiry_release(*store_, "worker-b");
  EXPECT_FALSE(oauth2::expiry_round(*store_, "worker-b", kNow + 54, 30, 100).held);
}

// R82: a lease that ends further off than a lease runs (dated by a clock
// that was ahead, its holder since killed; or written by hand) does not
// stop expiry until that date: it is taken over
TEST_F(ExpiryTest, ALeaseDatedPastItsLengthIsTakenOver) {
  add(3, kNow - 1);
  store_->change([&](Txn& txn) {
    txn.put_meta(oauth2::kExpiryLeaseMeta, "worker-gone " + std::to_string(kNow + 31));
    txn.commit();
  });
  ExpiryRound r = oauth2::expiry_round(*store_, "worker-b", kNow, 30, 100);
  EXPECT_TRUE(r.held) << "a lease of 30 s cannot run until kNow + 31";
  EXPECT_EQ(r.removed, 3u);
  // one that ends within its length is another's still
  store_->change([&](Txn& txn) {
    txn.put_meta(oauth2::kExpiryLeaseMeta, "worker-a " + std::to_string(kNow + 30));
    txn.commit();
  });
  EXPECT_FALSE(oauth2::expiry_round(*store_, "worker-b", kNow, 30, 100).held);
}

// R82: records made faster than a pass scans them (ten records a batch,
// each round) do not keep the pass from ever ending: those made since it
// began are left to the next, and it reaches what sorts after them (the
// realms that follow, hashed ids).  Before, each round's cursor followed
// the newest records and never got past them.
TEST_F(ExpiryTest, APassEndsWhileRecordsAreMadeFasterThanItScansR82) {
  const int64_t ms = kNow * 1000;
  std::vector<TokenId> old_dead, live;
  for (int i = 0; i < 5; i++) old_dead.push_back(add_made_at(ms - 5000 - i, kNow - 1));
  TokenId victim = add_made_at(ms - 100000, kNow - 1, "shop-eu");  // sorts after "default"
  for (int round = 0; round < 100; round++) {
    // a round a second, 25 live records made before each, the scan
    // looks at 20 (batch 2)
    for (int i = 0; i < 25; i++) live.push_back(add_made_at(ms + round * 1000 + i, kNow + 3600));
    oauth2::expiry_round(*store_, "a", kNow + round, 30, 2);
  }
  for (const auto& d : old_dead) EXPECT_FALSE(present(d));
  EXPECT_FALSE(present(victim, "shop-eu")) << "the pass never reached the realm after";
  for (const auto& d : live) EXPECT_TRUE(present(d));
  // the next pass takes what the last passed over: a record made after
  // the first pass began, expired since
  TokenId later = add_made_at(ms + 1, kNow + 5);
  size_t removed = 0;
  for (int i = 0; i < 400 && present(later); i++) {
    removed += oauth2::expiry_round(*store_, "a", kNow + 200, 30, 2).removed;
  }
  EXPECT_FALSE(present(later));
  EXPECT_EQ(removed, 1u);
}

TEST_F(ExpiryTest, SweepOfOneRealmLeavesTheOthers) {
  auto here = add(4, kNow - 1, "default");
  auto there = add(4, kNow - 1, "other");
  oauth2::SweepRound r = store_->change([&](Txn& txn) {
    auto round = oauth2::sweep_expired(txn, "default", "", kNow, 100, 1000, kNow);
    txn.commit();
    return round;
  });
  EXPECT_EQ(r.removed, 4u);
  EXPECT_TRUE(r.finished);
  for (const auto& d : here) EXPECT_FALSE(present(d, "default"));
  for (const auto& d : there) EXPECT_TRUE(present(d, "other"));
}

}  // namespace
