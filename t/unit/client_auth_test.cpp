// Unit tests of client authentication (src/core/endpoints.cpp
// authenticate_client) on the paths where it alone decides: a disabled
// client is refused there, and no later check of the grant or the endpoint
// refuses it again.  client_credentials and the password grant check the
// client once more in their write (grants.cpp), so a test of those alone
// cannot tell whether authentication refused it; these take the other
// paths: a code's
// redemption, a refresh, a device code's poll, revocation and
// introspection.  Requirement numbers refer to docs/security.md.

#include <gtest/gtest.h>
#include <jansson.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "crypto.hpp"
#include "device.hpp"
#include "endpoints.hpp"
#include "json.hpp"
#include "location.hpp"
#include "request.hpp"
#include "store.hpp"
#include "test_helpers.hpp"

using oauth2::Client;
using oauth2::EndpointResult;
using oauth2::Response;
using oauth2::Store;
using oauth2::Token;
using oauth2::TokenType;
using oauth2::Txn;
using oauth2_test::basic;
using oauth2_test::cstr;

namespace {

constexpr int64_t kNow = 1700000000;
constexpr int64_t kTtl = 36000;
constexpr size_t kMapSize = size_t(64) << 20;
const char kSecret[] = "s3cret-of-app";
const char kRsSecret[] = "s3cret-of-resource-server";

// A form POST of the default realm, authenticated with Basic, and the
// location it reaches; its strings live as long as this object.
struct Post {
  Post(int endpoint, const std::string& credentials, std::string form)
      : authorization(basic(credentials)), body(std::move(form)) {
    c.method = cstr("POST");
    c.content_type = cstr("application/x-www-form-urlencoded");
    c.content_type_count = 1;
    c.has_authorization = 1;
    c.authorization = cstr(authorization);
    c.body = cstr(body);
    c.now = kNow;
    c.address = cstr("127.0.0.1");
    loc.endpoint = endpoint;
    loc.realm = "default";
    loc.access_token_ttl = kTtl;
    loc.default_scope = "read write";
    loc.auth_limit = 10;
    loc.auth_window = 60;
  }
  const std::string authorization;
  const std::string body;
  oauth2_request_t c{};
  oauth2::Location loc;
};

std::string json_str(const std::string& body, const char* key) {
  json_error_t err;
  oauth2::Json j(json_loadb(body.data(), body.size(), 0, &err));
  json_t* v = j ? json_object_get(j.get(), key) : nullptr;
  return json_is_string(v) ? std::string(json_string_value(v)) : std::string();
}

class ClientAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<oauth2_test::TempDir>();
    store_ = std::make_unique<Store>(dir_->path() + "/store", kMapSize);
    Client app;
    app.client_id = "app";
    app.name = "app";
    app.secret_hash = oauth2::hash_secret(kSecret);
    app.grant_types = {"authorization_code", "refresh_token", oauth2::detail::kDeviceGrant};
    app.redirect_uris = {"https://app.example.com/cb"};  // its codes' (put)
    // a resource server, which may introspect every client's tokens (R56)
    Client rs;
    rs.client_id = "rs";
    rs.name = "rs";
    rs.secret_hash = oauth2::hash_secret(kRsSecret);
    rs.grant_types = {"client_credentials"};
    rs.scope = "introspection";
    store_->change([&](Txn& txn) {
      EXPECT_TRUE(txn.put_client(app, true));
      EXPECT_TRUE(txn.put_client(rs, true));
      txn.commit();
    });
    user_ = add_user("erin");
  }

  void TearDown() override {
    store_.reset();
    dir_.reset();
  }

  oauth2::User add_user(const std::string& name) {
    oauth2::User u;
    u.username = name;
    store_->change([&](Txn& txn) {
      EXPECT_EQ(txn.put_user(u, true), oauth2::PutUser::kOk);
      txn.commit();
    });
    return u;
  }

  // the client's disabled flag, and nothing else: as `app disable` and
  // `app enable` write it (its tokens stay)
  void set_disabled(const std::string& id, bool disabled) {
    store_->change([&](Txn& txn) {
      auto c = txn.get_client("default", id);
      ASSERT_TRUE(c.has_value());
      c->disabled = disabled;
      ASSERT_TRUE(txn.put_client(*c, false));
      txn.commit();
    });
  }

  // a record of app's, for erin, issued at kNow: its value returned
  std::string put(TokenType type, uint8_t family, int64_t ttl, std::string data = "") {
    Token t;
    t.type = type;
    t.issued_at = kNow;
    t.expires_at = kNow + ttl;
    t.client_id = "app";
    t.scope = "read";
    t.user = std::to_string(user_.id);
    t.family[0] = family;
    t.data = std::move(data);
    if (type == TokenType::kCode) {
      // its request had no redirect_uri, so its redemption needs none
      t.redirect_uri = "https://app.example.com/cb";
      t.redirect_uri_omitted = true;
    }
    const std::string value = oauth2::random_token();
    store_->change([&](Txn& txn) {
      EXPECT_TRUE(txn.put_token("default", oauth2::token_id(value), t));
      txn.commit();
    });
    return value;
  }

  // The whole exchange: begin, then run() and finish() when pending.
  static Response complete(EndpointResult e) {
    if (!e.pending) return std::move(e.response);
    e.pending->run();
    return e.pending->finish();
  }

  Response token(const std::string& form) {
    Post p(OAUTH2_ENDPOINT_TOKEN, std::string("app:") + kSecret, form);
    return complete(oauth2::token_endpoint(*store_, oauth2::Request(p.c, p.loc)));
  }
  Response revoke(const std::string& tok) {
    Post p(OAUTH2_ENDPOINT_REVOKE, std::string("app:") + kSecret, "token=" + tok);
    return complete(oauth2::revoke_endpoint(*store_, oauth2::Request(p.c, p.loc)));
  }
  Response introspect(const std::string& tok) {
    Post p(OAUTH2_ENDPOINT_INTROSPECT, std::string("rs:") + kRsSecret, "token=" + tok);
    return complete(oauth2::introspect_endpoint(*store_, oauth2::Request(p.c, p.loc)));
  }

  int validate(const std::string& tok) {
    const std::string header = "Bearer " + tok;  // outlives r's view of it
    oauth2::BearerRequest r;
    r.has_authorization = true;
    r.authorization = header;
    r.now = kNow;
    return oauth2::validate(*store_, "default", r).result;
  }

  std::unique_ptr<oauth2_test::TempDir> dir_;
  std::unique_ptr<Store> store_;
  oauth2::User user_;
};

void expect_invalid_client(const Response& r) {
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(json_str(r.body, "error"), "invalid_client") << r.body;
}

// R70: a disabled client cannot obtain or refresh tokens.  An operator
// disables an application whose secret leaked or that was retired; its
// code, refresh token and approved device code are still in the store
// (disabling keeps them, to be honoured again on `app enable`), so were
// its authentication to let it through, whoever holds its secret would
// redeem, rotate and poll them for new tokens: these grants do not check
// the client again after authenticate_client.  Nothing is spent by the refusal: once
// enabled, each issues (so the 401s were the client's, not the records').
TEST_F(ClientAuthTest, ADisabledClientRedeemsRefreshesAndPollsNothingR70) {
  const std::string code = put(TokenType::kCode, 1, 60);
  const std::string refresh = put(TokenType::kRefresh, 2, kTtl);
  oauth2::detail::DeviceState approved;
  approved.status = oauth2::detail::DeviceState::kApproved;
  approved.expires = kNow + 600;
  const std::string device_code =
      put(TokenType::kDevice, 3, 900, oauth2::detail::encode_device_state(approved));
  const std::string redeem = "grant_type=authorization_code&code=" + code;
  const std::string rotate = "grant_type=refresh_token&refresh_token=" + refresh;
  const std::string poll =
      "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=" +
      device_code;

  ASSERT_NO_FATAL_FAILURE(set_disabled("app", true));
  expect_invalid_client(token(redeem));
  expect_invalid_client(token(rotate));
  expect_invalid_client(token(poll));
  EXPECT_TRUE(store_->read().client_tokens_of_type("default", "app", TokenType::kAccess).empty());

  ASSERT_NO_FATAL_FAILURE(set_disabled("app", false));
  for (const std::string& form : {redeem, rotate, poll}) {
    Response r = token(form);
    EXPECT_EQ(r.status, 200) << form << ": " << r.body;
    EXPECT_FALSE(json_str(r.body, "access_token").empty()) << r.body;
  }
}

// R88, RFC 8628 3.5: a poll within the interval of the last answered one
// is slow_down and writes nothing (the record keeps that poll's time, so
// polling flat out costs the store nothing); one at the interval is
// authorization_pending and recorded
TEST_F(ClientAuthTest, ADevicePolledWithinItsIntervalIsNotWritten) {
  oauth2::detail::DeviceState pending;
  pending.last_poll = kNow - 2;
  pending.expires = kNow + 600;
  const std::string device_code =
      put(TokenType::kDevice, 7, 900, oauth2::detail::encode_device_state(pending));
  const std::string poll =
      "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=" +
      device_code;
  auto last_poll = [&] {
    auto t = store_->read().get_token("default", oauth2::token_id(device_code));
    auto st = t ? oauth2::detail::parse_device_state(t->data) : std::nullopt;
    return st ? st->last_poll : -1;
  };
  Response r = token(poll);
  EXPECT_EQ(json_str(r.body, "error"), "slow_down") << r.body;
  EXPECT_EQ(last_poll(), kNow - 2) << "the fast poll was written";

  store_->change([&](Txn& txn) {
    auto t = txn.get_token("default", oauth2::token_id(device_code));
    ASSERT_TRUE(t);
    pending.last_poll = kNow - 5;  // the interval (5 s) has passed
    t->data = oauth2::detail::encode_device_state(pending);
    txn.update_token("default", oauth2::token_id(device_code), *t);
    txn.commit();
  });
  r = token(poll);
  EXPECT_EQ(json_str(r.body, "error"), "authorization_pending") << r.body;
  EXPECT_EQ(last_poll(), kNow) << "the poll at the interval is recorded";
}

// R70: an application disabled while its token request was in flight
// (after its authentication read it enabled, before the grant's change)
// gets nothing from its code, refresh token or approved device code: the
// change reads the client again, as client_credentials' and the password
// grant's do.  Before, it answered 200 with new tokens (revived on `app
// enable`), and spent the refresh token.  Nothing is spent by the
// refusal: enabled again, each issues.
TEST_F(ClientAuthTest, AClientDisabledWhileItsGrantWaitsGetsNothingR70) {
  const std::string code = put(TokenType::kCode, 5, 60);
  const std::string refresh = put(TokenType::kRefresh, 6, kTtl);
  oauth2::detail::DeviceState approved;
  approved.status = oauth2::detail::DeviceState::kApproved;
  approved.expires = kNow + 600;
  const std::string device_code =
      put(TokenType::kDevice, 7, 900, oauth2::detail::encode_device_state(approved));
  const std::string forms[] = {
      "grant_type=authorization_code&code=" + code,
      "grant_type=refresh_token&refresh_token=" + refresh,
      "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=" +
          device_code};
  for (const std::string& form : forms) {
    Post p(OAUTH2_ENDPOINT_TOKEN, std::string("app:") + kSecret, form);
    oauth2::Request req(p.c, p.loc);
    EndpointResult e = oauth2::token_endpoint(*store_, req);
    ASSERT_NE(e.pending, nullptr) << form;
    ASSERT_NO_FATAL_FAILURE(set_disabled("app", true));  // `app disable` meanwhile
    e.pending->run();
    expect_invalid_client(e.pending->finish());
    ASSERT_NO_FATAL_FAILURE(set_disabled("app", false));
  }
  EXPECT_TRUE(store_->read().client_tokens_of_type("default", "app", TokenType::kAccess).empty());
  for (const std::string& form : forms) {
    Response r = token(form);
    EXPECT_EQ(r.status, 200) << form << ": " << r.body;
  }
}

// R70, R51: a disabled client cannot revoke.  Its tokens open nothing
// while it is disabled, and open again on `app enable`: a revocation
// answered 200 here would have deleted them behind the operator's back, so
// that enabling the application again finds its users signed out.  The
// refusal is authentication's own (revocation checks no flag).
TEST_F(ClientAuthTest, ADisabledClientCannotRevokeR70) {
  const std::string access = put(TokenType::kAccess, 4, kTtl);
  ASSERT_EQ(validate(access), OAUTH2_VALID);

  ASSERT_NO_FATAL_FAILURE(set_disabled("app", true));
  expect_invalid_client(revoke(access));
  // an unknown token too: the 401 is the client's, not the token's
  expect_invalid_client(revoke(oauth2::random_token()));

  ASSERT_NO_FATAL_FAILURE(set_disabled("app", false));
  EXPECT_EQ(validate(access), OAUTH2_VALID) << "the refused revocation deleted the token";
  Response r = revoke(access);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(validate(access), OAUTH2_INVALID_TOKEN);
}

// R55, R56, R70: a disabled resource server cannot introspect.  With
// "introspection" in its scope it may read every client's tokens (their
// user, scope and audience); disabling it must end that, or a resource
// server that was retired, or whose secret leaked, still tells whoever
// holds its secret which tokens are live and whose they are.  introspect
// checks the token's client, never the caller's: only authentication
// refuses it.
TEST_F(ClientAuthTest, ADisabledResourceServerCannotIntrospectR70) {
  const std::string access = put(TokenType::kAccess, 5, kTtl);
  Response live = introspect(access);
  ASSERT_EQ(live.status, 200) << live.body;
  ASSERT_NE(live.body.find("\"active\": true"), std::string::npos) << live.body;

  ASSERT_NO_FATAL_FAILURE(set_disabled("rs", true));
  Response r = introspect(access);
  expect_invalid_client(r);
  EXPECT_EQ(r.body.find("erin"), std::string::npos) << r.body;
  expect_invalid_client(introspect(oauth2::random_token()));
}

}  // namespace
