// The device flow's verification page (RFC 8628 3.3): behind the sign-in
// of the authorization endpoint (session.hpp), the user types the user
// code the device shows, sees which application asks for what, and
// approves or denies.  A wrong user code counts against the address (the
// endpoint's address throttle) and against the signed-in user (R17's
// throttles, key uc:), so that the 20^8 codes cannot be tried in bulk.

#include "cluster.hpp"
#include "codec.hpp"
#include "device.hpp"
#include "session.hpp"

namespace oauth2 {

using namespace detail;

namespace {

constexpr const char* kAppName = "A device";

const char kStyle[] =
    "<style>body{font-family:sans-serif;max-width:30em;margin:3em auto;padding:0 1em}"
    "input{font-size:1.5em;letter-spacing:.1em;text-transform:uppercase}"
    "button{margin:1.5em 1em 0 0;padding:.5em 1.5em}.error{color:#a00}</style>";

const char kCodePage[] = R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Connect a device</title>{{style}}
</head><body><main>
<h1>Connect a device</h1>
<p>Signed in as <strong>{{username}}</strong>.</p>
{{error}}
<form method="post" action="">
<input type="hidden" name="csrf_token" value="{{csrf}}">
<label for="user_code">Enter the code the device shows</label>
<input id="user_code" name="user_code" value="{{user_code}}" autocomplete="off" required autofocus>
<button type="submit" name="action" value="lookup">Continue</button>
</form>
</main></body></html>
)";

const char kApprovePage[] = R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Authorize {{app_name}}</title>{{style}}
</head><body><main>
<h1>Authorize {{app_name}}?</h1>
<p>Signed in as <strong>{{username}}</strong>.</p>
<p>A device showing the code <strong>{{user_code}}</strong> asks to act as you in
<strong>{{app_name}}</strong> with these permissions:</p>
<ul>{{scope_items}}</ul>
<form method="post" action="">
<input type="hidden" name="csrf_token" value="{{csrf}}">
<input type="hidden" name="user_code" value="{{user_code}}">
<button type="submit" name="action" value="approve">Approve</button>
<button type="submit" name="action" value="deny">Deny</button>
</form>
</main></body></html>
)";

const char kDonePage[] = R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{title}}</title>{{style}}
</head><body><main><h1>{{title}}</h1><p>{{text}}</p></main></body></html>
)";

Response message_page(int status, std::string_view title, std::string_view text) {
  return page(status, render(kDonePage, {{"style", kStyle},
                                         {"title", html_escape(title)},
                                         {"text", html_escape(text)}}));
}

Response code_form(const SessionUser& su, std::string_view csrf, std::string_view prefill,
                   const char* error) {
  std::string err = error ? std::string("<p class=\"error\">") + error + "</p>" : std::string();
  return page(error ? 400 : 200, render(kCodePage, {{"style", kStyle},
                                                    {"username", html_escape(su.name)},
                                                    {"error", err},
                                                    {"csrf", html_escape(csrf)},
                                                    {"user_code", html_escape(prefill)}}));
}

std::string scope_list(std::string_view scope) {
  std::vector<std::string_view> items;
  std::string out;
  if (!parse_scope(scope, &items)) return out;
  for (auto s : items) out += "<li>" + html_escape(s) + "</li>";
  return out;
}

bool read_form(const Request& req, Form& body) {
  return req.c.content_type_count == 1 &&
         iequals(media_type(sv(req.c.content_type)), "application/x-www-form-urlencoded") &&
         body.parse(sv(req.c.body)) == Form::Status::kOk;
}

// A user code that names no live request: counted per address (the
// endpoint's throttle, through auth_failed) and per user.
Response wrong_code(const Request& req, const SessionUser& su, std::string_view csrf) {
  IssueSettings(req).throttles().user_code_failed(std::to_string(su.id));
  Response r =
      code_form(su, csrf, "", "That code is not valid or has expired. Check it and try again.");
  r.auth_failed = true;
  r.refused = "a wrong user code";
  return r;
}

// The approval page of the request the user code names, or wrong_code().
// In cluster mode a code this edge's mirror does not hold may have been
// made on another edge a moment ago: it is looked up again once the
// mirror has caught up, and only then counted as wrong (R83).
EndpointResult lookup(Store& store, const Request& req, const SessionUser& su,
                      std::string_view csrf, const std::optional<std::string>& code) {
  if (!code) return done(wrong_code(req, su, csrf));
  Txn txn = store.read();
  auto p = find_user_code(txn, req.loc.realm, *code, req.c.now);
  if (!p && may_catch_up(store, req)) return catch_up_and_again(store, req);
  auto client = p ? txn.get_client(req.loc.realm, p->device.client_id) : std::nullopt;
  if (!p || !client || client->disabled) return done(wrong_code(req, su, csrf));
  return done(page(200, render(kApprovePage, {{"style", kStyle},
                                              {"app_name", html_escape(client->name)},
                                              {"username", html_escape(su.name)},
                                              {"user_code", format_user_code(*code)},
                                              {"scope_items", scope_list(p->device.scope)},
                                              {"csrf", html_escape(csrf)}})));
}

// Approve or Deny posted: the decision in one change.  The change reads
// the session again: signed out, the password changed or the user
// deactivated while the request waited for the thread pool, the device
// is not connected on their behalf (R39, R70), and the browser is sent
// back to the page, which asks them to sign in.  A code the mirror does
// not hold (cluster mode) is decided again once it has caught up, as
// the grants do (run_change), before it counts as wrong.
EndpointResult decide(Store& store, const Request& req, const SessionUser& su,
                      const std::string& csrf, const std::optional<std::string>& code,
                      bool approve) {
  if (!code) return done(wrong_code(req, su, csrf));
  auto found = std::make_shared<bool>(false);
  auto state = std::make_shared<Response>();
  IssueSettings s(req);
  const std::string normalized = *code;
  const std::string self = "?" + std::string(sv(req.c.query));
  return pending(
      [&store, s, su, normalized, approve, found, state, self] {
        try {
          bool holds = true;
          auto decide_once = [&] {
            *found = store.change([&](Txn& txn) {
              holds = session_holds(txn, s.realm, su, s.now);
              return holds && decide_device(txn, s.realm, normalized, su.id, approve, s.now);
            });
          };
          decide_once();
          if (holds && !*found && store.cluster()) {  // once: what etcd lacks now, it lacks
            store.cluster()->catch_up(store);
            decide_once();
          }
          if (!holds) *state = see_other(self);
        } catch (const std::exception& e) {
          Response busy = message_page(503, "Busy", "Try again in a moment.");
          busy.retry_after = 1;
          *state = failed(std::move(busy), e);
        }
      },
      [req_copy = IssueSettings(req), su, csrf, found, state, approve]() {
        if (state->status != 200) return std::move(*state);
        if (!*found) {
          req_copy.throttles().user_code_failed(std::to_string(su.id));
          Response r =
              message_page(400, "Code not valid", "That code is not valid or has expired.");
          r.auth_failed = true;
          r.refused = "a wrong user code";
          return r;
        }
        return approve ? message_page(200, "Device connected", "You may return to your device.")
                       : message_page(200, "Request denied", "The device was not connected.");
      });
}

}  // namespace

EndpointResult device_endpoint(Store& store, const Request& req) {
  std::string_view method = sv(req.c.method);
  if (method != "GET" && method != "POST") {
    return done(message_page(405, "Not allowed", "This page accepts GET and POST."));
  }
  Form query;
  Form body;
  if (query.parse(sv(req.c.query)) != Form::Status::kOk ||
      (method == "POST" && !read_form(req, body))) {
    return done(message_page(400, "Bad request", "The request is malformed."));
  }
  const std::string cookies(sv(req.c.cookie));
  bool unseen = false;
  std::optional<SessionUser> user = session_user(store, req, cookies, &unseen);
  if (unseen) return catch_up_and_again(store, req);
  std::string action(body.get("action").value_or(""));
  if (!user) {
    if (method == "POST" && action == "login") {
      return sign_in_post(store, req, kAppName, body, cookies, "?" + std::string(sv(req.c.query)));
    }
    return done(sign_in_page(req, cookies, kAppName, ""));
  }
  const std::string csrf = session_csrf(user->session);
  if (method == "GET") {
    auto prefill = query.get("user_code").value_or("");
    if (prefill.size() > 64) prefill = "";
    return done(code_form(*user, csrf, prefill, nullptr));
  }
  if (!same_ct(csrf, body.get("csrf_token").value_or(""))) {
    return done(message_page(403, "Form expired", "The form has expired; go back and try again."));
  }
  if (unsigned wait = IssueSettings(req).throttles().user_code_wait(std::to_string(user->id))) {
    Response r =
        message_page(429, "Too many attempts", "Too many wrong codes: wait and try again.");
    r.retry_after = wait;
    r.refused = "too many wrong user codes";
    r.limited = OAUTH2_LIMITED_THROTTLE;
    return done(std::move(r));
  }
  auto code = normalize_user_code(body.get("user_code").value_or(""));
  if (action == "lookup") return lookup(store, req, *user, csrf, code);
  if (action == "approve" || action == "deny") {
    return decide(store, req, *user, csrf, code, action == "approve");
  }
  return done(message_page(400, "Bad request", "The form is malformed."));
}

}  // namespace oauth2
