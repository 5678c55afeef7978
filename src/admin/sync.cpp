// `oauth2-admin sync`: the mirror daemon of cluster mode (cluster.hpp).
// The only writer of this machine's store: a snapshot of etcd's keys at
// one revision, then the watch from the next, each batch of events in one
// LMDB transaction with the revision it brings the mirror to; after a
// restart it resumes from that revision, and when etcd has compacted past
// it, a new snapshot replaces the mirror in one transaction.  A heartbeat
// key of its own, put every kHeartbeatMs, comes back through the watch
// and dates the mirror's freshness.

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <thread>
#include <utility>

#include "cli.hpp"
#include "cluster.hpp"
#include "codec.hpp"
#include "crypto.hpp"
#include "retry_delay.hpp"
#include "store.hpp"

namespace oauth2::admin {
namespace {

std::atomic<bool> g_stop{false};

extern "C" void on_stop_signal(int) {
  g_stop = true;
}

void say(const std::string& line) {
  log_line(" sync", line);
}

// an etcd key of this prefix that no store can hold (an empty name, or
// one over LMDB's 511 bytes: no writer of this product makes one), left
// out of the mirror rather than stopping it at that revision for ever
void skipped(std::string_view etcd_key) {
  say("skipped the key " + quoted(etcd_key.substr(0, 80)) + (etcd_key.size() > 80 ? "..." : "") +
      " (" + std::to_string(etcd_key.size()) +
      " bytes): a store holds keys of 1 to 511 bytes after the prefix and database");
}

// the heartbeat key's name: this host and this store
std::string edge_name(const std::string& store) {
  char host[HOST_NAME_MAX + 1] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  char* real = realpath(store.c_str(), nullptr);
  Digest d = sha256(real ? real : store.c_str());
  free(real);
  return std::string(host) + ":" + hex_encode(d.data(), 4);
}

std::string field_bytes(const json_t* obj, const char* name) {
  const char* b64 = json_string_value(json_object_get(obj, name));
  if (!b64) return std::string();  // the gateway leaves empty values out
  auto bytes = unbase64_std(b64);
  if (!bytes) throw EtcdError(std::string("etcd sent a ") + name + " that is not base64");
  return *bytes;
}

class Mirror {
 public:
  Mirror(Store& store, Etcd& etcd)
      : store_(store),
        etcd_(etcd),
        heartbeat_(etcd.heartbeat_prefix() + edge_name(store.path())),
        mirror_of_("etcd " + etcd.config().prefix),
        applied_(store.mirror_revision()),
        cluster_id_(store.read().get_meta(kMirrorClusterMeta).value_or("")) {}

  const std::string& heartbeat_key() const { return heartbeat_; }
  int64_t applied() const { return applied_; }
  void forget() { applied_ = 0; }
  // why the mirror cannot resume on the history etcd now holds ("": it can)
  std::string other_history();

  // the whole prefix at one revision, replacing the mirror in one commit
  void snapshot();
  // the watch from applied() + 1, until stopped (false) or compacted (true)
  bool follow();
  // whether a watch brought events since the last call: it was healthy
  bool followed() { return std::exchange(followed_, false); }

 private:
  void apply_events(const std::vector<const json_t*>& batches);

  Store& store_;
  Etcd& etcd_;
  std::string heartbeat_;
  std::string mirror_of_;
  int64_t applied_;
  std::string cluster_id_;  // of the history applied_ counts in
  bool followed_ = false;
};

constexpr long kRangeTimeoutMs = 30000;
constexpr int kRangePage = 5000;

void Mirror::snapshot() {
  const int64_t asked_at = now_ms();
  MirrorWriter w(store_);
  w.reset();
  int64_t revision = 0;
  size_t records = 0;
  std::string from = etcd_.config().prefix;
  const std::string end = Etcd::range_end(from);
  for (;;) {
    Json req(json_pack("{s:s,s:s,s:s}", "key", base64_std(from).c_str(), "range_end",
                       base64_std(end).c_str(), "limit", std::to_string(kRangePage).c_str()));
    if (revision) json_object_set_new(req.get(), "revision", json_integer(revision));
    Json page = etcd_.call("/v3/kv/range", req.get(), kRangeTimeoutMs);
    if (!revision) {
      revision = etcd_revision(page.get());
      cluster_id_ = etcd_cluster_id(page.get());
    }
    const json_t* kvs = json_object_get(page.get(), "kvs");
    size_t i;
    const json_t* kv;
    std::string last;
    json_array_foreach(kvs, i, kv) {
      last = field_bytes(kv, "key");
      if (auto rec = etcd_.record(last)) {
        if (w.put(rec->first, rec->second, field_bytes(kv, "value"))) {
          records++;
        } else {
          skipped(last);
        }
      }
    }
    if (!json_is_true(json_object_get(page.get(), "more")) || last.empty()) break;
    from = last + std::string(1, '\0');
  }
  w.set_revision(revision, mirror_of_, cluster_id_);
  w.set_fresh(asked_at);
  w.commit();
  applied_ = revision;
  say("snapshot of etcd at revision " + std::to_string(revision) + ": " + std::to_string(records) +
      " records");
}

// The events of several watch messages, in one LMDB transaction: under
// load they arrive faster than one sync each would take.
void Mirror::apply_events(const std::vector<const json_t*>& batches) {
  MirrorWriter w(store_);
  int64_t revision = applied_;
  int64_t fresh = 0;
  for (const json_t* events : batches) {
    size_t i;
    const json_t* ev;
    json_array_foreach(events, i, ev) {
      const json_t* kv = json_object_get(ev, "kv");
      const std::string key = field_bytes(kv, "key");
      const char* type = json_string_value(json_object_get(ev, "type"));
      const bool deleted = type && std::string_view(type) == "DELETE";
      revision = std::max(revision, etcd_int(kv, "mod_revision"));
      if (key == heartbeat_ && !deleted) {
        fresh = std::strtoll(field_bytes(kv, "value").c_str(), nullptr, 10);
        continue;
      }
      auto rec = etcd_.record(key);
      if (!rec) continue;
      if (!(deleted ? w.del(rec->first, rec->second)
                    : w.put(rec->first, rec->second, field_bytes(kv, "value")))) {
        skipped(key);
      }
    }
  }
  w.set_revision(revision, mirror_of_, cluster_id_);
  if (fresh) w.set_fresh(fresh);
  w.commit();
  applied_ = revision;
}

// etcd takes a watch from a revision it has not reached yet, and from
// then on sends only the events past it: a mirror resumed on an etcd made
// anew (a new cluster, or `etcdctl snapshot restore`, which goes back to
// the snapshot's revision) would keep the records of a history that is
// gone and miss the new one's writes below its revision, while CLI writes
// waiting for that revision would pass at once.  Such an etcd has a
// revision below the mirror's, or another cluster id.  A mirror synced
// before the cluster id was recorded has none: it takes a snapshot too,
// once, rather than adopt the id it sees, as nothing says its records
// came from that cluster (a snapshot costs one read of the prefix, and
// readers see the switch in one transaction).
std::string Mirror::other_history() {
  const Etcd::Head head = etcd_.head(kRangeTimeoutMs);
  if (head.revision < applied_) {
    return "etcd's revision " + std::to_string(head.revision) + " is below the mirror's " +
           std::to_string(applied_) + " (etcd rebuilt or restored from a snapshot)";
  }
  if (head.cluster_id.empty()) return std::string();  // nothing to compare with
  if (cluster_id_.empty()) return "the mirror does not record which etcd cluster it follows";
  if (head.cluster_id != cluster_id_) {
    return "etcd's cluster id " + head.cluster_id + " is not the mirror's " + cluster_id_ +
           " (etcd rebuilt)";
  }
  return std::string();
}

// etcd's watch stream does not end by itself: a member gone or silent for
// kIdleMs (the heartbeats stopped coming back) throws EtcdError.
constexpr long kIdleMs = 3000;

bool Mirror::follow() {
  bool compacted = false;
  std::exception_ptr failed;
  etcd_.watch(
      applied_ + 1, kIdleMs,
      [&](std::vector<Json>& messages) {
        if (g_stop) return false;
        try {
          std::vector<const json_t*> batches;
          bool go_on = true;
          for (const Json& msg : messages) {
            const json_t* result = json_object_get(msg.get(), "result");
            if (!result) throw EtcdError("etcd watch: " + json_text(msg.get(), JSON_COMPACT));
            const std::string id = etcd_cluster_id(result);
            if (!id.empty() && id != cluster_id_) {
              throw EtcdError("etcd's cluster id changed under the watch");
            }
            if (json_is_true(json_object_get(result, "created"))) {
              say("following etcd from revision " + std::to_string(applied_ + 1));
            }
            if (json_is_true(json_object_get(result, "canceled"))) {
              compacted = etcd_int(result, "compact_revision") != 0;
              if (!compacted) throw EtcdError("etcd canceled the watch");
              go_on = false;
              break;
            }
            const json_t* events = json_object_get(result, "events");
            if (json_array_size(events)) batches.push_back(events);
          }
          if (!batches.empty()) {
            apply_events(batches);
            followed_ = true;
          }
          return go_on;
        } catch (...) {
          failed = std::current_exception();  // never through curl's C frames
          return false;
        }
      },
      &g_stop, &heartbeat_);
  if (failed) std::rethrow_exception(failed);
  return compacted;
}

// Puts the heartbeat every kHeartbeatMs; says when etcd stops or starts
// taking it again.
void heartbeat(Etcd& etcd, const std::string& key) {
  bool failing = false;
  const std::string k = base64_std(key);
  while (!g_stop) {
    try {
      Json req(json_pack("{s:s,s:s}", "key", k.c_str(), "value",
                         base64_std(std::to_string(now_ms())).c_str()));
      etcd.call("/v3/kv/put", req.get(), 1000);
      if (failing) say("etcd takes the heartbeat again");
      failing = false;
    } catch (const std::exception& e) {
      if (!failing) say(std::string("etcd does not take the heartbeat: ") + e.what());
      failing = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(kHeartbeatMs));
  }
}

// A store that is not a mirror yet must be empty: sync never mixes etcd's
// records with a store's own.
void check_mirrorable(Store& store, const std::string& mirror_of) {
  Txn txn = store.read();
  if (auto of = txn.get_meta(kMirrorOfMeta)) {
    if (*of != mirror_of) {
      throw std::runtime_error(store.path() + " mirrors \"" + *of + "\", not \"" + mirror_of +
                               "\": give sync an empty store for this prefix");
    }
    return;
  }
  for (size_t i = 0; i < kDbCount; i++) {
    bool any = false;
    txn.scan(static_cast<Db>(i), "", 0, false, [&](std::string_view key, std::string_view) {
      any = static_cast<Db>(i) != Db::kMeta || !local_meta(key);
      return !any;
    });
    if (any) {
      throw std::runtime_error(store.path() +
                               " holds records of its own: a mirror starts empty (oauth2-admin "
                               "backup keeps them; load them into etcd before switching)");
    }
  }
}

int sync_run(Mirror& mirror) {
  RetryDelay delay;
  while (!g_stop) {
    try {
      if (mirror.applied() != 0) {
        if (std::string why = mirror.other_history(); !why.empty()) {
          say(why + ": taking a new snapshot instead of resuming at revision " +
              std::to_string(mirror.applied()));
          mirror.forget();
        }
      }
      if (mirror.applied() == 0) {
        mirror.snapshot();
      } else {
        say("resuming at revision " + std::to_string(mirror.applied()));
      }
      if (mirror.follow()) {
        say("etcd compacted past revision " + std::to_string(mirror.applied()) +
            ": taking a new snapshot");
        mirror.forget();
      }
      delay.reset();
    } catch (const EtcdError& e) {
      if (e.compacted) mirror.forget();
      if (g_stop) break;
      const int64_t wait = delay.after(e.what(), mirror.followed());
      say(std::string(e.what()) + "; again in " + std::to_string(wait) + " ms");
      std::this_thread::sleep_for(std::chrono::milliseconds(wait));
    }
  }
  say("stopped at revision " + std::to_string(mirror.applied()));
  return 0;
}

// One sync daemon per mirror, for its lifetime: two would each apply the
// watch at their own pace, and the slower take the mirror back over what
// the faster applied (MirrorWriter refuses that too).  flock, so that the
// lock goes with the process however it ends; the descriptor stays open
// until exit.  -1: another holds it.
int lock_mirror(const std::string& store) {
  const std::string path = store + "/sync.lock";
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd < 0) throw std::runtime_error(errno_text("cannot open " + path));
  if (flock(fd, LOCK_EX | LOCK_NB) == 0) return fd;
  const int err = errno;
  close(fd);
  if (err == EWOULDBLOCK) return -1;
  errno = err;
  throw std::runtime_error(errno_text("cannot lock " + path));
}

int sync_command(const Invocation& inv) {
  if (inv.etcd.empty()) throw UsageError("sync needs --etcd <url>[,<url>...]");
  EtcdConfig config = etcd_config(inv);
  Etcd etcd(config);
  try {  // a clear refusal to start, rather than a daemon that retries
    etcd.revision(5000);
  } catch (const EtcdError& e) {
    return fail(std::string("cannot start: ") + e.what());
  }
  std::unique_ptr<Store> store = open_mirror_store(inv);
  if (lock_mirror(inv.store) < 0) {
    return fail("cannot start: another oauth2-admin sync is writing the mirror " + inv.store +
                " (it holds " + inv.store + "/sync.lock)");
  }
  check_mirrorable(*store, "etcd " + config.prefix);
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  Mirror mirror(*store, etcd);
  std::thread beat(heartbeat, std::ref(etcd), mirror.heartbeat_key());
  int rc = kExitFailure;
  try {
    rc = sync_run(mirror);
  } catch (const std::exception& e) {
    g_stop = true;
    beat.join();
    throw;
  }
  beat.join();
  return rc;
}

const char kSyncUsage[] =
    "usage: oauth2-admin sync --etcd <url>[,<url>...] [--prefix /oauth2/] --store <dir>\n"
    "           [--etcd-cacert <file>] [--etcd-cert <file> --etcd-key <file>]\n\n"
    "Keeps <dir> a mirror of the cluster's records in etcd: the store that\n"
    "nginx's oauth2_store names on this machine when nginx.conf has\n"
    "oauth2_cluster.  It is the store's only writer: a snapshot of etcd at\n"
    "one revision, then every change etcd reports, each batch with the\n"
    "revision it brings the mirror to.  Restarted, it resumes from that\n"
    "revision; when etcd has compacted past it, or is not the etcd the\n"
    "mirror followed (another cluster id, or a revision below the\n"
    "mirror's: etcd rebuilt or restored), it takes a new snapshot and\n"
    "switches to it in one transaction, saying why.  Every 250 ms it puts a\n"
    "heartbeat (<prefix>heartbeat/<host>:<store>) and dates the mirror by\n"
    "its return, for oauth2_cluster's max_staleness.  Runs in the\n"
    "foreground and logs to stderr; SIGTERM stops it.  Exit 1 when etcd\n"
    "does not answer at start (a TLS failure is named), <dir> holds\n"
    "records of its own, or another sync is writing it (it holds\n"
    "<dir>/sync.lock while it runs).  With https:// URLs, --etcd-cacert\n"
    "names the CA of etcd's certificate and --etcd-cert/--etcd-key\n"
    "this machine's client certificate (etcd's --client-cert-auth).\n";

const Command kSyncCommands[] = {
    {"sync", "", "mirror the cluster's etcd into --store (cluster mode)", kSyncUsage, nullptr, 0, 0,
     0, sync_command},
};

}  // namespace

void add_sync_commands(Commands& out) {
  for (const Command& c : kSyncCommands) out.push_back(&c);
}

}  // namespace oauth2::admin
