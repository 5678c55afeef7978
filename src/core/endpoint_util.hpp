// Internal to the core: what the endpoint files share (request hygiene,
// client authentication, error responses, issuing token pairs).

#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "../../include/oauth2.h"
#include "codec.hpp"
#include "json.hpp"
#include "endpoints.hpp"
#include "location.hpp"
#include "login.hpp"
#include "request.hpp"
#include "store.hpp"
#include "throttle.hpp"

namespace oauth2::detail {

constexpr size_t kMaxBody = 16384;
constexpr size_t kMaxTokenLen = 4096;

// A token that would be longer than kMaxTokenLen, which no endpoint reads
// back (a JWT of an application whose scope and resources are very long):
// never issued.  GrantState::fail answers it 500 and logs why.
struct TokenTooLong : std::length_error {
  TokenTooLong()
      : std::length_error(
            "the JWT would be longer than 4096 bytes, which no endpoint reads back: the "
            "application's scope or resources are too long") {}
};
constexpr size_t kMaxSecretLen = 1024;
constexpr size_t kMaxPasswordLen = 4096;

std::string_view sv(const oauth2_str_t& s);

EndpointResult done(Response r);
Response invalid_request(std::string_view description);
Response invalid_grant(std::string_view description);
Response unavailable();
Response invalid_client(bool used_header);
// R19: a redirect_uri asked matches a registered one (exactly, or a
// loopback URI on any port: RFC 8252 7.3)
bool redirect_matches(std::string_view asked, std::string_view registered);

// invalid_client, when the client was disabled, deleted or its terms
// changed since it authenticated (in an earlier snapshot): read again in
// a grant's change, so that no grant issues to a client disabled
// meanwhile (R70), nor on terms it no longer has (made public, its grants
// or scopes changed: R35; Txn::client_as_read).  Sent again, the request
// is decided on the new ones.
std::optional<Response> refused_if_gone(Txn& txn, std::string_view realm, const Client& client,
                                        bool used_header);

// A stored grant (a code, a refresh token, a device code) about to issue
// to client: the resource narrowed to at most what the grant holds (RFC
// 8707 2.2) into *aud, and the client read again (refused_if_gone).  The
// refusal, or nullopt.
std::optional<Response> stored_grant_refusal(Txn& txn, std::string_view realm, const Client& client,
                                             bool used_header, const std::string& asked,
                                             const std::string& held, std::string* aud);

// Cluster mode: the endpoint's 503, with Retry-After, while this edge's
// mirror is staler than max_staleness (mirror_staleness): run_endpoint's
// answer for every endpoint that uses the store, as auth_oauth2's (R77).
std::optional<Response> stale_mirror(Store& store, int endpoint);

// Cluster mode: a record a browser or a resource server presents (an
// access token at userinfo, a session cookie, a user code) that this
// edge's mirror lacks may have been written on another edge a moment ago
// (behind a load balancer, a sign-in's 303 can land on another edge).
// Answered from the mirror alone it would be refused as unknown, and a
// wrong user code counted against the user.  may_catch_up: whether to
// look again for it (cluster mode, on the request's first pass);
// catch_up_and_again: off the event loop, once the mirror has caught up
// with etcd (Cluster::catch_up, the endpoint's 503 without it), the
// request runs again (OAUTH2_AGAIN), and what the mirror lacks then
// exists nowhere.
bool may_catch_up(Store& store, const Request& req);
EndpointResult catch_up_and_again(Store& store, const Request& req);
// On that next pass: the location's rate limit as the first pass counted
// it (run_endpoint counts nothing again, and answers with its
// X-RateLimit-* headers); nullopt on any other pass.
std::optional<oauth2_rate_state_t> caught_up_rate(const Request& req);

// R1-R8: POST, one form Content-Type, no query, a strict form body.
std::optional<Response> check_http(const Request& req, Form& form);

struct ClientAuth {
  std::optional<Client> client;   // set on success, and when slow
  std::optional<Response> error;  // set on failure
  // the client's secret is a slow (imported) hash: verify_slowly()
  bool slow = false;
  std::shared_ptr<std::string> secret;  // slow: the secret presented
};

// RFC 6749 2.3.1, docs/security.md R12-R18: client_secret_basic or _post, or a
// public client's bare client_id.  A read transaction.  A secret imported
// from django-oauth-toolkit 2+ (a PBKDF2 hash) is never checked here, on
// the event loop: the result is slow, and the endpoint returns
// verify_slowly(), which checks it in the thread pool and runs the
// request again with the verdict (req.c.resume).
ClientAuth authenticate_client(Store& store, const Request& req, const Form& form);
EndpointResult verify_slowly(Store& store, const Request& req, ClientAuth& auth);

// The client of an endpoint that authenticates one: authenticate_client(),
// verify_slowly() when it must, then the location's rate limit counted
// against it.  nullopt: auth.client is the client; else what to return.
std::optional<EndpointResult> client_of(Store& store, const Request& req, const Form& form,
                                        ClientAuth& auth);

// A revocation or introspection request (RFC 7009 2.1, RFC 7662 2.1):
// the form, its token and its client, authenticated and counted.
struct TokenQuery {
  Form form;
  std::string_view token;  // into form
  ClientAuth auth;
};
std::optional<EndpointResult> read_token_query(Store& store, const Request& req, TokenQuery& q);

// The scope that reaches the admin API with staff rights (R85).
constexpr std::string_view kAdminScopeName = "admin";

// What a client may be granted: its registered scope, else default_scope
// without "admin".
std::string allowed_scope(const Client& client, std::string_view default_scope);

// The scope to grant: requested if within allowed_scope(), else nullopt
// (invalid_scope).
std::optional<std::string> grant_scope(const Client& client, std::string_view requested,
                                       std::string_view default_scope);
// requested within held (both space-separated lists)
bool scope_within(std::string_view requested, std::string_view held);
// scope without item ("" if scope is malformed)
std::string scope_without(std::string_view scope, std::string_view item);
// the items of scope that held has too, in scope's order
std::string scope_intersection(std::string_view scope, std::string_view held);
// R85: the scope a stored grant (a code, a device code, a refresh JWT of
// seed 003) holds, narrowed to what client may hold now: a scope taken
// from the application since the user granted it is not issued again.
// nullopt: none of it is left.
std::optional<std::string> scope_held_now(const Client& client, std::string_view default_scope,
                                          const std::string& held);

// Seconds a token of this client lives.
int64_t access_ttl(const Client& c, int64_t default_ttl);
int64_t add_ttl(int64_t now, int64_t ttl);  // saturating

// A PendingWrite from two functions.
class FnWrite : public PendingWrite {
 public:
  FnWrite(std::function<void()> run, std::function<Response()> finish)
      : run_(std::move(run)), finish_(std::move(finish)) {}
  void run() noexcept override;
  Response finish() override { return finish_(); }

 private:
  std::function<void()> run_;
  std::function<Response()> finish_;
};

EndpointResult pending(std::function<void()> run, std::function<Response()> finish,
                       bool slow = false);

// The answer to an exception thrown while answering: fallback (the
// endpoint's 503 or 500) with what the log needs, the store's error code
// or the exception's message (never a secret: neither holds one).
Response failed(Response fallback, const std::exception& e);

// A pending write whose run() makes the response; an exception it throws
// becomes failed(fallback(), e).  slow: it hashes a password.
EndpointResult pending_response(std::function<Response()> run, Response (*fallback)() = unavailable,
                                bool slow = false);

// A new access token (and refresh token if with_refresh) for the grant,
// inserted in txn; the token response JSON.  The clear values are wiped
// when the strings go.
struct IssuedPair {
  std::string access_token;
  std::string refresh_token;  // empty if none
  std::string scope;
  int64_t expires_in = 0;
  std::string client_id;  // the client's, and the access token's
  std::string token_id;   // short_token_id, for the logs and metrics
  std::string id_token;   // OpenID Connect's, or empty
  bool dpop = false;      // bound to a DPoP key: token_type DPoP
  ~IssuedPair();
  std::string json() const;
  std::string simplejwt_json() const;  // {"refresh", "access"}
};

// What issuing needs: the location (it outlives every request of its
// configuration cycle) and what is the request's own, copied: a pending
// write outlives the shim's request struct.
struct IssueSettings {
  const Location* loc;
  std::string realm;
  int64_t now = 0;
  oauth2_counters_t counters{};
  std::string address;     // the client's (throttle_address)
  bool simplejwt = false;  // seed 003's pair: both JWTs, its claims
  std::string jkt;         // DPoP: the key the tokens are bound to
  explicit IssueSettings(const Request& req);
  // the format of this client's access tokens
  bool jwt_for(const Client& c) const;
  // the throttles of the request (use them on the event loop only)
  Throttle throttles() const {
    return Throttle(counters, loc->realm, loc->auth_limit, loc->auth_window, address);
  }
};

// refresh_scope: the refresh token's, when it differs (a narrowed refresh
// keeps the grant's full scope in the refresh token, RFC 6749 6)
// refresh_expires: the refresh token's expiry when it must not outlive its
// grant's first one (0: now + oauth2_refresh_token_ttl)
// audience: the access token's resources (RFC 8707, audience.hpp);
// refresh_audience: the refresh token's, when it differs (narrowed)
IssuedPair issue_pair(Txn& txn, const IssueSettings& s, const Client& client,
                      const std::string& scope, const std::string& user, const Family& family,
                      bool with_refresh, const std::string* refresh_scope = nullptr,
                      int64_t refresh_expires = 0, const std::string& audience = std::string(),
                      const std::string* refresh_audience = nullptr);

Family new_family();

Response ok_json(std::string body);
// ok_json naming what it issued: the grant, the client and the access
// token's short id (Response's grant, issued_client, token_id)
Response issued(const IssuedPair& pair, std::string body, const char* grant);

// The handshake envelope's refusals (handshake.cpp), for the shim's
// refusals and store failures at an oauth2_handshake location.
Response handshake_rate_limited(unsigned wait);
Response handshake_failure(int status);
Response handshake_too_large();

// Django REST framework's shapes (seed 003): {"detail": ...}
Response drf_detail(int status, std::string_view detail, const char* code = nullptr);
Response drf_throttled(unsigned wait);
Response simplejwt_bad_login();
// DRF's 405, {"detail": "Method \"GET\" not allowed."} (the shim adds
// Allow), and 415, {"detail": "Unsupported media type \"text/plain\" in
// request."}: what they quote of the request is cut to printable ASCII
Response drf_method_not_allowed(const Request& req);
Response drf_unsupported_media_type(const Request& req);

// JSON endpoints (the handshake API, seed 003): a POST whose body is one
// JSON object.  also_form: an application/x-www-form-urlencoded body is
// read as an object of strings too (Django REST framework accepts both).
enum class JsonBody { kOk, kMethod, kContentType, kTooLarge, kMalformed };
JsonBody parse_json_body(const Request& req, bool also_form, Json* out);

// The request's rate limit: false (and *retry_after) if key is over it.
bool rate_take(const Request& req, std::string_view key, unsigned* retry_after);
// the 429 when the authenticated client is over the location's limit
std::optional<Response> rate_client(const Request& req, const Client& c);

// The outcome of a pending write, set by run() on a thread, turned into a
// response by finish() on the event loop.
struct GrantState {
  Response response;
  std::string failed_user;  // counted against the user's throttle
  // The record the decision rests on (a code, a refresh token, a token to
  // revoke) is not in this store.  In cluster mode it may have been
  // written on another edge a moment ago: run_change then decides again
  // once this machine's mirror has caught up with etcd (Cluster::catch_up:
  // a round trip to etcd, 503 without it).
  bool unseen = false;
  // a write (or a token) that failed: 503 (500 for TokenTooLong) in the
  // shape of endpoint, the request's (seed 003's DRF {"detail"} at
  // /api/token/ and its refresh, RFC 6749's at the token endpoint)
  void fail(const std::exception& e, int endpoint);
};

// scope_held_now at a stored grant's redemption (a code, a device code):
// nullopt, with st's response set to invalid_scope, when none is left
std::optional<std::string> redeemed_scope(GrantState& st, const Client& client,
                                          std::string_view default_scope, const std::string& held);

// A pending write running body in the thread pool: a store failure is a
// 503 (never a 200, R53), a failed login is counted per account and per
// address.  slow: body hashes a password.
EndpointResult run_grant(const IssueSettings& settings, std::function<void(GrantState&)> body,
                         bool slow = false);

// A grant decided in one change (Store::change): body reads and writes
// through txn and says the outcome in st; it runs again, on a fresh
// state and a newer snapshot, when another write overtook what it read.
EndpointResult run_change(Store& store, const IssueSettings& s,
                          std::function<void(Txn&, GrantState&)> body, bool slow = false);
// run_change, with body run once here on the event loop (Store::prepare):
// its change then needs only a commit, which the shim batches with
// others (PendingWrite::prepared).  For bodies that are cheap (no
// password hash, no signature) and rarely overtaken; in cluster mode or
// on a mirror, run_change itself.
EndpointResult run_change_prepared(Store& store, const IssueSettings& s,
                                   std::function<void(Txn&, GrantState&)> body);

// Grants of the token endpoint (grants.cpp).  asked: the resources the
// request named (RFC 8707, audience.hpp requested_target), registered.
EndpointResult client_credentials_grant(Store& store, const Request& req, const Client& c,
                                        std::string scope, const std::string& asked);
EndpointResult authorization_code_grant(Store& store, const Request& req, const Form& form,
                                        const Client& c, const std::string& asked);
EndpointResult refresh_token_grant(Store& store, const Request& req, const Form& form,
                                   const Client& c, const std::string& asked);
EndpointResult password_grant(Store& store, const Request& req, const Form& form, const Client& c,
                              const std::string& asked);

// Who a login names (login.hpp), read on the event loop.
LoginTarget resolve_login(Store& store, std::string_view realm, std::string_view login,
                          bool by_email);

// 429 temporarily_unavailable (or the DRF shape for seed 003).
Response too_many_failures(const IssueSettings& s, unsigned wait);

// Checks a user's password off the event loop and issues a token pair to
// client for them (the password grant, oauth2_login); throttled per
// account and per address.  client_gone: the answer when the client was
// disabled or deleted while the password was checked.
EndpointResult password_flow(Store& store, const IssueSettings& s, const Client& client,
                             Response client_gone, LoginTarget target,
                             std::shared_ptr<std::string> secret, std::string granted,
                             std::string audience = std::string());

}  // namespace oauth2::detail
