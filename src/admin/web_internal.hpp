// What the files of the web pages (web.hpp) share, as an nginx module's
// files share its header: web.cpp routes a request to the handlers of
// web_login.cpp and web_apps.cpp, which read forms (web_forms.cpp), keep
// sessions and check CSRF tokens (web_session.cpp), and answer with the
// pages of web_pages.cpp in the frame of web_html.cpp.  The rest of the
// daemon sees web.hpp only.

#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "codec.hpp"
#include "crypto.hpp"
#include "http.hpp"
#include "store.hpp"

namespace oauth2::admin::web {

constexpr std::string_view kBase = "/o/applications/";
constexpr std::string_view kLoginPath = "/o/applications/login/";
constexpr const char* kSessionCookie = "oauth2_session";
constexpr const char* kCsrfCookie = "oauth2_csrf";

// ---------------------------------------------------- web_session.cpp

struct Session {
  uint64_t user_id = 0;
  std::string realm;   // where its record is
  TokenId record{};    // page_session_id() of its cookie
  Digest auth_hash{};  // SHA-256 of the user's stored password hash
  std::string csrf;
  std::chrono::steady_clock::time_point created, seen;
  std::string flash;  // a message for the next page
};

// The logged-in staff user of a request.
struct Auth {
  std::string key;  // the session's key (the SHA-256 of its cookie)
  Session session;
  User user;
};

// The staff user of the request's session cookie.  The user is read
// again on every request: a session whose user was deleted, disabled,
// lost is_staff or changed password ends here.
std::optional<Auth> authenticate(ServeContext& ctx, const HttpRequest& req);
// A new session for u under the cookie value token, whose record
// (page_session_id) the sign-in's change wrote.
void open_session(const ServeContext& ctx, const User& u, const std::string& token);
// The store key of a session's record: a token of its user, so that what
// ends the user's tokens (deactivation, even if undone; a new password;
// deletion) ends the session; of a kind of its own (kPageSession), which
// losing staff ends and the authorization server's pages never read as a
// sign-in, under a domain of its own, a key no cookie of theirs names.
constexpr char kPageSessionDomain[] = "oauth2-admin page session:";
TokenId page_session_id(std::string_view cookie_value);
// Ends a session (logout; the one a browser had before it signed in
// again) and deletes its record.  A session ends in memory first: a store
// that fails to delete the record is logged and leaves it to expire at
// --session-max, a record no request finds a session for.  So do the
// sessions that end unused (--session-idle, --session-max) when a request
// finds them, those authenticate() refuses, and those a full table drops;
// a restart leaves every record to expire.
void close_session(const ServeContext& ctx, const Auth& auth);
void close_session_cookie(const ServeContext& ctx, std::string_view cookie_value);
// A message for the next page of the session; taken once.
void set_flash(const Auth& auth, std::string message);
std::string take_flash(const Auth& auth);

// A value of random_token() (a session cookie, a CSRF token).
bool is_token(std::string_view s);
// Compared in constant time; an empty token equals nothing.
bool tokens_equal(std::string_view a, std::string_view b);
// A logged-in user's POST: from these pages (Sec-Fetch-Site), with the
// session's CSRF token.
bool csrf_ok(const HttpRequest& req, const Form& f, const Auth& auth);
// The login form's POST, before any session exists: from these pages,
// with the token of its double-submit cookie (csrf_cookie).
bool login_csrf_ok(const HttpRequest& req, const std::optional<std::string>& csrf_cookie,
                   const Form& f);
// Behind nginx on https (X-Forwarded-Proto): cookies get Secure.
bool secure_request(const HttpRequest& req);
// The Set-Cookie value of a cookie of these pages; remove deletes it.
std::string cookie_header(const HttpRequest& req, const char* name, std::string_view value,
                          bool remove);

// ------------------------------------------------------ web_forms.cpp

bool unreserved(char ch);  // RFC 3986
std::vector<std::string> split_spaces(std::string_view s);
std::string join(const std::vector<std::string>& v, std::string_view sep);

// The errors of a form's fields, in the order they were found.
struct Errors {
  std::vector<std::pair<std::string, std::string>> list;  // field, message

  void add(std::string field, std::string msg) {
    list.emplace_back(std::move(field), std::move(msg));
  }
  bool any() const { return !list.empty(); }
  std::vector<std::string> of(std::string_view field) const {
    std::vector<std::string> out;
    for (const auto& e : list) {
      if (e.first == field) out.push_back(e.second);
    }
    return out;
  }
};

// The application form's fields as typed, to show them again.
struct AppForm {
  std::string name;
  std::string client_type = "confidential";
  std::vector<std::string> grants;
  std::string redirect_uris;  // as typed, space-separated
  std::string scope;
  std::string ttl;
  std::string auth_method;

  bool has_grant(std::string_view g) const {
    for (const auto& x : grants) {
      if (x == g) return true;
    }
    return false;
  }
};

// The body as a Form: nullopt, or the page that refuses it (415 if it is
// not a form, 400 if malformed).
std::optional<HttpResponse> read_form(const HttpRequest& req, Form& form, const Auth* auth);
// The form of a logged-in user's POST: nullopt, or the page that refuses
// it (read_form(), then csrf_ok()).
std::optional<HttpResponse> read_post(const HttpRequest& req, Form& form, const Auth& auth);
// A field's value, "" when absent.
std::string field_value(const Form& f, std::string_view name);
AppForm form_of(const Client& c);
// Reads and checks the form (the rules of `app add`) into v, and into c
// when valid.  With create, the client type is read too; without, c's.
bool read_app(const Form& f, bool create, AppForm& v, Errors& e, Client& c);

// ------------------------------------------------------- web_html.cpp

// No body yet, the security headers of R26 and Cache-Control: no-store.
HttpResponse bare(int status);
HttpResponse see_other(std::string location);  // 303
// The page around a <main>: the navigation when someone is logged in.
HttpResponse page(int status, std::string_view title, std::string_view body, const Auth* auth);
HttpResponse message(int status, std::string_view title, std::string_view text, const Auth* auth);
HttpResponse not_found(const Auth* auth);
HttpResponse method_not_allowed(std::string_view allow);
HttpResponse forbidden_csrf(const Auth* auth);

std::string hidden(std::string_view name, std::string_view value);
// The list of a form's errors, each a link to its field.
std::string error_summary(const Errors& e);
// The messages of a field, and the aria attributes of its control.
std::string field_errors(const Errors& e, std::string_view field, std::string* aria);
// A field of a form: its label, its help if any, the control and its
// errors.  The control is start_tag (its name and attributes, without
// the '>'), the aria attributes of its errors or help, '>', then rest.
std::string field_html(const Errors& e, std::string_view name, std::string_view label_html,
                       std::string_view help_html, std::string_view start_tag,
                       std::string_view rest);
// A text input's field; label, value and help in plain text.
std::string text_field(const Errors& e, std::string_view name, std::string_view label,
                       std::string_view value, std::string_view help, std::string_view extra);

// ------------------------------------------------------ web_pages.cpp

HttpResponse login_page(int status, const HttpRequest& req, std::string_view csrf, bool new_csrf,
                        std::string_view next, std::string_view username, std::string_view error);
// The path of an application's page: kBase/<client_id>/[action/]
std::string app_path(const Client& c, std::string_view action);
HttpResponse list_page(const std::vector<Client>& apps, const Auth& auth);
HttpResponse detail_page(const Client& c, const Auth& auth);
HttpResponse register_page(int status, const AppForm& v, const Errors& e, const Auth& auth);
HttpResponse update_page(int status, const Client& c, const AppForm& v, const Errors& e,
                         const Auth& auth);
// The page that shows a secret, the only time it is ever shown.
HttpResponse secret_page(const Client& c, std::string_view secret, bool created, const Auth& auth);
HttpResponse delete_page(const Client& c, const Auth& auth);

// ------------------------------------------------------ web_login.cpp

// To the login page; back to this page after it when it is one to GET.
HttpResponse login_redirect(const HttpRequest& req);
HttpResponse login_get(ServeContext& ctx, const HttpRequest& req);
HttpResponse login_post(ServeContext& ctx, const HttpRequest& req);
HttpResponse logout_post(ServeContext& ctx, const HttpRequest& req);

// ------------------------------------------------------- web_apps.cpp

HttpResponse list_get(ServeContext& ctx, const Auth& auth);
HttpResponse register_post(ServeContext& ctx, const Form& f, const Auth& auth);
std::optional<Client> load_app(ServeContext& ctx, const std::string& id);
HttpResponse update_post(ServeContext& ctx, const std::string& id, const Form& f, const Auth& auth);
HttpResponse rotate_post(ServeContext& ctx, const std::string& id, const Auth& auth);
HttpResponse delete_post(ServeContext& ctx, const std::string& id, const Auth& auth);

}  // namespace oauth2::admin::web
