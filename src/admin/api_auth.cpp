// Authentication of the JSON API (api_auth.hpp).

#include "api_auth.hpp"

#include <ctime>
#include <string_view>
#include <vector>

#include "codec.hpp"
#include "endpoint_util.hpp"
#include "endpoints.hpp"

namespace oauth2::admin {
namespace {

// seed 003's answer to a bad Bearer token: DRF runs DOT's authentication
// (which passes over a token it does not know) and then simplejwt's, whose
// refusal this is; simplejwt clients refresh on its "code"
HttpResponse invalid_token() {
  Json body(json_pack("{s:s,s:s,s:[{s:s,s:s,s:s}]}", "detail",
                      "Given token not valid for any token type", "code", "token_not_valid",
                      "messages", "token_class", "AccessToken", "token_type", "access", "message",
                      "Token is invalid or expired"));
  if (!body) throw std::bad_alloc();
  HttpResponse r = HttpResponse::json(401, body.get());
  r.set("WWW-Authenticate",
        std::string("Bearer realm=\"") + kApiRealm + "\", error=\"invalid_token\"");
  return r;
}

// R85: what made the caller staff is still its application's: "admin",
// while the application is registered with it (authenticate drops it
// from the token's scope otherwise), or the first-party mark
bool still_acts_as_staff(Txn& txn, std::string_view realm, const Caller& caller) {
  auto c = txn.get_client(realm, caller.client_id);
  if (!c) return false;
  const bool admin = detail::scope_within(kAdminScope, c->scope) &&
                     detail::scope_within(kAdminScope, caller.scope);
  if (caller.kind == Caller::Kind::kApp) return admin;
  return c->first_party || admin;
}

}  // namespace

bool Caller::scoped(std::string_view s) const {
  if (kind == Kind::kApp || first_party) return true;
  std::vector<std::string_view> held;
  parse_scope(scope, &held);
  for (std::string_view h : held) {
    if (h == s) return true;
  }
  return false;
}

std::string client_address(const HttpRequest& req) {
  if (req.header_count("x-real-ip") == 1) {
    std::string_view a = *req.header("x-real-ip");
    if (!a.empty() && a.size() <= 64 &&
        a.find_first_not_of("0123456789abcdefABCDEF.:[]") == std::string_view::npos) {
      return std::string(a);
    }
  }
  return req.remote;
}

Throttle ServeContext::throttle(const HttpRequest& req) const {
  oauth2_counters_t c = counters ? counters->counters() : oauth2_counters_t{};
  return Throttle(c, realm, auth_limit, auth_window, client_address(req));
}

HttpResponse not_authenticated() {
  HttpResponse r = HttpResponse::error(401, "Authentication credentials were not provided.");
  r.set("WWW-Authenticate", std::string("Bearer realm=\"") + kApiRealm + "\"");
  return r;
}

HttpResponse permission_denied() {
  return HttpResponse::error(403, "You do not have permission to perform this action.");
}

HttpResponse denied(const Caller& caller) {
  return caller.anonymous() ? not_authenticated() : permission_denied();
}

std::optional<Caller> authenticate(ServeContext& ctx, const HttpRequest& req, HttpResponse* error) {
  Caller caller;
  // two Authorization headers: which one would a proxy have used?
  if (req.header_count("authorization") > 1) {
    *error = invalid_token();
    return std::nullopt;
  }
  auto authorization = req.header("authorization");
  auto api_key = req.header("x-api-key");

  BearerRequest b;
  b.has_authorization = authorization.has_value();
  if (authorization) b.authorization = *authorization;
  b.api_key_count = static_cast<unsigned>(req.header_count("x-api-key"));
  if (api_key) b.api_key = *api_key;
  b.now = static_cast<int64_t>(time(nullptr));

  Validation v = validate(*ctx.store, ctx.realm, b);
  switch (v.result) {
    case OAUTH2_NO_TOKEN: return caller;  // anonymous
    case OAUTH2_VALID: break;
    case OAUTH2_UNAVAILABLE:
      *error = HttpResponse::error(503, "The store is unavailable.");
      return std::nullopt;
    default:  // invalid_request, invalid_token
      *error = invalid_token();
      return std::nullopt;
  }

  caller.client_id = std::move(v.client_id);
  caller.scope = std::move(v.scope);
  caller.token = v.record;
  bool registered_admin = false;
  {
    Txn txn = ctx.store->read();
    auto c = txn.get_client(ctx.realm, caller.client_id);
    caller.first_party = c && c->first_party;
    registered_admin = c && detail::scope_within(kAdminScope, c->scope);
  }
  // R85: admin is the application's while it is registered with it: a
  // token issued before it was taken away acts as staff no more
  if (!registered_admin) caller.scope = detail::scope_without(caller.scope, kAdminScope);
  if (v.user_id != 0) {
    std::optional<User> u;
    {
      Txn txn = ctx.store->read();
      u = txn.get_user(ctx.realm, v.user_id);
    }
    if (!u || !u->is_active) {  // deleted or disabled since validate read
      *error = invalid_token();
      return std::nullopt;
    }
    caller.kind = Caller::Kind::kUser;
    caller.staff = u->is_staff;
    caller.user = std::move(u);
  } else {
    caller.kind = Caller::Kind::kApp;
    std::vector<std::string_view> held;
    parse_scope(caller.scope, &held);
    for (std::string_view s : held) {
      if (s == kAdminScope) caller.staff = true;
    }
  }
  return caller;
}

std::optional<HttpResponse> caller_gone(Txn& txn, std::string_view realm, const Caller& caller) {
  if (caller.anonymous()) return std::nullopt;
  auto enabled = txn.client_enabled(realm, caller.client_id);
  bool holds = enabled && *enabled;
  if (holds && caller.token) {  // revoked (RFC 7009) or expired meanwhile
    auto t = txn.get_token(realm, *caller.token);
    holds = t && t->used_at == 0 && static_cast<int64_t>(time(nullptr)) < t->expires_at;
  }
  if (holds && caller.user) {
    auto me = txn.get_user(realm, caller.user->id);
    holds = me && me->is_active && me->password == caller.user->password &&
            (me->is_staff || !caller.user->is_staff);
  }
  if (!holds) return invalid_token();
  // the token is still good, but no longer a staff member's power: a
  // fresh request would be refused, and so is this one (R69)
  if (caller.acts_as_staff() && !still_acts_as_staff(txn, realm, caller)) {
    return permission_denied();
  }
  return std::nullopt;
}

}  // namespace oauth2::admin
