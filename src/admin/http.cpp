// The daemon's HTTP layer on libmicrohttpd (MHD): one thread per
// connection, a body cap, a log line per request, a graceful stop.
//
// MHD hands the access handler the path already percent-decoded and the
// query string split into arguments; the handlers want the raw target, so
// the URI logger (called with the request line's target before MHD parses
// it) keeps it in the connection's context.  The listening socket is made
// here, bound and listening, and given to MHD: the same code for a TCP
// address and a unix socket.

#include "http.hpp"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <new>
#include <stdexcept>

#include "cli.hpp"
#include "codec.hpp"
#include "crypto.hpp"

namespace oauth2::admin {
namespace {

// A declared body above this is answered at once and the connection
// closed; a smaller one over kMaxRequestBody is read and dropped first,
// so that a proxy that already sent it reads the 413 instead of a reset.
constexpr uint64_t kMaxDiscardedBody = 16 * 1024 * 1024;
constexpr unsigned kConnectionLimit = 256;
constexpr unsigned kConnectionTimeout = 30;  // seconds idle

char lower(char ch) {
  return (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch - 'A' + 'a') : ch;
}

std::string lowered(std::string_view s) {
  std::string out(s);
  for (char& ch : out) ch = lower(ch);
  return out;
}

// s with every byte plain() refuses written as \xNN, cut after max bytes
// ("..."): what of a request may appear in the log
std::string escaped(std::string_view s, bool (*plain)(unsigned char), size_t max) {
  std::string out;
  for (char ch : s) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    unsigned char c = static_cast<unsigned char>(ch);
    if (plain(c)) {
      out.push_back(ch);
    } else {
      char buf[8];
      snprintf(buf, sizeof(buf), "\\x%02X", c);
      out += buf;
    }
  }
  return out;
}

// What may appear of a path in the log: printable ASCII, cut at 200.
std::string loggable(std::string_view s) {
  return escaped(
      s, [](unsigned char c) { return c >= 0x21 && c <= 0x7E && c != '"' && c != '\\'; }, 200);
}

// A line of libmicrohttpd's, which may quote a request's path
// percent-decoded: printable ASCII and the space as they are, a backslash
// and every other byte (C0 and C1 controls, DEL, the bytes of UTF-8) as
// \xNN, as loggable() writes them.
std::string loggable_line(std::string_view s) {
  return escaped(
      s, [](unsigned char c) { return c >= 0x20 && c <= 0x7E && c != '\\'; }, std::string::npos);
}

bool parse_port(std::string_view s, uint16_t* port) {
  if (s.empty() || s.size() > 5) return false;
  unsigned v = 0;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return false;
    v = v * 10 + static_cast<unsigned>(ch - '0');
  }
  if (v < 1 || v > 65535) return false;
  *port = static_cast<uint16_t>(v);
  return true;
}

// The connection's context: the target of its current request.
struct Conn {
  std::string target;
};

// A request's context, from its first call to the access handler to the
// completion notice.
struct Req {
  std::string body;
  uint64_t received = 0;
  bool too_large = false;
  bool answered = false;
  std::string method;
  std::string path;
  std::chrono::steady_clock::time_point start;
};

struct Body {
  size_t size;
  char data[1];
};

void free_body(void* cls) {
  Body* b = static_cast<Body*>(cls);
  OPENSSL_cleanse(b->data, b->size);  // it may hold a client secret
  free(b);
}

}  // namespace

// ------------------------------------------------------------ HttpRequest

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

std::optional<std::string_view> HttpRequest::header(std::string_view lname) const {
  for (const auto& h : headers) {
    if (h.first == lname) return std::string_view(h.second);
  }
  return std::nullopt;
}

size_t HttpRequest::header_count(std::string_view lname) const {
  size_t n = 0;
  for (const auto& h : headers) {
    if (h.first == lname) n++;
  }
  return n;
}

// The first cookie of that name over every Cookie header; spaces around
// the name and the value, and quotes around the value, do not count.
std::optional<std::string> HttpRequest::cookie(std::string_view name) const {
  for (const auto& h : headers) {
    if (h.first != "cookie") continue;
    std::string_view line = h.second;
    while (!line.empty()) {
      size_t semi = line.find(';');
      std::string_view pair = trim_ows(line.substr(0, semi));
      line = semi == std::string_view::npos ? std::string_view() : line.substr(semi + 1);
      size_t eq = pair.find('=');
      if (eq == std::string_view::npos) continue;
      if (trim_ows(pair.substr(0, eq)) != name) continue;
      std::string_view v = trim_ows(pair.substr(eq + 1));
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') {
        v = v.substr(1, v.size() - 2);
      }
      return std::string(v);
    }
  }
  return std::nullopt;
}

// ----------------------------------------------------------- HttpResponse

HttpResponse& HttpResponse::set(std::string name, std::string value) {
  std::string lname = lowered(name);
  for (auto& h : headers) {
    if (lowered(h.first) == lname) {
      h.second = std::move(value);
      return *this;
    }
  }
  headers.emplace_back(std::move(name), std::move(value));
  return *this;
}

HttpResponse HttpResponse::json(int status, const json_t* body) {
  HttpResponse r;
  r.status = status;
  r.body = json_text(body, JSON_COMPACT);
  r.set("Content-Type", "application/json");
  r.set("Cache-Control", "no-store");
  r.set("X-Content-Type-Options", "nosniff");
  return r;
}

HttpResponse HttpResponse::error(int status, std::string_view detail) {
  // detail is ours, but may quote input: keep it valid UTF-8
  std::string text(detail);
  if (!valid_utf8(text)) {
    for (char& ch : text) {
      if (static_cast<unsigned char>(ch) >= 0x80) ch = '?';
    }
  }
  Json obj(checked(json_object()));
  set_member(obj.get(), "detail", string_json(text));
  return json(status, obj.get());
}

// ---------------------------------------------------------- ListenAddress

std::string ListenAddress::text() const {
  if (is_unix) return "unix:" + path;
  if (host.find(':') != std::string::npos) {
    return "[" + host + "]:" + std::to_string(port);
  }
  return host + ":" + std::to_string(port);
}

std::optional<ListenAddress> parse_listen(std::string_view s, std::string* why) {
  ListenAddress a;
  const std::string shown = quoted(s);
  if (s.substr(0, 5) == "unix:") {
    a.is_unix = true;
    a.path = std::string(s.substr(5));
    if (a.path.empty() || a.path.find('\0') != std::string::npos) {
      *why = "--listen " + shown + ": unix: needs a socket path";
      return std::nullopt;
    }
    if (a.path.size() >= sizeof(sockaddr_un{}.sun_path)) {
      *why = "--listen " + shown + ": the socket path is longer than " +
             std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) + " bytes";
      return std::nullopt;
    }
    return a;
  }
  std::string_view host, port;
  if (!s.empty() && s[0] == '[') {
    size_t close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      *why = "--listen " + shown + ": expected [::1]:<port>";
      return std::nullopt;
    }
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
  } else {
    size_t colon = s.rfind(':');
    if (colon == std::string_view::npos) {
      *why = "--listen " + shown + ": expected 127.0.0.1:<port>, [::1]:<port> or unix:<path>";
      return std::nullopt;
    }
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
  }
  if (!parse_port(port, &a.port)) {
    *why = "--listen " + shown + ": the port must be 1 to 65535";
    return std::nullopt;
  }
  a.host = std::string(host);
  in_addr v4;
  in6_addr v6;
  bool loopback = false;
  if (inet_pton(AF_INET, a.host.c_str(), &v4) == 1) {
    loopback = (ntohl(v4.s_addr) >> 24) == 127;
  } else if (inet_pton(AF_INET6, a.host.c_str(), &v6) == 1) {
    loopback = IN6_IS_ADDR_LOOPBACK(&v6);
  } else {
    *why = "--listen " + shown + ": the host must be an IP address (127.0.0.1 or [::1])";
    return std::nullopt;
  }
  if (!loopback) {
    *why = "--listen " + shown +
           " is not a loopback address: the daemon listens only on "
           "127.0.0.0/8, [::1] or a unix socket (docs/security.md R69)";
    return std::nullopt;
  }
  return a;
}

// ------------------------------------------------------------- HttpServer

struct HttpServer::Impl {
  ServeContext& ctx;
  Handler handler;
  MHD_Daemon* daemon = nullptr;
  int listen_fd = -1;
  ListenAddress addr;

  std::mutex mu;
  std::condition_variable idle;
  size_t in_flight = 0;    // requests from their headers to completion
  size_t connections = 0;  // open connections
  std::atomic<bool> stopping{false};

  Impl(ServeContext& c, Handler h) : ctx(c), handler(std::move(h)) {}

  void bind_socket();
  void changed(long requests, long conns) {
    std::lock_guard<std::mutex> lock(mu);
    in_flight = static_cast<size_t>(static_cast<long>(in_flight) + requests);
    connections = static_cast<size_t>(static_cast<long>(connections) + conns);
    idle.notify_all();
  }
  MHD_Result answer(MHD_Connection* conn, Req* rq, HttpResponse res);
  HttpResponse dispatch(MHD_Connection* conn, Req* rq);
};

namespace {

using Impl = HttpServer::Impl;

void* on_uri(void* cls, const char* uri, MHD_Connection* conn) {
  (void)cls;
  const MHD_ConnectionInfo* info =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  if (info && info->socket_context) {
    try {
      static_cast<Conn*>(info->socket_context)->target = uri ? uri : "";
    } catch (...) {
    }
  }
  return nullptr;
}

void on_connection(void* cls, MHD_Connection* conn, void** socket_context,
                   MHD_ConnectionNotificationCode code) {
  (void)conn;
  Impl* s = static_cast<Impl*>(cls);
  if (code == MHD_CONNECTION_NOTIFY_STARTED) {
    *socket_context = new (std::nothrow) Conn;
    s->changed(0, 1);
  } else {
    delete static_cast<Conn*>(*socket_context);
    *socket_context = nullptr;
    s->changed(0, -1);
  }
}

void on_completed(void* cls, MHD_Connection* conn, void** con_cls, MHD_RequestTerminationCode toe) {
  (void)conn;
  (void)toe;
  Impl* s = static_cast<Impl*>(cls);
  Req* rq = static_cast<Req*>(*con_cls);
  if (!rq) return;
  *con_cls = nullptr;
  wipe(rq->body);
  delete rq;
  s->changed(-1, 0);
}

MHD_Result collect(void* cls, MHD_ValueKind kind, const char* key, size_t key_size,
                   const char* value, size_t value_size) {
  (void)kind;
  auto* headers = static_cast<HttpRequest*>(cls);
  try {
    headers->headers.emplace_back(lowered(std::string_view(key, key_size)),
                                  std::string(value ? value : "", value_size));
  } catch (...) {
    return MHD_NO;
  }
  return MHD_YES;
}

void mhd_log(void* cls, const char* fmt, va_list ap) {
  (void)cls;
  char buf[512];
  vsnprintf(buf, sizeof(buf), fmt, ap);
  std::string_view text(buf);
  while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  // "Failed to send the response headers for the request for `<path>'":
  // the path percent-decoded, where a client's "%0A" would start a line
  // of its own and "%1B" a terminal's control sequence
  try {
    log_line("", "http: " + loggable_line(text));
  } catch (...) {
    // out of memory: the line is lost, not the daemon
  }
}

MHD_Result on_request(void* cls, MHD_Connection* conn, const char* url, const char* method,
                      const char* version, const char* upload_data, size_t* upload_size,
                      void** con_cls) {
  (void)url;
  (void)version;
  Impl* s = static_cast<Impl*>(cls);
  try {
    Req* rq = static_cast<Req*>(*con_cls);
    if (!rq) {
      rq = new Req;
      *con_cls = rq;
      s->changed(1, 0);
      rq->start = std::chrono::steady_clock::now();
      rq->method = method ? method : "";
      const MHD_ConnectionInfo* info =
          MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
      std::string target = url ? url : "";
      if (info && info->socket_context) {
        target = static_cast<Conn*>(info->socket_context)->target;
      }
      rq->path = target.substr(0, target.find('?'));
      const char* cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
      if (cl) {
        char* end = nullptr;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno == 0 && end != cl && *end == '\0' && n > kMaxRequestBody) {
          rq->too_large = true;
          if (n > kMaxDiscardedBody) {
            // answered now: MHD closes the connection after it
            return s->answer(conn, rq, HttpResponse());
          }
        }
      }
      return MHD_YES;
    }
    if (*upload_size > 0) {
      rq->received += *upload_size;
      if (rq->received > kMaxRequestBody) {
        if (!rq->too_large) wipe(rq->body);
        rq->too_large = true;
      } else if (!rq->answered) {
        rq->body.append(upload_data, *upload_size);
      }
      *upload_size = 0;
      if (rq->too_large && rq->received > kMaxDiscardedBody) return MHD_NO;
      return MHD_YES;
    }
    if (rq->answered) return MHD_YES;
    return s->answer(conn, rq, s->dispatch(conn, rq));
  } catch (...) {
    return MHD_NO;  // out of memory: drop the connection
  }
}

// Closes fd and throws what failed with the errno of that failure.
[[noreturn]] void close_and_throw(int fd, const std::string& what) {
  int saved = errno;
  close(fd);
  errno = saved;
  throw std::runtime_error(errno_text(what));
}

// Removes the socket file a daemon that is gone left at path; nothing at
// path is fine, anything but a stale socket is an error.
void remove_stale_socket(const std::string& path, const sockaddr_un& sun) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return;
  if (!S_ISSOCK(st.st_mode)) {
    throw std::runtime_error(path + " exists and is not a socket: not replaced");
  }
  // a live daemon still answers on it; a stale file refuses
  int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe < 0) throw std::runtime_error(errno_text("socket"));
  int rc = connect(probe, reinterpret_cast<const sockaddr*>(&sun), sizeof(sun));
  int saved = errno;
  close(probe);
  if (rc == 0) {
    throw std::runtime_error(path + ": another process listens on this socket");
  }
  if (saved != ECONNREFUSED) {
    errno = saved;
    throw std::runtime_error(errno_text("connect " + path));
  }
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    throw std::runtime_error(errno_text("cannot remove " + path));
  }
}

// A unix socket bound at path, mode 0660.
int bind_unix(const std::string& path) {
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  memcpy(sun.sun_path, path.c_str(), path.size() + 1);
  remove_stale_socket(path, sun);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(errno_text("socket"));
  mode_t old = umask(0117);  // 0660 from the start
  int rc = bind(fd, reinterpret_cast<sockaddr*>(&sun), sizeof(sun));
  int saved = errno;
  umask(old);
  if (rc != 0) {
    errno = saved;
    close_and_throw(fd, "bind " + path);
  }
  if (chmod(path.c_str(), 0660) != 0) close_and_throw(fd, "chmod " + path);
  return fd;
}

// A TCP socket bound to the IP literal and port of addr.
int bind_ip(const ListenAddress& addr) {
  const int family = addr.host.find(':') != std::string::npos ? AF_INET6 : AF_INET;
  sockaddr_storage ss{};
  ss.ss_family = static_cast<sa_family_t>(family);
  socklen_t len;
  if (family == AF_INET6) {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
    a6->sin6_port = htons(addr.port);
    inet_pton(AF_INET6, addr.host.c_str(), &a6->sin6_addr);
    len = sizeof(*a6);
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&ss);
    a4->sin_port = htons(addr.port);
    inet_pton(AF_INET, addr.host.c_str(), &a4->sin_addr);
    len = sizeof(*a4);
  }
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(errno_text("socket"));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (family == AF_INET6) {
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    close_and_throw(fd, "bind " + addr.text());
  }
  return fd;
}

}  // namespace

HttpResponse HttpServer::Impl::dispatch(MHD_Connection* conn, Req* rq) {
  if (rq->too_large) return HttpResponse();  // answer() makes the 413
  HttpRequest req;
  req.method = rq->method;
  req.path = rq->path;
  const MHD_ConnectionInfo* info =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  if (info && info->socket_context) {
    const std::string& target = static_cast<Conn*>(info->socket_context)->target;
    size_t q = target.find('?');
    if (q != std::string::npos) req.query = target.substr(q + 1);
  }
  MHD_get_connection_values_n(conn, MHD_HEADER_KIND, collect, &req);
  req.body.swap(rq->body);
  if (addr.is_unix) {
    req.remote = "unix";
  } else {
    const MHD_ConnectionInfo* ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char buf[INET6_ADDRSTRLEN] = "";
    if (ci && ci->client_addr) {
      const sockaddr* sa = ci->client_addr;
      if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof(buf));
      } else if (sa->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, buf,
                  sizeof(buf));
      }
    }
    req.remote = buf;
  }
  WipeOnExit wipe_body(req.body);
  try {
    return handler(ctx, req);
  } catch (const StoreError& e) {
    log_line("", std::string("store: ") + e.what());
    HttpResponse r = HttpResponse::error(503, "The store is unavailable.");
    r.set("Retry-After", "1");
    return r;
  } catch (const std::exception& e) {
    log_line("", std::string("error: ") + e.what());
    return HttpResponse::error(500, "A server error occurred.");
  }
}

MHD_Result HttpServer::Impl::answer(MHD_Connection* conn, Req* rq, HttpResponse res) {
  if (rq->too_large) {
    res = HttpResponse::error(
        413, "Request body too large: the limit is " + std::to_string(kMaxRequestBody) + " bytes.");
    res.set("Connection", "close");
  }
  rq->answered = true;
  if (stopping.load()) res.set("Connection", "close");

  Body* b = static_cast<Body*>(malloc(sizeof(Body) + res.body.size()));
  if (!b) return MHD_NO;
  b->size = res.body.size();
  memcpy(b->data, res.body.data(), res.body.size());
  wipe(res.body);
  MHD_Response* r =
      MHD_create_response_from_buffer_with_free_callback_cls(b->size, b->data, free_body, b);
  if (!r) {
    free_body(b);
    return MHD_NO;
  }
  for (const auto& h : res.headers) {
    if (MHD_add_response_header(r, h.first.c_str(), h.second.c_str()) != MHD_YES) {
      log_line("", "error: invalid response header " + loggable(h.first));
    }
  }
  MHD_Result ok = MHD_queue_response(conn, static_cast<unsigned>(res.status), r);
  MHD_destroy_response(r);

  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  rq->start)
                .count();
  log_line("", "\"" + loggable(rq->method) + " " + loggable(rq->path) + "\" " +
                   std::to_string(res.status) + " " + std::to_string(ms) + "ms");
  return ok;
}

void HttpServer::Impl::bind_socket() {
  int fd = addr.is_unix ? bind_unix(addr.path) : bind_ip(addr);
  if (listen(fd, 128) != 0) close_and_throw(fd, "listen " + addr.text());
  listen_fd = fd;
}

HttpServer::HttpServer(ServeContext& ctx, Handler handler)
    : impl_(std::make_unique<Impl>(ctx, std::move(handler))) {}

HttpServer::~HttpServer() {
  try {
    stop(0);
  } catch (...) {
  }
}

void HttpServer::start(const ListenAddress& addr) {
  Impl& s = *impl_;
  s.addr = addr;
  s.bind_socket();
  const unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                         MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
  s.daemon = MHD_start_daemon(
      flags, 0, nullptr, nullptr, on_request, &s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, nullptr,
      MHD_OPTION_LISTEN_SOCKET, static_cast<MHD_socket>(s.listen_fd), MHD_OPTION_CONNECTION_LIMIT,
      kConnectionLimit, MHD_OPTION_CONNECTION_TIMEOUT, kConnectionTimeout,
      MHD_OPTION_URI_LOG_CALLBACK, on_uri, &s, MHD_OPTION_NOTIFY_CONNECTION, on_connection, &s,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, &s, MHD_OPTION_END);
  if (!s.daemon) {
    close(s.listen_fd);
    s.listen_fd = -1;
    if (s.addr.is_unix) unlink(s.addr.path.c_str());
    throw std::runtime_error("cannot start the HTTP server on " + addr.text());
  }
}

void HttpServer::stop(unsigned grace_ms) {
  Impl& s = *impl_;
  if (!s.daemon) return;
  s.stopping = true;
  MHD_socket quiesced = MHD_quiesce_daemon(s.daemon);
  {
    std::unique_lock<std::mutex> lock(s.mu);
    s.idle.wait_for(lock, std::chrono::milliseconds(grace_ms),
                    [&] { return s.in_flight == 0 && s.connections == 0; });
  }
  MHD_stop_daemon(s.daemon);
  s.daemon = nullptr;
  if (quiesced != MHD_INVALID_SOCKET) close(quiesced);
  s.listen_fd = -1;
  // A unix socket file stays: nginx then logs "connection refused" at
  // error level as for a TCP upstream that is down, not "no such file" at
  // crit; the next start replaces it.
}

}  // namespace oauth2::admin
