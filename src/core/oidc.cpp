#include "oidc.hpp"

#include <openssl/evp.h>

#include <algorithm>

#include "codec.hpp"
#include "crypto.hpp"
#include "endpoint_table.hpp"
#include "jwt.hpp"
#include "session.hpp"

namespace oauth2 {

using namespace detail;

namespace detail {

namespace {

void set_str(json_t* o, const char* k, std::string_view v) {
  json_object_set_new(o, k, json_stringn(v.data(), v.size()));
}

void set_int(json_t* o, const char* k, int64_t v) {
  json_object_set_new(o, k, json_integer(static_cast<json_int_t>(v)));
}

// OpenID Connect Core 3.1.3.6: the left half of the hash of the token's
// ASCII octets, with the hash of the id_token's alg (SHA-512 for Ed25519)
std::string at_hash(JwtAlg alg, std::string_view token) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  const EVP_MD* type = alg == JwtAlg::kEdDSA ? EVP_sha512() : EVP_sha256();
  if (EVP_Digest(token.data(), token.size(), md, &len, type, nullptr) != 1) {
    throw std::runtime_error("EVP_Digest failed");
  }
  return base64url_encode(md, len / 2);
}

bool parse_alg(std::string_view name, JwtAlg* alg) {
  for (JwtAlg a : {JwtAlg::kRS256, JwtAlg::kES256, JwtAlg::kEdDSA}) {
    if (name == jwt_alg_name(a)) {
      *alg = a;
      return true;
    }
  }
  return false;
}

json_t* string_list(std::initializer_list<const char*> items) {
  json_t* a = json_array();
  for (const char* i : items) json_array_append_new(a, json_string(i));
  return a;
}

}  // namespace

bool scope_has(std::string_view scope, std::string_view item) {
  return scope_within(item, scope);
}

std::string encode_oidc_code(const OidcCode& oc) {
  Json j(json_object());
  set_str(j.get(), "nonce", oc.nonce);
  set_int(j.get(), "auth_time", oc.auth_time);
  return json_text(j.get(), JSON_COMPACT);
}

std::optional<OidcCode> decode_oidc_code(const Token& code) {
  if (code.type != TokenType::kCode || code.data.empty()) return std::nullopt;
  Json j(json_loadb(code.data.data(), code.data.size(), 0, nullptr));
  const char* nonce = json_string_value(json_object_get(j.get(), "nonce"));
  json_t* at = json_object_get(j.get(), "auth_time");
  if (!nonce || !json_is_integer(at)) return std::nullopt;
  return OidcCode{nonce, json_integer_value(at)};
}

const JwtKey* id_token_key(const Location& loc, std::string_view alg) {
  JwtAlg want;
  if (parse_alg(alg, &want)) {
    if (const JwtKey* k = loc.jwt_keys.signer(want)) return k;
  }
  for (JwtAlg a : {JwtAlg::kRS256, JwtAlg::kES256, JwtAlg::kEdDSA}) {
    if (const JwtKey* k = loc.jwt_keys.signer(a)) return k;
  }
  return nullptr;
}

std::string sign_id_token(const IssueSettings& s, const Client& c, const std::string& user,
                          const OidcCode& oc, std::string_view access_token) {
  const JwtKey* key = id_token_key(*s.loc, c.id_token_alg);
  if (!key) return {};
  Json claims(json_object());
  json_t* o = claims.get();
  set_str(o, "iss", s.loc->issuer);
  set_str(o, "sub", user);
  set_str(o, "aud", c.client_id);
  set_int(o, "exp", add_ttl(s.now, kIdTokenTtl));
  set_int(o, "iat", s.now);
  set_int(o, "auth_time", oc.auth_time);
  if (!oc.nonce.empty()) set_str(o, "nonce", oc.nonce);
  set_str(o, "at_hash", at_hash(key->alg(), access_token));
  set_str(o, "azp", c.client_id);
  return jwt_sign(*key, o, "JWT");
}

void add_oidc_metadata(json_t* doc, const Request& req) {
  if (json_object_get(doc, "authorization_endpoint")) {
    // the authorization endpoint refuses request objects (OpenID Connect
    // Core 6): said, since an omitted request_uri_parameter_supported
    // means true (OpenID Connect Discovery 3, RFC 8414 7.1.2)
    json_object_set_new(doc, "request_parameter_supported", json_false());
    json_object_set_new(doc, "request_uri_parameter_supported", json_false());
  }
  if (!id_token_key(req.loc, "")) return;  // no key to sign id_tokens with
  json_object_set_new(doc, "subject_types_supported", string_list({"public"}));
  json_t* algs = json_array();
  for (JwtAlg a : req.loc.jwt_keys.signing_algs()) {
    if (a != JwtAlg::kHS256) json_array_append_new(algs, json_string(jwt_alg_name(a)));
  }
  json_object_set_new(doc, "id_token_signing_alg_values_supported", algs);
  json_object_set_new(doc, "prompt_values_supported",
                      string_list({"none", "login", "consent", "select_account"}));
  json_object_set_new(doc, "claims_supported",
                      string_list({"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce",
                                   "at_hash", "azp", "name", "given_name", "family_name",
                                   "preferred_username", "email", "email_verified"}));
  json_t* scopes = json_object_get(doc, "scopes_supported");
  if (!scopes) {
    scopes = json_array();
    json_object_set_new(doc, "scopes_supported", scopes);
  }
  for (const char* sc : {"openid", "profile", "email"}) {
    bool listed = false;
    for (size_t i = 0; i < json_array_size(scopes); i++) {
      const char* v = json_string_value(json_array_get(scopes, i));
      listed = listed || (v && std::string_view(v) == sc);
    }
    if (!listed) json_array_append_new(scopes, json_string(sc));
  }
}

std::optional<IdTokenHint> read_id_token_hint(const Request& req, std::string_view hint) {
  JwtCheck check;
  check.now = req.c.now;
  check.check_exp = false;  // an expired id_token still names who signed in
  check.issuer = req.loc.issuer;
  JwtResult r = jwt_verify(req.loc.jwt_keys, hint, check);
  if (r.status != JwtStatus::kOk || r.key->alg() == JwtAlg::kHS256) return std::nullopt;
  const json_t* claims = r.claims.get();
  const char* sub = json_string_value(json_object_get(claims, "sub"));
  const char* aud = json_string_value(json_object_get(claims, "aud"));
  const json_t* at = json_object_get(claims, "auth_time");
  // an access JWT of the same keys (RFC 9068's, simplejwt's) names the
  // user too, and goes to every resource server it is used at: it is no
  // id_token, which never carries a jti here
  if (!sub || !aud || !json_is_integer(at) || json_object_get(claims, "jti")) return std::nullopt;
  return IdTokenHint{sub, aud, json_integer_value(at)};
}

}  // namespace detail

namespace {

Response userinfo_refusal(int status, const char* error, const char* description) {
  Response r = oauth_error(status, error, description);
  r.www_authenticate = std::string("Bearer error=\"") + error + "\"";
  if (status == 403) r.www_authenticate += ", scope=\"openid\"";
  return r;
}

// a refusal of a token shown with the DPoP scheme, or bound to a key:
// DPoP's challenge, and a nonce to use when the location wants one
Response userinfo_dpop_refusal(const Location& loc, const Validation& v) {
  int status = 401;
  const char* error = nullptr;
  std::string challenge = bearer_challenge(loc, v.result, &status, &error, &v);
  Response r = oauth_error(status, error ? error : "invalid_token",
                           "The DPoP proof or the access token is not valid");
  r.www_authenticate = std::move(challenge);
  r.dpop_nonce = v.dpop_nonce;
  return r;
}

// OpenID Connect Core 5.1: the claims of the scopes the token holds
std::string userinfo_claims(const User& u, std::string_view scope) {
  Json j(json_object());
  json_t* o = j.get();
  set_str(o, "sub", std::to_string(u.id));
  if (scope_has(scope, "profile")) {
    std::string name = u.first_name;
    if (!u.first_name.empty() && !u.last_name.empty()) name += " ";
    name += u.last_name;
    if (!name.empty()) set_str(o, "name", name);
    if (!u.first_name.empty()) set_str(o, "given_name", u.first_name);
    if (!u.last_name.empty()) set_str(o, "family_name", u.last_name);
    set_str(o, "preferred_username", u.username);
  }
  if (scope_has(scope, "email") && !u.email.empty()) {
    set_str(o, "email", u.email);
    json_object_set_new(o, "email_verified", json_false());  // nobody checked it
  }
  return json_text(o);
}

}  // namespace

EndpointResult userinfo_endpoint(Store& store, const Request& req) {
  std::string_view method = sv(req.c.method);
  if (method != "GET" && method != "POST") {
    Response r = invalid_request("This endpoint accepts GET and POST");
    r.status = 405;
    return done(std::move(r));
  }
  BearerRequest br;
  br.has_authorization = req.c.has_authorization != 0;
  br.authorization = sv(req.c.authorization);
  br.now = req.c.now;
  // a DPoP-bound token comes with the DPoP scheme and a proof for this
  // request (RFC 9449 7.1), checked as at an auth_oauth2 location
  br.method = method;
  br.path = sv(req.c.path);
  br.dpop_count = req.c.dpop_count;
  br.dpop = sv(req.c.dpop);
  br.counters = req.c.counters;
  // oauth2_rate_limit counted this request by its address already
  // (run_endpoint): the proof's check must not count it again, under a
  // key of its client that every user of a public client would share
  // (R83)
  br.address = sv(req.c.address);
  br.rate_counted = req.rate.counted();
  Validation v = validate(store, req.loc, br);
  // cluster mode: a token issued on another edge a moment ago, which this
  // edge's mirror does not hold yet, is looked for again once the mirror
  // has caught up (as introspection does): the client that just got it
  // is not told it is invalid
  if (v.unseen && may_catch_up(store, req)) return catch_up_and_again(store, req);
  if (v.result == OAUTH2_RATE_LIMITED) {
    return done(rate_limited_response(req.loc.endpoint, v.retry_after));
  }
  if (v.result != OAUTH2_VALID && v.dpop) return done(userinfo_dpop_refusal(req.loc, v));
  if (v.result == OAUTH2_NO_TOKEN) {
    Response r = userinfo_refusal(401, "invalid_token", "An access token is required");
    r.www_authenticate = "Bearer";  // RFC 6750 3.1: no error without a token
    return done(std::move(r));
  }
  if (v.result == OAUTH2_INVALID_REQUEST) {
    return done(userinfo_refusal(400, "invalid_request", "The request is malformed"));
  }
  if (v.result != OAUTH2_VALID || v.user_id == 0) {
    return done(userinfo_refusal(401, "invalid_token", "The access token is not valid"));
  }
  if (!scope_has(v.scope, "openid")) {
    return done(userinfo_refusal(403, "insufficient_scope", "The token lacks the openid scope"));
  }
  Txn txn = store.read();
  auto u = txn.get_user(req.loc.realm, v.user_id);
  if (!u || !u->is_active) {
    return done(userinfo_refusal(401, "invalid_token", "The access token is not valid"));
  }
  Response r;
  r.status = 200;
  r.body = userinfo_claims(*u, v.scope);
  return done(std::move(r));
}

}  // namespace oauth2
