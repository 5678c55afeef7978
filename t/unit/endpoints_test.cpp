// Unit tests of src/core/endpoints: the token and revocation decisions and
// bearer validation, driven with the request of include/oauth2.h and a
// location the test builds, against a real store in a temporary directory.
// Requirement numbers refer to docs/security.md; "cat. 2.x" is
// its bad-input catalogue.

#include "endpoints.hpp"

#include <gtest/gtest.h>
#include <jansson.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "codec.hpp"
#include "committer.hpp"
#include "crypto.hpp"
#include "consent.hpp"
#include "device.hpp"
#include "json.hpp"
#include "jwt.hpp"
#include "jwt_tokens.hpp"
#include "location.hpp"
#include "password.hpp"
#include "request.hpp"
#include "session.hpp"
#include "store.hpp"
#include "test_helpers.hpp"

using oauth2::Client;
using oauth2::EndpointResult;
using oauth2::Response;
using oauth2::Store;
using oauth2::Txn;
using oauth2::Validation;
using oauth2_test::basic;
using oauth2_test::cstr;

namespace {

constexpr int64_t kNow = 1700000000;
constexpr int64_t kTtl = 36000;
constexpr size_t kMapSize = size_t(64) << 20;
const char kSecret[] = "s3cret-of-app";
const char kOtherSecret[] = "s3cret-of-other";
const char kForm[] = "application/x-www-form-urlencoded";
const char kIssuer[] = "https://as.example.com";

// A request and the settings of its location (include/oauth2.h
// oauth2_request_t, src/core/location.hpp), whose strings live as long as
// this object.
struct EndpointReq {
  std::string method = "POST";
  std::string content_type = kForm;
  unsigned content_type_count = 1;
  bool has_query = false;
  std::optional<std::string> authorization;
  std::string body;
  std::string query;                       // the browser pages': without '?'
  std::string cookie;                      // their Cookie header
  const oauth2::Config* config = nullptr;  // the endpoints' paths
  int64_t now = kNow;
  oauth2_counters_t counters{};  // check NULL: no throttles
  std::string address = "127.0.0.1";

  // the location's
  std::string realm = "default";
  int64_t access_token_ttl = kTtl;
  std::string default_scope = "read write";
  unsigned auth_limit = 10;  // oauth2_client_auth_limit
  unsigned auth_window = 60;
  std::shared_ptr<oauth2::JwtKey> jwt_key;  // set: JWT access tokens (RFC 9068)

  oauth2_request_t c() const {
    oauth2_request_t r{};
    r.method = cstr(method);
    r.content_type = cstr(content_type);
    r.content_type_count = content_type_count;
    r.has_query = has_query || !query.empty();
    r.query = cstr(query);
    r.cookie = cstr(cookie);
    r.has_authorization = authorization.has_value();
    if (authorization) r.authorization = cstr(*authorization);
    r.body = cstr(body);
    r.now = now;
    r.counters = counters;
    r.address = cstr(address);
    return r;
  }

  std::unique_ptr<oauth2::Location> location(int endpoint) const {
    auto loc = std::make_unique<oauth2::Location>();
    loc->endpoint = endpoint;
    loc->realm = realm;
    loc->access_token_ttl = access_token_ttl;
    loc->default_scope = default_scope;
    loc->auth_limit = auth_limit;
    loc->auth_window = auth_window;
    loc->config = config;
    if (jwt_key) {
      loc->issuer = kIssuer;
      loc->jwt_access = true;
      loc->jwt_keys.add(jwt_key);
    }
    return loc;
  }
};

// An EndpointReq as an endpoint takes it: the request and its location,
// alive for as long as a pending write may use them.
struct Bound {
  Bound(const EndpointReq& r, int endpoint) : c(r.c()), loc(r.location(endpoint)), req(c, *loc) {}
  const oauth2_request_t c;
  const std::unique_ptr<oauth2::Location> loc;
  const oauth2::Request req;
};

// A bearer credential and the auth_oauth2 location it is shown at (its
// realm and required scopes), likewise.
struct ValidateReq {
  bool has_authorization = false;
  std::string authorization;
  std::vector<std::string> api_keys;
  std::vector<std::string> scopes;
  std::string realm = "default";
  int64_t now = kNow;
  std::shared_ptr<oauth2::JwtKey> jwt_key;  // the keys JWTs verify with
  std::string auth_audience;                // auth_oauth2_audience

  void auth(std::string header) {
    has_authorization = true;
    authorization = std::move(header);
  }

  oauth2::BearerRequest c() const {
    oauth2::BearerRequest r;
    r.has_authorization = has_authorization;
    r.authorization = authorization;
    r.api_key_count = static_cast<unsigned>(api_keys.size());
    if (!api_keys.empty()) r.api_key = api_keys.front();
    r.now = now;
    return r;
  }

  std::unique_ptr<oauth2::Location> location() const {
    auto loc = std::make_unique<oauth2::Location>();
    loc->auth = true;
    loc->realm = realm;
    loc->scopes = scopes;
    loc->auth_audience = auth_audience;
    if (jwt_key) {
      loc->issuer = kIssuer;
      loc->jwt_keys.add(jwt_key);
    }
    return loc;
  }
};

oauth2::Json parse_json(const std::string& body) {
  json_error_t err;
  return oauth2::Json(json_loadb(body.data(), body.size(), 0, &err));
}

std::string json_str(const oauth2::Json& j, const char* key) {
  json_t* v = json_object_get(j.get(), key);
  return json_is_string(v) ? std::string(json_string_value(v)) : std::string();
}

// R10: error_description is %x20-21 / %x23-5B / %x5D-7E
bool description_charset_ok(std::string_view s) {
  for (unsigned char c : s) {
    if (!(c == 0x20 || c == 0x21 || (c >= 0x23 && c <= 0x5B) || (c >= 0x5D && c <= 0x7E))) {
      return false;
    }
  }
  return true;
}

// R10: a JSON object with a spec error code, a clean description and
// nothing else.
void expect_error(const Response& r, int status, const std::string& error) {
  EXPECT_EQ(r.status, status) << r.body;
  oauth2::Json j = parse_json(r.body);
  ASSERT_TRUE(j && json_is_object(j.get())) << "not a JSON object: " << r.body;
  EXPECT_EQ(json_str(j, "error"), error) << r.body;
  const char* key;
  json_t* value;
  json_object_foreach(j.get(), key, value) {
    std::string k = key;
    EXPECT_TRUE(k == "error" || k == "error_description" || k == "error_uri")
        << "unexpected member " << k;
    ASSERT_TRUE(json_is_string(value)) << k;
    EXPECT_TRUE(description_charset_ok(json_string_value(value)))
        << k << ": " << json_string_value(value);
  }
}

class EndpointsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<oauth2_test::TempDir>();
    store_ = std::make_unique<Store>(dir_->path() + "/store", kMapSize);
    // the store's own commit at opening would end the validation cache's
    // entries at any moment of a test that compares versions
    store_->wait_opened();
    add_client("app", kSecret);
    add_client("other", kOtherSecret);
  }

  // the entry loc's validation cache would answer key with now (the
  // store's current snapshot, its validation epoch), or nullptr
  const oauth2::ValidCache::Entry* cached_entry(const oauth2::Location& loc,
                                                const oauth2::Digest& key) {
    oauth2::Txn txn = store_->read();
    return loc.valid.find(key, txn.version().store,
                          [&](uint8_t bucket) { return txn.token_valid_epoch(bucket); });
  }
  bool cached(const oauth2::Location& loc, const oauth2::Digest& key) {
    return cached_entry(loc, key) != nullptr;
  }

  void TearDown() override {
    store_.reset();
    dir_.reset();
  }

  Client add_client(const std::string& id, const std::string& secret,
                    void (*tweak)(Client&) = nullptr) {
    Client c;
    c.realm = "default";
    c.client_id = id;
    c.name = id;
    c.secret_hash = oauth2::hash_secret(secret);
    c.grant_types = {"client_credentials"};
    c.redirect_uris = {"https://app.example.com/cb"};  // code_record's
    if (tweak) tweak(c);
    store_->change([&](Txn& txn) {
      EXPECT_TRUE(txn.put_client(c, true));
      txn.commit();
    });
    return c;
  }

  void update_client(const Client& c) {
    store_->change([&](Txn& txn) {
      EXPECT_TRUE(txn.put_client(c, false));
      txn.commit();
    });
  }

  void delete_client(const std::string& id) {
    store_->change([&](Txn& txn) {
      EXPECT_TRUE(txn.delete_client("default", id));
      txn.commit();
    });
  }

  // a new active user of the default realm (its id set)
  oauth2::User add_user(const std::string& name) {
    oauth2::User u;
    u.username = name;
    store_->change([&](Txn& txn) {
      EXPECT_EQ(txn.put_user(u, true), oauth2::PutUser::kOk);
      txn.commit();
    });
    return u;
  }

  // the user's is_active, and nothing else (no revocation with it)
  void set_active(uint64_t user, bool active) {
    store_->change([&](Txn& txn) {
      auto u = txn.get_user("default", user);
      ASSERT_TRUE(u.has_value());
      u->is_active = active;
      ASSERT_EQ(txn.put_user(*u, false), oauth2::PutUser::kOk);
      txn.commit();
    });
  }

  // an authorization code's record: app's, for user, issued at kNow for
  // 60 s, its request without redirect_uri (so its redemption needs none)
  static oauth2::Token code_record(uint64_t user, uint8_t family) {
    oauth2::Token c;
    c.type = oauth2::TokenType::kCode;
    c.issued_at = kNow;
    c.expires_at = kNow + 60;
    c.client_id = "app";
    c.scope = "read";
    c.user = std::to_string(user);
    c.family[0] = family;
    c.redirect_uri = "https://app.example.com/cb";
    c.redirect_uri_omitted = true;
    return c;
  }

  // A token request authenticated with Basic for app.
  static EndpointReq token_req(std::string body = "grant_type=client_credentials") {
    EndpointReq r;
    r.authorization = basic(std::string("app:") + kSecret);
    r.body = std::move(body);
    return r;
  }

  static EndpointReq revoke_req(const std::string& token,
                                const std::string& auth = std::string("app:") + kSecret) {
    EndpointReq r;
    r.authorization = basic(auth);
    r.body = "token=" + token;
    return r;
  }

  // The whole exchange: begin, then run() and finish() when pending.
  static Response complete(EndpointResult e) {
    if (!e.pending) return std::move(e.response);
    e.pending->run();
    return e.pending->finish();
  }

  // A POST to oauth2_jwt_refresh (seed 003) of app's, with a refresh JWT
  // of user's that the store holds
  EndpointReq jwt_refresh_req(uint64_t user) {
    EndpointReq r;
    r.content_type = "application/json";
    r.jwt_key = oauth2::JwtKey::hmac(std::string(32, 'k'), "k1");
    const std::string jti = oauth2::random_token();
    oauth2::Token rt;
    rt.type = oauth2::TokenType::kRefresh;
    rt.jwt = true;
    rt.issued_at = kNow;
    rt.expires_at = kNow + kTtl;
    rt.client_id = "app";
    rt.scope = "read";
    rt.user = std::to_string(user);
    rt.family[0] = 4;
    oauth2::Json claims(json_pack("{s:s, s:I, s:I, s:s, s:I, s:s}", "token_type", "refresh", "exp",
                                  json_int_t(rt.expires_at), "iat", json_int_t(kNow), "jti",
                                  jti.c_str(), "user_id", json_int_t(user), "iss", kIssuer));
    r.body =
        std::string("{\"refresh\": \"") + oauth2::jwt_sign(*r.jwt_key, claims.get(), "JWT") + "\"}";
    store_->change([&](Txn& txn) {
      EXPECT_TRUE(txn.put_token("default", oauth2::token_id(jti), rt));
      // the application seed 003 logs in through: a refresh needs its
      // refresh_token grant and the scope the login gave (R85)
      auto app = txn.get_client("default", "app");
      ASSERT_TRUE(app);
      app->grant_types = {"client_credentials", "password", "refresh_token"};
      app->scope = "read";
      EXPECT_TRUE(txn.put_client(*app, false));
      txn.commit();
    });
    return r;
  }
  // its oauth2_jwt_refresh location, which outlives a pending change
  static std::unique_ptr<Bound> jwt_refresh_at(const EndpointReq& r) {
    auto b = std::make_unique<Bound>(r, OAUTH2_ENDPOINT_JWT_REFRESH);
    b->loc->login_client_id = "app";
    return b;
  }
  Response jwt_refresh(const EndpointReq& r) {
    auto b = jwt_refresh_at(r);
    return complete(oauth2::jwt_refresh_endpoint(*store_, b->req));
  }

  Response token(const EndpointReq& r) {
    Bound b(r, OAUTH2_ENDPOINT_TOKEN);
    return complete(oauth2::token_endpoint(*store_, b.req));
  }

  Response revoke(const EndpointReq& r) {
    Bound b(r, OAUTH2_ENDPOINT_REVOKE);
    return complete(oauth2::revoke_endpoint(*store_, b.req));
  }

  Response introspect(const EndpointReq& r) {
    Bound b(r, OAUTH2_ENDPOINT_INTROSPECT);
    return complete(oauth2::introspect_endpoint(*store_, b.req));
  }

  // Issues a token and returns it; fails the test unless 200.
  std::string issue(const EndpointReq& r) {
    Response resp = token(r);
    EXPECT_EQ(resp.status, 200) << resp.body;
    oauth2::Json j = parse_json(resp.body);
    if (!j) {
      ADD_FAILURE() << "not JSON: " << resp.body;
      return std::string();
    }
    return json_str(j, "access_token");
  }
  std::string issue() { return issue(token_req()); }

  Validation validate(const ValidateReq& r) {
    auto loc = r.location();
    return oauth2::validate(*store_, *loc, r.c());
  }
  Validation validate_bearer(const std::string& tok, int64_t now = kNow,
                             std::vector<std::string> scopes = {}) {
    ValidateReq r;
    r.auth("Bearer " + tok);
    r.now = now;
    r.scopes = std::move(scopes);
    return validate(r);
  }
  int result_for(const std::string& authorization) {
    ValidateReq r;
    r.auth(authorization);
    return validate(r).result;
  }

  std::unique_ptr<oauth2_test::TempDir> dir_;
  std::unique_ptr<Store> store_;
};

// ------------------------------------------------------- token: success

TEST_F(EndpointsTest, ClientCredentialsSuccessIsPendingThen200) {
  EndpointReq req = token_req();
  Bound b(req, OAUTH2_ENDPOINT_TOKEN);
  EndpointResult e = oauth2::token_endpoint(*store_, b.req);
  ASSERT_NE(e.pending, nullptr) << e.response.status << " " << e.response.body;
  e.pending->run();
  Response r = e.pending->finish();
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(r.basic_challenge);
  EXPECT_FALSE(r.auth_failed);
  EXPECT_EQ(r.retry_after, 0u);

  oauth2::Json j = parse_json(r.body);
  ASSERT_TRUE(j && json_is_object(j.get())) << r.body;
  std::string tok = json_str(j, "access_token");
  EXPECT_EQ(tok.size(), 43u);
  EXPECT_TRUE(oauth2::is_token68(tok));  // R44
  json_t* exp = json_object_get(j.get(), "expires_in");
  ASSERT_TRUE(json_is_integer(exp));
  EXPECT_EQ(json_integer_value(exp), kTtl);  // R45
  EXPECT_EQ(json_str(j, "token_type"), "Bearer");
  EXPECT_EQ(json_str(j, "scope"), "read write");
  EXPECT_EQ(json_object_get(j.get(), "refresh_token"), nullptr);  // R41
}

TEST_F(EndpointsTest, ClientSecretPostIsAcceptedR12) {
  EndpointReq r;
  r.body = std::string(
               "grant_type=client_credentials&client_id=app&"
               "client_secret=") +
           kSecret;
  EXPECT_FALSE(issue(r).empty());
}

TEST_F(EndpointsTest, LowercaseBasicSchemeIsAcceptedR14) {
  EndpointReq r = token_req();
  r.authorization = "basic " + oauth2_test::b64(std::string("app:") + kSecret);
  EXPECT_FALSE(issue(r).empty());
}

TEST_F(EndpointsTest, FormEncodedSecretInBasicR14) {
  const std::string secret = "a+b c&=%:";
  add_client("odd", secret);
  EndpointReq r = token_req();
  r.authorization = basic("odd:a%2Bb+c%26%3D%25%3A");
  EXPECT_FALSE(issue(r).empty());
  r.authorization = basic("odd:" + secret);  // raw: '%' is a bad escape
  expect_error(token(r), 401, "invalid_client");
}

TEST_F(EndpointsTest, UnknownParametersAreIgnoredR6) {
  EXPECT_FALSE(issue(token_req("grant_type=client_credentials&extra=foobar&x%5B%5D=1")).empty());
}

TEST_F(EndpointsTest, EachIssuedTokenIsNewR42) {
  std::string a = issue(), b = issue();
  EXPECT_FALSE(a.empty());
  EXPECT_NE(a, b);
  EXPECT_EQ(validate_bearer(a).result, OAUTH2_VALID);
  EXPECT_EQ(validate_bearer(b).result, OAUTH2_VALID);
}

TEST_F(EndpointsTest, RequestedScopeSubsetIsGranted) {
  Response r = token(token_req("grant_type=client_credentials&scope=read"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json_str(parse_json(r.body), "scope"), "read");
  // R5: scope= means no scope requested, so the default
  r = token(token_req("grant_type=client_credentials&scope="));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json_str(parse_json(r.body), "scope"), "read write");
}

TEST_F(EndpointsTest, ScopeOutsideTheAllowedSetIsInvalidScope) {
  for (std::string scope : {"admin", "read+admin", "read+read", "read++write", "+read", "read+",
                            "%22", "%5C", "READ"}) {
    expect_error(token(token_req("grant_type=client_credentials&scope=" + scope)), 400,
                 "invalid_scope");
  }
  // a control character never gets past the form decoder (R7)
  expect_error(token(token_req("grant_type=client_credentials&scope=read%09write")), 400,
               "invalid_request");
}

TEST_F(EndpointsTest, ClientScopeLimitsTheGrant) {
  Client c = *store_->read().get_client("default", "app");
  c.scope = "read";
  update_client(c);
  Response r = token(token_req());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json_str(parse_json(r.body), "scope"), "read");
  expect_error(token(token_req("grant_type=client_credentials&scope=write")), 400, "invalid_scope");
}

TEST_F(EndpointsTest, ClientTtlOverridesTheLocationTtlR45) {
  Client c = *store_->read().get_client("default", "app");
  c.access_token_ttl = 60;
  update_client(c);
  Response r = token(token_req());
  ASSERT_EQ(r.status, 200) << r.body;
  oauth2::Json j = parse_json(r.body);
  EXPECT_EQ(json_integer_value(json_object_get(j.get(), "expires_in")), 60);
  std::string tok = json_str(j, "access_token");
  EXPECT_EQ(validate_bearer(tok, kNow + 59).result, OAUTH2_VALID);
  EXPECT_EQ(validate_bearer(tok, kNow + 60).result, OAUTH2_INVALID_TOKEN);
}

TEST_F(EndpointsTest, ClientDeletedBeforeTheWriteGetsInvalidClientR70) {
  EndpointReq req = token_req();
  Bound b(req, OAUTH2_ENDPOINT_TOKEN);
  EndpointResult e = oauth2::token_endpoint(*store_, b.req);
  ASSERT_NE(e.pending, nullptr);
  delete_client("app");
  e.pending->run();
  expect_error(e.pending->finish(), 401, "invalid_client");
}

// R89: the account's lock is read when a password request comes, and the
// request then waits for the hash (2 running and 64 queued a worker).
// Guesses queued beside it may lock the account meanwhile: looked at
// again when its turn comes, it is refused as the gate refuses (429, no
// hash, no token), even with the right password, or the ceiling per
// account grows by the length of the queue.  Once the lock's window has
// passed the same password signs in: the lock refused, not the password.
TEST_F(EndpointsTest, APasswordRequestQueuedWhileItsAccountLocksIsRefusedR89) {
  add_client("pw", kSecret, [](Client& c) { c.grant_types = {"password"}; });
  oauth2::User u;
  u.username = "victim";
  u.password = oauth2::hash_password("Right-pass-of-victim-1", 1000);
  store_->change([&](Txn& txn) {
    EXPECT_EQ(txn.put_user(u, true), oauth2::PutUser::kOk);
    txn.commit();
  });
  EndpointReq req;
  req.authorization = basic(std::string("pw:") + kSecret);
  req.body = "grant_type=password&username=victim&password=Right-pass-of-victim-1";
  Bound b(req, OAUTH2_ENDPOINT_TOKEN);
  EndpointResult e = oauth2::token_endpoint(*store_, b.req);
  ASSERT_NE(e.pending, nullptr) << "the gate let it through: the account was open";
  EndpointReq wrong = req;
  wrong.body = "grant_type=password&username=victim&password=a-wrong-guess-1";
  Bound bw(wrong, OAUTH2_ENDPOINT_TOKEN);
  EndpointResult w = oauth2::token_endpoint(*store_, bw.req);
  ASSERT_NE(w.pending, nullptr);
  store_->change([&](Txn& txn) {  // the guesses beside it fill the ceiling
    oauth2::AccountLock l;
    l.window_start = kNow;
    l.failures = 100;
    l.locked_until = kNow + 3600;
    txn.put_account_lock("default", u.id, l);
    txn.commit();
  });
  e.pending->run();
  Response r = e.pending->finish();
  EXPECT_EQ(r.status, 429) << r.body;
  EXPECT_EQ(r.retry_after, 3600u);
  EXPECT_TRUE(
      store_->read().client_tokens_of_type("default", "pw", oauth2::TokenType::kAccess).empty());
  // a wrong guess queued behind the lock is not hashed at all: refused as
  // the gate refuses, not answered by its hash (400) nor counted
  w.pending->run();
  r = w.pending->finish();
  EXPECT_EQ(r.status, 429) << r.body;
  EXPECT_EQ(store_->read().get_account_lock("default", u.id)->failures, 100u);

  req.now = kNow + 3601;
  Bound later(req, OAUTH2_ENDPOINT_TOKEN);
  r = complete(oauth2::token_endpoint(*store_, later.req));
  EXPECT_EQ(r.status, 200) << r.body;
}

// Issue 11: client_credentials is decided on the event loop and its
// change committed in the shim's batch (Committer::commit_prepared, one
// write transaction): a batch where one change's reads no longer hold
// applies the others, and that one is decided afresh (here: its client
// is gone, so invalid_client, and no token of it is stored).
TEST_F(EndpointsTest, PreparedBatchAppliesTheOthersAndDecidesAConflictAfresh) {
  add_client("third", kOtherSecret);
  auto req_for = [](const std::string& id, const char* secret) {
    EndpointReq r = token_req();
    r.authorization = basic(id + ":" + secret);
    return r;
  };
  std::vector<EndpointReq> reqs = {req_for("app", kSecret), req_for("other", kOtherSecret),
                                   req_for("third", kOtherSecret)};
  std::vector<std::unique_ptr<Bound>> bound;
  std::vector<EndpointResult> results;
  for (EndpointReq& r : reqs) {
    bound.push_back(std::make_unique<Bound>(r, OAUTH2_ENDPOINT_TOKEN));
    results.push_back(oauth2::token_endpoint(*store_, bound.back()->req));
    ASSERT_NE(results.back().pending, nullptr) << results.back().response.body;
    ASSERT_NE(results.back().pending->prepared(), nullptr);
  }
  delete_client("other");  // after "other" was decided, before its commit

  const auto before = store_->committer().stats();
  std::vector<const oauth2::Change*> changes;
  for (EndpointResult& e : results) changes.push_back(e.pending->prepared());
  auto out = store_->committer().commit_prepared([&] { return changes; });
  ASSERT_EQ(out.size(), 3u);
  EXPECT_TRUE(out[0].applied);
  EXPECT_FALSE(out[1].applied);  // its client's record changed
  EXPECT_FALSE(out[1].error);
  EXPECT_TRUE(out[2].applied);
  const auto after = store_->committer().stats();
  EXPECT_EQ(after.batches - before.batches, 1u);  // one transaction, one sync
  EXPECT_EQ(after.conflicts - before.conflicts, 1u);
  for (size_t i = 0; i < 3; i++) results[i].pending->committed(out[i].applied, out[i].error);

  for (size_t i : {0u, 2u}) {
    Response r = results[i].pending->finish();
    ASSERT_EQ(r.status, 200) << r.body;
    std::string tok = json_str(parse_json(r.body), "access_token");
    EXPECT_EQ(validate_bearer(tok).result, OAUTH2_VALID);
  }
  expect_error(results[1].pending->finish(), 401, "invalid_client");
}

// cat. 2.1, R27: a token that is not a code, presented as one, is
// refused exactly like an unknown code: the answer tells nothing about
// the record it names
TEST_F(EndpointsTest, ATokenPresentedAsACodeLooksLikeAnUnknownCode) {
  Client app = *store_->read().get_client("default", "app");
  app.grant_types = {"client_credentials", "authorization_code"};
  update_client(app);
  const std::string at = issue();
  const std::string cb = "&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb";
  for (const std::string& extra : {std::string(), cb}) {
    Response as_code = token(token_req("grant_type=authorization_code&code=" + at + extra));
    Response unknown =
        token(token_req("grant_type=authorization_code&code=" + oauth2::random_token() + extra));
    expect_error(as_code, 400, "invalid_grant");
    EXPECT_EQ(as_code.body, unknown.body);
  }
  EXPECT_EQ(validate_bearer(at).result, OAUTH2_VALID);  // and it is not harmed
}

// R70: a client disabled after it authenticated, before the write: the
// change finds it disabled when it runs again, and issues nothing
TEST_F(EndpointsTest, ClientDisabledBeforeTheWriteGetsInvalidClientR70) {
  EndpointReq req = token_req();
  Bound b(req, OAUTH2_ENDPOINT_TOKEN);
  EndpointResult e = oauth2::token_endpoint(*store_, b.req);
  ASSERT_NE(e.pending, nullptr);
  Client c = *store_->read().get_client("default", "app");
  c.disabled = true;
  update_client(c);
  e.pending->run();
  Response r = e.pending->finish();
  expect_error(r, 401, "invalid_client");
  EXPECT_TRUE(r.basic_challenge) << "R15: it authenticated with Basic, whose 401 has a challenge";
  EXPECT_TRUE(
      store_->read().client_tokens_of_type("default", "app", oauth2::TokenType::kAccess).empty());
  // with its credentials in the body, the same refusal has no challenge
  c.disabled = false;
  update_client(c);
  EndpointReq post;
  post.body = std::string("grant_type=client_credentials&client_id=app&client_secret=") + kSecret;
  Bound bp(post, OAUTH2_ENDPOINT_TOKEN);
  EndpointResult ep = oauth2::token_endpoint(*store_, bp.req);
  ASSERT_NE(ep.pending, nullptr);
  c.disabled = true;
  update_client(c);
  ep.pending->run();
  Response rp = ep.pending->finish();
  expect_error(rp, 401, "invalid_client");
  EXPECT_FALSE(rp.basic_challenge);
}

// R70: a disabled user's code, refresh token and approved device code
// issue nothing, and their access token opens nothing and introspects
// inactive (RFC 7662 2.2).  The admin's writers revoke a user's tokens
// as they disable them; the grants and the validation check the user
// themselves, whatever wrote the records, so here the tokens stay and only
// the user changes.
TEST_F(EndpointsTest, ADisabledUsersTokensIssueAndOpenNothingR70) {
  Client app = *store_->read().get_client("default", "app");
  app.grant_types = {"authorization_code", "refresh_token", oauth2::detail::kDeviceGrant};
  update_client(app);
  const oauth2::User dave = add_user("dave");
  const std::string code = oauth2::random_token(), refresh = oauth2::random_token();
  const oauth2::Token c = code_record(dave.id, 1);
  oauth2::Token rt = c;
  rt.type = oauth2::TokenType::kRefresh;
  rt.expires_at = kNow + kTtl;
  rt.family[0] = 2;
  rt.redirect_uri.clear();
  rt.redirect_uri_omitted = false;
  oauth2::Token at = rt;
  at.type = oauth2::TokenType::kAccess;
  const std::string access = oauth2::random_token();
  // a device request dave approved (RFC 8628)
  oauth2::detail::DeviceState approved;
  approved.status = oauth2::detail::DeviceState::kApproved;
  approved.expires = kNow + 600;
  oauth2::Token dev = rt;
  dev.type = oauth2::TokenType::kDevice;
  dev.expires_at = kNow + 900;
  dev.family[0] = 3;
  dev.data = oauth2::detail::encode_device_state(approved);
  const std::string device_code = oauth2::random_token();
  ASSERT_NO_FATAL_FAILURE(store_->change([&](Txn& txn) {
    ASSERT_TRUE(txn.put_token("default", oauth2::token_id(code), c));
    ASSERT_TRUE(txn.put_token("default", oauth2::token_id(refresh), rt));
    ASSERT_TRUE(txn.put_token("default", oauth2::token_id(access), at));
    ASSERT_TRUE(txn.put_token("default", oauth2::token_id(device_code), dev));
    txn.commit();
  }));
  const EndpointReq redeem = token_req("grant_type=authorization_code&code=" + code);
  const EndpointReq rotate = token_req("grant_type=refresh_token&refresh_token=" + refresh);
  const EndpointReq poll =
      token_req("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=" +
                device_code);

  ASSERT_NO_FATAL_FAILURE(set_active(dave.id, false));
  expect_error(token(redeem), 400, "invalid_grant");
  expect_error(token(rotate), 400, "invalid_grant");
  expect_error(token(poll), 400, "invalid_grant");
  Validation v = validate_bearer(access);
  EXPECT_EQ(v.result, OAUTH2_INVALID_TOKEN);
  EXPECT_EQ(v.why, OAUTH2_WHY_DISABLED);
  Response in = introspect(revoke_req(access));  // app's own token
  EXPECT_EQ(in.status, 200);
  EXPECT_EQ(in.body, "{\"active\": false}");
  // none was spent by the refusal: once dave is active again, each
  // works (so the refusals above were the user's, not the records')
  ASSERT_NO_FATAL_FAILURE(set_active(dave.id, true));
  EXPECT_EQ(validate_bearer(access).result, OAUTH2_VALID);
  EXPECT_NE(introspect(revoke_req(access)).body.find("\"active\": true"), std::string::npos);
  EXPECT_FALSE(issue(redeem).empty());
  EXPECT_FALSE(issue(rotate).empty());
  EXPECT_FALSE(issue(poll).empty());
}

// R70: simplejwt's refresh (seed 003) of a disabled user gives no access
// token, and does again once the user is active: the endpoint checks the
// user itself, whatever wrote the records (the CLI also deletes them)
TEST_F(EndpointsTest, ADisabledUsersRefreshJwtGivesNothingR70) {
  const oauth2::User dave = add_user("dave");
  const EndpointReq r = jwt_refresh_req(dave.id);
  auto refresh = [&] { return jwt_refresh(r); };

  ASSERT_NO_FATAL_FAILURE(set_active(dave.id, false));
  Response refused = refresh();
  EXPECT_EQ(refused.status, 401) << refused.body;
  EXPECT_NE(refused.body.find("token_not_valid"), std::string::npos) << refused.body;
  ASSERT_NO_FATAL_FAILURE(set_active(dave.id, true));
  Response ok = refresh();
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_NE(ok.body.find("\"access\""), std::string::npos) << ok.body;
}

// R70, RFC 9449 5.2: simplejwt's refresh reads its application again in
// its change, as the token endpoint's grants do.  Disabled, or registered
// for DPoP-bound tokens, while the refresh waited, it issued an access
// token before (a Bearer one, to an application that asks for DPoP).
TEST_F(EndpointsTest, AnApplicationChangedWhileAJwtRefreshWaitsGetsNothingR70) {
  const oauth2::User erin = add_user("erin");
  const EndpointReq r = jwt_refresh_req(erin.id);
  Client app = *store_->read().get_client("default", "app");
  for (const bool dpop : {false, true}) {
    auto at = jwt_refresh_at(r);
    EndpointResult e = oauth2::jwt_refresh_endpoint(*store_, at->req);
    ASSERT_NE(e.pending, nullptr);
    Client changed = app;  // `app disable`, or `"dpop_bound_access_tokens": true`
    (dpop ? changed.dpop_bound_access_tokens : changed.disabled) = true;
    update_client(changed);
    e.pending->run();
    Response refused = e.pending->finish();
    EXPECT_EQ(refused.status, dpop ? 400 : 401) << refused.body;
    EXPECT_EQ(refused.body.find("\"access\""), std::string::npos) << refused.body;
    // and at once, before any wait, once the change is there
    EXPECT_EQ(jwt_refresh(r).status, dpop ? 400 : 401);
    update_client(app);
  }
  EXPECT_TRUE(
      store_->read().client_tokens_of_type("default", "app", oauth2::TokenType::kAccess).empty());
  Response ok = jwt_refresh(r);
  EXPECT_EQ(ok.status, 200) << ok.body;
}

// R80: expiry arithmetic must not overflow.  With a clock near the end of
// int64_t, now + ttl is signed overflow (undefined behaviour); in practice
// it wraps into the past and the client is handed a 200 whose token is
// dead on arrival.  Either refuse or clamp, but never answer 200 with a
// token that does not validate at the time it was issued.
// R28: a used code replayed after its expiry, before the expiry removes
// it, is still a second redemption: it revokes what the code issued. An
// expired code never used only says so and changes nothing.
TEST_F(EndpointsTest, AUsedCodeReplayedAfterItsExpiryRevokesItsGrantR28) {
  Client app = *store_->read().get_client("default", "app");
  app.grant_types = {"authorization_code"};
  update_client(app);
  const oauth2::User erin = add_user("erin");
  auto put_code = [&](uint8_t family) {
    const std::string code = oauth2::random_token();
    store_->change([&](Txn& txn) {
      EXPECT_TRUE(txn.put_token("default", oauth2::token_id(code), code_record(erin.id, family)));
      txn.commit();
    });
    return code;
  };
  const std::string used = put_code(7), unused = put_code(8);
  EndpointReq redeem = token_req("grant_type=authorization_code&code=" + used);
  const std::string access = issue(redeem);
  ASSERT_FALSE(access.empty());

  redeem.now = kNow + 60;  // the code's exp: expired
  Response replay = token(redeem);
  expect_error(replay, 400, "invalid_grant");
  EXPECT_NE(replay.body.find("already used"), std::string::npos) << replay.body;
  // the grant's records are gone (a revoked family is deleted)
  EXPECT_EQ(validate_bearer(access, kNow + 61).result, OAUTH2_INVALID_TOKEN);
  EXPECT_FALSE(store_->read().get_token("default", oauth2::token_id(access)).has_value());

  EndpointReq late = token_req("grant_type=authorization_code&code=" + unused);
  late.now = kNow + 60;
  Response expired = token(late);
  expect_error(expired, 400, "invalid_grant");
  EXPECT_NE(expired.body.find("has expired"), std::string::npos) << expired.body;
  auto t = store_->read().get_token("default", oauth2::token_id(unused));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->used_at, 0);  // not spent by the refusal
}

TEST_F(EndpointsTest, ExpiryArithmeticDoesNotOverflowR80) {
  EndpointReq r = token_req();
  r.now = INT64_MAX - 100;
  Response resp = token(r);
  if (resp.status != 200) return;  // refusing is acceptable
  oauth2::Json j = parse_json(resp.body);
  ASSERT_TRUE(j) << resp.body;
  std::string tok = json_str(j, "access_token");
  EXPECT_GT(json_integer_value(json_object_get(j.get(), "expires_in")), 0);
  Validation v = validate_bearer(tok, r.now);
  EXPECT_EQ(v.result, OAUTH2_VALID);
  EXPECT_GT(v.expires, r.now);
}

// ------------------------------------------------------ validate: bearer

TEST_F(EndpointsTest, IssuedTokenValidatesWithClientAndScope) {
  std::string tok = issue();
  Validation v = validate_bearer(tok);
  EXPECT_EQ(v.result, OAUTH2_VALID);
  EXPECT_EQ(v.client_id, "app");
  EXPECT_EQ(v.scope, "read write");
  EXPECT_EQ(v.user, "");
  EXPECT_EQ(v.expires, kNow + kTtl);
}

TEST_F(EndpointsTest, BearerSchemeIsCaseInsensitiveR59) {
  std::string tok = issue();
  for (const char* scheme : {"bearer ", "BEARER ", "bEaReR "}) {
    EXPECT_EQ(result_for(scheme + tok), OAUTH2_VALID) << scheme;
  }
}

TEST_F(EndpointsTest, ExpiryBoundaryIsExactR45) {
  std::string tok = issue();
  const int64_t exp = kNow + kTtl;
  EXPECT_EQ(validate_bearer(tok, exp - 1).result, OAUTH2_VALID);
  EXPECT_EQ(validate_bearer(tok, exp).result, OAUTH2_INVALID_TOKEN);
  EXPECT_EQ(validate_bearer(tok, exp + 1).result, OAUTH2_INVALID_TOKEN);
  EXPECT_EQ(validate_bearer(tok, INT64_MAX).result, OAUTH2_INVALID_TOKEN);
}

TEST_F(EndpointsTest, RequiredScopeNotHeldIsInsufficientScopeR63) {
  Response r = token(token_req("grant_type=client_credentials&scope=read"));
  ASSERT_EQ(r.status, 200);
  std::string tok = json_str(parse_json(r.body), "access_token");
  EXPECT_EQ(validate_bearer(tok, kNow, {"read"}).result, OAUTH2_VALID);
  EXPECT_EQ(validate_bearer(tok, kNow, {"write"}).result, OAUTH2_INSUFFICIENT_SCOPE);
  EXPECT_EQ(validate_bearer(tok, kNow, {"read", "write"}).result, OAUTH2_INSUFFICIENT_SCOPE);
  EXPECT_EQ(validate_bearer(tok, kNow, {"READ"}).result, OAUTH2_INSUFFICIENT_SCOPE);
  EXPECT_EQ(validate_bearer(tok, kNow, {"rea"}).result, OAUTH2_INSUFFICIENT_SCOPE);

  std::string both = issue();
  EXPECT_EQ(validate_bearer(both, kNow, {"read", "write"}).result, OAUTH2_VALID);
  EXPECT_EQ(validate_bearer(both, kNow, {"read", "admin"}).result, OAUTH2_INSUFFICIENT_SCOPE);
  // an expired token is invalid_token, not insufficient_scope
  EXPECT_EQ(validate_bearer(both, kNow + kTtl, {"admin"}).result, OAUTH2_INVALID_TOKEN);
}

TEST_F(EndpointsTest, MalformedBearerIsInvalidRequestR61) {
  std::string tok = issue();
  for (const std::string& h : std::vector<std::string>{
           std::string("Bearer"), std::string("Bearer "), std::string("bearer"), "Bearer  " + tok,
           "Bearer  x", "Bearer x y", "Bearer " + tok + " extra", "Bearer " + tok + ",",
           "Bearer tok<>", "Bearer tok%20", "Bearer a=b", "Bearer " + tok + " ",
           "Bearer \xC3\xA9"}) {
    EXPECT_EQ(result_for(h), OAUTH2_INVALID_REQUEST) << h;
  }
}

TEST_F(EndpointsTest, OddHeadersNeverValidate) {
  // cat. 2.2: whatever they map to, none of these opens the location
  std::string tok = issue();
  for (const std::string& h :
       std::vector<std::string>{std::string(""), "Bearer\t" + tok, "\tBearer " + tok,
                                " Bearer " + tok, "Bearer" + tok, "Bearer:" + tok}) {
    EXPECT_NE(result_for(h), OAUTH2_VALID) << testing::PrintToString(h);
  }
}

TEST_F(EndpointsTest, NoCredentialsIsNoTokenR60) {
  ValidateReq none;
  EXPECT_EQ(validate(none).result, OAUTH2_NO_TOKEN);
  EXPECT_EQ(result_for(basic("app:s3cret")), OAUTH2_NO_TOKEN);
  EXPECT_EQ(result_for("TokenId username=\"app\""), OAUTH2_NO_TOKEN);
}

TEST_F(EndpointsTest, UnknownOrOversizedTokenIsInvalidTokenR62) {
  issue();
  EXPECT_EQ(result_for("Bearer " + oauth2::random_token()), OAUTH2_INVALID_TOKEN);
  EXPECT_EQ(result_for("Bearer " + std::string(4097, 'a')), OAUTH2_INVALID_TOKEN);
  EXPECT_EQ(result_for("Bearer " + std::string(7 * 1024, 'a')), OAUTH2_INVALID_TOKEN);
  EXPECT_EQ(result_for("Bearer abc=="), OAUTH2_INVALID_TOKEN);
}

TEST_F(EndpointsTest, TokenIsBoundToItsRealm) {
  std::string tok = issue();
  ValidateReq r;
  r.auth("Bearer " + tok);
  r.realm = "elsewhere";
  EXPECT_EQ(validate(r).result, OAUTH2_INVALID_TOKEN);
}

TEST_F(EndpointsTest, DisabledOrDeletedClientTokensStopWorkingR70) {
  std::string tok = issue();
  Client c = *store_->read().get_client("default", "app");
  c.disabled = true;
  update_client(c);
  EXPECT_EQ(validate_bearer(tok).result, OAUTH2_INVALID_TOKEN);
  c.disabled = false;
  update_client(c);
  EXPECT_EQ(validate_bearer(tok).result, OAUTH2_VALID);
  delete_client("app");
  EXPECT_EQ(validate_bearer(tok).result, OAUTH2_INVALID_TOKEN);
}

// A location keeps the opaque tokens it found valid (ValidCache), each
// with the store's version it read them at: a hit needs that version to
// be the store's still, so every commit, whatever it changed, sends the
// next request to the store (R66: no staleness), and expiry is checked on
// every hit (R45).
TEST_F(EndpointsTest, ValidCacheAnswersOnlyWhileTheStoreIsUnchangedR66) {
  const std::string tok = issue();
  const oauth2::Digest key = oauth2::sha256(tok);
  ValidateReq r;
  r.auth("Bearer " + tok);
  const auto loc = r.location();
  auto check = [&](int64_t now) {
    ValidateReq at = r;
    at.now = now;
    return oauth2::validate(*store_, *loc, at.c());
  };
  auto kept = [&] { return cached(*loc, key); };

  EXPECT_FALSE(kept());
  Validation first = check(kNow);
  ASSERT_EQ(first.result, OAUTH2_VALID);
  ASSERT_TRUE(kept());
  Validation hit = check(kNow);  // from the entry
  EXPECT_EQ(hit.result, OAUTH2_VALID);
  EXPECT_EQ(hit.why, OAUTH2_WHY_OK);
  EXPECT_EQ(hit.client_id, first.client_id);
  EXPECT_EQ(hit.scope, first.scope);
  EXPECT_EQ(hit.user, first.user);
  EXPECT_EQ(hit.user_id, first.user_id);
  EXPECT_EQ(hit.expires, first.expires);
  EXPECT_EQ(std::string_view(hit.token_id), std::string_view(first.token_id));

  // R45: the boundary holds on a hit, with no write in between
  const int64_t exp = kNow + kTtl;
  EXPECT_EQ(check(exp - 1).result, OAUTH2_VALID);
  ASSERT_TRUE(kept());
  EXPECT_EQ(check(exp).result, OAUTH2_INVALID_TOKEN);

  // a commit that only creates records (an issuance) keeps the entry:
  // the cache goes on answering while tokens are issued
  const uint64_t epoch = store_->read().valid_epoch();
  issue();
  EXPECT_EQ(store_->read().valid_epoch(), epoch);
  EXPECT_TRUE(kept());
  EXPECT_TRUE(check(kNow).cached) << "answered from the entry";

  // R70: a client disabled after its token was kept
  Client c = *store_->read().get_client("default", "app");
  c.disabled = true;
  update_client(c);
  EXPECT_FALSE(kept());
  EXPECT_EQ(check(kNow).why, OAUTH2_WHY_DISABLED);
  c.disabled = false;
  update_client(c);
  EXPECT_EQ(check(kNow).result, OAUTH2_VALID);
  ASSERT_TRUE(kept());

  // R52: revoked after it was kept
  EXPECT_EQ(revoke(revoke_req(tok)).status, 200);
  EXPECT_FALSE(kept());
  EXPECT_EQ(check(kNow).result, OAUTH2_INVALID_TOKEN);
  EXPECT_EQ(check(kNow).why, OAUTH2_WHY_UNKNOWN);
}

// Every commit that replaces or deletes a record validation reads (a
// token of its bucket, an application, a user), whichever, ends the
// entry; one that only creates records, or writes others (meta,
// indexes), or replaces a token of another bucket, does not
// (records::feeds_validation, Invalidation).  R52, R66, R70.
TEST_F(EndpointsTest, ValidCacheEndsWithEveryReplacedOrDeletedRecordItReadsR66) {
  oauth2::User alice = add_user("alice");
  const std::string utok = "alicetoken" + std::string(32, 'a');
  oauth2::Token t;
  t.type = oauth2::TokenType::kAccess;
  t.issued_at = kNow;
  t.expires_at = kNow + kTtl;
  t.client_id = "app";
  t.scope = "read";
  t.user = std::to_string(alice.id);
  auto put = [&](const std::string& text) {
    store_->change([&](Txn& txn) {
      EXPECT_TRUE(txn.put_token("default", oauth2::token_id(text), t));
      txn.commit();
    });
  };
  put(utok);
  const oauth2::Digest key = oauth2::sha256(utok);
  // two more of alice's tokens: one of utok's bucket (the last byte of
  // its SHA-256), one of another
  std::string same, apart;
  for (int i = 0; same.empty() || apart.empty(); i++) {
    std::string text = "alicetoken" + std::to_string(i) + std::string(32, 'b');
    std::string& slot = oauth2::sha256(text).back() == key.back() ? same : apart;
    if (slot.empty()) slot = text;
  }
  put(same);
  put(apart);
  ValidateReq r;
  r.auth("Bearer " + utok);
  const auto loc = r.location();
  auto valid = [&] { return oauth2::validate(*store_, *loc, r.c()); };
  auto epoch = [&] { return store_->read().token_valid_epoch(key.back()); };
  auto check_token = [&](const std::string& text) {
    ValidateReq other;
    other.auth("Bearer " + text);
    return oauth2::validate(*store_, *loc, other.c());
  };

  ASSERT_EQ(valid().user, "alice");
  ASSERT_TRUE(cached(*loc, key));
  uint64_t e = epoch();
  // written and rewritten records validation does not read: meta
  store_->change([&](Txn& txn) {
    txn.put_meta("cache_test", "1");
    txn.commit();
  });
  store_->change([&](Txn& txn) {
    txn.put_meta("cache_test", "2");
    txn.commit();
  });
  EXPECT_EQ(epoch(), e);
  EXPECT_TRUE(cached(*loc, key));

  // the user renamed: the entry ends, and the answer names the new name
  store_->change([&](Txn& txn) {
    auto u = txn.get_user("default", alice.id);
    ASSERT_TRUE(u.has_value());
    u->username = "alicia";
    ASSERT_EQ(txn.put_user(*u, false), oauth2::PutUser::kOk);
    txn.commit();
  });
  EXPECT_GT(epoch(), e);
  EXPECT_FALSE(cached(*loc, key));
  EXPECT_EQ(valid().user, "alicia");
  ASSERT_TRUE(cached(*loc, key));

  // the user disabled, with nothing else written (R70)
  e = epoch();
  set_active(alice.id, false);
  EXPECT_GT(epoch(), e);
  EXPECT_FALSE(cached(*loc, key));
  EXPECT_EQ(valid().why, OAUTH2_WHY_DISABLED);
  set_active(alice.id, true);
  ASSERT_EQ(valid().result, OAUTH2_VALID);
  ASSERT_TRUE(cached(*loc, key));

  // another token of another bucket revoked (its record deleted): the
  // entry stays; one of its bucket, another application deleted: each
  // ends it, not only their own
  e = epoch();
  EXPECT_EQ(revoke(revoke_req(apart)).status, 200);
  EXPECT_EQ(epoch(), e);
  EXPECT_TRUE(cached(*loc, key));
  EXPECT_EQ(check_token(apart).why, OAUTH2_WHY_UNKNOWN);
  EXPECT_EQ(revoke(revoke_req(same)).status, 200);
  EXPECT_GT(epoch(), e);
  EXPECT_FALSE(cached(*loc, key));
  EXPECT_EQ(check_token(same).why, OAUTH2_WHY_UNKNOWN);
  ASSERT_EQ(valid().result, OAUTH2_VALID);
  e = epoch();
  delete_client("other");
  EXPECT_GT(epoch(), e);
  EXPECT_FALSE(cached(*loc, key));
  ASSERT_EQ(valid().result, OAUTH2_VALID);

  // its own record deleted (R52)
  store_->change([&](Txn& txn) {
    EXPECT_TRUE(txn.delete_token("default", oauth2::token_id(utok)));
    txn.commit();
  });
  EXPECT_FALSE(cached(*loc, key));
  EXPECT_EQ(valid().result, OAUTH2_INVALID_TOKEN);
}

// What is kept is this location's answer: another location, with its own
// scopes or realm, decides for itself; a refusal is never kept.
TEST_F(EndpointsTest, ValidCacheIsPerLocationAndKeepsNoRefusal) {
  Response resp = token(token_req("grant_type=client_credentials&scope=read"));
  ASSERT_EQ(resp.status, 200);
  const std::string tok = json_str(parse_json(resp.body), "access_token");
  const oauth2::Digest key = oauth2::sha256(tok);
  ValidateReq open;
  open.auth("Bearer " + tok);
  ValidateReq admin = open;
  admin.scopes = {"admin"};
  ValidateReq other = open;
  other.realm = "elsewhere";
  const auto open_loc = open.location();
  const auto admin_loc = admin.location();
  const auto other_loc = other.location();
  for (int i = 0; i < 3; i++) {
    EXPECT_EQ(oauth2::validate(*store_, *open_loc, open.c()).result, OAUTH2_VALID);
    EXPECT_EQ(oauth2::validate(*store_, *admin_loc, admin.c()).result, OAUTH2_INSUFFICIENT_SCOPE);
    EXPECT_EQ(oauth2::validate(*store_, *other_loc, other.c()).result, OAUTH2_INVALID_TOKEN);
  }
  EXPECT_TRUE(cached(*open_loc, key));
  EXPECT_FALSE(cached(*admin_loc, key));
  EXPECT_FALSE(cached(*other_loc, key));
}

// The table is fixed (oauth2_validation_cache <entries>): tokens that share
// a slot take it from each other, and each still gets its own answer;
// off keeps nothing.
TEST_F(EndpointsTest, ValidCacheSlotsAreBoundedAndNeverMixTokens) {
  EndpointReq other_req = token_req();
  other_req.authorization = basic(std::string("other:") + kOtherSecret);
  const std::string a = issue();
  const std::string b = issue(other_req);
  ValidateReq ra, rb;
  ra.auth("Bearer " + a);
  rb.auth("Bearer " + b);
  const auto loc = ra.location();
  loc->valid.set_capacity(1);  // every token in one slot
  for (int i = 0; i < 5; i++) {
    Validation va = oauth2::validate(*store_, *loc, ra.c());
    Validation vb = oauth2::validate(*store_, *loc, rb.c());
    EXPECT_EQ(va.result, OAUTH2_VALID);
    EXPECT_EQ(va.client_id, "app");
    EXPECT_EQ(vb.result, OAUTH2_VALID);
    EXPECT_EQ(vb.client_id, "other");
  }
  EXPECT_EQ(loc->valid.slots(), 1u);
  EXPECT_TRUE(cached(*loc, oauth2::sha256(b)));  // the last one
  EXPECT_FALSE(cached(*loc, oauth2::sha256(a)));

  // 200 distinct tokens through a table of 16: it stays 16
  loc->valid.set_capacity(16);
  for (int i = 0; i < 200; i++) {
    ValidateReq r;
    r.auth("Bearer " + issue());
    EXPECT_EQ(oauth2::validate(*store_, *loc, r.c()).result, OAUTH2_VALID);
  }
  EXPECT_EQ(loc->valid.slots(), 16u);

  loc->valid.set_capacity(0);  // off
  EXPECT_EQ(oauth2::validate(*store_, *loc, ra.c()).result, OAUTH2_VALID);
  EXPECT_EQ(loc->valid.slots(), 0u);
  EXPECT_FALSE(cached(*loc, oauth2::sha256(a)));
}

// The table's sets (ValidCache): a table of about twice the tokens in use
// keeps nearly all of them, where one slot a token by its hash (the table
// before) kept about four in five; a token kept again keeps its one slot;
// a full set gives up its oldest entry; and an entry whose filling did not
// end (an exception between fill_begin and fill_end) answers for nothing.
namespace {
oauth2::ValidCache::Entry* keep(oauth2::ValidCache& c, const oauth2::Digest& d) {
  oauth2::ValidCache::Entry* e = c.slot_for(d);
  oauth2::ValidCache::fill_begin(e);
  e->epoch = 7;
  oauth2::ValidCache::fill_end(e, d, 1);
  return e;
}
bool kept(const oauth2::ValidCache& c, const oauth2::Digest& d) {
  return c.find(d, 1, [](uint8_t) { return uint64_t{7}; }) != nullptr;
}
oauth2::Digest nth(int i) {
  return oauth2::sha256("token " + std::to_string(i));
}
}  // namespace

TEST(ValidCacheSets, TwiceTheTokensInUseKeepsNearlyAll) {
  oauth2::ValidCache c;
  c.set_capacity(2048);
  for (int i = 0; i < 1000; i++) keep(c, nth(i));
  int hits = 0;
  for (int i = 0; i < 1000; i++) hits += kept(c, nth(i));
  EXPECT_GE(hits, 970);
  EXPECT_EQ(c.slots(), 2048u);
}

TEST(ValidCacheSets, AFullSetGivesUpItsOldestAndATokenKeepsOneSlot) {
  oauth2::ValidCache c;
  c.set_capacity(oauth2::ValidCache::kWays);  // one set
  keep(c, nth(0));
  keep(c, nth(0));  // the same slot again
  for (size_t i = 1; i < oauth2::ValidCache::kWays; i++) keep(c, nth(static_cast<int>(i)));
  for (size_t i = 0; i < oauth2::ValidCache::kWays; i++) {
    EXPECT_TRUE(kept(c, nth(static_cast<int>(i)))) << i;
  }
  const int more = static_cast<int>(oauth2::ValidCache::kWays);
  keep(c, nth(more));  // the oldest (0) goes
  EXPECT_TRUE(kept(c, nth(more)));
  EXPECT_FALSE(kept(c, nth(0)));
  EXPECT_TRUE(kept(c, nth(1)));
  keep(c, nth(more + 1));  // then 1
  EXPECT_FALSE(kept(c, nth(1)));
  EXPECT_TRUE(kept(c, nth(2)));
  EXPECT_EQ(c.slots(), oauth2::ValidCache::kWays);
}

TEST(ValidCacheSets, AnEntryLeftHalfFilledAnswersNothing) {
  oauth2::ValidCache c;
  c.set_capacity(16);
  keep(c, nth(0));
  ASSERT_TRUE(kept(c, nth(0)));
  oauth2::ValidCache::fill_begin(c.slot_for(nth(0)));  // refilled, then thrown out of
  EXPECT_FALSE(kept(c, nth(0)));
  oauth2::ValidCache::Entry* e = c.slot_for(nth(1));  // a new token's slot, never filled
  oauth2::ValidCache::fill_begin(e);
  EXPECT_FALSE(kept(c, nth(1)));
  keep(c, nth(1));
  EXPECT_TRUE(kept(c, nth(1)));
}

// A JWT is kept by the hash of its whole text, never by its record key
// (the SHA-256 of its jti, which is also what an opaque token of the jti's
// text hashes to): a hit skips the signature and the store, and answers
// only what the full check answered, under the same rules as an opaque
// token's (R45, R52, R66); the jti shown as an opaque token opens nothing
// (R62), before or after the JWT was kept.
TEST_F(EndpointsTest, ValidCacheKeepsJwtsByTheirTextNeverByTheirJtiR62) {
  EndpointReq issue_req = token_req();
  issue_req.jwt_key = oauth2::JwtKey::hmac(std::string(32, 'k'), "k1");
  const std::string jwt = issue(issue_req);
  ASSERT_EQ(std::count(jwt.begin(), jwt.end(), '.'), 2) << jwt;
  oauth2::Json claims = oauth2::jwt_peek_claims(jwt);
  const std::string jti = json_str(claims, "jti");
  ASSERT_FALSE(jti.empty());
  ValidateReq r;
  r.auth("Bearer " + jwt);
  r.jwt_key = issue_req.jwt_key;
  const auto loc = r.location();
  ValidateReq as_opaque = r;
  as_opaque.auth("Bearer " + jti);
  const oauth2::Digest text_key = oauth2::sha256(jwt);
  const oauth2::Digest jti_key = oauth2::token_id(jti).hash;
  auto check = [&](const ValidateReq& req, int64_t now) {
    ValidateReq at = req;
    at.now = now;
    return oauth2::validate(*store_, *loc, at.c());
  };
  auto kept = [&](const oauth2::Digest& key) { return cached_entry(*loc, key); };

  EXPECT_EQ(check(as_opaque, kNow).result, OAUTH2_INVALID_TOKEN);
  Validation first = check(r, kNow);
  ASSERT_EQ(first.result, OAUTH2_VALID);
  ASSERT_NE(kept(text_key), nullptr);
  EXPECT_NE(kept(text_key)->jwt_exp, 0);
  EXPECT_EQ(kept(jti_key), nullptr);
  Validation hit = check(r, kNow);
  EXPECT_EQ(hit.result, OAUTH2_VALID);
  EXPECT_EQ(hit.client_id, "app");
  EXPECT_EQ(hit.scope, first.scope);
  EXPECT_EQ(hit.expires, first.expires);
  EXPECT_EQ(std::string_view(hit.token_id), std::string_view(first.token_id));
  EXPECT_EQ(check(as_opaque, kNow).result, OAUTH2_INVALID_TOKEN);
  EXPECT_EQ(check(as_opaque, kNow).why, OAUTH2_WHY_UNKNOWN);

  // R45 on a hit: the boundary of the record's expiry (= the JWT's exp)
  const int64_t exp = kNow + kTtl;
  EXPECT_EQ(check(r, exp - 1).result, OAUTH2_VALID);
  ASSERT_NE(kept(text_key), nullptr);
  EXPECT_EQ(check(r, exp).result, OAUTH2_INVALID_TOKEN);
  EXPECT_EQ(check(r, exp).why, OAUTH2_WHY_EXPIRED);

  // and of the JWT's own exp (with the leeway jwt_verify allows), should
  // its record outlive it
  store_->change([&](Txn& txn) {
    auto rec = txn.get_token("default", oauth2::token_id(jti));
    ASSERT_TRUE(rec);
    rec->expires_at = exp + 1000;
    EXPECT_TRUE(txn.update_token("default", oauth2::token_id(jti), *rec));
    txn.commit();
  });
  EXPECT_EQ(check(r, kNow).result, OAUTH2_VALID);
  ASSERT_NE(kept(text_key), nullptr);
  EXPECT_EQ(check(r, exp + oauth2::detail::kJwtLeeway - 1).result, OAUTH2_VALID);
  ASSERT_NE(kept(text_key), nullptr);
  EXPECT_EQ(check(r, exp + oauth2::detail::kJwtLeeway).why, OAUTH2_WHY_EXPIRED);

  // a location that refuses the JWT's audience keeps nothing
  ValidateReq other = r;
  other.auth_audience = "https://elsewhere.example.com";
  const auto other_loc = other.location();
  for (int i = 0; i < 2; i++) {
    Validation v = oauth2::validate(*store_, *other_loc, other.c());
    EXPECT_EQ(v.result, OAUTH2_INVALID_TOKEN);
    EXPECT_EQ(v.why, OAUTH2_WHY_AUDIENCE);
  }
  EXPECT_EQ(other_loc->valid.slots(), 0u);

  // R52, R66: revoked after it was kept
  EXPECT_EQ(check(r, kNow).result, OAUTH2_VALID);
  EXPECT_EQ(revoke(revoke_req(jwt)).status, 200);
  EXPECT_EQ(kept(text_key), nullptr);
  EXPECT_EQ(check(r, kNow).result, OAUTH2_INVALID_TOKEN);
  EXPECT_EQ(check(r, kNow).why, OAUTH2_WHY_REVOKED);
}

TEST_F(EndpointsTest, RefreshTokenRecordDoesNotOpenLocationsR62) {
  std::string tok = oauth2::random_token();
  oauth2::Token t;
  t.type = oauth2::TokenType::kRefresh;
  t.issued_at = kNow;
  t.expires_at = kNow + kTtl;
  t.client_id = "app";
  t.scope = "read write";
  ASSERT_NO_FATAL_FAILURE(store_->change([&](Txn& txn) {
    ASSERT_TRUE(txn.put_token("default", oauth2::token_id(tok), t));
    txn.commit();
  }));
  EXPECT_EQ(validate_bearer(tok).result, OAUTH2_INVALID_TOKEN);
}

// ------------------------------------------------------ validate: X-API-KEY

TEST_F(EndpointsTest, ApiKeyHeaderCarriesTheToken) {
  std::string tok = issue();
  ValidateReq r;
  r.api_keys = {tok};
  Validation v = validate(r);
  EXPECT_EQ(v.result, OAUTH2_VALID);
  EXPECT_EQ(v.client_id, "app");

  r.scopes = {"admin"};
  EXPECT_EQ(validate(r).result, OAUTH2_INSUFFICIENT_SCOPE);

  ValidateReq unknown;
  unknown.api_keys = {oauth2::random_token()};
  EXPECT_EQ(validate(unknown).result, OAUTH2_INVALID_TOKEN);

  ValidateReq bad;
  bad.api_keys = {"not a token"};
  EXPECT_EQ(validate(bad).result, OAUTH2_INVALID_REQUEST);

  ValidateReq empty;
  empty.api_keys = {""};
  EXPECT_EQ(validate(empty).result, OAUTH2_INVALID_REQUEST);

  // a Basic header does not stop the API key from being used
  ValidateReq with_basic;
  with_basic.auth(basic("app:x"));
  with_basic.api_keys = {tok};
  EXPECT_EQ(validate(with_basic).result, OAUTH2_VALID);
}

TEST_F(EndpointsTest, TwoTokenSourcesAreInvalidRequestR61) {
  std::string tok = issue();
  ValidateReq two_keys;
  two_keys.api_keys = {tok, tok};
  EXPECT_EQ(validate(two_keys).result, OAUTH2_INVALID_REQUEST);

  ValidateReq key_and_bearer;
  key_and_bearer.auth("Bearer " + tok);
  key_and_bearer.api_keys = {tok};
  EXPECT_EQ(validate(key_and_bearer).result, OAUTH2_INVALID_REQUEST);
}

// ------------------------------------------------------------- revocation

TEST_F(EndpointsTest, RevokeThenValidateIsInvalidTokenR52) {
  std::string tok = issue();
  ASSERT_EQ(validate_bearer(tok).result, OAUTH2_VALID);

  EndpointReq req = revoke_req(tok);
  Bound b(req, OAUTH2_ENDPOINT_REVOKE);
  EndpointResult e = oauth2::revoke_endpoint(*store_, b.req);
  ASSERT_NE(e.pending, nullptr) << e.response.status << " " << e.response.body;
  e.pending->run();
  Response r = e.pending->finish();
  EXPECT_EQ(r.status, 200);
  // {} as JSON: simple-oauth2 refuses an empty answer (issue 14 item 6)
  EXPECT_EQ(r.body, "{}");
  EXPECT_FALSE(r.html);
  EXPECT_EQ(validate_bearer(tok).result, OAUTH2_INVALID_TOKEN);
  EXPECT_FALSE(store_->read().get_token("default", oauth2::token_id(tok)));

  // R50: revoking it again looks the same
  Response again = revoke(revoke_req(tok));
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.body, r.body);
}

TEST_F(EndpointsTest, RevokeWithClientSecretPostR49) {
  std::string tok = issue();
  EndpointReq r;
  r.body = "token=" + tok + "&client_id=app&client_secret=" + kSecret;
  EXPECT_EQ(revoke(r).status, 200);
  EXPECT_EQ(validate_bearer(tok).result, OAUTH2_INVALID_TOKEN);
}

TEST_F(EndpointsTest, UnknownTokenHintIsIgnoredR48) {
  std::string tok = issue();
  EndpointReq r = revoke_req(tok);
  r.body += "&token_type_hint=foo";
  EXPECT_EQ(revoke(r).status, 200);
  EXPECT_EQ(validate_bearer(tok).result, OAUTH2_INVALID_TOKEN);
}

TEST_F(EndpointsTest, UnknownOrMalformedTokenRevokes200R50) {
  Response a = revoke(revoke_req(oauth2::random_token()));
  Response b = revoke(revoke_req("%C3%A9t%C3%A9"));              // not VSCHAR
  Response c = revoke(revoke_req(std::string(10 * 1024, 'a')));  // > 4096
  EXPECT_EQ(a.body, "{}");
  for (const Response* r : {&a, &b, &c}) {
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(r->body, a.body);
    EXPECT_FALSE(r->auth_failed);
  }
}

TEST_F(EndpointsTest, AnotherClientsTokenIsNotRevokedR51) {
  std::string tok = issue();
  Response r = revoke(revoke_req(tok, std::string("other:") + kOtherSecret));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{}");  // as for its own token: no oracle
  EXPECT_EQ(validate_bearer(tok).result, OAUTH2_VALID);
}

TEST_F(EndpointsTest, RevokeWithoutTokenIsInvalidRequestR48) {
  EndpointReq r = revoke_req("");
  r.body = "";
  expect_error(revoke(r), 400, "invalid_request");
  r.body = "token=";  // R5: empty is absent
  expect_error(revoke(r), 400, "invalid_request");
}

TEST_F(EndpointsTest, RevokeWithBadClientAuthIs401AndChangesNothingR49) {
  std::string tok = issue();
  Response r = revoke(revoke_req(tok, "app:wrong"));
  expect_error(r, 401, "invalid_client");
  EXPECT_TRUE(r.basic_challenge);
  EXPECT_EQ(validate_bearer(tok).result, OAUTH2_VALID);
}

TEST_F(EndpointsTest, RevokeChecksHttpFirstR1R3) {
  std::string tok = issue();
  EndpointReq get = revoke_req(tok);
  get.method = "GET";
  expect_error(revoke(get), 405, "invalid_request");
  EndpointReq query = revoke_req(tok);
  query.has_query = true;
  expect_error(revoke(query), 400, "invalid_request");
  EXPECT_EQ(validate_bearer(tok).result, OAUTH2_VALID);
}

// ------------------------------------------------------- token: HTTP checks

TEST_F(EndpointsTest, NonPostMethodIs405R1) {
  for (const char* m : {"GET", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS", "post", ""}) {
    EndpointReq r = token_req();
    r.method = m;
    expect_error(token(r), 405, "invalid_request");
  }
}

TEST_F(EndpointsTest, QueryStringIs400R3) {
  EndpointReq r = token_req();
  r.has_query = true;
  expect_error(token(r), 400, "invalid_request");
}

TEST_F(EndpointsTest, WrongContentTypeIs400R2) {
  for (const char* ct :
       {"application/json", "multipart/form-data; boundary=x", "text/plain", "",
        "application/x-www-form-urlencodedx", "application/x-www-form-urlencoded-x",
        "xapplication/x-www-form-urlencoded"}) {
    EndpointReq r = token_req();
    r.content_type = ct;
    expect_error(token(r), 400, "invalid_request");
  }
}

TEST_F(EndpointsTest, MissingOrRepeatedContentTypeIs400R2) {
  EndpointReq none = token_req();
  none.content_type = "";
  none.content_type_count = 0;
  expect_error(token(none), 400, "invalid_request");
  EndpointReq two = token_req();
  two.content_type_count = 2;
  expect_error(token(two), 400, "invalid_request");
}

TEST_F(EndpointsTest, ContentTypeIsCaseInsensitiveWithParametersR2) {
  for (const char* ct :
       {"APPLICATION/X-WWW-FORM-URLENCODED", "application/x-www-form-urlencoded; charset=UTF-8",
        "application/x-www-form-urlencoded;charset=ISO-8859-1",
        "Application/X-Www-Form-Urlencoded ; charset=utf-8"}) {
    EndpointReq r = token_req();
    r.content_type = ct;
    EXPECT_EQ(token(r).status, 200) << ct;
  }
}

TEST_F(EndpointsTest, OversizedBodyIs413R8) {
  EndpointReq r = token_req("grant_type=client_credentials&pad=" + std::string(16384, 'x'));
  Response resp = token(r);
  EXPECT_EQ(resp.status, 413);
}

TEST_F(EndpointsTest, MalformedBodyIs400R7) {
  for (std::string body :
       {"grant_type=client_credentials&client_id=app%00x", "grant_type=client_credentials&&", "&&&",
        "=v", "grant_type=client%5Fcredentials%", "grant_type=%C0%AF",
        "grant_type=client_credentials&grant_type=client_credentials"}) {
    expect_error(token(token_req(body)), 400, "invalid_request");
  }
}

TEST_F(EndpointsTest, MissingGrantTypeIsInvalidRequest) {
  expect_error(token(token_req("")), 400, "invalid_request");
  expect_error(token(token_req("grant_type=")), 400, "invalid_request");
  expect_error(token(token_req("scope=read")), 400, "invalid_request");
}

TEST_F(EndpointsTest, UnknownGrantIsUnsupportedGrantTypeR25) {
  // "password" is unsupported while no application may use it
  for (const char* g :
       {"password", "implicit", "urn:x", "CLIENT_CREDENTIALS", "client_credentials+"}) {
    expect_error(token(token_req(std::string("grant_type=") + g)), 400, "unsupported_grant_type");
  }
  // known grants the client is not registered for
  expect_error(token(token_req("grant_type=authorization_code&code=x")), 400,
               "unauthorized_client");
  expect_error(token(token_req("grant_type=refresh_token")), 400, "unauthorized_client");
}

// R25 (and R88: what the answer costs is remembered): the answer follows
// every write of the realm's applications, an application given the
// grant, changed, deleted, and a write of another realm's changes nothing
TEST_F(EndpointsTest, PasswordsUnsupportedFollowsTheApplicationsR25) {
  const EndpointReq pw = token_req("grant_type=password&username=u&password=p");
  expect_error(token(pw), 400, "unsupported_grant_type");
  const std::string before = store_->read().clients_version("default");
  Client other = *store_->read().get_client("default", "other");
  other.grant_types = {"client_credentials", "password"};
  update_client(other);
  EXPECT_NE(store_->read().clients_version("default"), before);
  expect_error(token(pw), 400, "unauthorized_client");
  expect_error(token(pw), 400, "unauthorized_client");  // remembered
  other.grant_types = {"client_credentials"};
  update_client(other);
  expect_error(token(pw), 400, "unsupported_grant_type");
  add_client("pw", "pw-secret-0123456789", [](Client& c) { c.grant_types = {"password"}; });
  expect_error(token(pw), 400, "unauthorized_client");
  const std::string with_pw = store_->read().clients_version("default");
  Client elsewhere = other;
  elsewhere.realm = "shop1";
  elsewhere.client_id = "shop1-app";
  store_->change([&](Txn& txn) {
    EXPECT_TRUE(txn.put_client(elsewhere, true));
    txn.commit();
  });
  EXPECT_EQ(store_->read().clients_version("default"), with_pw);
  store_->change([&](Txn& txn) {
    EXPECT_TRUE(txn.delete_client("default", "pw"));
    txn.commit();
  });
  EXPECT_NE(store_->read().clients_version("default"), with_pw);
  expect_error(token(pw), 400, "unsupported_grant_type");
}

// --------------------------------------------------- client authentication

TEST_F(EndpointsTest, WrongSecretIs401InvalidClientR15) {
  EndpointReq r = token_req();
  r.authorization = basic("app:wrong");
  Response resp = token(r);
  expect_error(resp, 401, "invalid_client");
  EXPECT_TRUE(resp.auth_failed);
  EXPECT_TRUE(resp.basic_challenge);  // the client used the header
}

TEST_F(EndpointsTest, WrongSecretInBodyHasNoBasicChallengeR15) {
  EndpointReq r;
  r.body = "grant_type=client_credentials&client_id=app&client_secret=wrong";
  Response resp = token(r);
  expect_error(resp, 401, "invalid_client");
  EXPECT_TRUE(resp.auth_failed);
  EXPECT_FALSE(resp.basic_challenge);
}

TEST_F(EndpointsTest, UnknownClientLooksLikeWrongSecretR15) {
  EndpointReq wrong = token_req();
  wrong.authorization = basic("app:wrong");
  EndpointReq unknown = token_req();
  unknown.authorization = basic(std::string("nobody:") + kSecret);
  Response a = token(wrong), b = token(unknown);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.body, b.body);
  EXPECT_EQ(a.basic_challenge, b.basic_challenge);
  EXPECT_EQ(a.auth_failed, b.auth_failed);
  EXPECT_EQ(a.retry_after, b.retry_after);
}

TEST_F(EndpointsTest, SecretOffByOneByteIsRejectedR16) {
  std::string s = kSecret;
  std::string first = s, last = s;
  first.front() ^= 1;
  last.back() ^= 1;
  for (const std::string& bad :
       {first, last, s + "x", s.substr(1), s.substr(0, s.size() - 1), std::string()}) {
    EndpointReq r = token_req();
    r.authorization = basic("app:" + bad);
    expect_error(token(r), 401, "invalid_client");
  }
}

TEST_F(EndpointsTest, MalformedBasicIs401WithChallengeR14) {
  for (const char* h : {"Basic", "Basic ", "Basic  x", "Basic !!!", "Basic Zm9v", "Basic OmZvbw==",
                        "Basic Zm9vAGJhcjpz", "Basic Zm9vOmJhcg==AAAA", "Bearer x", "TokenId x"}) {
    EndpointReq r = token_req();
    r.authorization = h;
    Response resp = token(r);
    expect_error(resp, 401, "invalid_client");
    EXPECT_TRUE(resp.basic_challenge) << h;
  }
}

TEST_F(EndpointsTest, NoClientAuthenticationIs401R18) {
  EndpointReq r;
  r.body = "grant_type=client_credentials";
  Response resp = token(r);
  expect_error(resp, 401, "invalid_client");
  EXPECT_FALSE(resp.basic_challenge);

  r.body = "grant_type=client_credentials&client_id=app";  // no secret
  expect_error(token(r), 401, "invalid_client");
}

TEST_F(EndpointsTest, TwoAuthMethodsAreInvalidRequestR13) {
  EndpointReq r = token_req(std::string("grant_type=client_credentials&"
                                        "client_secret=") +
                            kSecret);
  expect_error(token(r), 400, "invalid_request");
  r = token_req("grant_type=client_credentials&client_assertion=x");
  expect_error(token(r), 400, "invalid_request");
  r = token_req("grant_type=client_credentials&client_id=other");
  expect_error(token(r), 400, "invalid_request");
}

TEST_F(EndpointsTest, EmptyBodySecretWithBasicIsNotASecondMethodR5) {
  EXPECT_FALSE(issue(token_req("grant_type=client_credentials&client_secret=")).empty());
  EXPECT_FALSE(issue(token_req("grant_type=client_credentials&client_id=app")).empty());
}

TEST_F(EndpointsTest, RegisteredAuthMethodIsEnforcedR12) {
  add_client("basic-only", "s", [](Client& c) { c.auth_method = "client_secret_basic"; });
  add_client("post-only", "s", [](Client& c) { c.auth_method = "client_secret_post"; });
  EndpointReq r;
  r.body = "grant_type=client_credentials&client_id=basic-only&client_secret=s";
  expect_error(token(r), 401, "invalid_client");
  r.body = "grant_type=client_credentials&client_id=post-only&client_secret=s";
  EXPECT_FALSE(issue(r).empty());

  r = token_req();
  r.authorization = basic("post-only:s");
  expect_error(token(r), 401, "invalid_client");
  r.authorization = basic("basic-only:s");
  EXPECT_FALSE(issue(r).empty());
}

TEST_F(EndpointsTest, PublicClientCannotUseClientCredentialsR18R41) {
  add_client("pub", "", [](Client& c) {
    c.confidential = false;
    c.secret_hash.clear();
  });
  EndpointReq r;
  r.body = "grant_type=client_credentials&client_id=pub";
  expect_error(token(r), 401, "invalid_client");
  r.body = "grant_type=client_credentials&client_id=pub&client_secret=x";
  expect_error(token(r), 401, "invalid_client");
}

TEST_F(EndpointsTest, GrantNotRegisteredIsUnauthorizedClient) {
  add_client("code-only", "s", [](Client& c) { c.grant_types = {"authorization_code"}; });
  EndpointReq r = token_req();
  r.authorization = basic("code-only:s");
  expect_error(token(r), 400, "unauthorized_client");
}

TEST_F(EndpointsTest, DisabledClientIs401R70) {
  add_client("off", "s", [](Client& c) { c.disabled = true; });
  EndpointReq r = token_req();
  r.authorization = basic("off:s");
  Response resp = token(r);
  expect_error(resp, 401, "invalid_client");
  EXPECT_TRUE(resp.basic_challenge) << "R15: Basic's 401 carries its challenge";
}

TEST_F(EndpointsTest, OversizedClientIdIs401NotAnErrorR47) {
  for (size_t n : {201u, 512u, 4096u}) {
    EndpointReq r = token_req();
    r.authorization = basic(std::string(n, 'a') + ":s");
    expect_error(token(r), 401, "invalid_client");
    EndpointReq post;
    post.body = "grant_type=client_credentials&client_secret=s&client_id=" + std::string(n, 'a');
    expect_error(token(post), 401, "invalid_client");
  }
}

// ------------------------------------------------------------- throttling

struct ThrottleLog {
  unsigned wait = 0;  // what check() answers for every key
  std::vector<std::string> asked;
  std::vector<std::string> failed;
};

// the shim's counters of failed attempts; the location's limit is
// EndpointReq's: oauth2_client_auth_limit 10 per 60 seconds
oauth2_counters_t throttle_for(ThrottleLog* log) {
  oauth2_counters_t t{};
  t.ctx = log;
  t.check = [](void* ctx, const unsigned char* key, size_t len, unsigned, unsigned) -> unsigned {
    auto* l = static_cast<ThrottleLog*>(ctx);
    l->asked.emplace_back(reinterpret_cast<const char*>(key), len);
    return l->wait;
  };
  t.failed = [](void* ctx, const unsigned char* key, size_t len, unsigned) {
    static_cast<ThrottleLog*>(ctx)->failed.emplace_back(reinterpret_cast<const char*>(key), len);
  };
  return t;
}

// R83: a generated client secret cannot be guessed, so no throttle key is
// ever the client alone: the endpoint asks about nothing and counts
// nothing for a client of this product (the address is the caller's, in
// capi.cpp; an imported secret adds its (client, address) key)
TEST_F(EndpointsTest, AGeneratedSecretIsNeverThrottledPerClientR83) {
  ThrottleLog log;
  log.wait = 5;
  EndpointReq r = token_req();
  r.counters = throttle_for(&log);
  EXPECT_FALSE(issue(r).empty()) << "a blocked key must not refuse the client";
  EXPECT_TRUE(log.asked.empty());
  EndpointReq bad = token_req();
  bad.authorization = basic("app:wrong");
  bad.counters = throttle_for(&log);
  Response resp = token(bad);
  expect_error(resp, 401, "invalid_client");
  EXPECT_TRUE(resp.auth_failed) << "the caller counts it against the address";
  EXPECT_TRUE(log.failed.empty());
}

TEST_F(EndpointsTest, AnImportedSecretIsThrottledPerClientAndAddressR83) {
  ASSERT_NO_FATAL_FAILURE(store_->change([&](Txn& txn) {
    auto c = txn.get_client("default", "app");
    ASSERT_TRUE(c);
    c->imported_secret = true;
    ASSERT_TRUE(txn.put_client(*c, false));
    txn.commit();
  }));
  ThrottleLog log;
  EndpointReq bad = token_req();
  bad.authorization = basic("app:wrong");
  bad.counters = throttle_for(&log);
  bad.address = "192.0.2.7";
  expect_error(token(bad), 401, "invalid_client");
  ASSERT_EQ(log.failed.size(), 1u);
  EXPECT_EQ(log.failed[0],
            "default\x1f"
            "ca:app|192.0.2.7");

  log.wait = 5;
  EndpointReq good = token_req();
  good.counters = throttle_for(&log);
  good.address = "192.0.2.7";
  Response resp = token(good);
  EXPECT_EQ(resp.status, 429);
  EXPECT_EQ(resp.retry_after, 5u);
  EXPECT_EQ(log.asked.back(),
            "default\x1f"
            "ca:app|192.0.2.7");
}

// ------------------------------------ browser pages: decisions read again

// The browser pages decide on the session cookie (and a remembered
// consent) read when the request came, and write in the thread pool.  A
// sign-out, a password change or a deactivation (each ends the
// session), or the consent withdrawn on the granted-applications page,
// committed in between must stop the write: a code or a connected device
// the user no longer grants (R39, R70).  Each is staged by changing the
// store between the request and its pending write.
class PagesTest : public EndpointsTest {
 protected:
  static constexpr const char* kCb = "https://app.example.com/cb";

  void SetUp() override {
    EndpointsTest::SetUp();
    add_client("web", kSecret, [](Client& c) {
      c.grant_types = {"authorization_code", oauth2::detail::kDeviceGrant};
      c.redirect_uris = {kCb};
    });
    alice_ = add_user("alice");
    session_ = oauth2::random_token();
    oauth2::Token t;
    t.type = oauth2::TokenType::kSession;
    t.issued_at = kNow - 10;
    t.expires_at = kNow + 3600;
    t.user = std::to_string(alice_.id);
    put_token(session_, t);
    config_.add_location("default", OAUTH2_ENDPOINT_DEVICE, "/o/device/");
  }

  void put_token(const std::string& value, const oauth2::Token& t) {
    store_->change([&](Txn& txn) {
      EXPECT_TRUE(txn.put_token("default", oauth2::token_id(value), t));
      txn.commit();
    });
  }

  void end_session() {
    store_->change([&](Txn& txn) {
      EXPECT_TRUE(txn.delete_token("default", oauth2::token_id(session_)));
      txn.commit();
    });
  }

  EndpointReq page_req(const std::string& method, std::string query, std::string body = "") {
    EndpointReq r;
    r.method = method;
    r.query = std::move(query);
    r.body = std::move(body);
    r.cookie = "oauth2_session=" + session_;
    r.config = &config_;
    return r;
  }

  std::string csrf() const { return oauth2::detail::session_csrf(session_); }

  static std::string authz_query() {
    return "client_id=web&response_type=code&scope=read&state=st&redirect_uri=https%3A%2F%2F"
           "app.example.com%2Fcb";
  }

  size_t codes_of_web() {
    return store_->read().client_tokens_of_type("default", "web", oauth2::TokenType::kCode).size();
  }

  // a device request of web's, pending: its user code
  std::string pending_device() {
    EndpointReq r;
    r.body = "client_id=web";
    r.authorization = basic(std::string("web:") + kSecret);
    r.config = &config_;
    Bound b(r, OAUTH2_ENDPOINT_DEVICE_AUTHORIZATION);
    Response resp = complete(oauth2::device_authorization_endpoint(*store_, b.req));
    EXPECT_EQ(resp.status, 200) << resp.body;
    return json_str(parse_json(resp.body), "user_code");
  }

  oauth2::User alice_;
  std::string session_;
  oauth2::Config config_;
};

TEST_F(PagesTest, AllowOnASessionEndedMeanwhileGivesNoCodeR39) {
  // the staging holds: with nothing in between, Allow sends a code back
  EndpointReq ok = page_req("POST", authz_query(), "action=allow&csrf_token=" + csrf());
  Bound b0(ok, OAUTH2_ENDPOINT_AUTHORIZE);
  Response r = complete(oauth2::authorize_endpoint(*store_, b0.req));
  EXPECT_EQ(r.status, 303);
  EXPECT_EQ(r.location.rfind(std::string(kCb) + "?code=", 0), 0u) << r.location;
  EXPECT_EQ(codes_of_web(), 1u);

  EndpointReq req = page_req("POST", authz_query(), "action=allow&csrf_token=" + csrf());
  Bound b(req, OAUTH2_ENDPOINT_AUTHORIZE);
  EndpointResult e = oauth2::authorize_endpoint(*store_, b.req);
  ASSERT_NE(e.pending, nullptr);
  end_session();  // alice signs out (or her password changes) meanwhile
  e.pending->run();
  r = e.pending->finish();
  EXPECT_EQ(r.status, 303);
  EXPECT_EQ(r.location, "?" + authz_query()) << "asked again, on a sign-in page now";
  EXPECT_EQ(codes_of_web(), 1u) << "no second code";
}

// R26, R69: a session cookie is read only in the form the module sets
// (new_token(): 43 base64url characters).  The daemon's pages keep their
// sessions' records under token_id("oauth2-admin page session:" + their
// cookie), which releases before kPageSession wrote as kSession: a cookie
// of that text signed in here as the staff user, consent and all.
TEST_F(PagesTest, OnlyCookiesOfTheFormItSetsAreSessions) {
  for (int i = 0; i < 64; i++) {
    EXPECT_TRUE(oauth2::detail::is_session_value(oauth2::new_token()));
  }
  const std::string v = oauth2::new_token();
  for (const std::string& bad :
       {v.substr(1), v + "A", v.substr(1) + ".", v.substr(1) + "+", v.substr(1) + "/",
        v.substr(1) + "=", v.substr(1) + "~", "oauth2-admin page session:" + v, std::string()}) {
    EXPECT_FALSE(oauth2::detail::is_session_value(bad)) << bad;
  }

  auto signed_in = [&](const std::string& value) {
    EndpointReq req = page_req("GET", authz_query());
    req.cookie = "oauth2_session=" + value;
    Bound b(req, OAUTH2_ENDPOINT_AUTHORIZE);
    Response r = complete(oauth2::authorize_endpoint(*store_, b.req));
    return r.body.find("Signed in as") != std::string::npos;
  };
  EXPECT_TRUE(signed_in(session_)) << "the staging: alice's session signs in";
  oauth2::Token page;  // a page session's record, as the daemon wrote it before
  page.type = oauth2::TokenType::kSession;
  page.issued_at = kNow - 10;
  page.expires_at = kNow + 3600;
  page.user = std::to_string(alice_.id);
  for (const std::string& value :
       {"oauth2-admin page session:" + v, v.substr(1), v + "A", v.substr(1) + "."}) {
    put_token(value, page);
    EXPECT_FALSE(signed_in(value)) << value;
  }
}

// ... and a record of the daemon's pages' own kind is no session, under
// a cookie of any form: the authorization server's pages never read one
TEST_F(PagesTest, APageSessionRecordIsNoSignIn) {
  const std::string v = oauth2::new_token();
  oauth2::Token page;
  page.type = oauth2::TokenType::kPageSession;
  page.issued_at = kNow - 10;
  page.expires_at = kNow + 3600;
  page.user = std::to_string(alice_.id);
  put_token(v, page);
  EndpointReq req = page_req("GET", authz_query());
  req.cookie = "oauth2_session=" + v;
  Bound b(req, OAUTH2_ENDPOINT_AUTHORIZE);
  Response r = complete(oauth2::authorize_endpoint(*store_, b.req));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.find("Signed in as"), std::string::npos);
  EXPECT_NE(r.body.find("name=\"password\""), std::string::npos) << "the sign-in page";
}

// R26: a consent that expired (and was not swept yet) is not merged into
// the one the user gives now: the user saw "read" only, and the grant
// must not silently hold the old year's "write admin" again
TEST_F(PagesTest, AnExpiredConsentIsNotRevivedByANarrowerOne) {
  const int64_t year_ago = kNow - oauth2::detail::kConsentTtl - 60;
  store_->change([&](Txn& txn) {
    oauth2::detail::remember_consent(txn, "default", alice_.id, "web", "read write admin",
                                     year_ago);
    oauth2::detail::remember_consent(txn, "default", alice_.id, "web", "read", kNow);
    txn.commit();
  });
  Txn txn = store_->read();
  auto c = oauth2::detail::find_consent(txn, "default", alice_.id, "web", kNow);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->scope, "read");
  EXPECT_FALSE(oauth2::detail::consent_covers(*c, "read write admin"));
}

// a live consent is kept and widened: asking for more adds to it
TEST_F(PagesTest, ALiveConsentIsWidenedByANewOne) {
  store_->change([&](Txn& txn) {
    oauth2::detail::remember_consent(txn, "default", alice_.id, "web", "read write", kNow - 60);
    oauth2::detail::remember_consent(txn, "default", alice_.id, "web", "admin", kNow);
    txn.commit();
  });
  Txn txn = store_->read();
  auto c = oauth2::detail::find_consent(txn, "default", alice_.id, "web", kNow);
  ASSERT_TRUE(c.has_value());
  EXPECT_TRUE(oauth2::detail::consent_covers(*c, "read write admin"));
}

TEST_F(PagesTest, ARememberedConsentWithdrawnMeanwhileGivesNoCode) {
  store_->change([&](Txn& txn) {
    oauth2::detail::remember_consent(txn, "default", alice_.id, "web", "read", kNow - 5);
    txn.commit();
  });
  EndpointReq req = page_req("GET", authz_query());
  Bound b(req, OAUTH2_ENDPOINT_AUTHORIZE);
  EndpointResult e = oauth2::authorize_endpoint(*store_, b.req);
  ASSERT_NE(e.pending, nullptr) << "the remembered consent: a code without a page";
  store_->change([&](Txn& txn) {  // the granted-applications page's revoke
    EXPECT_TRUE(oauth2::detail::revoke_consent(txn, "default", alice_.id, "web"));
    txn.commit();
  });
  e.pending->run();
  Response r = e.pending->finish();
  EXPECT_EQ(r.status, 303);
  EXPECT_EQ(r.location, "?" + authz_query()) << "asked again: the consent page now";
  EXPECT_EQ(codes_of_web(), 0u);
  EXPECT_FALSE(store_->read().get_token("default", oauth2::token_id(session_)) == std::nullopt)
      << "the session itself is untouched";
}

// OpenID Connect Core 3.1.2.1: max_age=0 is prompt=login.  A session
// signed in this very second is 0 seconds old, not older than 0, and
// must sign in again all the same (prompt=none: login_required).  A
// positive max_age still counts whole seconds: a session exactly max_age
// old is fresh, one a second older is not.
TEST_F(PagesTest, MaxAgeZeroSignsInAgainInTheSameSecondOidcCore3121) {
  store_->change([&](Txn& txn) {
    oauth2::detail::remember_consent(txn, "default", alice_.id, "web", "read", kNow - 5);
    txn.commit();
  });
  const std::string now_session = oauth2::random_token();
  oauth2::Token t;
  t.type = oauth2::TokenType::kSession;
  t.issued_at = kNow;  // signed in this second: auth_time == now
  t.expires_at = kNow + 3600;
  t.user = std::to_string(alice_.id);
  put_token(now_session, t);
  auto answer = [&](const std::string& session, const std::string& extra) {
    EndpointReq req = page_req("GET", authz_query() + extra);
    req.cookie = "oauth2_session=" + session;
    Bound b(req, OAUTH2_ENDPOINT_AUTHORIZE);
    return complete(oauth2::authorize_endpoint(*store_, b.req));
  };
  const std::string code = std::string(kCb) + "?code=";
  const std::string login_required = std::string(kCb) + "?error=login_required";
  Response r = answer(now_session, "&prompt=none");
  EXPECT_EQ(r.location.rfind(code, 0), 0u) << "the staging: without max_age, a code";
  r = answer(now_session, "&max_age=0&prompt=none");
  EXPECT_EQ(r.status, 303);
  EXPECT_EQ(r.location.rfind(login_required, 0), 0u) << r.location;
  r = answer(now_session, "&max_age=0");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("name=\"password\""), std::string::npos) << "the sign-in page";
  // session_ signed in 10 s ago
  r = answer(session_, "&max_age=10&prompt=none");
  EXPECT_EQ(r.location.rfind(code, 0), 0u) << r.location;
  r = answer(session_, "&max_age=9&prompt=none");
  EXPECT_EQ(r.location.rfind(login_required, 0), 0u) << r.location;
}

TEST_F(PagesTest, ADeviceApprovedOnASessionEndedMeanwhileIsNotConnectedR39) {
  const std::string user_code = pending_device();
  ASSERT_FALSE(user_code.empty());
  EndpointReq req =
      page_req("POST", "", "action=approve&user_code=" + user_code + "&csrf_token=" + csrf());
  req.content_type = kForm;
  Bound b(req, OAUTH2_ENDPOINT_DEVICE);
  EndpointResult e = oauth2::device_endpoint(*store_, b.req);
  ASSERT_NE(e.pending, nullptr);
  end_session();
  e.pending->run();
  Response r = e.pending->finish();
  EXPECT_EQ(r.status, 303) << r.body;
  EXPECT_EQ(r.location, "?") << "back to the page, which asks to sign in";
  EXPECT_FALSE(r.auth_failed) << "not counted as a wrong user code";
  auto normalized = oauth2::detail::normalize_user_code(user_code);
  ASSERT_TRUE(normalized);
  Txn txn = store_->read();
  EXPECT_TRUE(oauth2::detail::find_user_code(txn, "default", *normalized, kNow))
      << "the request is still pending, its code unspent";
}

// The granted-applications page's revoke deletes the consent and every
// token the user holds from the application, found through the user's
// index: a token issued meanwhile (a code redeemed the same moment; in
// cluster mode, on another edge a few ms before this edge's mirror saw
// it) must make the revoke run again, not survive it (R52).  Staged with
// a change committed while the revoke's was deciding.
TEST_F(PagesTest, ARevokeOvertakenByANewTokenRunsAgainAndDeletesItR52) {
  store_->change([&](Txn& txn) {
    oauth2::detail::remember_consent(txn, "default", alice_.id, "web", "read", kNow - 5);
    txn.commit();
  });
  const std::string fresh = oauth2::random_token();
  int runs = 0;
  store_->change([&](Txn& txn) {
    runs++;
    EXPECT_TRUE(oauth2::detail::revoke_consent(txn, "default", alice_.id, "web"));
    if (runs == 1) {
      oauth2::Token t;
      t.type = oauth2::TokenType::kAccess;
      t.issued_at = kNow;
      t.expires_at = kNow + 3600;
      t.client_id = "web";
      t.scope = "read";
      t.user = std::to_string(alice_.id);
      put_token(fresh, t);
    }
    txn.commit();
  });
  EXPECT_EQ(runs, 2) << "the revoke saw the new token on its second run";
  EXPECT_FALSE(store_->read().get_token("default", oauth2::token_id(fresh)))
      << "the token issued meanwhile is revoked with the consent";
}

}  // namespace

// The token endpoint's grants are one list (include/oauth2.h
// oauth2_grant_index), which oauth2_metrics labels its series by: the
// device flow's URN among them as device_code (its tokens were counted
// as untracked), nothing else.
TEST(GrantList, EveryGrantOfTheTokenEndpointHasItsLabel) {
  const std::pair<const char*, const char*> grants[] = {
      {"client_credentials", "client_credentials"},
      {"authorization_code", "authorization_code"},
      {"refresh_token", "refresh_token"},
      {"password", "password"},
      {"urn:ietf:params:oauth:grant-type:device_code", "device_code"},
  };
  for (const auto& [grant_type, label] : grants) {
    const oauth2_str_t g = cstr(grant_type);
    const int i = oauth2_grant_index(&g);
    ASSERT_GE(i, 0) << grant_type;
    EXPECT_STREQ(oauth2_grant_label(i), label) << grant_type;
  }
  for (const char* other : {"implicit", "device_code", "", "PASSWORD"}) {
    const oauth2_str_t g = cstr(other);
    EXPECT_EQ(oauth2_grant_index(&g), -1) << other;
  }
  EXPECT_EQ(oauth2_grant_label(-1), nullptr);
  EXPECT_EQ(oauth2_grant_label(OAUTH2_GRANT_COUNT), nullptr);
}
