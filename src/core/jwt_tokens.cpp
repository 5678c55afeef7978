#include "jwt_tokens.hpp"

#include <algorithm>

#include "audience.hpp"
#include "codec.hpp"
#include "json.hpp"

namespace oauth2::detail {

namespace {

void set_int(json_t* o, const char* k, int64_t v) {
  json_object_set_new(o, k, json_integer(static_cast<json_int_t>(v)));
}

void set_str(json_t* o, const char* k, std::string_view v) {
  json_object_set_new(o, k, json_stringn(v.data(), v.size()));
}

// "aud": the token's resources (RFC 8707), else the configured audience,
// else the issuer (RFC 9068 2.2 requires one); none if nothing is set
void set_common(json_t* o, const IssueSettings& s, const Token& at) {
  if (!s.loc->issuer.empty()) set_str(o, "iss", s.loc->issuer);
  if (json_t* aud = audience_json(at.audience, s.loc->jwt_audience())) {
    json_object_set_new(o, "aud", aud);
  }
}

const JwtKey& signer(const IssueSettings& s) {
  const JwtKey* k = s.loc->jwt_keys.signer();
  if (!k) throw std::logic_error("no JWT signing key");
  return *k;
}

}  // namespace

bool looks_like_jwt(std::string_view token) {
  size_t dots = 0;
  for (char c : token) {
    if (c == '.') {
      dots++;
    } else if (!chars::is(c, chars::kB64Url)) {
      return false;
    }
  }
  return dots == 2;
}

std::optional<TokenId> presented_id(const Request& req, std::string_view token, bool verify) {
  if (token.size() > kMaxTokenLen || !is_vschar(token)) return std::nullopt;  // never one of ours
  if (!looks_like_jwt(token)) return token_id(token);
  const char* jti = nullptr;
  Json claims;
  if (!verify) {
    claims = jwt_peek_claims(token);
  } else {
    // a forged JWT carrying a real jti must not read as that token
    JwtCheck check;
    check.now = req.c.now;
    check.check_exp = false;
    JwtResult r = jwt_verify(req.loc.jwt_keys, token, check);
    if (r.status != JwtStatus::kOk) return std::nullopt;
    claims = std::move(r.claims);
  }
  jti = json_string_value(json_object_get(claims.get(), "jti"));
  if (!jti) return std::nullopt;
  return token_id(jti);
}

std::optional<Token> presented_record(Txn& txn, std::string_view realm, bool jwt,
                                      const TokenId& id) {
  auto t = txn.get_token(realm, id);
  // a handshake's jti is public (its handshake_id): never a credential here
  if (!t || t->jwt != jwt || t->type == TokenType::kHandshake) return std::nullopt;
  return t;
}

namespace {

// jwt, if every endpoint can read it back (auth_oauth2, revocation and
// introspection take tokens of kMaxTokenLen bytes at most)
std::string readable(std::string jwt) {
  if (jwt.size() > kMaxTokenLen) throw TokenTooLong();
  return jwt;
}

}  // namespace

std::string sign_access_token(const IssueSettings& s, const Token& at, const std::string& jti) {
  Json c(json_object());
  json_t* o = c.get();
  if (s.simplejwt) {
    // djangorestframework-simplejwt's claims first, so its clients find
    // what they expect
    set_str(o, "token_type", "access");
    set_int(o, "exp", at.expires_at);
    set_int(o, "iat", at.issued_at);
    set_str(o, "jti", jti);
    set_int(o, "user_id", static_cast<int64_t>(token_user_id(at)));
    set_common(o, s, at);
  } else {
    set_common(o, s, at);
    set_int(o, "exp", at.expires_at);
    set_int(o, "iat", at.issued_at);
    set_str(o, "jti", jti);
  }
  // RFC 9068 2.2: sub is the user, or the client for client credentials
  set_str(o, "sub", at.user.empty() ? at.client_id : at.user);
  set_str(o, "client_id", at.client_id);
  if (!at.scope.empty()) set_str(o, "scope", at.scope);
  if (!at.jkt.empty()) {
    // RFC 9449 6.1: the key the token is bound to
    json_t* cnf = json_object();
    set_str(cnf, "jkt", at.jkt);
    json_object_set_new(o, "cnf", cnf);
  }
  return readable(jwt_sign(signer(s), o, s.simplejwt ? "JWT" : "at+jwt"));
}

std::string sign_refresh_token(const IssueSettings& s, const Token& rt, const std::string& jti) {
  Json c(json_object());
  json_t* o = c.get();
  set_str(o, "token_type", "refresh");
  set_int(o, "exp", rt.expires_at);
  set_int(o, "iat", rt.issued_at);
  set_str(o, "jti", jti);
  set_int(o, "user_id", static_cast<int64_t>(token_user_id(rt)));
  if (!s.loc->issuer.empty()) set_str(o, "iss", s.loc->issuer);
  return readable(jwt_sign(signer(s), o, "JWT"));
}

std::shared_ptr<JwtKey> handshake_key(const Location& loc) {
  return loc.handshake_key;
}

}  // namespace oauth2::detail
