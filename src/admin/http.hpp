// The daemon's HTTP layer (oauth2-admin serve): libmicrohttpd underneath,
// plain values above, so that the JSON API (api_*.cpp) and the web pages
// (web.cpp) are functions from an HttpRequest to an HttpResponse.

#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "counters.hpp"
#include "json.hpp"
#include "lockout.hpp"
#include "password_policy.hpp"
#include "store.hpp"
#include "throttle.hpp"

namespace oauth2::admin {

constexpr size_t kMaxRequestBody = 64 * 1024;

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // the raw path, without the query string
  std::string query;   // the raw query string, without '?'
  std::vector<std::pair<std::string, std::string>> headers;  // names lower
  std::string body;
  std::string remote;  // the peer's address, "unix" for a unix socket

  // the value of a header (name in lower case); nullopt if absent
  std::optional<std::string_view> header(std::string_view lname) const;
  // how many times the header was sent
  size_t header_count(std::string_view lname) const;
  // the value of the first cookie of that name over every Cookie header
  std::optional<std::string> cookie(std::string_view name) const;
};

// s without the spaces and tabs around it (RFC 9110's OWS)
std::string_view trim_ows(std::string_view s);

struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  HttpResponse& set(std::string name, std::string value);

  static HttpResponse json(int status, const json_t* body);
  // {"detail": "..."}: the one error shape of the JSON API (DRF's)
  static HttpResponse error(int status, std::string_view detail);
};

// What a handler's Store::change decides: the response that refuses the
// change (decide did not commit), or nullopt when it committed.  decide
// may run more than once: it keeps its state in its own locals.
using Refusal = std::optional<HttpResponse>;

// What every handler may use.  The store is shared by all the daemon's
// threads, as Store allows.
class StoreSlot;

struct ServeContext {
  // the store of one request: route() takes it from slot, the daemon's,
  // for the request's time (a store the disk failed under is opened again)
  Store* store = nullptr;
  StoreSlot* slot = nullptr;
  std::string realm = kDefaultRealm;
  // --require-realm-header: a request without X-OAuth2-Realm is refused
  // rather than served in realm (a location that forgot the header)
  bool require_realm_header = false;
  unsigned pbkdf2_iterations = 600000;
  // --open-registration: POST /api/users/ without a token registers a
  // user in every realm; --open-registration=<realm>,...: in those only
  bool open_registration = false;
  std::vector<std::string> open_registration_realms;
  size_t page_size = 100;
  // failed passwords: counted per address (counters) as the module does,
  // and per account in the store (lockout.hpp), one lock for both
  MemoryCounters* counters = nullptr;
  unsigned auth_limit = 10;  // --auth-limit; 0: off
  unsigned auth_window = 60;
  AccountLimit account_limit;      // --account-limit
  PasswordPolicy password_policy;  // --password-policy
  // the web pages' sessions end after session_idle seconds unused and
  // session_max seconds after sign-in (--session-idle, --session-max)
  unsigned session_idle = 1800;
  unsigned session_max = 43200;
  size_t max_sessions = 10000;      // --max-sessions: the table's size
  HashSlots* hash_slots = nullptr;  // --hash-limit

  // the throttles of the request's client (client_address)
  Throttle throttle(const HttpRequest& req) const;
  // whether anyone may register in realm, the request's
  bool registration_open() const;
  // a turn to hash a password (--hash-limit), until the slot is reset;
  // false when too many wait already, and when hash_slots is null
  HashSlots::Slot hash_slot() const {
    return hash_slots ? hash_slots->acquire() : HashSlots::Slot(nullptr);
  }
};

// The client's address: X-Real-IP, which nginx sets (the daemon listens
// only where nginx alone reaches it, and proxy_set_header replaces what a
// client sent), else the peer's.
std::string client_address(const HttpRequest& req);

using Handler = std::function<HttpResponse(ServeContext&, const HttpRequest&)>;

// A --listen value.  docs/security.md R69: a loopback IP literal with a port
// (127.0.0.0/8, "[::1]:port") or a unix socket ("unix:/path"), nothing else.
struct ListenAddress {
  bool is_unix = false;
  std::string path;  // the unix socket
  std::string host;  // the IP literal, without brackets
  uint16_t port = 0;

  std::string text() const;  // as given: "127.0.0.1:9180", "unix:/x"
};

// nullopt, with *why, when s is malformed or not loopback
std::optional<ListenAddress> parse_listen(std::string_view s, std::string* why);

// The HTTP server: libmicrohttpd, one thread per connection, every request
// body capped at kMaxRequestBody (413) and one line per request on stderr
// (method, path, status: never the query string or a header).  The
// handler runs on the connection threads; an exception it throws becomes
// a 500 (503 for a StoreError) in the API's error shape.
class HttpServer {
 public:
  HttpServer(ServeContext& ctx, Handler handler);
  ~HttpServer();  // stop(0) if still running
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds (a unix socket: mode 0660, a stale socket file replaced) and
  // starts serving.  Throws std::runtime_error.
  void start(const ListenAddress& addr);
  // Stops accepting, lets the requests in flight finish (at most
  // grace_ms), then closes every connection.  A unix socket file stays
  // (start() replaces a stale one).
  void stop(unsigned grace_ms);

  struct Impl;  // http.cpp

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace oauth2::admin
