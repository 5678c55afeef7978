// Stand-ins for etcd's gateway on loopback, shared by the unit tests of
// the etcd client (cluster_test.cpp, etcd_client_test.cpp).  Header only,
// every function inline: the Makefile compiles all t/unit/*.cpp into one
// binary.

#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "etcd.hpp"

namespace oauth2_test {

// A socket listening on 127.0.0.1 at a port the kernel picks: its
// descriptor, the port in *port
inline int listen_loopback(int* port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), len) != 0 || listen(fd, 64) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd >= 0) close(fd);
    throw std::runtime_error("cannot listen on loopback");
  }
  *port = ntohs(a.sin_port);
  return fd;
}

// One HTTP request read from c into *in (what follows it stays there):
// its body, or false when the peer closed first
inline bool read_request(int c, std::string* in, std::string* body) {
  char buf[4096];
  for (;;) {
    size_t head = in->find("\r\n\r\n");
    if (head != std::string::npos) {
      size_t cl = in->find("Content-Length: ");
      size_t n = cl == std::string::npos ? 0 : std::stoul(in->substr(cl + 16));
      if (in->size() >= head + 4 + n) {
        *body = in->substr(head + 4, n);
        in->erase(0, head + 4 + n);
        return true;
      }
    }
    ssize_t got = read(c, buf, sizeof(buf));
    if (got <= 0) return false;
    in->append(buf, static_cast<size_t>(got));
  }
}

// A stand-in for etcd's gateway on loopback: every request (any path)
// is answered after delay_ms with the header of a revision that counts
// the requests, or with fail set with an error etcd does not retry, or
// with what a responder makes of its body and revision; when each was
// received is kept.
class SlowGateway {
 public:
  // (HTTP status, JSON body) for a request's body and its revision
  using Responder = std::function<std::pair<int, std::string>(const std::string&, int64_t)>;
  explicit SlowGateway(int delay_ms, bool fail = false)
      : SlowGateway(delay_ms, [fail](const std::string&, int64_t revision) {
          if (fail) return std::make_pair(403, std::string(kPermissionDenied));
          return std::make_pair(200,
                                "{\"header\":{\"revision\":\"" + std::to_string(revision) + "\"}}");
        }) {}
  SlowGateway(int delay_ms, Responder respond) : delay_ms_(delay_ms), respond_(std::move(respond)) {
    fd_ = listen_loopback(&port_);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~SlowGateway() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    acceptor_.join();
    for (std::thread& t : conns_) t.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // when the request answered with revision r (1, 2, ...) came in
  std::chrono::steady_clock::time_point received(int64_t r) {
    std::lock_guard<std::mutex> lk(m_);
    return received_.at(static_cast<size_t>(r - 1));
  }
  size_t requests() {
    std::lock_guard<std::mutex> lk(m_);
    return received_.size();
  }

 private:
  void accept_loop() {
    for (;;) {
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::lock_guard<std::mutex> lk(m_);
      conns_.emplace_back([this, c] { serve(c); });
    }
  }
  // one connection: requests read to the end of their body, answered in turn
  void serve(int c) {
    std::string in, request;
    while (!stop_ && read_request(c, &in, &request)) {
      int64_t revision;
      {
        std::lock_guard<std::mutex> lk(m_);
        received_.push_back(std::chrono::steady_clock::now());
        revision = static_cast<int64_t>(received_.size());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_));
      auto [status, json] = respond_(request, revision);
      std::string out =
          "HTTP/1.1 " + std::to_string(status) +
          " X\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(json.size()) +
          "\r\n\r\n" + json;
      if (write(c, out.data(), out.size()) != static_cast<ssize_t>(out.size())) break;
    }
    close(c);
  }

  static constexpr const char* kPermissionDenied =
      "{\"error\":\"etcdserver: permission denied\",\"code\":7}";
  int delay_ms_;
  Responder respond_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::mutex m_;
  std::vector<std::thread> conns_;                               // under m_
  std::vector<std::chrono::steady_clock::time_point> received_;  // under m_
};

// A member cut off without a reset (packets dropped): the kernel takes
// the connection on its listening socket, and nothing ever reads or
// answers the request.
class SilentMember {
 public:
  SilentMember() { fd_ = listen_loopback(&port_); }
  ~SilentMember() { close(fd_); }
  SilentMember(const SilentMember&) = delete;
  SilentMember& operator=(const SilentMember&) = delete;
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

inline oauth2::EtcdConfig config_of(const SlowGateway& gw) {
  oauth2::EtcdConfig config;
  config.endpoints = {gw.url()};
  return config;
}

}  // namespace oauth2_test
