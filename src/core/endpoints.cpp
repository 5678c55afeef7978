#include "endpoints.hpp"

#include <algorithm>
#include <climits>
#include <cstdio>

#include "audience.hpp"
#include "cluster.hpp"
#include "codec.hpp"
#include "endpoint_table.hpp"
#include "endpoint_util.hpp"
#include "crypto.hpp"
#include "device.hpp"
#include "dpop.hpp"
#include "json.hpp"
#include "jwt_tokens.hpp"
#include "password.hpp"
#include "throttle.hpp"

namespace oauth2 {

namespace detail {

std::string_view sv(const oauth2_str_t& s) {
  return std::string_view(reinterpret_cast<const char*>(s.data), s.len);
}

EndpointResult done(Response r) {
  EndpointResult e;
  e.response = std::move(r);
  return e;
}

Response invalid_request(std::string_view description) {
  return oauth_error(400, "invalid_request", description);
}

Response unavailable() {
  Response r =
      oauth_error(503, "temporarily_unavailable", "The authorization server store is unavailable");
  r.retry_after = 1;
  return r;
}

std::optional<Response> stale_mirror(Store& store, int endpoint) {
  std::string why = mirror_staleness(store);
  if (why.empty()) return std::nullopt;
  Response r = failure_response(endpoint, 503);
  r.retry_after = 1;
  r.reason = std::move(why);
  r.store_rc = ESTALE;  // the mirror's 503 (StoreError::stale)
  return r;
}

namespace {

// catch_up_and_again's note for the request's next pass (req.c.resume):
// this, then the rate limit's state as the first pass counted it
constexpr std::string_view kCaughtUp = "caught up";

std::string caught_up_note(const oauth2_rate_state_t& st) {
  return std::string(kCaughtUp) + " " + std::to_string(st.set) + " " + std::to_string(st.limit) +
         " " + std::to_string(st.remaining) + " " + std::to_string(st.reset);
}

}  // namespace

std::optional<oauth2_rate_state_t> caught_up_rate(const Request& req) {
  const std::string note(sv(req.c.resume));
  if (note.compare(0, kCaughtUp.size(), kCaughtUp) != 0) return std::nullopt;
  oauth2_rate_state_t st{};
  long long reset = 0;
  if (std::sscanf(note.c_str() + kCaughtUp.size(), " %u %u %u %lld", &st.set, &st.limit,
                  &st.remaining, &reset) != 4) {
    return std::nullopt;
  }
  st.reset = reset;
  return st;
}

bool may_catch_up(Store& store, const Request& req) {
  return store.cluster() && !caught_up_rate(req);
}

EndpointResult catch_up_and_again(Store& store, const Request& req) {
  auto failure = std::make_shared<std::optional<Response>>();
  const int endpoint = req.loc.endpoint;
  return pending(
      [&store, failure, endpoint] {
        try {
          store.cluster()->catch_up(store);
        } catch (const std::exception& e) {
          Response r = failed(failure_response(endpoint, 503), e);
          r.retry_after = 1;
          *failure = std::move(r);
        }
      },
      [failure, note = caught_up_note(req.rate.state())] {
        if (*failure) return std::move(**failure);
        Response again;
        again.resume = note;
        return again;
      });
}

// The checks every token, revocation and introspection request passes
// first (docs/security.md R1-R8).  Fills form on success.
std::optional<Response> check_http(const Request& req, Form& form) {
  if (sv(req.c.method) != "POST") {
    Response r = invalid_request("This endpoint only accepts POST");
    r.status = 405;
    return r;
  }
  if (req.c.has_query) {
    return invalid_request("URL query parameters are not allowed");
  }
  if (req.c.content_type_count != 1) {
    return invalid_request(req.c.content_type_count == 0 ? "Content-Type is required"
                                                         : "Only one Content-Type is allowed");
  }
  if (!iequals(media_type(sv(req.c.content_type)), "application/x-www-form-urlencoded")) {
    return invalid_request("Content-Type must be application/x-www-form-urlencoded");
  }
  if (req.c.body.len > kMaxBody) {
    Response r = invalid_request("The request body is too large");
    r.status = 413;
    return r;
  }
  switch (form.parse(sv(req.c.body))) {
    case Form::Status::kOk: return std::nullopt;
    case Form::Status::kDuplicate: return invalid_request("A parameter is repeated");
    case Form::Status::kTooMany: return invalid_request("Too many parameters");
    case Form::Status::kMalformed: break;
  }
  return invalid_request("The request body is not valid form encoding");
}

JsonBody parse_json_body(const Request& req, bool also_form, Json* out) {
  if (sv(req.c.method) != "POST") return JsonBody::kMethod;
  if (req.c.content_type_count != 1) return JsonBody::kContentType;
  std::string_view type = media_type(sv(req.c.content_type));
  if (req.c.body.len > kMaxBody) return JsonBody::kTooLarge;
  std::string_view body = sv(req.c.body);
  if (iequals(type, "application/json")) {
    // docs/security.md 2.4: depth before the parser, duplicates refused
    if (json_too_deep(body, 8)) return JsonBody::kMalformed;
    Json j(json_loadb(body.data(), body.size(), JSON_REJECT_DUPLICATES, nullptr));
    if (!j || !json_is_object(j.get())) return JsonBody::kMalformed;
    *out = std::move(j);
    return JsonBody::kOk;
  }
  if (also_form && iequals(type, "application/x-www-form-urlencoded")) {
    Form form;
    if (form.parse(body) != Form::Status::kOk) return JsonBody::kMalformed;
    Json j(json_object());
    for (const auto& [k, v] : form.params()) {
      json_object_set_new(j.get(), std::string(k).c_str(), json_stringn(v.data(), v.size()));
    }
    *out = std::move(j);
    return JsonBody::kOk;
  }
  return JsonBody::kContentType;
}

// oauth2_rate_limit per client.  A confidential client's budget is its
// own: its secret proved who asks.  A public client proves nothing (its
// client_id ships in every copy of the app), so it counts per client and
// address: one address spending it cannot lock the client's other users
// out (R83).  Its key has a prefix of its own, the address (which has no
// "|") before the id, so that no client id can name another's count.
std::optional<Response> rate_client(const Request& req, const Client& c) {
  unsigned wait;
  const std::string key =
      c.confidential ? "c:" + c.client_id : "p:" + req.counted + "|" + c.client_id;
  if (rate_take(req, key, &wait)) return std::nullopt;
  return rate_limited_response(req.loc.endpoint, wait);
}

bool rate_take(const Request& req, std::string_view key, unsigned* retry_after) {
  *retry_after = req.rate.take(key);
  return *retry_after == 0;
}

// ---------------------------------------------------- client authentication

Response invalid_client(bool used_header) {
  Response r = oauth_error(401, "invalid_client", "Client authentication failed");
  r.basic_challenge = used_header;
  r.auth_failed = true;
  return r;
}

std::optional<Response> refused_if_gone(Txn& txn, std::string_view realm, const Client& client,
                                        bool used_header) {
  if (txn.client_as_read(realm, client)) return std::nullopt;
  return invalid_client(used_header);
}

namespace {

// The note a slow verification leaves for the request's next pass
// (req.c.resume): the client and the hash its secret was checked against,
// so that a secret changed in between is checked again.
std::string resume_note(const Client& c) {
  Digest d = sha256(c.secret_hash);
  return c.client_id + "\n" + hex_encode(d.data(), d.size());
}

bool slow_secret(const Client& c) {
  return is_password_hash(c.secret_hash);
}

// The credentials a request presents (RFC 6749 2.3.1): in the Authorization
// header, or in the body (a secret, or none for a public client).
struct Presented {
  std::string id;
  std::string secret;
  bool have_secret = false;
  bool used_header = false;
  std::string_view method;  // "client_secret_basic" or "_post", or empty
  ~Presented() { wipe(secret); }
};

// The header's or the body's credentials, never both (R13).
std::optional<Response> read_credentials(const Request& req, const Form& form, Presented& p) {
  p.used_header = req.c.has_authorization != 0;
  if (!p.used_header) {
    auto body_id = form.get("client_id");
    if (!body_id) {
      Response r = invalid_client(false);
      r.auth_failed = false;  // nothing was tried
      return r;
    }
    p.id = std::string(*body_id);
    if (auto s = form.get("client_secret")) {
      p.secret = std::string(*s);
      p.have_secret = true;
      p.method = "client_secret_post";
    }
    return std::nullopt;
  }
  bool is_basic = false;
  auto creds = parse_basic(sv(req.c.authorization), &is_basic);
  if (!creds) return invalid_client(true);
  WipeOnExit wipe_creds(creds->secret);
  std::optional<Response> err;
  if (form.has("client_secret") || form.has("client_assertion")) {
    err = invalid_request("Only one client authentication method may be used");
  } else if (auto body_id = form.get("client_id"); body_id && *body_id != creds->id) {
    err = invalid_request("client_id does not match the credentials");
  }
  if (err) {
    err->basic_challenge = true;
    return err;
  }
  p.id = std::move(creds->id);
  // an empty password is no secret (R5), as an empty client_secret= is
  // none: a public client that sends "id:" (golang.org/x/oauth2's
  // AuthStyleInHeader) identifies itself, as by client_id in the body
  if (!creds->secret.empty()) {
    p.secret = creds->secret;
    p.have_secret = true;
    p.method = "client_secret_basic";
  }
  return std::nullopt;
}

// A secret imported from elsewhere may be guessable: its client is
// throttled per address too (R83); a generated one never is.
std::optional<Response> imported_secret_wait(const Throttle& throttle,
                                             const std::optional<Client>& client) {
  if (!client || !client->imported_secret) return std::nullopt;
  unsigned wait = throttle.client_wait(client->client_id);
  if (!wait) return std::nullopt;
  Response r =
      oauth_error(429, "temporarily_unavailable", "Too many failed client authentications");
  r.retry_after = wait;
  r.refused = "too many failed client authentications";
  r.limited = OAUTH2_LIMITED_THROTTLE;
  return r;
}

}  // namespace

// RFC 6749 2.3.1, docs/security.md R12-R18.  Runs in a read transaction.
// Every failure costs about what a success does (a dummy decode and
// verification), so that timing does not tell which part was wrong.
ClientAuth authenticate_client(Store& store, const Request& req, const Form& form) {
  ClientAuth out;
  Presented p;
  if (auto err = read_credentials(req, form, p)) {
    out.error = std::move(err);
    return out;
  }
  if (!valid_client_id(p.id) || p.secret.size() > kMaxSecretLen) {
    verify_secret_dummy(p.secret);
    out.error = invalid_client(p.used_header);
    return out;
  }
  std::optional<Client> client;
  {
    Txn txn = store.read();
    client = txn.get_client(req.loc.realm, p.id);
  }
  const Throttle throttle = req.throttle();
  if (auto wait = imported_secret_wait(throttle, client)) {
    out.error = std::move(wait);
    return out;
  }

  bool ok;
  if (!client) client_dummy();
  if (!client || client->disabled) {
    verify_secret_dummy(p.secret);
    ok = false;
  } else if (client->confidential) {
    const bool method_ok = client->auth_method.empty() || client->auth_method == p.method;
    if (p.have_secret && method_ok && slow_secret(*client) &&
        sv(req.c.resume) != resume_note(*client)) {
      out.slow = true;
      out.secret = std::make_shared<std::string>(std::move(p.secret));
      out.client = std::move(client);
      return out;
    }
    if (slow_secret(*client)) {
      // verified off the event loop on the pass before: the note names
      // the hash it was checked against
      ok = p.have_secret && method_ok;
    } else {
      ok = p.have_secret && verify_secret(p.secret, client->secret_hash) && method_ok;
    }
  } else {
    // a public client identifies itself and has no secret to present
    verify_secret_dummy(p.secret);
    ok = !p.have_secret;
  }
  if (!ok) {
    if (client && client->imported_secret) throttle.client_failed(p.id);
    out.error = invalid_client(p.used_header);
    return out;
  }
  out.client = std::move(client);
  return out;
}

EndpointResult verify_slowly(Store& store, const Request& req, ClientAuth& auth) {
  struct State {
    std::shared_ptr<std::string> secret;
    Client client;
    bool ok = false;
  };
  auto st = std::make_shared<State>();
  st->secret = std::move(auth.secret);
  st->client = std::move(*auth.client);
  const bool used_header = req.c.has_authorization != 0;
  const Throttle throttle = req.throttle();
  return pending(
      [&store, st] {
        WipeOnExit w(*st->secret);
        try {
          st->ok = verify_secret(*st->secret, st->client.secret_hash);
          if (!st->ok || st->secret->size() < kStrongSecret) return;
          // a strong secret (kStrongSecret): the fast form from now on,
          // unless it changed
          store.change([&](Txn& txn) {
            auto c = txn.get_client(st->client.realm, st->client.client_id);
            if (!c || c->secret_hash != st->client.secret_hash) return;
            c->secret_hash = hash_secret(*st->secret);
            c->imported_secret = false;
            txn.put_client(*c, false);
            txn.commit();
          });
        } catch (const std::exception&) {
          // the verdict stands; the rehash waits for the next success
        }
      },
      [st, used_header, throttle] {
        if (!st->ok) {
          if (st->client.imported_secret) throttle.client_failed(st->client.client_id);
          return invalid_client(used_header);
        }
        Response r;
        r.resume = resume_note(st->client);
        return r;
      },
      true);
}

std::optional<EndpointResult> client_of(Store& store, const Request& req, const Form& form,
                                        ClientAuth& auth) {
  auth = authenticate_client(store, req, form);
  if (auth.error) return done(std::move(*auth.error));
  if (auth.slow) return verify_slowly(store, req, auth);
  if (auto limited = rate_client(req, *auth.client)) return done(std::move(*limited));
  return std::nullopt;
}

// --------------------------------------------------------------- issuing

std::string scope_without(std::string_view scope, std::string_view item) {
  std::vector<std::string_view> items;
  std::string out;
  if (!parse_scope(scope, &items)) return out;
  for (std::string_view s : items) {
    if (s == item) continue;
    if (!out.empty()) out.push_back(' ');
    out.append(s);
  }
  return out;
}

std::string allowed_scope(const Client& client, std::string_view default_scope) {
  if (!client.scope.empty()) return client.scope;
  // "admin" reaches the admin API: only an application registered with it
  // may have it, never one that takes the server's default (R85)
  return scope_without(default_scope, kAdminScopeName);
}

// The scope to grant: the requested one if the client may have all of it,
// else its allowed scope.  nullopt: invalid_scope.
std::optional<std::string> grant_scope(const Client& client, std::string_view requested,
                                       std::string_view default_scope) {
  const std::string allowed_str = allowed_scope(client, default_scope);
  if (requested.empty()) return allowed_str;
  if (!scope_within(requested, allowed_str)) return std::nullopt;
  return std::string(requested);
}

// ------------------------------------------------------------- revoking

Response invalid_grant(std::string_view description) {
  return oauth_error(400, "invalid_grant", description);
}

bool scope_within(std::string_view requested, std::string_view held) {
  std::vector<std::string_view> want, have;
  if (!parse_scope(requested, &want)) return false;
  if (!held.empty() && !parse_scope(held, &have)) return false;
  for (auto w : want) {
    if (std::find(have.begin(), have.end(), w) == have.end()) return false;
  }
  return true;
}

std::string scope_intersection(std::string_view scope, std::string_view held) {
  std::vector<std::string_view> items, have;
  std::string out;
  if (!parse_scope(scope, &items) || (!held.empty() && !parse_scope(held, &have))) return out;
  for (auto s : items) {
    if (std::find(have.begin(), have.end(), s) == have.end()) continue;
    if (!out.empty()) out.push_back(' ');
    out.append(s);
  }
  return out;
}

std::optional<std::string> scope_held_now(const Client& client, std::string_view default_scope,
                                          const std::string& held) {
  std::string now = scope_intersection(held, allowed_scope(client, default_scope));
  if (now.empty() && !held.empty()) return std::nullopt;
  return now;
}

int64_t access_ttl(const Client& c, int64_t default_ttl) {
  return std::max<int64_t>(1, c.access_token_ttl > 0 ? c.access_token_ttl : default_ttl);
}

IssueSettings::IssueSettings(const Request& req)
    : loc(&req.loc),
      realm(req.loc.realm),
      now(req.c.now),
      counters(req.c.counters),
      address(req.address),
      jkt(req.dpop_jkt) {}

bool IssueSettings::jwt_for(const Client& c) const {
  if (!loc->jwt_keys.signer()) return false;
  if (simplejwt || c.access_token_format == "jwt") return true;
  return loc->jwt_access && c.access_token_format != "opaque";
}

int64_t add_ttl(int64_t now, int64_t ttl) {
  // R80: saturate instead of overflowing on an absurd clock
  return now > INT64_MAX - ttl ? INT64_MAX : now + ttl;
}

void FnWrite::run() noexcept {
  try {
    run_();
  } catch (...) {
    // run_ records its own failures; nothing may escape into a thread
  }
}

EndpointResult pending(std::function<void()> run, std::function<Response()> finish, bool slow) {
  EndpointResult r;
  r.pending = std::make_unique<FnWrite>(std::move(run), std::move(finish));
  r.slow = slow;
  return r;
}

Response failed(Response fallback, const std::exception& e) {
  if (const auto* se = dynamic_cast<const StoreError*>(&e)) {
    fallback.store_rc = se->rc();
  }
  fallback.reason = e.what();
  return fallback;
}

EndpointResult pending_response(std::function<Response()> run, Response (*fallback)(), bool slow) {
  auto state = std::make_shared<Response>();
  return pending(
      [state, run = std::move(run), fallback] {
        try {
          *state = run();
        } catch (const std::exception& e) {
          *state = failed(fallback(), e);
        }
      },
      [state] { return std::move(*state); }, slow);
}

IssuedPair::~IssuedPair() {
  wipe(access_token);
  wipe(refresh_token);
}

std::string IssuedPair::json() const {
  Json j(json_object());
  json_object_set_new(j.get(), "access_token",
                      json_stringn(access_token.data(), access_token.size()));
  json_object_set_new(j.get(), "expires_in", json_integer(expires_in));
  json_object_set_new(j.get(), "token_type", json_string(dpop ? "DPoP" : "Bearer"));
  json_object_set_new(j.get(), "scope", json_stringn(scope.data(), scope.size()));
  if (!refresh_token.empty()) {
    json_object_set_new(j.get(), "refresh_token",
                        json_stringn(refresh_token.data(), refresh_token.size()));
  }
  if (!id_token.empty()) {
    json_object_set_new(j.get(), "id_token", json_stringn(id_token.data(), id_token.size()));
  }
  return json_text(j.get());
}

Family new_family() {
  Family f;
  random_bytes(f.data(), f.size());
  f[0] |= 1;  // never all zero
  return f;
}

IssuedPair issue_pair(Txn& txn, const IssueSettings& s, const Client& client,
                      const std::string& scope, const std::string& user, const Family& family,
                      bool with_refresh, const std::string* refresh_scope, int64_t refresh_expires,
                      const std::string& audience, const std::string* refresh_audience) {
  IssuedPair p;
  p.scope = scope;
  p.expires_in = access_ttl(client, s.loc->access_token_ttl);
  std::string_view realm = s.realm;

  Token at;
  at.type = TokenType::kAccess;
  at.issued_at = s.now;
  at.expires_at = add_ttl(s.now, p.expires_in);
  at.client_id = client.client_id;
  at.scope = scope;
  at.user = user;
  at.family = family;
  at.jwt = s.jwt_for(client);
  at.audience = audience;
  at.jkt = s.jkt;  // RFC 9449: bound to the proof's key
  p.dpop = !s.jkt.empty();
  TokenId at_id;
  do {
    p.access_token = new_token();  // a JWT's jti
    at_id = token_id(p.access_token);
  } while (!txn.put_new_token(realm, at_id, at));
  p.client_id = client.client_id;
  p.token_id = short_token_id(at_id);
  if (at.jwt) {
    std::string jti = std::move(p.access_token);
    p.access_token = sign_access_token(s, at, jti);
    wipe(jti);
  }

  if (with_refresh) {
    Token rt = at;
    rt.type = TokenType::kRefresh;
    rt.jwt = s.simplejwt;
    // RFC 9449 5: a public client's refresh token is bound to its key; a
    // confidential client's is bound by its authentication
    if (client.confidential) rt.jkt.clear();
    if (refresh_scope) rt.scope = *refresh_scope;
    if (refresh_audience) rt.audience = *refresh_audience;
    rt.expires_at = add_ttl(s.now, std::max<int64_t>(1, s.loc->refresh_token_ttl));
    if (refresh_expires > 0) rt.expires_at = std::min(rt.expires_at, refresh_expires);
    do {
      p.refresh_token = new_token();
    } while (!txn.put_new_token(realm, token_id(p.refresh_token), rt));
    if (rt.jwt) {
      std::string jti = std::move(p.refresh_token);
      p.refresh_token = sign_refresh_token(s, rt, jti);
      wipe(jti);
    }
  }
  return p;
}

}  // namespace detail

using namespace detail;

Response oauth_error(int status, std::string_view error, std::string_view description) {
  Json j(json_object());
  json_object_set_new(j.get(), "error", json_stringn(error.data(), error.size()));
  if (!description.empty()) {
    json_object_set_new(j.get(), "error_description",
                        json_stringn(description.data(), description.size()));
  }
  Response r;
  r.status = status;
  r.body = json_text(j.get());
  return r;
}

namespace {

// A pending write whose response names the request's grant.
class NamedGrant : public PendingWrite {
 public:
  NamedGrant(std::unique_ptr<PendingWrite> inner, std::string grant)
      : inner_(std::move(inner)), grant_(std::move(grant)) {}
  void run() noexcept override { inner_->run(); }
  const Change* prepared() const override { return inner_->prepared(); }
  void committed(bool applied, std::exception_ptr error) noexcept override {
    inner_->committed(applied, error);
  }
  Response finish() override {
    Response r = inner_->finish();
    if (r.grant.empty()) r.grant = grant_;
    return r;
  }

 private:
  std::unique_ptr<PendingWrite> inner_;
  std::string grant_;
};

// The token endpoint's answer, its grant_type named for the logs
// ($oauth2_grant) and the metrics whether it issued or refused.
EndpointResult with_grant(EndpointResult e, std::string_view grant) {
  if (e.pending) {
    e.pending = std::make_unique<NamedGrant>(std::move(e.pending), std::string(grant));
  } else if (e.response.grant.empty()) {
    e.response.grant = std::string(grant);
  }
  return e;
}

EndpointResult grant_endpoint(Store& store, const Request& req, const Form& form,
                              std::string_view grant);

}  // namespace

namespace {

// every grant_type of the token endpoint, and its label in the metrics
struct GrantName {
  std::string_view grant_type;
  const char* label;
};
constexpr GrantName kGrants[OAUTH2_GRANT_COUNT] = {
    {"client_credentials", "client_credentials"},
    {"authorization_code", "authorization_code"},
    {"refresh_token", "refresh_token"},
    {"password", "password"},
    {kDeviceGrant, "device_code"},
};

}  // namespace

int grant_index(std::string_view grant_type) {
  for (int i = 0; i < OAUTH2_GRANT_COUNT; i++) {
    if (kGrants[i].grant_type == grant_type) return i;
  }
  return -1;
}

const char* grant_label(int index) {
  return index >= 0 && index < OAUTH2_GRANT_COUNT ? kGrants[index].label : nullptr;
}

EndpointResult token_endpoint(Store& store, const Request& req) {
  Form form;
  if (auto err = check_http(req, form)) return done(std::move(*err));

  auto grant = form.get("grant_type");
  if (!grant) return done(invalid_request("grant_type is required"));
  if (grant_index(*grant) < 0) {
    return done(oauth_error(400, "unsupported_grant_type", "The grant type is not supported"));
  }
  return with_grant(grant_endpoint(store, req, form, *grant), *grant);
}

namespace {

EndpointResult grant_endpoint(Store& store, const Request& req, const Form& form,
                              std::string_view grant) {
  ClientAuth auth;
  if (auto refused = client_of(store, req, form, auth)) return std::move(*refused);
  const Client& client = *auth.client;
  // RFC 8707 2: only resources the client is registered for; nothing is
  // stored for a refused one
  Target target = requested_target(form, client);
  if (target.error) return done(oauth_error(400, target.error, target.description));
  const std::string& asked = target.audience;
  DpopGrant dpop = dpop_token_request(req, client);
  if (dpop.refused) return done(std::move(*dpop.refused));
  req.dpop_jkt = std::move(dpop.jkt);

  if (grant == "authorization_code") {
    return authorization_code_grant(store, req, form, client, asked);
  }
  if (grant == "refresh_token") {
    return refresh_token_grant(store, req, form, client, asked);
  }
  if (grant == "password") return password_grant(store, req, form, client, asked);
  if (grant == kDeviceGrant) return device_code_grant(store, req, form, client, asked);

  // RFC 6749 4.4: confidential clients only
  if (!client.confidential) return done(invalid_client(req.c.has_authorization));
  if (!client.allows_grant("client_credentials")) {
    return done(oauth_error(400, "unauthorized_client", "The client may not use this grant type"));
  }

  auto scope = grant_scope(client, form.get("scope").value_or(""), req.loc.default_scope);
  if (!scope) {
    return done(oauth_error(400, "invalid_scope", "The requested scope is invalid or not allowed"));
  }

  return client_credentials_grant(store, req, client, std::move(*scope), asked);
}

}  // namespace

std::optional<EndpointResult> detail::read_token_query(Store& store, const Request& req,
                                                       TokenQuery& q) {
  if (auto err = check_http(req, q.form)) return done(std::move(*err));
  auto token = q.form.get("token");
  if (!token) return done(invalid_request("token is required"));
  q.token = *token;
  return client_of(store, req, q.form, q.auth);
}

namespace {
constexpr const char* kRevokedBody = "{}";
}  // namespace

EndpointResult revoke_endpoint(Store& store, const Request& req) {
  TokenQuery q;
  if (auto refused = read_token_query(store, req, q)) return std::move(*refused);
  const std::string_view token = q.token;
  const ClientAuth& auth = q.auth;

  // RFC 7009 2.2: the client ignores the body.  {} as JSON, because some
  // clients parse every answer (simple-oauth2's @hapi/wreck refuses one
  // without a JSON Content-Type); the same for every 200 here (R50, R51)
  const Response ok = ok_json(kRevokedBody);
  // malformed, or a JWT without a jti: no token of ours, answered as any
  // unknown one
  const auto id = presented_id(req, token, false);
  if (!id) return done(ok);
  const bool jwt = looks_like_jwt(token);
  std::optional<Token> t;
  {
    Txn txn = store.read();
    t = presented_record(txn, req.loc.realm, jwt, *id);
  }
  // another client's, or no token at all (an API key has its own
  // revocation): the same 200, and nothing changes
  if (t && (t->client_id != auth.client->client_id ||
            (t->type != TokenType::kAccess && t->type != TokenType::kRefresh))) {
    return done(ok);
  }
  // unknown: the same 200, nothing changes; but in cluster mode a token
  // this edge's mirror does not hold may have been issued on another edge
  // a few ms ago, and a 200 that revoked nothing would leave it valid
  // everywhere.  So there the change runs, finds it unseen, and looks
  // again once the mirror has caught up with etcd (503 without it, R53).
  if (!t && !store.cluster()) return done(ok);

  IssueSettings s(req);
  std::string client_id = auth.client->client_id;
  return run_change(store, s, [s, id = *id, client_id, jwt](Txn& txn, GrantState& st) {
    auto t = txn.get_token(s.realm, id);
    st.unseen = !t;
    if (t && t->client_id == client_id && t->jwt == jwt &&
        (t->type == TokenType::kAccess || t->type == TokenType::kRefresh)) {
      if (t->type == TokenType::kRefresh && t->has_family()) {
        // R52: a refresh token takes its grant's access tokens along
        txn.revoke_family(s.realm, t->family);
      } else {
        txn.delete_token(s.realm, id);
      }
      txn.commit();
    }
    // R53: a store failure escapes as 503 (run_grant), never this 200
    st.response = ok_json(kRevokedBody);
  });
}

namespace {

// The record key (SHA-256 of the jti) of a JWT bearer token that
// verifies under the location's keys (*type kAccess) or the handshake key
// (*type kHandshake).  Without a location (the admin daemon holds no keys)
// the jti of an access token is taken unverified: it is 256 random bits
// that only the JWT carries, so its record is as hard to reach as an
// opaque token's.
// key: the SHA-256 of token (with a location).
// *expires: the JWT's exp once it verified (0 otherwise); *expired: it
// failed for being past it; *wrong_audience: for its "aud" (RFC 8707)
std::optional<TokenId> verified_record_key(const Location* loc, int64_t now, std::string_view token,
                                           const Digest& key, TokenType* type, int64_t* expires,
                                           bool* expired, bool* wrong_audience) {
  *type = TokenType::kAccess;
  *expires = 0;
  *expired = false;
  *wrong_audience = false;
  if (!loc) {
    Json claims = jwt_peek_claims(token);
    const char* jti = json_string_value(json_object_get(claims.get(), "jti"));
    if (!jti) return std::nullopt;
    return token_id(jti);
  }
  if (const JwtCache::Entry* e = loc->verified.find(key)) {
    if (now - kJwtLeeway >= e->exp) {  // as jwt_verify would say
      loc->verified.erase(key);
      *expired = true;
      return std::nullopt;
    }
    *type = e->handshake ? TokenType::kHandshake : TokenType::kAccess;
    *expires = e->exp;
    return e->record_key;
  }
  JwtCheck c;
  c.now = now;
  c.leeway = kJwtLeeway;
  c.issuer = loc->issuer;
  // empty: "aud" not checked (userinfo; the record still must be an
  // access token of this realm, and the issuer this location's)
  if (!loc->any_audience()) c.audience = loc->accepted_audience();
  JwtResult r = jwt_verify(loc->jwt_keys, token, c);
  if ((r.status == JwtStatus::kUnknownKey || loc->jwt_keys.empty()) && loc->handshake_key) {
    JwtCheck hc;
    hc.now = now;
    hc.leeway = kJwtLeeway;
    r = jwt_verify(loc->handshake_keys, token, hc);
    *type = TokenType::kHandshake;
  }
  if (r.status != JwtStatus::kOk) {
    *expired = r.status == JwtStatus::kExpired;
    *wrong_audience = r.status == JwtStatus::kWrongAudience;
    return std::nullopt;
  }
  if (*type == TokenType::kHandshake && loc->config) {
    // of a solution no handshake location of the realm has now (removed
    // from the configuration, or the handshake API with it): valid nowhere
    const char* sol = json_string_value(json_object_get(r.claims.get(), "solution_name"));
    if (!sol || !loc->config->handshake_solution(loc->realm, sol)) return std::nullopt;
  }
  const char* jti = json_string_value(json_object_get(r.claims.get(), "jti"));
  json_t* exp = json_object_get(r.claims.get(), "exp");
  if (!jti || !json_is_integer(exp)) return std::nullopt;
  const TokenId record_key = token_id(jti);
  *expires = json_integer_value(exp);
  loc->verified.put(
      key, JwtCache::Entry{record_key, json_integer_value(exp), *type == TokenType::kHandshake});
  return record_key;
}

// The presented credential: "Bearer <token>" or X-API-KEY; its result
// when it is missing, or when the request shows more than one (its own
// form is malformed()'s to check).
// The scheme's length if h starts with it, followed by the end, a space or
// a tab (R61: Bearer<TAB>x is a malformed Bearer credential, not another
// scheme); 0 if not.
size_t auth_scheme(std::string_view h, std::string_view scheme) {
  const size_t n = scheme.size();
  if (h.size() >= n && iequals(h.substr(0, n), scheme) &&
      (h.size() == n || h[n] == ' ' || h[n] == '\t')) {
    return n;
  }
  return 0;
}

// *dpop: the scheme was DPoP (RFC 9449 7.1), not Bearer
std::optional<std::string_view> presented_token(const BearerRequest& req, int* result, bool* dpop) {
  std::string_view token;
  bool bearer = false;
  if (req.has_authorization) {
    std::string_view h = req.authorization;
    size_t n = auth_scheme(h, "Bearer");
    if (!n && (n = auth_scheme(h, "DPoP"))) *dpop = true;
    if (n) {
      bearer = true;
      if (h.size() <= n + 1 || h[n] != ' ') {
        *result = OAUTH2_INVALID_REQUEST;
        return std::nullopt;
      }
      token = h.substr(n + 1);
    }
  }
  if (req.api_key_count > 1 || (bearer && req.api_key_count > 0)) {
    *result = OAUTH2_INVALID_REQUEST;
    return std::nullopt;
  }
  if (!bearer) {
    if (req.api_key_count == 0) {
      *result = OAUTH2_NO_TOKEN;
      return std::nullopt;
    }
    token = req.api_key;
  }
  return token;
}

// A credential's own form: token68 (R61), and no longer than any token
// issued here; its result otherwise (0: well formed).
int malformed(std::string_view token) {
  if (!is_token68(token)) return OAUTH2_INVALID_REQUEST;
  if (token.size() > kMaxTokenLen) return OAUTH2_INVALID_TOKEN;
  return 0;
}

// Why a token that was found cannot open the location (OAUTH2_WHY_OK if
// it can, scopes aside): R45, now >= exp is expired; R62, only access
// tokens (and handshakes, signed by the handshake key) open locations;
// R46, R70, a deleted or disabled user's tokens fail at once.
int token_refusal(Txn& txn, std::string_view realm, const Token& t, TokenType want, bool jwt,
                  int64_t now, std::string* username) {
  if (t.type != want || t.jwt != (jwt && want == TokenType::kAccess)) return OAUTH2_WHY_UNKNOWN;
  if (t.used_at != 0) return OAUTH2_WHY_REVOKED;
  if (now >= t.expires_at) return OAUTH2_WHY_EXPIRED;
  auto enabled = txn.client_enabled(realm, t.client_id);
  if (!enabled || !*enabled) return OAUTH2_WHY_DISABLED;
  if (!t.user.empty()) {
    auto name = txn.active_username(realm, token_user_id(t));
    if (!name) return OAUTH2_WHY_DISABLED;
    *username = std::move(*name);
  }
  return OAUTH2_WHY_OK;
}

bool holds_scopes(const Location* loc, const std::string& scope) {
  if (!loc || loc->scopes.empty()) return true;
  std::vector<std::string_view> held;
  parse_scope(scope, &held);
  for (const std::string& need : loc->scopes) {
    if (std::find(held.begin(), held.end(), need) == held.end()) return false;
  }
  return true;
}

// ValidCache: the answer kept for the token whose text hashes to key at
// loc, if txn's snapshot is still at the validation epoch it was read at
// and the token has not expired (a JWT: nor passed its exp, as
// jwt_verify would say)
bool valid_from_cache(Txn& txn, const Location& loc, const Digest& key, int64_t now,
                      Validation* v) {
  const ValidCache::Entry* e = loc.valid.find(
      key, txn.version().store, [&](uint8_t bucket) { return txn.token_valid_epoch(bucket); });
  if (!e || now >= e->expires) return false;  // R45 on every hit
  if (e->jwt_exp && now - kJwtLeeway >= e->jwt_exp) return false;
  v->cached = true;
  v->result = OAUTH2_VALID;
  v->why = OAUTH2_WHY_OK;
  v->token_id = e->token_id;
  v->client_id = e->client_id;
  v->scope = e->scope;
  v->user = e->user;
  v->user_id = e->user_id;
  v->expires = e->expires;
  return true;
}

// keeps a token (its record's id: record) that txn's snapshot found
// valid at loc; jwt_exp: a JWT's exp (0: an opaque token)
void keep_valid(const Location& loc, Txn& txn, const Digest& key, int64_t jwt_exp,
                const TokenId& record, const ShortTokenId& token_id, const Token& t,
                const std::string& username) {
  if (!loc.valid.on()) return;
  const uint8_t bucket = token_epoch_bucket(record);
  const uint64_t epoch = txn.token_valid_epoch(bucket);  // before the slot changes: this may throw
  ValidCache::Entry* e = loc.valid.slot_for(key);
  ValidCache::fill_begin(e);  // a copy below may throw: no answer until the end
  e->epoch = epoch;
  e->bucket = bucket;
  e->expires = t.expires_at;
  e->jwt_exp = jwt_exp;
  e->token_id = token_id;
  e->client_id = t.client_id;  // assigned: the slot's buffers are reused
  e->scope = t.scope;
  e->user = username;
  e->user_id = token_user_id(t);
  ValidCache::fill_end(e, key, txn.version().store);
}

// The record key of a well-formed token: an opaque token's own, or a
// JWT's (its jti's) once it verified: by its signature, expiry, issuer
// and audience, so that one lookup then finds its record and revocation
// still acts on the next request.  text_key: the token's SHA-256, if
// computed; nullopt with v->why set if the JWT does not verify.
std::optional<TokenId> record_key_of(const Location* loc, int64_t now, std::string_view token,
                                     bool jwt, const std::optional<Digest>& text_key,
                                     TokenType* want, int64_t* jwt_exp, Validation* v) {
  if (!jwt) return text_key ? token_id(token, *text_key) : token_id(token);
  // the daemon's JWTs (no location) are found by their jti alone
  const Digest key = text_key ? *text_key : loc ? sha256(token) : Digest{};
  bool expired = false, wrong_audience = false;
  auto record_key =
      verified_record_key(loc, now, token, key, want, jwt_exp, &expired, &wrong_audience);
  if (!record_key) {
    v->why = expired          ? OAUTH2_WHY_EXPIRED
             : wrong_audience ? OAUTH2_WHY_AUDIENCE
                              : OAUTH2_WHY_UNKNOWN;
  }
  return record_key;
}

// dpop_resource_check of the token t of realm that req shows as token
int dpop_check(const Location* loc, Txn& txn, std::string_view realm, const BearerRequest& req,
               bool dpop_scheme, std::string_view token, const Token& t, Validation* v) {
  auto rate_key = [&] {
    return rate_key_of_bearer(txn, realm, t.client_id, token_user_id(t), req);
  };
  return dpop_resource_check(loc, req, dpop_scheme, token, t.jkt, t.client_id, rate_key, v);
}

// why a well-formed token whose record the store lacks is refused
void no_record(const Location* loc, int64_t now, bool jwt, int64_t jwt_exp, Validation* v) {
  // a JWT that verified names a record that was there: revoked since,
  // unless it expired (within the leeway) and the expiry removed it
  v->why = !jwt || !loc     ? OAUTH2_WHY_UNKNOWN
           : now >= jwt_exp ? OAUTH2_WHY_EXPIRED
                            : OAUTH2_WHY_REVOKED;
  // in cluster mode it may have been issued on another edge a moment ago
  v->unseen = v->why != OAUTH2_WHY_EXPIRED;
}

Validation validate_in(Store& store, const Location* loc, std::string_view realm,
                       const BearerRequest& req) {
  Validation v;
  bool dpop_scheme = false;
  auto token = presented_token(req, &v.result, &dpop_scheme);
  v.dpop = dpop_scheme;
  // The validation cache knows a token by the SHA-256 of its text (an
  // opaque token's record key; a JWT's is not), and keeps only texts that
  // passed every check below: a hit needs none of them again.
  const bool cacheable =
      token && token->size() <= kMaxTokenLen && loc && loc->valid.on() && !dpop_scheme;
  std::optional<Digest> text_key;
  std::optional<Txn> txn;  // one snapshot for the cache's epoch and the records
  if (cacheable) {
    text_key = sha256(*token);
    txn.emplace(store.read());
    if (valid_from_cache(*txn, *loc, *text_key, req.now, &v)) return v;
  }
  if (token) {
    if (int bad = malformed(*token)) {
      v.result = bad;
      token.reset();
    }
  }
  if (!token) {
    v.why = v.result == OAUTH2_NO_TOKEN        ? OAUTH2_WHY_MISSING
            : v.result == OAUTH2_INVALID_TOKEN ? OAUTH2_WHY_UNKNOWN
                                               : OAUTH2_WHY_MALFORMED;
    return v;
  }
  TokenType want = TokenType::kAccess;
  int64_t jwt_exp = 0;
  const bool jwt = looks_like_jwt(*token);
  auto record_key = record_key_of(loc, req.now, *token, jwt, text_key, &want, &jwt_exp, &v);
  if (!record_key) return v;
  const TokenId& hash = *record_key;
  v.token_id = short_token_id(hash);
  if (!txn) txn.emplace(store.read());
  auto t = txn->get_token(realm, hash);
  if (!t) {
    no_record(loc, req.now, jwt, jwt_exp, &v);
    return v;
  }
  std::string username;
  v.why = token_refusal(*txn, realm, *t, want, jwt, req.now, &username);
  if (v.why != OAUTH2_WHY_OK) return v;
  // R68: a token bound to resources opens only their locations, and one
  // bound to none (a handshake is never bound) only the default
  // audience's.  The admin API (no location) serves the default audience,
  // which the daemon does not know: a token bound to resources is
  // refused there.  Userinfo takes an access token of any audience
  // (Location::any_audience)
  const bool any_audience = loc && loc->any_audience() && want == TokenType::kAccess;
  if ((want == TokenType::kAccess || want == TokenType::kHandshake) && !any_audience &&
      (loc ? !audience_accepts(t->audience, *loc) : !t->audience.empty())) {
    v.why = OAUTH2_WHY_AUDIENCE;
    return v;
  }
  if (dpop_scheme || !t->jkt.empty()) {
    v.why = dpop_check(loc, *txn, realm, req, dpop_scheme, *token, *t, &v);
    if (v.why != OAUTH2_WHY_OK) return v;
  }
  if (!holds_scopes(loc, t->scope)) {
    v.result = OAUTH2_INSUFFICIENT_SCOPE;
    v.why = OAUTH2_WHY_INSUFFICIENT_SCOPE;
    return v;
  }
  // a handshake opens what it opens by its own key's rules: not kept
  if (cacheable && t->jkt.empty() && want == TokenType::kAccess && (!jwt || jwt_exp)) {
    keep_valid(*loc, *txn, *text_key, jwt ? jwt_exp : 0, hash, v.token_id, *t, username);
  }
  v.result = OAUTH2_VALID;
  v.record = hash;
  v.client_id = std::move(t->client_id);
  v.scope = std::move(t->scope);
  v.user = std::move(username);
  v.user_id = token_user_id(*t);
  v.expires = t->expires_at;
  return v;
}

}  // namespace

Validation validate(Store& store, const Location& loc, const BearerRequest& req) {
  return validate_in(store, &loc, loc.realm, req);
}

std::string rate_key_of_bearer(Txn& txn, std::string_view realm, const std::string& client_id,
                               uint64_t user_id, const BearerRequest& req) {
  if (user_id != 0) {  // a client's own token (client_credentials) is a confidential one's
    auto c = txn.get_client(realm, client_id);
    if (c && !c->confidential) return "p:" + throttle_address(req.address) + "|" + client_id;
  }
  return "c:" + client_id;
}

Validation validate(Store& store, std::string_view realm, const BearerRequest& req) {
  return validate_in(store, nullptr, realm, req);
}

std::string bearer_challenge(const Location& loc, int result, int* status, const char** error_out,
                             const Validation* v) {
  if (v && v->dpop && result != OAUTH2_INSUFFICIENT_SCOPE) {
    *status = result == OAUTH2_INVALID_REQUEST ? 400 : 401;
    Validation d = *v;
    if (!d.dpop_error && result != OAUTH2_NO_TOKEN) {
      d.dpop_error = result == OAUTH2_INVALID_REQUEST ? "invalid_request" : "invalid_token";
    }
    *error_out = d.dpop_error;
    return dpop_challenge(loc, d);
  }
  const char* error = nullptr;
  switch (result) {
    case OAUTH2_NO_TOKEN: *status = 401; break;
    case OAUTH2_INVALID_REQUEST:
      *status = 400;
      error = "invalid_request";
      break;
    case OAUTH2_INSUFFICIENT_SCOPE:
      *status = 403;
      error = "insufficient_scope";
      break;
    default: *status = 401; error = "invalid_token";
  }
  // only the configured realm and scopes (checked at configuration time)
  // and fixed error codes: never request input (R65)
  std::string h = "Bearer realm=\"" + loc.auth_realm + "\"";
  *error_out = error;
  if (error) h += std::string(", error=\"") + error + "\"";
  if (result == OAUTH2_INSUFFICIENT_SCOPE) {
    h += ", scope=\"";
    for (size_t i = 0; i < loc.scopes.size(); i++) {
      if (i) h += ' ';
      h += loc.scopes[i];
    }
    h += '"';
  }
  return h;
}

}  // namespace oauth2
