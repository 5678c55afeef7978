// Logging in and out of the web pages.  A staff user's password is
// checked as the module's login pages check one (login.hpp): the
// throttles and the account's lock first, one lock per account wherever
// it signs in (R89), then the slow hash, a few at a time (--hash-limit).
// Each login opens a new session.

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "codec.hpp"
#include "crypto.hpp"
#include "lockout.hpp"
#include "login.hpp"
#include "password.hpp"
#include "session.hpp"
#include "store.hpp"
#include "unicode.hpp"
#include "web_internal.hpp"

namespace oauth2::admin::web {
namespace {

// The module's device cookie, which the daemon's sign-in shares
std::string device_cookie_name(const HttpRequest& req) {
  return detail::cookie_name(kDeviceCookie, secure_request(req));
}

constexpr std::string_view kBadLogin =
    "Please enter the correct username and password for a staff account. "
    "Note that both fields may be case-sensitive.";

// A "next" we may redirect to after login: a path of these pages, made of
// plain characters only, never the login or logout page.
bool safe_next(std::string_view n) {
  if (n.size() > 1024 || n.substr(0, kBase.size()) != kBase) return false;
  for (char ch : n) {
    if (!unreserved(ch) && ch != '/' && ch != '%') return false;
  }
  if (n.find("..") != std::string_view::npos || n.find("//") != std::string_view::npos) {
    return false;
  }
  return n.substr(kBase.size(), 6) != "login/" && n.substr(kBase.size(), 7) != "logout/";
}

// Where a login goes: next, else the list of applications.
std::string after_login(const std::string& next) {
  return next.empty() ? std::string(kBase) : next;
}

// A sign-in in progress: what the form said, shown again when it fails,
// and who is signing in from where.
struct Attempt {
  Attempt(ServeContext& ctx, const HttpRequest& r, std::string csrf_token, const Form& f)
      : req(r),
        csrf(std::move(csrf_token)),
        next(field_value(f, "next")),
        // stripped as Django's AuthenticationForm strips it (str.strip())
        username(py_strip(field_value(f, "username"))),
        now(static_cast<int64_t>(time(nullptr))),
        throttle(ctx.throttle(r)) {
    if (!safe_next(next)) next.clear();
    auto device = r.cookie(device_cookie_name(r));
    new_device = !device || !valid_device_cookie(*device);
    origin = {throttle.address(), new_device ? new_device_cookie() : *device};
  }

  // The login page again, with error.
  HttpResponse again(int status, std::string_view error) const {
    return login_page(status, req, csrf, false, next, username, error);
  }

  const HttpRequest& req;
  std::string csrf;  // of the double-submit cookie, which stays
  std::string next;
  std::string username;
  int64_t now;
  Throttle throttle;
  bool new_device;  // the browser has no device cookie yet
  LoginOrigin origin;
  LoginTarget target;  // resolved by login_wait()
};

// 0, with a.target resolved, when the password may be checked; else the
// seconds to wait (the address's or the account's throttle, or its lock).
unsigned login_wait(ServeContext& ctx, Attempt& a) {
  unsigned wait = a.throttle.address_wait();
  if (!wait) {
    Txn txn = ctx.store->read();
    a.target = resolve_login(txn, ctx.realm, a.username, false);
    wait = login_gate(txn, a.throttle, ctx.realm, a.target, a.origin, a.now);
  }
  return wait;
}

HttpResponse throttled(const Attempt& a, unsigned wait) {
  HttpResponse r = a.again(429, "Too many failed sign-ins: wait and try again.");
  r.set("Retry-After", std::to_string(wait));
  return r;
}

// 503: too many sign-ins are hashing at once (--hash-limit)
HttpResponse busy(const Attempt& a) {
  HttpResponse r = a.again(503, "Too many sign-ins at once: try again in a moment.");
  r.set("Retry-After", "1");
  return r;
}

// Checks the password, holding a hash slot meanwhile: nullopt with the
// staff user it belongs to in *u, and the password hashed again in
// *new_hash when the cost rose; else the page that refuses it.
std::optional<HttpResponse> check_password(ServeContext& ctx, const Attempt& a,
                                           std::string_view password, User* u,
                                           std::string* new_hash) {
  HashSlots::Slot slot = ctx.hash_slot();
  if (ctx.hash_slots && !slot) return busy(a);
  LoginCheck check = check_login(*ctx.store, ctx.realm, a.target, password, ctx.pbkdf2_iterations,
                                 ctx.account_limit, a.origin, a.now);
  if (check.locked) return throttled(a, check.locked);
  // a wrong password and a user who may not log in look the same, and
  // count the same: a hash each, which one address must not spend
  // without end (R88)
  if (!check.user || !check.user->is_staff) {
    a.throttle.password_failed(a.target.throttle_key);
    a.throttle.address_failed();
    return a.again(400, kBadLogin);
  }
  if (check.needs_rehash) {
    *new_hash = hash_password(password, ctx.pbkdf2_iterations);
  }
  *u = std::move(*check.user);
  return std::nullopt;
}

// Records the login: last_login as Django keeps it, the stronger hash,
// the origin for the account's lock (*device: the device value the
// browser is to keep).  The user as stored, or nullopt when it changed
// meanwhile and may no longer log in.
std::optional<User> record_login(ServeContext& ctx, const Attempt& a, const User& u,
                                 const std::string& new_hash, const std::string& session,
                                 std::string* device) {
  return ctx.store->change([&](Txn& txn) -> std::optional<User> {
    auto cur = txn.get_user(ctx.realm, u.id);
    if (!cur || cur->password != u.password || !cur->is_active || !cur->is_staff) {
      return std::nullopt;
    }
    // locked during the hash by the guesses that ran beside it (R89)
    if (account_wait(txn, ctx.realm, cur->id, a.origin, a.now)) return std::nullopt;
    User updated = *cur;
    if (!new_hash.empty()) updated.password = new_hash;
    updated.last_login = a.now;
    // the session follows what is stored, written or not
    if (txn.put_user(updated, false) == PutUser::kOk) {
      *device = account_signed_in(txn, ctx.realm, updated.id, a.origin, a.now);
      Token record;
      record.type = TokenType::kPageSession;
      record.issued_at = a.now;
      record.expires_at = a.now + static_cast<int64_t>(ctx.session_max);
      record.user = std::to_string(updated.id);
      if (!txn.put_new_token(ctx.realm, page_session_id(session), record)) return std::nullopt;
      txn.commit();
      *cur = std::move(updated);
    }
    return cur;
  });
}

// The browser is remembered (as by the module's pages: Path=/, and the
// "__Host-" prefix behind https).
std::string device_cookie_header(const HttpRequest& req, const std::string& device) {
  std::string d = device_cookie_name(req) + "=" + device +
                  "; Path=/; HttpOnly; SameSite=Lax; Max-Age=" + std::to_string(kDeviceCookieTtl);
  if (secure_request(req)) d += "; Secure";
  return d;
}

// A new session at each login; the one the browser had, if any, ends.
HttpResponse logged_in(const ServeContext& ctx, const Attempt& a, const User& u,
                       const std::string& token, const std::string& device) {
  if (auto old = a.req.cookie(kSessionCookie)) close_session_cookie(ctx, *old);
  open_session(ctx, u, token);
  HttpResponse r = see_other(after_login(a.next));
  r.headers.emplace_back("Set-Cookie", cookie_header(a.req, kSessionCookie, token, false));
  r.headers.emplace_back("Set-Cookie", cookie_header(a.req, kCsrfCookie, "", true));
  if (a.new_device || device != a.origin.device) {
    r.headers.emplace_back("Set-Cookie", device_cookie_header(a.req, device));
  }
  return r;
}

}  // namespace

HttpResponse login_redirect(const HttpRequest& req) {
  std::string loc(kLoginPath);
  bool get = req.method == "GET" || req.method == "HEAD";
  if (get && safe_next(req.path)) loc += "?next=" + percent_encode(req.path);
  return see_other(loc);
}

HttpResponse login_get(ServeContext& ctx, const HttpRequest& req) {
  std::string next;
  Form q;
  if (q.parse(req.query) == Form::Status::kOk) {
    auto n = q.get("next");
    if (n && safe_next(*n)) next = std::string(*n);
  }
  if (authenticate(ctx, req)) return see_other(after_login(next));
  auto c = req.cookie(kCsrfCookie);
  bool fresh = !c || !is_token(*c);
  std::string csrf = fresh ? random_token() : *c;
  return login_page(200, req, csrf, fresh, next, "", "");
}

HttpResponse login_post(ServeContext& ctx, const HttpRequest& req) {
  Form f;
  if (auto bad = read_form(req, f, nullptr)) return std::move(*bad);
  auto csrf = req.cookie(kCsrfCookie);
  if (!login_csrf_ok(req, csrf, f)) return forbidden_csrf(nullptr);
  Attempt a(ctx, req, *csrf, f);
  auto password = f.get("password");
  if (a.username.empty() || !password) {
    return a.again(400, "Enter your username and password.");
  }
  if (unsigned wait = login_wait(ctx, a)) return throttled(a, wait);
  User u;
  std::string new_hash;
  if (auto refused = check_password(ctx, a, *password, &u, &new_hash)) {
    return std::move(*refused);
  }
  std::string device;
  std::string token = random_token();
  WipeOnExit wipe_token(token);
  auto stored = record_login(ctx, a, u, new_hash, token, &device);
  if (!stored) return a.again(400, kBadLogin);
  return logged_in(ctx, a, *stored, token, device);
}

HttpResponse logout_post(ServeContext& ctx, const HttpRequest& req) {
  auto auth = authenticate(ctx, req);
  if (!auth) return see_other(std::string(kLoginPath));
  Form f;
  if (auto refused = read_post(req, f, *auth)) return std::move(*refused);
  close_session(ctx, *auth);
  HttpResponse r = see_other(std::string(kLoginPath));
  r.headers.emplace_back("Set-Cookie", cookie_header(req, kSessionCookie, "", true));
  return r;
}

}  // namespace oauth2::admin::web
