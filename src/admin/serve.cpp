// `oauth2-admin serve`: the admin daemon.  The JSON API for users and
// applications and the web pages, on a loopback address or a unix socket
// (R69) that nginx proxies to, over the same store the module reads.
//
// SIGTERM or SIGINT: stop accepting, let the requests in flight finish,
// close the store, exit 0.  Every write is one LMDB transaction, so even a
// kill -9 leaves each record whole.

#include <lmdb.h>
#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <functional>
#include <iterator>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "api.hpp"
#include "cli.hpp"
#include "cluster.hpp"
#include "codec.hpp"
#include "http.hpp"
#include "model.hpp"
#include "password.hpp"
#include "realms.hpp"
#include "store.hpp"
#include "web.hpp"

namespace oauth2::admin {
namespace {

constexpr unsigned kMinIterations = 1000;
constexpr unsigned kMaxIterations = 100000000;
constexpr size_t kMaxPageSize = 10000;
constexpr unsigned kMaxSessionIdle = 86400;     // a day
constexpr unsigned kMaxSessionMax = 7 * 86400;  // a week
constexpr unsigned kMostSessions = 1000000;
constexpr unsigned kStopGraceMs = 30000;
constexpr int kReaderCheckSeconds = 60;

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

enum class Api { kNone, kUsers, kMe, kApps, kApiKeys, kConsents };

struct Route {
  Api api = Api::kNone;
  std::optional<uint64_t> user_id;
  std::optional<std::string> client_id;
  bool rotate = false;
  std::optional<std::string> key_id;  // kApiKeys: one key, else the list
  // kConsents: one application's consent (client_id), else the list
};

// "<id>/", "<id>/consents/" or "<id>/consents/<client_id>/" after
// /api/users/; false for anything else.
bool match_user(std::string_view rest, Route& r) {
  constexpr std::string_view kConsents = "consents/";
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0) return false;
  r.user_id = parse_user_id(rest.substr(0, slash));
  if (!r.user_id) return false;
  std::string_view tail = rest.substr(slash + 1);
  if (tail.empty()) {
    r.api = Api::kUsers;
    return true;
  }
  if (!starts_with(tail, kConsents)) return false;
  std::string_view client = tail.substr(kConsents.size());
  if (!client.empty()) {
    size_t end = client.find('/');
    if (end == 0 || end != client.size() - 1) return false;
    r.client_id = percent_decode_segment(client.substr(0, end));
    if (!r.client_id) return false;
  }
  r.api = Api::kConsents;
  return true;
}

// "api-keys/" (the list) or "api-keys/<key_id>/" (one key) after an
// application's path; false for anything else.
bool match_api_keys(std::string_view tail, Route& r) {
  constexpr std::string_view kKeys = "api-keys/";
  if (!starts_with(tail, kKeys)) return false;
  std::string_view key = tail.substr(kKeys.size());
  if (key.empty()) return true;
  size_t slash = key.find('/');
  if (slash == 0 || slash != key.size() - 1) return false;
  r.key_id = percent_decode_segment(key.substr(0, slash));
  return r.key_id.has_value();
}

// The API routes; always with the trailing slash (a JSON client of DRF
// uses that form; without it: 404).
Route match(std::string_view path) {
  Route r;
  constexpr std::string_view kUsers = "/api/users/";
  constexpr std::string_view kApps = "/api/applications/";
  if (path == "/auth/me/") {
    r.api = Api::kMe;
  } else if (starts_with(path, kUsers)) {
    std::string_view rest = path.substr(kUsers.size());
    if (rest.empty()) {
      r.api = Api::kUsers;
    } else if (!match_user(rest, r)) {
      r = Route();
    }
  } else if (starts_with(path, kApps)) {
    std::string_view rest = path.substr(kApps.size());
    if (rest.empty()) {
      r.api = Api::kApps;
      return r;
    }
    size_t slash = rest.find('/');
    if (slash == std::string_view::npos || slash == 0) return r;
    std::string_view tail = rest.substr(slash + 1);
    Api api = Api::kApps;
    if (match_api_keys(tail, r)) {
      api = Api::kApiKeys;
    } else if (!tail.empty() && tail != "rotate-secret/") {
      return r;
    }
    r.client_id = percent_decode_segment(rest.substr(0, slash));
    if (!r.client_id) return r;
    r.rotate = api == Api::kApps && !tail.empty();
    r.api = api;
  }
  return r;
}

// The request's realm: X-OAuth2-Realm, which nginx sets in each server{}
// (proxy_set_header replaces what a client sent, and only nginx reaches
// the daemon: R69), else --realm.  Never the Host header.  Either is
// looked up in the registry for each request: --realm was known when the
// daemon started, but `realm delete` may have removed it since, and a
// request served in it would write records no site serves.
std::optional<HttpResponse> select_realm(ServeContext& ctx, const HttpRequest& req) {
  // two of them: a client's got through beside nginx's (a configuration
  // that passes what clients send); which one is meant is not known
  size_t count = 0;
  for (const auto& [name, value] : req.headers) count += name == "x-oauth2-realm";
  if (count > 1) return HttpResponse::error(400, "More than one X-OAuth2-Realm header.");
  auto h = req.header("x-oauth2-realm");
  if (!h && ctx.require_realm_header) {
    return HttpResponse::error(400, "X-OAuth2-Realm header required.");
  }
  const std::string name = h ? std::string(trim_ows(*h)) : ctx.realm;
  if (!valid_realm(name)) return HttpResponse::error(400, "Invalid X-OAuth2-Realm header.");
  bool known = false;
  {
    Txn txn = ctx.store->read();
    known = realm_known(txn, name);
  }
  if (!known) return HttpResponse::error(404, "Unknown realm.");
  ctx.realm = name;
  return std::nullopt;
}

HttpResponse route_in_realm(ServeContext& ctx, const HttpRequest& req) {
  if (starts_with(req.path, "/o/applications/")) return web_handle(ctx, req);
  Route r = match(req.path);
  if (r.api == Api::kNone) return not_found();
  HttpResponse error;
  std::optional<Caller> caller = authenticate(ctx, req, &error);
  if (!caller) return error;
  switch (r.api) {
    case Api::kUsers: return users_api(ctx, req, *caller, r.user_id);
    case Api::kMe: return me_api(ctx, req, *caller);
    case Api::kApps: return apps_api(ctx, req, *caller, r.client_id, r.rotate);
    case Api::kApiKeys: return api_keys_api(ctx, req, *caller, *r.client_id, r.key_id);
    case Api::kConsents: return consents_api(ctx, req, *caller, *r.user_id, r.client_id);
    default: return not_found();
  }
}

bool parse_unsigned(std::string_view s, uint64_t max, uint64_t* out);

// "<n>/<m>", or "off" (n = 0): --auth-limit 10/60, --account-limit 100/3600
bool parse_limit(std::string_view s, unsigned* n, unsigned* m) {
  if (s == "off") {
    *n = 0;
    return true;
  }
  size_t slash = s.find('/');
  uint64_t a = 0, b = 0;
  if (slash == std::string_view::npos || !parse_unsigned(s.substr(0, slash), 100000, &a) ||
      !parse_unsigned(s.substr(slash + 1), 86400, &b) || a == 0 || b == 0) {
    return false;
  }
  *n = static_cast<unsigned>(a);
  *m = static_cast<unsigned>(b);
  return true;
}

bool parse_unsigned(std::string_view s, uint64_t max, uint64_t* out) {
  if (s.empty() || s.size() > 12) return false;
  uint64_t v = 0;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return false;
    v = v * 10 + static_cast<uint64_t>(ch - '0');
  }
  if (v > max) return false;
  *out = v;
  return true;
}

void say(const std::string& what) {
  log_line("", what);
}

}  // namespace

// The daemon's store, opened again once the disk has failed under it (R77).
// After a write whose meta page the disk refused, LMDB answers MDB_PANIC to
// every transaction of the process until its environment is opened again
// (the module's workers do so, capi.cpp); an I/O error of a write may have
// left it so.  A request holds the store from its start to its end; a
// reopen holds new requests back and waits for those in flight; one that
// failed is tried again a second later at the earliest (until then: 503).
class StoreSlot {
 public:
  using Open = std::function<std::unique_ptr<Store>()>;
  explicit StoreSlot(Open open) : open_(std::move(open)), store_(open_()) {}

  // the store for one request, until release(); throws a 503's
  // StoreError while it could not be opened again
  Store& acquire() {
    std::unique_lock lock(m_);
    cv_.wait(lock, [&] { return !reopening_; });
    if (failed_) reopen(lock);
    if (!store_) throw StoreError::unavailable("the store could not be opened again: " + why_);
    ++users_;
    return *store_;
  }
  void release() noexcept {
    std::lock_guard lock(m_);
    if (--users_ == 0) cv_.notify_all();
  }
  // what a request met: a disk that failed under LMDB
  void note(const StoreError& e) {
    if (e.rc() != MDB_PANIC && e.rc() != EIO) return;
    std::lock_guard lock(m_);
    failed_ = true;
  }
  // at the end, once no request runs
  void close() {
    std::lock_guard lock(m_);
    store_.reset();
  }

  // acquire() and release() for one request's scope
  class Use {
   public:
    explicit Use(StoreSlot& slot) : slot_(slot), store_(slot.acquire()) {}
    ~Use() { slot_.release(); }
    Use(const Use&) = delete;
    Use& operator=(const Use&) = delete;
    Store& store() const { return store_; }

   private:
    StoreSlot& slot_;
    Store& store_;
  };

 private:
  static constexpr std::chrono::seconds kReopenEvery{1};

  // closes the store and opens it again, with no request inside it (lock
  // held on entry and on return)
  void reopen(std::unique_lock<std::mutex>& lock) {
    const auto now = std::chrono::steady_clock::now();
    if (!store_ && now - tried_ < kReopenEvery) return;  // it failed just now
    tried_ = now;
    reopening_ = true;
    cv_.wait(lock, [&] { return users_ == 0; });
    lock.unlock();
    std::string why;
    std::unique_ptr<Store> fresh;
    store_.reset();  // never two environments of one store in a process
    try {
      fresh = open_();
    } catch (const std::exception& e) {
      why = e.what();
    }
    say(fresh ? "store: opened again after a disk error"
              : "store: cannot open it again after a disk error: " + why);
    lock.lock();
    store_ = std::move(fresh);
    why_ = why;
    failed_ = store_ == nullptr;
    reopening_ = false;
    cv_.notify_all();
  }

  Open open_;
  std::mutex m_;
  std::condition_variable cv_;
  std::unique_ptr<Store> store_;
  std::string why_;  // why it could not be opened again
  unsigned users_ = 0;
  bool failed_ = false;
  bool reopening_ = false;
  std::chrono::steady_clock::time_point tried_{};
};

namespace {

// --hash-limit: password hashes at once, and waiting for a turn
struct HashLimit {
  unsigned running = 2;
  unsigned waiting = 64;
};

ListenAddress listen_option(const Invocation& inv) {
  auto listen = inv.value("listen");
  if (!listen) {
    throw UsageError("serve needs --listen 127.0.0.1:<port> or unix:<path>");
  }
  std::string why;
  auto addr = parse_listen(*listen, &why);
  if (!addr) throw UsageError(why);
  return *addr;
}

// --<name> <n>, min to max ("what" n is, for the message); fallback when
// it is not given.
uint64_t number_option(const Invocation& inv, const char* name, const char* what, uint64_t min,
                       uint64_t max, uint64_t fallback) {
  auto v = inv.value(name);
  if (!v) return fallback;
  uint64_t n = 0;
  if (!parse_unsigned(*v, max, &n) || n < min) {
    throw UsageError(std::string("--") + name + ": " + quoted(*v) + " is not " + what + " from " +
                     std::to_string(min) + " to " + std::to_string(max));
  }
  return n;
}

// --open-registration: bare, every realm (ctx.open_registration); each
// =<realm>[,<realm>...] adds realms (ctx.open_registration_realms), names
// checked as --realm's.  Both at once is refused: which was meant?
void open_registration_option(const Invocation& inv, ServeContext& ctx) {
  for (const std::string& v : inv.values("open-registration")) {
    if (v.empty()) {
      ctx.open_registration = true;
      continue;
    }
    size_t pos = 0;
    while (true) {
      size_t comma = v.find(',', pos);
      std::string name =
          v.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
      if (!valid_realm(name)) {
        throw UsageError("--open-registration: invalid realm " + quoted(name) +
                         ": 1 to 64 letters, digits, \".\", \"-\" or \"_\"");
      }
      ctx.open_registration_realms.push_back(std::move(name));
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
  }
  if (ctx.open_registration && !ctx.open_registration_realms.empty()) {
    throw UsageError(
        "--open-registration: given both bare (every realm) and with realms; give one");
  }
}

// What the daemon's first line says of registration.
std::string registration_note(const ServeContext& ctx) {
  if (ctx.open_registration) return ", open registration in every realm";
  if (ctx.open_registration_realms.empty()) return "";
  std::string out = ", open registration in ";
  for (size_t i = 0; i < ctx.open_registration_realms.size(); i++) {
    if (i > 0) out += ", ";
    out += quoted(ctx.open_registration_realms[i]);
  }
  return out;
}

// The other options of serve into ctx and *hash, checked in the order of
// its --help.
void read_options(const Invocation& inv, ServeContext& ctx, HashLimit* hash) {
  ctx.realm = inv.realm;
  ctx.require_realm_header = inv.has("require-realm-header");
  open_registration_option(inv, ctx);
  ctx.pbkdf2_iterations =
      static_cast<unsigned>(number_option(inv, "pbkdf2-iterations", "a number", kMinIterations,
                                          kMaxIterations, kDefaultPbkdf2Iterations));
  if (auto v = inv.value("auth-limit")) {
    if (!parse_limit(*v, &ctx.auth_limit, &ctx.auth_window)) {
      throw UsageError("--auth-limit: " + quoted(*v) +
                       " is not <n>/<seconds> (1 to 100000, 1 to 86400) or "
                       "off");
    }
  }
  if (auto v = inv.value("account-limit")) {
    unsigned window = 0;
    if (!parse_limit(*v, &ctx.account_limit.limit, &window)) {
      throw UsageError("--account-limit: " + quoted(*v) +
                       " is not <n>/<seconds> (1 to 100000, 1 to 86400) or "
                       "off");
    }
    ctx.account_limit.window = window;
  }
  if (auto v = inv.value("password-policy")) {
    std::string why;
    auto p = PasswordPolicy::parse(*v, &why);
    if (!p) throw UsageError("--password-policy: " + why);
    ctx.password_policy = *p;
  }
  if (auto v = inv.value("hash-limit")) {
    // hashes running and waiting hold a connection's thread each: at most
    // half of the daemon's 256, so that a flood of them gets 503 while
    // everything else is still served (R88)
    if (!parse_limit(*v, &hash->running, &hash->waiting) || hash->running == 0 ||
        hash->running > 64 || hash->running + hash->waiting > 128) {
      throw UsageError("--hash-limit: " + quoted(*v) +
                       " is not <n>/<queue> (1 to 64 running, 128 with those waiting)");
    }
  }
  ctx.page_size = number_option(inv, "page-size", "a number", 1, kMaxPageSize, ctx.page_size);
  ctx.session_idle = static_cast<unsigned>(number_option(inv, "session-idle", "a number of seconds",
                                                         1, kMaxSessionIdle, ctx.session_idle));
  ctx.session_max = static_cast<unsigned>(
      number_option(inv, "session-max", "a number of seconds", 1, kMaxSessionMax, ctx.session_max));
  ctx.max_sessions =
      number_option(inv, "max-sessions", "a number", 1, kMostSessions, ctx.max_sessions);
}

// SIGTERM and SIGINT wait for wait_for_stop(): blocked here, before any
// thread starts, they never interrupt a request.
sigset_t block_stop_signals() {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  return stop_signals;
}

// The stop signal, when it comes; meanwhile the readers that dead
// processes left in the store are cleared every kReaderCheckSeconds.
int wait_for_stop(const sigset_t& stop_signals, StoreSlot& slot) {
  int sig = 0;
  while (sig == 0) {
    struct timespec wait = {kReaderCheckSeconds, 0};
    siginfo_t info;
    int rc = sigtimedwait(&stop_signals, &info, &wait);
    if (rc > 0) {
      sig = rc;
    } else if (errno == EAGAIN) {
      try {
        StoreSlot::Use use(slot);
        int dead = use.store().reader_check();
        if (dead > 0) say("cleared " + std::to_string(dead) + " stale readers");
      } catch (const std::exception& e) {
        say(std::string("store: ") + e.what());
      }
    }
  }
  return sig;
}

int serve(const Invocation& inv) {
  const ListenAddress addr = listen_option(inv);
  ServeContext ctx;
  HashLimit hash_limit;
  read_options(inv, ctx, &hash_limit);
  const sigset_t stop_signals = block_stop_signals();

  StoreSlot slot([&inv] { return open_store(inv, true, MirrorUse::kAsIs); });
  StoreSlot::Use(slot).store().reader_check();
  ctx.slot = &slot;
  MemoryCounters counters;
  counters.on_full = [](size_t keys) {
    log_line("", "alert: the table of sign-in throttles is full of live counts (" +
                     std::to_string(keys) +
                     " keys): new addresses and accounts are refused (429) until some end");
  };
  ctx.counters = &counters;
  HashSlots hash_slots(hash_limit.running, hash_limit.waiting);
  ctx.hash_slots = &hash_slots;

  {
    HttpServer server(ctx, route);
    server.start(addr);
    say("listening on " + addr.text() + ", store " + quoted(inv.store) + ", realm " +
        quoted(ctx.realm) + registration_note(ctx));
    int sig = wait_for_stop(stop_signals, slot);
    say(std::string("stopping on ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") +
        ": finishing the requests in flight");
    server.stop(kStopGraceMs);
  }
  ctx.slot = nullptr;
  slot.close();
  say("stopped");
  return 0;
}

const OptionSpec kServeOptions[] = {
    {"listen", true, false},
    {"open-registration", false, true, true},
    {"require-realm-header", false, false},
    {"pbkdf2-iterations", true, false},
    {"page-size", true, false},
    {"auth-limit", true, false},
    {"account-limit", true, false},
    {"password-policy", true, false},
    {"hash-limit", true, false},
    {"session-idle", true, false},
    {"session-max", true, false},
    {"max-sessions", true, false},
};

const char kServeUsage[] =
    "usage: oauth2-admin serve --listen 127.0.0.1:<port> | --listen "
    "unix:<path>\n"
    "           [--open-registration[=<realm>[,<realm>...]]]\n"
    "           [--require-realm-header]\n"
    "           [--pbkdf2-iterations <n>] [--page-size <n>]\n"
    "           [--auth-limit <n>/<s>] [--account-limit <n>/<s>]\n"
    "           [--password-policy <spec>] [--hash-limit <n>/<queue>]\n"
    "           [--session-idle <s>] [--session-max <s>]\n"
    "           [--max-sessions <n>]\n"
    "\n"
    "Runs the admin daemon: the users API (/api/users/, /auth/me/, a\n"
    "user's consents under /api/users/<id>/consents/), the\n"
    "applications API (/api/applications/, their API keys under\n"
    "/api/applications/<client_id>/api-keys/) and the application pages\n"
    "(/o/applications/), for nginx to proxy to.  Callers authenticate with\n"
    "a bearer token of the store (Authorization: Bearer or X-API-KEY): a\n"
    "staff user's, or an application's holding the \"admin\" scope.  One\n"
    "line per request on stderr.  SIGTERM or SIGINT stops it after the\n"
    "requests in flight (waiting 30 seconds at most).\n"
    "\n"
    "  --listen <address>         127.0.0.1:<port> (any of 127.0.0.0/8),\n"
    "                             [::1]:<port>, or unix:<path> (mode 0660,\n"
    "                             a stale socket file is replaced); nothing\n"
    "                             but loopback is accepted\n"
    "  --open-registration        POST /api/users/ without a token creates\n"
    "                             a user (never staff, always active), in\n"
    "                             EVERY realm the daemon serves (each\n"
    "                             request's X-OAuth2-Realm)\n"
    "  --open-registration=<realm>[,<realm>...]\n"
    "                             the same in these realms only (names as\n"
    "                             --realm's; repeatable); every other realm\n"
    "                             refuses it (401) as without the flag\n"
    "  --require-realm-header     refuse (400) a request without\n"
    "                             X-OAuth2-Realm instead of serving it in\n"
    "                             --realm: one daemon behind many sites\n"
    "  --pbkdf2-iterations <n>    PBKDF2-SHA256 iterations for new\n"
    "                             passwords, 1000 to 100000000 (default\n"
    "                             600000, Django 4.2's)\n"
    "  --page-size <n>            items per page of the lists, 1 to 10000\n"
    "                             (default 100)\n"
    "  --auth-limit <n>/<s>       failed sign-ins per account and address\n"
    "                             in <s> seconds (3n per address), as\n"
    "                             oauth2_client_auth_limit (default 10/60;\n"
    "                             off)\n"
    "  --account-limit <n>/<s>    failed passwords per account in <s>\n"
    "                             seconds before it refuses addresses and\n"
    "                             browsers that have not signed in to it\n"
    "                             lately, as oauth2_account_limit; one lock\n"
    "                             in the store with the module's (default\n"
    "                             100/3600; off)\n"
    "  --password-policy <spec>   Django's password validators for new\n"
    "                             passwords (default on): \"off\", or\n"
    "                             \"min_length=<n> similarity=<0.1-1>|off\n"
    "                             common=on|off numeric=on|off\"\n"
    "  --hash-limit <n>/<queue>   password hashes at once, and waiting\n"
    "                             (default 2/64; more get 503; at most\n"
    "                             64 at once, 128 with those waiting)\n"
    "  --session-idle <s>         a web page session unused for <s> seconds\n"
    "                             ends, 1 to 86400 (default 1800)\n"
    "  --session-max <s>          and <s> seconds after its sign-in at the\n"
    "                             latest, 1 to 604800 (default 43200)\n"
    "  --max-sessions <n>         web page sessions held, 1 to 1000000\n"
    "                             (default 10000); when full, a sign-in\n"
    "                             ends the least recently used of its\n"
    "                             user's, else its realm's, else any\n"
    "\n"
    "Set X-Real-IP in nginx (conf.example/oauth2_proxy.conf): the daemon\n"
    "counts failed sign-ins by the client's address.  Each request is\n"
    "served in the realm its X-OAuth2-Realm header names (nginx sets it\n"
    "per server{} with proxy_set_header), else in --realm.\n";

const Command kServeCommands[] = {
    {"serve", "--listen <address>", "run the admin daemon (HTTP API)", kServeUsage, kServeOptions,
     std::size(kServeOptions), 0, 0, serve},
};

}  // namespace

// Each request in its realm: a copy of the context names it, so that every
// lookup, session, staff check and throttle below stays inside it.
HttpResponse route(ServeContext& shared, const HttpRequest& req) {
  std::optional<StoreSlot::Use> use;
  ServeContext ctx = shared;
  if (shared.slot) ctx.store = &use.emplace(*shared.slot).store();
  try {
    // --etcd: every answer here rests on the mirror (who the caller is,
    // what a page shows); past max_staleness a token, key or session
    // revoked on another machine could still act, so 503, as auth_oauth2
    // (R77)
    if (std::string why = mirror_staleness(*ctx.store); !why.empty()) {
      throw StoreError::unavailable(why);
    }
    if (auto refused = select_realm(ctx, req)) return *refused;
    return route_in_realm(ctx, req);
  } catch (const StoreError& e) {
    if (shared.slot) shared.slot->note(e);
    throw;
  }
}

void add_serve_commands(Commands& out) {
  for (const Command& c : kServeCommands) out.push_back(&c);
}

}  // namespace oauth2::admin
