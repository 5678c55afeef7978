// What the libFuzzer harnesses of scripts/ (fuzz-sync, fuzz-cluster,
// fuzz-import) share: how they report a broken promise or give up, and
// the loopback sockets of the peers they play (a hostile etcd).  Each
// defines FUZZ_HARNESS, its name in messages, before including it.
#ifndef OAUTH2_FUZZ_HARNESS_HPP
#define OAUTH2_FUZZ_HARNESS_HPP

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace fuzz {

// a promise of the code under test broken: a finding
[[noreturn]] inline void broken(const char* what, const std::string& detail = "") {
  std::fprintf(stderr, FUZZ_HARNESS ": broken promise: %s%s%s\n", what, detail.empty() ? "" : ": ",
               detail.c_str());
  std::abort();
}

// the harness cannot go on (no finding)
[[noreturn]] inline void die(const std::string& what) {
  std::fprintf(stderr, FUZZ_HARNESS ": %s\n", what.c_str());
  std::exit(1);
}

// a socket listening on 127.0.0.1, on a port of the kernel's (*port)
inline int listen_loopback(int backlog, uint16_t* port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      listen(fd, backlog) != 0 || getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    die("cannot listen on 127.0.0.1");
  }
  *port = ntohs(a.sin_port);
  return fd;
}

inline bool send_all(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t n = send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    s.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// what one read brings, appended to buf; false at the end or an error
inline bool fill(int fd, std::string& buf) {
  char b[65536];
  ssize_t n = read(fd, b, sizeof(b));
  if (n <= 0) return false;
  buf.append(b, static_cast<size_t>(n));
  return true;
}

// the next connection to fd, set for a peer answering on loopback: no
// Nagle, and a read that waits 5 s at most (a connection curl forgot
// frees its thread); -1 when accept fails
inline int accept_peer(int fd) {
  int c = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
  if (c < 0) return -1;
  int one = 1;
  setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  timeval idle{5, 0};
  setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &idle, sizeof(idle));
  return c;
}

// counts the requests a peer is answering, for a settle() that waits for
// none
struct Busy {
  explicit Busy(std::atomic<int>& n) : n(n) { n++; }
  ~Busy() { n--; }
  std::atomic<int>& n;
};

// one HTTP/1.1 request as the peers read it: the path (lowercased, with
// the head) and the body its Content-Length says
struct Request {
  std::string path;
  std::string body;
};

// The next request of a connection, from buf (what was read and not yet
// used) and fd; false when the client closes it first.  on_head() runs
// once the head is in, before the request's strings are made (a Busy
// made there counts the request from then on).
template <class OnHead>
bool next_request(int fd, std::string& buf, Request* rq, OnHead on_head) {
  size_t end;
  while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
    if (!fill(fd, buf)) return false;
  }
  on_head();
  std::string head = buf.substr(0, end);
  buf.erase(0, end + 4);
  for (char& ch : head) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  size_t sp = head.find(' ');
  rq->path = head.substr(sp + 1, head.find(' ', sp + 1) - sp - 1);
  size_t cl = head.find("\r\ncontent-length:");
  size_t len = cl == std::string::npos ? 0 : std::strtoul(head.c_str() + cl + 17, nullptr, 10);
  while (buf.size() < len) {
    if (!fill(fd, buf)) return false;
  }
  rq->body = buf.substr(0, len);
  buf.erase(0, len);
  return true;
}

// a response of JSON with its length
inline std::string http_response(int status, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(status) +
         " X\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

// FUZZ_STATS set: print() is called at exit, and true says to count
inline bool stats_wanted(void (*print)()) {
  if (!std::getenv("FUZZ_STATS")) return false;
  std::atexit(print);
  return true;
}

}  // namespace fuzz

#endif
