// libFuzzer harness for the edge's writes in cluster mode
// (src/core/cluster.cpp): what Cluster::commit, its group commit and
// Cluster::confirm_in_doubt make of etcd's answers to their Txns when
// etcd, or what stands between, is hostile.  The harness is etcd: two
// loopback members in this process share one key-value model, evaluate
// each Txn's compares as etcd does (nested Txns' all before any write)
// and apply it, and a sync of the harness's own writes the model into
// the edge's mirror (an LMDB store on /dev/shm) a moment later, as
// `oauth2-admin sync` would.  What each Txn gets back is the input's
// choice, in the order the Txns come:
//   - the honest answer, in etcd's gateway's form or another JSON form
//     of it (integers for strings, fields etcd does not send);
//   - applied, or not, then the connection dropped or the answer cut
//     short (in doubt);
//   - not applied (or, for "leader changed" and "request timed out",
//     perhaps applied): an error of etcd's, with its HTTP status;
//   - applied or not, then an answer whose fields are hostile:
//     revisions of INT64_MAX, negative, absent, not numbers; succeeded
//     as a string; responses fewer or more than the Txn's operations, not
//     an array, huge; a body that is no object, or 200 with an error;
//   - another edge's write before the Txn is evaluated, so that its
//     compares (a record read, a guarded range) fail and the change is
//     decided again;
//   - a Txn of more operations than etcd's --max-txn-ops (128) refused
//     as etcd refuses it, so that a batch goes again in halves.
// The edge runs one to four changes at once (Store::change, each in a
// thread: a leader's batch carries those that came while its Txn was in
// flight).  Each change counts: it reads a record every change reads and
// may guard a range, then adds one to a counter of its own (and may put
// many records more).  Every answer the harness did not script is the
// honest one.  Beyond "no crash" (ASan, UBSan), it aborts when:
//   - a change is answered as done that etcd did not apply;
//   - etcd applied a change's counter twice (a change applied, then
//     taken for not applied and decided again);
//   - a change answered as done is not in the edge's mirror when it is
//     answered (read your writes);
//   - Store::change throws anything but StoreError (the endpoints turn
//     that into a 503);
//   - a change takes longer than the answers scripted can explain, or
//     the edge sends more Txns than they can (a retry without end).
// Build and run with scripts/fuzz-cluster.

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
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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

#include "cluster.hpp"
#include "etcd.hpp"
#include "json.hpp"
#include "store.hpp"
#define FUZZ_HARNESS "fuzz-cluster"
#include "fuzz-harness.hpp"

namespace {

using oauth2::Db;
using oauth2::Json;
using oauth2::Store;
using oauth2::StoreError;
using Clock = std::chrono::steady_clock;

using fuzz::broken;
using fuzz::die;
using fuzz::send_all;

const std::string kPrefix = "/oauth2/";
const std::string kShared = "fuzz/shared";   // every change reads it
const std::string kGuard = "fuzz/guard/";    // some changes guard it
const std::string kCounter = "fuzz/count/";  // + the change's number
const std::string kMore = "fuzz/more/";      // + number + "/" + i
constexpr int64_t kStartRevision = 100;
constexpr size_t kMaxTxnOps = 128;  // etcd's default --max-txn-ops
constexpr size_t kMaxScript = 24;

// What etcd does with one Txn, and what it answers.
enum class Mode {
  kHonest,     // the gateway's answer
  kOtherForm,  // the same, in another JSON form of it
  kDrop,       // no answer: the connection closed
  kCut,        // an answer cut short
  kError,      // an error of etcd's
  kHostile,    // a hostile field
};

struct Answer {
  Mode mode = Mode::kHonest;
  bool apply = true;      // kDrop, kCut, kError, kHostile: applied first
  int variant = 0;        // which error, form, or hostile field
  bool conflict = false;  // another edge writes first
  bool guard = false;     // that write in the guarded range, else kShared
};

// FUZZ_STATS=1: what the inputs reached, printed at exit
struct Stats {
  unsigned long inputs = 0, txns = 0, applied = 0, batches = 0, confirms = 0, too_large = 0;
  unsigned long conflicts = 0, modes[6] = {};
  unsigned long ok = 0, failed = 0, failed_applied = 0, max_ms = 0;
};
Stats* g_stats;
bool g_trace;  // FUZZ_CLUSTER_TRACE=1: each Txn and its answer on stderr

void print_stats() {
  const Stats& s = *g_stats;
  std::fprintf(stderr,
               "fuzz-cluster: %lu inputs, %lu Txns (%lu applied, %lu batches, %lu confirmations, "
               "%lu too large, %lu after another edge's write); answers: %lu honest, %lu "
               "other forms, %lu dropped, %lu cut, %lu errors, %lu hostile; changes: %lu done, "
               "%lu failed (%lu of them applied); slowest change %lu ms\n",
               s.inputs, s.txns, s.applied, s.batches, s.confirms, s.too_large, s.conflicts,
               s.modes[0], s.modes[1], s.modes[2], s.modes[3], s.modes[4], s.modes[5], s.ok,
               s.failed, s.failed_applied, s.max_ms);
}

std::string b64d(const json_t* j) {
  const char* s = json_string_value(j);
  auto v = s ? oauth2::unbase64_std(s) : std::nullopt;
  if (!v) broken("the edge sent what is not base64", s ? s : "(none)");
  return *v;
}

// ---------------------------------------------------------- etcd's model

struct Kv {
  std::string value;
  int64_t mod = 0;
};

class Model {
 public:
  std::map<std::string, Kv> kvs;
  int64_t revision = kStartRevision;
  std::map<int, int> counted;  // a change's number: the puts of its counter

  void reset() {
    kvs.clear();
    counted.clear();
    revision = kStartRevision;
    kvs[kPrefix + "meta/" + kShared] = {"s0", revision};
  }

  bool holds(const json_t* c) const {
    const std::string key = b64d(json_object_get(c, "key"));
    const char* target = json_string_value(json_object_get(c, "target"));
    const char* result = json_string_value(json_object_get(c, "result"));
    if (!target || !result) broken("a compare without target or result");
    const json_t* end = json_object_get(c, "range_end");
    if (std::strcmp(target, "MOD") == 0) {
      if (std::strcmp(result, "LESS") != 0 || !end) broken("a MOD compare the edge never makes");
      const std::string e = b64d(end);
      const int64_t below =
          std::strtoll(json_string_value(json_object_get(c, "mod_revision")) ?: "0", nullptr, 10);
      for (auto it = kvs.lower_bound(key); it != kvs.end() && it->first < e; ++it) {
        if (it->second.mod >= below) return false;
      }
      return true;
    }
    if (end || std::strcmp(result, "EQUAL") != 0) broken("a compare the edge never makes");
    auto it = kvs.find(key);
    if (std::strcmp(target, "VERSION") == 0) {
      // the edge compares a version only with 0: absent
      return it == kvs.end();
    }
    if (std::strcmp(target, "VALUE") != 0) broken("a compare of an unknown target", target);
    return it != kvs.end() && it->second.value == b64d(json_object_get(c, "value"));
  }

  bool all(const json_t* compares) const {
    for (size_t i = 0; i < json_array_size(compares); i++) {
      if (!holds(json_array_get(compares, i))) return false;
    }
    return true;
  }
};

// Counts the operations of a Txn (nested ones' included), as etcd does
// for --max-txn-ops.
size_t operations(const json_t* txn) {
  const json_t* ops = json_object_get(txn, "success");
  size_t n = json_array_size(ops);
  for (size_t i = 0; i < json_array_size(ops); i++) {
    const json_t* t = json_object_get(json_array_get(ops, i), "request_txn");
    if (t) n += operations(t);
  }
  return n;
}

// ---------------------------------------------------------- the edge's mirror

// The harness's sync: writes the model into the mirror lag_us after etcd
// changed it (everything in one LMDB transaction, at the model's
// revision, as a snapshot would).
class Sync {
 public:
  void start(Store* store) {
    store_ = store;
    std::thread([this] { run(); }).detach();
  }
  void changed(const Model& m, long lag_us) {
    std::lock_guard<std::mutex> lk(m_);
    kvs_ = m.kvs;
    revision_ = m.revision;
    at_ = Clock::now() + std::chrono::microseconds(lag_us);
    pending_ = true;
    cv_.notify_all();
  }
  // waits until the mirror holds the last change
  void settle() {
    std::unique_lock<std::mutex> lk(m_);
    cv_.wait(lk, [this] { return !pending_ && !writing_; });
  }
  // the mirror as etcd's model is now, at once
  void write_now(const Model& m) {
    changed(m, 0);
    settle();
  }

 private:
  void run() {
    std::unique_lock<std::mutex> lk(m_);
    for (;;) {
      cv_.wait(lk, [this] { return pending_; });
      if (Clock::now() < at_) {
        cv_.wait_until(lk, at_);
        continue;
      }
      auto kvs = kvs_;
      const int64_t revision = revision_;
      pending_ = false;
      writing_ = true;
      lk.unlock();
      write(kvs, revision);
      lk.lock();
      writing_ = false;
      cv_.notify_all();
    }
  }
  void write(const std::map<std::string, Kv>& kvs, int64_t revision) {
    oauth2::MirrorWriter w(*store_);
    w.reset();
    const std::string meta = kPrefix + "meta/";
    for (const auto& [k, kv] : kvs) {
      if (k.compare(0, meta.size(), meta) != 0) broken("etcd holds a key the edge never writes", k);
      w.put(Db::kMeta, k.substr(meta.size()), kv.value);
    }
    w.set_revision(revision, oauth2::mirror_of(kPrefix), "7");
    w.set_fresh(oauth2::now_ms());
    w.commit();
  }

  Store* store_ = nullptr;
  std::mutex m_;
  std::condition_variable cv_;
  std::map<std::string, Kv> kvs_;
  int64_t revision_ = 0;
  Clock::time_point at_;
  bool pending_ = false, writing_ = false;
};

// ---------------------------------------------------------- a fake etcd

std::string header_json(int64_t revision) {
  return "{\"cluster_id\":\"7\",\"member_id\":\"3\",\"revision\":\"" + std::to_string(revision) +
         "\",\"raft_term\":\"2\"}";
}

// The gateway's errors: HTTP status, body, and whether etcd may have
// applied the Txn before it (proposed, then lost sight of).
struct EtcdErrorAnswer {
  int status;
  const char* body;
  bool may_apply;
};
const EtcdErrorAnswer kErrors[] = {
    {503, R"({"error":"etcdserver: no leader","message":"etcdserver: no leader","code":14})",
     false},
    {503,
     R"({"error":"etcdserver: leader changed","message":"etcdserver: leader changed","code":14})",
     true},
    {503,
     R"({"error":"etcdserver: request timed out","message":"etcdserver: request timed out",)"
     R"("code":14})",
     true},
    {400,
     R"({"error":"etcdserver: too many operations in txn request","message":"etcdserver: too )"
     R"(many operations in txn request","code":3})",
     false},
    {413, R"({"error":"etcdserver: request is too large","code":3})", false},
    {403, R"({"error":"etcdserver: permission denied","code":7})", false},
    {429, R"({"error":"etcdserver: too many requests","code":14})", false},
    {500, "<html>internal error</html>", false},
    {404, "", false},
    {200, R"({"error":"etcdserver: no leader","code":14})", false},
};
constexpr int kErrorCount = static_cast<int>(sizeof(kErrors) / sizeof(kErrors[0]));
constexpr int kHostileCount = 20;
constexpr int kFormCount = 4;

class FakeEtcd {
 public:
  FakeEtcd() {
    for (int i = 0; i < 2; i++) {
      const int fd = fuzz::listen_loopback(16, &ports_[i]);
      std::thread([this, fd] { accept_loop(fd); }).detach();
    }
  }
  std::vector<std::string> urls() const {
    return {"http://127.0.0.1:" + std::to_string(ports_[0]),
            "http://127.0.0.1:" + std::to_string(ports_[1])};
  }

  // a new input: the model reset, the mirror with it, the answers given
  void start(std::vector<Answer> script, long lag_us, int hold_first_for) {
    std::lock_guard<std::mutex> lk(m_);
    model_.reset();
    sync_.write_now(model_);
    script_.assign(script.begin(), script.end());
    scripted_ = script_.size();
    lag_us_ = lag_us;
    hold_first_for_ = hold_first_for;
    txns_ = 0;
    unscripted_ = 0;
    started_ = 0;
  }
  // an op thread is about to commit
  void op_started() {
    std::lock_guard<std::mutex> lk(m_);
    started_++;
    cv_.notify_all();
  }
  void settle() {
    while (busy_.load() != 0) std::this_thread::yield();
    sync_.settle();
  }
  Model model() {
    std::lock_guard<std::mutex> lk(m_);
    return model_;
  }
  size_t txns() {
    std::lock_guard<std::mutex> lk(m_);
    return txns_;
  }
  size_t unscripted() {
    std::lock_guard<std::mutex> lk(m_);
    return unscripted_;
  }
  Sync& sync() { return sync_; }

 private:
  void accept_loop(int fd) {
    for (;;) {
      int c = fuzz::accept_peer(fd);
      if (c < 0) continue;
      std::thread([this, c] {
        connection(c);
        close(c);
      }).detach();
    }
  }

  // what to send: the response's bytes, or nothing (close)
  struct Reply {
    bool close = false;
    std::string bytes;
  };

  static Reply http(int status, const std::string& body) {
    return {false, fuzz::http_response(status, body)};
  }

  void connection(int fd) {
    std::string buf;
    for (;;) {
      std::optional<fuzz::Busy> busy;
      fuzz::Request rq;
      if (!fuzz::next_request(fd, buf, &rq, [&] { busy.emplace(busy_); })) return;
      Reply r = answer(rq.path, rq.body);
      if (r.close) {
        if (!r.bytes.empty()) send_all(fd, r.bytes);
        return;
      }
      if (!send_all(fd, r.bytes)) return;
    }
  }

  Reply answer(const std::string& path, const std::string& body) {
    std::unique_lock<std::mutex> lk(m_);
    if (path != "/v3/kv/txn") {
      return http(200, "{\"header\":" + header_json(model_.revision) + "}");
    }
    Json req(json_loadb(body.data(), body.size(), 0, nullptr));
    if (!req) broken("the edge sent a Txn that is not JSON", body);
    if (txns_++ == 0 && hold_first_for_ > 1) {
      // the first Txn waits for the other changes to queue behind it
      cv_.wait_for(lk, std::chrono::milliseconds(200),
                   [this] { return started_ >= hold_first_for_; });
      lk.unlock();
      std::this_thread::sleep_for(std::chrono::milliseconds(3));
      lk.lock();
    }
    Answer a;
    if (!script_.empty()) {
      a = script_.front();
      script_.pop_front();
    } else {
      unscripted_++;
    }
    if (g_stats) {
      g_stats->txns++;
      g_stats->modes[static_cast<int>(a.mode)]++;
    }
    if (a.conflict) {  // another edge, first
      const std::string k = kPrefix + "meta/" + (a.guard ? kGuard + "x" : kShared);
      model_.revision++;
      model_.kvs[k] = {"other@" + std::to_string(model_.revision), model_.revision};
      if (g_stats) g_stats->conflicts++;
    }
    const json_t* success = json_object_get(req.get(), "success");
    size_t nested = 0;
    bool confirm = false;
    for (size_t i = 0; i < json_array_size(success); i++) {
      const json_t* t = json_object_get(json_array_get(success, i), "request_txn");
      if (t) {
        nested++;
        confirm = confirm || json_array_size(json_object_get(t, "success")) == 0;
      }
    }
    if (g_stats) {
      if (confirm) g_stats->confirms++;
      if (nested > 1 && !confirm) g_stats->batches++;
    }
    bool applies = a.apply;
    if (a.mode == Mode::kError) applies = applies && kErrors[a.variant].may_apply;
    if (operations(req.get()) > kMaxTxnOps) {  // refused before it is proposed
      if (g_stats) g_stats->too_large++;
      if (a.conflict) sync_.changed(model_, lag_us_);
      return http(400, kErrors[3].body);
    }
    // etcd's evaluation: the outer compares, then every nested Txn's,
    // before any write
    const bool outer = model_.all(json_object_get(req.get(), "compare"));
    std::vector<bool> inner(json_array_size(success), false);
    for (size_t i = 0; outer && i < inner.size(); i++) {
      const json_t* t = json_object_get(json_array_get(success, i), "request_txn");
      if (t) inner[i] = model_.all(json_object_get(t, "compare"));
    }
    const int64_t before = model_.revision;
    Model next = model_;
    bool wrote = false;
    auto apply_ops = [&](const json_t* ops) {
      for (size_t i = 0; i < json_array_size(ops); i++) {
        const json_t* op = json_array_get(ops, i);
        if (const json_t* p = json_object_get(op, "request_put")) {
          const std::string k = b64d(json_object_get(p, "key"));
          next.kvs[k] = {b64d(json_object_get(p, "value")), before + 1};
          wrote = true;
          const std::string counter = kPrefix + "meta/" + kCounter;
          if (k.compare(0, counter.size(), counter) == 0) {
            next.counted[std::atoi(k.c_str() + counter.size())]++;
          }
        } else if (const json_t* d = json_object_get(op, "request_delete_range")) {
          wrote = next.kvs.erase(b64d(json_object_get(d, "key"))) || wrote;
        } else if (!json_object_get(op, "request_txn")) {
          broken("an operation the edge never sends", oauth2::json_text(op));
        }
      }
    };
    if (outer) {
      apply_ops(success);
      for (size_t i = 0; i < inner.size(); i++) {
        const json_t* t = json_object_get(json_array_get(success, i), "request_txn");
        if (t && inner[i]) apply_ops(json_object_get(t, "success"));
      }
    }
    if (wrote) next.revision = before + 1;
    if (applies && wrote) {
      model_ = std::move(next);
      if (g_stats) g_stats->applied++;
      for (const auto& [n, puts] : model_.counted) {
        if (puts > 1) broken("etcd applied a change's counter twice", std::to_string(n));
      }
    }
    if (g_trace) {
      std::fprintf(stderr,
                   "fuzz-cluster: Txn %zu: %zu nested%s, compares %s; answer mode %d variant %d "
                   "apply %d conflict %d: %s, revision %lld\n",
                   txns_, nested, confirm ? " (a confirmation)" : "", outer ? "hold" : "fail",
                   static_cast<int>(a.mode), a.variant, a.apply, a.conflict,
                   applies && wrote ? "written"
                   : applies        ? "nothing written"
                                    : "not applied",
                   static_cast<long long>(model_.revision));
    }
    // the honest answer, as the gateway writes it (proto3: false, 0 and
    // empty left out)
    // what etcd answers of what it did: of a Txn not applied, as if its
    // compares had failed (no answer claims what etcd did not do)
    if (!applies) inner.assign(inner.size(), false);
    const std::string whole = honest(success, applies && outer, inner);
    std::string text = whole;
    switch (a.mode) {
      case Mode::kHonest: break;
      case Mode::kOtherForm: text = other_form(text, a.variant); break;
      case Mode::kDrop: text.clear(); break;
      case Mode::kCut: text = text.substr(0, text.size() * a.variant / 8); break;
      case Mode::kError: break;
      case Mode::kHostile: text = hostile(text, a.variant); break;
    }
    if ((applies && wrote) || a.conflict) sync_.changed(model_, lag_us_);
    switch (a.mode) {
      case Mode::kDrop: return Reply{true, ""};
      case Mode::kCut: {
        // Content-Length of the whole, then the connection closes
        Reply r = http(200, whole);
        r.bytes.resize(r.bytes.size() - (whole.size() - text.size()));
        r.close = true;
        return r;
      }
      case Mode::kError: return http(kErrors[a.variant].status, kErrors[a.variant].body);
      case Mode::kHostile:
        if (a.variant == 19) return http(500, text);  // an honest body, another status
        return http(200, text);
      default: return http(200, text);
    }
  }

  std::string honest(const json_t* success, bool outer, const std::vector<bool>& inner) {
    const int64_t rev = model_.revision;
    std::string out = "{\"header\":" + header_json(rev);
    if (outer) {
      out += ",\"succeeded\":true,\"responses\":[";
      for (size_t i = 0; i < json_array_size(success); i++) {
        const json_t* op = json_array_get(success, i);
        if (i) out += ",";
        if (json_object_get(op, "request_put")) {
          out += "{\"response_put\":{\"header\":{\"revision\":\"" + std::to_string(rev) + "\"}}}";
        } else if (json_object_get(op, "request_delete_range")) {
          out += "{\"response_delete_range\":{\"header\":{\"revision\":\"" + std::to_string(rev) +
                 "\"},\"deleted\":\"1\"}}";
        } else {
          const json_t* t = json_object_get(op, "request_txn");
          out += "{\"response_txn\":{\"header\":{\"revision\":\"" + std::to_string(rev) + "\"}";
          if (inner[i]) {
            out += ",\"succeeded\":true,\"responses\":[";
            for (size_t j = 0; j < json_array_size(json_object_get(t, "success")); j++) {
              out += std::string(j ? "," : "") + "{\"response_put\":{\"header\":{}}}";
            }
            out += "]";
          }
          out += "}}";
        }
      }
      out += "]";
    }
    return out + "}";
  }

  // the same answer in another JSON form etcd does not use
  static std::string other_form(const std::string& text, int variant) {
    Json j(json_loads(text.c_str(), 0, nullptr));
    json_t* h = json_object_get(j.get(), "header");
    switch (variant) {
      case 0:  // numbers as numbers
        json_object_set_new(h, "revision",
                            json_integer(std::strtoll(
                                json_string_value(json_object_get(h, "revision")), nullptr, 10)));
        break;
      case 1:  // false said
        if (!json_object_get(j.get(), "succeeded")) {
          json_object_set_new(j.get(), "succeeded", json_false());
        }
        break;
      case 2:  // fields etcd may add one day
        json_object_set_new(j.get(), "x_future", json_string("\xc3\xa9t\xc3\xa9"));
        json_object_set_new(h, "x_term", json_integer(-1));
        break;
      default:  // the keys in another order
        return oauth2::json_text(j.get(), JSON_COMPACT | JSON_SORT_KEYS);
    }
    return oauth2::json_text(j.get(), JSON_COMPACT);
  }

  // the answer with one field made hostile
  static std::string hostile(const std::string& text, int variant) {
    Json j(json_loads(text.c_str(), 0, nullptr));
    json_t* root = j.get();
    json_t* h = json_object_get(root, "header");
    json_t* responses = json_object_get(root, "responses");
    switch (variant) {
      case 0: json_object_set_new(h, "revision", json_string("9223372036854775807")); break;
      case 1: json_object_set_new(h, "revision", json_string("-5")); break;
      case 2: json_object_del(h, "revision"); break;
      case 3: json_object_del(root, "header"); break;
      case 4: json_object_set_new(h, "revision", json_string("12abc")); break;
      case 5: json_object_set_new(h, "revision", json_real(1.5)); break;
      case 6: json_object_set_new(h, "revision", json_string("99999999999999999999")); break;
      case 7: json_object_set_new(h, "revision", json_string("0")); break;
      case 8: json_object_set_new(root, "succeeded", json_string("true")); break;
      case 9: json_object_set_new(root, "succeeded", json_integer(1)); break;
      case 10:  // fewer responses than operations
        if (json_array_size(responses))
          json_array_remove(responses, json_array_size(responses) - 1);
        break;
      case 11: json_object_set_new(root, "responses", json_object()); break;
      case 12:  // many more responses than operations, after them
        for (int i = 0; responses && i < 5000; i++) json_array_append_new(responses, json_object());
        break;
      case 13:  // every nested Txn's answer without its response_txn
        for (size_t i = 0; i < json_array_size(responses); i++) {
          json_t* r = json_array_get(responses, i);
          if (json_object_get(r, "response_txn"))
            json_object_set_new(r, "response_txn", json_null());
        }
        break;
      case 14:  // a nested Txn's succeeded as a string
        for (size_t i = 0; i < json_array_size(responses); i++) {
          json_t* t = json_object_get(json_array_get(responses, i), "response_txn");
          if (json_object_get(t, "succeeded"))
            json_object_set_new(t, "succeeded", json_string("1"));
        }
        break;
      case 15: return "[" + text + "]";
      case 16: return "\"" + std::string(64, 'A') + "!!\"";
      case 17:  // a range's result of keys that are not base64
        if (!responses) {
          responses = json_array();
          json_object_set_new(root, "responses", responses);
        }
        json_array_append_new(responses, json_pack("{s:{s:[{s:s,s:s}]}}", "response_range", "kvs",
                                                   "key", "!not base64!", "value", "%%%"));
        break;
      case 18: return "null";
      default: break;  // 19: the honest body with a status of 500
    }
    return oauth2::json_text(root, JSON_COMPACT);
  }

  uint16_t ports_[2] = {0, 0};
  std::mutex m_;
  std::condition_variable cv_;
  Model model_;
  Sync sync_;
  std::deque<Answer> script_;
  size_t scripted_ = 0;
  long lag_us_ = 0;
  int hold_first_for_ = 0;
  int started_ = 0;
  size_t txns_ = 0, unscripted_ = 0;
  std::atomic<int> busy_{0};
};

FakeEtcd* g_etcd;
Store* g_store;

// ---------------------------------------------------------- the changes

struct Op {
  int number = 0;
  bool guard = false;  // a guarded range read
  size_t more = 0;     // records put besides the counter
  // what came of it
  enum { kDone, kFailed } outcome = kFailed;
  long ms = 0;
  bool mirrored = false;  // the mirror held it when it was answered
  std::string error;
};

void run_op(Op& op) {
  const std::string counter = kCounter + std::to_string(op.number);
  g_etcd->op_started();
  const auto t0 = Clock::now();
  try {
    g_store->change([&](oauth2::Txn& txn) {
      txn.get_meta(kShared);
      if (op.guard) {
        txn.scan(Db::kMeta, kGuard, 0, true,
                 [](std::string_view, std::string_view) { return true; });
      }
      auto n = txn.get_meta(counter);
      const long was = n ? std::atol(n->c_str()) : 0;
      txn.put_meta(counter, std::to_string(was + 1));
      for (size_t i = 0; i < op.more; i++) {
        txn.put_meta(kMore + std::to_string(op.number) + "/" + std::to_string(i), "v");
      }
      txn.commit();
    });
    op.outcome = Op::kDone;
    // read your writes: the mirror has it when it is answered
    op.mirrored = g_store->read().get_meta(counter) == std::optional<std::string>("1");
  } catch (const StoreError& e) {
    op.outcome = Op::kFailed;
    op.error = e.what();
  } catch (const std::exception& e) {
    broken("Store::change threw what is not a StoreError", e.what());
  }
  op.ms = static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count());
}

Answer make_answer(FuzzedDataProvider& in) {
  Answer a;
  const int m = in.ConsumeIntegralInRange(0, 11);
  switch (m) {
    case 0:
    case 1:
    case 2:
    case 3: a.mode = Mode::kHonest; break;
    case 4: a.mode = Mode::kOtherForm; break;
    case 5:
    case 6: a.mode = Mode::kDrop; break;
    case 7: a.mode = Mode::kCut; break;
    case 8:
    case 9: a.mode = Mode::kError; break;
    default: a.mode = Mode::kHostile; break;
  }
  a.apply = in.ConsumeBool();
  switch (a.mode) {
    case Mode::kOtherForm: a.variant = in.ConsumeIntegralInRange(0, kFormCount - 1); break;
    case Mode::kCut: a.variant = in.ConsumeIntegralInRange(0, 7); break;
    case Mode::kError: a.variant = in.ConsumeIntegralInRange(0, kErrorCount - 1); break;
    case Mode::kHostile: a.variant = in.ConsumeIntegralInRange(0, kHostileCount - 1); break;
    default: a.apply = true; break;
  }
  if (a.mode == Mode::kOtherForm) a.apply = true;
  a.conflict = in.ConsumeIntegralInRange(0, 7) == 7;
  a.guard = in.ConsumeBool();
  return a;
}

// How long the answers scripted can make a change take: a call's
// deadline (Cluster::kEtcdTimeoutMs) for each that makes it try again or
// fail, a second's wait for the mirror after each refusal, and a margin.
long time_bound(const std::vector<Answer>& script) {
  long ms = 2000;
  for (const Answer& a : script) {
    if (a.mode != Mode::kHonest && a.mode != Mode::kOtherForm) ms += 3200;
    if (a.conflict) ms += 200;
  }
  return ms;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* dir = std::getenv("FUZZ_CLUSTER_STORE");
  if (!dir || !*dir) die("FUZZ_CLUSTER_STORE names no directory (run scripts/fuzz-cluster)");
  g_etcd = new FakeEtcd;
  g_store = new Store(dir, size_t(1) << 30);
  g_etcd->sync().start(g_store);
  oauth2::EtcdConfig config;
  config.endpoints = g_etcd->urls();
  config.prefix = kPrefix;
  g_store->use_cluster(std::make_shared<oauth2::Cluster>(config, 60000));
  g_trace = std::getenv("FUZZ_CLUSTER_TRACE") != nullptr;
  if (fuzz::stats_wanted(print_stats)) g_stats = new Stats;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  std::vector<Op> ops(in.ConsumeIntegralInRange(1, 4));
  for (size_t i = 0; i < ops.size(); i++) {
    ops[i].number = static_cast<int>(i + 1);
    ops[i].guard = in.ConsumeBool();
    if (in.ConsumeIntegralInRange(0, 7) == 7) ops[i].more = in.ConsumeIntegralInRange(1, 140);
  }
  static const long kLags[] = {0, 200, 2000};
  const long lag = kLags[in.ConsumeIntegralInRange(0, 2)];
  std::vector<Answer> script(in.ConsumeIntegralInRange<size_t>(0, kMaxScript));
  for (Answer& a : script) a = make_answer(in);
  g_etcd->start(script, lag, static_cast<int>(ops.size()));
  std::vector<std::thread> threads;
  for (Op& op : ops) threads.emplace_back([&op] { run_op(op); });
  for (std::thread& t : threads) t.join();
  g_etcd->settle();

  const Model m = g_etcd->model();
  const long bound = time_bound(script);
  for (const Op& op : ops) {
    auto it = m.counted.find(op.number);
    const int applied = it == m.counted.end() ? 0 : it->second;
    if (applied > 1) broken("etcd applied a change twice", std::to_string(op.number));
    if (op.outcome == Op::kDone && applied != 1) {
      broken("a change answered as done that etcd did not apply", std::to_string(op.number));
    }
    if (op.outcome == Op::kDone && !op.mirrored) {
      broken("a change answered as done before the mirror held it", std::to_string(op.number));
    }
    if (op.ms > bound) {
      broken("a change took longer than its answers explain",
             std::to_string(op.ms) + " ms, bound " + std::to_string(bound) + " ms");
    }
    if (g_stats) {
      (op.outcome == Op::kDone ? g_stats->ok : g_stats->failed)++;
      if (op.outcome == Op::kFailed && applied) g_stats->failed_applied++;
      g_stats->max_ms = std::max(g_stats->max_ms, static_cast<unsigned long>(op.ms));
    }
  }
  // once the answers scripted are spent, honest ones end each change in
  // a few Txns: the Txn, a confirmation, a run again after a refusal, and
  // halves of a batch too large
  const size_t most = script.size() * 3 + ops.size() * 12 + 4;
  if (g_etcd->txns() > most) {
    broken("more Txns than the answers explain",
           std::to_string(g_etcd->txns()) + ", at most " + std::to_string(most));
  }
  if (g_stats) g_stats->inputs++;
  return 0;
}
