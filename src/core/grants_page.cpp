// The authorized-grants page (oauth2_authorized_grants), as
// django-oauth-toolkit's /o/authorized_tokens/: a signed-in user (any
// user, behind the same session cookie as the authorization endpoint) sees
// the applications it has granted scopes to (remembered consent,
// consent.hpp) and revokes a grant, which also revokes every token the
// user holds from that application.  Not signed in: the sign-in form of the
// authorization endpoint, then the list.  A revocation is a POST carrying
// client_id and the session's CSRF value, answered 303 back to the page.

#include <optional>
#include <string>
#include <string_view>

#include "apikeys.hpp"
#include "codec.hpp"
#include "consent.hpp"
#include "endpoint_table.hpp"
#include "endpoint_util.hpp"
#include "session.hpp"

namespace oauth2 {

using namespace detail;

namespace {

constexpr const char* kPageName = "The authorized applications page";

const char kListPage[] = R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Authorized applications</title>
<style>body{font-family:sans-serif;max-width:40em;margin:3em auto;padding:0 1em}
li{margin:1em 0}form{display:inline}button{margin-left:1em;padding:.2em 1em}</style>
</head><body><main>
<h1>Authorized applications</h1>
<p>Signed in as <strong>{{username}}</strong>.</p>
{{items}}
</main></body></html>
)";

const char kItem[] = R"(<li><strong>{{app_name}}</strong> ({{client_id}}): {{scope}};
granted <time datetime="{{granted}}">{{granted}}</time>
<form method="post" action="">
<input type="hidden" name="csrf_token" value="{{csrf}}">
<input type="hidden" name="client_id" value="{{client_id}}">
<button type="submit" name="action" value="revoke">Revoke</button>
</form></li>
)";

Response grants_error(int status, std::string_view description) {
  return page(status, render(R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Authorized applications</title></head>
<body><main><h1>Authorized applications</h1><p><strong>invalid_request</strong>: {{d}}</p></main></body></html>
)",
                             {{"d", html_escape(description)}}));
}

// The page's own URL, for the 303 after a sign-in or a revocation: the
// request's path, percent-encoded but for '/', so that no byte of it can
// break the Location header, and with one leading '/': a path that
// starts "//" is another host in Location (scheme-relative), and nginx
// still finds this page for "//evil.example/..%2Fo/authorized_tokens/",
// whose link would send a user off-site with their password just typed.
std::string self_url(const Request& req) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : sv(req.c.path)) {
    if (isalnum(ch) || ch == '/' || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
      out += static_cast<char>(ch);
    } else {
      out += '%';
      out += kHex[ch >> 4];
      out += kHex[ch & 15];
    }
  }
  const size_t first = out.find_first_not_of('/');
  if (first == std::string::npos) return "/";
  return first > 1 ? out.substr(first - 1) : out;
}

Response list_page(Store& store, const Request& req, const SessionUser& su) {
  const std::string csrf = html_escape(session_csrf(su.session));
  std::string items;
  {
    Txn txn = store.read();
    for (const Token& t : user_consents(txn, req.loc.realm, su.id, req.c.now)) {
      auto c = txn.get_client(req.loc.realm, t.client_id);
      const std::string name = c && !c->name.empty() ? c->name : t.client_id;
      items += render(kItem, {{"app_name", html_escape(name)},
                              {"client_id", html_escape(t.client_id)},
                              {"scope", html_escape(t.scope)},
                              {"granted", html_escape(rfc3339(t.issued_at))},
                              {"csrf", csrf}});
    }
  }
  items = items.empty() ? "<p>You have not authorized any application.</p>"
                        : "<ul>\n" + items + "</ul>";
  return page(200, render(kListPage, {{"username", html_escape(su.name)}, {"items", items}}));
}

// The revocation: the consent and the user's tokens from the client, in a
// pending write; a client_id the user never granted changes nothing.
EndpointResult revoke(Store& store, const Request& req, const SessionUser& su,
                      std::string client_id) {
  IssueSettings s(req);
  const uint64_t user = su.id;
  Response back = see_other(self_url(req));
  return pending_response(
      [&store, s, user, client_id, back] {
        store.change([&](Txn& txn) {
          if (!revoke_consent(txn, s.realm, user, client_id)) return false;
          txn.commit();
          return true;
        });
        return back;
      },
      page_unavailable);
}

bool read_form(const Request& req, Form& body) {
  return req.c.content_type_count == 1 &&
         iequals(media_type(sv(req.c.content_type)), "application/x-www-form-urlencoded") &&
         body.parse(sv(req.c.body)) == Form::Status::kOk;
}

}  // namespace

EndpointResult authorized_grants_endpoint(Store& store, const Request& req) {
  std::string_view method = sv(req.c.method);
  if (method != "GET" && method != "POST") {
    return done(grants_error(405, "This page accepts GET and POST."));
  }
  Form body;
  if (method == "POST" && !read_form(req, body)) {
    return done(grants_error(400, "The form is malformed."));
  }
  const std::string cookies(sv(req.c.cookie));
  bool unseen = false;
  std::optional<SessionUser> su = session_user(store, req, cookies, &unseen);
  if (unseen) return catch_up_and_again(store, req);
  const std::string action(body.get("action").value_or(""));
  if (!su) {
    if (method == "POST" && action == "login") {
      return sign_in_post(store, req, kPageName, body, cookies, self_url(req));
    }
    return done(sign_in_page(req, cookies, kPageName, ""));
  }
  if (method == "GET") return done(list_page(store, req, *su));
  if (action != "revoke") return done(grants_error(400, "The form has no known action."));
  if (!same_ct(session_csrf(su->session), body.get("csrf_token").value_or(""))) {
    return done(grants_error(403, "The form has expired; go back and try again."));
  }
  std::string_view client_id = body.get("client_id").value_or("");
  if (client_id.empty() || client_id.size() > kMaxClientId) {
    return done(grants_error(400, "client_id is missing or invalid."));
  }
  return revoke(store, req, *su, std::string(client_id));
}

}  // namespace oauth2
