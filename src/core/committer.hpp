// The one writer of a process: group commit of Changes (change.hpp).
//
// Threads that want a change applied wait in a queue; one of them (the
// leader) takes every change waiting, opens ONE LMDB write transaction,
// applies each change whose reads still hold and skips the others, and
// commits with one sync; then every waiter learns its outcome.  A change
// is answered only once its commit is durable.  Readers never wait for
// it: LMDB readers see the last commit without a lock.
//
// The processes sharing a store (nginx workers, oauth2-admin) each have
// one; LMDB's writer lock orders their batches, and a change validated
// inside the write transaction cannot have been overtaken by another
// process either.

#pragma once

#include <lmdb.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <vector>

#include "../../include/oauth2.h"
#include "change.hpp"
#include "group_commit.hpp"

namespace oauth2 {

class Store;
class Txn;
class WriteTxn;

class Committer {
 public:
  explicit Committer(Store& store) : store_(store) {}
  Committer(const Committer&) = delete;
  Committer& operator=(const Committer&) = delete;

  // Applies c with the other changes waiting.  true: applied and durable;
  // false: one of its reads no longer holds, and nothing of it was
  // applied.  Throws StoreError (a full map, I/O): then nothing of c was
  // applied either.
  bool commit(const Change& c);
  // Runs decide inside the write transaction of a batch (where what it
  // reads cannot be overtaken) and applies its change there: the last
  // resort of Store::change for a record many write at once.
  void commit_exclusive(const std::function<void(Txn&)>& decide);
  // Records size, the one the store was opened with, when it differs
  // from the one recorded (Store::settle_map_size), in a write of its
  // own, counted in no stats: no one's change.
  void record_map_size(size_t size);

  // How many batches and changes this process committed (for tests and
  // the bench: changes / batches is the grouping achieved).
  struct Stats {
    uint64_t batches = 0;
    uint64_t changes = 0;
    uint64_t conflicts = 0;
  };
  Stats stats() const;
  // Counts every commit in *m too (shared memory of several processes:
  // atomic adds), and every change a store error refused, or no longer
  // with nullptr.  A batch that failed is no commit there: each of its
  // changes tried alone and written is one of its own.
  void share_metrics(oauth2_write_metrics_t* m) { shared_.store(m); }

  // at most this many changes in one batch
  static constexpr size_t kMaxBatch = 256;

  // What became of one change of a batch: applied, or not (a read no
  // longer held), or the error that refused it.
  struct Outcome {
    bool applied = false;
    std::exception_ptr error;
  };
  // One batch, in order, in one write transaction and one sync; if that
  // fails (a full map), each change again alone, so that only the one at
  // fault gets the error.  What the leader runs; public for the tests.
  std::vector<Outcome> commit_batch(const std::vector<const Change*>& batch);
  // A commit a run made: the changes it wrote and the time it took (a
  // batch that failed is none; each change of it tried alone and
  // written is one of its own): what the metrics' histograms count.
  struct Commit {
    size_t changes = 0;
    std::chrono::steady_clock::duration took{};
  };

  // Changes decided already (Store::prepare), in one write transaction
  // and one sync of their own: what the shim's batch of prepared token
  // requests runs, one thread wake-up for the batch.  take() (called
  // once, on this thread, at most kMaxBatch) says which, once this
  // process holds the store's writer lock: what waits for the lock
  // (another process's batch committing) joins this batch instead of the
  // next.  Each outcome as commit() would have it, in take()'s order.
  using Take = std::function<std::vector<const Change*>()>;
  std::vector<Outcome> commit_prepared(const Take& take);

 private:
  // a change built already, or a decision to run in the write transaction
  struct Item {
    const Change* change = nullptr;
    const std::function<void(Txn&)>* decide = nullptr;
  };
  // A change waiting; woken alone (its own condition), when its batch is
  // done or when the lead is handed to it.
  struct Waiter {
    Item item;
    bool done = false;
    bool lead = false;
    Outcome outcome;
    std::condition_variable cv;
    void fail(std::exception_ptr e) { outcome = Outcome{false, std::move(e)}; }
  };

  Outcome submit(Item item);
  void refuse_if_mirror(MDB_txn* txn);
  void lead(std::unique_lock<std::mutex>& lk);
  // begun: a write transaction begun already, which they take over;
  // commits: where the commits it made are noted, if anywhere
  std::vector<Outcome> run(const std::vector<Item>& batch, MDB_txn* begun = nullptr,
                           std::vector<Commit>* commits = nullptr);
  std::vector<Outcome> run_counted(const std::vector<Item>& batch, MDB_txn* begun = nullptr);
  void run_batch(const std::vector<Item>& batch, std::vector<Outcome>& out, WriteTxn& txn);
  Outcome run_one(MDB_txn* txn, const Item& item);
  Outcome run_alone(const Item& item);
  void count(const std::vector<Commit>& commits, const std::vector<Outcome>& outcomes);

  Store& store_;
  mutable std::mutex m_;
  GroupQueue<Waiter> queue_;  // under m_
  Stats stats_;
  std::atomic<oauth2_write_metrics_t*> shared_{nullptr};
};

// The upper bounds of oauth2_write_metrics_t's buckets (0 past the last)
double commit_bound(unsigned bucket);
unsigned batch_bound(unsigned bucket);

// Whether c's reads hold in txn (a write transaction), and its writes:
// the committer's steps, exposed for the unit tests.
bool change_holds(Store& store, MDB_txn* txn, const Change& c);
void apply_change(Store& store, MDB_txn* txn, const Change& c);

}  // namespace oauth2
