// The etcd client's handling of its members (etcd.cpp), against
// stand-ins for etcd's gateway on loopback (fake_etcd.hpp): the short
// tries once a member said the leadership is in doubt, and a watch's
// silence counted from the last bytes it heard.  TLS towards etcd runs
// against a real etcd in t/cluster_tls.t and t/cluster_tls_errors.t.

#include <curl/curl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cluster.hpp"
#include "etcd.hpp"
#include "fake_etcd.hpp"
#include "json.hpp"

namespace oauth2 {
namespace {

using oauth2_test::SilentMember;
using oauth2_test::SlowGateway;

long ms_since(std::chrono::steady_clock::time_point t0) {
  return static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count());
}

// A member without a leader ("etcdserver: no leader"), or one whose
// leader just changed, says the cluster's leadership is in doubt: the
// next member may be a follower still forwarding to the dead leader,
// which holds the request until the try's timeout.  After such an
// answer the further tries are short (a quarter of a second), so that a
// write reaches the new leader soon after its election, as they are
// after a try held to its timeout (AfterATryHeldToItsTimeoutTheNextTries
// AreShort).  Otherwise the follower holds the try a full second: an
// edge's token or revocation waits that much longer for etcd while the
// cluster elects (scripts/cluster-faults).
// A hostile or corrupted etcd: a revision no etcd reaches (strtoll would
// clamp it to 2^63 - 1, and the mirror's revision + 1 overflow), negative
// or not a number is refused, never taken
TEST(EtcdInt, AnImpossibleNumberIsRefused) {
  auto field = [](const char* json) {
    Json j(json_loads(json, 0, nullptr));
    return etcd_int(j.get(), "revision");
  };
  EXPECT_EQ(field(R"({"revision": "12345"})"), 12345);
  EXPECT_EQ(field(R"({"revision": 7})"), 7);
  EXPECT_EQ(field(R"({})"), 0);
  EXPECT_THROW(field(R"({"revision": "9223372036854775807"})"), EtcdError);
  EXPECT_THROW(field(R"({"revision": "99999999999999999999"})"), EtcdError);
  EXPECT_THROW(field(R"({"revision": "-5"})"), EtcdError);
  EXPECT_THROW(field(R"({"revision": "12x"})"), EtcdError);
  EXPECT_THROW(field(R"({"revision": ""})"), EtcdError);
  EXPECT_THROW(field(R"({"revision": true})"), EtcdError);
}

TEST(EtcdCall, AfterNoLeaderTheNextTriesAreShort) {
  for (const char* said : {"etcdserver: no leader", "etcdserver: leader changed"}) {
    std::atomic<bool> release{false};
    auto refusing = [said](const std::string&, int64_t) {
      const std::string m = std::string("\"") + said + "\"";
      return std::make_pair(503, "{\"error\":" + m + ",\"code\":14,\"message\":" + m + "}");
    };
    auto holding = [&](const std::string&, int64_t revision) {
      while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      return std::make_pair(200,
                            "{\"header\":{\"revision\":\"" + std::to_string(revision) + "\"}}");
    };
    SlowGateway a(0, refusing), b(0, holding), c(0);
    EtcdConfig config;
    config.endpoints = {a.url(), b.url(), c.url()};
    Etcd etcd(config);
    Json req(json_object());
    const auto t0 = std::chrono::steady_clock::now();
    Json answer = etcd.call("/v3/kv/range", req.get(), 3000);
    const long took = ms_since(t0);
    release = true;
    EXPECT_EQ(etcd_revision(answer.get()), 1) << said << ": c's first request";
    EXPECT_EQ(a.requests(), 1u) << said;
    EXPECT_EQ(b.requests(), 1u) << said;
    // (curl ends the try to its millisecond, and ms_since truncates)
    EXPECT_GE(took, 240) << said << ": b held its try";
    EXPECT_LT(took, 800) << said << ": b's try was short, not the full second";
  }
}

// What a call that ends at its deadline keeps to name, besides the last
// failure it heard: a TLS failure of an earlier try (a member refusing
// our certificate), for without it the operator looks for a network
// fault.  A handshake that timed out, curl's "SSL connection timeout"
// (a member that took the connection and said nothing), is such a
// network fault: counted as TLS's, it replaced the refusal in the
// message (t/cluster_tls_errors.t, whenever curl's connect timeout fired
// before its overall one).
TEST(EtcdCall, AHandshakeThatTimedOutIsNotATlsFailure) {
  using etcd_detail::tls_failure;
  EXPECT_FALSE(
      tls_failure(CURLE_OPERATION_TIMEDOUT, "Timeout was reached: SSL connection timeout"));
  EXPECT_FALSE(tls_failure(CURLE_OPERATION_TIMEDOUT,
                           "Timeout was reached: Operation timed out after 999 milliseconds"));
  EXPECT_FALSE(tls_failure(CURLE_COULDNT_CONNECT, "Couldn't connect to server"));
  EXPECT_TRUE(tls_failure(CURLE_RECV_ERROR,
                          "Failure when receiving data from the peer: OpenSSL SSL_read: "
                          "error:0A00045C:SSL routines::tlsv13 alert certificate required"));
  EXPECT_TRUE(tls_failure(CURLE_SSL_CONNECT_ERROR, "SSL connect error"));
  EXPECT_TRUE(tls_failure(CURLE_PEER_FAILED_VERIFICATION, "SSL peer certificate was not OK"));
}

// A stand-in for the gateway's watch: every request is answered with a
// stream (chunked, as the gateway sends it) of `lines` messages, one
// every every_ms, after which the member says nothing more, holding the
// connection until the client leaves.
class StreamGateway {
 public:
  // line (if given): what each message is, instead of a header alone;
  // pieces: each message sent in that many chunks, every_ms apart
  StreamGateway(int lines, int every_ms, std::string line = "", int pieces = 1)
      : lines_(lines), every_ms_(every_ms), line_(std::move(line)), pieces_(pieces) {
    fd_ = oauth2_test::listen_loopback(&port_);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~StreamGateway() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    acceptor_.join();
    std::lock_guard<std::mutex> lk(m_);
    for (int c : fds_) shutdown(c, SHUT_RDWR);
    for (std::thread& t : conns_) t.join();
    for (int c : fds_) close(c);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  size_t watches() {
    std::lock_guard<std::mutex> lk(m_);
    return fds_.size();
  }

 private:
  void accept_loop() {
    for (;;) {
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::lock_guard<std::mutex> lk(m_);
      fds_.push_back(c);
      conns_.emplace_back([this, c] { serve(c); });
    }
  }
  bool send(int c, const std::string& s) {
    // MSG_NOSIGNAL: a client that left (a watch it ended) is no SIGPIPE
    return ::send(c, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
  }
  void serve(int c) {
    std::string in, request;
    if (!oauth2_test::read_request(c, &in, &request)) return;
    if (!send(c,
              "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
              "Transfer-Encoding: chunked\r\n\r\n")) {
      return;
    }
    for (int i = 1; i <= lines_ && !stop_; i++) {
      if (i > 1) std::this_thread::sleep_for(std::chrono::milliseconds(every_ms_));
      const std::string line =
          (line_.empty() ? "{\"result\":{\"header\":{\"revision\":\"" + std::to_string(i) + "\"}}}"
                         : line_) +
          "\n";
      const size_t piece = (line.size() + pieces_ - 1) / pieces_;
      for (size_t at = 0; at < line.size() && !stop_; at += piece) {
        if (at) std::this_thread::sleep_for(std::chrono::milliseconds(every_ms_));
        const std::string part = line.substr(at, piece);
        char size[32];
        std::snprintf(size, sizeof(size), "%zx\r\n", part.size());
        if (!send(c, size + part + "\r\n")) return;
      }
    }
    char buf[512];
    while (read(c, buf, sizeof(buf)) > 0) {
    }
  }

  int lines_;
  int every_ms_;
  std::string line_;
  size_t pieces_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::mutex m_;
  std::vector<int> fds_;            // under m_
  std::vector<std::thread> conns_;  // under m_
};

// etcd's watch from revision 1 with an idle_ms of 500 (and beacon),
// counting the messages it delivers in *heard, until it fails: why
std::string watch_from_1(Etcd& etcd, size_t* heard, const std::string* beacon = nullptr) {
  try {
    etcd.watch(
        1, 500,
        [&](std::vector<Json>& batch) {
          *heard += batch.size();
          return true;
        },
        nullptr, beacon);
  } catch (const EtcdError& e) {
    return e.what();
  }
  return "";
}

// A watch whose member keeps talking is alive however long it runs: its
// silence counts from the last bytes it heard, not from its start.
// Otherwise sync would end a busy, healthy watch every idle_ms ("nothing
// heard for 3000 ms") and start it again: a resume and a gap in the
// mirror every three seconds.  Here the member sends a message every
// 100 ms for 1.1 s, past idle_ms (0.5 s), then falls silent: every
// message arrives on the one watch, and the silence after the last one,
// only, ends it.
TEST(EtcdWatch, SilenceCountsFromTheLastBytesNotFromTheStart) {
  StreamGateway gw(12, 100);
  EtcdConfig config;
  config.endpoints = {gw.url()};
  Etcd etcd(config);
  size_t heard = 0;
  const auto t0 = std::chrono::steady_clock::now();
  const std::string why = watch_from_1(etcd, &heard);
  const long took = ms_since(t0);
  EXPECT_EQ(heard, 12u) << "every message, though the stream outlived idle_ms";
  EXPECT_EQ(gw.watches(), 1u) << "on the one watch";
  EXPECT_NE(why.find("nothing heard for 500 ms"), std::string::npos) << why;
  EXPECT_GE(took, 1100 + 500) << "the silence after the last message ended it";
  EXPECT_LT(took, 4000) << "... once it outlasted idle_ms";
}

// A member cut off without a reset (packets dropped: the watch falls
// silent, no error comes) while the others are healthy.  The edge's
// mirror must move on to them within about a second or two, as the
// README says ("sync ends it and watches again from its revision, at the
// next member"), for max_staleness is a few seconds and every request
// meanwhile is a 503 (R77).  Three paths led back to the silent member:

// 1. A watch that heard its member, which then fell silent, left the
// member preferred: sync's next read after the lost watch (head) and the
// next watch started there again.  Here member a streams one message and
// falls silent; the read that follows goes straight to b, and a never
// sees another connection.
TEST(EtcdWatch, AMemberFallenSilentIsNotTriedFirstAgain) {
  StreamGateway a(1, 0);
  SlowGateway b(0);
  EtcdConfig config;
  config.endpoints = {a.url(), b.url()};
  Etcd etcd(config);
  size_t heard = 0;
  const std::string why = watch_from_1(etcd, &heard);
  EXPECT_EQ(heard, 1u);
  EXPECT_NE(why.find("nothing heard for 500 ms"), std::string::npos) << why;
  const auto t0 = std::chrono::steady_clock::now();
  Etcd::Head head = etcd.head(30000);
  const long took = ms_since(t0);
  EXPECT_EQ(head.revision, 1) << "b's answer";
  EXPECT_LT(took, 3000) << "not held at the silent member";
  EXPECT_EQ(a.watches(), 1u) << "the silent member was not asked first again";
}

// 2. sync's read of etcd's head after a lost watch (a 30 s budget) gave
// its first try at a member the share of it: 15 s at a silent member with
// two, 10 s with three.  A count's first try at each member is short.
TEST(EtcdCall, AHeadReadPassesASilentMemberWithinASecondOrSo) {
  SilentMember a;
  SlowGateway b(0);
  EtcdConfig config;
  config.endpoints = {a.url(), b.url()};
  Etcd etcd(config);
  const auto t0 = std::chrono::steady_clock::now();
  Etcd::Head head = etcd.head(30000);
  const long took = ms_since(t0);
  EXPECT_EQ(head.revision, 1);
  EXPECT_EQ(b.requests(), 1u);
  EXPECT_LT(took, 3000) << "one short try at the silent member";
}

// 3. sync's heartbeat is put within a second: its first try took the
// whole second, so with the first member silent the heartbeat never
// reached a healthy one, and the mirror went stale though its watch
// followed another member.  A budget too short for two full tries is
// shared out among the members.
TEST(EtcdCall, AShortCallTriesMoreThanOneMember) {
  SilentMember a, b;
  SlowGateway c(0);
  EtcdConfig config;
  config.endpoints = {a.url(), b.url(), c.url()};
  Etcd etcd(config);
  Json req(json_object());
  const auto t0 = std::chrono::steady_clock::now();
  std::string why;
  try {
    Json answer = etcd.call("/v3/kv/put", req.get(), 1000);
    EXPECT_EQ(etcd_revision(answer.get()), 1);
  } catch (const EtcdError& e) {
    why = e.what();
  }
  const long took = ms_since(t0);
  EXPECT_EQ(why, "") << "c answered within the budget";
  EXPECT_EQ(c.requests(), 1u);
  EXPECT_LT(took, 1500);
}

// A member that keeps sending but never brings this edge's heartbeat
// back (slow, or behind the cluster: its messages carry no events of
// ours) kept sync's watch, and the edge at 503 past max_staleness, for
// as long as it sent (R77).  With the heartbeat's key as the watch's
// beacon, such a stream fails after idle_ms as a silent one does, and
// the next call starts at the next member.  Here a sends a message
// every 100 ms for 10 s, none of them a put of the beacon.
TEST(EtcdWatch, AStreamThatNeverBringsTheBeaconFails) {
  StreamGateway a(100, 100);
  SlowGateway b(0);
  EtcdConfig config;
  config.endpoints = {a.url(), b.url()};
  Etcd etcd(config);
  const std::string beacon = etcd.heartbeat_prefix() + "edge";
  size_t heard = 0;
  const auto t0 = std::chrono::steady_clock::now();
  const std::string why = watch_from_1(etcd, &heard, &beacon);
  const long took = ms_since(t0);
  EXPECT_GT(heard, 0u);
  EXPECT_NE(why.find("has not come back for 500 ms"), std::string::npos) << why;
  EXPECT_LT(took, 3000) << "not held for as long as the member sends";
  Etcd::Head head = etcd.head(30000);
  EXPECT_EQ(head.revision, 1) << "b's answer";
  EXPECT_EQ(a.watches(), 1u) << "the lagging member was not asked first again";
}

// a watch (beacon: the heartbeat's key) of 12 messages 100 ms apart,
// each the event that event_of(beacon) makes: kept to its end
void expect_kept_to_the_end(const std::function<std::string(const std::string&)>& event_of) {
  EtcdConfig config;
  const std::string beacon = config.prefix + "heartbeat/edge";
  StreamGateway a(12, 100, event_of(beacon));
  config.endpoints = {a.url()};
  Etcd etcd(config);
  size_t heard = 0;
  const auto t0 = std::chrono::steady_clock::now();
  const std::string why = watch_from_1(etcd, &heard, &beacon);
  EXPECT_EQ(heard, 12u) << why;
  EXPECT_GE(ms_since(t0), 1100) << why;
}

// ... and a stream that brings the beacon's puts is kept however long it
// runs past idle_ms
TEST(EtcdWatch, AStreamThatBringsTheBeaconIsKept) {
  expect_kept_to_the_end([](const std::string& beacon) {
    return "{\"result\":{\"events\":[{\"kv\":{\"key\":\"" + base64_std(beacon) +
           "\",\"mod_revision\":\"2\"}}]}}";
  });
}

// A member falling behind steadily still brings each of the beacon's
// puts, each one older: by arrival alone the watch was kept while the
// mirror aged past max_staleness (R77).  A put is fresh only if its value,
// the time it was made, is less than idle_ms before it came; a's puts are
// each 5 s old, b's (the next member) as good as any.  A value that is a
// time to come, or no time, is fresh (AStreamThatBringsTheBeaconIsKept).
std::string beacon_event(const std::string& beacon, const std::string& value) {
  return "{\"result\":{\"events\":[{\"kv\":{\"key\":\"" + base64_std(beacon) + "\",\"value\":\"" +
         base64_std(value) + "\",\"mod_revision\":\"2\"}}]}}";
}

TEST(EtcdWatch, AStreamThatBringsOnlyStaleBeaconsFails) {
  EtcdConfig config;
  const std::string beacon = config.prefix + "heartbeat/edge";
  StreamGateway a(100, 100, beacon_event(beacon, std::to_string(now_ms() - 5000)));
  SlowGateway b(0);
  config.endpoints = {a.url(), b.url()};
  Etcd etcd(config);
  size_t heard = 0;
  const auto t0 = std::chrono::steady_clock::now();
  const std::string why = watch_from_1(etcd, &heard, &beacon);
  EXPECT_GT(heard, 0u);
  EXPECT_NE(why.find("has not come back for 500 ms"), std::string::npos) << why;
  EXPECT_LT(ms_since(t0), 3000) << "not held for as long as the member sends";
  EXPECT_EQ(etcd.head(30000).revision, 1) << "b's answer";
}

TEST(EtcdWatch, AStreamThatBringsFreshBeaconsIsKept) {
  expect_kept_to_the_end([](const std::string& beacon) {
    return beacon_event(beacon, std::to_string(now_ms() + 60000));
  });
}

// A message that takes longer than idle_ms to arrive (etcd sends all the
// events of a revision as one: an import's, a restore's Txn, on a slow
// link) was cut off halfway as a member behind, and came again from its
// start on the next watch, on every member, for ever: the mirror stuck
// (R77).  It is judged once it has ended, and applied first; here each
// message takes 1 s (10 pieces, 100 ms apart) against an idle_ms of 500,
// and brings no beacon: the first is delivered, then the watch fails.
std::string other_event(size_t bytes) {
  return "{\"result\":{\"events\":[{\"kv\":{\"key\":\"" + base64_std("/oauth2/load/x") +
         "\",\"value\":\"" + std::string(bytes, 'A') + "\",\"mod_revision\":\"2\"}}]}}";
}

TEST(EtcdWatch, AMessageSlowerThanIdleIsDeliveredBeforeTheBeaconIsJudged) {
  EtcdConfig config;
  const std::string beacon = config.prefix + "heartbeat/edge";
  StreamGateway a(3, 100, other_event(4000), 10);
  config.endpoints = {a.url()};
  Etcd etcd(config);
  size_t heard = 0;
  const std::string why = watch_from_1(etcd, &heard, &beacon);
  EXPECT_EQ(heard, 1u) << why;
  EXPECT_NE(why.find("has not come back for 500 ms"), std::string::npos) << why;
}

// ... but one still arriving after ten times idle_ms is given up: here
// one message of 100 pieces, 100 ms apart (10 s), cut at about 5 s
TEST(EtcdWatch, AMessageArrivingForTenTimesIdleIsGivenUp) {
  EtcdConfig config;
  const std::string beacon = config.prefix + "heartbeat/edge";
  StreamGateway a(1, 100, other_event(4000), 100);
  config.endpoints = {a.url()};
  Etcd etcd(config);
  size_t heard = 0;
  const auto t0 = std::chrono::steady_clock::now();
  const std::string why = watch_from_1(etcd, &heard, &beacon);
  const long took = ms_since(t0);
  EXPECT_EQ(heard, 0u) << why;
  EXPECT_NE(why.find("has not come back for 500 ms"), std::string::npos) << why;
  EXPECT_GE(took, 4500);
  EXPECT_LT(took, 8000);
}

}  // namespace
}  // namespace oauth2
