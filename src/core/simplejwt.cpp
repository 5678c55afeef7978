// Seed 003: djangorestframework-simplejwt's POST /api/token/ (username and
// password -> {"refresh", "access"}) and POST /api/token/refresh/
// (refresh -> {"access"}), the service-token GET /api/status/, and the
// JWKS document of the location's keys.  Errors use Django REST
// framework's shapes: {"field": ["This field is required."]} and
// {"detail": ..., "code": ...}.

#include <algorithm>

#include "codec.hpp"
#include "crypto.hpp"
#include "endpoint_util.hpp"
#include "json.hpp"
#include "jwt_tokens.hpp"
#include "unicode.hpp"

namespace oauth2 {

using namespace detail;

namespace detail {

Response drf_detail(int status, std::string_view detail, const char* code) {
  Json j(json_object());
  json_object_set_new(j.get(), "detail", json_stringn(detail.data(), detail.size()));
  if (code) json_object_set_new(j.get(), "code", json_string(code));
  Response r;
  r.status = status;
  r.body = json_text(j.get());
  return r;
}

Response drf_throttled(unsigned wait) {
  Response r = drf_detail(
      429, "Request was throttled. Expected available in " + std::to_string(wait) + " seconds.",
      "throttled");
  r.retry_after = wait;
  return r;
}

// DRF answers its 401s with the challenge of its first authenticator,
// simplejwt's JWTAuthentication: Bearer realm="api".  simplejwt raises
// DRF's own AuthenticationFailed here, whose body is {"detail"} alone
// (its InvalidToken, token_not_valid below, adds "code")
Response simplejwt_bad_login() {
  Response r = drf_detail(401, "No active account found with the given credentials");
  r.bearer_challenge = true;
  return r;
}

namespace {

// what a DRF message quotes of the request: printable ASCII, at most max
// bytes (a header's bytes may be anything, and a JSON string is UTF-8)
std::string quoted(std::string_view s, size_t max) {
  std::string out;
  for (char ch : s) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    const unsigned char c = static_cast<unsigned char>(ch);
    out.push_back(c >= 0x20 && c < 0x7F ? ch : '?');
  }
  return out;
}

}  // namespace

Response drf_method_not_allowed(const Request& req) {
  return drf_detail(405, "Method \"" + quoted(sv(req.c.method), 20) + "\" not allowed.");
}

// DRF quotes the Content-Type header whole, parameters included; none
// is "" (two are refused, R2: the first is quoted)
Response drf_unsupported_media_type(const Request& req) {
  std::string type = req.c.content_type_count ? quoted(sv(req.c.content_type), 80) : "";
  if (req.c.content_type_count > 1) type += ", ...";
  return drf_detail(415, "Unsupported media type \"" + type + "\" in request.");
}

std::string IssuedPair::simplejwt_json() const {
  Json j(json_object());
  if (!refresh_token.empty()) {
    json_object_set_new(j.get(), "refresh",
                        json_stringn(refresh_token.data(), refresh_token.size()));
  }
  json_object_set_new(j.get(), "access", json_stringn(access_token.data(), access_token.size()));
  return json_text(j.get());
}

}  // namespace detail

namespace {

// A string field of a JSON body, trimmed as DRF's CharField does (and
// simplejwt's PasswordField, one): str.strip()
std::string_view trimmed_field(json_t* v) {
  return py_strip(std::string_view(json_string_value(v), json_string_length(v)));
}

// DRF's field errors for the fields of body that are missing, null or
// blank; nullopt if every one is there
std::optional<Response> field_errors(json_t* body, std::initializer_list<const char*> fields) {
  Json j(json_object());
  for (const char* f : fields) {
    json_t* v = json_object_get(body, f);
    const char* msg = nullptr;
    if (!v) {
      msg = "This field is required.";
    } else if (json_is_null(v)) {
      msg = "This field may not be null.";
    } else if (!json_is_string(v)) {
      msg = "Not a valid string.";
    } else if (trimmed_field(v).empty()) {
      msg = "This field may not be blank.";
    }
    if (msg) {
      json_t* a = json_array();
      json_array_append_new(a, json_string(msg));
      json_object_set_new(j.get(), f, a);
    }
  }
  if (json_object_size(j.get()) == 0) return std::nullopt;
  Response r;
  r.status = 400;
  r.body = json_text(j.get());
  return r;
}

Response drf_body_error(JsonBody b, const Request& req) {
  switch (b) {
    case JsonBody::kMethod: return drf_method_not_allowed(req);
    case JsonBody::kContentType: return drf_unsupported_media_type(req);
    case JsonBody::kTooLarge: return drf_detail(413, "The request body is too large.");
    default: return drf_detail(400, "JSON parse error.", "parse_error");
  }
}

Response token_not_valid() {
  Response r = drf_detail(401, "Token is invalid or expired", "token_not_valid");
  r.bearer_challenge = true;
  return r;
}

// A string field of a JSON body, trimmed, that field_errors passed.
std::optional<std::string_view> string_field(json_t* body, const char* f) {
  json_t* v = json_object_get(body, f);
  if (!json_is_string(v) || trimmed_field(v).empty()) return std::nullopt;
  return trimmed_field(v);
}

// Whether t, the record of a verified refresh JWT, may give c an access
// token now.  R46: a deleted or disabled user's tokens fail at once.
bool usable_refresh(Txn& txn, std::string_view realm, const Token& t, const Client& c,
                    int64_t now) {
  if (t.type != TokenType::kRefresh || !t.jwt || t.client_id != c.client_id ||
      now >= t.expires_at) {
    return false;
  }
  return t.user.empty() || txn.active_username(realm, token_user_id(t));
}

// The 400 of an application registered for DPoP-bound tokens: seed 003's
// tokens are Bearer, so it gets none from these endpoints (RFC 9449 5.2)
Response dpop_required(const char* directive) {
  return drf_detail(400, std::string("The application of ") + directive +
                             " requires DPoP-bound tokens, which this endpoint does not issue.");
}

std::optional<Client> login_client(Store& store, const Request& req) {
  Txn txn = store.read();
  auto c = txn.get_client(req.loc.realm, req.loc.login_client_id);
  if (!c || c->disabled) return std::nullopt;
  return c;
}

}  // namespace

EndpointResult jwt_token_endpoint(Store& store, const Request& req) {
  Json body;
  JsonBody b = parse_json_body(req, true, &body);
  if (b != JsonBody::kOk) return done(drf_body_error(b, req));
  if (auto err = field_errors(body.get(), {"username", "password"})) {
    return done(std::move(*err));
  }
  auto username = string_field(body.get(), "username");
  auto password = string_field(body.get(), "password");

  auto client = login_client(store, req);
  if (!client) {
    return done(drf_detail(500, "The application of oauth2_jwt_token does not exist."));
  }
  if (client->dpop_bound_access_tokens) return done(dpop_required("oauth2_jwt_token"));
  if (password->size() > kMaxPasswordLen || !valid_username(*username)) {
    return done(simplejwt_bad_login());
  }
  IssueSettings s(req);
  s.simplejwt = true;
  std::string scope = allowed_scope(*client, req.loc.default_scope);
  return password_flow(store, s, *client,
                       drf_detail(500, "The application of oauth2_jwt_token does not exist."),
                       resolve_login(store, req.loc.realm, *username, false),
                       std::make_shared<std::string>(*password), scope);
}

EndpointResult jwt_refresh_endpoint(Store& store, const Request& req) {
  Json body;
  JsonBody b = parse_json_body(req, true, &body);
  if (b != JsonBody::kOk) return done(drf_body_error(b, req));
  if (auto err = field_errors(body.get(), {"refresh"})) return done(std::move(*err));
  auto refresh = string_field(body.get(), "refresh");

  JwtCheck check;
  check.now = req.c.now;
  check.leeway = kJwtLeeway;
  check.issuer = req.loc.issuer;
  JwtResult r = jwt_verify(req.loc.jwt_keys, *refresh, check);
  json_t* claims = r.claims.get();
  const char* type = json_string_value(json_object_get(claims, "token_type"));
  const char* jti = json_string_value(json_object_get(claims, "jti"));
  if (r.status != JwtStatus::kOk || !type || std::string_view(type) != "refresh" || !jti) {
    return done(token_not_valid());
  }

  auto client = login_client(store, req);
  if (!client) return done(token_not_valid());
  const TokenId hash = token_id(jti);
  std::optional<Token> t;
  {
    Txn txn = store.read();
    t = txn.get_token(req.loc.realm, hash);
    if (t && !usable_refresh(txn, req.loc.realm, *t, *client, req.c.now)) {
      return done(token_not_valid());
    }
  }
  // unknown: refused; but in cluster mode it may have been issued on
  // another edge a moment ago, so the change decides, and looks again
  // once this edge's mirror has caught up with etcd (GrantState::unseen)
  if (!t && !store.cluster()) return done(token_not_valid());

  // simplejwt's default (ROTATE_REFRESH_TOKENS off): a new access token,
  // the refresh token lives on until it expires or is revoked
  IssueSettings s(req);
  s.simplejwt = true;
  Client c = *client;
  return run_change(store, s, [s, c, hash](Txn& txn, GrantState& st) {
    auto t = txn.get_token(s.realm, hash);
    if (!t || !usable_refresh(txn, s.realm, *t, c, s.now)) {  // or revoked since the read
      st.unseen = !t;
      st.response = token_not_valid();
      return;
    }
    // the application read again: disabled or deleted (R70), or
    // registered for DPoP-bound tokens, since the read above
    auto fresh = txn.get_client(s.realm, c.client_id);
    if (!fresh || fresh->disabled) {
      st.response = token_not_valid();
      return;
    }
    if (fresh->dpop_bound_access_tokens) {
      st.response = dpop_required("oauth2_jwt_refresh");
      return;
    }
    // R85, as the refresh_token grant: the application's refresh_token
    // grant taken away ends its refresh JWTs, and a scope taken from it
    // since the login is not issued again
    auto granted = scope_held_now(*fresh, s.loc->default_scope, t->scope);
    if (!fresh->allows_grant("refresh_token") || !granted) {
      st.response = token_not_valid();
      return;
    }
    IssuedPair pair = issue_pair(txn, s, *fresh, *granted, t->user, t->family, false);
    txn.commit();
    st.response = issued(pair, pair.simplejwt_json(), "refresh_token");
  });
}

EndpointResult status_endpoint(const Request& req) {
  if (sv(req.c.method) != "GET" && sv(req.c.method) != "HEAD") {
    return done(drf_method_not_allowed(req));
  }
  const Location& st = req.loc;
  bool ok = false;
  if (st.has_status_token && req.c.header_count == 1) {
    Digest got = sha256(sv(req.c.header));
    ok = equal_ct(got.data(), st.status_token_hash.data(), got.size());
  }
  if (!ok) {
    return done(
        drf_detail(403, "You do not have permission to perform this action.", "permission_denied"));
  }
  Json j(json_object());
  json_object_set_new(j.get(), "status", json_string("ok"));
  json_object_set_new(j.get(), "service", json_stringn(st.service.data(), st.service.size()));
  return done(ok_json(json_text(j.get())));
}

EndpointResult jwks_endpoint(const Request& req) {
  if (sv(req.c.method) != "GET" && sv(req.c.method) != "HEAD") {
    Response r = oauth_error(405, "invalid_request", "This endpoint only accepts GET");
    return done(std::move(r));
  }
  Response r;
  r.status = 200;
  r.body = req.loc.jwt_keys.jwks_json();
  return done(std::move(r));
}

}  // namespace oauth2
