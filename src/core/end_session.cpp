// OpenID Connect RP-Initiated Logout 1.0: the end-session endpoint ends
// the browser's session at the authorization endpoint.  With an
// id_token_hint that this server signed for the signed-in user it ends it
// at once; otherwise it asks the user first (a page whose form carries the
// session's CSRF value), so that a link on another site cannot sign anyone
// out.  post_logout_redirect_uri must be one the client registered, exactly.

#include "codec.hpp"
#include "endpoint_table.hpp"
#include "endpoint_util.hpp"
#include "jwt.hpp"
#include "oidc.hpp"
#include "session.hpp"

namespace oauth2 {

using namespace detail;

namespace {

const char kSignedOutPage[] = R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Signed out</title>
<style>body{font-family:sans-serif;max-width:30em;margin:3em auto;padding:0 1em}</style>
</head><body><main>
<h1>Signed out</h1>
<p>You are signed out.</p>
</main></body></html>
)";

const char kConfirmPage[] = R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Sign out?</title>
<style>body{font-family:sans-serif;max-width:30em;margin:3em auto;padding:0 1em}
button{margin:1.5em 1em 0 0;padding:.5em 1.5em}</style>
</head><body><main>
<h1>Sign out?</h1>
<p>Signed in as <strong>{{username}}</strong>.</p>
<form method="post" action="">
<input type="hidden" name="csrf_token" value="{{csrf}}">
<button type="submit" name="action" value="logout">Sign out</button>
</form>
</main></body></html>
)";

Response logout_error(int status, std::string_view description) {
  return page(status, render(R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sign-out error</title></head>
<body><main><h1>Sign-out error</h1><p><strong>invalid_request</strong>: {{d}}</p></main></body></html>
)",
                             {{"d", html_escape(description)}}));
}

// What the request asked, checked.
struct LogoutRequest {
  std::string hint_sub;        // the id_token_hint's subject; empty: no hint
  int64_t hint_auth_time = 0;  // the sign-in it was issued in
  std::string redirect_uri;    // empty: show the signed-out page
  std::string state;
};

// the parameter from the POST body, else from the query
std::optional<std::string_view> param(const Form& query, const Form& body, const char* name) {
  if (auto v = body.get(name)) return v;
  return query.get(name);
}

std::optional<Response> check_hint(const Request& req, std::string_view hint, std::string* aud,
                                   LogoutRequest& lr) {
  auto h = read_id_token_hint(req, hint);
  if (!h) return logout_error(400, "id_token_hint is not an id_token of this server.");
  lr.hint_sub = h->sub;
  lr.hint_auth_time = h->auth_time;
  *aud = h->aud;
  return std::nullopt;
}

std::optional<Response> check_logout(Store& store, const Request& req, const Form& query,
                                     const Form& body, LogoutRequest& lr) {
  std::string client_id;
  if (auto hint = param(query, body, "id_token_hint")) {
    if (auto err = check_hint(req, *hint, &client_id, lr)) return err;
  }
  if (auto c = param(query, body, "client_id")) {
    if (!client_id.empty() && client_id != *c) {
      return logout_error(400, "client_id is not the id_token_hint's audience.");
    }
    client_id = std::string(*c);
  }
  if (auto st = param(query, body, "state")) {
    if (st->size() > 2048 || !is_vschar(*st)) return logout_error(400, "state is invalid.");
    lr.state = std::string(*st);
  }
  auto uri = param(query, body, "post_logout_redirect_uri");
  if (!uri) return std::nullopt;
  if (client_id.empty()) {
    return logout_error(400, "post_logout_redirect_uri needs client_id or id_token_hint.");
  }
  Txn txn = store.read();
  auto c = txn.get_client(req.loc.realm, client_id);
  bool registered =
      c && !c->disabled &&
      std::find(c->post_logout_redirect_uris.begin(), c->post_logout_redirect_uris.end(), *uri) !=
          c->post_logout_redirect_uris.end();
  if (!registered) return logout_error(400, "post_logout_redirect_uri is not registered.");
  lr.redirect_uri = std::string(*uri);
  return std::nullopt;
}

// where the browser goes once signed out; forget: and the cookie that
// forgets the session, when the request brought one or a session ended
// (a request without it, another site's, is told nothing of the cookie:
// a browser applies a Set-Cookie on a top-level navigation, and it would
// sign the user out while the session's record stays)
Response signed_out(const Request& req, const LogoutRequest& lr, bool forget) {
  Response r;
  if (lr.redirect_uri.empty()) {
    r = page(200, kSignedOutPage);
  } else {
    r.status = 303;
    r.location = lr.redirect_uri;
    if (!lr.state.empty()) {
      r.location += lr.redirect_uri.find('?') == std::string::npos ? "?" : "&";
      r.location += "state=" + percent_encode(lr.state);
    }
  }
  if (forget) r.cookies.push_back(cookie(req, kSessionCookie, "", 0));
  return r;
}

bool names(const Form& f, std::string_view name) {
  for (const auto& p : f.params()) {
    if (p.first == name) return true;
  }
  return false;
}

// A POST other than the page's own confirmation, sent on (303) as a GET of
// its parameters, the form's over the query's (RP-Initiated Logout 2):
// the browser sends its SameSite=Lax session cookie with that GET, never
// with another site's POST.  The page's own fields stay behind: a CSRF
// value belongs in no URL.
Response as_get(const Form& query, const Form& body) {
  std::string out = "?";
  auto add = [&](const std::string& name, const std::string& value) {
    if (name == "action" || name == "csrf_token") return;
    if (out.size() > 1) out += "&";
    out += percent_encode(name) + "=" + percent_encode(value);
  };
  for (const auto& [name, value] : query.params()) {
    if (!names(body, name)) add(name, value);
  }
  for (const auto& [name, value] : body.params()) add(name, value);
  return see_other(std::move(out));
}

EndpointResult end_session(Store& store, const Request& req, const SessionUser& su,
                           const LogoutRequest& lr) {
  IssueSettings s(req);
  TokenId id = token_id(su.session);
  Response out = signed_out(req, lr, true);
  return pending_response(
      [&store, s, id, out] {
        store.change([&](Txn& txn) {
          txn.delete_token(s.realm, id);
          txn.commit();
          return true;
        });
        return out;
      },
      page_unavailable);
}

}  // namespace

EndpointResult end_session_endpoint(Store& store, const Request& req) {
  std::string_view method = sv(req.c.method);
  if (method != "GET" && method != "POST") {
    return done(logout_error(405, "The end-session endpoint accepts GET and POST."));
  }
  Form query, body;
  if (query.parse(sv(req.c.query)) != Form::Status::kOk) {
    return done(logout_error(400, "The request is malformed or repeats a parameter."));
  }
  if (method == "POST" &&
      (req.c.content_type_count != 1 ||
       !iequals(media_type(sv(req.c.content_type)), "application/x-www-form-urlencoded") ||
       body.parse(sv(req.c.body)) != Form::Status::kOk)) {
    return done(logout_error(400, "The form is malformed."));
  }
  LogoutRequest lr;
  if (auto err = check_logout(store, req, query, body, lr)) return done(std::move(*err));
  const std::string_view cookies = sv(req.c.cookie);
  bool unseen = false;
  auto su = session_user(store, req, cookies, &unseen);
  if (unseen) return catch_up_and_again(store, req);
  const std::string csrf = su ? session_csrf(su->session) : std::string();
  const bool confirmed = su && method == "POST" &&
                         body.get("action") == std::optional<std::string_view>("logout") &&
                         same_ct(csrf, body.get("csrf_token").value_or(""));
  // only the page's own confirmation signs out by POST; any other, whatever
  // its shape (an empty form, a query, a field named action), goes on as
  // a GET, which asks the user
  if (method == "POST" && !confirmed) return done(as_get(query, body));
  if (!su) {
    return done(signed_out(req, lr, request_cookie(req, cookies, kSessionCookie).has_value()));
  }
  // a hint ends the session without asking only if it was issued in
  // this very sign-in: an id_token of an earlier one (in a browser's
  // history, an access log, any RP's hands) asks first (RP-Initiated
  // Logout 2: "does not belong to the current OP session")
  const bool this_session =
      lr.hint_sub == std::to_string(su->id) && lr.hint_auth_time == su->auth_time;
  if (confirmed || this_session) return end_session(store, req, *su, lr);
  return done(page(200, render(kConfirmPage, {{"username", html_escape(su->name)},
                                              {"csrf", html_escape(csrf)}})));
}

}  // namespace oauth2
