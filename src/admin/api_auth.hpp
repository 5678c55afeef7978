// Who is calling the daemon's JSON API: the bearer token of the request,
// validated by the core itself (the same oauth2::validate as nginx's
// auth_oauth2), never a header a proxy set.

#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "http.hpp"
#include "store.hpp"

namespace oauth2::admin {

constexpr const char* kAdminScope = "admin";
constexpr const char* kApiRealm = "api";

// Who calls, and what the token lets them do (R85, RFC 6749 3.3).  A user's
// token from a third-party application does only what its scope allows,
// within the user's own rights: reading needs "read", changes "write",
// staff-only operations "admin".  A first-party application's token (the
// operator's own, `app add --first-party`) acts with the user's full
// rights.  An application's own token (client credentials) acts as staff
// when it holds "admin".
struct Caller {
  enum class Kind { kAnonymous, kUser, kApp };
  Kind kind = Kind::kAnonymous;
  std::optional<User> user;      // kUser: the record as the request found it
  std::string client_id;         // kUser, kApp: the token's application
  std::optional<TokenId> token;  // kUser, kApp: the token's record
  std::string scope;             // the token's scope
  bool first_party = false;      // the token's application is first-party
  // The user is staff, or an application's own token holds "admin".
  bool staff = false;

  bool anonymous() const { return kind == Kind::kAnonymous; }
  // the token's scope holds s, or its application is first-party
  bool scoped(std::string_view s) const;
  bool can_read() const { return scoped("read"); }
  bool can_write() const { return scoped("write"); }
  // staff, and the token may act as staff ("admin", or first-party)
  bool acts_as_staff() const { return staff && scoped(kAdminScope); }
};

// The caller of req: the token of `Authorization: Bearer` or `X-API-KEY`.
// No token at all is an anonymous caller; a malformed, unknown, expired or
// revoked token, or one of a deleted or disabled user, gives nullopt and
// *error (401, simplejwt's "token_not_valid" body); a store failure 503.
std::optional<Caller> authenticate(ServeContext& ctx, const HttpRequest& req, HttpResponse* error);

// Inside a write that hashed a password first (a second or more): whether
// the caller is still what authenticate found, its token still there
// (not revoked since, not expired), its application enabled,
// its user active, with the same password (a change ended its tokens) and
// still staff if it was.  nullopt if so, else the 401 authenticate would
// give now: a caller disabled or demoted meanwhile must not act as before
// (R69, R70).  A caller that acted as staff must still have the power it
// acted with, its application registered with "admin" or first-party,
// else 403, as a fresh request would get (R85).
std::optional<HttpResponse> caller_gone(Txn& txn, std::string_view realm, const Caller& caller);

// DRF's errors, {"detail": "..."}:
HttpResponse not_authenticated();  // 401 + WWW-Authenticate: Bearer
HttpResponse permission_denied();  // 403
// 401 for an anonymous caller, otherwise 403
HttpResponse denied(const Caller& caller);

}  // namespace oauth2::admin
