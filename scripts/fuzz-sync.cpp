// libFuzzer harness for the sync daemon (src/admin/sync.cpp, cluster
// mode): what `oauth2-admin sync` does with etcd's answers, when etcd is
// hostile or corrupted.  The harness is etcd: a loopback HTTP server in
// this process answers the daemon's /v3/kv/range pages (the snapshot) and
// streams its /v3/watch, with what the input says, while the daemon's own
// Mirror (sync.cpp, compiled into this file for its anonymous namespace)
// talks to it through Etcd (libcurl), as in production, and writes a real
// LMDB mirror on /dev/shm.  Each input is:
//   - structured (most inputs): snapshot pages and watch messages the
//     harness writes as etcd's gateway would, from keys (records of every
//     database, the local meta records, the heartbeat, keys outside the
//     prefix or too long for LMDB) and values (records encoded from
//     tokens, clients, users and account locks the input makes, or its
//     bytes), with revisions, cluster ids, cancellations, errors and bad
//     base64 here and there; the harness keeps a model of the mirror;
//   - raw: the pages and the stream are the input's bytes.
// Every input starts from the same mirror (a snapshot of an empty etcd at
// revision 1).  Beyond "no crash" (ASan, UBSan), it aborts when:
//   - snapshot() or follow() throw anything but EtcdError (sync_run
//     catches EtcdError only: anything else ends the daemon);
//   - a snapshot that fails changes the mirror;
//   - the mirror is not the model: after a snapshot, its pages' records
//     byte for byte (the local meta records never etcd's); after a watch,
//     the records of its messages up to where it stopped (a batch that
//     fails is applied not at all, so the mirror is the model after one
//     of the messages before the failing one); the revision and cluster
//     id recorded with them;
//   - the mirror's revision goes back, or a watch starts anywhere but at
//     the revision after the one applied;
//   - a record the input encodes does not decode to what was encoded
//     (tokens, users, account locks; clients that put_client would
//     store and whose every string JSON carries);
//   - reading a mirrored record through the store (get_client,
//     get_token, get_user, ..., what nginx's workers read) throws
//     anything but StoreError.
// Build and run with scripts/fuzz-sync.

#include <arpa/inet.h>
#include <fuzzer/FuzzedDataProvider.h>
#include <jansson.h>
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
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

// Mirror and its helpers are in sync.cpp's anonymous namespace
#include "../src/admin/sync.cpp"
#include "store_records.hpp"
#define FUZZ_HARNESS "fuzz-sync"
#include "fuzz-harness.hpp"

namespace {

using oauth2::AccountLock;
using oauth2::Client;
using oauth2::Db;
using oauth2::EtcdError;
using oauth2::Json;
using oauth2::kDbCount;
using oauth2::Store;
using oauth2::StoreError;
using oauth2::Token;
using oauth2::User;
namespace records = oauth2::records;

using fuzz::broken;
using fuzz::die;
using fuzz::send_all;

const std::string kPrefix = "/oauth2/";
const std::string kMirrorOf = "etcd " + kPrefix;

// ---------------------------------------------------------- a fake etcd

// The range pages in order (past the last: a 500), and the watch stream in
// its chunks, after which the connection closes (the watch ended).  A few
// threads made at start-up serve a connection each (curl may open
// another before it closes one); settle() waits until none is answering,
// so that no answer is in flight when LeakSanitizer looks, after an input.
class FakeEtcd {
 public:
  FakeEtcd() {
    fd_ = fuzz::listen_loopback(8, &port_);
    for (int i = 0; i < 4; i++) std::thread([this] { run(); }).detach();
  }
  uint16_t port() const { return port_; }

  void serve(std::vector<std::string> pages, std::vector<std::string> chunks) {
    std::lock_guard<std::mutex> lk(m_);
    pages_.assign(pages.begin(), pages.end());
    chunks_ = std::move(chunks);
    watches_.clear();
  }
  void settle() {
    while (busy_.load() != 0) std::this_thread::yield();
  }
  // the bodies of the watch requests since serve() or the last call
  std::vector<std::string> watches() {
    std::lock_guard<std::mutex> lk(m_);
    return std::exchange(watches_, {});
  }

 private:
  void run() {
    for (;;) {
      int c = fuzz::accept_peer(fd_);
      if (c < 0) continue;
      connection(c);
      close(c);
    }
  }

  // the requests of one connection, until the client closes it or a
  // watch ends it
  void connection(int fd) {
    std::string buf;
    for (;;) {
      std::optional<fuzz::Busy> busy;  // busy_ counts the requests being answered
      fuzz::Request rq;
      if (!fuzz::next_request(fd, buf, &rq, [&] { busy.emplace(busy_); })) return;
      const std::string& path = rq.path;
      const std::string& body = rq.body;
      if (path == "/v3/watch") {
        std::vector<std::string> chunks;
        {
          std::lock_guard<std::mutex> lk(m_);
          watches_.push_back(body);
          chunks.swap(chunks_);  // a second watch gets an empty stream
        }
        if (!send_all(fd,
                      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                      "Connection: close\r\n\r\n")) {
          return;
        }
        for (const std::string& c : chunks) {
          if (!send_all(fd, c)) return;
        }
        return;  // the stream ends: the daemon's watch ends
      }
      std::string answer;
      int status = 200;
      {
        std::lock_guard<std::mutex> lk(m_);
        if (path == "/v3/kv/range" && !pages_.empty()) {
          answer = std::move(pages_.front());
          pages_.pop_front();
        } else {
          status = 500;
          answer = R"({"error":"fuzz-sync: no such page","code":2})";
        }
      }
      if (!send_all(fd, fuzz::http_response(status, answer))) return;
    }
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::mutex m_;
  std::deque<std::string> pages_;
  std::vector<std::string> chunks_;
  std::vector<std::string> watches_;
  std::atomic<int> busy_{0};
};

// ---------------------------------------------------------- the mirror

// the records of the mirror, the local meta records left out
using Records = std::map<std::pair<int, std::string>, std::string>;

// What the mirror holds: its records and what it recorded with them.
struct State {
  Records records;
  int64_t revision = 0;
  std::string cluster_id;
  bool operator==(const State& o) const {
    return records == o.records && revision == o.revision && cluster_id == o.cluster_id;
  }
};

FakeEtcd* g_etcd;
Store* g_store;
oauth2::Etcd* g_client;

// FUZZ_STATS=1: what the inputs reached, printed at exit
struct Stats {
  unsigned long raw = 0, structured = 0, snapshots_ok = 0, snapshots_failed = 0;
  unsigned long watches_whole = 0, watches_stopped = 0, records = 0, skipped_max = 0;
};
Stats* g_stats;

void print_stats() {
  const Stats& s = *g_stats;
  std::fprintf(stderr,
               "fuzz-sync: %lu raw, %lu structured; snapshots %lu taken, %lu failed; watches %lu "
               "applied whole, %lu stopped early; %lu records mirrored; %lu at INT64_MAX\n",
               s.raw, s.structured, s.snapshots_ok, s.snapshots_failed, s.watches_whole,
               s.watches_stopped, s.records, s.skipped_max);
}

State read_state() {
  State s;
  oauth2::Txn t = g_store->read();
  for (size_t i = 0; i < kDbCount; i++) {
    const Db db = static_cast<Db>(i);
    t.scan(db, "", 0, false, [&](std::string_view k, std::string_view v) {
      if (db != Db::kMeta || !oauth2::local_meta(k)) s.records[{int(i), std::string(k)}] = v;
      return true;
    });
  }
  auto of = t.get_meta(oauth2::kMirrorOfMeta);
  if (!of || *of != kMirrorOf) broken("the mirror does not say what it mirrors");
  auto rev = t.get_meta(oauth2::kMirrorRevisionMeta);
  s.revision = rev ? std::strtoll(rev->c_str(), nullptr, 10) : 0;
  if (!rev || *rev != std::to_string(s.revision)) broken("the mirror's revision is not a number");
  s.cluster_id = t.get_meta(oauth2::kMirrorClusterMeta).value_or("");
  return s;
}

std::string describe(const State& s) {
  std::string out = "revision " + std::to_string(s.revision) + " cluster " + s.cluster_id + ":";
  for (const auto& [k, v] : s.records) {
    out += " " + std::string(oauth2::db_name(static_cast<Db>(k.first))) + "/" +
           oauth2::hex_encode(reinterpret_cast<const unsigned char*>(k.second.data()),
                              k.second.size()) +
           "=" + std::to_string(v.size()) + "B";
  }
  return out;
}

// What MirrorWriter does with a record of etcd's, in the model.
void model_put(State& s, const std::string& etcd_key, const std::string* value) {
  auto rec = g_client->record(etcd_key);
  if (!rec) return;
  const std::string& key = rec->second;
  if (key.empty() || key.size() > 511) return;  // skipped: LMDB's keys
  if (rec->first == Db::kMeta && oauth2::local_meta(key)) return;
  if (value) {
    s.records[{int(rec->first), key}] = *value;
  } else {
    s.records.erase({int(rec->first), key});
  }
}

// a + b as the two's complement wraps (the harness's own arithmetic
// never overflows; the daemon's is UBSan's to judge)
int64_t add(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}

// ---------------------------------------------------------- records

std::string bytes(FuzzedDataProvider& in, size_t max) {
  return in.ConsumeRandomLengthString(max);
}

std::string realm(FuzzedDataProvider& in) {
  static const char* const kRealms[] = {"default", "api", "a-b_c.d"};
  return kRealms[in.ConsumeIntegralInRange(0, 2)];
}

Token make_token(FuzzedDataProvider& in) {
  Token t;
  t.type = static_cast<oauth2::TokenType>(in.ConsumeIntegralInRange(1, 10));
  t.issued_at = in.ConsumeIntegral<int64_t>();
  t.expires_at = in.ConsumeIntegral<int64_t>();
  t.client_id = bytes(in, 40);
  t.scope = bytes(in, 40);
  t.user = bytes(in, 20);
  if (in.ConsumeBool()) {
    for (auto& b : t.family) b = in.ConsumeIntegral<uint8_t>();
  }
  if (in.ConsumeBool()) t.used_at = in.ConsumeIntegral<int64_t>();
  t.redirect_uri_omitted = in.ConsumeBool();
  t.jwt = in.ConsumeBool();
  for (std::string* s :
       {&t.redirect_uri, &t.code_challenge, &t.sealed, &t.data, &t.jkt, &t.audience}) {
    if (in.ConsumeBool()) *s = bytes(in, 40);
  }
  return t;
}

bool same(const Token& a, const Token& b) {
  return a.type == b.type && a.issued_at == b.issued_at && a.expires_at == b.expires_at &&
         a.client_id == b.client_id && a.scope == b.scope && a.user == b.user &&
         a.family == b.family && a.used_at == b.used_at && a.redirect_uri == b.redirect_uri &&
         a.redirect_uri_omitted == b.redirect_uri_omitted && a.code_challenge == b.code_challenge &&
         a.sealed == b.sealed && a.data == b.data && a.jwt == b.jwt && a.jkt == b.jkt &&
         a.audience == b.audience;
}

std::vector<std::string> strings(FuzzedDataProvider& in) {
  std::vector<std::string> v(in.ConsumeIntegralInRange(0, 3));
  for (auto& s : v) s = bytes(in, 30);
  return v;
}

Client make_client(FuzzedDataProvider& in, const std::string& r) {
  Client c;
  c.realm = r;
  c.client_id = bytes(in, 30);
  c.name = bytes(in, 30);
  c.secret_hash = bytes(in, 30);
  c.confidential = in.ConsumeBool();
  c.grant_types = strings(in);
  c.scope = bytes(in, 30);
  c.redirect_uris = strings(in);
  c.auth_method = bytes(in, 10);
  c.access_token_ttl = in.ConsumeIntegral<int64_t>();
  c.access_token_format = in.ConsumeBool() ? "jwt" : "";
  c.created_at = in.ConsumeIntegral<int64_t>();
  c.disabled = in.ConsumeBool();
  c.imported_secret = in.ConsumeBool();
  c.first_party = in.ConsumeBool();
  c.id_token_alg = in.ConsumeBool() ? "ES256" : "";
  c.post_logout_redirect_uris = strings(in);
  c.resources = strings(in);
  c.dpop_bound_access_tokens = in.ConsumeBool();
  return c;
}

bool same(const Client& a, const Client& b) {
  return a.realm == b.realm && a.client_id == b.client_id && a.name == b.name &&
         a.secret_hash == b.secret_hash && a.confidential == b.confidential &&
         a.grant_types == b.grant_types && a.scope == b.scope &&
         a.redirect_uris == b.redirect_uris && a.auth_method == b.auth_method &&
         a.access_token_ttl == b.access_token_ttl &&
         a.access_token_format == b.access_token_format && a.created_at == b.created_at &&
         a.disabled == b.disabled && a.imported_secret == b.imported_secret &&
         a.first_party == b.first_party && a.id_token_alg == b.id_token_alg &&
         a.post_logout_redirect_uris == b.post_logout_redirect_uris && a.resources == b.resources &&
         a.dpop_bound_access_tokens == b.dpop_bound_access_tokens;
}

// JSON carries the string (valid UTF-8, and no NUL: the records are read
// without JSON_ALLOW_NUL)
bool json_safe(const std::string& s) {
  return oauth2::valid_utf8(s) && s.find('\0') == std::string::npos;
}

// what put_client would store, every string of it (storable() leaves out
// the post-logout URIs, which the callers check for themselves)
bool client_storable(const Client& c) {
  if (!records::storable(c)) return false;
  for (const auto& s : c.post_logout_redirect_uris) {
    if (!json_safe(s)) return false;
  }
  return json_safe(c.access_token_format) && json_safe(c.id_token_alg);
}

User make_user(FuzzedDataProvider& in, const std::string& r) {
  User u;
  u.realm = r;
  u.id = in.ConsumeIntegral<uint64_t>();
  u.username = bytes(in, 20);
  u.email = bytes(in, 30);
  u.first_name = bytes(in, 20);
  u.last_name = bytes(in, 20);
  u.password = bytes(in, 40);
  u.is_staff = in.ConsumeBool();
  u.is_superuser = in.ConsumeBool();
  u.is_active = in.ConsumeBool();
  u.date_joined = in.ConsumeIntegral<int64_t>();
  u.last_login = in.ConsumeIntegral<int64_t>();
  return u;
}

bool same(const User& a, const User& b) {
  return a.realm == b.realm && a.id == b.id && a.username == b.username && a.email == b.email &&
         a.first_name == b.first_name && a.last_name == b.last_name && a.password == b.password &&
         a.is_staff == b.is_staff && a.is_superuser == b.is_superuser &&
         a.is_active == b.is_active && a.date_joined == b.date_joined &&
         a.last_login == b.last_login;
}

// put_user's own checks
bool user_storable(const User& u) {
  using records::storable_text;
  return oauth2::valid_username(u.username) && storable_text(u.email, 254) &&
         storable_text(u.first_name, 150) && storable_text(u.last_name, 150) &&
         storable_text(u.password, 512);
}

// An account lock's record, checked to decode to the lock (its origins
// cut to kMaxTrusted).
std::string lock_record(FuzzedDataProvider& in) {
  AccountLock l;
  l.window_start = in.ConsumeIntegral<int64_t>();
  l.failures = in.ConsumeIntegral<uint32_t>();
  l.locked_until = in.ConsumeIntegral<int64_t>();
  l.trusted.resize(in.ConsumeIntegralInRange(0, 10));
  for (auto& o : l.trusted) {
    o.id[0] = in.ConsumeIntegral<uint8_t>();
    o.last = in.ConsumeIntegral<int64_t>();
  }
  std::string value = records::encode_lock(l);
  auto back = records::decode_lock(value);
  bool ok = back && back->window_start == l.window_start && back->failures == l.failures &&
            back->locked_until == l.locked_until &&
            back->trusted.size() == std::min(l.trusted.size(), AccountLock::kMaxTrusted);
  for (size_t i = 0; ok && i < back->trusted.size(); i++) {
    ok = back->trusted[i].id == l.trusted[i].id && back->trusted[i].last == l.trusted[i].last;
  }
  if (!ok) broken("an account lock record does not decode to its lock");
  return value;
}

// A record's key and value: encoded from what the input makes (checked
// to decode to it), or the input's bytes.  The key is the database's
// layout when it can be.
std::pair<std::string, std::string> record(FuzzedDataProvider& in, Db* db) {
  const std::string r = realm(in);
  std::string key, value;
  switch (in.ConsumeIntegralInRange(0, 5)) {
    case 0: {
      *db = Db::kTokens;
      Token t = make_token(in);
      oauth2::TokenId id = oauth2::token_id(bytes(in, 20));
      key = records::token_key(r, id);
      value = records::encode_token(t);
      auto back = records::decode_token(value);
      if (!back || !same(*back, t)) broken("a token record does not decode to its token");
      break;
    }
    case 1: {
      *db = Db::kClients;
      Client c = make_client(in, r);
      if (!oauth2::valid_client_id(c.client_id)) c.client_id = "client";
      key = records::client_key(r, c.client_id);
      // what put_client encodes: storable(), and UTF-8 in the strings it
      // leaves out, without which encode_client throws, leaking the JSON
      // array it was making (a finding of this harness)
      bool utf8 = oauth2::valid_utf8(c.access_token_format) && oauth2::valid_utf8(c.id_token_alg);
      for (const auto& u : c.post_logout_redirect_uris) utf8 = utf8 && oauth2::valid_utf8(u);
      if (!records::storable(c) || !utf8) {
        value = bytes(in, 64);
        break;
      }
      value = records::encode_client(c);
      auto back = records::decode_client(r, value);
      if (client_storable(c) && (!back || !same(*back, c))) {
        broken("a client record does not decode to its client", c.client_id);
      }
      break;
    }
    case 2: {
      *db = Db::kUsers;
      User u = make_user(in, r);
      key = records::user_key(r, u.id);
      try {
        value = records::encode_user(u);
      } catch (const std::invalid_argument&) {
        value = bytes(in, 64);
        break;
      }
      auto back = records::decode_user(r, value);
      if (user_storable(u) && (!back || !same(*back, u))) {
        broken("a user record does not decode to its user", u.username);
      }
      break;
    }
    case 3:
      *db = Db::kAccountLocks;
      key = records::user_key(r, in.ConsumeIntegral<uint64_t>());
      value = lock_record(in);
      break;
    default:
      *db = static_cast<Db>(in.ConsumeIntegralInRange<size_t>(0, kDbCount - 1));
      key = records::realm_prefix(r) + bytes(in, 40);
      value = bytes(in, 100);
  }
  return {key, value};
}

// An etcd key: a record's (most often), a local meta record's, the
// heartbeat's, one outside the databases or the prefix, one too long for
// LMDB, or the input's bytes; and its value.
std::pair<std::string, std::string> key_value(FuzzedDataProvider& in, const std::string& beat) {
  static const char* const kLocal[] = {"mirror_revision",   "mirror_fresh_at", "mirror_of",
                                       "mirror_cluster_id", "schema_version",  "map_size",
                                       "valid_epoch",       "valid_epochs"};
  Db db = Db::kMeta;
  switch (in.ConsumeIntegralInRange(0, 15)) {
    case 8: return {kPrefix + "meta/" + kLocal[in.ConsumeIntegralInRange(0, 7)], bytes(in, 20)};
    case 9: return {beat, std::to_string(in.ConsumeIntegral<int64_t>())};
    case 10: return {kPrefix + "heartbeat/other:1", bytes(in, 20)};
    case 11: return {"/other/clients/" + bytes(in, 20), bytes(in, 20)};
    case 12: return {kPrefix + "clients/" + std::string(520, 'k'), bytes(in, 20)};
    case 13: return {kPrefix + "nodb/" + bytes(in, 20), bytes(in, 20)};
    case 14: return {bytes(in, 60), bytes(in, 60)};
    case 15: return {kPrefix + "tokens/", bytes(in, 20)};  // an empty key
    default: {
      auto [k, v] = record(in, &db);
      const std::string etcd_key = kPrefix + oauth2::db_name(db) + "/" + k;
      auto back = g_client->record(etcd_key);
      if (!back || back->first != db || back->second != k) {
        broken("Etcd::record does not give back a record's database and key");
      }
      return {etcd_key, v};
    }
  }
}

json_t* b64(const std::string& s) {
  return json_string(oauth2::base64_std(s).c_str());
}

// An int64 as the gateway sends it (a string), or as a number.
json_t* int64_json(FuzzedDataProvider& in, int64_t v) {
  if (in.ConsumeIntegralInRange(0, 7) == 0) return json_integer(v);
  return json_string(std::to_string(v).c_str());
}

std::string text(json_t* j) {
  Json owned(j);
  return oauth2::json_text(j, JSON_COMPACT);
}

// ---------------------------------------------------------- a script

// What etcd answers, and the mirror it must make.
struct Script {
  std::vector<std::string> pages;  // the range answers, in order
  bool snapshot_fails = false;
  State after_snapshot;
  std::vector<std::string> messages;  // the watch's, one a line
  std::vector<State> after;           // after[i]: the mirror after messages[0, i)
  size_t stop = 0;                    // where follow stops (messages.size(): at the end)
  bool stop_exact = true;             // false: at a failed batch, so some i <= stop
};

bool g_skip_max_revision;  // below

// A revision at or near base, or any int64 (below INT64_MAX with
// FUZZ_SYNC_SKIP_MAX_REVISION).
int64_t revision(FuzzedDataProvider& in, int64_t base) {
  int64_t r;
  if (in.ConsumeIntegralInRange(0, 15) == 15) {
    r = in.ConsumeIntegral<int64_t>();
  } else {
    const int64_t d = in.ConsumeIntegralInRange<int64_t>(0, 22);
    r = add(base, d <= 20 ? d : 20 - d);
  }
  return g_skip_max_revision ? std::min(r, INT64_MAX - 1) : r;
}

// whether etcd_int takes a revision: etcd's are below 2^62 (one a
// nanosecond would take 146 years to get there), and never negative
bool possible(int64_t r) {
  return r >= 0 && r <= (int64_t{1} << 62);
}

json_t* header(FuzzedDataProvider& in, int64_t rev, const std::string& cluster) {
  json_t* h = json_object();
  json_object_set_new(h, "revision", int64_json(in, rev));
  if (!cluster.empty()) json_object_set_new(h, "cluster_id", json_string(cluster.c_str()));
  return h;
}

const char* const kClusters[] = {"7", "14841639068965178418", ""};

void make_snapshot(FuzzedDataProvider& in, const std::string& beat, Script& s) {
  State m;  // the model: reset, then every record of the pages read
  int64_t rev = 0;
  const size_t pages = in.ConsumeIntegralInRange(1, 3);
  bool done = false;
  for (size_t p = 0; p < pages; p++) {
    const int64_t page_rev = in.ConsumeBool() ? 0 : revision(in, 10);
    const std::string cluster = kClusters[in.ConsumeIntegralInRange(0, 2)];
    Json page(json_object());
    json_object_set_new(page.get(), "header", header(in, page_rev, cluster));
    json_t* kvs = json_array();
    json_object_set_new(page.get(), "kvs", kvs);
    std::string last;
    const size_t n = (in.ConsumeIntegralInRange(0, 4) + 1) % 5;
    for (size_t i = 0; i < n; i++) {
      auto [k, v] = key_value(in, beat);
      json_t* kv = json_object();
      if (!k.empty() && in.ConsumeIntegralInRange(0, 31) == 31) {
        json_object_set_new(kv, "key", json_string("!not base64!"));
        if (!done) s.snapshot_fails = true;
      } else {
        if (!k.empty()) json_object_set_new(kv, "key", b64(k));
        if (!v.empty()) json_object_set_new(kv, "value", b64(v));
        if (!done) model_put(m, k, &v);
      }
      json_object_set_new(kv, "mod_revision", int64_json(in, 2));
      json_array_append_new(kvs, kv);
      last = k;
    }
    const bool more = in.ConsumeBool();
    if (more) json_object_set_new(page.get(), "more", json_true());
    s.pages.push_back(oauth2::json_text(page.get(), JSON_COMPACT));
    if (done) continue;
    if (!rev && !possible(page_rev)) {  // the snapshot stops at it
      s.snapshot_fails = true;
      done = true;
      continue;
    }
    if (!rev) {  // the first page with a revision names it, and the cluster
      rev = page_rev;
      m.cluster_id = cluster;
    }
    if (!more || last.empty()) done = true;
  }
  if (!done) s.snapshot_fails = true;  // it asks for a page there is not
  m.revision = rev;
  s.after_snapshot = m;
}

// One watch message (its line), applied to the model; false when follow
// stops at it (*exact: it stops there exactly, not at a batch before).
bool make_message(FuzzedDataProvider& in, const std::string& beat, State& m, std::string* line,
                  bool* exact) {
  Json msg(json_object());
  json_t* result = json_object();
  json_object_set_new(msg.get(), "result", result);
  const int kind = in.ConsumeIntegralInRange(0, 31);
  const bool other_cluster = kind == 20 && !m.cluster_id.empty();
  json_object_set_new(result, "header",
                      header(in, revision(in, m.revision), other_cluster ? "99" : m.cluster_id));
  if (kind == 21) json_object_set_new(result, "created", json_true());
  if (kind == 22 || kind == 23) {
    json_object_set_new(result, "canceled", json_true());
    if (kind == 22) json_object_set_new(result, "compact_revision", json_string("3"));
    *line = text(msg.release());
    *exact = kind == 22;  // compacted: what came before it is applied
    return false;
  }
  if (kind == 24) {
    *line = R"({"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader"}})";
    *exact = false;
    return false;
  }
  if (kind == 25) {
    *line = R"({"no":"result"})";
    *exact = false;
    return false;
  }
  bool ok = !other_cluster;
  State next = m;
  json_t* events = json_array();
  json_object_set_new(result, "events", events);
  const size_t n = kind == 21 ? 0 : in.ConsumeIntegralInRange(1, 4);
  for (size_t i = 0; i < n; i++) {
    const bool del = in.ConsumeIntegralInRange(0, 3) == 3;
    auto [k, v] = key_value(in, beat);
    const int64_t mod = revision(in, add(m.revision, 1));
    json_t* ev = json_object();
    if (del) json_object_set_new(ev, "type", json_string("DELETE"));
    json_t* kv = json_object();
    json_object_set_new(ev, "kv", kv);
    if (kind == 26 && i == n - 1) {
      json_object_set_new(kv, "key", json_string("=bad="));
      ok = false;
    } else if (!k.empty()) {
      json_object_set_new(kv, "key", b64(k));
    }
    if (!del && !v.empty()) json_object_set_new(kv, "value", b64(v));
    json_object_set_new(kv, "mod_revision", int64_json(in, mod));
    json_array_append_new(events, ev);
    if (!possible(mod)) ok = false;  // the batch that holds it fails
    next.revision = std::max(next.revision, mod);
    if (k == beat && !del) continue;  // the heartbeat: freshness only
    model_put(next, k, del ? nullptr : &v);
  }
  *line = text(msg.release());
  if (!ok) {
    *exact = false;
    return false;
  }
  m = next;
  return true;
}

Script structured(FuzzedDataProvider& in, const std::string& beat, const State& base) {
  Script s;
  if (in.ConsumeIntegralInRange(0, 3) != 3) {
    make_snapshot(in, beat, s);
  } else {
    s.after_snapshot = base;  // no snapshot: the watch goes on from base
  }
  State m = s.snapshot_fails ? base : s.after_snapshot;
  s.after.push_back(m);
  const size_t n = (in.ConsumeIntegralInRange(0, 6) + 1) % 7;
  s.stop = n;
  for (size_t i = 0; i < n; i++) {
    std::string line;
    bool exact = true;
    const bool go_on = make_message(in, beat, m, &line, &exact);
    s.messages.push_back(line);
    if (!go_on && s.stop == n) {
      s.stop = i;
      s.stop_exact = exact;
    }
    if (s.stop == n) s.after.push_back(m);
  }
  // an error line after a cancel, in the same chunk as the cancel, ends
  // the watch before the chunk's messages are applied (the watch is then
  // taken again from the revision applied)
  for (size_t i = s.stop + 1; i < n && s.stop_exact; i++) {
    if (s.messages[i].rfind("{\"error\"", 0) == 0) s.stop_exact = false;
  }
  return s;
}

// The stream: the lines, cut into chunks where the input says (a line
// may come in pieces; several may come together).
std::vector<std::string> chunks(FuzzedDataProvider& in, const std::string& stream) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < stream.size()) {
    size_t n = in.remaining_bytes() ? in.ConsumeIntegralInRange<size_t>(1, stream.size() - at)
                                    : stream.size() - at;
    out.push_back(stream.substr(at, n));
    at += n;
  }
  return out;
}

// ---------------------------------------------------------- checks

// What nginx's workers and the daemon read of each mirrored record: it
// decodes, or the store says it is corrupt (a 503), nothing else.
void read_back(const State& s) {
  oauth2::Txn t = g_store->read();
  for (const auto& [k, v] : s.records) {
    const std::string& key = k.second;
    const size_t len = static_cast<unsigned char>(key[0]);
    if (key.size() < 1 + len) continue;
    const std::string r = key.substr(1, len);
    const std::string rest = key.substr(1 + len);
    if (!oauth2::valid_realm(r)) continue;  // no reader builds such a key
    try {
      switch (static_cast<Db>(k.first)) {
        case Db::kClients:
          t.get_client(r, rest);
          t.client_enabled(r, rest);
          t.list_clients(r);
          if (oauth2::valid_client_id(rest)) {
            t.client_tokens_of_type(r, rest, oauth2::TokenType::kAccess);
          }
          break;
        case Db::kTokens: {
          std::string_view tr;
          oauth2::TokenId id;
          if (records::split_token_key(key, &tr, &id)) t.get_token(tr, id);
          break;
        }
        case Db::kUsers:
        case Db::kAccountLocks:
          if (rest.size() == 8) {
            const uint64_t id = records::get_u64_be(rest.data());
            t.get_user(r, id);
            t.active_username(r, id);
            t.get_account_lock(r, id);
          }
          break;
        case Db::kUsernames: t.get_user_by_username(r, rest); break;
        case Db::kEmails:
          if (!rest.empty()) {
            t.users_by_email(r, rest.substr(1, static_cast<unsigned char>(rest[0])), 4);
          }
          break;
        default: break;
      }
    } catch (const StoreError&) {
      // a corrupt record: a 503, as a damaged store gets
    } catch (const std::exception& e) {
      broken("reading a mirrored record threw",
             std::string(oauth2::db_name(Db(k.first))) + ": " + e.what());
    }
  }
}

// snapshot() or follow(): EtcdError (sync_run tries again), else broken
template <typename F>
bool run(const char* what, F&& f) {
  try {
    f();
    return true;
  } catch (const EtcdError&) {
    return false;
  } catch (const std::exception& e) {
    broken(what, std::string("an exception sync_run does not catch: ") + e.what());
  }
}

// FUZZ_SYNC_SKIP_MAX_REVISION=1: no revision of INT64_MAX in the
// structured inputs, and a mirror at INT64_MAX (a raw input's doing) is
// not followed: Mirror::follow's applied_ + 1 overflows there (a finding
// of this harness), and a run goes on past it to others

void follow_and_check(oauth2::admin::Mirror& mirror, const State& before) {
  const int64_t from = mirror.applied();
  if (g_skip_max_revision && from == INT64_MAX) {
    if (g_stats) g_stats->skipped_max++;
    return;
  }
  g_etcd->watches();
  run("follow", [&] { mirror.follow(); });
  for (const std::string& body : g_etcd->watches()) {
    Json j(json_loads(body.c_str(), 0, nullptr));
    const char* start = json_string_value(
        json_object_get(json_object_get(j.get(), "create_request"), "start_revision"));
    if (!start || std::string(start) != std::to_string(add(from, 1))) {
      broken("a watch that does not start after the revision applied", start ? start : "none");
    }
  }
  const State after = read_state();
  if (after.revision < before.revision || mirror.applied() != after.revision) {
    broken("the mirror's revision went back, or is not the one applied");
  }
}

void baseline(oauth2::admin::Mirror& mirror) {
  g_etcd->serve({R"({"header":{"revision":"1","cluster_id":"7"}})"}, {});
  if (!run("baseline", [&] { mirror.snapshot(); })) die("the baseline snapshot failed");
}

using MirrorPtr = std::unique_ptr<oauth2::admin::Mirror>;

MirrorPtr new_mirror() {
  return std::make_unique<oauth2::admin::Mirror>(*g_store, *g_client);
}

void run_structured(FuzzedDataProvider& in) {
  MirrorPtr mirror = new_mirror();
  baseline(*mirror);
  const State base = read_state();
  Script s = structured(in, mirror->heartbeat_key(), base);
  std::string stream;
  for (const std::string& line : s.messages) stream += line + '\n';
  if (!s.pages.empty()) {
    g_etcd->serve(s.pages, {});
    const bool ok = run("snapshot", [&] { mirror->snapshot(); });
    if (g_stats) (ok ? g_stats->snapshots_ok : g_stats->snapshots_failed)++;
    if (ok == s.snapshot_fails) {
      broken(ok ? "a snapshot the model fails succeeded" : "a snapshot the model takes failed");
    }
    const State got = read_state();
    if (!ok && !(got == base)) broken("a failed snapshot changed the mirror", describe(got));
    if (ok && !(got == s.after_snapshot)) {
      broken("the snapshot is not its pages",
             describe(got) + " | model " + describe(s.after_snapshot));
    }
    // sync_run follows only after a snapshot that succeeded (a failed one
    // leaves its Mirror half set, and is taken again): the daemon resumes
    if (!ok) mirror = new_mirror();
  }
  const State start = read_state();
  g_etcd->serve({}, chunks(in, stream));
  follow_and_check(*mirror, start);
  const State got = read_state();
  bool match = false;
  if (s.stop_exact) {
    match = got == s.after[s.stop];
  } else {
    for (size_t i = 0; i <= s.stop && !match; i++) match = got == s.after[i];
  }
  if (g_stats) {
    g_stats->structured++;
    (s.stop == s.messages.size() ? g_stats->watches_whole : g_stats->watches_stopped)++;
    g_stats->records += got.records.size();
  }
  if (!match) {
    broken("the mirror is not its watch's messages",
           describe(got) + " | model " + describe(s.after[s.stop]));
  }
  // once more, from where it is (a stream that ends at once)
  if (got.revision != start.revision) follow_and_check(*mirror, got);
  read_back(read_state());
}

void run_raw(FuzzedDataProvider& in) {
  MirrorPtr mirror = new_mirror();
  baseline(*mirror);
  const State base = read_state();
  std::vector<std::string> pages(in.ConsumeIntegralInRange(0, 3));
  for (auto& p : pages) p = in.ConsumeRandomLengthString(2048);
  if (!pages.empty()) {
    g_etcd->serve(pages, {});
    if (!run("snapshot", [&] { mirror->snapshot(); })) {
      if (!(read_state() == base)) broken("a failed snapshot changed the mirror");
      mirror = new_mirror();
    }
  }
  if (g_stats) g_stats->raw++;
  const State start = read_state();
  g_etcd->serve({}, chunks(in, in.ConsumeRemainingBytesAsString()));
  follow_and_check(*mirror, start);
  const State got = read_state();
  if (got.revision != start.revision) follow_and_check(*mirror, got);
  read_back(read_state());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* dir = std::getenv("FUZZ_SYNC_STORE");
  if (!dir || !*dir) die("FUZZ_SYNC_STORE names no directory (run scripts/fuzz-sync)");
  g_etcd = new FakeEtcd;
  oauth2::EtcdConfig config;
  config.endpoints = {"http://127.0.0.1:" + std::to_string(g_etcd->port())};
  config.prefix = kPrefix;
  g_client = new oauth2::Etcd(config);
  g_store = new Store(dir, size_t(1) << 30);
  const char* skip = std::getenv("FUZZ_SYNC_SKIP_MAX_REVISION");
  g_skip_max_revision = skip && *skip == '1';
  if (fuzz::stats_wanted(print_stats)) g_stats = new Stats;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  if (in.ConsumeIntegralInRange(0, 7) == 7) {
    run_raw(in);
  } else {
    run_structured(in);
  }
  g_etcd->settle();
  return 0;
}
