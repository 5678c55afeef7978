// Unit tests of src/core/store: the LMDB store and its transactions.  Every
// test gets a fresh environment in its own temporary directory.
// Requirement numbers refer to docs/security.md.

#include "store.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <ctime>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <tuple>
#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "codec.hpp"
#include "crypto.hpp"
#include "store_records.hpp"
#include "expiry.hpp"
#include "test_helpers.hpp"

using oauth2::Client;
using oauth2::Store;
using oauth2::SweepRound;
using oauth2::Token;
using oauth2::TokenId;
using oauth2::TokenType;
using oauth2::Txn;
using oauth2_test::bytes;

namespace {

constexpr size_t kMapSize = size_t(64) << 20;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<oauth2_test::TempDir>();
    path_ = dir_->path() + "/store";
    store_ = std::make_unique<Store>(path_, kMapSize);
  }

  void TearDown() override {
    store_.reset();  // close the environment before removing its files
    dir_.reset();
  }

  // closes and reopens the environment (never two at once: LMDB forbids
  // opening one environment twice in a process)
  void reopen() {
    store_.reset();
    store_ = std::make_unique<Store>(path_, kMapSize);
  }

  static Client make_client(std::string id, std::string realm = "default") {
    Client c;
    c.realm = std::move(realm);
    c.client_id = std::move(id);
    c.name = "name of " + c.client_id;
    c.secret_hash = oauth2::hash_secret("s3cret");
    c.grant_types = {"client_credentials"};
    return c;
  }

  static Token make_token(std::string client_id, int64_t now = 1000) {
    Token t;
    t.type = TokenType::kAccess;
    t.issued_at = now;
    t.expires_at = now + 3600;
    t.client_id = std::move(client_id);
    t.scope = "read write";
    return t;
  }

  bool put_client(const Client& c, bool create = true) {
    return store_->change([&](Txn& txn) {
      bool ok = txn.put_client(c, create);
      txn.commit();
      return ok;
    });
  }

  bool put_token(std::string_view realm, const TokenId& h, const Token& t) {
    return store_->change([&](Txn& txn) {
      bool ok = txn.put_token(realm, h, t);
      txn.commit();
      return ok;
    });
  }

  std::optional<Client> get_client(std::string_view realm, std::string_view id) {
    auto txn = store_->read();
    return txn.get_client(realm, id);
  }

  std::optional<Token> get_token(std::string_view realm, const TokenId& h) {
    auto txn = store_->read();
    return txn.get_token(realm, h);
  }

  std::unique_ptr<oauth2_test::TempDir> dir_;
  std::string path_;
  std::unique_ptr<Store> store_;
};

// ------------------------------------------------------------- clients

TEST_F(StoreTest, PutGetListDeleteClients) {
  Client a = make_client("alpha");
  a.confidential = true;
  a.grant_types = {"client_credentials", "password"};
  a.scope = "read write";
  a.redirect_uris = {"https://a.example/cb", "https://a.example/cb2"};
  a.auth_method = "client_secret_basic";
  a.access_token_ttl = 600;
  a.created_at = 1700000000;
  a.disabled = true;
  Client b = make_client("beta");
  b.confidential = false;
  b.secret_hash.clear();

  ASSERT_TRUE(put_client(a));
  ASSERT_TRUE(put_client(b));

  auto got = get_client("default", "alpha");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->realm, "default");
  EXPECT_EQ(got->client_id, "alpha");
  EXPECT_EQ(got->name, a.name);
  EXPECT_EQ(got->secret_hash, a.secret_hash);
  EXPECT_TRUE(got->confidential);
  EXPECT_EQ(got->grant_types, a.grant_types);
  EXPECT_EQ(got->scope, "read write");
  EXPECT_EQ(got->redirect_uris, a.redirect_uris);
  EXPECT_EQ(got->auth_method, "client_secret_basic");
  EXPECT_EQ(got->access_token_ttl, 600);
  EXPECT_EQ(got->created_at, 1700000000);
  EXPECT_TRUE(got->disabled);
  EXPECT_TRUE(got->allows_grant("password"));
  EXPECT_FALSE(got->allows_grant("authorization_code"));
  EXPECT_TRUE(oauth2::verify_secret("s3cret", got->secret_hash));

  auto pub = get_client("default", "beta");
  ASSERT_TRUE(pub.has_value());
  EXPECT_FALSE(pub->confidential);
  EXPECT_TRUE(pub->secret_hash.empty());
  EXPECT_FALSE(pub->disabled);

  {
    auto txn = store_->read();
    auto all = txn.list_clients("default");
    ASSERT_EQ(all.size(), 2u);
    std::vector<std::string> ids = {all[0].client_id, all[1].client_id};
    std::sort(ids.begin(), ids.end());
    EXPECT_EQ(ids, (std::vector<std::string>{"alpha", "beta"}));
  }

  store_->change([&](Txn& txn) {
    EXPECT_TRUE(txn.delete_client("default", "alpha"));
    EXPECT_FALSE(txn.delete_client("default", "alpha"));
    EXPECT_FALSE(txn.delete_client("default", "nobody"));
    txn.commit();
  });
  EXPECT_FALSE(get_client("default", "alpha").has_value());
  EXPECT_TRUE(get_client("default", "beta").has_value());
  auto txn = store_->read();
  EXPECT_EQ(txn.list_clients("default").size(), 1u);
}

TEST_F(StoreTest, UnknownClientIsNotFound) {
  EXPECT_FALSE(get_client("default", "nobody").has_value());
  auto txn = store_->read();
  EXPECT_TRUE(txn.list_clients("default").empty());
}

TEST_F(StoreTest, CreateOnExistingIdReturnsFalse) {
  Client a = make_client("alpha");
  ASSERT_TRUE(put_client(a, true));
  Client again = make_client("alpha");
  again.name = "impostor";
  EXPECT_FALSE(put_client(again, true));
  EXPECT_EQ(get_client("default", "alpha")->name, a.name);
}

TEST_F(StoreTest, UpdateNeedsAnExistingClient) {
  EXPECT_FALSE(put_client(make_client("ghost"), false));
  EXPECT_FALSE(get_client("default", "ghost").has_value());

  Client a = make_client("alpha");
  ASSERT_TRUE(put_client(a, true));
  a.name = "renamed";
  a.disabled = true;
  EXPECT_TRUE(put_client(a, false));
  auto got = get_client("default", "alpha");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->name, "renamed");
  EXPECT_TRUE(got->disabled);
}

// get_client keeps the clients it decoded, each with its record: a
// changed, deleted or re-created record must be seen at the next lookup,
// and a table fuller than it holds must still give every client back.
TEST_F(StoreTest, DecodedClientsFollowTheirRecords) {
  Client a = make_client("alpha");
  a.scope = "read";
  ASSERT_TRUE(put_client(a, true));
  ASSERT_EQ(get_client("default", "alpha")->scope, "read");
  ASSERT_EQ(get_client("default", "alpha")->scope, "read");  // from the table
  a.scope = "read write";
  a.secret_hash = oauth2::hash_secret("rotated");
  ASSERT_TRUE(put_client(a, false));
  auto got = get_client("default", "alpha");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->scope, "read write");
  EXPECT_TRUE(oauth2::verify_secret("rotated", got->secret_hash));
  EXPECT_FALSE(oauth2::verify_secret("s3cret", got->secret_hash));
  a.disabled = true;
  ASSERT_TRUE(put_client(a, false));
  EXPECT_TRUE(get_client("default", "alpha")->disabled);
  store_->change([&](Txn& txn) {
    EXPECT_TRUE(txn.delete_client("default", "alpha"));
    txn.commit();
  });
  EXPECT_FALSE(get_client("default", "alpha").has_value());
  Client again = make_client("alpha");
  again.name = "second life";
  ASSERT_TRUE(put_client(again, true));
  got = get_client("default", "alpha");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->name, "second life");
  EXPECT_FALSE(got->disabled);

  // the same id in another realm is another client
  Client other = make_client("alpha");
  other.realm = "other";
  other.name = "the other realm's";
  ASSERT_TRUE(put_client(other, true));
  EXPECT_EQ(get_client("other", "alpha")->name, "the other realm's");
  EXPECT_EQ(get_client("default", "alpha")->name, "second life");

  // more clients than the table holds, looked up twice over
  for (int i = 0; i < 150; i++) {
    Client c = make_client("many" + std::to_string(i));
    c.name = "client " + std::to_string(i);
    ASSERT_TRUE(put_client(c, true));
  }
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < 150; i++) {
      auto c = get_client("default", "many" + std::to_string(i));
      ASSERT_TRUE(c.has_value());
      EXPECT_EQ(c->name, "client " + std::to_string(i));
    }
  }
}

// The decoded clients are shared by every thread: threads looking up the
// same clients while another rotates their secrets each get a client whose
// record is one that was committed, and after the last rotation every
// thread sees it.  Under ASan/TSan builds this is also the data-race check.
TEST_F(StoreTest, DecodedClientsSharedByThreads) {
  constexpr int kClients = 40;  // more than a shard holds, so shards empty
  for (int i = 0; i < kClients; i++) {
    Client c = make_client("shared" + std::to_string(i));
    c.scope = "v0";
    ASSERT_TRUE(put_client(c, true));
  }
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; t++) {
    readers.emplace_back([&, t] {
      for (int n = 0; !stop.load(); n++) {
        auto txn = store_->read();
        auto c = txn.get_client("default", "shared" + std::to_string((n + t) % kClients));
        if (!c || c->scope.size() < 2 || c->scope[0] != 'v') bad++;
      }
    });
  }
  for (int round = 1; round <= 20; round++) {
    for (int i = 0; i < kClients; i += 7) {
      Client c = make_client("shared" + std::to_string(i));
      c.scope = "v" + std::to_string(round);
      ASSERT_TRUE(put_client(c, false));
    }
  }
  stop = true;
  for (auto& r : readers) r.join();
  EXPECT_EQ(bad.load(), 0);
  std::vector<std::thread> after;
  std::atomic<int> stale{0};
  for (int t = 0; t < 4; t++) {
    after.emplace_back([&] {
      for (int i = 0; i < kClients; i++) {
        auto c = get_client("default", "shared" + std::to_string(i));
        if (!c || c->scope != (i % 7 == 0 ? "v20" : "v0")) stale++;
      }
    });
  }
  for (auto& a : after) a.join();
  EXPECT_EQ(stale.load(), 0);
}

TEST_F(StoreTest, UncommittedWriteIsDiscarded) {
  ASSERT_NO_FATAL_FAILURE(store_->change([&](Txn& txn) {
    ASSERT_TRUE(txn.put_client(make_client("alpha"), true));
    // decide ends without commit(): its writes are dropped
  }));
  EXPECT_FALSE(get_client("default", "alpha").has_value());
}

TEST_F(StoreTest, PooledReadSeesLaterCommits) {
  {
    auto txn = store_->read();
    EXPECT_FALSE(txn.get_client("default", "alpha").has_value());
  }
  ASSERT_TRUE(put_client(make_client("alpha")));
  {
    auto txn = store_->read();  // renewed, not a stale snapshot
    EXPECT_TRUE(txn.get_client("default", "alpha").has_value());
  }
  {
    // two reads at once: the second is a fresh transaction
    auto t1 = store_->read();
    auto t2 = store_->read();
    EXPECT_TRUE(t1.get_client("default", "alpha").has_value());
    EXPECT_TRUE(t2.get_client("default", "alpha").has_value());
  }
  auto txn = store_->read();
  EXPECT_TRUE(txn.get_client("default", "alpha").has_value());
}

// An nginx worker reads on its event loop while its thread pool runs the
// pending halves of token requests, which read too: reads share the
// store's pool of read transactions from any number of threads.
TEST_F(StoreTest, ReadsFromManyThreadsAtOnce) {
  ASSERT_TRUE(put_client(make_client("alpha")));
  std::vector<std::thread> readers;
  std::atomic<int> misses{0};
  for (int t = 0; t < 8; t++) {
    readers.emplace_back([&] {
      for (int i = 0; i < 2000; i++) {
        auto txn = store_->read();
        if (!txn.get_client("default", "alpha")) misses++;
      }
    });
  }
  for (int i = 0; i < 50; i++) {
    ASSERT_TRUE(put_client(make_client("beta" + std::to_string(i))));
  }
  for (auto& r : readers) r.join();
  EXPECT_EQ(misses.load(), 0);
  EXPECT_TRUE(get_client("default", "beta49").has_value());
}

TEST_F(StoreTest, MovedTxnIsUsable) {
  ASSERT_TRUE(put_client(make_client("alpha")));
  auto a = store_->read();
  auto b = std::move(a);
  EXPECT_TRUE(b.get_client("default", "alpha").has_value());
  EXPECT_FALSE(b.get_client("default", "beta").has_value());
}

TEST_F(StoreTest, ReaderCheckFindsNoDeadReaders) {
  EXPECT_EQ(store_->reader_check(), 0);
}

// ------------------------------------------------------------- changes

TEST_F(StoreTest, ChangeWithoutCommitWritesNothing) {
  TokenId h = oauth2::token_id("never committed");
  int runs = 0;
  bool put = store_->change([&](Txn& txn) {
    runs++;
    bool ok = txn.put_client(make_client("alpha"), true);
    ok = txn.put_token("default", h, make_token("alpha")) && ok;
    txn.put_meta("test_meta", "value");
    return ok;  // no commit()
  });
  EXPECT_TRUE(put);
  EXPECT_EQ(runs, 1) << "nothing to apply: decide runs once";
  EXPECT_FALSE(get_client("default", "alpha").has_value());
  EXPECT_FALSE(get_token("default", h).has_value());
  auto txn = store_->read();
  EXPECT_FALSE(txn.get_meta("test_meta").has_value());
  EXPECT_TRUE(txn.list_clients("default").empty());
}

TEST_F(StoreTest, ChangeReadsItsOwnWrites) {
  TokenId h = oauth2::token_id("own write");
  store_->change([&](Txn& txn) {
    EXPECT_FALSE(txn.get_token("default", h).has_value());
    EXPECT_TRUE(txn.put_token("default", h, make_token("alpha")));
    auto got = txn.get_token("default", h);
    EXPECT_TRUE(got.has_value());
    if (got) {
      EXPECT_EQ(got->client_id, "alpha");
    }
    EXPECT_FALSE(txn.put_token("default", h, make_token("mallory")))
        << "its own write is there: never overwritten";
    EXPECT_TRUE(txn.delete_token("default", h));
    EXPECT_FALSE(txn.get_token("default", h).has_value());
    EXPECT_FALSE(txn.delete_token("default", h));
    txn.commit();
  });
  EXPECT_FALSE(get_token("default", h).has_value());

  // and a record committed earlier, deleted then read in one change
  ASSERT_TRUE(put_token("default", h, make_token("alpha")));
  store_->change([&](Txn& txn) {
    EXPECT_TRUE(txn.get_token("default", h).has_value());
    EXPECT_TRUE(txn.delete_token("default", h));
    EXPECT_FALSE(txn.get_token("default", h).has_value());
    txn.commit();
  });
  EXPECT_FALSE(get_token("default", h).has_value());
}

TEST_F(StoreTest, ScanMergesOwnWrites) {
  ASSERT_TRUE(put_client(make_client("a")));
  ASSERT_TRUE(put_client(make_client("ab")));
  TokenId h1 = oauth2::token_id("one"), h2 = oauth2::token_id("two");
  TokenId h3 = oauth2::token_id("three"), hab = oauth2::token_id("of ab");
  store_->change([&](Txn& txn) {
    EXPECT_TRUE(txn.put_token("default", h1, make_token("a")));
    EXPECT_TRUE(txn.put_token("default", h2, make_token("a")));
    EXPECT_TRUE(txn.put_token("default", hab, make_token("ab")));
    txn.commit();
  });
  std::set<TokenId> listed = store_->change([&](Txn& txn) {
    EXPECT_TRUE(txn.put_token("default", h3, make_token("a")));
    EXPECT_TRUE(txn.delete_token("default", h1));
    std::set<TokenId> hashes;
    for (const auto& [hash, token] :
         txn.client_tokens_of_type("default", "a", TokenType::kAccess)) {
      EXPECT_EQ(token.client_id, "a");
      EXPECT_TRUE(hashes.insert(hash).second) << "listed twice";
    }
    txn.commit();
    return hashes;
  });
  EXPECT_EQ(listed, (std::set<TokenId>{h2, h3}));
  // and once committed, a fresh snapshot lists the same
  auto txn = store_->read();
  std::set<TokenId> after;
  for (const auto& entry : txn.client_tokens_of_type("default", "a", TokenType::kAccess))
    after.insert(entry.first);
  EXPECT_EQ(after, (std::set<TokenId>{h2, h3}));
}

TEST_F(StoreTest, ReadOnlyTxnRefusesWrites) {
  {
    auto txn = store_->read();
    EXPECT_THROW(txn.commit(), std::logic_error);
    EXPECT_THROW(txn.put_meta("test_meta", "value"), std::logic_error);
    // still a usable snapshot
    EXPECT_FALSE(txn.get_meta("test_meta").has_value());
  }
  auto txn = store_->read();
  EXPECT_FALSE(txn.get_meta("test_meta").has_value());
}

// ---------------------------------------------------------------- tokens

TEST_F(StoreTest, PutTokenThenGetToken) {
  Token t = make_token("alpha");
  t.type = TokenType::kRefresh;
  t.issued_at = -5;
  t.expires_at = INT64_MAX;
  t.user = "alice";
  t.scope = "read";
  TokenId h = oauth2::token_id("the token");
  ASSERT_TRUE(put_token("default", h, t));

  auto got = get_token("default", h);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->type, TokenType::kRefresh);
  EXPECT_EQ(got->issued_at, -5);
  EXPECT_EQ(got->expires_at, INT64_MAX);
  EXPECT_EQ(got->client_id, "alpha");
  EXPECT_EQ(got->scope, "read");
  EXPECT_EQ(got->user, "alice");

  EXPECT_FALSE(get_token("default", oauth2::token_id("another")).has_value());
}

TEST_F(StoreTest, SameHashIsNeverOverwrittenR42) {
  TokenId h = oauth2::token_id("collision");
  Token first = make_token("alpha");
  Token second = make_token("mallory");
  second.scope = "admin";
  ASSERT_TRUE(put_token("default", h, first));
  EXPECT_FALSE(put_token("default", h, second));  // MDB_NOOVERWRITE
  auto got = get_token("default", h);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->client_id, "alpha");
  EXPECT_EQ(got->scope, "read write");
}

// A token new_token() just drew is put relying on its key's absence but
// not on its legacy key's, which only the token's value could fill: one
// compare in etcd a token fewer.  put_token, for ids that could meet (a
// device's user code), keeps both reads; and either refuses an id the
// snapshot or the change itself holds (R42).
TEST_F(StoreTest, AFreshTokenReliesOnlyOnItsOwnKeyR42) {
  auto tokens_read = [](const oauth2::Change& c) {
    size_t n = 0;
    for (const oauth2::Change::Read& r : c.reads) n += r.db == oauth2::Db::kTokens;
    return n;
  };
  const TokenId fresh = oauth2::token_id(oauth2::new_token());
  auto c = store_->prepare([&](Txn& txn) {
    EXPECT_TRUE(txn.put_new_token("default", fresh, make_token("alpha")));
    txn.commit();
  });
  ASSERT_TRUE(c.has_value());
  ASSERT_EQ(tokens_read(*c), 1u);
  for (const oauth2::Change::Read& r : c->reads) {
    if (r.db == oauth2::Db::kTokens) {
      EXPECT_EQ(r.key, oauth2::records::token_key("default", fresh));
      EXPECT_FALSE(r.seen.has_value());
    }
  }
  EXPECT_FALSE(c->writes.empty());
  c = store_->prepare([&](Txn& txn) {
    EXPECT_TRUE(txn.put_token("default", fresh, make_token("alpha")));
    txn.commit();
  });
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(tokens_read(*c), 2u);  // its key and its legacy key, both absent

  const TokenId h = oauth2::token_id("taken");
  ASSERT_TRUE(put_token("default", h, make_token("alpha")));
  store_->change([&](Txn& txn) {
    EXPECT_FALSE(txn.put_new_token("default", h, make_token("mallory")));
    const TokenId twice = oauth2::token_id("drawn twice in one change");
    EXPECT_TRUE(txn.put_new_token("default", twice, make_token("alpha")));
    EXPECT_FALSE(txn.put_new_token("default", twice, make_token("mallory")));
    txn.commit();
  });
  EXPECT_EQ(get_token("default", h)->client_id, "alpha");
  EXPECT_EQ(get_token("default", oauth2::token_id("drawn twice in one change"))->client_id,
            "alpha");
}

TEST_F(StoreTest, DeleteToken) {
  TokenId h = oauth2::token_id("t");
  ASSERT_TRUE(put_token("default", h, make_token("alpha")));
  store_->change([&](Txn& txn) {
    EXPECT_TRUE(txn.delete_token("default", h));
    EXPECT_FALSE(txn.delete_token("default", h));
    txn.commit();
  });
  EXPECT_FALSE(get_token("default", h).has_value());
}

TEST_F(StoreTest, DeleteClientRemovesOnlyItsTokensR70) {
  // "a" is a prefix of "ab": the index must not confuse them (R47)
  for (const char* id : {"a", "ab", "b"}) ASSERT_TRUE(put_client(make_client(id)));
  std::vector<TokenId> a_tokens, ab_tokens, b_tokens;
  for (int i = 0; i < 5; i++) {
    a_tokens.push_back(oauth2::token_id("a" + std::to_string(i)));
    ab_tokens.push_back(oauth2::token_id("ab" + std::to_string(i)));
    b_tokens.push_back(oauth2::token_id("b" + std::to_string(i)));
    ASSERT_TRUE(put_token("default", a_tokens.back(), make_token("a")));
    ASSERT_TRUE(put_token("default", ab_tokens.back(), make_token("ab")));
    ASSERT_TRUE(put_token("default", b_tokens.back(), make_token("b")));
  }
  ASSERT_NO_FATAL_FAILURE(store_->change([&](Txn& txn) {
    ASSERT_TRUE(txn.delete_client("default", "a"));
    txn.commit();
  }));
  for (const auto& h : a_tokens) EXPECT_FALSE(get_token("default", h).has_value());
  for (const auto& h : ab_tokens) EXPECT_TRUE(get_token("default", h).has_value());
  for (const auto& h : b_tokens) EXPECT_TRUE(get_token("default", h).has_value());
  EXPECT_TRUE(get_client("default", "ab").has_value());
  EXPECT_TRUE(get_client("default", "b").has_value());
}

TEST_F(StoreTest, DeleteClientAfterDeleteTokenIsClean) {
  ASSERT_TRUE(put_client(make_client("a")));
  TokenId h1 = oauth2::token_id("1"), h2 = oauth2::token_id("2");
  ASSERT_TRUE(put_token("default", h1, make_token("a")));
  ASSERT_TRUE(put_token("default", h2, make_token("a")));
  ASSERT_NO_FATAL_FAILURE(store_->change([&](Txn& txn) {
    ASSERT_TRUE(txn.delete_token("default", h1));
    txn.commit();
  }));
  ASSERT_NO_FATAL_FAILURE(store_->change([&](Txn& txn) {
    ASSERT_TRUE(txn.delete_client("default", "a"));
    txn.commit();
  }));
  EXPECT_FALSE(get_token("default", h2).has_value());
  // the id can be registered again and starts with no tokens
  ASSERT_TRUE(put_client(make_client("a")));
  EXPECT_FALSE(get_token("default", h1).has_value());
  EXPECT_FALSE(get_token("default", h2).has_value());
}

// R37, R28: a reuse revokes the whole family, even a token the family
// gained after the revocation read its index (a rotation that committed
// meanwhile): the index scan is part of what the change relies on, so the
// revocation runs again and takes the newcomer too.
TEST_F(StoreTest, RevokeFamilyTakesATokenAddedMeanwhileR37) {
  ASSERT_TRUE(put_client(make_client("a")));
  Token member = make_token("a");
  member.family[0] = 7;
  const TokenId first = oauth2::token_id("first"), later = oauth2::token_id("later");
  ASSERT_TRUE(put_token("default", first, member));
  int runs = 0;
  size_t revoked = 0;
  store_->change([&](Txn& txn) {
    runs++;
    revoked = txn.revoke_family("default", member.family);
    if (runs == 1) {
      ASSERT_TRUE(put_token("default", later, member));  // the racing rotation
    }
    txn.commit();
  });
  EXPECT_EQ(runs, 2);
  EXPECT_EQ(revoked, 2u);
  EXPECT_FALSE(get_token("default", first).has_value());
  EXPECT_FALSE(get_token("default", later).has_value());
}

// R70: deleting a user deletes their codes and tokens in the same change,
// and no other user's.  Were they left, validation would still refuse
// them (their user is gone) until an import gave the id to a new user,
// whom they would then open.
TEST_F(StoreTest, DeleteUserRemovesOnlyTheirTokensR70) {
  ASSERT_TRUE(put_client(make_client("a")));
  oauth2::User ann, bo;
  ann.username = "ann";
  bo.username = "bo";
  ASSERT_NO_FATAL_FAILURE(store_->change([&](Txn& txn) {
    ASSERT_EQ(txn.put_user(ann, true), oauth2::PutUser::kOk);
    ASSERT_EQ(txn.put_user(bo, true), oauth2::PutUser::kOk);
    txn.commit();
  }));
  std::vector<TokenId> anns, bos;
  for (TokenType type : {TokenType::kCode, TokenType::kAccess, TokenType::kRefresh}) {
    Token t = make_token("a");
    t.type = type;
    t.user = std::to_string(ann.id);
    anns.push_back(oauth2::token_id("ann" + std::to_string(anns.size())));
    ASSERT_TRUE(put_token("default", anns.back(), t));
    t.user = std::to_string(bo.id);
    bos.push_back(oauth2::token_id("bo" + std::to_string(bos.size())));
    ASSERT_TRUE(put_token("default", bos.back(), t));
  }
  ASSERT_NO_FATAL_FAILURE(store_->change([&](Txn& txn) {
    ASSERT_TRUE(txn.delete_user("default", ann.id));
    txn.commit();
  }));
  for (const auto& h : anns) EXPECT_FALSE(get_token("default", h).has_value());
  for (const auto& h : bos) EXPECT_TRUE(get_token("default", h).has_value());
  // ann's id (her OpenID Connect sub) is never given again: not to an
  // explicit id (an import keeping Django's pks), not to a new user
  oauth2::User heir;
  heir.id = ann.id;
  heir.username = "heir";
  ASSERT_NO_FATAL_FAILURE(store_->change([&](Txn& txn) {
    ASSERT_EQ(txn.put_user(heir, true), oauth2::PutUser::kInvalid);
    heir.id = 0;
    ASSERT_EQ(txn.put_user(heir, true), oauth2::PutUser::kOk);
    txn.commit();
  }));
  EXPECT_GT(heir.id, bo.id);
  Txn txn = store_->read();
  EXPECT_TRUE(txn.user_tokens_of_type("default", heir.id, TokenType::kAccess).empty());
  EXPECT_TRUE(txn.user_tokens_of_type("default", heir.id, TokenType::kRefresh).empty());
}

// ------------------------------------------------------------ usernames

std::string repeated(std::string_view unit, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; i++) s += unit;
  return s;
}

// Django's UnicodeUsernameValidator (^[\w.@+-]+\Z, re's Unicode \w:
// str.isalnum() or "_") and max_length=150, counted in code points; valid
// UTF-8 only (R7)
TEST(UsernameRule, DjangosUnicodeValidator) {
  using oauth2::valid_username;
  const std::string ok[] = {
      "alice",
      "a.b+c-d_e@f",
      "jos\xC3\xA9",                          // josé
      "\xE7\x94\xA8\xE6\x88\xB7_1",           // 用户_1
      "\xCE\xA9\xCE\xBC\xCE\xAD\xCE\xB3\xCE\xB1",  // Ωμέγα
      "\xD9\xA1\xD9\xA2",                     // ١٢: digits too
      "\xEF\xAC\x81x",                        // ﬁx: a word character (NFKC aside)
      repeated("a", 150),
      repeated("\xC3\xA9", 150),              // 300 bytes
      repeated("\xE7\x94\xA8", 150),          // 450 bytes
      repeated("\xF0\xA0\x80\x80", 150),      // U+20000: 600 bytes
  };
  for (const std::string& name : ok) EXPECT_TRUE(valid_username(name)) << name;
  const std::string refused[] = {
      "",
      "a b",
      "a\tb",
      std::string("a\0b", 3),
      "a\xC2\x85"
      "b",                   // U+0085, a C1 control
      "jos\xE9",             // Latin-1, not UTF-8
      "jos\xC3",             // cut inside a character
      "\xC0\xAF",            // overlong "/"
      "\xED\xA0\x80",        // a surrogate
      "\xF4\x90\x80\x80",    // past U+10FFFF
      "a/b",
      "a<b>",
      "alice\n",
      "e\xCC\x81",           // a combining mark is no \w, in Django either
      "\xF0\x9F\x98\x80",    // an emoji
      "a\xE2\x80\x8B"
      "b",                   // a zero-width space
      "a\xE3\x80\x80"
      "b",                   // an ideographic space
      repeated("a", 151),
      repeated("\xC3\xA9", 151),
  };
  for (const std::string& name : refused) EXPECT_FALSE(valid_username(name)) << name;
}

// Django's create_user stores NFKC(name); a name NFKC may change (a code
// point whose NFKC_Quick_Check is No or Maybe) is refused here instead
TEST(UsernameRule, NfkcStableNamesOnly) {
  using oauth2::username_nfkc_stable;
  for (const char* name : {"alice", "jos\xC3\xA9", "\xE7\x94\xA8\xE6\x88\xB7_1",
                           "\xEA\xB0\x80",  // 가, precomposed
                           "\xC3\x85",       // Å, U+00C5
                           "\xCE\xA9\xCE\xBC\xCE\xAD\xCE\xB3\xCE\xB1"}) {
    EXPECT_TRUE(username_nfkc_stable(name)) << name;
  }
  for (const char* name : {"\xEF\xAC\x81x",          // ﬁx: NFKC "fix"
                           "\xEF\xBC\xA1\xEF\xBC\xA2",  // fullwidth ＡＢ
                           "\xE2\x84\xAB",           // Angstrom sign: NFKC Å
                           "\xC2\xAA",               // ª: NFKC "a"
                           "\xE2\x85\xA0",           // Roman numeral one: "I"
                           "\xE1\x84\x80\xE1\x85\xA1",  // jamo ᄀ + ᅡ: NFKC 가 (Maybe)
                           "abc\xE0\xB8\xB3"}) {     // Thai sara am: NFKC two
    EXPECT_FALSE(username_nfkc_stable(name)) << name;
  }
}

// R47: 150 code points of a Unicode name are up to 600 bytes: past the
// user record header's length byte (255) and, after a realm of 64, past
// LMDB's 511 bytes of key.  Each is stored, found by its name, shown by
// active_username, renamed and deleted; two long names that differ in
// their last byte only are two users.
TEST_F(StoreTest, LongUnicodeUsernamesR47) {
  const std::string realm(64, 'r');
  const std::string names[] = {
      repeated("\xC3\xA9", 150),
      repeated("\xE7\x94\xA8", 150),
      repeated("\xF0\xA0\x80\x80", 149) + "a",
      repeated("\xF0\xA0\x80\x80", 149) + "b",
  };
  std::vector<uint64_t> ids;
  for (const std::string& name : names) {
    oauth2::User u;
    u.realm = realm;
    u.username = name;
    u.is_active = true;
    ASSERT_NO_FATAL_FAILURE(store_->change([&](Txn& txn) {
      ASSERT_EQ(txn.put_user(u, true), oauth2::PutUser::kOk) << name.size();
      txn.commit();
    }));
    ids.push_back(u.id);
  }
  {
    Txn txn = store_->read();
    for (size_t i = 0; i < std::size(names); i++) {
      auto u = txn.get_user_by_username(realm, names[i]);
      ASSERT_TRUE(u.has_value()) << i;
      EXPECT_EQ(u->id, ids[i]);
      EXPECT_EQ(u->username, names[i]);
      EXPECT_EQ(txn.active_username(realm, ids[i]), names[i]) << i;
    }
    EXPECT_EQ(txn.list_users(realm, 0, 10, nullptr).size(), std::size(names));
  }
  // a name taken, however long
  oauth2::User twin;
  twin.realm = realm;
  twin.username = names[3];
  ASSERT_NO_FATAL_FAILURE(store_->change([&](Txn& txn) {
    EXPECT_EQ(txn.put_user(twin, true), oauth2::PutUser::kUsernameTaken);
  }));
  // renamed: the old name is free, the new one found
  ASSERT_NO_FATAL_FAILURE(store_->change([&](Txn& txn) {
    auto u = txn.get_user(realm, ids[2]);
    ASSERT_TRUE(u.has_value());
    u->username = "short";
    ASSERT_EQ(txn.put_user(*u, false), oauth2::PutUser::kOk);
    ASSERT_TRUE(txn.delete_user(realm, ids[3]));
    txn.commit();
  }));
  Txn txn = store_->read();
  EXPECT_FALSE(txn.get_user_by_username(realm, names[2]).has_value());
  EXPECT_FALSE(txn.get_user_by_username(realm, names[3]).has_value());
  EXPECT_EQ(txn.get_user_by_username(realm, "short")->id, ids[2]);
  EXPECT_EQ(txn.get_user_by_username(realm, names[1])->id, ids[1]);
}

// ------------------------------------------------------------ key safety

TEST_F(StoreTest, ClientIdLengthsOneAnd200AreStoredR47) {
  ASSERT_EQ(oauth2::kMaxClientId, 200u);
  for (size_t n : {1u, 199u, 200u}) {
    std::string id(n, 'x');
    ASSERT_TRUE(put_client(make_client(id))) << n;
    auto got = get_client("default", id);
    ASSERT_TRUE(got.has_value()) << n;
    EXPECT_EQ(got->client_id, id);
    TokenId h = oauth2::token_id(id);
    ASSERT_TRUE(put_token("default", h, make_token(id))) << n;
    store_->change([&](Txn& txn) {
      EXPECT_TRUE(txn.delete_client("default", id));
      txn.commit();
    });
    EXPECT_FALSE(get_token("default", h).has_value()) << n;
  }
}

std::vector<std::string> bad_ids() {
  return {std::string(), std::string(201, 'x'), std::string(100 * 1024, 'x')};
}

TEST_F(StoreTest, BadIdLengthLookupIsNotFoundR47) {
  for (const auto& id : bad_ids()) {
    auto txn = store_->read();
    std::optional<Client> c;
    EXPECT_NO_THROW(c = txn.get_client("default", id)) << id.size();
    EXPECT_FALSE(c.has_value());
  }
}

TEST_F(StoreTest, BadIdLengthDeleteIsFalseR47) {
  for (const auto& id : bad_ids()) {
    store_->change([&](Txn& txn) {
      bool r = true;
      EXPECT_NO_THROW(r = txn.delete_client("default", id)) << id.size();
      EXPECT_FALSE(r) << id.size();
    });
  }
}

TEST_F(StoreTest, BadIdLengthPutIsFalseR47) {
  for (const auto& id : bad_ids()) {
    store_->change([&](Txn& txn) {
      bool r = false;
      EXPECT_NO_THROW(r = txn.put_client(make_client(id), true)) << id.size();
      EXPECT_FALSE(r) << id.size();
    });
  }
}

TEST_F(StoreTest, BadRealmLookupIsNotFoundR47) {
  TokenId h = oauth2::token_id("t");
  for (const std::string& realm :
       {std::string(), std::string(65, 'r'), std::string(100 * 1024, 'r'), bytes("de\0fault"),
        std::string("a\nb")}) {
    auto txn = store_->read();
    std::optional<Client> c;
    std::optional<Token> t;
    EXPECT_NO_THROW(c = txn.get_client(realm, "alpha"));
    EXPECT_NO_THROW(t = txn.get_token(realm, h));
    EXPECT_FALSE(c.has_value());
    EXPECT_FALSE(t.has_value());
  }
}

// Client ids are UTF-8 text without control characters: one with NUL, a
// control byte or invalid UTF-8 is refused, never truncated into another
// client's key (R47).
TEST_F(StoreTest, IdsWithNulOrControlBytesAreRefusedR47) {
  ASSERT_TRUE(put_client(make_client("a")));
  for (const std::string& id :
       {bytes("a\0b"),
        std::string("a\x01"
                    "b"),
        bytes("a\0"), bytes("\0"), std::string("\xFF\xFE"), std::string("a\x7F")}) {
    EXPECT_FALSE(put_client(make_client(id), true)) << testing::PrintToString(id);
    EXPECT_FALSE(get_client("default", id).has_value()) << testing::PrintToString(id);
    store_->change([&](Txn& txn) {
      EXPECT_FALSE(txn.delete_client("default", id)) << testing::PrintToString(id);
    });
  }
  EXPECT_TRUE(get_client("default", "a").has_value());
}

// Distinct ids are distinct keys and come back byte for byte (R47).
TEST_F(StoreTest, ClientIdRoundTripsByteExactR47) {
  const std::vector<std::string> ids = {"a", "ab", "x:y", "a\"b\\c", "\xC3\xA9t\xC3\xA9", "a b"};
  for (const auto& id : ids) {
    Client c = make_client(id);
    c.name = "client #" + std::to_string(&id - ids.data());
    ASSERT_TRUE(put_client(c, true)) << testing::PrintToString(id);
  }
  for (const auto& id : ids) {
    std::optional<Client> got;
    ASSERT_NO_THROW(got = get_client("default", id)) << testing::PrintToString(id);
    ASSERT_TRUE(got.has_value()) << testing::PrintToString(id);
    EXPECT_EQ(got->client_id, id);
    EXPECT_EQ(got->name, "client #" + std::to_string(&id - ids.data()));
  }
}

// A record the store accepts must be readable again: put_client returning
// true and get_client then throwing "corrupt client record" turns one bad
// field into a permanent 503 for that client (R77) and hides it from
// list_clients.  Either refuse the record or store it faithfully.
TEST_F(StoreTest, AcceptedClientRecordIsReadableR77) {
  for (const std::string& name :
       {bytes("nul\0inside"), std::string("bad utf-8 \xFF"), std::string("tab\there")}) {
    Client c = make_client("app");
    c.name = name;
    bool stored = false;
    try {
      stored = store_->change([&](Txn& txn) {
        bool ok = txn.put_client(c, true);
        txn.commit();
        return ok;
      });
    } catch (const std::exception&) {
      stored = false;  // refusing the record is fine
    }
    if (!stored) continue;
    std::optional<Client> got;
    EXPECT_NO_THROW(got = get_client("default", "app")) << "name " << testing::PrintToString(name);
    if (got) {
      EXPECT_EQ(got->name, name) << testing::PrintToString(name);
    }
    store_->change([&](Txn& txn) {
      txn.delete_client("default", "app");
      txn.commit();
    });
  }
}

// The token index keeps a client's tokens apart from those of a client
// whose id it prefixes (R47, R70).
TEST_F(StoreTest, TokenIndexKeepsPrefixIdsApartR47) {
  ASSERT_TRUE(put_client(make_client("a")));
  ASSERT_TRUE(put_client(make_client("ab")));
  TokenId ha = oauth2::token_id("token of a");
  TokenId hb = oauth2::token_id("token of ab");
  ASSERT_TRUE(put_token("default", ha, make_token("a")));
  ASSERT_TRUE(put_token("default", hb, make_token("ab")));
  ASSERT_NO_FATAL_FAILURE(store_->change([&](Txn& txn) {
    ASSERT_TRUE(txn.delete_client("default", "a"));
    txn.commit();
  }));
  EXPECT_FALSE(get_token("default", ha).has_value());
  EXPECT_TRUE(get_token("default", hb).has_value());
}

// ------------------------------------------------------------- realms

TEST_F(StoreTest, RealmsAreIsolated) {
  ASSERT_TRUE(put_client(make_client("app", "a")));
  EXPECT_TRUE(get_client("a", "app").has_value());
  EXPECT_FALSE(get_client("b", "app").has_value());
  EXPECT_FALSE(get_client("default", "app").has_value());
  {
    auto txn = store_->read();
    EXPECT_EQ(txn.list_clients("a").size(), 1u);
    EXPECT_TRUE(txn.list_clients("b").empty());
  }
  TokenId h = oauth2::token_id("tok");
  ASSERT_TRUE(put_token("a", h, make_token("app")));
  EXPECT_TRUE(get_token("a", h).has_value());
  EXPECT_FALSE(get_token("b", h).has_value());
  // the same hash may exist in another realm without touching the first
  Token other = make_token("app");
  other.scope = "other";
  EXPECT_TRUE(put_token("b", h, other));
  EXPECT_EQ(get_token("a", h)->scope, "read write");
  // deleting the client in "b" (not there) leaves "a" alone
  store_->change([&](Txn& txn) {
    EXPECT_FALSE(txn.delete_client("b", "app"));
    txn.commit();
  });
  EXPECT_TRUE(get_client("a", "app").has_value());
}

TEST_F(StoreTest, RealmAndIdBoundariesDoNotBlurR47) {
  // realm "a" + id "bx" vs realm "ab" + id "x": same concatenated bytes
  Client c1 = make_client("bx", "a");
  c1.name = "first";
  Client c2 = make_client("x", "ab");
  c2.name = "second";
  ASSERT_TRUE(put_client(c1, true));
  ASSERT_TRUE(put_client(c2, true));
  EXPECT_EQ(get_client("a", "bx")->name, "first");
  EXPECT_EQ(get_client("ab", "x")->name, "second");
  EXPECT_FALSE(get_client("a", "x").has_value());
  EXPECT_FALSE(get_client("ab", "bx").has_value());
  auto txn = store_->read();
  ASSERT_EQ(txn.list_clients("a").size(), 1u);
  EXPECT_EQ(txn.list_clients("a")[0].name, "first");
  ASSERT_EQ(txn.list_clients("ab").size(), 1u);
  EXPECT_EQ(txn.list_clients("ab")[0].name, "second");
}

// ------------------------------------------------------ what is on disk

TEST_F(StoreTest, DataFileHoldsOnlyTokenHashesR43) {
  const std::string secret = "client-secret-" + oauth2::random_alnum(32);
  Client c = make_client("app");
  c.secret_hash = oauth2::hash_secret(secret);
  ASSERT_TRUE(put_client(c));
  std::vector<std::string> tokens;
  for (int i = 0; i < 20; i++) {
    tokens.push_back(oauth2::new_token());
    ASSERT_TRUE(put_token("default", oauth2::token_id(tokens.back()), make_token("app")));
  }
  store_.reset();  // flush and close, to read the file as mdb_dump would

  std::string data = oauth2_test::read_file(path_ + "/data.mdb");
  for (const auto& t : tokens) {
    EXPECT_EQ(data.find(t), std::string::npos) << "token in clear: " << t;
    // sanity: the hash, which is what the key holds, is there
    oauth2::Digest h = oauth2::sha256(t);
    EXPECT_NE(data.find(std::string(reinterpret_cast<const char*>(h.data()), h.size())),
              std::string::npos);
  }
  EXPECT_EQ(data.find(secret), std::string::npos) << "secret in clear (R16)";
  store_ = std::make_unique<Store>(path_, kMapSize);
}

TEST_F(StoreTest, CommittedWriteSurvivesReopen) {
  TokenId h = oauth2::token_id("persisted");
  ASSERT_TRUE(put_client(make_client("app")));
  ASSERT_TRUE(put_token("default", h, make_token("app")));
  ASSERT_NO_FATAL_FAILURE(store_->change([&](Txn& txn) {
    ASSERT_TRUE(txn.put_client(make_client("uncommitted"), true));
    // no commit(): dropped
  }));
  reopen();
  EXPECT_TRUE(get_client("default", "app").has_value());
  EXPECT_FALSE(get_client("default", "uncommitted").has_value());
  auto t = get_token("default", h);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->client_id, "app");
}

TEST(StoreOpen, CreatesMissingDirectories) {
  oauth2_test::TempDir dir;
  std::string path = dir.path() + "/x/y/z";
  {
    const mode_t old_umask = umask(022);  // the usual one, which lets 0755 through
    Store s(path, kMapSize);
    umask(old_umask);
    EXPECT_EQ(s.path(), path);
  }
  EXPECT_NO_THROW(oauth2_test::read_file(path + "/data.mdb"));
  // R43: each directory made is 0750, not the 0755 a umask of 022 lets
  // through: no other local user may list the store or read its hashes
  for (const std::string& d : {dir.path() + "/x", dir.path() + "/x/y", path}) {
    struct stat st;
    ASSERT_EQ(stat(d.c_str(), &st), 0) << d;
    EXPECT_EQ(st.st_mode & 07777, 0750u) << d;
  }
}

TEST(StoreOpen, FailsLoudlyOnAFileR78) {
  oauth2_test::TempDir dir;
  std::string file = dir.path() + "/plain-file";
  { std::ofstream(file) << "not a directory"; }
  EXPECT_THROW(Store(file, kMapSize), std::exception);
  // and leaves the file alone
  EXPECT_EQ(oauth2_test::read_file(file), "not a directory");
}

TEST(StoreOpen, RejectsANewerSchemaR78) {
  oauth2_test::TempDir dir;
  std::string path = dir.path() + "/s";
  { Store s(path, kMapSize); }
  {
    // bump the schema version behind the store's back
    MDB_env* env = nullptr;
    ASSERT_EQ(mdb_env_create(&env), 0);
    ASSERT_EQ(mdb_env_set_maxdbs(env, 8), 0);
    ASSERT_EQ(mdb_env_open(env, path.c_str(), MDB_NOTLS, 0660), 0);
    MDB_txn* txn = nullptr;
    ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
    MDB_dbi meta;
    ASSERT_EQ(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    std::string k = "schema_version", v = "99";
    MDB_val mk{k.size(), k.data()}, mv{v.size(), v.data()};
    ASSERT_EQ(mdb_put(txn, meta, &mk, &mv, 0), 0);
    ASSERT_EQ(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
  }
  try {
    Store s(path, kMapSize);
    ADD_FAILURE() << "opened a store with a newer schema";
  } catch (const oauth2::StoreError& e) {
    EXPECT_EQ(e.rc(), MDB_VERSION_MISMATCH);
  }
}

// Writes raw records behind the store's back, as a release before schema
// 2 did: (database, key, value) triples, and the schema version.
void write_raw(const std::string& path,
               const std::vector<std::tuple<std::string, std::string, std::string>>& recs,
               const std::string& schema) {
  MDB_env* env = nullptr;
  ASSERT_EQ(mdb_env_create(&env), 0);
  ASSERT_EQ(mdb_env_set_maxdbs(env, 16), 0);
  ASSERT_EQ(mdb_env_open(env, path.c_str(), MDB_NOTLS, 0660), 0);
  MDB_txn* txn = nullptr;
  ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
  auto put = [&](const std::string& db, const std::string& k, const std::string& v) {
    MDB_dbi dbi;
    ASSERT_EQ(mdb_dbi_open(txn, db.c_str(), 0, &dbi), 0);
    MDB_val mk{k.size(), const_cast<char*>(k.data())}, mv{v.size(), const_cast<char*>(v.data())};
    ASSERT_EQ(mdb_put(txn, dbi, &mk, &mv, 0), 0);
  };
  for (const auto& [db, k, v] : recs) put(db, k, v);
  put("meta", "schema_version", schema);
  ASSERT_EQ(mdb_txn_commit(txn), 0);
  mdb_env_close(env);
}

std::string schema_of(Store& store) {
  auto txn = store.read();
  return txn.get_meta("schema_version").value_or("");
}

TEST(TokenIdTest, NewTokensSortByTheTimeTheyWereMade) {
  std::string a = oauth2::new_token();
  usleep(3000);
  std::string b = oauth2::new_token();
  EXPECT_EQ(a.size(), 43u);
  TokenId ia = oauth2::token_id(a), ib = oauth2::token_id(b);
  EXPECT_FALSE(ia.legacy);
  EXPECT_LT(ia.order, ib.order);
  EXPECT_EQ(ia.hash, oauth2::sha256(a));
  // the six order bytes are the milliseconds since the epoch
  uint64_t ms = 0;
  for (unsigned char c : ia.order) ms = (ms << 8) | c;
  const uint64_t now = static_cast<uint64_t>(time(nullptr)) * 1000;
  EXPECT_LE(ms, now + 1000);
  EXPECT_GE(ms + 60000, now);
  // the rest is random: two tokens of the same millisecond differ
  EXPECT_NE(oauth2::new_token().substr(8), oauth2::new_token().substr(8));
}

TEST(TokenIdTest, AnyValueHasAnId) {
  // values that do not start with eight base64url characters sort first
  for (std::string v : {"", "short", "has space in it", "a.b.c-jwt-like-value"}) {
    TokenId id = oauth2::token_id(v);
    if (v.size() >= 8 && v.find_first_of(" .") >= 8) continue;
    EXPECT_EQ(id.order, (std::array<unsigned char, 6>{})) << v;
    EXPECT_EQ(id.hash, oauth2::sha256(v));
  }
  // an imported django-oauth-toolkit token (30 alphanumerics) has an order
  TokenId dot = oauth2::token_id("AbCdEfGhIjKlMnOpQrStUvWxYz0123");
  EXPECT_NE(dot.order, (std::array<unsigned char, 6>{}));
}

// A store of the release before: records keyed by the SHA-256 alone.
// The upgraded store finds, updates, lists and deletes them, and writes
// new ones under the new keys.
TEST(StoreUpgrade, LegacyTokenRecordsStayUsable) {
  oauth2_test::TempDir dir;
  const std::string path = dir.path() + "/s";
  { Store s(path, kMapSize); }
  Client app;
  app.realm = "default";
  app.client_id = "app";
  app.name = "app";
  app.secret_hash = oauth2::hash_secret("s3cret");
  app.grant_types = {"client_credentials"};
  Token t;
  t.type = TokenType::kAccess;
  t.issued_at = 1000;
  t.expires_at = 2000;
  t.client_id = "app";
  t.scope = "read";
  const std::string old_value = oauth2::random_token(), old_expired = oauth2::random_token();
  auto legacy_key = [](const std::string& value) {
    TokenId id = oauth2::token_id(value);
    id.legacy = true;
    return oauth2::records::token_id_bytes(id);
  };
  Token expired = t;
  expired.expires_at = 1500;
  namespace r = oauth2::records;
  write_raw(
      path,
      {{"clients", r::client_key("default", "app"), r::encode_client(app)},
       {"tokens", r::realm_prefix("default") + legacy_key(old_value), r::encode_token(t)},
       {"tokens", r::realm_prefix("default") + legacy_key(old_expired), r::encode_token(expired)},
       {"client_tokens", r::client_tokens_prefix("default", "app") + legacy_key(old_value), ""},
       {"client_tokens", r::client_tokens_prefix("default", "app") + legacy_key(old_expired), ""}},
      "1");
  Store store(path, kMapSize);
  EXPECT_EQ(schema_of(store), std::to_string(oauth2::kSchemaVersion)) << "upgraded on open";

  // found by value, and updated where it is (no second record)
  ASSERT_TRUE(store.read().get_token("default", oauth2::token_id(old_value)).has_value());
  store.change([&](Txn& txn) {
    Token u = t;
    u.used_at = 1200;
    EXPECT_TRUE(txn.update_token("default", oauth2::token_id(old_value), u));
    // never a second record for the same value
    EXPECT_FALSE(txn.put_token("default", oauth2::token_id(old_value), t));
    txn.commit();
  });
  EXPECT_EQ(store.read().get_token("default", oauth2::token_id(old_value))->used_at, 1200);
  const std::string fresh = oauth2::new_token();
  store.change([&](Txn& txn) {
    EXPECT_TRUE(txn.put_token("default", oauth2::token_id(fresh), t));
    txn.commit();
  });
  EXPECT_EQ(store.read().client_tokens_of_type("default", "app", TokenType::kAccess).size(), 3u);

  // the expiry sweep removes the expired legacy record and its index entry
  SweepRound round = store.change([&](Txn& txn) {
    SweepRound sr = oauth2::sweep_expired(txn, "default", "", 1600, 100, 1000, 1600);
    txn.commit();
    return sr;
  });
  EXPECT_EQ(round.removed, 1u);
  EXPECT_FALSE(store.read().get_token("default", oauth2::token_id(old_expired)).has_value());
  EXPECT_EQ(store.read().client_tokens_of_type("default", "app", TokenType::kAccess).size(), 2u);

  // deleting the application removes old and new alike, indexes too
  store.change([&](Txn& txn) {
    EXPECT_TRUE(txn.delete_client("default", "app"));
    txn.commit();
  });
  EXPECT_FALSE(store.read().get_token("default", oauth2::token_id(old_value)).has_value());
  EXPECT_FALSE(store.read().get_token("default", oauth2::token_id(fresh)).has_value());
  std::vector<std::string> left;
  store.read().scan(oauth2::Db::kClientTokens, "", 0, false, [&](std::string_view k, auto) {
    left.emplace_back(k);
    return true;
  });
  EXPECT_TRUE(left.empty()) << left.size() << " index entries left";
}

}  // namespace

// The keys of the validation path, built on the stack, are the keys the
// writers store under; a realm or an id out of bounds is refused, never
// written past the buffer.
TEST(StackKeyTest, SameBytesAsTheStoredKeys) {
  namespace r = oauth2::records;
  const std::string realm(oauth2::kMaxRealm, 'r');
  const std::string client(oauth2::kMaxClientId, 'c');
  EXPECT_EQ(r::client_stack_key(realm, client).view(), r::realm_prefix(realm) + client);
  EXPECT_EQ(r::client_stack_key(realm, client).view().size(),
            1 + oauth2::kMaxRealm + oauth2::kMaxClientId);
  const oauth2::TokenId id = oauth2::token_id("AAAAAAAAsome-token-value");
  EXPECT_EQ(r::token_stack_key("default", id).view(),
            r::realm_prefix("default") + r::token_id_bytes(id));
  oauth2::TokenId legacy = id;
  legacy.legacy = true;
  EXPECT_EQ(r::token_stack_key("default", legacy).view().size(), 1 + 7 + 32);
  std::string user = r::realm_prefix("default");
  r::put_u64_be(user, 0x0102030405060708ULL);
  EXPECT_EQ(r::user_stack_key("default", 0x0102030405060708ULL).view(), user);
  EXPECT_THROW(r::StackKey("bad realm"), std::invalid_argument);
  EXPECT_THROW(r::StackKey(""), std::invalid_argument);
  EXPECT_THROW(r::client_stack_key(realm, client + "c"), std::length_error);
}

TEST(StackKeyTest, ShortTokenIdIsTheHashsFirstEightBytesInHex) {
  const oauth2::TokenId id = oauth2::token_id("AAAAAAAAsome-token-value");
  EXPECT_EQ(std::string_view(oauth2::short_token_id(id)), oauth2::hex_encode(id.hash.data(), 8));
  EXPECT_EQ(std::string_view(oauth2::ShortTokenId()), "");
}

namespace {

// R35: making an application public deletes every refresh token, code and
// device code of its, through a guarded scan of its index: one added while
// the change reads (another grant's commit) makes it run again and go too,
// where an unguarded scan would leave it, redeemable with the client_id
// alone (src/admin/api_apps.cpp)
TEST_F(StoreTest, AGuardedClientScanSeesATokenAddedMeanwhile) {
  ASSERT_TRUE(put_client(make_client("app")));
  Token rt = make_token("app");
  rt.type = TokenType::kRefresh;
  ASSERT_TRUE(put_token("default", oauth2::token_id("rt-1"), rt));
  int runs = 0;
  size_t deleted = 0;
  store_->change([&](Txn& txn) {
    runs++;
    auto found = txn.client_tokens_of_type("default", "app", TokenType::kRefresh, true);
    if (runs == 1) {
      ASSERT_TRUE(put_token("default", oauth2::token_id("rt-2"), rt));
    }
    for (auto& [hash, t] : found) txn.delete_token("default", hash);
    deleted = found.size();
    txn.commit();
  });
  EXPECT_EQ(runs, 2);
  EXPECT_EQ(deleted, 2u);
  EXPECT_FALSE(get_token("default", oauth2::token_id("rt-1")).has_value());
  EXPECT_FALSE(get_token("default", oauth2::token_id("rt-2")).has_value());
}

// oauth2_store's size= raised at a reload while the admin daemon (or an
// older worker) runs: another process grows the store past this one's
// map, and this one meets MDB_MAP_RESIZED.  Adopting the new map unmaps
// the old one, under every live transaction of the process (and the
// values they read): it waits until none is live, holding new ones back;
// a thread that holds one itself is refused (StoreError), never left to
// wait for itself (R77: a store error fails closed, never a crash).
TEST(MapGrowth, AGrownMapIsAdoptedOnlyOnceNoTransactionIsLiveR77) {
  oauth2_test::TempDir dir;
  const std::string path = dir.path() + "/store";
  Store a(path, size_t(2) << 20);
  a.change([](Txn& txn) {
    txn.put_meta("k", "v");
    txn.commit();
  });
  std::optional<Txn> held(a.read());  // live across the growth
  std::optional<std::string> k = held->get_meta("k");
  ASSERT_EQ(k, "v");

  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {  // the other process: a larger map, 8 MiB written
    int rc = 0;
    try {
      Store b(path, size_t(64) << 20);
      for (int round = 0; round < 4; round++) {
        b.change([&](Txn& txn) {
          for (int i = 0; i < 512; i++) {
            txn.put_meta("big" + std::to_string(round * 512 + i), std::string(4000, 'x'));
          }
          txn.commit();
        });
      }
    } catch (...) {
      rc = 1;
    }
    _exit(rc);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the other process grew it";

  EXPECT_THROW(a.read(), oauth2::StoreError)
      << "a thread that holds a transaction cannot adopt the map";

  std::atomic<bool> done{false};
  std::optional<std::string> seen;
  std::thread t([&] {
    Txn r = a.read();
    seen = r.get_meta("big2047");
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(done) << "the adoption waits for the live transaction";
  EXPECT_EQ(held->get_meta("k"), "v") << "whose map is still there";
  held.reset();
  t.join();
  EXPECT_TRUE(done);
  EXPECT_EQ(seen, std::string(4000, 'x')) << "then the other process's records are read";
  Txn after = a.read();
  EXPECT_EQ(after.get_meta("k"), "v");
}

}  // namespace
