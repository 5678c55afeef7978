// Cluster mode (oauth2_cluster, oauth2-admin --etcd): etcd is the system
// of record and this machine's LMDB store a mirror of it.
//
// Writes: Store::change builds a Change as always; instead of the local
// committer, Cluster::commit sends it to etcd as ONE Txn whose compares
// are its reads (a key's value as seen, or its absence) and its guarded
// ranges (nothing in them modified after the mirror's revision the change
// was built on), and whose ops are its writes.  A compare that fails
// means the change was built on stale reads: the mirror is let catch up
// and Store::change runs the decision again.  A change that succeeded is
// answered only once this machine's mirror has applied its revision, so
// that the client's next request here sees it (read your writes).
//
// The mirror: `oauth2-admin sync` (src/admin/sync.cpp) is its only
// writer, through MirrorWriter: a snapshot at revision R in one LMDB
// transaction, then every watched event, with the revision applied stored
// in the same transaction as the data.  Its heartbeat (a key of its own
// put every kHeartbeatMs) comes back through the watch: the time it was
// sent, once applied, says that everything etcd acknowledged before that
// time is in the mirror (kMirrorFreshMeta), which auth_oauth2 compares
// with max_staleness to fail closed.

#pragma once

#include <lmdb.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "change.hpp"
#include "etcd.hpp"
#include "group_commit.hpp"
#include "store_records.hpp"

namespace oauth2 {

class Store;

// Meta records of the machine, never sent to etcd nor taken from it.
constexpr const char* kMirrorRevisionMeta = "mirror_revision";  // decimal
constexpr const char* kMirrorFreshMeta = "mirror_fresh_at";     // ms, decimal
constexpr const char* kMirrorOfMeta = "mirror_of";              // "etcd <prefix>"
// the etcd cluster id the mirror follows: its revisions are that
// history's (a cluster made anew, or restored, starts another)
constexpr const char* kMirrorClusterMeta = "mirror_cluster_id";  // decimal
bool local_meta(std::string_view name);

constexpr int64_t kHeartbeatMs = 250;
constexpr int64_t kDefaultMaxStalenessMs = 5000;

// The waits of a process for its mirror to apply a revision (a change's,
// or etcd's for a catch-up) share one poll: one waiter at a time (the
// poller) reads the mirror's revision, backing off from 100 us to 1 ms
// while it stands still, and wakes each waiter it satisfies; the others
// sleep until then or until the poll is theirs.  A batch of changes
// waiting for one revision costs one read a pause and one wake-up each,
// where each waiter polling on its own costs every waiter's sleeps.
class MirrorWaits {
 public:
  // Blocks until store's mirror has applied revision (true), or
  // timeout_ms passed (false).  Throws StoreError (a failed read).
  bool wait(Store& store, int64_t revision, long timeout_ms);

 private:
  struct Waiter {
    int64_t revision = 0;
    bool done = false;
    std::condition_variable cv;
  };
  // the poller's loop, lk held on entry and return; *w is the poller's own
  void poll(std::unique_lock<std::mutex>& lk, Store& store, Waiter& w,
            std::chrono::steady_clock::time_point end);
  void wake_upto(int64_t revision);  // under m_

  std::mutex m_;
  std::multimap<int64_t, Waiter*> waiting_;  // by revision, under m_
  bool polling_ = false;                     // under m_
};

// When a cluster leader sends its batch (Cluster::lead).  etcd's cost per
// Txn is dear (a Raft entry, a sync on every member, the gateway's
// decode), and under load the changes of a process come in two cohorts:
// those that came while a Txn was in flight, and those of that Txn, whose
// clients are still waiting for the mirror, or sending their next request,
// when it returns.  Sent at once, a batch carries one cohort.  So the
// leader waits, for kMaxWait at most, until the queue holds as many
// changes as are likely to come soon: those in the commit path (queued,
// or waiting for the mirror) and those answered within the last kMaxWait,
// but no more than were in the path at once lately (the peak of this
// second and the last) nor kMaxBatch; and only once that peak was above
// kSiblings (Postgres's commit_siblings), so that a change without
// company never waits.  A flood of changes stops counting kMaxWait after
// it was answered, and raises no wait past kMaxWait.  Under the Cluster's
// m_; tests pass the time.
class BatchGather {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr size_t kSiblings = 4;
  static constexpr auto kMaxWait = std::chrono::milliseconds(4);
  static constexpr auto kWindow = std::chrono::seconds(1);

  explicit BatchGather(size_t max_batch) : max_batch_(max_batch), left_(max_batch) {}
  // a change enters the commit path, and leaves it (answered or failed)
  void enter(Clock::time_point now);
  void leave(Clock::time_point now);
  // how many queued changes the leader waits for, kMaxWait at most (0:
  // none, send at once)
  size_t target(Clock::time_point now);

 private:
  size_t max_batch_;
  size_t inside_ = 0;
  size_t peak_ = 0, last_peak_ = 0;  // this window's, the one's before
  Clock::time_point window_{};
  // when the last max_batch_ changes left, oldest first: a ring of
  // left_n_ from left_first_ (no allocation once made, as leave() runs in
  // a destructor)
  std::vector<Clock::time_point> left_;
  size_t left_first_ = 0, left_n_ = 0;
};

class Cluster {
 public:
  Cluster(EtcdConfig config, int64_t max_staleness_ms);
  Etcd& etcd() { return etcd_; }
  int64_t max_staleness_ms() const { return max_staleness_ms_; }
  // The age at now (this host's wall clock) of the mirror's freshness
  // stamp fresh, as mirror_staleness counts it: now - fresh, and at least
  // the time on the monotonic clock since this process first read that
  // stamp (mono_now: CLOCK_MONOTONIC's ms), so that a stamp that does not
  // move ages whatever the wall clock does.  Lock-free: nginx's workers
  // and the daemon's threads call it on every validation.
  int64_t mirror_age(int64_t fresh, int64_t now, int64_t mono_now) const;

  // c as one Txn.  true: applied, and the mirror has it; false: one of
  // its reads no longer holds (nothing applied; the mirror has caught up
  // with what overtook it, as far as it could within a second).  Throws
  // StoreError: etcd unreachable or without quorum, the mirror behind;
  // applied but not shown by the mirror within the wait, is_applied_unseen
  // (unless set_applied_unseen: then true).
  bool commit(Store& store, const Change& c);

  // With f set, a change etcd applied that the mirror has not shown
  // within the wait counts as applied (commit returns true) and f is told
  // its revision and why, instead of a StoreError (is_applied_unseen):
  // oauth2-admin's commands, whose answer may be a secret shown once or
  // a key moved out of the store, report it done with a warning.  nginx
  // and the daemon leave it unset: 503.  Set before the first commit.
  using AppliedUnseen = void (*)(int64_t revision, const std::string& why);
  void set_applied_unseen(AppliedUnseen f) { applied_unseen_ = f; }
  // how long commit and catch_up wait for the mirror (kMirrorWaitMs
  // unless set, before the first of them)
  void set_mirror_wait_ms(long ms) { mirror_wait_ms_ = ms; }
  long mirror_wait_ms() const { return mirror_wait_ms_; }

  // Blocks until store's mirror has applied everything etcd holds now
  // (a linearizable read names the revision): a record missing from the
  // mirror after it is missing from the cluster.  Throws StoreError: etcd
  // unreachable or without quorum, the mirror behind.  The callers of a
  // process share their reads: at most one is in flight, and a caller
  // that finds one in flight waits for the next, which starts after it
  // came (so still names everything acknowledged before it asked).  A
  // flood of made-up codes or tokens thus costs etcd at most one read a
  // round trip per process, however many requests wait.
  void catch_up(Store& store);
  // its first half: etcd's revision now, from a read that started after
  // this call did, shared as above.  Throws StoreError.
  int64_t current_revision();

  // the Txn request of c, built on the mirror's revision base (for tests)
  Json txn_request(const Change& c, int64_t base) const;
  // takes the compares all of txns make out of them, into the array it
  // returns: the outer Txn's (for tests)
  static Json hoist_common_compares(std::vector<Json>& txns);

  // how long a write waits for etcd, and for the mirror to apply it
  static constexpr long kEtcdTimeoutMs = 3000;
  static constexpr long kMirrorWaitMs = 5000;
  // Blocks until store's mirror has applied revision (true), or
  // timeout_ms passed (false).  Throws StoreError.
  bool wait_for_mirror(Store& store, int64_t revision, long timeout_ms) {
    return mirror_waits_.wait(store, revision, timeout_ms);
  }

 private:
  // what a change reads, writes and guards, as etcd keys
  struct Footprint {
    std::set<std::string> reads, writes;
    std::vector<std::string> ranges;
    bool overlaps(const Footprint& other) const;
    void add(const Footprint& other);
  };
  struct Waiter {
    const Change* change = nullptr;
    bool done = false;
    bool lead = false;
    bool applied = false;
    int64_t revision = 0;
    std::exception_ptr error;
    std::condition_variable cv;
    void fail(std::exception_ptr e) {
      applied = false;
      error = std::move(e);
    }
  };
  static constexpr size_t kMaxBatch = 64;

  Footprint footprint(const Change& c) const;
  void lead(std::unique_lock<std::mutex>& lk);
  // in_doubt: an earlier try of these changes may have applied them
  void send(const std::vector<Waiter*>& batch, bool in_doubt = false);
  Json written_compares(const Change& c) const;
  void confirm_in_doubt(const std::vector<Waiter*>& batch);

  Etcd etcd_;
  int64_t max_staleness_ms_;
  // the freshness stamp this process read last, and when (CLOCK_MONOTONIC,
  // ms) it first read it; kStampWriting while a caller replaces the pair
  static constexpr int64_t kStampWriting = INT64_MIN;
  mutable std::atomic<int64_t> stamp_{0};
  mutable std::atomic<int64_t> stamp_seen_{0};
  long mirror_wait_ms_ = kMirrorWaitMs;
  AppliedUnseen applied_unseen_ = nullptr;
  std::mutex m_;
  GroupQueue<Waiter> queue_;       // under m_
  BatchGather gather_{kMaxBatch};  // under m_
  bool gathering_ = false;         // under m_: a leader waits on arrived_
  std::condition_variable arrived_;

  // current_revision's reads: how many started and finished, and the
  // last one's answer
  std::mutex read_m_;
  std::condition_variable read_cv_;
  uint64_t reads_started_ = 0, reads_finished_ = 0;  // under read_m_
  int64_t read_revision_ = 0;                        // under read_m_
  std::exception_ptr read_error_;                    // under read_m_

  MirrorWaits mirror_waits_;
};

int64_t now_ms();
// CLOCK_MONOTONIC in ms (a vDSO read, no system call)
int64_t monotonic_ms();

// Cluster mode: why store's mirror is too old to answer from (fail closed:
// a revocation made on another edge may not be in it), or "" when it is
// fresh enough, as in single-node mode.  auth_oauth2, every endpoint that
// uses the store (run_endpoint), catch_up and the admin daemon refuse with
// 503 then.
std::string mirror_staleness(Store& store);

// The sync daemon's writes to the mirror: one LMDB write transaction,
// aborted unless committed.  reset() empties every database (the local
// meta records excepted) for a snapshot, in the same transaction.
class MirrorWriter {
 public:
  explicit MirrorWriter(Store& store);
  ~MirrorWriter();
  MirrorWriter(const MirrorWriter&) = delete;
  MirrorWriter& operator=(const MirrorWriter&) = delete;

  void reset();
  // false, writing nothing, for a key LMDB cannot hold (empty, or over
  // its 511 bytes): no writer of this product makes one, but anyone who
  // writes to etcd can, and it must not stop the mirror at that event
  bool put(Db db, std::string_view key, std::string_view value);
  bool del(Db db, std::string_view key);
  // Throws StoreError for a revision below the mirror's, unless reset()
  // emptied it first (a snapshot, of another history perhaps): a mirror
  // never goes back over what it applied.
  void set_revision(int64_t revision, std::string_view mirror_of, std::string_view cluster_id);
  void set_fresh(int64_t at_ms);
  void commit();

 private:
  bool holds(std::string_view key) const;

  Store& store_;
  MDB_txn* txn_;
  bool reset_ = false;
  records::Invalidation invalidates_;  // what commit() moves on of the validation epochs
};

// "etcd <prefix>", what a mirror of prefix records (kMirrorOfMeta)
std::string mirror_of(const std::string& prefix);
// Throws std::runtime_error, naming both prefixes, when store is the
// mirror of another prefix than this process's (it would read another
// deployment's records, and its writes would reach no mirror here); a
// store sync has not written yet passes.
void check_mirror_of(Store& store, const std::string& prefix);

}  // namespace oauth2
