// What the libFuzzer harnesses of scripts/ (fuzz-sync, fuzz-cluster,
// fuzz-import) share: how they report a broken promise or give up, and
// the loopback sockets of the peers they play (a hostile etcd).  Each
// defines FUZZ_HARNESS, its name in messages, before including it.
#ifndef OAUTH2_FUZZ_HARNESS_HPP
#define OAUTH2_FUZZ_HARNESS_HPP

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

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

}  // namespace fuzz

#endif
