// Who is calling the daemon's JSON API: the bearer token of the request,
// validated by the core itself (the same oauth2::validate as nginx's
// auth_oauth2), never a header a proxy set.

#pragma once

#include <optional>
#include <string>

#include "http.hpp"
#include "store.hpp"

namespace oauth2::admin {

struct Caller {
  enum class Kind { kAnonymous, kUser, kApp };
  Kind kind = Kind::kAnonymous;
  std::optional<User> user;  // kUser: the record as the request found it
  std::string client_id;     // kUser, kApp: the token's application
  std::string scope;         // the token's scope
  // A staff user (is_staff; the token's scope does not matter, as with
  // DRF's IsAdminUser), or an application token holding "admin".
  bool staff = false;

  bool anonymous() const { return kind == Kind::kAnonymous; }
};

constexpr const char* kAdminScope = "admin";
constexpr const char* kApiRealm = "api";

// The caller of req: the token of `Authorization: Bearer` or `X-API-KEY`.
// No token at all is an anonymous caller; a malformed, unknown, expired or
// revoked token, or one of a deleted or disabled user, gives nullopt and
// *error (401 "Invalid token."); a store failure 503.
std::optional<Caller> authenticate(ServeContext& ctx, const HttpRequest& req,
                                   HttpResponse* error);

// DRF's errors, {"detail": "..."}:
HttpResponse not_authenticated();  // 401 + WWW-Authenticate: Bearer
HttpResponse permission_denied();  // 403
// 401 for an anonymous caller, otherwise 403
HttpResponse denied(const Caller& caller);

}  // namespace oauth2::admin
