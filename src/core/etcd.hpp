// etcd (3.4), the cluster's system of record, reached through the JSON
// gateway every member serves (POST /v3/kv/range, /v3/kv/txn, /v3/watch)
// with libcurl: no gRPC stack in nginx's workers, and the gateway is part
// of etcd itself.  Keys and values are bytes, base64 in the JSON.
//
// The store's records live under <prefix><database>/<key>, byte for byte
// as in LMDB (store_records.hpp makes the keys); <prefix>heartbeat/<edge>
// are the sync daemons' heartbeats (cluster.hpp).

#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "change.hpp"
#include "json.hpp"

namespace oauth2 {

// What the cluster directives and options name: etcd's client URLs, the
// prefix of this product's keys, and for https:// URLs the files of TLS
// (PEM; empty: none): the CA that signed etcd's certificate (else the
// system's), and this client's certificate and key when etcd asks for one
// (--client-cert-auth).  The server's certificate is always verified.
struct EtcdConfig {
  std::vector<std::string> endpoints;  // http(s)://host:port, tried in turn
  std::string prefix = "/oauth2/";
  std::string cacert;
  std::string cert;
  std::string key;
};

// Parses "http://a:2379,http://b:2379"; throws std::invalid_argument
// naming what is wrong (not http(s)://, empty, a path).
std::vector<std::string> parse_etcd_endpoints(std::string_view list);
// a prefix: starts with "/", ends with "/", printable ASCII; throws too
void check_etcd_prefix(std::string_view prefix);

// What the caller calls the TLS fields (cacert= in nginx, --etcd-cacert
// in oauth2-admin), for the messages of check_etcd_tls.
struct EtcdTlsNames {
  const char* etcd;
  const char* cacert;
  const char* cert;
  const char* key;
};
// cert and key come together, TLS's files only with an https:// URL, and
// each can be read; throws std::invalid_argument naming the one at fault
void check_etcd_tls(const EtcdConfig& config, const EtcdTlsNames& names);

std::string base64_std(std::string_view bytes);
// nullopt: not base64
std::optional<std::string> unbase64_std(std::string_view text);

// etcd answered with an error, or no member answered: the message says
// which member and why.  Callers turn it into a 503 (StoreError).
struct EtcdError : std::runtime_error {
  explicit EtcdError(const std::string& what, bool compacted = false, bool too_large = false)
      : std::runtime_error(what), compacted(compacted), too_large(too_large) {}
  bool compacted;  // a revision etcd has compacted away
  // a Txn of more operations than etcd's --max-txn-ops (128 by default)
  // or more bytes than its --max-request-bytes (1.5 MiB): refused before
  // it was proposed, so nothing of it applied
  bool too_large;
};

class Etcd {
 public:
  explicit Etcd(EtcdConfig config);
  ~Etcd();
  Etcd(const Etcd&) = delete;
  Etcd& operator=(const Etcd&) = delete;

  const EtcdConfig& config() const { return config_; }

  // POSTs body to path (/v3/kv/txn, ...) on the first member that
  // answers, within timeout_ms; the decoded answer.  Throws EtcdError.
  // *in_doubt (if given) turns true when a try before the answer may have
  // reached etcd and taken effect (sent, then no answer: a timeout, a
  // connection lost, "leader changed"), so that a Txn's failed compares
  // may be its own earlier try's doing.
  Json call(const char* path, const json_t* body, long timeout_ms, bool* in_doubt = nullptr);

  // Streams a watch from start_revision over the whole prefix: on_message
  // gets the decoded messages ({"result": ...}) that have arrived, in
  // order, and returns false to stop.
  // Returns when on_message stopped it; throws EtcdError when the stream
  // ends otherwise (a member gone, silence for idle_ms).
  // *cancel turning true ends it too, within a tenth of a second.
  // beacon (if given): a key under the prefix that the caller puts every
  // few hundred ms, its value the time of the put (ms since the epoch, in
  // decimal); a stream that has not brought a put of it made less than
  // idle_ms before it came, for idle_ms, fails too, though it keeps
  // sending (a member slow, or falling behind), and the next watch and
  // call start at the member after it.
  void watch(int64_t start_revision, long idle_ms,
             const std::function<bool(std::vector<Json>&)>& on_message,
             const std::atomic<bool>* cancel = nullptr, const std::string* beacon = nullptr);

  // etcd's current revision, from a linearizable count-only read of the
  // prefix (so also a check that a member with quorum answers).  Throws
  // EtcdError.
  int64_t revision(long timeout_ms) { return head(timeout_ms).revision; }
  // the same read's revision and the cluster id it came with
  struct Head {
    int64_t revision;
    std::string cluster_id;
  };
  Head head(long timeout_ms);

  // the etcd key of a store record, and back (nullopt: not a record's key)
  std::string key(Db db, std::string_view key) const;
  std::optional<std::pair<Db, std::string>> record(std::string_view etcd_key) const;
  // the end of the range of every key under prefix (etcd's range_end)
  static std::string range_end(std::string_view prefix);
  const std::string& heartbeat_prefix() const { return heartbeat_prefix_; }

 private:
  struct Handle;
  Json call_tries(const char* path, const json_t* body, long timeout_ms, bool* in_doubt,
                  long first_round_ms);
  std::unique_ptr<Handle> take();
  void give_back(std::unique_ptr<Handle> h);
  void set_transport(Handle& h) const;
  void prepare_post(Handle& h, const std::string& url, const std::string& text, long try_ms,
                    void* sink, bool count) const;
  static std::string failure(const Handle& h, int rc);
  std::string probe_certificate(Handle& h, const std::string& url, long try_ms) const;
  bool refused_certificate(Handle& h, int rc, size_t at, const std::string& url,
                           std::chrono::steady_clock::time_point deadline, std::string* why) const;

  EtcdConfig config_;
  std::string heartbeat_prefix_;
  std::mutex m_;
  size_t preferred_ = 0;  // the member that answered last
  std::vector<std::unique_ptr<Handle>> idle_;
};

// int64 fields come as JSON strings from the gateway; 0 when absent.
// Throws EtcdError for one that is no number, negative or past 2^62 (no
// etcd reaches it): taken as a revision, the mirror would record it, and
// every later write's wait for its revision would pass at once.
int64_t etcd_int(const json_t* obj, const char* name);
// the "header"'s revision of an answer
int64_t etcd_revision(const json_t* answer);
// the "header"'s cluster_id of an answer, in decimal ("" when absent): a
// cluster made anew (or restored from a snapshot) has another
std::string etcd_cluster_id(const json_t* answer);

namespace etcd_detail {
// whether a failed try (curl's code, and its words) was TLS's: a
// certificate refused either way or a file of ours that does not load,
// kept for the message a call ends with (unit-tested)
bool tls_failure(int rc, const std::string& what);
}  // namespace etcd_detail

}  // namespace oauth2
