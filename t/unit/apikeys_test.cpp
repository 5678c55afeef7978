// Unit tests of src/core/apikeys: an application's API keys (seed 002's
// handshake credential) in a fresh LMDB store per test.  Requirement
// numbers refer to docs/security.md.

#include "apikeys.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "crypto.hpp"
#include "store.hpp"
#include "test_helpers.hpp"

using oauth2::ApiKeyInfo;
using oauth2::Client;
using oauth2::NewApiKey;
using oauth2::Store;
using oauth2::Token;
using oauth2::TokenType;
using oauth2::Txn;

namespace {

constexpr size_t kMapSize = size_t(64) << 20;
constexpr const char* kRealm = "default";

class ApiKeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<oauth2_test::TempDir>();
    store_ = std::make_unique<Store>(dir_->path() + "/store", kMapSize);
    add_client("svc");
    add_client("other");
  }

  void TearDown() override {
    store_.reset();  // close the environment before removing its files
    dir_.reset();
  }

  void add_client(const std::string& id) {
    Client c;
    c.realm = kRealm;
    c.client_id = id;
    c.name = "name of " + id;
    c.secret_hash = oauth2::hash_secret("s3cret");
    c.grant_types = {"client_credentials"};
    store_->change([&](Txn& txn) {
      ASSERT_TRUE(txn.put_client(c, true));
      txn.commit();
    });
  }

  // a key of the client, committed
  NewApiKey create(const std::string& client_id, const std::string& name = "", int64_t now = 1000) {
    return store_->change([&](Txn& txn) {
      auto nk = oauth2::create_api_key(txn, kRealm, client_id, name, now);
      if (!nk) throw std::runtime_error("no such client " + client_id);
      txn.commit();
      return std::move(*nk);
    });
  }

  std::vector<ApiKeyInfo> list(const std::string& client_id) {
    auto txn = store_->read();
    return oauth2::list_api_keys(txn, kRealm, client_id);
  }

  std::optional<ApiKeyInfo> find(const std::string& key, const char* realm = kRealm) {
    auto txn = store_->read();
    return oauth2::find_api_key(txn, realm, key);
  }

  bool revoke(const std::string& client_id, const std::string& id) {
    return store_->change([&](Txn& txn) {
      bool ok = oauth2::revoke_api_key(txn, kRealm, client_id, id);
      txn.commit();
      return ok;
    });
  }

  std::optional<Token> get_token(const oauth2::TokenId& h) {
    auto txn = store_->read();
    return txn.get_token(kRealm, h);
  }

  std::unique_ptr<oauth2_test::TempDir> dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(ApiKeysTest, CreateStoresOnlyTheHashR43) {
  NewApiKey nk = create("svc", "ci", 1234);
  EXPECT_EQ(nk.key.size(), 43u);  // 32 random bytes, base64url
  EXPECT_EQ(nk.info.id.size(), 16u);
  EXPECT_EQ(nk.info.id.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(nk.info.client_id, "svc");
  EXPECT_EQ(nk.info.name, "ci");
  EXPECT_EQ(nk.info.created_at, 1234);

  auto t = get_token(oauth2::token_id(nk.key));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->type, TokenType::kApiKey);
  EXPECT_EQ(t->client_id, "svc");
  EXPECT_EQ(t->data.find(nk.key), std::string::npos);

  store_.reset();  // every page on disk
  std::string bytes = oauth2_test::read_file(dir_->path() + "/store/data.mdb");
  EXPECT_EQ(bytes.find(nk.key), std::string::npos);
}

TEST_F(ApiKeysTest, FindByValue) {
  NewApiKey nk = create("svc", "ci");
  auto k = find(nk.key);
  ASSERT_TRUE(k.has_value());
  EXPECT_EQ(k->id, nk.info.id);
  EXPECT_EQ(k->client_id, "svc");
  EXPECT_EQ(k->name, "ci");
  EXPECT_EQ(k->family, nk.info.family);

  EXPECT_FALSE(find(oauth2::random_token()).has_value());
  EXPECT_FALSE(find(nk.info.id).has_value());       // the id is no credential
  EXPECT_FALSE(find(nk.key, "other").has_value());  // realms are apart
}

TEST_F(ApiKeysTest, AnAccessTokenIsNoApiKey) {
  std::string value = oauth2::random_token();
  Token t;
  t.type = TokenType::kAccess;
  t.issued_at = 1000;
  t.expires_at = 2000;
  t.client_id = "svc";
  ASSERT_NO_FATAL_FAILURE(store_->change([&](Txn& txn) {
    ASSERT_TRUE(txn.put_token(kRealm, oauth2::token_id(value), t));
    txn.commit();
  }));
  EXPECT_FALSE(find(value).has_value());
  EXPECT_TRUE(list("svc").empty());
}

TEST_F(ApiKeysTest, UnknownClientGetsNoKey) {
  store_->change([&](Txn& txn) {
    EXPECT_FALSE(oauth2::create_api_key(txn, kRealm, "nope", "", 1000).has_value());
    EXPECT_FALSE(oauth2::create_api_key(txn, "other", "svc", "", 1000).has_value());
    txn.commit();
  });
  EXPECT_TRUE(list("nope").empty());
  EXPECT_TRUE(list("svc").empty());
}

TEST_F(ApiKeysTest, NameRules) {
  EXPECT_EQ(create("svc", std::string(oauth2::kMaxApiKeyName, 'n')).info.name,
            std::string(oauth2::kMaxApiKeyName, 'n'));
  EXPECT_EQ(create("svc", "caf\xc3\xa9").info.name, "caf\xc3\xa9");
  const std::string bad[] = {
      std::string(oauth2::kMaxApiKeyName + 1, 'n'),
      "a\x07"
      "b",
      "a\x7f"
      "b",
      oauth2_test::bytes("a\0b"),
      "a\xff"
      "b",  // not UTF-8
  };
  for (const std::string& name : bad) {
    store_->change([&](Txn& txn) {
      EXPECT_THROW(oauth2::create_api_key(txn, kRealm, "svc", name, 1000), std::invalid_argument)
          << name;
    });
  }
  EXPECT_EQ(list("svc").size(), 2u);
}

TEST_F(ApiKeysTest, ListOldestFirstOnlyTheClients) {
  NewApiKey b = create("svc", "b", 2000);
  NewApiKey a = create("svc", "a", 1000);
  NewApiKey c = create("svc", "c", 3000);
  create("other", "x", 1500);
  auto keys = list("svc");
  ASSERT_EQ(keys.size(), 3u);
  EXPECT_EQ(keys[0].id, a.info.id);
  EXPECT_EQ(keys[1].id, b.info.id);
  EXPECT_EQ(keys[2].id, c.info.id);
  for (const ApiKeyInfo& k : keys) EXPECT_EQ(k.client_id, "svc");
  EXPECT_EQ(list("other").size(), 1u);
  EXPECT_TRUE(list("nope").empty());
}

TEST_F(ApiKeysTest, RevokeDeletesTheKeyAndItsHandshakes) {
  NewApiKey doomed = create("svc", "doomed");
  NewApiKey kept = create("svc", "kept");

  // a handshake made with each key shares that key's family
  auto handshake = [this](const NewApiKey& k) {
    Token h;
    h.type = TokenType::kHandshake;
    h.issued_at = 1000;
    h.expires_at = 2000;
    h.client_id = "svc";
    h.family = k.info.family;
    oauth2::TokenId d = oauth2::token_id(oauth2::random_token());
    store_->change([&](Txn& txn) {
      EXPECT_TRUE(txn.put_token(kRealm, d, h));
      txn.commit();
    });
    return d;
  };
  oauth2::TokenId doomed_hs = handshake(doomed);
  oauth2::TokenId kept_hs = handshake(kept);

  EXPECT_FALSE(revoke("other", doomed.info.id));  // not that client's key
  EXPECT_TRUE(find(doomed.key).has_value());
  EXPECT_FALSE(revoke("svc", "0123456789abcdef"));

  EXPECT_TRUE(revoke("svc", doomed.info.id));
  EXPECT_FALSE(find(doomed.key).has_value());
  EXPECT_FALSE(get_token(oauth2::token_id(doomed.key)).has_value());
  EXPECT_FALSE(get_token(doomed_hs).has_value());
  EXPECT_FALSE(revoke("svc", doomed.info.id));  // once

  EXPECT_TRUE(find(kept.key).has_value());
  EXPECT_TRUE(get_token(kept_hs).has_value());
  auto keys = list("svc");
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].id, kept.info.id);
}

TEST_F(ApiKeysTest, UncommittedCreateLeavesNothing) {
  std::string key;
  ASSERT_NO_FATAL_FAILURE(store_->change([&](Txn& txn) {
    auto nk = oauth2::create_api_key(txn, kRealm, "svc", "", 1000);
    ASSERT_TRUE(nk.has_value());
    key = nk->key;
  }));  // no commit(): dropped
  ASSERT_FALSE(key.empty());
  EXPECT_FALSE(find(key).has_value());
  EXPECT_TRUE(list("svc").empty());
}

TEST_F(ApiKeysTest, DeleteClientRemovesItsKeysR70) {
  NewApiKey k1 = create("svc", "one");
  NewApiKey k2 = create("svc", "two");
  NewApiKey k3 = create("other", "three");
  ASSERT_NO_FATAL_FAILURE(store_->change([&](Txn& txn) {
    ASSERT_TRUE(txn.delete_client(kRealm, "svc"));
    txn.commit();
  }));
  EXPECT_FALSE(find(k1.key).has_value());
  EXPECT_FALSE(find(k2.key).has_value());
  EXPECT_FALSE(get_token(oauth2::token_id(k1.key)).has_value());
  EXPECT_TRUE(list("svc").empty());
  EXPECT_TRUE(find(k3.key).has_value());

  add_client("svc");  // the same client_id again: none of the old keys
  EXPECT_TRUE(list("svc").empty());
  EXPECT_FALSE(find(k1.key).has_value());
}

TEST_F(ApiKeysTest, JsonShowsTheKeyOnlyWhenGiven) {
  NewApiKey nk = create("svc", "ci", 0);
  std::string without = oauth2::api_key_json(nk.info, nullptr);
  EXPECT_EQ(without.find("api_key"), std::string::npos);
  EXPECT_EQ(without.find(nk.key), std::string::npos);
  EXPECT_NE(without.find("\"created_at\": \"1970-01-01T00:00:00Z\""), std::string::npos);
  std::string with = oauth2::api_key_json(nk.info, &nk.key);
  EXPECT_NE(with.find("\"api_key\": \"" + nk.key + "\""), std::string::npos);
}

}  // namespace
