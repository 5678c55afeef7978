// /o/applications/: the pages of django-oauth-toolkit's application views
// (seeds 000, 001), served by oauth2-admin serve.  See web.hpp.
//
// Sessions live in this process's memory, keyed by the SHA-256 of the
// cookie value (the clear value is never kept): 30 minutes idle, 12 hours
// at most, and the user is read again on every request, so that a user
// who is deleted, disabled, loses is_staff or changes password is logged
// out at once.  Each session has its own random CSRF token; the login form,
// before any session exists, uses a double-submit cookie.

#include "web.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <exception>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "codec.hpp"
#include "crypto.hpp"
#include "lockout.hpp"
#include "login.hpp"
#include "model.hpp"
#include "password.hpp"
#include "store.hpp"

namespace oauth2::admin {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kBase = "/o/applications/";
constexpr std::string_view kLoginPath = "/o/applications/login/";
constexpr const char* kSessionCookie = "oauth2_session";
constexpr const char* kCsrfCookie = "oauth2_csrf";
constexpr auto kIdleTimeout = std::chrono::minutes(30);
constexpr auto kAbsoluteTimeout = std::chrono::hours(12);
constexpr size_t kMaxSessions = 10000;
constexpr size_t kTokenLength = 43;  // random_token(): 256 bits, base64url

constexpr std::string_view kBadLogin =
    "Please enter the correct username and password for a staff account. "
    "Note that both fields may be case-sensitive.";

// The one style sheet, inline: the CSP allows exactly this text by hash.
constexpr std::string_view kCss =
    "body{font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,"
    "sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}"
    "header{background:#1f3a5f;color:#fff;padding:.6rem 1rem}"
    "header nav{display:flex;gap:1.2rem;align-items:center;flex-wrap:wrap;"
    "max-width:62rem;margin:0 auto}"
    "header a{color:#fff}"
    "header .who{margin-left:auto}"
    "header form{display:inline;margin:0}"
    "header button{background:transparent;border-color:#fff;"
    "padding:.15rem .6rem}"
    "main{max-width:62rem;margin:1.5rem auto;padding:0 1rem}"
    "h1{font-size:1.6rem;margin:.2rem 0 1rem}"
    "h2{font-size:1.2rem;margin:1.5rem 0 .5rem}"
    "a{color:#0b5cad}"
    "table{border-collapse:collapse;width:100%;background:#fff;"
    "border:1px solid #d0d7de}"
    "th,td{text-align:left;padding:.5rem .7rem;border-bottom:1px solid "
    "#d0d7de;vertical-align:top}"
    "th{background:#eef1f4}"
    "caption{text-align:left;padding:0 0 .3rem}"
    "code{font-family:ui-monospace,Menlo,Consolas,monospace;"
    "word-break:break-all}"
    ".secret{display:block;user-select:all;background:#fff;border:1px solid "
    "#8c959f;border-radius:4px;padding:.5rem .7rem;font-size:1rem}"
    ".field{margin:0 0 1.1rem}"
    "label,legend{display:block;font-weight:600}"
    "input[type=text],input[type=password],input[type=number],textarea,"
    "select{font:inherit;padding:.4rem;width:100%;max-width:38rem;"
    "box-sizing:border-box;border:1px solid #8c959f;border-radius:4px;"
    "background:#fff}"
    "fieldset{border:1px solid #d0d7de;border-radius:4px;margin:0 0 1.1rem;"
    "max-width:38rem;background:#fff}"
    "fieldset label{font-weight:normal}"
    ".help{color:#57606a;font-size:.9rem;margin:.2rem 0 0}"
    ".error{color:#b42318;font-weight:600;margin:.2rem 0 0}"
    ".errors{border:2px solid #b42318;background:#fff5f5;padding:.5rem 1rem;"
    "margin:0 0 1rem}"
    ".notice{border:2px solid #9a6700;background:#fff8c5;padding:.6rem 1rem;"
    "margin:0 0 1rem}"
    ".flash{border:1px solid #1a7f37;background:#dafbe1;padding:.5rem 1rem;"
    "margin:0 0 1rem}"
    "button{font:inherit;padding:.45rem 1.1rem;border-radius:4px;"
    "border:1px solid #1f3a5f;background:#1f3a5f;color:#fff;cursor:pointer}"
    "button.danger{background:#b42318;border-color:#b42318}"
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:.5rem 1.2rem;"
    "background:#fff;padding:1rem;border:1px solid #d0d7de;margin:0 0 1rem}"
    "dt{font-weight:600}dd{margin:0}"
    ".actions{display:flex;gap:1.2rem;align-items:center;flex-wrap:wrap;"
    "margin:1rem 0}"
    ".actions form{margin:0}";

const char* const kGrantLabels[] = {"Client credentials", "Authorization code",
                                    "Resource owner password-based",
                                    "Refresh token"};
static_assert(std::size(kGrantLabels) == std::size(kGrants));

////////////////////////////////////////////////////////////// text helpers

std::string esc(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 16);
  for (char ch : s) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(ch);
    }
  }
  return out;
}

bool unreserved(char ch) {
  return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
         (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' ||
         ch == '~';
}

// Percent-encodes everything but the unreserved characters.
std::string pct(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : s) {
    if (unreserved(ch)) {
      out.push_back(ch);
    } else {
      auto b = static_cast<unsigned char>(ch);
      out.push_back('%');
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 15]);
    }
  }
  return out;
}

std::string b64_std(const Digest& d) {
  std::string s = base64url_encode(d.data(), d.size());
  for (char& ch : s) {
    if (ch == '-') ch = '+';
    if (ch == '_') ch = '/';
  }
  while (s.size() % 4) s.push_back('=');
  return s;
}

bool is_token(std::string_view s) {
  if (s.size() != kTokenLength) return false;
  for (char ch : s) {
    if (!unreserved(ch) || ch == '.' || ch == '~') return false;
  }
  return true;
}

bool tokens_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size() || a.empty()) return false;
  return equal_ct(reinterpret_cast<const unsigned char*>(a.data()),
                  reinterpret_cast<const unsigned char*>(b.data()), a.size());
}

std::string grant_label(std::string_view g) {
  for (size_t i = 0; i < std::size(kGrants); i++) {
    if (g == kGrants[i]) return kGrantLabels[i];
  }
  return std::string(g);
}

std::string utc_time(int64_t t) {
  time_t tt = static_cast<time_t>(t);
  struct tm tm;
  char buf[64];
  if (t <= 0 || !gmtime_r(&tt, &tm) ||
      strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm) == 0) {
    return "unknown";
  }
  return buf;
}

// For the log: at most 200 bytes, each outside %x21-7E as '?'.
std::string printable(std::string_view s) {
  std::string out(s.substr(0, 200));
  for (char& ch : out) {
    if (ch < 0x21 || ch > 0x7E) ch = '?';
  }
  return out;
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& ch : out) {
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

std::vector<std::string> split_spaces(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') i++;
    size_t j = i;
    while (j < s.size() && s[j] != ' ') j++;
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

std::string join(const std::vector<std::string>& v, std::string_view sep) {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

////////////////////////////////////////////////////////////// request

std::vector<std::string_view> headers_named(const HttpRequest& req,
                                            std::string_view lname) {
  std::vector<std::string_view> out;
  for (const auto& h : req.headers) {
    if (h.first == lname) out.emplace_back(h.second);
  }
  return out;
}

std::optional<std::string_view> first_header(const HttpRequest& req,
                                             std::string_view lname) {
  for (const auto& h : req.headers) {
    if (h.first == lname) return std::string_view(h.second);
  }
  return std::nullopt;
}

// The first cookie of that name over every Cookie header.
std::optional<std::string> cookie(const HttpRequest& req,
                                  std::string_view name) {
  for (std::string_view line : headers_named(req, "cookie")) {
    while (!line.empty()) {
      size_t semi = line.find(';');
      std::string_view pair = trim(line.substr(0, semi));
      line = semi == std::string_view::npos ? std::string_view()
                                            : line.substr(semi + 1);
      size_t eq = pair.find('=');
      if (eq == std::string_view::npos) continue;
      if (trim(pair.substr(0, eq)) != name) continue;
      std::string_view v = trim(pair.substr(eq + 1));
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') {
        v = v.substr(1, v.size() - 2);
      }
      return std::string(v);
    }
  }
  return std::nullopt;
}

bool secure_request(const HttpRequest& req) {
  auto proto = first_header(req, "x-forwarded-proto");
  return proto && iequals(trim(*proto), "https");
}

// A "next" we may redirect to after login: a path of these pages, made of
// plain characters only, never the login or logout page.
bool safe_next(std::string_view n) {
  if (n.size() > 1024 || n.substr(0, kBase.size()) != kBase) return false;
  for (char ch : n) {
    if (!unreserved(ch) && ch != '/' && ch != '%') return false;
  }
  if (n.find("..") != std::string_view::npos ||
      n.find("//") != std::string_view::npos) {
    return false;
  }
  return n.substr(kBase.size(), 6) != "login/" &&
         n.substr(kBase.size(), 7) != "logout/";
}

////////////////////////////////////////////////////////////// sessions

struct Session {
  uint64_t user_id = 0;
  Digest auth_hash{};  // SHA-256 of the user's stored password hash
  std::string csrf;
  Clock::time_point created, seen;
  std::string flash;  // a message for the next page
};

class Sessions {
 public:
  // A new session; returns the cookie value.
  std::string open(uint64_t user_id, const Digest& auth_hash) {
    std::string token = random_token();
    Session s;
    s.user_id = user_id;
    s.auth_hash = auth_hash;
    s.csrf = random_token();
    s.created = s.seen = Clock::now();
    std::lock_guard<std::mutex> lock(mu_);
    sweep(s.created);
    if (map_.size() >= kMaxSessions) {
      auto oldest = map_.begin();
      for (auto it = map_.begin(); it != map_.end(); ++it) {
        if (it->second.seen < oldest->second.seen) oldest = it;
      }
      map_.erase(oldest);
    }
    map_[key(token)] = std::move(s);
    return token;
  }

  // The live session of a cookie value (its key in *k), now marked seen.
  std::optional<Session> touch(std::string_view cookie_value, std::string* k) {
    *k = key(cookie_value);
    auto now = Clock::now();
    std::lock_guard<std::mutex> lock(mu_);
    auto it = map_.find(*k);
    if (it == map_.end()) return std::nullopt;
    if (expired(it->second, now)) {
      map_.erase(it);
      return std::nullopt;
    }
    it->second.seen = now;
    Session copy = it->second;
    return copy;
  }

  void close(const std::string& k) {
    std::lock_guard<std::mutex> lock(mu_);
    map_.erase(k);
  }

  void close_cookie(std::string_view cookie_value) { close(key(cookie_value)); }

  void set_flash(const std::string& k, std::string msg) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = map_.find(k);
    if (it != map_.end()) it->second.flash = std::move(msg);
  }

  std::string take_flash(const std::string& k) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = map_.find(k);
    if (it == map_.end()) return {};
    return std::exchange(it->second.flash, std::string());
  }

 private:
  static std::string key(std::string_view cookie_value) {
    Digest d = sha256(cookie_value);
    return std::string(reinterpret_cast<const char*>(d.data()), d.size());
  }

  static bool expired(const Session& s, Clock::time_point now) {
    return now - s.seen > kIdleTimeout || now - s.created > kAbsoluteTimeout;
  }

  void sweep(Clock::time_point now) {
    for (auto it = map_.begin(); it != map_.end();) {
      it = expired(it->second, now) ? map_.erase(it) : std::next(it);
    }
  }

  std::mutex mu_;
  std::map<std::string, Session> map_;
};

// Never destroyed: the daemon's threads may still answer during exit.
Sessions& sessions() {
  static Sessions* s = new Sessions;
  return *s;
}

Digest auth_hash(const User& u) { return sha256(u.password); }

// The logged-in staff user of a request.
struct Auth {
  std::string key;  // the session's key in sessions()
  Session session;
  User user;
};

std::optional<Auth> authenticate(ServeContext& ctx, const HttpRequest& req) {
  auto value = cookie(req, kSessionCookie);
  if (!value || !is_token(*value)) return std::nullopt;
  Auth a;
  auto s = sessions().touch(*value, &a.key);
  if (!s) return std::nullopt;
  a.session = std::move(*s);
  std::optional<User> u;
  {
    Txn txn = ctx.store->read();
    u = txn.get_user(ctx.realm, a.session.user_id);
  }
  if (!u || !u->is_active || !u->is_staff ||
      !equal_ct(auth_hash(*u).data(), a.session.auth_hash.data(),
                a.session.auth_hash.size())) {
    sessions().close(a.key);
    return std::nullopt;
  }
  a.user = std::move(*u);
  return a;
}

////////////////////////////////////////////////////////////// responses

const std::string& csp() {
  static const std::string* v = new std::string(
      "default-src 'none'; style-src 'sha256-" + b64_std(sha256(kCss)) +
      "'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
  return *v;
}

HttpResponse bare(int status) {
  HttpResponse r;
  r.status = status;
  r.headers = {
      {"Content-Security-Policy", csp()},
      {"X-Frame-Options", "DENY"},
      {"Referrer-Policy", "no-referrer"},
      {"X-Content-Type-Options", "nosniff"},
      {"Cross-Origin-Opener-Policy", "same-origin"},
      {"Cache-Control", "no-store"},
  };
  return r;
}

HttpResponse see_other(std::string location) {
  HttpResponse r = bare(303);
  r.headers.emplace_back("Location", std::move(location));
  return r;
}

std::string cookie_header(const HttpRequest& req, const char* name,
                          std::string_view value, bool remove) {
  std::string c = std::string(name) + "=" + std::string(value) +
                  "; Path=" + std::string(kBase) +
                  "; HttpOnly; SameSite=Strict";
  if (remove) c += "; Max-Age=0";
  if (secure_request(req)) c += "; Secure";
  return c;
}

// The page around a <main>: the navigation when someone is logged in.
HttpResponse page(int status, std::string_view title, std::string_view body,
                  const Auth* auth) {
  std::string h;
  h.reserve(body.size() + kCss.size() + 1024);
  h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
       "<meta name=\"viewport\" content=\"width=device-width, "
       "initial-scale=1\">\n<title>";
  h += esc(title);
  h += " | OAuth 2 applications</title>\n<style>";
  h += kCss;
  h += "</style>\n</head>\n<body>\n<header>\n<nav aria-label=\"Main\">\n";
  if (auth) {
    h += "<a href=\"/o/applications/\">Applications</a>\n"
         "<a href=\"/o/applications/register/\">Register a new "
         "application</a>\n<span class=\"who\">Logged in as <strong>";
    h += esc(auth->user.username);
    h += "</strong></span>\n<form method=\"post\" "
         "action=\"/o/applications/logout/\"><input type=\"hidden\" "
         "name=\"csrf\" value=\"";
    h += esc(auth->session.csrf);
    h += "\"><button type=\"submit\">Log out</button></form>\n";
  } else {
    h += "<span>OAuth 2 applications</span>\n";
  }
  h += "</nav>\n</header>\n<main>\n";
  if (auth) {
    std::string flash = sessions().take_flash(auth->key);
    if (!flash.empty()) {
      h += "<p class=\"flash\" role=\"status\">" + esc(flash) + "</p>\n";
    }
  }
  h += "<h1>";
  h += esc(title);
  h += "</h1>\n";
  h += body;
  h += "</main>\n</body>\n</html>\n";
  HttpResponse r = bare(status);
  r.headers.emplace_back("Content-Type", "text/html; charset=utf-8");
  r.body = std::move(h);
  return r;
}

HttpResponse message(int status, std::string_view title, std::string_view text,
                     const Auth* auth) {
  std::string b = "<p>" + esc(text) + "</p>\n";
  if (auth) {
    b += "<p><a href=\"/o/applications/\">Back to the applications</a></p>\n";
  }
  return page(status, title, b, auth);
}

HttpResponse not_found(const Auth* auth) {
  return message(404, "Not found",
                 "There is no such page or no such application.", auth);
}

HttpResponse method_not_allowed(std::string_view allow) {
  HttpResponse r = message(405, "Method not allowed",
                           "This page does not accept that method.", nullptr);
  r.headers.emplace_back("Allow", std::string(allow));
  return r;
}

HttpResponse forbidden_csrf(const Auth* auth) {
  return message(403, "Forbidden",
                 "The form has expired or did not come from this site "
                 "(CSRF check failed).  Go back, reload the page and try "
                 "again; cookies must be enabled.",
                 auth);
}

HttpResponse login_redirect(const HttpRequest& req) {
  std::string loc(kLoginPath);
  bool get = req.method == "GET" || req.method == "HEAD";
  if (get && safe_next(req.path)) loc += "?next=" + pct(req.path);
  return see_other(loc);
}

////////////////////////////////////////////////////////////// forms

// The body as oauth2::Form: 415 if it is not a form, 400 if malformed.
// A <textarea>'s line breaks (%0D%0A) in redirect_uris become spaces
// first, since the strict decoder rejects control characters and the
// URIs are space-separated anyway.
std::optional<HttpResponse> read_form(const HttpRequest& req, Form& form,
                                      const Auth* auth) {
  auto types = headers_named(req, "content-type");
  if (types.size() != 1) {
    return message(types.empty() ? 415 : 400, "Unsupported form",
                   "Send the form as application/x-www-form-urlencoded.", auth);
  }
  std::string_view t = types[0].substr(0, types[0].find(';'));
  if (!iequals(trim(t), "application/x-www-form-urlencoded")) {
    return message(415, "Unsupported form",
                   "Send the form as application/x-www-form-urlencoded.", auth);
  }
  std::string body;  // may hold a password: wiped on the way out
  struct Wiper {
    std::string& s;
    ~Wiper() { wipe(s); }
  } wiper{body};
  body.reserve(req.body.size());
  std::string_view rest = req.body;
  while (true) {
    size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    if (pair.substr(0, 14) == "redirect_uris=") {
      for (size_t i = 0; i < pair.size(); i++) {
        if (pair[i] == '%' && i + 2 < pair.size()) {
          std::string e = ascii_lower(pair.substr(i + 1, 2));
          if (e == "0d" || e == "0a" || e == "09") {
            body.push_back('+');
          } else {
            body.append(pair.substr(i, 3));
          }
          i += 2;
        } else {
          body.push_back(pair[i]);
        }
      }
    } else {
      body.append(pair);
    }
    if (amp == std::string_view::npos) break;
    body.push_back('&');
    rest.remove_prefix(amp + 1);
  }
  if (form.parse(body) != Form::Status::kOk) {
    return message(400, "Bad request",
                   "The form could not be read: it is malformed, repeats a "
                   "field or holds control characters.",
                   auth);
  }
  return std::nullopt;
}

std::string field_value(const Form& f, std::string_view name) {
  auto v = f.get(name);
  return v ? std::string(*v) : std::string();
}

// A POST must come from these pages: a browser says so in Sec-Fetch-Site.
bool cross_site(const HttpRequest& req) {
  auto site = first_header(req, "sec-fetch-site");
  return site && trim(*site) != "same-origin";
}

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

std::string error_summary(const Errors& e) {
  if (!e.any()) return {};
  std::string h =
      "<div class=\"errors\" role=\"alert\">\n<p>Please correct the "
      "errors below.</p>\n<ul>\n";
  for (const auto& x : e.list) {
    h += "<li><a href=\"#id_" + esc(x.first) + "\">" + esc(x.second) +
         "</a></li>\n";
  }
  return h + "</ul>\n</div>\n";
}

// The messages of a field, and the aria attributes of its control.
std::string field_errors(const Errors& e, std::string_view field,
                         std::string* aria) {
  auto msgs = e.of(field);
  if (msgs.empty()) return {};
  std::string id = "id_" + std::string(field) + "_error";
  *aria += " aria-invalid=\"true\" aria-describedby=\"" + esc(id) + "\"";
  std::string h = "<p class=\"error\" id=\"" + esc(id) + "\">";
  for (size_t i = 0; i < msgs.size(); i++) {
    if (i) h += "<br>";
    h += esc(msgs[i]);
  }
  return h + "</p>\n";
}

std::string hidden(std::string_view name, std::string_view value) {
  return "<input type=\"hidden\" name=\"" + esc(name) + "\" value=\"" +
         esc(value) + "\">\n";
}

////////////////////////////////////////////////////////////// login

HttpResponse login_page(int status, const HttpRequest& req,
                        std::string_view csrf, bool new_csrf,
                        std::string_view next, std::string_view username,
                        std::string_view error) {
  std::string b;
  if (!error.empty()) {
    b += "<div class=\"errors\" role=\"alert\"><p>" + esc(error) +
         "</p></div>\n";
  }
  b += "<p>Log in with a staff account to manage the OAuth 2 "
       "applications.</p>\n"
       "<form method=\"post\" action=\"/o/applications/login/\">\n";
  b += hidden("csrf", csrf);
  if (!next.empty()) b += hidden("next", next);
  b += "<div class=\"field\"><label for=\"id_username\">Username</label>\n"
       "<input type=\"text\" id=\"id_username\" name=\"username\" "
       "autocomplete=\"username\" autocapitalize=\"none\" maxlength=\"150\" "
       "required autofocus value=\"" +
       esc(username) +
       "\"></div>\n"
       "<div class=\"field\"><label for=\"id_password\">Password</label>\n"
       "<input type=\"password\" id=\"id_password\" name=\"password\" "
       "autocomplete=\"current-password\" required></div>\n"
       "<button type=\"submit\">Log in</button>\n</form>\n";
  HttpResponse r = page(status, "Log in", b, nullptr);
  if (new_csrf) {
    r.headers.emplace_back("Set-Cookie",
                           cookie_header(req, kCsrfCookie, csrf, false));
  }
  return r;
}

// 503: too many sign-ins are hashing at once (--hash-limit)
HttpResponse busy_page(const HttpRequest& req, std::string_view csrf,
                       std::string_view next, std::string_view username) {
  HttpResponse r = login_page(503, req, csrf, false, next, username,
                              "Too many sign-ins at once: try again in a moment.");
  r.set("Retry-After", "1");
  return r;
}

HttpResponse login_get(ServeContext& ctx, const HttpRequest& req) {
  std::string next;
  Form q;
  if (q.parse(req.query) == Form::Status::kOk) {
    auto n = q.get("next");
    if (n && safe_next(*n)) next = std::string(*n);
  }
  if (authenticate(ctx, req)) {
    return see_other(next.empty() ? std::string(kBase) : next);
  }
  auto c = cookie(req, kCsrfCookie);
  bool fresh = !c || !is_token(*c);
  std::string csrf = fresh ? random_token() : *c;
  return login_page(200, req, csrf, fresh, next, "", "");
}

HttpResponse login_post(ServeContext& ctx, const HttpRequest& req) {
  Form f;
  if (auto bad = read_form(req, f, nullptr)) return std::move(*bad);
  auto c = cookie(req, kCsrfCookie);
  std::string sent = field_value(f, "csrf");
  if (cross_site(req) || !c || !is_token(*c) || !tokens_equal(*c, sent)) {
    return forbidden_csrf(nullptr);
  }
  std::string next = field_value(f, "next");
  if (!safe_next(next)) next.clear();
  std::string username = field_value(f, "username");
  auto password = f.get("password");
  if (username.empty() || !password) {
    return login_page(400, req, *c, false, next, username,
                      "Enter your username and password.");
  }

  // the throttles and the account's lock first, as the module's login
  // pages: one lock per account wherever it signs in (R89)
  const int64_t now = static_cast<int64_t>(time(nullptr));
  const Throttle throttle = ctx.throttle(req);
  auto device = cookie(req, kDeviceCookie);
  const bool new_device = !device || !valid_device_cookie(*device);
  const LoginOrigin origin{throttle.address(),
                           new_device ? new_device_cookie() : *device};
  LoginTarget target;
  unsigned wait = throttle.address_wait();
  if (!wait) {
    Txn txn = ctx.store->read();
    target = resolve_login(txn, ctx.realm, username, false);
    wait = login_gate(txn, throttle, ctx.realm, target, origin, now);
  }
  if (wait) {
    HttpResponse r = login_page(429, req, *c, false, next, username,
                                "Too many failed sign-ins: wait and try again.");
    r.set("Retry-After", std::to_string(wait));
    return r;
  }
  HashSlots::Slot slot = ctx.hash_slots ? ctx.hash_slots->acquire()
                                        : HashSlots::Slot(nullptr);
  if (ctx.hash_slots && !slot) return busy_page(req, *c, next, username);
  LoginCheck check = check_login(*ctx.store, ctx.realm, target, *password,
                                 ctx.pbkdf2_iterations, ctx.account_limit, now);
  std::optional<User> u = std::move(check.user);
  if (!u) {
    throttle.password_failed(target.throttle_key);
    throttle.address_failed();
  }
  // a wrong password and a user who may not log in look the same
  if (!u || !u->is_staff) {
    return login_page(400, req, *c, false, next, username, kBadLogin);
  }

  // last_login as Django keeps it; a stronger hash when the cost rose
  std::string new_hash;
  if (check.needs_rehash) {
    new_hash = hash_password(*password, ctx.pbkdf2_iterations);
  }
  slot.reset();
  {
    Txn txn = ctx.store->write();
    auto cur = txn.get_user(ctx.realm, u->id);
    if (!cur || cur->password != u->password || !cur->is_active ||
        !cur->is_staff) {
      return login_page(400, req, *c, false, next, username, kBadLogin);
    }
    User updated = *cur;
    if (!new_hash.empty()) updated.password = new_hash;
    updated.last_login = now;
    // the session follows what is stored, written or not
    if (txn.put_user(updated, false) == PutUser::kOk) {
      account_signed_in(txn, ctx.realm, updated.id, origin, now);
      txn.commit();
      *cur = std::move(updated);
    }
    u = std::move(cur);
  }
  // a new session at each login; the one the browser had, if any, ends
  if (auto old = cookie(req, kSessionCookie)) sessions().close_cookie(*old);
  std::string token = sessions().open(u->id, auth_hash(*u));
  HttpResponse r = see_other(next.empty() ? std::string(kBase) : next);
  r.headers.emplace_back("Set-Cookie",
                         cookie_header(req, kSessionCookie, token, false));
  r.headers.emplace_back("Set-Cookie",
                         cookie_header(req, kCsrfCookie, "", true));
  if (new_device) {
    // the browser is remembered (as by the module's pages: Path=/)
    std::string d = std::string(kDeviceCookie) + "=" + origin.device +
                    "; Path=/; HttpOnly; SameSite=Lax; Max-Age=" +
                    std::to_string(kDeviceCookieTtl);
    if (secure_request(req)) d += "; Secure";
    r.headers.emplace_back("Set-Cookie", std::move(d));
  }
  return r;
}

HttpResponse logout_post(ServeContext& ctx, const HttpRequest& req) {
  auto auth = authenticate(ctx, req);
  if (!auth) return see_other(std::string(kLoginPath));
  Form f;
  if (auto bad = read_form(req, f, &*auth)) return std::move(*bad);
  if (cross_site(req) ||
      !tokens_equal(field_value(f, "csrf"), auth->session.csrf)) {
    return forbidden_csrf(&*auth);
  }
  sessions().close(auth->key);
  HttpResponse r = see_other(std::string(kLoginPath));
  r.headers.emplace_back("Set-Cookie",
                         cookie_header(req, kSessionCookie, "", true));
  return r;
}

////////////////////////////////////////////////////////////// app form

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

AppForm form_of(const Client& c) {
  AppForm v;
  v.name = c.name;
  v.client_type = c.confidential ? "confidential" : "public";
  v.grants = c.grant_types;
  v.redirect_uris = join(c.redirect_uris, "\n");
  v.scope = c.scope;
  if (c.access_token_ttl > 0) v.ttl = std::to_string(c.access_token_ttl);
  v.auth_method = c.auth_method;
  return v;
}

// Reads and checks the form (the rules of `app add`) into v, and into c
// when valid.  With create, the client type is read too; without, c's.
bool read_app(const Form& f, bool create, AppForm& v, Errors& e, Client& c) {
  v.name = std::string(trim(field_value(f, "name")));
  if (v.name.empty()) {
    e.add("name", "Enter a name.");
  } else if (!valid_app_name(v.name)) {
    e.add("name",
          "The name must be 1 to 255 characters, without control "
          "characters.");
  }

  if (create) {
    v.client_type = field_value(f, "client_type");
    if (v.client_type != "confidential" && v.client_type != "public") {
      e.add("client_type", "Choose confidential or public.");
    }
  } else {
    v.client_type = c.confidential ? "confidential" : "public";
  }
  bool confidential = v.client_type != "public";

  v.grants.clear();
  for (const char* g : kGrants) {
    if (f.has("grant_" + std::string(g))) v.grants.emplace_back(g);
  }
  if (v.grants.empty()) {
    e.add("grants", "Choose at least one authorization grant type.");
  } else if (!confidential && v.has_grant("client_credentials")) {
    e.add("grants",
          "A public client cannot use the client credentials grant "
          "(RFC 6749 4.4): choose a confidential client or another "
          "grant.");
  }

  v.redirect_uris = field_value(f, "redirect_uris");
  std::vector<std::string> uris;
  for (auto& u : split_spaces(v.redirect_uris)) {
    if (!valid_redirect_uri(u)) {
      e.add("redirect_uris",
            "\"" + u +
                "\" is not an https URI, an http URI to 127.0.0.1 or "
                "[::1], or a private-use scheme like com.example.app:/cb "
                "(no fragment, userinfo or wildcard).");
      continue;
    }
    bool dup = false;
    for (const auto& x : uris) dup = dup || x == u;
    if (!dup) uris.push_back(std::move(u));
  }
  if (uris.empty() && v.has_grant("authorization_code") &&
      e.of("redirect_uris").empty()) {
    e.add("redirect_uris",
          "The authorization code grant needs at least one redirect URI.");
  }

  v.scope = join(split_spaces(field_value(f, "scope")), " ");
  if (!v.scope.empty() && !parse_scope(v.scope, nullptr)) {
    e.add("scope",
          "Enter scope names separated by spaces, each once, without "
          "quotes or backslashes (RFC 6749 3.3).");
  }

  v.ttl = std::string(trim(field_value(f, "access_token_ttl")));
  std::optional<int64_t> ttl;
  if (!v.ttl.empty()) {
    ttl = parse_ttl(v.ttl);
    if (!ttl) {
      e.add("access_token_ttl",
            "Enter a number of seconds from 1 to 315360000, or leave it "
            "empty.");
    }
  }

  v.auth_method = field_value(f, "auth_method");
  if (!v.auth_method.empty()) {
    if (!valid_auth_method(v.auth_method)) {
      e.add("auth_method", "Choose a client authentication method.");
    } else if (!confidential) {
      e.add("auth_method",
            "A public client has no secret: leave the authentication "
            "method on \"either\".");
    }
  }

  if (e.any()) return false;
  c.name = v.name;
  if (create) c.confidential = confidential;
  c.grant_types = v.grants;
  c.redirect_uris = std::move(uris);
  c.scope = v.scope;
  c.access_token_ttl = ttl.value_or(0);
  c.auth_method = v.auth_method;
  return true;
}

std::string text_field(const Errors& e, std::string_view name,
                       std::string_view label, std::string_view value,
                       std::string_view help, std::string_view extra) {
  std::string aria;
  std::string errs = field_errors(e, name, &aria);
  std::string h = "<div class=\"field\"><label for=\"id_" + esc(name) + "\">" +
                  esc(label) + "</label>\n";
  if (!help.empty()) {
    h += "<p class=\"help\" id=\"id_" + esc(name) + "_help\">" + esc(help) +
         "</p>\n";
  }
  h += "<input type=\"text\" id=\"id_" + esc(name) + "\" name=\"" + esc(name) +
       "\" value=\"" + esc(value) + "\"" + std::string(extra) + aria;
  if (!help.empty() && aria.empty()) {
    h += " aria-describedby=\"id_" + esc(name) + "_help\"";
  }
  return h + ">\n" + errs + "</div>\n";
}

std::string app_form_html(const AppForm& v, const Errors& e, bool create,
                          std::string_view action, std::string_view csrf,
                          std::string_view submit) {
  std::string h = error_summary(e);
  h += "<form method=\"post\" action=\"" + esc(action) + "\" novalidate>\n";
  h += hidden("csrf", csrf);
  h += text_field(e, "name", "Name", v.name, "", " maxlength=\"255\" required");

  std::string aria;
  std::string errs;
  if (create) {
    errs = field_errors(e, "client_type", &aria);
    h += "<fieldset id=\"id_client_type\"" + aria +
         "><legend>Client type</legend>\n";
    for (const char* t : {"confidential", "public"}) {
      std::string id = std::string("id_client_type_") + t;
      h += "<label for=\"" + id + "\"><input type=\"radio\" id=\"" + id +
           "\" name=\"client_type\" value=\"" + t + "\"" +
           (v.client_type == t ? " checked" : "") + "> " +
           (t[0] == 'c' ? "Confidential: a server that keeps a secret"
                        : "Public: a browser or mobile app, no secret") +
           "</label>\n";
    }
    h += errs + "</fieldset>\n";
  } else {
    h += "<p><strong>Client type:</strong> " + esc(v.client_type) + "</p>\n";
  }

  aria.clear();
  errs = field_errors(e, "grants", &aria);
  h += "<fieldset id=\"id_grants\"" + aria +
       "><legend>Authorization grant types</legend>\n";
  for (size_t i = 0; i < std::size(kGrants); i++) {
    std::string n = std::string("grant_") + kGrants[i];
    h += "<label for=\"id_" + n + "\"><input type=\"checkbox\" id=\"id_" + n +
         "\" name=\"" + n + "\" value=\"1\"" +
         (v.has_grant(kGrants[i]) ? " checked" : "") + "> " + kGrantLabels[i] +
         "</label>\n";
  }
  h += errs + "</fieldset>\n";

  aria.clear();
  errs = field_errors(e, "redirect_uris", &aria);
  h +=
      "<div class=\"field\"><label for=\"id_redirect_uris\">Redirect "
      "uris</label>\n<p class=\"help\" id=\"id_redirect_uris_help\">Allowed "
      "URIs, separated by spaces or new lines. Needed for the "
      "authorization code grant.</p>\n<textarea id=\"id_redirect_uris\" "
      "name=\"redirect_uris\" rows=\"3\"" +
      (aria.empty() ? std::string(" aria-describedby=\"id_redirect_uris_help\"")
                    : aria) +
      ">" + esc(v.redirect_uris) + "</textarea>\n" + errs + "</div>\n";

  h += text_field(e, "scope", "Allowed scope", v.scope,
                  "Scopes the application may obtain, separated by "
                  "spaces. Empty: the server's default scope.",
                  "");

  aria.clear();
  errs = field_errors(e, "access_token_ttl", &aria);
  h += "<div class=\"field\"><label for=\"id_access_token_ttl\">Access token "
       "lifetime (seconds)</label>\n<p class=\"help\" "
       "id=\"id_access_token_ttl_help\">Optional, 1 to 315360000. Empty: the "
       "server's default.</p>\n<input type=\"number\" "
       "id=\"id_access_token_ttl\" name=\"access_token_ttl\" min=\"1\" "
       "max=\"315360000\" value=\"" +
       esc(v.ttl) + "\"" +
       (aria.empty()
            ? std::string(" aria-describedby=\"id_access_token_ttl_help\"")
            : aria) +
       ">\n" + errs + "</div>\n";

  if (v.client_type != "public" || create) {
    aria.clear();
    errs = field_errors(e, "auth_method", &aria);
    h += "<div class=\"field\"><label for=\"id_auth_method\">Client "
         "authentication</label>\n<select id=\"id_auth_method\" "
         "name=\"auth_method\"" +
         aria + ">\n";
    const std::pair<const char*, const char*> opts[] = {
        {"", "Either: HTTP Basic or client_secret in the body"},
        {"client_secret_basic", "HTTP Basic only (client_secret_basic)"},
        {"client_secret_post", "In the body only (client_secret_post)"},
    };
    for (const auto& o : opts) {
      h += std::string("<option value=\"") + o.first + "\"" +
           (v.auth_method == o.first ? " selected" : "") + ">" + o.second +
           "</option>\n";
    }
    h += "</select>\n" + errs + "</div>\n";
  }
  h += "<div class=\"actions\"><button type=\"submit\">" + esc(submit) +
       "</button>\n<a href=\"/o/applications/\">Cancel</a></div>\n</form>\n";
  return h;
}

////////////////////////////////////////////////////////////// app pages

std::string app_path(const Client& c, std::string_view action) {
  std::string p = std::string(kBase) + pct(c.client_id) + "/";
  if (!action.empty()) p += std::string(action) + "/";
  return p;
}

std::string grants_text(const Client& c) {
  std::vector<std::string> labels;
  for (const auto& g : c.grant_types) labels.push_back(grant_label(g));
  return join(labels, ", ");
}

HttpResponse list_page(ServeContext& ctx, const Auth& auth) {
  std::vector<Client> apps;
  {
    Txn txn = ctx.store->read();
    apps = txn.list_clients(ctx.realm);
  }
  std::string b;
  if (apps.empty()) {
    b += "<p>No applications are registered yet.</p>\n";
  } else {
    b += "<table>\n<caption class=\"help\">" + std::to_string(apps.size()) +
         (apps.size() == 1 ? " application" : " applications") +
         "</caption>\n<thead><tr><th scope=\"col\">Name</th>"
         "<th scope=\"col\">Client id</th><th scope=\"col\">Client type</th>"
         "<th scope=\"col\">Grant types</th></tr></thead>\n<tbody>\n";
    for (const Client& c : apps) {
      b += "<tr><td><a href=\"" + esc(app_path(c, "")) + "\">" + esc(c.name) +
           "</a></td><td><code>" + esc(c.client_id) + "</code></td><td>" +
           (c.confidential ? "Confidential" : "Public") +
           (c.disabled ? " (disabled)" : "") + "</td><td>" +
           esc(grants_text(c)) + "</td></tr>\n";
    }
    b += "</tbody>\n</table>\n";
  }
  b += "<p class=\"actions\"><a href=\"/o/applications/register/\">Register "
       "a new application</a></p>\n";
  return page(200, "Applications", b, &auth);
}

HttpResponse detail_page(const Client& c, const Auth& auth) {
  std::string b = "<dl>\n<dt>Name</dt><dd>" + esc(c.name) + "</dd>\n";
  b += "<dt>Client id</dt><dd><code id=\"client_id\">" + esc(c.client_id) +
       "</code></dd>\n";
  b += std::string("<dt>Client type</dt><dd>") +
       (c.confidential ? "Confidential" : "Public") + "</dd>\n";
  b += "<dt>Client secret</dt><dd>" +
       std::string(c.confidential
                       ? "Stored hashed: it cannot be shown. Rotate it to "
                         "get a new one."
                       : "None (public client)") +
       "</dd>\n";
  b += "<dt>Authorization grant types</dt><dd>" + esc(grants_text(c)) +
       "</dd>\n";
  b += "<dt>Redirect uris</dt><dd>";
  if (c.redirect_uris.empty()) b += "None";
  for (size_t i = 0; i < c.redirect_uris.size(); i++) {
    b += (i ? "<br><code>" : "<code>") + esc(c.redirect_uris[i]) + "</code>";
  }
  b += "</dd>\n<dt>Allowed scope</dt><dd>" +
       (c.scope.empty() ? std::string("The server's default")
                        : "<code>" + esc(c.scope) + "</code>") +
       "</dd>\n";
  b += "<dt>Client authentication</dt><dd>" +
       (c.auth_method.empty()
            ? std::string(c.confidential ? "HTTP Basic or body"
                                         : "None (public client)")
            : esc(c.auth_method)) +
       "</dd>\n";
  b += "<dt>Access token lifetime</dt><dd>" +
       (c.access_token_ttl > 0 ? std::to_string(c.access_token_ttl) + " seconds"
                               : std::string("The server's default")) +
       "</dd>\n";
  b += "<dt>Created</dt><dd>" + esc(utc_time(c.created_at)) + "</dd>\n";
  if (c.disabled) b += "<dt>Status</dt><dd>Disabled</dd>\n";
  b += "</dl>\n<div class=\"actions\">\n<a href=\"" +
       esc(app_path(c, "update")) + "\">Edit</a>\n<a href=\"" +
       esc(app_path(c, "delete")) + "\">Delete</a>\n";
  if (c.confidential) {
    b += "<form method=\"post\" action=\"" + esc(app_path(c, "rotate-secret")) +
         "\">" + hidden("csrf", auth.session.csrf) +
         "<button type=\"submit\">Rotate the client secret</button></form>\n";
  }
  b += "<a href=\"/o/applications/\">Back to the applications</a>\n</div>\n";
  return page(200, c.name, b, &auth);
}

// The page that shows a secret, the only time it is ever shown.
HttpResponse secret_page(const Client& c, std::string_view secret, bool created,
                         const Auth& auth) {
  std::string b;
  if (c.confidential) {
    b += "<div class=\"notice\" role=\"alert\"><p><strong>Copy the client "
         "secret now: it will not be shown again.</strong> Only a hash of "
         "it is stored.";
    if (!created) b += " The previous secret no longer works.";
    b += "</p></div>\n";
  }
  b += "<dl>\n<dt>Name</dt><dd>" + esc(c.name) + "</dd>\n";
  b += "<dt>Client id</dt><dd><code class=\"secret\" id=\"client_id\">" +
       esc(c.client_id) + "</code></dd>\n";
  if (c.confidential) {
    b += "<dt>Client secret</dt><dd><code class=\"secret\" "
         "id=\"client_secret\">" +
         esc(secret) + "</code></dd>\n";
  } else {
    b += "<dt>Client secret</dt><dd>None: a public client has no "
         "secret.</dd>\n";
  }
  b += "</dl>\n";
  if (c.confidential && c.allows_grant("client_credentials")) {
    b += "<p>Get an access token with <code>POST /o/token/</code>, "
         "<code>grant_type=client_credentials</code> and HTTP Basic "
         "authentication: the client id as the user name, the secret as the "
         "password.</p>\n";
  }
  b += "<div class=\"actions\"><a href=\"" + esc(app_path(c, "")) +
       "\">Go to the application</a>\n<a href=\"/o/applications/\">Back to "
       "the applications</a></div>\n";
  return page(200, created ? "Application registered" : "New client secret", b,
              &auth);
}

HttpResponse register_get(const Auth& auth) {
  AppForm v;
  std::string b = app_form_html(v, Errors{}, true, "/o/applications/register/",
                                auth.session.csrf, "Save");
  return page(200, "Register a new application", b, &auth);
}

HttpResponse register_post(ServeContext& ctx, const Form& f, const Auth& auth) {
  AppForm v;
  Errors e;
  Client c;
  c.realm = ctx.realm;
  if (!read_app(f, true, v, e, c)) {
    std::string b = app_form_html(v, e, true, "/o/applications/register/",
                                  auth.session.csrf, "Save");
    return page(400, "Register a new application", b, &auth);
  }
  std::string secret;
  struct Wiper {
    std::string& s;
    ~Wiper() { wipe(s); }
  } wiper{secret};
  create_client(*ctx.store, c, &secret);
  return secret_page(c, secret, true, auth);
}

std::optional<Client> load_app(ServeContext& ctx, const std::string& id) {
  if (!valid_client_id(id)) return std::nullopt;
  Txn txn = ctx.store->read();
  return txn.get_client(ctx.realm, id);
}

HttpResponse update_page(int status, const Client& c, const AppForm& v,
                         const Errors& e, const Auth& auth) {
  std::string b = app_form_html(v, e, false, app_path(c, "update"),
                                auth.session.csrf, "Save");
  return page(status, "Edit " + c.name, b, &auth);
}

HttpResponse update_post(ServeContext& ctx, const std::string& id,
                         const Form& f, const Auth& auth) {
  // read, check and write in one write transaction: no lost update
  Txn txn = ctx.store->write();
  auto c = txn.get_client(ctx.realm, id);
  if (!c) return not_found(&auth);
  const Client before = *c;
  AppForm v;
  Errors e;
  if (!read_app(f, false, v, e, *c)) {
    return update_page(400, before, v, e, auth);
  }
  if (!txn.put_client(*c, false)) return not_found(&auth);
  txn.commit();
  sessions().set_flash(auth.key,
                       "The changes to \"" + c->name + "\" were saved.");
  return see_other(app_path(*c, ""));
}

HttpResponse rotate_post(ServeContext& ctx, const std::string& id,
                         const Auth& auth) {
  std::string secret;
  struct Wiper {
    std::string& s;
    ~Wiper() { wipe(s); }
  } wiper{secret};
  Txn txn = ctx.store->write();
  auto c = txn.get_client(ctx.realm, id);
  if (!c) return not_found(&auth);
  if (!c->confidential) {
    return message(400, "No secret", "A public client has no secret to rotate.",
                   &auth);
  }
  secret = new_client_secret(*c);
  if (!txn.put_client(*c, false)) return not_found(&auth);
  txn.commit();
  return secret_page(*c, secret, false, auth);
}

HttpResponse delete_get(const Client& c, const Auth& auth) {
  std::string b = "<p>Delete the application <strong>" + esc(c.name) +
                  "</strong> (client id <code>" + esc(c.client_id) +
                  "</code>)? Every token issued to it stops working at "
                  "once. This cannot be undone.</p>\n";
  b += "<form method=\"post\" action=\"" + esc(app_path(c, "delete")) +
       "\">\n" + hidden("csrf", auth.session.csrf) +
       "<div class=\"actions\"><button type=\"submit\" "
       "class=\"danger\">Delete</button>\n<a href=\"" +
       esc(app_path(c, "")) + "\">Cancel</a></div>\n</form>\n";
  return page(200, "Delete " + c.name, b, &auth);
}

HttpResponse delete_post(ServeContext& ctx, const std::string& id,
                         const Auth& auth) {
  std::string name;
  {
    Txn txn = ctx.store->write();
    auto c = txn.get_client(ctx.realm, id);
    if (!c) return not_found(&auth);
    name = c->name;
    if (!txn.delete_client(ctx.realm, id)) return not_found(&auth);
    txn.commit();
  }
  sessions().set_flash(auth.key,
                       "The application \"" + name + "\" was deleted.");
  return see_other(std::string(kBase));
}

////////////////////////////////////////////////////////////// routing

enum class Route {
  kList,
  kLogin,
  kLogout,
  kRegister,
  kDetail,
  kUpdate,
  kDelete,
  kRotate,
  kNone
};

struct Match {
  Route route = Route::kNone;
  std::string_view raw_id;  // the client id segment, still encoded
};

Match match(std::string_view path) {
  Match m;
  if (path.substr(0, kBase.size()) != kBase) return m;
  std::string_view rest = path.substr(kBase.size());
  if (rest.empty()) {
    m.route = Route::kList;
    return m;
  }
  if (rest.back() != '/') return m;
  rest.remove_suffix(1);
  if (rest == "login") m.route = Route::kLogin;
  if (rest == "logout") m.route = Route::kLogout;
  if (rest == "register") m.route = Route::kRegister;
  if (m.route != Route::kNone) return m;
  size_t slash = rest.find('/');
  m.raw_id = rest.substr(0, slash);
  if (m.raw_id.empty()) return m;
  if (slash == std::string_view::npos) {
    m.route = Route::kDetail;
    return m;
  }
  std::string_view action = rest.substr(slash + 1);
  if (action == "update") m.route = Route::kUpdate;
  if (action == "delete") m.route = Route::kDelete;
  if (action == "rotate-secret") m.route = Route::kRotate;
  return m;
}

const char* allowed_methods(Route r) {
  switch (r) {
    case Route::kList:
    case Route::kDetail:
      return "GET, HEAD";
    case Route::kLogout:
    case Route::kRotate:
      return "POST";
    default:
      return "GET, HEAD, POST";
  }
}

HttpResponse route(ServeContext& ctx, const HttpRequest& req) {
  Match m = match(req.path);
  if (m.route == Route::kNone) return not_found(nullptr);

  const std::string& method = req.method;
  bool get = method == "GET" || method == "HEAD";
  bool post = method == "POST";
  std::string_view allow = allowed_methods(m.route);
  if (!(get && allow.find("GET") != std::string_view::npos) &&
      !(post && allow.find("POST") != std::string_view::npos)) {
    return method_not_allowed(allow);
  }

  if (m.route == Route::kLogin) {
    return get ? login_get(ctx, req) : login_post(ctx, req);
  }
  if (m.route == Route::kLogout) return logout_post(ctx, req);

  auto auth = authenticate(ctx, req);
  if (!auth) return login_redirect(req);

  Form f;
  if (post) {
    if (auto bad = read_form(req, f, &*auth)) return std::move(*bad);
    if (cross_site(req) ||
        !tokens_equal(field_value(f, "csrf"), auth->session.csrf)) {
      return forbidden_csrf(&*auth);
    }
  }

  if (m.route == Route::kList) return list_page(ctx, *auth);
  if (m.route == Route::kRegister) {
    return get ? register_get(*auth) : register_post(ctx, f, *auth);
  }

  auto id = percent_decode_segment(m.raw_id);
  if (!id || !valid_client_id(*id)) return not_found(&*auth);
  switch (m.route) {
    case Route::kUpdate:
      if (post) return update_post(ctx, *id, f, *auth);
      break;
    case Route::kDelete:
      if (post) return delete_post(ctx, *id, *auth);
      break;
    case Route::kRotate:
      return rotate_post(ctx, *id, *auth);
    default:
      break;
  }
  auto c = load_app(ctx, *id);
  if (!c) return not_found(&*auth);
  if (m.route == Route::kUpdate) {
    return update_page(200, *c, form_of(*c), Errors{}, *auth);
  }
  if (m.route == Route::kDelete) return delete_get(*c, *auth);
  return detail_page(*c, *auth);
}

}  // namespace

HttpResponse web_handle(ServeContext& ctx, const HttpRequest& req) {
  try {
    return route(ctx, req);
  } catch (const std::exception& e) {
    fprintf(stderr, "oauth2-admin: web %s %s: %s\n",
            printable(req.method).c_str(), printable(req.path).c_str(),
            e.what());
  } catch (...) {
    fprintf(stderr, "oauth2-admin: web: unexpected error\n");
  }
  try {
    return message(500, "Server error",
                   "Something went wrong. Try again later.", nullptr);
  } catch (...) {
    HttpResponse r;
    r.status = 500;
    return r;
  }
}

}  // namespace oauth2::admin
