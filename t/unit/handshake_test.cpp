// Unit tests of src/core/handshake.cpp (seed 002's handshake API) with an
// injected clock: expiry at the exact second for validate/ and for the
// handshake token as a bearer, revoked_at from the clock, what the store's
// record holds, a disabled application, a revoked API key and the rate
// limit callback.  The locations come from include/oauth2.h as the shim
// builds them (oauth2_location_create); the store is a real one in a temporary directory.
// Requirement numbers refer to docs/security.md.

#include <gtest/gtest.h>
#include <jansson.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "apikeys.hpp"
#include "crypto.hpp"
#include "endpoints.hpp"
#include "json.hpp"
#include "location.hpp"
#include "request.hpp"
#include "store.hpp"
#include "test_helpers.hpp"

using oauth2::Response;
using oauth2::Store;
using oauth2::StoreError;
using oauth2::Token;
using oauth2::TokenType;
using oauth2::Txn;
using oauth2_test::cstr;

namespace {

constexpr int64_t kNow = 1700000000;  // 2023-11-14T22:13:20Z
constexpr size_t kMapSize = size_t(64) << 20;
constexpr const char* kRealm = "default";

oauth2::Json parse_json(const std::string& body) {
  json_error_t err;
  return oauth2::Json(json_loadb(body.data(), body.size(), 0, &err));
}

// the string at a path of object keys, "" if missing
std::string str_at(const oauth2::Json& j, std::initializer_list<const char*> path) {
  json_t* v = j.get();
  for (const char* k : path) v = json_object_get(v, k);
  return json_is_string(v) ? std::string(json_string_value(v)) : std::string();
}

json_t* at(const oauth2::Json& j, std::initializer_list<const char*> path) {
  json_t* v = j.get();
  for (const char* k : path) v = json_object_get(v, k);
  return v;
}

// The settings of a location as the shim gives them (include/oauth2.h
// oauth2_location_conf_t), whose strings live as long as this:
// oauth2_handshake_key <key_path>, oauth2_handshake_solution rental
// fbs=fbs_rental_db django=djo_rental_db system=fbs_system_db.
struct LocationConf {
  int endpoint = OAUTH2_ENDPOINT_HANDSHAKE;
  std::string realm = kRealm;
  std::string key_path;
  std::string issuer;  // oauth2_issuer; empty: none
  std::string default_scope = "read write";
  int64_t max_ttl = 30 * 86400;
  std::vector<std::string> scopes;  // auth_oauth2's, all required
  std::vector<oauth2_rate_window_t> rates;

  std::vector<std::string> solution = {"rental", "fbs=fbs_rental_db", "django=djo_rental_db",
                                       "system=fbs_system_db"};
  // rebuilt on every c(): point into the strings above
  mutable std::vector<oauth2_str_t> solution_args;
  mutable const oauth2_str_t* solution_ptr = nullptr;
  mutable size_t solution_size = 0;
  mutable std::vector<oauth2_str_t> scope_strs;

  oauth2_location_conf_t c() const {
    oauth2_location_conf_t lc{};
    lc.endpoint = endpoint;
    lc.realm = cstr(realm);
    lc.auth = endpoint == OAUTH2_ENDPOINT_NONE;
    lc.auth_realm = cstr("api");
    scope_strs.clear();
    for (const auto& s : scopes) scope_strs.push_back(cstr(s));
    lc.scopes = scope_strs.empty() ? nullptr : scope_strs.data();
    lc.nscopes = scope_strs.size();
    lc.access_token_ttl = 36000;
    lc.refresh_token_ttl = 30 * 86400;
    lc.refresh_grace = 10;
    lc.code_ttl = 60;
    lc.default_scope = cstr(default_scope);
    lc.pbkdf2_iterations = 1000;
    lc.handshake_key = cstr(key_path);
    lc.issuer = cstr(issuer);
    lc.handshake_max_ttl = max_ttl;
    solution_args.clear();
    for (const auto& a : solution) solution_args.push_back(cstr(a));
    solution_ptr = solution_args.data();
    solution_size = solution_args.size();
    lc.solutions = &solution_ptr;
    lc.solution_sizes = &solution_size;
    lc.nsolutions = 1;
    lc.auth_limit = 10;
    lc.auth_window = 60;
    for (size_t i = 0; i < rates.size() && i < OAUTH2_MAX_RATES; i++) {
      lc.rates[i] = rates[i];
    }
    lc.nrates = rates.size();
    return lc;
  }
};

// A POST under the handshake location whose strings live as long as this.
struct HsReq {
  std::string subpath;
  std::string body;
  std::string method = "POST";
  std::string content_type = "application/json";
  int64_t now = kNow;
  oauth2_counters_t counters{};  // take NULL: no rate limit
  std::string address = "192.0.2.5";
  LocationConf location;  // its key_path is the fixture's

  oauth2_request_t c() const {
    oauth2_request_t r{};
    r.method = cstr(method);
    r.content_type = cstr(content_type);
    r.content_type_count = 1;
    r.body = cstr(body);
    r.now = now;
    r.subpath = cstr(subpath);
    r.counters = counters;
    r.address = cstr(address);
    return r;
  }
};

// the shim's rate limit (oauth2_counters_t take()): records every key,
// answers `wait`
struct FakeRate {
  std::vector<std::string> keys;
  unsigned wait = 0;

  static unsigned take(void* ctx, const unsigned char* key, size_t len,
                       const oauth2_rate_window_t* w, size_t nw, oauth2_rate_state_t* st) {
    auto* self = static_cast<FakeRate*>(ctx);
    self->keys.emplace_back(reinterpret_cast<const char*>(key), len);
    st->set = 1;
    st->limit = nw ? w[0].limit : 0;
    return self->wait;
  }
  oauth2_counters_t counters() {
    oauth2_counters_t c{};
    c.ctx = this;
    c.take = &FakeRate::take;
    return c;
  }
};

struct Created {
  std::string id, token, secret, expires_at;
};

class HandshakeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<oauth2_test::TempDir>();
    path_ = dir_->path() + "/store";
    // the handshake key is a file (oauth2_handshake_key), never the store's
    key_path_ = dir_->path() + "/handshake.key";
    {
      FILE* f = fopen(key_path_.c_str(), "w");
      ASSERT_NE(f, nullptr);
      fputs("0123456789abcdef0123456789abcdef-unit-test-key\n", f);
      fclose(f);
    }
    oauth2::prepare_store(path_, kMapSize, -1, -1);
    store_ = std::make_unique<Store>(path_, kMapSize);

    oauth2::Client c;
    c.realm = kRealm;
    c.client_id = "svc";
    c.name = "svc";
    c.secret_hash = oauth2::hash_secret("s3cret");
    c.grant_types = {"client_credentials"};
    c.scope = "read write admin";
    ASSERT_NO_FATAL_FAILURE(store_->change([&](Txn& txn) {
      ASSERT_TRUE(txn.put_client(c, true));
      txn.commit();
    }));
    conf_ = oauth2_conf_create();
    ASSERT_NE(conf_, nullptr);
    auth_ = make_location(auth_conf("read"));
    ASSERT_NE(auth_, nullptr);
    ASSERT_NO_FATAL_FAILURE(store_->change([&](Txn& txn) {
      auto nk = oauth2::create_api_key(txn, kRealm, "svc", "ci", kNow - 100);
      ASSERT_TRUE(nk.has_value());
      txn.commit();
      api_key_ = nk->key;
      api_key_id_ = nk->info.id;
    }));
  }

  void TearDown() override {
    store_.reset();
    for (auto* l : locations_) oauth2_location_destroy(l);
    oauth2_conf_destroy(conf_);
    dir_.reset();
  }

  // A location of this http{} block (conf_: the key file is read once),
  // freed with the test; nullptr if oauth2_location_create() refused it.
  const oauth2_location_t* make_location(const LocationConf& lc) {
    char err[256] = "";
    oauth2_location_conf_t c = lc.c();
    oauth2_location_t* l = oauth2_location_create(conf_, &c, err, sizeof(err));
    EXPECT_NE(l, nullptr) << err;
    if (l) locations_.push_back(l);
    return l;
  }

  // an auth_oauth2 location needing `scope`, with the handshake key
  LocationConf auth_conf(std::string scope) {
    LocationConf lc;
    lc.endpoint = OAUTH2_ENDPOINT_NONE;
    lc.key_path = key_path_;
    lc.scopes = {std::move(scope)};
    return lc;
  }

  HsReq req(std::string subpath, std::string body, int64_t now = kNow) {
    HsReq r;
    r.subpath = std::move(subpath);
    r.body = std::move(body);
    r.now = now;
    r.location.key_path = key_path_;
    return r;
  }

  Response call(const HsReq& r) {
    const oauth2_location_t* loc = make_location(r.location);
    if (!loc) {
      Response refused;  // make_location() failed the test
      refused.status = 500;
      return refused;
    }
    const oauth2_request_t c = r.c();
    const oauth2::Request req(c, *loc->l);
    oauth2::EndpointResult e = oauth2::handshake_endpoint(*store_, req);
    if (!e.pending) return std::move(e.response);
    e.pending->run();
    return e.pending->finish();
  }

  std::string create_body(const std::string& extra = "") {
    return "{\"api_key\": \"" + api_key_ +
           "\", \"system_name\": \"sys\", \"solution_name\": \"rental\"" + extra + "}";
  }

  Created create(int64_t now, const std::string& extra = "") {
    Response r = call(req("create/", create_body(extra), now));
    EXPECT_EQ(r.status, 201) << r.body;
    oauth2::Json j = parse_json(r.body);
    Created c;
    c.id = str_at(j, {"handshake", "handshake_id"});
    c.token = str_at(j, {"handshake", "handshake_token"});
    c.secret = str_at(j, {"handshake", "handshake_secret"});
    c.expires_at = str_at(j, {"handshake", "expires_at"});
    EXPECT_FALSE(c.token.empty()) << r.body;
    return c;
  }

  Response validate(const Created& c, int64_t now, const std::string& secret = "") {
    return call(req("validate/",
                    "{\"handshake_token\": \"" + c.token + "\", \"handshake_secret\": \"" +
                        (secret.empty() ? c.secret : secret) + "\"}",
                    now));
  }

  Response revoke(const Created& c, int64_t now) {
    return call(req("revoke/", "{\"handshake_token\": \"" + c.token + "\"}", now));
  }

  // validate/'s data.valid: 1 true, 0 false, -1 not a 200 with a boolean
  int valid(const Created& c, int64_t now) {
    Response r = validate(c, now);
    if (r.status != 200) return -1;
    json_t* v = at(parse_json(r.body), {"data", "valid"});
    if (!json_is_boolean(v)) return -1;
    return json_is_true(v) ? 1 : 0;
  }

  // the token as a bearer at an auth_oauth2 location needing `scope`
  // (loc: one of fresh_location(scope); by default the fixture's, whose
  // cache of verified tokens lives as long as the test)
  int bearer(const std::string& token, int64_t now, const oauth2_location_t* loc = nullptr,
             std::string scope = "read") {
    if (!loc) {
      auto& l = auth_by_scope_[scope];
      if (!l) l = scope == "read" ? auth_ : make_location(auth_conf(scope));
      loc = l;
    }
    if (!loc) return -1;
    EXPECT_EQ(loc->l->scopes, std::vector<std::string>{scope});
    std::string auth = "Bearer " + token;
    oauth2::BearerRequest r;
    r.has_authorization = true;
    r.authorization = auth;
    r.now = now;
    return oauth2::validate(*store_, *loc->l, r).result;
  }

  // a location with no cache of verified tokens yet
  const oauth2_location_t* fresh_location(std::string scope = "read") {
    return make_location(auth_conf(std::move(scope)));
  }

  std::optional<Token> record(const std::string& handshake_id) {
    auto txn = store_->read();
    return txn.get_token(kRealm, oauth2::token_id(handshake_id));
  }

  void set_disabled(bool disabled) {
    store_->change([&](Txn& txn) {
      auto c = txn.get_client(kRealm, "svc");
      ASSERT_TRUE(c.has_value());
      c->disabled = disabled;
      ASSERT_TRUE(txn.put_client(*c, false));
      txn.commit();
    });
  }

  std::unique_ptr<oauth2_test::TempDir> dir_;
  std::string path_;
  std::string key_path_;
  std::unique_ptr<Store> store_;
  oauth2_conf_t* conf_ = nullptr;
  std::vector<oauth2_location_t*> locations_;
  const oauth2_location_t* auth_ = nullptr;  // auth_oauth2, scope "read"
  std::map<std::string, const oauth2_location_t*> auth_by_scope_;
  std::string api_key_, api_key_id_;
};

// ------------------------------------------------------------- expiry

TEST_F(HandshakeTest, ExpiresAtIsNowPlusExpiresInR45) {
  Created c = create(kNow, ", \"expires_in\": 3600");
  EXPECT_EQ(c.expires_at, "2023-11-14T23:13:20Z");
  auto t = record(c.id);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->expires_at, kNow + 3600);
  EXPECT_EQ(t->issued_at, kNow);

  Created d = create(kNow);  // the default: a day
  EXPECT_EQ(d.expires_at, "2023-11-15T22:13:20Z");
}

TEST_F(HandshakeTest, ValidateIsFalseAtExactlyExpiresAtR45) {
  Created c = create(kNow, ", \"expires_in\": 60");
  const int64_t exp = kNow + 60;
  EXPECT_EQ(valid(c, kNow), 1);
  EXPECT_EQ(valid(c, exp - 1), 1) << "one second before expires_at";
  EXPECT_EQ(valid(c, exp), 0) << "now == expires_at is expired";
  EXPECT_EQ(valid(c, exp + 1), 0);
  EXPECT_EQ(valid(c, exp + 86400 * 365), 0);
  // the expired answer is still the 200 with the handshake's data
  Response r = validate(c, exp);
  ASSERT_EQ(r.status, 200) << r.body;
  oauth2::Json j = parse_json(r.body);
  EXPECT_TRUE(json_is_true(at(j, {"success"})));
  EXPECT_EQ(str_at(j, {"data", "expires_at"}), c.expires_at);
  EXPECT_EQ(str_at(j, {"data", "database_name"}), "fbs_rental_db");
}

TEST_F(HandshakeTest, ExpiryDoesNotDependOnTheOrderOfChecks) {
  // the first look at the handshake is already after expiry
  Created c = create(kNow, ", \"expires_in\": 120");
  EXPECT_EQ(valid(c, kNow + 120), 0);
  EXPECT_EQ(valid(c, kNow + 119), 1);
}

TEST_F(HandshakeTest, BearerIsInvalidAtExactlyExpiresAtR45) {
  Created c = create(kNow, ", \"expires_in\": 60");
  const int64_t exp = kNow + 60;
  EXPECT_EQ(bearer(c.token, kNow), OAUTH2_VALID);
  EXPECT_EQ(bearer(c.token, exp - 1), OAUTH2_VALID);
  EXPECT_EQ(bearer(c.token, exp), OAUTH2_INVALID_TOKEN)
      << "the JWT leeway must not outlive the handshake";
  EXPECT_EQ(bearer(c.token, exp + 1), OAUTH2_INVALID_TOKEN);
  EXPECT_EQ(bearer(c.token, exp + 3600), OAUTH2_INVALID_TOKEN);
  // and at a location that never saw the token (no verified-token cache)
  EXPECT_EQ(bearer(c.token, exp, fresh_location()), OAUTH2_INVALID_TOKEN);
  EXPECT_EQ(bearer(c.token, exp - 1, fresh_location()), OAUTH2_VALID);
}

TEST_F(HandshakeTest, BearerScopesArePermissionsR63) {
  Created c = create(kNow, ", \"permissions\": [\"read\"]");
  EXPECT_EQ(bearer(c.token, kNow, nullptr, "read"), OAUTH2_VALID);
  EXPECT_EQ(bearer(c.token, kNow, nullptr, "admin"), OAUTH2_INSUFFICIENT_SCOPE);
}

TEST_F(HandshakeTest, ExpiresInBoundsFollowMaxTtl) {
  HsReq r = req("create/", create_body(", \"expires_in\": 121"));
  r.location.max_ttl = 120;
  Response resp = call(r);
  EXPECT_EQ(resp.status, 400) << resp.body;
  EXPECT_EQ(str_at(parse_json(resp.body), {"error_code"}), "VALIDATION_ERROR");
  EXPECT_FALSE(str_at(parse_json(resp.body), {"details", "expires_in"}).empty());
  r.body = create_body(", \"expires_in\": 120");
  resp = call(r);
  ASSERT_EQ(resp.status, 201) << resp.body;
  EXPECT_EQ(str_at(parse_json(resp.body), {"handshake", "expires_at"}),
            oauth2::rfc3339(kNow + 120));
  r.body = create_body(", \"expires_in\": 59");
  r.location.max_ttl = 30 * 86400;
  EXPECT_EQ(call(r).status, 400);
  r.body = create_body(", \"expires_in\": 60");
  EXPECT_EQ(call(r).status, 201);
}

// ------------------------------------------------------------- revoke

TEST_F(HandshakeTest, RevokedAtComesFromTheClockAndStays) {
  Created c = create(kNow);
  Response r = revoke(c, kNow + 10);
  ASSERT_EQ(r.status, 200) << r.body;
  oauth2::Json j = parse_json(r.body);
  EXPECT_TRUE(json_is_true(at(j, {"data", "revoked"})));
  EXPECT_EQ(str_at(j, {"data", "revoked_at"}), "2023-11-14T22:13:30Z");
  EXPECT_EQ(str_at(j, {"message"}), "Handshake revoked successfully");

  r = revoke(c, kNow + 500);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(str_at(parse_json(r.body), {"data", "revoked_at"}), "2023-11-14T22:13:30Z");

  EXPECT_EQ(valid(c, kNow + 11), 0);
  EXPECT_EQ(bearer(c.token, kNow + 11), OAUTH2_INVALID_TOKEN);
  EXPECT_EQ(bearer(c.token, kNow + 11, fresh_location()), OAUTH2_INVALID_TOKEN);
}

// ------------------------------------------------------------- the record

TEST_F(HandshakeTest, RecordHoldsNoClearSecretR43) {
  Created c = create(kNow, ", \"permissions\": [\"read\", \"write\"]");
  ASSERT_FALSE(c.secret.empty());
  ASSERT_FALSE(c.id.empty());

  // keyed by the SHA-256 of the handshake_id
  auto t = record(c.id);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->type, TokenType::kHandshake);
  EXPECT_EQ(t->client_id, "svc");
  EXPECT_EQ(t->scope, "read write");
  EXPECT_FALSE(record(c.token).has_value()) << "not keyed by the token";

  // every field of the record, as bytes
  std::string bytes = t->client_id + '\n' + t->scope + '\n' + t->user + '\n' + t->redirect_uri +
                      '\n' + t->code_challenge + '\n' + t->sealed + '\n' + t->data;
  EXPECT_EQ(bytes.find(c.secret), std::string::npos) << t->data;
  EXPECT_EQ(bytes.find(api_key_), std::string::npos) << t->data;
  EXPECT_EQ(bytes.find(c.token), std::string::npos);
  // the secret is there only as a salted hash that verifies it
  oauth2::Json data = parse_json(t->data);
  ASSERT_TRUE(data && json_is_object(data.get())) << t->data;
  std::string hash = str_at(data, {"secret"});
  ASSERT_FALSE(hash.empty()) << t->data;
  EXPECT_NE(hash, c.secret);
  EXPECT_TRUE(oauth2::verify_secret(c.secret, hash));
  EXPECT_FALSE(oauth2::verify_secret(c.secret + "x", hash));
  Created d = create(kNow);
  auto t2 = record(d.id);
  ASSERT_TRUE(t2.has_value());
  EXPECT_NE(str_at(parse_json(t2->data), {"secret"}), hash) << "each secret has its own salt";

  // and nowhere in the file, free pages included
  store_.reset();
  std::string file = oauth2_test::read_file(path_ + "/data.mdb");
  ASSERT_GT(file.size(), 4096u);
  for (const Created* h : {&c, &d}) {
    EXPECT_EQ(file.find(h->secret), std::string::npos) << "a secret in clear";
    EXPECT_EQ(file.find(h->token), std::string::npos) << "a token in clear";
  }
  EXPECT_EQ(file.find(api_key_), std::string::npos) << "the API key in clear";
}

// ------------------------------------------------------------- lifecycle

TEST_F(HandshakeTest, DisabledApplicationR70) {
  Created c = create(kNow);
  EXPECT_EQ(valid(c, kNow + 1), 1);
  set_disabled(true);
  EXPECT_EQ(valid(c, kNow + 2), 0) << "valid false while the app is disabled";
  EXPECT_EQ(bearer(c.token, kNow + 2), OAUTH2_INVALID_TOKEN);
  Response r = call(req("create/", create_body(), kNow + 2));
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(str_at(parse_json(r.body), {"error_code"}), "INVALID_API_KEY");
  set_disabled(false);
  EXPECT_EQ(valid(c, kNow + 3), 1) << "enabled again: valid again";
}

TEST_F(HandshakeTest, RevokedApiKeyEndsItsHandshakes) {
  Created c = create(kNow);
  ASSERT_NO_FATAL_FAILURE(store_->change([&](Txn& txn) {
    ASSERT_TRUE(oauth2::revoke_api_key(txn, kRealm, "svc", api_key_id_));
    txn.commit();
  }));
  Response r = validate(c, kNow + 1);
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_EQ(str_at(parse_json(r.body), {"error_code"}), "HANDSHAKE_NOT_FOUND");
  EXPECT_EQ(bearer(c.token, kNow + 1), OAUTH2_INVALID_TOKEN);
  r = call(req("create/", create_body(), kNow + 1));
  EXPECT_EQ(r.status, 401) << r.body;
}

// An API key revoked after create/ checked it, before its write: the
// write finds the key gone and stores nothing (no handshake outlives its
// key).
TEST_F(HandshakeTest, AKeyRevokedBeforeTheWriteCreatesNothing) {
  HsReq r = req("create/", create_body());
  const oauth2_location_t* loc = make_location(r.location);
  ASSERT_NE(loc, nullptr);
  const oauth2_request_t c = r.c();
  const oauth2::Request request(c, *loc->l);
  oauth2::EndpointResult e = oauth2::handshake_endpoint(*store_, request);
  ASSERT_NE(e.pending, nullptr) << e.response.status << " " << e.response.body;
  ASSERT_NO_FATAL_FAILURE(store_->change([&](Txn& txn) {
    ASSERT_TRUE(oauth2::revoke_api_key(txn, kRealm, "svc", api_key_id_));
    txn.commit();
  }));
  e.pending->run();
  Response resp = e.pending->finish();
  EXPECT_EQ(resp.status, 401) << resp.body;
  EXPECT_EQ(str_at(parse_json(resp.body), {"error_code"}), "INVALID_API_KEY");
  Txn txn = store_->read();
  EXPECT_TRUE(txn.client_tokens_of_type(kRealm, "svc", TokenType::kHandshake).empty());
}

// R8: a handshake token longer than kMaxTokenLen, the cap of validate/,
// revoke/ and auth_oauth2, which would never read it back, is never
// issued.  Too long for its permissions: 400 naming them; too long
// without any (an issuer of 4000 bytes): the 500 an operator must see,
// its reason for the log.  Nothing is written either way.
TEST_F(HandshakeTest, ATokenTooLongIsRefusedAndWritesNothingR8) {
  std::string many;
  for (int i = 0; i < 330; i++) {
    many += (many.empty() ? "scope" : " scope") + std::to_string(1000 + i);
  }
  ASSERT_NO_FATAL_FAILURE(store_->change([&](Txn& txn) {
    auto c = txn.get_client(kRealm, "svc");
    ASSERT_TRUE(c.has_value());
    c->scope = many;
    ASSERT_TRUE(txn.put_client(*c, false));
    txn.commit();
  }));
  Response r = call(req("create/", create_body()));  // all 330 of them
  EXPECT_EQ(r.status, 400) << r.body;
  oauth2::Json j = parse_json(r.body);
  EXPECT_EQ(str_at(j, {"error_code"}), "VALIDATION_ERROR");
  EXPECT_NE(str_at(j, {"details", "permissions"}).find("4096 bytes"), std::string::npos) << r.body;

  HsReq longer = req("create/", create_body(", \"permissions\": [\"scope1000\"]"));
  longer.location.issuer = "https://" + std::string(4000, 'a') + ".example";
  r = call(longer);
  EXPECT_EQ(r.status, 500) << r.body;
  EXPECT_EQ(str_at(parse_json(r.body), {"error_code"}), "SERVER_ERROR");
  EXPECT_NE(r.reason.find("even without permissions"), std::string::npos) << r.reason;
  EXPECT_FALSE(r.unavailable);  // not the store's failure: logged at crit

  Txn txn = store_->read();
  EXPECT_TRUE(txn.client_tokens_of_type(kRealm, "svc", TokenType::kHandshake).empty());
}

// ------------------------------------------------------------- the C API

// every allocation of the C API, freed with the test
struct Pool {
  std::vector<std::unique_ptr<char[]>> blocks;
  static void* alloc(void* ctx, size_t size) {
    auto* p = static_cast<Pool*>(ctx);
    p->blocks.emplace_back(new char[size ? size : 1]);
    return p->blocks.back().get();
  }
};

// The shim's path: oauth2_endpoint_begin/op_run/op_finish, then
// oauth2_validate for the bearer, on a store opened by the C API.
TEST_F(HandshakeTest, CApiCreateThenBearerExpiresAtExpiresAtR45) {
  const std::string body = create_body(", \"expires_in\": 60");
  store_.reset();  // one environment per process: the C API opens its own
  oauth2_store_t* cs = oauth2_store_create(path_.c_str(), kMapSize);
  ASSERT_NE(cs, nullptr);
  char err[256] = "";
  ASSERT_EQ(oauth2_store_open(cs, err, sizeof(err)), OAUTH2_OK) << err;

  Pool pool;
  HsReq r = req("create/", body);
  const oauth2_location_t* loc = make_location(r.location);
  ASSERT_NE(loc, nullptr);
  oauth2_request_t creq = r.c();
  oauth2_op_t* op = nullptr;
  oauth2_response_t resp{};
  int rc = oauth2_endpoint_begin(cs, loc, &creq, &op, &Pool::alloc, &pool, &resp);
  if (rc == OAUTH2_PENDING) {
    ASSERT_NE(op, nullptr);
    oauth2_op_run(op);
    rc = oauth2_op_finish(op, &Pool::alloc, &pool, &resp);
  }
  ASSERT_EQ(rc, OAUTH2_OK);
  std::string out(reinterpret_cast<char*>(resp.body), resp.body_len);
  ASSERT_EQ(resp.status, 201) << out;
  const std::string token = str_at(parse_json(out), {"handshake", "handshake_token"});
  ASSERT_FALSE(token.empty()) << out;

  auto check = [&](int64_t now) {
    // auth_, the location's: realm kRealm, scope "read" required
    std::string auth = "Bearer " + token;
    oauth2_validate_req_t v{};
    v.has_authorization = 1;
    v.authorization = cstr(auth);
    v.now = now;
    oauth2_validate_res_t res{};
    EXPECT_EQ(oauth2_validate(cs, auth_, &v, &Pool::alloc, &pool, &res), OAUTH2_OK);
    if (res.result == OAUTH2_VALID) {
      EXPECT_EQ(std::string(reinterpret_cast<const char*>(res.client_id.data), res.client_id.len),
                "svc");
      EXPECT_EQ(res.expires, kNow + 60);
    }
    return res.result;
  };
  EXPECT_EQ(check(kNow), OAUTH2_VALID);
  EXPECT_EQ(check(kNow + 59), OAUTH2_VALID);
  EXPECT_EQ(check(kNow + 60), OAUTH2_INVALID_TOKEN);
  EXPECT_EQ(check(kNow + 61), OAUTH2_INVALID_TOKEN);
  oauth2_store_destroy(cs);
}

// Each 503 of the C API names its reason for oauth2_metrics'
// oauth2_unavailable_total: a store that is not open is the store's, at
// the token endpoint and at auth_oauth2; the shim's own refusal (a full
// queue) is left for the shim to name.  (The handshake envelope answers
// a store's failure 500, seed 002's shape: no 503 to name.)
TEST_F(HandshakeTest, CApiNamesTheReasonOfEach503) {
  Pool pool;
  HsReq r = req("", "grant_type=client_credentials");
  r.content_type = "application/x-www-form-urlencoded";
  r.location.endpoint = OAUTH2_ENDPOINT_TOKEN;
  const oauth2_location_t* loc = make_location(r.location);
  ASSERT_NE(loc, nullptr);
  oauth2_request_t creq = r.c();
  oauth2_op_t* op = nullptr;
  oauth2_response_t resp{};
  ASSERT_EQ(oauth2_endpoint_begin(nullptr, loc, &creq, &op, &Pool::alloc, &pool, &resp), OAUTH2_OK);
  EXPECT_EQ(resp.status, 503);
  EXPECT_EQ(resp.unavailable, unsigned(OAUTH2_UNAVAILABLE_STORE));
  oauth2_validate_req_t v{};
  oauth2_validate_res_t res{};
  ASSERT_EQ(oauth2_validate(nullptr, auth_, &v, &Pool::alloc, &pool, &res), OAUTH2_OK);
  EXPECT_EQ(res.status, 503);
  EXPECT_EQ(res.unavailable, unsigned(OAUTH2_UNAVAILABLE_STORE));
  oauth2_response_t busy{};
  ASSERT_EQ(oauth2_refusal(loc, OAUTH2_REFUSED_BUSY, 1, &Pool::alloc, &pool, &busy), OAUTH2_OK);
  EXPECT_EQ(busy.status, 503);
  EXPECT_EQ(busy.unavailable, unsigned(OAUTH2_UNAVAILABLE_NONE));
  EXPECT_STREQ(oauth2_unavailable_name(OAUTH2_UNAVAILABLE_STORE), "store");
  EXPECT_STREQ(oauth2_unavailable_name(OAUTH2_UNAVAILABLE_MIRROR), "mirror");
  EXPECT_STREQ(oauth2_unavailable_name(OAUTH2_UNAVAILABLE_CLUSTER), "cluster");
  EXPECT_STREQ(oauth2_unavailable_name(OAUTH2_UNAVAILABLE_HASH_QUEUE), "hash_queue");
  EXPECT_STREQ(oauth2_unavailable_name(OAUTH2_UNAVAILABLE_THREAD_QUEUE), "thread_queue");
  EXPECT_STREQ(oauth2_unavailable_name(OAUTH2_UNAVAILABLE_COUNT), "");
  // the store's own errors: a full map is the store's, a mirror's file too
  EXPECT_EQ(StoreError::unavailable_reason(MDB_MAP_FULL), unsigned(OAUTH2_UNAVAILABLE_STORE));
  EXPECT_EQ(StoreError::unavailable_reason(StoreError::read_only("x").rc()),
            unsigned(OAUTH2_UNAVAILABLE_STORE));
  EXPECT_EQ(StoreError::unavailable_reason(StoreError::too_large("x").rc()),
            unsigned(OAUTH2_UNAVAILABLE_CLUSTER));
}

// ------------------------------------------------------------- rate limit

TEST_F(HandshakeTest, RateLimitIsTakenOncePerAuthenticatedCall) {
  FakeRate rate;
  auto with_rate = [&](HsReq r) {
    r.counters = rate.counters();
    r.location.rates = {{100, 60}};  // oauth2_rate_limit 100 per minute
    return r;
  };
  const std::string k = std::string("default\x1f") + "k:" + api_key_id_;  // counted per realm

  Response resp = call(with_rate(req("create/", create_body())));
  ASSERT_EQ(resp.status, 201) << resp.body;
  EXPECT_EQ(rate.keys, std::vector<std::string>{k});
  oauth2::Json j = parse_json(resp.body);
  Created c{str_at(j, {"handshake", "handshake_id"}), str_at(j, {"handshake", "handshake_token"}),
            str_at(j, {"handshake", "handshake_secret"}), ""};

  // failures of authentication are not counted
  rate.keys.clear();
  HsReq bad = with_rate(req("validate/", "{\"handshake_token\": \"" + c.token +
                                             "\", \"handshake_secret\": "
                                             "\"no\"}"));
  EXPECT_EQ(call(bad).status, 401);
  bad = with_rate(req("create/",
                      "{\"api_key\": \"nope\", \"system_name\": "
                      "\"s\", \"solution_name\": \"rental\"}"));
  EXPECT_EQ(call(bad).status, 401);
  bad = with_rate(req("validate/",
                      "{\"handshake_token\": \"x.y.z\", "
                      "\"handshake_secret\": \"s\"}"));
  EXPECT_EQ(call(bad).status, 401);
  EXPECT_TRUE(rate.keys.empty());

  // validate/ and revoke/ hold a handshake token, not the API key: they
  // count against the caller's address, never the key's budget (R83)
  HsReq ok = with_rate(req("validate/", "{\"handshake_token\": \"" + c.token +
                                            "\", \"handshake_secret\": \"" + c.secret + "\"}"));
  EXPECT_EQ(call(ok).status, 200);
  EXPECT_EQ(rate.keys, std::vector<std::string>{"default\x1f"
                                                "a:192.0.2.5"});

  // over the limit: the envelope's 429, and the handshake is not revoked
  rate.wait = 7;
  resp = call(with_rate(req("revoke/", "{\"handshake_token\": \"" + c.token + "\"}")));
  EXPECT_EQ(resp.status, 429) << resp.body;
  EXPECT_EQ(resp.retry_after, 7u);
  oauth2::Json e = parse_json(resp.body);
  EXPECT_EQ(str_at(e, {"error_code"}), "RATE_LIMITED");
  EXPECT_TRUE(json_is_false(at(e, {"success"})));
  EXPECT_EQ(json_integer_value(at(e, {"details", "retry_after"})), 7);
  EXPECT_EQ(valid(c, kNow + 1), 1);
  resp = call(with_rate(req("create/", create_body())));
  EXPECT_EQ(resp.status, 429) << resp.body;
}

}  // namespace
