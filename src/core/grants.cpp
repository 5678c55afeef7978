// The token endpoint's user grants: authorization_code (with PKCE),
// refresh_token (rotation, reuse detection, grace) and password.  Each
// decides everything that needs the store inside ONE write transaction in
// the pending write (docs/security.md R29, R38, R40): the check and the mark
// can never race.

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "audience.hpp"
#include "cluster.hpp"
#include "codec.hpp"
#include "committer.hpp"
#include "crypto.hpp"
#include "endpoint_table.hpp"
#include "endpoint_util.hpp"
#include "json.hpp"
#include "oidc.hpp"
#include "password.hpp"
#include "seal.hpp"

namespace oauth2::detail {

// A stored grant (a code, a refresh token, a device code) about to issue:
// the resource narrowed to at most what the grant holds (RFC 8707 2.2)
// into *aud, and the client read again: disabled or deleted since it
// authenticated, nothing is issued (R70).  The refusal, or nullopt.
std::optional<Response> stored_grant_refusal(Txn& txn, std::string_view realm, const Client& client,
                                             bool used_header, const std::string& asked,
                                             const std::string& held, std::string* aud) {
  auto narrowed = narrow_target(asked, held);
  if (!narrowed) {
    return oauth_error(400, "invalid_target", "The resource is not one the grant holds");
  }
  // and to what the client is registered for now, as a resource asked for
  // is (requested_target): one taken from it since is issued no more, and
  // a grant left with none is refused rather than issue a token for every
  // resource server (no aud)
  if (asked.empty() && !held.empty()) {
    std::string kept;
    for (std::string_view r : audience_items(*narrowed)) {
      if (std::find(client.resources.begin(), client.resources.end(), r) ==
          client.resources.end()) {
        continue;
      }
      if (!kept.empty()) kept += ' ';
      kept += r;
    }
    if (kept.empty()) {
      return oauth_error(400, "invalid_target",
                         "The client is no longer registered for the grant's resources");
    }
    *narrowed = std::move(kept);
  }
  if (auto gone = refused_if_gone(txn, realm, client, used_header)) return gone;
  *aud = std::move(*narrowed);
  return std::nullopt;
}

namespace {

constexpr size_t kMaxCodeLen = 512;

Response unauthorized_client() {
  return oauth_error(400, "unauthorized_client", "The client may not use this grant type");
}

bool valid_verifier(std::string_view v) {
  if (v.size() < 43 || v.size() > 128) return false;
  for (char ch : v) {
    bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '.' || ch == '_' || ch == '~';
    if (!ok) return false;
  }
  return true;
}

// What binds a code: its client (R30), its PKCE challenge (R32) and
// the redirect_uri of its request (R31).  A bad verifier or client never
// revokes what the code issued (R28: revocation must not become a denial
// of service).
std::optional<Response> check_code(const Token& t, const Client& client,
                                   const std::optional<std::string>& redirect_uri,
                                   const std::optional<std::string>& verifier) {
  if (t.client_id != client.client_id) {
    return invalid_grant("The authorization code is invalid");
  }
  if (!t.code_challenge.empty()) {
    if (!verifier) return invalid_grant("code_verifier is required");
    Digest d = sha256(*verifier);
    std::string computed = base64url_encode(d.data(), d.size());
    if (computed.size() != t.code_challenge.size() ||
        !equal_ct(reinterpret_cast<const unsigned char*>(computed.data()),
                  reinterpret_cast<const unsigned char*>(t.code_challenge.data()),
                  computed.size())) {
      return invalid_grant("code_verifier does not match");
    }
  } else if (verifier) {
    // a verifier for a code issued without a challenge (downgrade)
    return invalid_grant("No code_challenge was sent for this code");
  }
  // identical; a request that omitted it may omit it here too, or name
  // the one it resolved to (R27: the code is bound to it)
  bool matches = redirect_uri ? *redirect_uri == t.redirect_uri : t.redirect_uri_omitted;
  if (!matches) return invalid_grant("redirect_uri does not match");
  // and still registered: a URI the operator removed (taken over, say)
  // gets nothing for the codes sent to it before (R19)
  const auto& registered = client.redirect_uris;
  if (std::none_of(registered.begin(), registered.end(),
                   [&](const std::string& r) { return redirect_matches(t.redirect_uri, r); })) {
    return invalid_grant("redirect_uri is no longer registered");
  }
  return std::nullopt;
}

}  // namespace

Response ok_json(std::string body) {
  Response r;
  r.status = 200;
  r.body = std::move(body);
  return r;
}

Response issued(const IssuedPair& pair, std::string body, const char* grant) {
  Response r = ok_json(std::move(body));
  r.grant = grant;
  r.issued_client = pair.client_id;
  r.token_id = pair.token_id;
  return r;
}

namespace {

// A grant's answer, on the event loop once its work is done
Response finish_grant(const IssueSettings& s, GrantState& state) {
  Response r = std::move(state.response);
  if (!state.failed_user.empty()) {
    // per account and address here, per address by the caller
    // (R17, R25); the account's own count is in the store
    s.throttles().password_failed(state.failed_user);
    r.auth_failed = true;
  }
  wipe(state.response.body);
  return r;
}

// A grant decided on the event loop (Store::prepare) whose change waits
// for the shim's next batch.  If its reads no longer hold then, `again`
// (run_change's pending write) decides it afresh, off the event loop,
// as if it had never been prepared.
class PreparedGrant : public PendingWrite {
 public:
  PreparedGrant(Store& store, Change change, std::shared_ptr<GrantState> state,
                const IssueSettings& s, std::unique_ptr<PendingWrite> again)
      : store_(store),
        change_(std::move(change)),
        state_(std::move(state)),
        s_(s),
        again_(std::move(again)) {}

  // alone, without a batch (no thread pool)
  void run() noexcept override {
    bool applied = false;
    std::exception_ptr error;
    try {
      applied = store_.committer().commit(change_);
    } catch (...) {
      error = std::current_exception();
    }
    committed(applied, error);
  }
  const Change* prepared() const override { return &change_; }
  void committed(bool applied, std::exception_ptr error) noexcept override {
    if (error) {
      error_ = error;
    } else if (!applied) {
      redo_ = true;
      wipe(state_->response.body);  // a token that was never stored
      again_->run();
    }
  }
  Response finish() override {
    if (redo_) return again_->finish();
    if (error_) {
      wipe(state_->response.body);
      try {
        std::rethrow_exception(error_);
      } catch (const std::exception& e) {
        state_->fail(e, s_.loc->endpoint);  // R53: 503, never the 200 of a token not stored
      }
    }
    return finish_grant(s_, *state_);
  }

 private:
  Store& store_;
  Change change_;
  std::shared_ptr<GrantState> state_;
  IssueSettings s_;
  std::unique_ptr<PendingWrite> again_;
  bool redo_ = false;
  std::exception_ptr error_;
};

}  // namespace

void GrantState::fail(const std::exception& e, int endpoint) {
  const bool too_long = dynamic_cast<const TokenTooLong*>(&e) != nullptr;
  const EndpointKind* kind = endpoint_kind(endpoint);
  Response fallback = too_long && (!kind || kind->shape == Shape::kOAuth)
                          ? oauth_error(500, "server_error", "The token would be too long")
                          : failure_response(endpoint, too_long ? 500 : 503);
  response = failed(std::move(fallback), e);
}

std::optional<std::string> redeemed_scope(GrantState& st, const Client& client,
                                          std::string_view default_scope, const std::string& held) {
  auto scope = scope_held_now(client, default_scope, held);
  if (!scope)
    st.response =
        oauth_error(400, "invalid_scope", "The application may no longer have the scope granted");
  return scope;
}

EndpointResult run_grant(const IssueSettings& settings, std::function<void(GrantState&)> body,
                         bool slow) {
  auto state = std::make_shared<GrantState>();
  IssueSettings s = settings;
  return pending(
      [state, body = std::move(body), endpoint = s.loc->endpoint] {
        try {
          body(*state);
        } catch (const std::exception& e) {
          state->fail(e, endpoint);
        }
      },
      [state, s] { return finish_grant(s, *state); }, slow);
}

namespace {

void run_body(Store& store, const std::function<void(Txn&, GrantState&)>& body, GrantState& st) {
  auto decide = [&] {
    st = store.change([&](Txn& txn) {
      GrantState run;  // fresh on every run of the change
      body(txn, run);
      return run;
    });
  };
  decide();
  Cluster* cluster = store.cluster();
  if (st.unseen && cluster) {  // once: what etcd lacks now, it lacks
    cluster->catch_up(store);
    decide();
  }
}

}  // namespace

EndpointResult run_change(Store& store, const IssueSettings& s,
                          std::function<void(Txn&, GrantState&)> body, bool slow) {
  return run_grant(
      s, [&store, body = std::move(body)](GrantState& st) { run_body(store, body, st); }, slow);
}

EndpointResult run_change_prepared(Store& store, const IssueSettings& s,
                                   std::function<void(Txn&, GrantState&)> body) {
  auto state = std::make_shared<GrantState>();
  std::optional<Change> c;
  try {
    c = store.prepare([&](Txn& txn) { body(txn, *state); });
  } catch (const std::exception&) {
    c.reset();  // decided again off the event loop, which says what failed
  }
  if (!c || (state->unseen && store.cluster())) {  // unseen: decided off the event loop
    wipe(state->response.body);
    return run_change(store, s, std::move(body));
  }
  EndpointResult r;
  if (c->empty()) {  // nothing to write: the answer is final
    r.response = finish_grant(s, *state);
    return r;
  }
  EndpointResult again = run_change(store, s, std::move(body));
  r.pending = std::make_unique<PreparedGrant>(store, std::move(*c), std::move(state), s,
                                              std::move(again.pending));
  return r;
}

EndpointResult client_credentials_grant(Store& store, const Request& req, const Client& c,
                                        std::string scope, const std::string& asked) {
  IssueSettings s(req);
  Client client = c;
  const bool used_header = req.c.has_authorization != 0;
  auto body = [s, client, scope, asked, used_header](Txn& txn, GrantState& st) {
    // the client may have gone since it authenticated: refused as its
    // authentication would be, with Basic's challenge if it used Basic (R15)
    if (auto gone = refused_if_gone(txn, s.realm, client, used_header)) {
      st.response = std::move(*gone);
      return;
    }
    IssuedPair pair = issue_pair(txn, s, client, scope, "", Family{}, false, nullptr, 0, asked);
    txn.commit();
    st.response = issued(pair, pair.json(), "client_credentials");
  };
  // decided here when its tokens are opaque: no signature on the event loop
  if (s.jwt_for(client)) return run_change(store, s, body);
  return run_change_prepared(store, s, body);
}

namespace {

// Why an unused code t may not be redeemed now, if it may not: expired,
// its user no longer active, or bound by dpop_jkt to another key than the
// proof's (RFC 9449 10).
std::optional<Response> unusable_code(Txn& txn, const IssueSettings& s, const Token& t) {
  if (s.now >= t.expires_at) return invalid_grant("The authorization code has expired");
  if (!txn.active_username(s.realm, token_user_id(t))) {
    return invalid_grant("The user is not active");
  }
  if (!t.jkt.empty() && t.jkt != s.jkt) {
    return oauth_error(400, "invalid_dpop_proof",
                       "The authorization code is bound to another DPoP key");
  }
  return std::nullopt;
}

}  // namespace

EndpointResult authorization_code_grant(Store& store, const Request& req, const Form& form,
                                        const Client& c, const std::string& asked) {
  if (!c.allows_grant("authorization_code")) {
    return done(unauthorized_client());
  }
  auto code = form.get("code");
  if (!code) return done(invalid_request("code is required"));
  auto verifier = form.get("code_verifier");
  if (verifier && !valid_verifier(*verifier)) {
    return done(invalid_request("code_verifier must be 43 to 128 unreserved characters"));
  }
  if (code->size() > kMaxCodeLen || !is_vschar(*code)) {
    return done(invalid_grant("The authorization code is invalid"));
  }
  TokenId hash = token_id(*code);
  std::optional<std::string> redirect_uri;
  if (auto r = form.get("redirect_uri")) redirect_uri = std::string(*r);
  std::optional<std::string> verifier_copy;
  if (verifier) verifier_copy = std::string(*verifier);
  IssueSettings s(req);
  Client client = c;
  const bool used_header = req.c.has_authorization != 0;

  return run_change(
      store, s,
      [s, client, hash, redirect_uri, verifier_copy, asked, used_header](Txn& txn, GrantState& st) {
        auto t = txn.get_token(s.realm, hash);
        if (!t || t->type != TokenType::kCode) {
          st.unseen = !t;
          st.response = invalid_grant("The authorization code is invalid");
          return;
        }
        if (auto refused = check_code(*t, client, redirect_uri, verifier_copy)) {
          st.response = std::move(*refused);
          return;
        }
        if (t->used_at != 0) {
          // R28: a second valid redemption revokes what the code issued,
          // also once the code has expired (until the expiry removes it)
          txn.revoke_family(s.realm, t->family);
          txn.commit();
          st.response = invalid_grant("The authorization code was already used");
          return;
        }
        if (auto refused = unusable_code(txn, s, *t)) {
          st.response = std::move(*refused);
          return;
        }
        std::string aud;
        if (auto refused =
                stored_grant_refusal(txn, s.realm, client, used_header, asked, t->audience, &aud)) {
          st.response = std::move(*refused);
          return;
        }
        auto scope = redeemed_scope(st, client, s.loc->default_scope, t->scope);
        if (!scope) return;
        t->used_at = s.now;
        txn.update_token(s.realm, hash, *t);
        // the refresh token holds the whole grant
        IssuedPair pair =
            issue_pair(txn, s, client, *scope, t->user, t->family,
                       client.allows_grant("refresh_token"), nullptr, 0, aud, &t->audience);
        // (no id_token once openid is taken from the application)
        auto oc = decode_oidc_code(*t);
        if (oc && scope_within("openid", *scope)) {
          pair.id_token = sign_id_token(s, client, t->user, *oc, pair.access_token);
        }
        txn.commit();
        st.response = issued(pair, pair.json(), "authorization_code");
      });
}

namespace {

// Why the refresh token t may not be redeemed by client now, if it may not.
std::optional<Response> refresh_refusal(const std::optional<Token>& t, const Client& client,
                                        const IssueSettings& s) {
  // R35: bound to its client.  A refresh JWT's record (simplejwt's) is
  // redeemed by the JWT's signature at its refresh location, never by
  // its jti taken as an opaque token here
  if (!t || t->type != TokenType::kRefresh || t->jwt || s.now >= t->expires_at ||
      t->client_id != client.client_id) {
    return invalid_grant("The refresh token is invalid");
  }
  // RFC 9449 5: a public client's refresh token only with its key
  if (!t->jkt.empty() && t->jkt != s.jkt) {
    return oauth_error(400, "invalid_dpop_proof", "The refresh token is bound to another DPoP key");
  }
  return std::nullopt;
}

// The record of the pair a rotation of the refresh token `value` minted,
// sealed by it: found only by whoever holds the token.
TokenId sealed_pair_id(std::string_view value) {
  std::string in = "oauth2-sealed-pair-v1";
  in.append(value);
  Digest d = sha256(in);
  wipe(in);
  return token_id(base64url_encode(d.data(), d.size()));
}

// Keeps the pair for the grace, when there is one: a record that expires
// with it (expiry removes it), never a field of the spent token's record,
// which lives until the grant's end, and with it a chain from any spent
// token to the live pair for whoever has a copy of the store.
void seal_pair(Txn& txn, const IssueSettings& s, const std::string& value,
               const std::string& body) {
  const int64_t grace = s.loc->refresh_grace;
  if (grace <= 0) return;
  Token sealed;
  sealed.type = TokenType::kSealedPair;
  sealed.issued_at = s.now;
  sealed.expires_at = add_ttl(s.now, grace + 1);
  sealed.sealed = seal(value, body);
  txn.put_token(s.realm, sealed_pair_id(value), sealed);
}

// A refresh token presented again: a racer within the grace gets the
// pair the first one minted (R38); after it, a reuse revokes the whole
// family (R37).  A grace of 0 is none, not the rest of the second of the
// rotation.
Response reused_refresh(Txn& txn, const IssueSettings& s, const std::string& value,
                        const Token& t) {
  const int64_t grace = s.loc->refresh_grace;
  // within the grace of the rotation, either way: a rotation dated ahead
  // by a clock since stepped back (or an edge's, a little ahead) would
  // otherwise hand its pair out for as long as the step (R37, R80)
  if (grace > 0 && s.now - t.used_at <= grace && t.used_at - s.now <= grace) {
    auto kept = txn.get_token(s.realm, sealed_pair_id(value));
    // (a record of before this version keeps its pair in the token's own)
    const std::string& sealed =
        kept && kept->type == TokenType::kSealedPair ? kept->sealed : t.sealed;
    if (!sealed.empty()) {
      if (auto same = unseal(value, sealed)) return ok_json(std::move(*same));
    }
  }
  txn.revoke_family(s.realm, t.family);
  txn.commit();
  return invalid_grant("The refresh token was already used");
}

}  // namespace

EndpointResult refresh_token_grant(Store& store, const Request& req, const Form& form,
                                   const Client& c, const std::string& asked) {
  // issue 4 item 6: the application's registered grant types rule
  if (!c.allows_grant("refresh_token")) return done(unauthorized_client());
  auto rt = form.get("refresh_token");
  if (!rt) return done(invalid_request("refresh_token is required"));
  if (rt->size() > kMaxTokenLen || !is_vschar(*rt)) {
    return done(invalid_grant("The refresh token is invalid"));
  }
  std::optional<std::string> scope;
  if (auto sc = form.get("scope")) {
    if (!parse_scope(*sc, nullptr)) {
      return done(oauth_error(400, "invalid_scope", "The scope is malformed"));
    }
    scope = std::string(*sc);
  }
  IssueSettings s(req);
  Client client = c;
  auto token = std::make_shared<Secret>(std::string(*rt));
  const TokenId hash = token_id(token->value);

  const bool used_header = req.c.has_authorization != 0;
  return run_change(
      store, s, [s, client, token, scope, hash, asked, used_header](Txn& txn, GrantState& st) {
        auto t = txn.get_token(s.realm, hash);
        if (auto refused = refresh_refusal(t, client, s)) {
          st.unseen = !t;
          st.response = std::move(*refused);
          return;
        }
        if (t->used_at != 0) {
          st.response = reused_refresh(txn, s, token->value, *t);
          return;
        }
        if (!t->user.empty() && !txn.active_username(s.realm, token_user_id(*t))) {
          st.response = invalid_grant("The user is not active");
          return;
        }
        // R36: a subset of the original scope, the original by default
        std::string granted = scope.value_or(t->scope);
        if (!scope_within(granted, t->scope)) {
          st.response =
              oauth_error(400, "invalid_scope", "The scope exceeds the one originally granted");
          return;
        }
        // R85: and of what the application may hold now: a scope taken
        // from it since the grant (its admin, say) is not issued again
        const std::string allowed = allowed_scope(client, s.loc->default_scope);
        if (!scope) granted = scope_intersection(granted, allowed);
        if (granted.empty() || !scope_within(granted, allowed)) {
          st.response =
              oauth_error(400, "invalid_scope", "The scope exceeds what the application may have");
          return;
        }
        // the token is not spent by a refusal
        std::string aud;
        if (auto refused =
                stored_grant_refusal(txn, s.realm, client, used_header, asked, t->audience, &aud)) {
          st.response = std::move(*refused);
          return;
        }
        Family family = t->has_family() ? t->family : new_family();
        // R39: rotation never extends the grant: the successor expires when
        // the first refresh token of the grant would have; it keeps the
        // grant's scope and resources
        IssuedPair pair = issue_pair(txn, s, client, granted, t->user, family, true, &t->scope,
                                     t->expires_at, aud, &t->audience);
        std::string body = pair.json();
        // R40: the successor and the rotation commit together
        t->used_at = s.now;
        txn.update_token(s.realm, hash, *t);
        seal_pair(txn, s, token->value, body);
        txn.commit();
        st.response = issued(pair, std::move(body), "refresh_token");
      });
}

namespace {

// R25: whether an application of the realm allows the password grant,
// remembered per store and realm while its applications' version
// (clients_version) is the same: a flood of password requests from a
// client without the grant then costs one read each, not the decoding of
// every application on the event loop (R88).
bool realm_allows_password(Txn& txn, const std::string& realm) {
  struct Known {
    std::string version;
    bool any = false;
  };
  static std::mutex mu;
  static std::map<std::pair<uint64_t, std::string>, Known> known;
  std::pair<uint64_t, std::string> key(txn.version().store, realm);
  std::string version = txn.clients_version(realm);
  {
    std::lock_guard<std::mutex> lk(mu);
    auto it = known.find(key);
    if (it != known.end() && it->second.version == version) return it->second.any;
  }
  Known k{std::move(version), false};
  for (const Client& other : txn.list_clients(realm)) {
    if (other.allows_grant("password")) {
      k.any = true;
      break;
    }
  }
  std::lock_guard<std::mutex> lk(mu);
  if (known.size() >= 4096) known.clear();
  known[key] = k;
  return k.any;
}

}  // namespace

EndpointResult password_grant(Store& store, const Request& req, const Form& form, const Client& c,
                              const std::string& asked) {
  if (!c.allows_grant("password")) {
    // R25: unauthorized_client for this client, unsupported_grant_type if
    // no client of the server may use the grant
    bool any;
    {
      Txn txn = store.read();
      any = realm_allows_password(txn, req.loc.realm);
    }
    if (!any) {
      return done(oauth_error(400, "unsupported_grant_type", "The grant type is not supported"));
    }
    return done(unauthorized_client());
  }
  auto username = form.get("username");
  auto password = form.get("password");
  if (!username || !password) {
    return done(invalid_request("username and password are required"));
  }
  if (password->size() > kMaxPasswordLen || username->size() > kMaxUsernameBytes) {
    return done(invalid_grant("Invalid credentials given."));
  }
  auto scope = grant_scope(c, form.get("scope").value_or(""), req.loc.default_scope);
  if (!scope) {
    return done(oauth_error(400, "invalid_scope", "The requested scope is invalid or not allowed"));
  }
  return password_flow(store, IssueSettings(req), c, invalid_client(req.c.has_authorization != 0),
                       resolve_login(store, req.loc.realm, *username, false),
                       std::make_shared<std::string>(*password), *scope, asked);
}

LoginTarget resolve_login(Store& store, std::string_view realm, std::string_view login,
                          bool by_email) {
  Txn txn = store.read();
  return resolve_login(txn, realm, login, by_email);
}

Response too_many_failures(const IssueSettings& s, unsigned wait) {
  Response r = s.simplejwt
                   ? drf_throttled(wait)
                   : oauth_error(429, "temporarily_unavailable", "Too many failed login attempts");
  r.retry_after = wait;
  r.refused = "too many failed passwords";
  r.limited = OAUTH2_LIMITED_THROTTLE;
  return r;
}

EndpointResult password_flow(Store& store, const IssueSettings& s, const Client& client,
                             Response client_gone, LoginTarget target,
                             std::shared_ptr<std::string> secret, std::string granted,
                             std::string audience) {
  const LoginOrigin origin{s.address, ""};
  unsigned wait;
  {
    Txn txn = store.read();
    wait = login_gate(txn, s.throttles(), s.realm, target, origin, s.now);
  }
  if (wait) {
    wipe(*secret);
    return done(too_many_failures(s, wait));
  }
  return run_grant(
      s,
      [&store, s, client, client_gone, target, secret, granted, origin, audience](GrantState& st) {
        WipeOnExit wiper(*secret);
        // the slow hash runs here, in the thread pool, never on the event
        // loop; a wrong password is written to the account's lock
        LoginCheck check = check_login(store, s.realm, target, *secret, s.loc->pbkdf2_iterations,
                                       s.loc->account_limit, origin, s.now);
        if (check.locked) {
          st.response = too_many_failures(s, check.locked);
          return;
        }
        if (!check.user) {
          st.failed_user = target.throttle_key;
          st.response =
              s.simplejwt ? simplejwt_bad_login() : invalid_grant("Invalid credentials given.");
          return;
        }
        std::optional<std::string> rehashed;  // the slow hash, before the change
        if (check.needs_rehash) rehashed = hash_password(*secret, s.loc->pbkdf2_iterations);
        st.response = store.change([&](Txn& txn) {
          auto fresh = txn.get_user(s.realm, check.user->id);
          if (!fresh || !fresh->is_active || fresh->password != check.user->password) {
            return s.simplejwt ? simplejwt_bad_login()
                               : invalid_grant("Invalid credentials given.");
          }
          // the client may have gone while the password was checked: no
          // tokens for a disabled application (revived when it is enabled
          // again) or a deleted one (records under no client), as
          // client_credentials refuses (R70); nor for one changed since
          // (made public, its secret rotated: R35), decided on its old terms
          if (!txn.client_as_read(s.realm, client)) return client_gone;
          // locked during the hash by the guesses that ran beside it
          if (unsigned wait = account_wait(txn, s.realm, fresh->id, origin, s.now)) {
            return too_many_failures(s, wait);
          }
          fresh->last_login = s.now;
          if (rehashed) fresh->password = *rehashed;
          txn.put_user(*fresh, false);
          (void)account_signed_in(txn, s.realm, fresh->id, origin, s.now);
          IssuedPair pair =
              issue_pair(txn, s, client, granted, std::to_string(fresh->id), new_family(),
                         client.allows_grant("refresh_token"), nullptr, 0, audience);
          txn.commit();
          return issued(pair, s.simplejwt ? pair.simplejwt_json() : pair.json(), "password");
        });
      },
      true);
}

}  // namespace oauth2::detail
