// The browser side of the authorization server: the session cookie a user
// gets by signing in at the authorization endpoint, the CSRF value of the
// forms it may post, and the HTML pages those endpoints render.  Shared by
// the authorization endpoint and OpenID Connect's end-session endpoint.

#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "endpoint_util.hpp"

namespace oauth2::detail {

constexpr int64_t kSessionTtl = 3600;
constexpr const char* kSessionCookie = "oauth2_session";
constexpr const char* kCsrfCookie = "oauth2_csrf";  // the sign-in form's

// name's value in a Cookie header, if present
std::optional<std::string> cookie_value(std::string_view header, std::string_view name);
// A cookie's name: "__Host-" and name where the cookie is Secure, so that
// the browser takes it only from this host, with Path=/ and no Domain
// (RFC 6265bis 4.1.3.2): a sibling host under the same registrable domain
// cannot plant a session or CSRF value here (login CSRF); name alone over
// plain http, where the prefix is refused.
std::string cookie_name(std::string_view name, bool secure);
// a Set-Cookie value: HttpOnly, SameSite=Lax, Path=/ (Secure and the
// "__Host-" prefix when secure)
std::string cookie_text(std::string_view name, std::string_view value, int64_t max_age,
                        bool secure);
// Secure on a cookie when the request came over TLS or the issuer is an
// https URL (nginx behind a proxy that ends TLS: the browser's origin is
// the issuer's)
bool secure_cookies(const Request& req);
std::string cookie(const Request& req, std::string_view name, std::string_view value,
                   int64_t max_age);
// the value of the cookie that cookie(req, name, ...) sets, in a Cookie
// header: over https only the prefixed name is read
std::optional<std::string> request_cookie(const Request& req, std::string_view cookies,
                                          std::string_view name);

// constant-time equality of two strings
bool same_ct(std::string_view a, std::string_view b);

// The CSRF value of the forms a signed-in user posts: derived from the
// session, so it needs no cookie of its own and dies with the session.
std::string session_csrf(std::string_view session);

// A value start_session() makes (new_token(): 43 base64url characters),
// the only kind session_user() looks up: a cookie of another form (the
// key a record of the daemon's pages derives from its cookie,
// "oauth2-admin page session:" and the cookie, say) is no sign-in here.
constexpr size_t kSessionValueLen = 43;
bool is_session_value(std::string_view value);

// The user a session cookie names, if it is live and the user active.
// *unseen: the cookie is well-formed and names no record this edge's
// mirror holds, which a sign-in on another edge a moment ago would make
// (the browser sent on here by its 303): the endpoint answers only once
// the mirror has caught up (catch_up_and_again), never the sign-in page
// at once.  Set only when may_catch_up().
struct SessionUser {
  uint64_t id = 0;
  std::string name;
  std::string session;    // the cookie's value
  int64_t auth_time = 0;  // when the user signed in
};
std::optional<SessionUser> session_user(Store& store, const Request& req, std::string_view cookies,
                                        bool* unseen);
// Whether that session still holds, read again in a write: not ended
// (signed out, the password changed, the user deactivated) nor expired
// since session_user() read it.  What the user decided on it (a code, a
// device approved) is written only then (R39, R70).
bool session_holds(Txn& txn, std::string_view realm, const SessionUser& su, int64_t now);
// a 303 to location (a page's own URL after its form: the browser asks
// again with a GET)
Response see_other(std::string location);
// A request a relying party's page POSTs as a form to the authorization
// endpoint (OIDC Core 3.1.2.1) goes on as a GET of the same parameters: a
// 303 to the endpoint's own URL.
// The browser sends its SameSite=Lax session cookie with that GET (never
// with another site's POST), and the pages' forms (action="") keep the
// parameters.  nullopt: not such a request (a GET, a query, an empty
// form, or a page's own form, which names its action).
std::optional<Response> form_post_as_get(const Request& req, const Form& body);

// The sign-in form of the browser pages, naming app (what asks the user to
// sign in), with a double-submit CSRF cookie (the one the browser has, if
// well formed); and its POST: the CSRF check, the throttles, the password
// off the event loop, then a session cookie and a 303 to requery.
// (authorize.cpp)
Response sign_in_page(const Request& req, std::string_view cookies, std::string_view app,
                      std::string_view hint);
EndpointResult sign_in_post(Store& store, const Request& req, const std::string& app,
                            const Form& body, std::string_view cookies, const std::string& requery);

// {{name}} -> vars[name]; values are HTML already (escaped by the caller)
std::string render(std::string_view tpl,
                   const std::vector<std::pair<std::string, std::string>>& vars);
Response page(int status, std::string body);

}  // namespace oauth2::detail
