#include "etcd.hpp"

#include <curl/curl.h>
#include <openssl/evp.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <stdexcept>

#include "cluster.hpp"

namespace oauth2 {

namespace {

// curl_global_init once, before any thread uses curl
struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
};

void curl_global() {
  static CurlGlobal once;
}

bool printable(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

}  // namespace

std::vector<std::string> parse_etcd_endpoints(std::string_view list) {
  std::vector<std::string> out;
  while (true) {
    size_t comma = list.find(',');
    std::string_view url = list.substr(0, comma);
    bool http = url.rfind("http://", 0) == 0, https = url.rfind("https://", 0) == 0;
    std::string_view rest = url.substr(http ? 7 : https ? 8 : 0);
    if (!http && !https) {
      throw std::invalid_argument("etcd URL \"" + std::string(url) +
                                  "\" is not http://host:port or https://host:port");
    }
    if (rest.empty() || rest.find('/') != std::string_view::npos || !printable(rest)) {
      throw std::invalid_argument("etcd URL \"" + std::string(url) +
                                  "\" must be a scheme, a host and a port, without a path");
    }
    out.emplace_back(url);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return out;
}

void check_etcd_prefix(std::string_view prefix) {
  if (prefix.size() < 2 || prefix.front() != '/' || prefix.back() != '/' || !printable(prefix)) {
    throw std::invalid_argument("etcd prefix \"" + std::string(prefix) +
                                "\" must start and end with \"/\" (as /oauth2/)");
  }
}

void check_etcd_tls(const EtcdConfig& config, const EtcdTlsNames& names) {
  const bool any = !config.cacert.empty() || !config.cert.empty() || !config.key.empty();
  if (!any) return;
  if (config.cert.empty() != config.key.empty()) {
    throw std::invalid_argument(config.cert.empty()
                                    ? std::string(names.key) + " needs " + names.cert
                                    : std::string(names.cert) + " needs " + names.key);
  }
  // every URL: a member listed as http:// would get the edge's records,
  // its writes included, in clear and from whoever answers there
  for (const std::string& url : config.endpoints) {
    if (url.rfind("https://", 0) == 0) continue;
    const char* given = !config.cacert.empty() ? names.cacert : names.cert;
    throw std::invalid_argument(std::string(given) + " needs an https:// etcd URL, and " + url +
                                " is not (every URL of " + names.etcd + " must be https://)");
  }
  const std::pair<const char*, const std::string*> files[] = {
      {names.cacert, &config.cacert}, {names.cert, &config.cert}, {names.key, &config.key}};
  for (const auto& [name, path] : files) {
    if (path->empty()) continue;
    // read a byte: a directory opens but does not read
    FILE* f = fopen(path->c_str(), "r");
    int err = errno;
    bool read = false;
    if (f) {
      char byte;
      read = fread(&byte, 1, 1, f) == 1;
      err = ferror(f) ? errno : 0;  // 0: an empty file
      fclose(f);
    }
    if (!read) {
      throw std::invalid_argument(std::string(name) + " \"" + *path + "\" cannot be read: " +
                                  (err ? strerror(err) : "the file is empty"));
    }
  }
}

std::string base64_std(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::optional<std::string> unbase64_std(std::string_view text) {
  if (text.size() % 4) return std::nullopt;
  std::string out(text.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  size_t len = static_cast<size_t>(n);
  // EVP_DecodeBlock counts the padding's bytes as zeros
  if (!text.empty() && text.back() == '=') len--;
  if (text.size() > 1 && text[text.size() - 2] == '=') len--;
  out.resize(len);
  return out;
}

int64_t etcd_int(const json_t* obj, const char* name) {
  constexpr int64_t kMax = int64_t{1} << 62;
  const json_t* v = json_object_get(obj, name);
  int64_t n = 0;
  if (json_is_integer(v)) {
    n = json_integer_value(v);
  } else if (json_is_string(v)) {
    const char* s = json_string_value(v);
    char* end = nullptr;
    errno = 0;
    n = std::strtoll(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE) n = -1;
  } else if (v) {
    n = -1;
  }
  if (n < 0 || n > kMax) throw EtcdError(std::string("etcd answered an impossible ") + name);
  return n;
}

int64_t etcd_revision(const json_t* answer) {
  return etcd_int(json_object_get(answer, "header"), "revision");
}

std::string etcd_cluster_id(const json_t* answer) {
  // a uint64: the gateway sends it as a string, kept as it is
  const json_t* v = json_object_get(json_object_get(answer, "header"), "cluster_id");
  if (json_is_string(v)) return json_string_value(v);
  if (json_is_integer(v)) return std::to_string(static_cast<uint64_t>(json_integer_value(v)));
  return std::string();
}

// ---------------------------------------------------------------- Etcd

struct Etcd::Handle {
  CURL* curl = nullptr;
  // JSON, and no "Expect: 100-continue" (a round trip more for a body
  // over 1 KiB); and etcd's "require leader" (gRPC metadata hasleader,
  // which its gateway takes from a Grpc-Metadata- header): a member that
  // has lost its leader refuses at once ("no leader") rather than holding
  // the request, and ends a watch it serves, so that the caller turns to
  // another member (what etcd's own client does for watches)
  curl_slist* headers = nullptr;
  char error[CURL_ERROR_SIZE] = {};  // curl's words for the last failure
  Handle() {
    curl_global();
    curl = curl_easy_init();
    headers = curl_slist_append(nullptr, "Content-Type: application/json");
    if (headers) headers = curl_slist_append(headers, "Expect:");
    if (headers) headers = curl_slist_append(headers, "Grpc-Metadata-hasleader: true");
    if (!curl || !headers) {
      curl_slist_free_all(headers);
      curl_easy_cleanup(curl);
      throw std::bad_alloc();
    }
  }
  ~Handle() {
    curl_easy_cleanup(curl);
    curl_slist_free_all(headers);
  }
};

Etcd::Etcd(EtcdConfig config) : config_(std::move(config)) {
  if (config_.endpoints.empty()) throw std::invalid_argument("no etcd URL");
  check_etcd_prefix(config_.prefix);
  heartbeat_prefix_ = config_.prefix + "heartbeat/";
}

Etcd::~Etcd() = default;

std::unique_ptr<Etcd::Handle> Etcd::take() {
  {
    std::lock_guard<std::mutex> lk(m_);
    if (!idle_.empty()) {
      auto h = std::move(idle_.back());
      idle_.pop_back();
      return h;
    }
  }
  return std::make_unique<Handle>();
}

void Etcd::give_back(std::unique_ptr<Handle> h) {
  std::lock_guard<std::mutex> lk(m_);
  idle_.push_back(std::move(h));
}

// After curl_easy_reset: TLS's files, when configured, and the buffer for
// curl's account of a failure.  Peer and host verification stay curl's
// defaults (on).
void Etcd::set_transport(Handle& h) const {
  CURL* c = h.curl;
  h.error[0] = '\0';
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h.error);
  // HTTP/1.1 over https as over http://: one transport for both.  A
  // refused client certificate may read as a lost connection over either
  // (probe_certificate)
  curl_easy_setopt(c, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  if (!config_.cacert.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, config_.cacert.c_str());
  if (!config_.cert.empty()) curl_easy_setopt(c, CURLOPT_SSLCERT, config_.cert.c_str());
  if (!config_.key.empty()) curl_easy_setopt(c, CURLOPT_SSLKEY, config_.key.c_str());
}

// curl's words for rc, with the detail it wrote (a TLS alert, a
// certificate it could not verify, a file it could not load)
std::string Etcd::failure(const Handle& h, int rc) {
  std::string what = curl_easy_strerror(static_cast<CURLcode>(rc));
  if (h.error[0] && what != h.error) what += std::string(": ") + h.error;
  return what;
}

// a failure of TLS (a certificate refused either way, a file of ours that
// does not load): a configuration's, that the member a retry reaches in
// the end will not explain with its timeout.  A handshake that timed out
// ("SSL connection timeout": a member that took the connection and says
// nothing) is the network's, and must not hide an earlier refusal.
bool etcd_detail::tls_failure(int code, const std::string& what) {
  switch (static_cast<CURLcode>(code)) {
    case CURLE_OPERATION_TIMEDOUT: return false;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CLIENTCERT: return true;
    default:
      return what.find("SSL") != std::string::npos || what.find("alert") != std::string::npos;
  }
}

namespace {

// a certificate refused, by us (etcd's not verified, a file of ours that
// does not load) or by the member (TLS's alerts for ours): a
// configuration's, that no retry mends.  A reset in the handshake
// (CURLE_SSL_CONNECT_ERROR: a member restarting, say) is not one.
bool certificate_refused(CURLcode rc, const std::string& what) {
  switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CLIENTCERT: return true;
    default:
      for (const char* alert : {"alert bad certificate", "alert unknown ca",
                                "alert certificate required", "alert certificate unknown"}) {
        if (what.find(alert) != std::string::npos) return true;
      }
      return false;
  }
}

// a connection lost once it was made (reset, "Broken pipe", nothing
// answered): with TLS 1.3, how a member's refusal of our certificate may
// read when its reset overtakes its alert
bool lost_after_handshake(CURLcode rc) {
  return rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING;
}

}  // namespace

// With TLS 1.3 a member judges our client certificate after the
// handshake, as far as the client can tell: its refusal is an alert that
// follows, and the member resets the connection behind it.  When the
// reset overtakes the alert (curl sending its request into it: "Broken
// pipe"), the refusal reads as a lost connection, and retrying would end
// at the deadline with a message that names no certificate.  One
// handshake with TLS 1.2, where the member judges the certificate inside
// the handshake and the client is reading when it answers, tells the two
// apart: that member's refusal (curl's words for it), or "" (the
// handshake completed, or failed otherwise: the loss was the member's,
// retried as before).  Only this probe uses TLS 1.2; calls keep curl's
// default (TLS 1.3 with etcd).
std::string Etcd::probe_certificate(Handle& h, const std::string& url, long try_ms) const {
  CURL* c = h.curl;
  curl_easy_reset(c);
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_CONNECT_ONLY, 1L);
  curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 1L);
  curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, try_ms);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, try_ms);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  set_transport(h);
  curl_easy_setopt(c, CURLOPT_SSLVERSION,
                   static_cast<long>(CURL_SSLVERSION_TLSv1_2 | CURL_SSLVERSION_MAX_TLSv1_2));
  const CURLcode rc = curl_easy_perform(c);
  const std::string what = failure(h, rc);
  return rc != CURLE_OK && certificate_refused(rc, what) ? what : std::string();
}

// whether a failed try at member `at` was its refusal of a certificate:
// curl's words for it (*why), or a connection lost after the handshake
// that the probe, within the deadline, reads as one (*why then the
// probe's words)
bool Etcd::refused_certificate(Handle& h, int rc, size_t at, const std::string& url,
                               std::chrono::steady_clock::time_point deadline,
                               std::string* why) const {
  const CURLcode code = static_cast<CURLcode>(rc);
  if (certificate_refused(code, *why)) return true;
  if (!lost_after_handshake(code) || config_.cert.empty()) return false;
  const long left = static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          deadline - std::chrono::steady_clock::now())
                                          .count());
  const std::string probe = probe_certificate(h, url, std::max(1L, left));
  if (probe.empty()) return false;
  *why = config_.endpoints[at] + ": " + probe;
  return true;
}

namespace {

struct Sink {
  std::string body;
  const std::function<bool(std::vector<Json>&)>* on_message = nullptr;
  bool stopped = false;
  bool heard = false;  // a message came: a retry elsewhere would repeat it
  std::string error;
  int requests_sent = 0;  // curl sends a request again, unasked, when a
                          // reused connection dies before any answer
  // a watch: when its last bytes came, how long it may then be silent,
  // and whether it was ended for that (or by the caller's cancel)
  std::chrono::steady_clock::time_point last_bytes = std::chrono::steady_clock::now();
  long idle_ms = 0;
  bool silent = false;
  const std::atomic<bool>* cancel = nullptr;
  // the watch's beacon, as its events name it (base64; "": none), when a
  // put of it came last, and whether the stream was ended for its absence
  std::string beacon;
  std::chrono::steady_clock::time_point last_beacon = std::chrono::steady_clock::now();
  bool lagging = false;
  // when the message still arriving in body began (none: body is empty)
  std::chrono::steady_clock::time_point line_since{};
};

// A watch's messages are judged for the beacon as each one ends, and
// while one is arriving only once it has taken kLineIdleTimes × idle_ms:
// etcd sends all the events of a revision as one message, and a large
// one (an import's, a restore's Txn) on a slow link takes longer than
// idle_ms; cut off halfway, it would come again from its start on the
// next watch, and on the next member, for ever: the mirror stuck.
constexpr int kLineIdleTimes = 10;

// whether the beacon has not come, fresh, for idle_ms
bool beacon_overdue(const Sink& s, std::chrono::steady_clock::time_point now) {
  return !s.beacon.empty() && now - s.last_beacon >= std::chrono::milliseconds(s.idle_ms);
}

// whether a watch message brings a put of the key whose base64 is b64
// that is fresh: put less than idle_ms ago, by the time in ms since the
// epoch its value holds (the caller's heartbeat; a value that is no such
// number counts as put now).  A member falling behind steadily still
// brings each put, the later ones older and older: by arrival alone it
// would be kept while the mirror it feeds ages past max_staleness.
bool brings_fresh_put(const json_t* msg, const std::string& b64, long idle_ms) {
  size_t i;
  const json_t* ev;
  json_array_foreach(json_object_get(json_object_get(msg, "result"), "events"), i, ev) {
    const char* type = json_string_value(json_object_get(ev, "type"));
    const json_t* kv = json_object_get(ev, "kv");
    const char* key = json_string_value(json_object_get(kv, "key"));
    if (!key || b64 != key || (type && std::string_view(type) == "DELETE")) continue;
    const char* value = json_string_value(json_object_get(kv, "value"));
    const auto text = value ? unbase64_std(value) : std::nullopt;
    char* end = nullptr;
    const long long put_ms = text ? std::strtoll(text->c_str(), &end, 10) : 0;
    if (!text || text->empty() || *end != '\0') return true;
    if (now_ms() - put_ms < idle_ms) return true;
  }
  return false;
}

// one message a line (the gateway's streaming answer): every complete
// line the buffer holds, in one call, so that the caller can apply what
// arrived while it was busy as one batch
bool deliver_lines(Sink& s) {
  std::vector<Json> batch;
  size_t nl;
  while ((nl = s.body.find('\n')) != std::string::npos) {
    std::string line = s.body.substr(0, nl);
    s.body.erase(0, nl + 1);
    if (line.empty()) continue;
    json_error_t e;
    Json msg(json_loadb(line.data(), line.size(), 0, &e));
    if (!msg) {
      s.error = std::string("etcd sent what is not JSON: ") + e.text;
      return false;
    }
    // the gateway's error (a member without a leader ends the stream so):
    // this member failed, nothing was heard from it
    if (json_t* err = json_object_get(msg.get(), "error")) {
      const char* m = json_string_value(json_object_get(err, "message"));
      s.error = std::string("etcd watch: ") + (m ? m : json_text(err, JSON_COMPACT).c_str());
      return false;
    }
    if (!s.beacon.empty() && brings_fresh_put(msg.get(), s.beacon, s.idle_ms)) {
      s.last_beacon = std::chrono::steady_clock::now();
    }
    batch.push_back(std::move(msg));
  }
  if (batch.empty()) return true;
  s.heard = true;
  if (!(*s.on_message)(batch)) {
    s.stopped = true;
    return false;
  }
  // talking, but not of the caller's beacon: a member slow or behind,
  // judged once what came is applied
  if (beacon_overdue(s, std::chrono::steady_clock::now())) {
    s.lagging = true;
    return false;
  }
  return true;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  Sink& s = *static_cast<Sink*>(user);
  const size_t had = s.body.size();
  s.body.append(data, size * n);
  if (s.on_message && !deliver_lines(s)) return 0;  // ends the transfer
  // after what it took to apply them: silence is the member's, not ours
  const auto now = std::chrono::steady_clock::now();
  s.last_bytes = now;
  if (s.body.empty()) {
    s.line_since = {};
  } else if (s.body.size() < had + size * n || s.line_since == decltype(now){}) {
    s.line_since = now;  // a message began in what came
  }
  return size * n;
}

std::string answer_error(const json_t* answer, long status) {
  const char* m = json_string_value(json_object_get(answer, "message"));
  if (!m) m = json_string_value(json_object_get(answer, "error"));
  return "HTTP " + std::to_string(status) + (m ? std::string(": ") + m : std::string());
}

}  // namespace

namespace {

// curl's debug callback, for the requests it sends (their headers)
int count_requests(CURL*, curl_infotype type, char*, size_t, void* user) {
  if (type == CURLINFO_HEADER_OUT) static_cast<Sink*>(user)->requests_sent++;
  return 0;
}

// an error a member gives while the cluster elects a leader, or that it
// is not in: another member, or the same one a moment later, may succeed
bool passing_error(const std::string& what) {
  for (const char* m : {"leader changed", "no leader", "timed out", "not capable",
                        "too many requests", "unhealthy", "not started"}) {
    if (what.find(m) != std::string::npos) return true;
  }
  return false;
}

// each try at one member gets its share of the deadline, and at least
// this: a member cut off costs about one election's time, not the whole
// deadline
constexpr long kTryMs = 1000;

// Once a call has seen the cluster's leadership in doubt (a member that
// cannot be reached, that says it has no leader or a new one, or that
// held a try until its timeout), its further tries at a member get at
// most this.  A follower that has not yet noticed its leader's death
// forwards the request to it and holds it until the try's timeout; a
// short try then turns to another member within this of the new leader's
// election instead of within kTryMs.  A request held so was never
// committed (the dead leader replicates nothing).  A short try that times
// out at a live member may have been, as any timed-out try may (the
// retry's compares then fail and the change is confirmed or decided
// again): 250 ms is five times a Txn's p99 on a loaded loopback cluster
// (scripts/cluster-bench, under 50 ms).  A slow but healthy cluster
// keeps kTryMs while no doubt is seen; one slower than kTryMs failed
// every try before a held try counted as doubt, as it does now.
constexpr long kDoubtTryMs = 250;

// etcd's words for a request beyond its limits (its gRPC server's, the
// size as its gateway passes it on)
bool too_large_error(const std::string& what) {
  for (const char* m :
       {"too many operations in txn request", "request is too large", "larger than max"}) {
    if (what.find(m) != std::string::npos) return true;
  }
  return false;
}

bool leadership_error(const std::string& what) {
  return what.find("no leader") != std::string::npos ||
         what.find("leader changed") != std::string::npos;
}

// A try's length at most, for a call of timeout_ms among n members: its
// share, and at least kTryMs.  A budget too short for two such tries is
// shared out among the members (at least kDoubtTryMs each): sync's
// heartbeat, put within a second, reaches the next member when the first
// is cut off (silent), instead of spending the whole second on it.
long per_try_ms(long timeout_ms, size_t n) {
  const long share = timeout_ms / static_cast<long>(n);
  const long per_try = std::max(kTryMs, share);
  return per_try > timeout_ms / 2 ? std::max(kDoubtTryMs, share) : per_try;
}

bool unreachable(CURLcode rc) {
  return rc == CURLE_COULDNT_CONNECT || rc == CURLE_GOT_NOTHING || rc == CURLE_RECV_ERROR ||
         rc == CURLE_SEND_ERROR;
}

}  // namespace

// One try of a call: POST text to url, the answer into *sink, within
// try_ms; count: the requests curl sends are counted in *sink
void Etcd::prepare_post(Handle& h, const std::string& url, const std::string& text, long try_ms,
                        void* sink, bool count) const {
  CURL* c = h.curl;
  curl_easy_reset(c);
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, text.c_str());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(text.size()));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h.headers);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, try_ms);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, try_ms);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
  if (count) {
    curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);
    curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION, count_requests);
    curl_easy_setopt(c, CURLOPT_DEBUGDATA, sink);
  }
  set_transport(h);
}

// Tries the members in turn, from the one that answered last, until one
// answers or timeout_ms has passed.  A write sent again after a member
// did not answer is safe: a Txn compares what it read, so one that took
// effect the first time fails its compares the second.
Json Etcd::call(const char* path, const json_t* body, long timeout_ms, bool* in_doubt) {
  return call_tries(path, body, timeout_ms, in_doubt, 0);
}

// first_round_ms (0: none): the tries of the first round, one at each
// member, get at most this, the later ones their share of timeout_ms
Json Etcd::call_tries(const char* path, const json_t* body, long timeout_ms, bool* in_doubt,
                      long first_round_ms) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  const std::string text = json_text(body, JSON_COMPACT);
  std::unique_ptr<Handle> h = take();
  std::string why, tls_why;
  size_t at;
  {
    std::lock_guard<std::mutex> lk(m_);
    at = preferred_;
  }
  const size_t n = config_.endpoints.size();
  bool leader_in_doubt = false;  // shorter tries (kDoubtTryMs)
  size_t refused = 0;            // members in a row that refused a certificate
  for (size_t tries = 0;; tries++, at = (at + 1) % n) {
    const long left = static_cast<long>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
    if (left <= 0 && tries > 0) break;
    if (tries >= n) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    long cap = leader_in_doubt ? kDoubtTryMs : per_try_ms(timeout_ms, n);
    if (first_round_ms > 0 && tries < n) cap = std::min(cap, first_round_ms);
    const long this_try = std::max(1L, std::min(left, cap));
    Sink sink;
    CURL* c = h->curl;
    const std::string url = config_.endpoints[at] + path;
    prepare_post(*h, url, text, this_try, &sink, in_doubt != nullptr);
    CURLcode rc = curl_easy_perform(c);
    // a request that went out and got no answer may have been applied:
    // this try's failed, or one curl sent again by itself
    if (in_doubt && (sink.requests_sent > 1 || (rc != CURLE_OK && sink.requests_sent > 0))) {
      *in_doubt = true;
    }
    if (rc != CURLE_OK) {
      // a try the deadline cut short says less than the one before it
      const bool cut = rc == CURLE_OPERATION_TIMEDOUT && this_try == left && !why.empty();
      if (!cut) why = config_.endpoints[at] + ": " + failure(*h, rc);
      const bool refusal = refused_certificate(*h, rc, at, url, deadline, &why);
      if (etcd_detail::tls_failure(rc, why)) tls_why = why;
      // every member refused a certificate in turn: no wait mends that
      refused = refusal ? refused + 1 : 0;
      if (refused >= n) {
        give_back(std::move(h));
        throw EtcdError("no etcd member accepted the TLS certificates (last: " + why + ")");
      }
      // unreachable, or held past the try (a follower whose leader died)
      if (unreachable(rc) || rc == CURLE_OPERATION_TIMEDOUT) leader_in_doubt = true;
      continue;
    }
    refused = 0;
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    json_error_t e;
    Json answer(json_loadb(sink.body.data(), sink.body.size(), 0, &e));
    if (status != 200 || !answer) {
      std::string what = config_.endpoints[at] + path + ": " + answer_error(answer.get(), status);
      if (passing_error(what)) {
        why = what;
        if (leadership_error(what)) leader_in_doubt = true;
        // proposed, then lost sight of: it may have been committed
        if (in_doubt && (what.find("leader changed") != std::string::npos ||
                         what.find("timed out") != std::string::npos)) {
          *in_doubt = true;
        }
        continue;
      }
      give_back(std::move(h));
      throw EtcdError("etcd " + what, what.find("compacted") != std::string::npos,
                      too_large_error(what));
    }
    give_back(std::move(h));
    std::lock_guard<std::mutex> lk(m_);
    preferred_ = at;
    return answer;
  }
  give_back(std::move(h));
  throw EtcdError(
      "no etcd member answered within " + std::to_string(timeout_ms) + " ms (last: " + why + ")" +
      (tls_why.empty() || tls_why == why ? std::string() : " (TLS failed: " + tls_why + ")"));
}

namespace {

// curl's progress callback, at least once a second: non-zero aborts.  A
// watch ends when its caller cancels it, or when the stream has said
// nothing for idle_ms (a member cut off: silence, no reset).  curl's own
// low-speed limit would not do: it compares an average over the last
// seconds, so a stream that went silent after some traffic passes it for
// several seconds more.
int watch_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  Sink& s = *static_cast<Sink*>(user);
  if (s.cancel && s.cancel->load()) return 1;
  const auto now = std::chrono::steady_clock::now();
  if (now - s.last_bytes >= std::chrono::milliseconds(s.idle_ms)) {
    s.silent = true;
    return 1;
  }
  // talking, but not of the caller's beacon: a member slow or behind
  // (deliver_lines judges each message as it ends; one still arriving is
  // given kLineIdleTimes × idle_ms)
  const bool arriving = s.line_since != decltype(now){} &&
                        now - s.line_since < std::chrono::milliseconds(s.idle_ms) * kLineIdleTimes;
  if (beacon_overdue(s, now) && !arriving) {
    s.lagging = true;
    return 1;
  }
  return 0;
}

// the body of a watch of the whole prefix from start_revision
std::string watch_request(const std::string& prefix, int64_t start_revision) {
  Json body(json_pack("{s:{s:s,s:s,s:s}}", "create_request", "key", base64_std(prefix).c_str(),
                      "range_end", base64_std(Etcd::range_end(prefix)).c_str(), "start_revision",
                      std::to_string(start_revision).c_str()));
  if (!body) throw std::bad_alloc();
  return json_text(body.get(), JSON_COMPACT);
}

}  // namespace

void Etcd::watch(int64_t start_revision, long idle_ms,
                 const std::function<bool(std::vector<Json>&)>& on_message,
                 const std::atomic<bool>* cancel, const std::string* beacon) {
  const std::string text = watch_request(config_.prefix, start_revision);
  std::unique_ptr<Handle> h = take();
  size_t at;
  {
    std::lock_guard<std::mutex> lk(m_);
    at = preferred_;
  }
  std::string why;
  for (size_t i = 0; i < config_.endpoints.size(); i++, at = (at + 1) % config_.endpoints.size()) {
    const std::string url = config_.endpoints[at] + "/v3/watch";
    Sink sink;
    sink.on_message = &on_message;
    sink.idle_ms = idle_ms;
    sink.cancel = cancel;
    if (beacon) sink.beacon = base64_std(*beacon);
    CURL* c = h->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, text.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(text.size()));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->headers);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
    // a stream that says nothing for idle_ms is a member cut off
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, watch_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &sink);
    set_transport(*h);
    CURLcode rc = curl_easy_perform(c);
    // the last message, if the stream ended without its newline: the
    // gateway's refusal (HTTP 503 {"error": ...}) comes so
    if (rc == CURLE_OK && !sink.stopped && sink.error.empty() && !sink.body.empty()) {
      sink.body += '\n';
      deliver_lines(sink);
    }
    // a member that refused (without a leader, say): the next one may
    // have one.  One that fell silent (cut off: packets dropped, no
    // reset) would hold the next call's first try to its end, and the
    // heartbeat's whole budget: the next watch and call start at the
    // member after it, as after a refusal.
    const bool passing = !sink.error.empty() && passing_error(sink.error);
    const bool move_on = passing || sink.silent || sink.lagging;
    if (sink.heard || move_on) {  // the next watch, and the next call, start there
      std::lock_guard<std::mutex> lk(m_);
      preferred_ = move_on ? (at + 1) % config_.endpoints.size() : at;
    }
    if (sink.stopped || (cancel && cancel->load())) {
      give_back(std::move(h));
      return;
    }
    if (!sink.error.empty()) {
      if (!passing) throw EtcdError(sink.error);
      why = config_.endpoints[at] + ": " + sink.error;
      // events were applied: the caller watches again from its revision,
      // never this call from its start again
      if (sink.heard) break;
      continue;
    }
    const std::string ms = std::to_string(idle_ms) + " ms";
    why = config_.endpoints[at] + ": " +
          (sink.silent    ? "nothing heard for " + ms
           : sink.lagging ? "the member keeps sending, but " + *beacon + " has not come back for " +
                                ms + " (a put less than " + ms + " old)"
           : rc == CURLE_OK ? std::string("the watch ended")
                            : failure(*h, rc));
    if (sink.heard || rc == CURLE_OK) break;
  }
  give_back(std::move(h));
  throw EtcdError("etcd watch: " + why);
}

std::string Etcd::key(Db db, std::string_view key) const {
  std::string k = config_.prefix;
  k += db_name(db);
  k += '/';
  k += key;
  return k;
}

std::optional<std::pair<Db, std::string>> Etcd::record(std::string_view etcd_key) const {
  if (etcd_key.compare(0, config_.prefix.size(), config_.prefix) != 0) return std::nullopt;
  etcd_key.remove_prefix(config_.prefix.size());
  size_t slash = etcd_key.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  for (size_t i = 0; i < kDbCount; i++) {
    Db db = static_cast<Db>(i);
    if (etcd_key.substr(0, slash) == db_name(db)) {
      return std::make_pair(db, std::string(etcd_key.substr(slash + 1)));
    }
  }
  return std::nullopt;
}

Etcd::Head Etcd::head(long timeout_ms) {
  Json req(json_pack("{s:s,s:b}", "key", base64_std(config_.prefix).c_str(), "count_only", 1));
  if (!req) throw std::bad_alloc();
  // A count, which etcd answers within milliseconds: a first try at each
  // member of kTryMs, so that one cut off (silent) costs a second, not
  // its share of timeout_ms (10 s of sync's 30 with three members, after
  // its watch there was lost); the later tries are any call's.
  Json answer = call_tries("/v3/kv/range", req.get(), timeout_ms, nullptr, kTryMs);
  return Head{etcd_revision(answer.get()), etcd_cluster_id(answer.get())};
}

std::string Etcd::range_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    unsigned char last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

}  // namespace oauth2
