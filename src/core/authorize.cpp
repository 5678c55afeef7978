// The authorization endpoint (RFC 6749 4.1, RFC 7636, RFC 9207): checks the
// request, logs the user in (a session in the store, its cookie HttpOnly),
// asks for consent and redirects back with a code.  Errors before the
// client and its redirect_uri are known render a page and never redirect
// (docs/security.md R20); errors after redirect back with error and state (R24).

#include <algorithm>
#include <cctype>
#include <functional>
#include <memory>

#include "audience.hpp"
#include "codec.hpp"
#include "consent.hpp"
#include "crypto.hpp"
#include "endpoint_table.hpp"
#include "endpoint_util.hpp"
#include "json.hpp"
#include "oidc.hpp"
#include "password.hpp"
#include "session.hpp"
#include "unicode.hpp"

namespace oauth2 {

using namespace detail;

namespace {

constexpr size_t kMaxState = 2048;

// ------------------------------------------------------------- pages

const char kLoginPage[] = R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in</title>
<style>body{font-family:sans-serif;max-width:26em;margin:3em auto;padding:0 1em}
label{display:block;margin-top:1em}input{width:100%;padding:.4em}
button{margin-top:1.5em;padding:.5em 1.5em}.error{color:#a00}</style>
</head><body><main>
<h1>Sign in</h1>
<p><strong>{{app_name}}</strong> asks you to sign in.</p>
{{error}}
<form method="post" action="">
<input type="hidden" name="csrf_token" value="{{csrf}}">
<input type="hidden" name="action" value="login">
<label for="username">Username</label>
<input id="username" name="username" value="{{login_hint}}" autocomplete="username" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
</main></body></html>
)";

const char kConsentPage[] = R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Authorize {{app_name}}</title>
<style>body{font-family:sans-serif;max-width:30em;margin:3em auto;padding:0 1em}
button{margin:1.5em 1em 0 0;padding:.5em 1.5em}</style>
</head><body><main>
<h1>Authorize {{app_name}}?</h1>
<p>Signed in as <strong>{{username}}</strong>.</p>
<p><strong>{{app_name}}</strong> asks for these permissions:</p>
<ul>{{scope_items}}</ul>
<form method="post" action="">
<input type="hidden" name="csrf_token" value="{{csrf}}">
<button type="submit" name="action" value="allow">Authorize</button>
<button type="submit" name="action" value="deny">Deny</button>
</form>
</main></body></html>
)";

const char kErrorPage[] = R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Authorization error</title>
<style>body{font-family:sans-serif;max-width:30em;margin:3em auto;padding:0 1em}</style>
</head><body><main>
<h1>Authorization error</h1>
<p><strong>{{error_code}}</strong>: {{error_description}}</p>
</main></body></html>
)";

std::string_view template_or(const std::string& t, std::string_view def) {
  return t.empty() ? def : std::string_view(t);
}

Response error_page(const Request& req, int status, std::string_view code,
                    std::string_view description) {
  return page(status, render(template_or(req.loc.error_template, kErrorPage),
                             {{"error_code", html_escape(code)},
                              {"error_description", html_escape(description)}}));
}

// ---------------------------------------------------------- redirects

// How the answer goes back to the client: response_mode (OAuth 2.0
// Multiple Response Type Encoding Practices 2.1, and the Form Post
// Response Mode)
enum class ResponseMode { kQuery, kFragment, kFormPost };

// The script that submits form_post's form, the one script the pages'
// Content-Security-Policy allows, by its hash (the shim's
// ngx_http_oauth2_csp: 'sha256-' and the base64 of its SHA-256)
constexpr char kFormPostScript[] = "document.forms[0].submit()";

// form_post: a page whose form the browser posts to redirect_uri at once
// (a button where scripts are off); every value HTML-escaped
Response form_post(std::string_view uri,
                   const std::vector<std::pair<std::string, std::string>>& params) {
  std::string fields;
  for (const auto& [k, v] : params) {
    if (v.empty()) continue;
    fields += "<input type=\"hidden\" name=\"" + k + "\" value=\"" + html_escape(v) + "\">";
  }
  return page(200,
              "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
              "<title>Continue</title></head><body><form method=\"post\" action=\"" +
                  html_escape(uri) + "\">" + fields +
                  "<noscript><button type=\"submit\">Continue</button></noscript></form>"
                  "<script>" +
                  kFormPostScript + "</script></body></html>");
}

// redirect_uri (its own query kept, R23) plus the parameters, each
// percent-encoded, in its query or its fragment: nothing raw ever reaches
// the Location header; or form_post's page
Response redirect_to(std::string_view uri, ResponseMode mode,
                     const std::vector<std::pair<std::string, std::string>>& params) {
  if (mode == ResponseMode::kFormPost) return form_post(uri, params);
  std::string loc(uri);
  char sep = mode == ResponseMode::kFragment ? '#' : loc.find('?') == std::string::npos ? '?' : '&';
  for (const auto& [k, v] : params) {
    if (v.empty()) continue;
    loc.push_back(sep);
    sep = '&';
    loc += k;
    loc.push_back('=');
    loc += percent_encode(v);
  }
  Response r;
  r.status = 303;  // never 307 after a POST (R23)
  r.location = std::move(loc);
  return r;
}

// RFC 8252 7.3 / docs/security.md R19: loopback redirect URIs match on any port
std::optional<std::string> strip_loopback_port(std::string_view u) {
  for (std::string_view host : {"http://127.0.0.1", "http://[::1]"}) {
    if (u.substr(0, host.size()) != host) continue;
    std::string_view rest = u.substr(host.size());
    if (!rest.empty() && rest[0] == ':') {
      size_t i = 1;
      while (i < rest.size() && rest[i] >= '0' && rest[i] <= '9') i++;
      if (i == 1 || i > 6) return std::nullopt;
      rest = rest.substr(i);
    }
    if (!rest.empty() && rest[0] != '/' && rest[0] != '?') return std::nullopt;
    return std::string(host) + std::string(rest);
  }
  return std::nullopt;
}

}  // namespace

bool detail::redirect_matches(std::string_view asked, std::string_view registered) {
  if (asked == registered) return true;  // R19: exact string comparison
  auto a = strip_loopback_port(asked);
  auto r = strip_loopback_port(registered);
  return a && r && *a == *r;
}

namespace {

bool valid_challenge(std::string_view v) {
  if (v.size() < 43 || v.size() > 128) return false;
  return std::all_of(v.begin(), v.end(), [](char ch) {
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_' || ch == '~';
  });
}

// What a valid authorization request resolved to.
struct AuthzRequest {
  Client client;
  std::string redirect_uri;           // where to send the user back
  bool redirect_uri_omitted = false;  // resolved to the one registered
  std::string scope;
  std::string state;
  std::string challenge;
  // prompt (OpenID Connect Core 3.1.2.1; none also without openid)
  bool prompt_none = false;
  bool prompt_login = false;
  bool prompt_consent = false;
  int64_t max_age = -1;  // -1: none
  bool openid = false;   // the scope holds openid
  std::string nonce;
  std::string login_hint;
  // id_token_hint's user (its id in decimal); empty: no hint
  std::string hint_sub;
  std::string issuer;  // RFC 9207's iss, on every redirect back
  ResponseMode mode = ResponseMode::kQuery;
  // RFC 8707 resources (audience.hpp); empty: none
  std::string audience;
  // RFC 9449 10: the thumbprint of the DPoP key the code is bound to
  std::string dpop_jkt;
};

std::string scope_items(std::string_view scope) {
  std::vector<std::string_view> items;
  std::string out;
  if (!parse_scope(scope, &items)) return out;
  for (auto s : items) out += "<li>" + html_escape(s) + "</li>";
  return out;
}

// The login page of app with its double-submit CSRF value, an error
// message (nullptr: none) and the username to fill in (login_hint).
Response login_form(const Location& loc, std::string_view app, std::string_view csrf_value,
                    const char* message, std::string_view hint = {}) {
  std::string err = message ? std::string("<p class=\"error\" role=\"alert\">") + message + "</p>"
                            : std::string();
  return page(200, render(template_or(loc.login_template, kLoginPage),
                          {{"app_name", html_escape(app)},
                           {"csrf", html_escape(csrf_value)},
                           {"error", err},
                           {"login_hint", html_escape(hint)}}));
}

// The checks whose errors are pages, never redirects (R20): the client,
// its redirect_uri and the state to send back.
std::optional<Response> check_before_redirect(Store& store, const Request& req, const Form& query,
                                              AuthzRequest& az) {
  auto client_id = query.get("client_id");
  if (!client_id) return error_page(req, 400, "invalid_request", "client_id is missing.");
  {
    Txn txn = store.read();
    auto c = txn.get_client(req.loc.realm, *client_id);
    if (!c || c->disabled) return error_page(req, 400, "invalid_client", "Unknown client.");
    az.client = std::move(*c);
  }
  const std::vector<std::string>& registered = az.client.redirect_uris;
  auto asked = query.get("redirect_uri");
  if (!asked) {
    // R21: optional only with exactly one registered URI, and never in
    // an OpenID request (OpenID Connect Core 3.1.2.1)
    if (registered.size() != 1 || scope_has(query.get("scope").value_or(""), "openid")) {
      return error_page(req, 400, "invalid_request", "redirect_uri is required.");
    }
    az.redirect_uri = registered[0];
    az.redirect_uri_omitted = true;
  } else {
    bool found = std::any_of(registered.begin(), registered.end(),
                             [&](const std::string& r) { return redirect_matches(*asked, r); });
    if (!found) {
      return error_page(req, 400, "invalid_request",
                        "redirect_uri does not match a registered one.");
    }
    az.redirect_uri = std::string(*asked);
  }
  if (auto st = query.get("state")) {
    if (st->size() > kMaxState || !is_vschar(*st)) {
      return error_page(req, 400, "invalid_request", "state is invalid.");
    }
    az.state = std::string(*st);
  }
  az.issuer = req.loc.issuer;
  return std::nullopt;
}

// An error sent back to the client (R24).
Response back_error(const AuthzRequest& az, std::string_view code, std::string_view description) {
  return redirect_to(az.redirect_uri, az.mode,
                     {{"error", std::string(code)},
                      {"error_description", std::string(description)},
                      {"state", az.state},
                      {"iss", az.issuer}});
}

// R32: S256 only; required for public clients.
std::optional<Response> check_pkce(const Form& query, AuthzRequest& az) {
  auto challenge = query.get("code_challenge");
  auto method = query.get("code_challenge_method");
  if (method && *method != "S256") {
    return back_error(az, "invalid_request", "code_challenge_method must be S256");
  }
  if (method && !challenge) return back_error(az, "invalid_request", "code_challenge is missing");
  if (challenge) {
    if (!method) {
      // a missing method means plain (RFC 7636 4.3), which is refused
      return back_error(az, "invalid_request", "code_challenge_method must be S256");
    }
    if (!valid_challenge(*challenge)) {
      return back_error(az, "invalid_request", "code_challenge is malformed");
    }
    az.challenge = std::string(*challenge);
  } else if (!az.client.confidential) {
    return back_error(az, "invalid_request", "PKCE (code_challenge) is required");
  }
  return std::nullopt;
}

// id_token_hint (OpenID Connect Core 3.1.2.1): an id_token this server
// issued to this client.  The answer is for its user only: signed in as
// another, the browser signs in again (prompt=none: login_required).
std::optional<Response> check_id_token_hint(const Request& req, const Form& query,
                                            AuthzRequest& az) {
  auto hint = query.get("id_token_hint");
  if (!hint) return std::nullopt;
  auto h = read_id_token_hint(req, *hint);
  if (!h || h->aud != az.client.client_id) {
    return back_error(az, "invalid_request", "id_token_hint is not an id_token of this client");
  }
  az.hint_sub = std::move(h->sub);
  return std::nullopt;
}

// prompt, max_age, nonce, login_hint and id_token_hint (OpenID Connect
// Core 3.1.2.1); prompt=none is honoured for every request, the rest
// matter with openid.
std::optional<Response> check_oidc(const Request& req, const Form& query, AuthzRequest& az) {
  // the scope asked decides, as for redirect_uri (check_client): a
  // request without scope is none, whatever the application's default
  // grants it
  az.openid = scope_has(query.get("scope").value_or(""), "openid") && scope_has(az.scope, "openid");
  std::vector<std::string_view> prompts;
  if (auto p = query.get("prompt"); p && !parse_scope(*p, &prompts)) {
    return back_error(az, "invalid_request", "prompt is malformed");
  }
  for (auto p : prompts) {
    if (p == "none") {
      az.prompt_none = true;
    } else if (p == "login" || p == "select_account") {
      // select_account: a session holds one account, and the sign-in
      // page is where the user chooses another
      az.prompt_login = true;
    } else if (p == "consent") {
      az.prompt_consent = true;
    } else {
      return back_error(az, "invalid_request",
                        "prompt must be none, login, consent or select_account");
    }
  }
  if (az.prompt_none && prompts.size() > 1) {
    return back_error(az, "invalid_request", "prompt=none cannot be combined");
  }
  if (auto m = query.get("max_age")) {
    if (m->empty() || m->size() > 9 ||
        !std::all_of(m->begin(), m->end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return back_error(az, "invalid_request", "max_age must be a number of seconds");
    }
    az.max_age = std::stoll(std::string(*m));
  }
  if (auto n = query.get("nonce")) {
    if (n->size() > kMaxNonce || !is_vschar(*n)) {
      return back_error(az, "invalid_request", "nonce is invalid");
    }
    az.nonce = std::string(*n);
  }
  if (auto h = query.get("login_hint"); h && h->size() <= kMaxUsernameBytes) {
    az.login_hint = std::string(*h);
  }
  return check_id_token_hint(req, query, az);
}

// dpop_jkt (RFC 9449 10): the code is redeemed only with a proof by the
// key of that thumbprint (base64url of a SHA-256, 43 characters).  A
// location with DPoP off ignores it, as at the token endpoint.
std::optional<Response> check_dpop_jkt(const Request& req, const Form& query, AuthzRequest& az) {
  auto j = query.get("dpop_jkt");
  if (!j || !req.loc.dpop) return std::nullopt;
  const bool b64url = std::all_of(j->begin(), j->end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
  if (j->size() != 43 || !b64url) {
    return back_error(az, "invalid_request", "dpop_jkt must be a JWK SHA-256 thumbprint");
  }
  az.dpop_jkt = std::string(*j);
  return std::nullopt;
}

// The query the login form sends the browser back to once the user has
// signed in: without prompt=login, max_age and id_token_hint, which that
// sign-in just satisfied (else prompt=login would ask again for ever).
std::string after_login_query(std::string_view query, const AuthzRequest& az) {
  std::string out;
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t end = query.find('&', pos);
    if (end == std::string_view::npos) end = query.size();
    std::string_view part = query.substr(pos, end - pos);
    // the name as Form reads it ("pr%6Fmpt" is prompt too); who signed
    // in now is who the request is for
    const std::string key = form_decode(part.substr(0, part.find('='))).value_or("");
    if (!part.empty() && key != "prompt" && key != "max_age" && key != "id_token_hint") {
      out += out.empty() ? "" : "&";
      out += part;
    }
    pos = end + 1;
  }
  if (az.prompt_consent) out += out.empty() ? "prompt=consent" : "&prompt=consent";
  return "?" + out;
}

// The rest of the request, once errors can go back to the client.
std::optional<Response> check_authz(const Request& req, const Form& query, AuthzRequest& az) {
  // first, so that every error after it goes back as asked; any other
  // mode (JARM's jwt, say) is refused, in the query, never answered in
  // another than the client asked for
  if (auto mode = query.get("response_mode")) {
    if (*mode == "fragment") {
      az.mode = ResponseMode::kFragment;
    } else if (*mode == "form_post") {
      az.mode = ResponseMode::kFormPost;
    } else if (*mode != "query") {
      return back_error(az, "invalid_request",
                        "response_mode must be query, fragment or form_post");
    }
  }
  // OpenID Connect Core 6.1, 6.2 and 3.1.2.6: no request objects, by
  // value or by reference; ignored, the state and nonce one carries would
  // be lost
  if (query.has("request")) {
    return back_error(az, "request_not_supported", "The request parameter is not supported");
  }
  if (query.has("request_uri")) {
    return back_error(az, "request_uri_not_supported",
                      "The request_uri parameter is not supported");
  }
  auto response_type = query.get("response_type");
  if (!response_type) return back_error(az, "invalid_request", "response_type is required");
  if (*response_type != "code") {
    // R25: no implicit grant
    return back_error(az, "unsupported_response_type", "Only response_type=code is supported");
  }
  if (!az.client.allows_grant("authorization_code")) {
    return back_error(az, "unauthorized_client",
                      "The client may not use the authorization code grant");
  }
  auto scope = grant_scope(az.client, query.get("scope").value_or(""), req.loc.default_scope);
  if (!scope) return back_error(az, "invalid_scope", "The requested scope is not allowed");
  az.scope = std::move(*scope);
  Target target = requested_target(query, az.client);
  if (target.error) return back_error(az, target.error, target.description);
  az.audience = std::move(target.audience);
  if (auto err = check_pkce(query, az)) return err;
  if (auto err = check_dpop_jkt(req, query, az)) return err;
  return check_oidc(req, query, az);
}

// The login and consent forms post to the endpoint, with the query
// unchanged.  false: not one well-formed form.
bool read_post_form(const Request& req, Form& body) {
  return req.c.content_type_count == 1 &&
         iequals(media_type(sv(req.c.content_type)), "application/x-www-form-urlencoded") &&
         body.parse(sv(req.c.body)) == Form::Status::kOk;
}

// A session for a user whose password was right, in txn: the response
// sets its cookie (and the device cookie of a new device) and sends the
// browser back to the request, now to the consent page.
Response start_session(Txn& txn, const IssueSettings& s, const LoginCheck& check,
                       const LoginOrigin& origin, bool new_device, const std::string& requery,
                       bool secure) {
  std::string token = new_token();
  WipeOnExit wipe_token(token);
  Token sess;
  sess.type = TokenType::kSession;
  sess.issued_at = s.now;
  sess.expires_at = add_ttl(s.now, kSessionTtl);
  sess.user = std::to_string(check.user->id);
  const std::string device = account_signed_in(txn, s.realm, check.user->id, origin, s.now);
  txn.put_new_token(s.realm, token_id(token), sess);
  txn.commit();
  Response r;
  r.status = 303;
  r.location = requery;
  r.cookies.push_back(cookie_text(kSessionCookie, token, kSessionTtl, secure));
  if (new_device || device != origin.device) {
    r.cookies.push_back(cookie_text(kDeviceCookie, device, kDeviceCookieTtl, secure));
  }
  return r;
}

// The sign-in form again, 429: too many failed sign-ins (the throttles or
// the account's lock), for wait seconds.
Response locked_out(const Location& loc, const std::string& app, const std::string& csrf_value,
                    unsigned wait) {
  Response r = login_form(loc, app, csrf_value, "Too many failed sign-ins: wait and try again.");
  r.status = 429;
  r.retry_after = wait;
  r.refused = "too many failed passwords";
  r.limited = OAUTH2_LIMITED_THROTTLE;
  return r;
}

// The login form's POST: the throttles and the account's lock first, then
// the password off the event loop, with the session write.  A browser
// that signs in is remembered by its device cookie, so that it keeps
// signing in while the account is locked for strangers (R83).
EndpointResult sign_in(Store& store, const Request& req, const std::string& app,
                       const std::string& csrf_value, const std::string& name, std::string password,
                       std::optional<std::string> device, const std::string& requery) {
  IssueSettings s(req);
  LoginOrigin origin{s.address, ""};
  const bool new_device = !device || !valid_device_cookie(*device);
  origin.device = new_device ? new_device_cookie() : *device;
  LoginTarget target;
  unsigned wait;
  {
    Txn txn = store.read();
    target = resolve_login(txn, s.realm, name, false);
    wait = login_gate(txn, s.throttles(), s.realm, target, origin, s.now);
  }
  if (wait) {
    wipe(password);
    return done(locked_out(req.loc, app, csrf_value, wait));
  }
  auto state = std::make_shared<Response>();
  auto failed_password = std::make_shared<bool>(false);
  auto secret = std::make_shared<std::string>(std::move(password));
  const bool secure = secure_cookies(req);
  return pending(
      [&store, s, state, failed_password, secret, target, origin, new_device, requery, csrf_value,
       app, secure]() {
        WipeOnExit wiper(*secret);
        try {
          LoginCheck check = check_login(store, s.realm, target, *secret, s.loc->pbkdf2_iterations,
                                         s.loc->account_limit, origin, s.now);
          if (check.locked) {
            *state = locked_out(*s.loc, app, csrf_value, check.locked);
            return;
          }
          if (!check.user) {
            *failed_password = true;
            *state = login_form(*s.loc, app, csrf_value, "Invalid username or password.");
            return;
          }
          std::optional<std::string> rehashed;  // the slow hash, before the change
          if (check.needs_rehash) rehashed = hash_password(*secret, s.loc->pbkdf2_iterations);
          *state = store.change([&](Txn& txn) {
            // the user is still active and the password checked still
            // theirs: a change of password or a deactivation committed
            // while the hash ran ended every session, and must be
            // followed neither by a session made on the old password
            // nor by the old password written back by its rehash (R39,
            // R70), as password_flow refuses its tokens
            auto fresh = txn.get_user(s.realm, check.user->id);
            if (!fresh || !fresh->is_active || fresh->password != check.user->password) {
              return login_form(*s.loc, app, csrf_value, "Invalid username or password.");
            }
            // locked during the hash by the guesses that ran beside it
            if (unsigned wait = account_wait(txn, s.realm, fresh->id, origin, s.now)) {
              return locked_out(*s.loc, app, csrf_value, wait);
            }
            if (rehashed) {
              fresh->password = *rehashed;
              txn.put_user(*fresh, false);
            }
            return start_session(txn, s, check, origin, new_device, requery, secure);
          });
        } catch (const std::exception& e) {
          *state = failed(page_unavailable(), e);
        }
      },
      [state, failed_password, s, target] {
        Response r = std::move(*state);
        if (*failed_password) {
          s.throttles().password_failed(target.throttle_key);
          r.auth_failed = true;
        }
        return r;
      },
      true);
}

}  // namespace

namespace detail {

// The sign-in form posted back: its CSRF double-submit, then sign_in().
EndpointResult sign_in_post(Store& store, const Request& req, const std::string& app,
                            const Form& body, std::string_view cookies,
                            const std::string& requery) {
  auto want = request_cookie(req, cookies, kCsrfCookie);
  std::string csrf(body.get("csrf_token").value_or(""));
  if (!want || want->empty() || !same_ct(*want, csrf)) {
    return done(
        error_page(req, 403, "invalid_request", "The form has expired; go back and try again."));
  }
  // Django's AuthenticationForm strips the username (UsernameField,
  // str.strip()): "alice " typed on a phone is alice; the password is
  // taken as typed
  std::string name(py_strip(body.get("username").value_or("")));
  std::string pw(body.get("password").value_or(""));
  if (name.empty() || pw.empty() || pw.size() > kMaxPasswordLen ||
      name.size() > kMaxUsernameBytes) {
    wipe(pw);
    return done(login_form(req.loc, app, *want, "Enter your username and password."));
  }
  return sign_in(store, req, app, *want, name, std::move(pw),
                 request_cookie(req, cookies, kDeviceCookie), requery);
}

Response sign_in_page(const Request& req, std::string_view cookies, std::string_view app,
                      std::string_view hint) {
  // One value for every sign-in page the browser shows (random_token's
  // form: 43 base64url characters): a page shown in a second tab, or for
  // another application, leaves the first one's form good
  auto have = request_cookie(req, cookies, kCsrfCookie);
  const bool reuse =
      have && have->size() == 43 &&
      std::all_of(have->begin(), have->end(), [](char c) { return chars::is(c, chars::kB64Url); });
  std::string csrf_value = reuse ? *have : random_token();
  Response r = login_form(req.loc, app, csrf_value, nullptr, hint);
  r.cookies.push_back(cookie(req, kCsrfCookie, csrf_value, kSessionTtl));
  return r;
}

}  // namespace detail

namespace {

// The user allowed the request (remember: on the consent page, which is
// remembered with the code), or had allowed it before: a code, redirected
// back with the state.  The write reads the decision again: the session
// may have ended (signed out, the password changed, the user deactivated)
// or the remembered consent been withdrawn on the granted-applications
// page while the request waited for the thread pool, and a code on either
// would be a grant the user no longer makes (R39, R70); or the application
// changed.  Then the browser asks again.
EndpointResult issue_code(Store& store, const Request& req, const AuthzRequest& az,
                          const SessionUser& su, bool remember) {
  IssueSettings s(req);
  const uint64_t user_id = su.id;
  std::string user = std::to_string(user_id);
  std::string oidc;
  if (az.openid) oidc = encode_oidc_code(OidcCode{az.nonce, su.auth_time});
  std::string self = "?" + std::string(sv(req.c.query));
  return pending_response(
      [&store, s, az, su, user, user_id, oidc, remember, self] {
        std::string code = new_token();
        WipeOnExit wipe_code(code);
        Token t;
        t.type = TokenType::kCode;
        t.issued_at = s.now;
        t.expires_at = add_ttl(s.now, std::max<int64_t>(1, s.loc->code_ttl));
        t.client_id = az.client.client_id;
        t.scope = az.scope;
        t.user = user;
        t.family = new_family();
        t.redirect_uri = az.redirect_uri;
        t.redirect_uri_omitted = az.redirect_uri_omitted;
        t.code_challenge = az.challenge;
        t.data = oidc;
        t.audience = az.audience;
        t.jkt = az.dpop_jkt;
        bool holds = true;
        const bool stored = store.change([&](Txn& txn) {
          // and the application is still the one the request was checked
          // against: deleted, disabled, made public (PKCE then required)
          // or its redirect URIs changed meanwhile, the browser asks again
          // (R35, R70)
          holds = session_holds(txn, s.realm, su, s.now) && txn.client_as_read(s.realm, az.client);
          if (holds && !remember) {
            auto c = find_consent(txn, s.realm, user_id, az.client.client_id, s.now);
            holds = c && consent_covers(*c, az.scope);
          }
          if (!holds) return true;
          if (!txn.put_new_token(s.realm, token_id(code), t)) return false;
          if (remember) {
            remember_consent(txn, s.realm, user_id, az.client.client_id, az.scope, s.now);
          }
          txn.commit();
          return true;
        });
        if (!stored) return page_unavailable();
        // the browser asks again, and gets what the store says now (the
        // sign-in page, the consent page, or prompt=none's error)
        if (!holds) return see_other(self);
        return redirect_to(az.redirect_uri, az.mode,
                           {{"code", code}, {"state", az.state}, {"iss", az.issuer}});
      },
      page_unavailable);
}

Response consent_page(const Request& req, const AuthzRequest& az, const SessionUser& user,
                      const std::string& csrf_value) {
  return page(200, render(template_or(req.loc.consent_template, kConsentPage),
                          {{"app_name", html_escape(az.client.name)},
                           {"username", html_escape(user.name)},
                           {"scope_items", scope_items(az.scope)},
                           {"csrf", csrf_value}}));
}

// prompt=login, max_age=0 (which is prompt=login, OpenID Connect Core
// 3.1.2.1: a session signed in this very second is not older than 0), a
// max_age the session is older than, or an id_token_hint of another
// user: sign in again (after_login_query drops max_age, so once)
bool needs_login(const AuthzRequest& az, const SessionUser& user, int64_t now) {
  if (!az.hint_sub.empty() && az.hint_sub != std::to_string(user.id)) return true;
  if (az.prompt_login || az.max_age == 0) return true;
  return az.max_age > 0 && now - user.auth_time > az.max_age;
}

// the user granted this client these scopes before (remembered consent),
// and the request can only be that client's: it has a secret, or its
// redirect URI is https.  A public client sent back to a loopback or
// private-use URI could be any program on the device (RFC 8252 8.6), so
// the user is asked each time.
bool consented(Store& store, const Request& req, const AuthzRequest& az, const SessionUser& user) {
  if (!az.client.confidential && az.redirect_uri.rfind("https://", 0) != 0) return false;
  Txn txn = store.read();
  auto c = find_consent(txn, req.loc.realm, user.id, az.client.client_id, req.c.now);
  return c && consent_covers(*c, az.scope);
}

}  // namespace

EndpointResult authorize_endpoint(Store& store, const Request& req) {
  std::string_view method = sv(req.c.method);
  if (method != "GET" && method != "POST") {
    return done(error_page(req, 405, "invalid_request",
                           "The authorization endpoint accepts GET and POST."));
  }
  Form query;
  if (query.parse(sv(req.c.query)) != Form::Status::kOk) {
    return done(error_page(req, 400, "invalid_request",
                           "The request is malformed or repeats a parameter."));
  }
  if (method == "POST" && sv(req.c.query).empty()) {
    // OIDC Core 3.1.2.1: the request itself POSTed as a form
    Form posted;
    if (!read_post_form(req, posted)) {
      return done(error_page(req, 400, "invalid_request", "The form is malformed."));
    }
    if (auto get = form_post_as_get(req, posted)) return done(std::move(*get));
  }
  AuthzRequest az;
  if (auto err = check_before_redirect(store, req, query, az)) return done(std::move(*err));
  if (auto err = check_authz(req, query, az)) return done(std::move(*err));

  const std::string cookies(sv(req.c.cookie));
  bool unseen = false;
  std::optional<SessionUser> user = session_user(store, req, cookies, &unseen);
  if (unseen) return catch_up_and_again(store, req);
  Form body;
  if (method == "POST" && !read_post_form(req, body)) {
    return done(error_page(req, 400, "invalid_request", "The form is malformed."));
  }
  std::string action(body.get("action").value_or(""));
  if (!user || needs_login(az, *user, req.c.now)) {
    if (az.prompt_none) return done(back_error(az, "login_required", "The user is not signed in"));
    if (method == "POST" && action == "login") {
      return sign_in_post(store, req, az.client.name, body, cookies,
                          after_login_query(sv(req.c.query), az));
    }
    return done(sign_in_page(req, cookies, az.client.name, az.login_hint));
  }

  std::string expected = session_csrf(user->session);
  if (method == "POST" && (action == "allow" || action == "deny")) {
    if (!same_ct(expected, body.get("csrf_token").value_or(""))) {
      return done(
          error_page(req, 403, "invalid_request", "The form has expired; go back and try again."));
    }
    if (action == "deny")
      return done(back_error(az, "access_denied", "The user denied the request"));
    return issue_code(store, req, az, *user, true);
  }
  if (!az.prompt_consent && consented(store, req, az, *user)) {
    return issue_code(store, req, az, *user, false);
  }
  if (az.prompt_none) {
    return done(back_error(az, "consent_required", "The user has not granted this request"));
  }
  return done(consent_page(req, az, *user, expected));
}

}  // namespace oauth2
