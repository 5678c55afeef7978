// The sessions and CSRF tokens of the web pages.
//
// Sessions live in this process's memory, keyed by the SHA-256 of the
// cookie value (the clear value is never kept): 30 minutes idle, 12 hours
// at most, and the user is read again on every request, so that a user
// who is deleted, disabled, loses is_staff or changes password is logged
// out at once; each has a record in the store (kPageSession), which its
// end deletes.  Each session has its own random CSRF token; the login
// form, before any session exists, uses a double-submit cookie.

#include <exception>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli.hpp"
#include "codec.hpp"
#include "crypto.hpp"
#include "store.hpp"
#include "web_internal.hpp"

namespace oauth2::admin::web {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kTokenLength = 43;  // random_token(): 256 bits, base64url

// How long a session lives: unused, and at most (ServeContext's); and
// how many the table holds.
struct Lifetime {
  std::chrono::seconds idle;
  std::chrono::seconds max;
  size_t most;
  explicit Lifetime(const ServeContext& ctx)
      : idle(ctx.session_idle), max(ctx.session_max), most(ctx.max_sessions) {}
};

// The store records of sessions that ended: realm and id.
using Records = std::vector<std::pair<std::string, TokenId>>;

class Sessions {
 public:
  // A new session s under the cookie value token; the records of the
  // sessions it ended (unused for too long, or when the table is full the
  // least recently seen of its user's, else of its realm's, else of any)
  // into *ended: one who signs in again and again ends their own
  // sessions, not another realm's.
  void open(const std::string& token, Session s, const Lifetime& life, Records* ended) {
    s.csrf = random_token();
    s.created = s.seen = Clock::now();
    std::lock_guard<std::mutex> lock(mu_);
    sweep(s.created, life, ended);
    if (!map_.empty() && map_.size() >= life.most) {
      auto mine = map_.end(), realms = map_.end(), any = map_.begin();
      auto older = [&](auto it, auto than) {
        return than == map_.end() || it->second.seen < than->second.seen;
      };
      for (auto it = map_.begin(); it != map_.end(); ++it) {
        if (it->second.seen < any->second.seen) any = it;
        if (it->second.realm != s.realm) continue;
        if (older(it, realms)) realms = it;
        if (it->second.user_id == s.user_id && older(it, mine)) mine = it;
      }
      drop(mine != map_.end() ? mine : realms != map_.end() ? realms : any, ended);
    }
    map_[key(token)] = std::move(s);
  }

  // The live session of a cookie value (its key in *k), now marked seen;
  // the record of one that ended unused into *ended.
  std::optional<Session> touch(std::string_view cookie_value, std::string* k, const Lifetime& life,
                               Records* ended) {
    *k = key(cookie_value);
    auto now = Clock::now();
    std::lock_guard<std::mutex> lock(mu_);
    auto it = map_.find(*k);
    if (it == map_.end()) return std::nullopt;
    if (expired(it->second, now, life)) {
      drop(it, ended);
      return std::nullopt;
    }
    it->second.seen = now;
    Session copy = it->second;
    return copy;
  }

  // Ends the session of key k, if there is one: its record into *ended.
  void close(const std::string& k, Records* ended) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = map_.find(k);
    if (it != map_.end()) drop(it, ended);
  }

  void close_cookie(std::string_view cookie_value, Records* ended) {
    close(key(cookie_value), ended);
  }

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

  static bool expired(const Session& s, Clock::time_point now, const Lifetime& life) {
    return now - s.seen > life.idle || now - s.created > life.max;
  }

  void sweep(Clock::time_point now, const Lifetime& life, Records* ended) {
    for (auto it = map_.begin(); it != map_.end();) {
      it = expired(it->second, now, life) ? drop(it, ended) : std::next(it);
    }
  }

  std::map<std::string, Session>::iterator drop(std::map<std::string, Session>::iterator it,
                                                Records* ended) {
    ended->emplace_back(std::move(it->second.realm), it->second.record);
    return map_.erase(it);
  }

  std::mutex mu_;
  std::map<std::string, Session> map_;
};

// Never destroyed: the daemon's threads may still answer during exit.
Sessions& sessions() {
  static Sessions* s = new Sessions;
  return *s;
}

Digest auth_hash(const User& u) {
  return sha256(u.password);
}

// Deletes the records of sessions that ended (a record of a page session
// only), after they ended in memory: a store that fails is logged, and
// leaves them to expire (a record no request finds a session for).
void forget(const ServeContext& ctx, const Records& ended) {
  if (ended.empty()) return;
  try {
    ctx.store->change([&](Txn& txn) {
      bool deleted = false;
      for (const auto& [realm, id] : ended) {
        auto t = txn.get_token(realm, id);
        if (t && t->type == TokenType::kPageSession && txn.delete_token(realm, id)) {
          deleted = true;
        }
      }
      if (deleted) txn.commit();
    });
  } catch (const std::exception& e) {
    log_line("",
             std::string("error: the record of an ended page session stays until it expires: ") +
                 e.what());
  }
}

// A POST must come from these pages: a browser says so in Sec-Fetch-Site.
bool cross_site(const HttpRequest& req) {
  auto site = req.header("sec-fetch-site");
  return site && trim_ows(*site) != "same-origin";
}

}  // namespace

std::optional<Auth> authenticate(ServeContext& ctx, const HttpRequest& req) {
  auto value = req.cookie(kSessionCookie);
  if (!value || !is_token(*value)) return std::nullopt;
  Auth a;
  Records ended;
  auto s = sessions().touch(*value, &a.key, Lifetime(ctx), &ended);
  if (!s) {
    forget(ctx, ended);
    return std::nullopt;
  }
  a.session = std::move(*s);
  std::optional<User> u;
  std::optional<Token> record;
  {
    Txn txn = ctx.store->read();
    u = txn.get_user(ctx.realm, a.session.user_id);
    record = txn.get_token(ctx.realm, page_session_id(*value));
  }
  // the store's record of the session: gone with every token of the user
  // (deactivated, even if active again since; a new password; deleted)
  const bool recorded = record && record->type == TokenType::kPageSession &&
                        record->user == std::to_string(a.session.user_id) &&
                        static_cast<int64_t>(time(nullptr)) < record->expires_at;
  if (!recorded || !u || !u->is_active || !u->is_staff ||
      !equal_ct(auth_hash(*u).data(), a.session.auth_hash.data(), a.session.auth_hash.size())) {
    sessions().close(a.key, &ended);
    forget(ctx, ended);
    return std::nullopt;
  }
  a.user = std::move(*u);
  return a;
}

TokenId page_session_id(std::string_view cookie_value) {
  return token_id(std::string(kPageSessionDomain) + std::string(cookie_value));
}

void open_session(const ServeContext& ctx, const User& u, const std::string& token) {
  Session s;
  s.user_id = u.id;
  s.realm = ctx.realm;
  s.record = page_session_id(token);
  s.auth_hash = auth_hash(u);
  Records ended;
  sessions().open(token, std::move(s), Lifetime(ctx), &ended);
  forget(ctx, ended);
}

void close_session(const ServeContext& ctx, const Auth& auth) {
  Records ended;
  sessions().close(auth.key, &ended);
  forget(ctx, ended);
}

void close_session_cookie(const ServeContext& ctx, std::string_view cookie_value) {
  Records ended;
  sessions().close_cookie(cookie_value, &ended);
  forget(ctx, ended);
}

void set_flash(const Auth& auth, std::string message) {
  sessions().set_flash(auth.key, std::move(message));
}

std::string take_flash(const Auth& auth) {
  return sessions().take_flash(auth.key);
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

bool csrf_ok(const HttpRequest& req, const Form& f, const Auth& auth) {
  return !cross_site(req) && tokens_equal(field_value(f, "csrf"), auth.session.csrf);
}

bool login_csrf_ok(const HttpRequest& req, const std::optional<std::string>& csrf_cookie,
                   const Form& f) {
  return !cross_site(req) && csrf_cookie && is_token(*csrf_cookie) &&
         tokens_equal(*csrf_cookie, field_value(f, "csrf"));
}

bool secure_request(const HttpRequest& req) {
  auto proto = req.header("x-forwarded-proto");
  return proto && iequals(trim_ows(*proto), "https");
}

std::string cookie_header(const HttpRequest& req, const char* name, std::string_view value,
                          bool remove) {
  std::string c = std::string(name) + "=" + std::string(value) + "; Path=" + std::string(kBase) +
                  "; HttpOnly; SameSite=Strict";
  if (remove) c += "; Max-Age=0";
  if (secure_request(req)) c += "; Secure";
  return c;
}

}  // namespace oauth2::admin::web
