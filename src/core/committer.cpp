#include "committer.hpp"

#include <algorithm>
#include <iterator>

#include "cluster.hpp"
#include "store.hpp"
#include "store_records.hpp"

namespace oauth2 {

using records::bump_valid_epochs;
using records::check;
using records::Cursor;
using records::feeds_validation;
using records::get_value;
using records::Invalidation;
using records::put_noting;
using records::val;
using records::view;

namespace {

// the one message of a full map, at a put or at the commit
[[noreturn]] void store_full() {
  throw StoreError(
      "the store is full: raise oauth2_store's size=, or let "
      "oauth2_expiry_cleanup remove what has expired",
      MDB_MAP_FULL);
}

}  // namespace

// A write transaction of the committer, aborted unless committed; its
// end is counted by the store's gate (Store::gate_leave).
class WriteTxn {
 public:
  WriteTxn(Store& store, MDB_txn* t) : store_(store), t_(t) {}
  ~WriteTxn() { abort(); }
  WriteTxn(const WriteTxn&) = delete;
  WriteTxn& operator=(const WriteTxn&) = delete;
  MDB_txn* get() const { return t_; }
  MDB_txn* release() {  // handed on to another WriteTxn, still live
    MDB_txn* t = t_;
    t_ = nullptr;
    return t;
  }
  void reset(MDB_txn* t) {
    abort();
    t_ = t;
  }
  void abort() {
    if (!t_) return;
    mdb_txn_abort(t_);
    t_ = nullptr;
    store_.gate_leave();
  }
  void commit() {
    MDB_txn* t = t_;
    t_ = nullptr;
    int rc = mdb_txn_commit(t);
    store_.gate_leave();
    if (rc == MDB_MAP_FULL) store_full();
    check(rc, "mdb_txn_commit");
  }

 private:
  Store& store_;
  MDB_txn* t_;
};

namespace {

bool scan_holds(Store& store, MDB_txn* txn, const Change::Scan& s) {
  ScanDigest d;
  records::scan_prefix(txn, store.dbi(s.db), s.prefix, s.suffix_len, "scan",
                       [&](std::string_view suffix, std::string_view value) {
                         d.add(s.prefix + std::string(suffix), value);
                         return true;
                       });
  return d.done() == s.seen;
}

}  // namespace

bool change_holds(Store& store, MDB_txn* txn, const Change& c) {
  for (const Change::Read& r : c.reads) {
    auto now = get_value(txn, store.dbi(r.db), r.key, "mdb_get(check)");
    if (now.has_value() != r.seen.has_value()) return false;
    if (now && *now != *r.seen) return false;
  }
  for (const Change::Scan& s : c.scans) {
    if (!scan_holds(store, txn, s)) return false;
  }
  return true;
}

void apply_change(Store& store, MDB_txn* txn, const Change& c) {
  Invalidation inv;  // the records validation reads replaced or deleted
  for (const Change::Write& w : c.writes) {
    const bool feeds = feeds_validation(w.db);
    if (!w.value) {
      MDB_val k = val(w.key);
      int rc = mdb_del(txn, store.dbi(w.db), &k, nullptr);
      if (rc != MDB_NOTFOUND) check(rc, "mdb_del");
      if (feeds && rc == MDB_SUCCESS) inv.note(w.db, w.key);
      continue;
    }
    bool replaced = false;
    int rc = put_noting(txn, store.dbi(w.db), w.db, w.key, *w.value, feeds ? &replaced : nullptr);
    if (rc == MDB_MAP_FULL) store_full();
    check(rc, "mdb_put");
    if (replaced) inv.note(w.db, w.key);
  }
  if (!inv.any()) return;
  int rc = bump_valid_epochs(txn, store.dbi(Db::kMeta), inv);
  if (rc == MDB_MAP_FULL) store_full();
  check(rc, "mdb_put(valid_epoch)");
}

bool Committer::commit(const Change& c) {
  Item item;
  item.change = &c;
  return submit(item).applied;
}

void Committer::commit_exclusive(const std::function<void(Txn&)>& decide) {
  Item item;
  item.decide = &decide;
  submit(item);
}

// One turn of the group commit (group_commit.hpp).
Committer::Outcome Committer::submit(Item item) {
  Waiter w;
  w.item = item;
  {
    std::unique_lock<std::mutex> lk(m_);
    queue_.wait_done(lk, w, [this](std::unique_lock<std::mutex>& l) { lead(l); });
  }
  if (w.outcome.error) std::rethrow_exception(w.outcome.error);
  return w.outcome;
}

Committer::Stats Committer::stats() const {
  std::lock_guard<std::mutex> lk(m_);
  return stats_;
}

// One batch of what is waiting (the leader's own change among it), with
// the lock released while LMDB works.
void Committer::lead(std::unique_lock<std::mutex>& lk) {
  std::vector<Waiter*>& waiting = queue_.waiting;
  std::vector<Waiter*>& batch = queue_.taken;  // failed by the queue if this throws
  const size_t n = std::min(waiting.size(), kMaxBatch);
  batch.assign(waiting.begin(), waiting.begin() + static_cast<ptrdiff_t>(n));
  waiting.erase(waiting.begin(), waiting.begin() + static_cast<ptrdiff_t>(n));
  lk.unlock();
  std::vector<Item> items;
  for (Waiter* w : batch) items.push_back(w->item);
  std::vector<Outcome> outcomes = run_counted(items);
  lk.lock();
  for (size_t i = 0; i < batch.size(); i++) {
    batch[i]->outcome = std::move(outcomes[i]);
    batch[i]->done = true;
    batch[i]->cv.notify_one();
  }
  batch.clear();
}

namespace {

// seconds; the last bucket (+Inf) has none
constexpr double kCommitBounds[OAUTH2_COMMIT_BUCKETS - 1] = {
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1};
constexpr unsigned kBatchBounds[OAUTH2_BATCH_BUCKETS - 1] = {1, 2, 4, 8, 16, 32, 64, 128, 256};

void add(uint64_t* counter, uint64_t n) {
  __atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

}  // namespace

double commit_bound(unsigned bucket) {
  return bucket < std::size(kCommitBounds) ? kCommitBounds[bucket] : 0;
}

unsigned batch_bound(unsigned bucket) {
  return bucket < std::size(kBatchBounds) ? kBatchBounds[bucket] : 0;
}

namespace {

// Whether a change's error is the store's (a full map, a disk, a mirror),
// rather than its decision's own
bool store_error(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const StoreError&) {
    return true;
  } catch (...) {
    return false;
  }
}

}  // namespace

void Committer::count(const std::vector<Commit>& commits, const std::vector<Outcome>& outcomes) {
  oauth2_write_metrics_t* m = shared_.load();
  if (!m) return;
  size_t conflicts = 0, errors = 0;
  for (const Outcome& o : outcomes) {
    conflicts += !o.applied && !o.error;
    errors += o.error && store_error(o.error);
  }
  add(&m->conflicts, conflicts);
  add(&m->errors, errors);
  for (const Commit& k : commits) {
    const double seconds = std::chrono::duration<double>(k.took).count();
    unsigned c = 0;
    while (c < std::size(kCommitBounds) && seconds > kCommitBounds[c]) c++;
    unsigned b = 0;
    while (b < std::size(kBatchBounds) && k.changes > kBatchBounds[b]) b++;
    add(&m->batches, 1);
    add(&m->changes, k.changes);
    add(&m->commit_usec,
        static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(k.took).count()));
    add(&m->commit[c], 1);
    add(&m->batch[b], 1);
  }
}

std::vector<Committer::Outcome> Committer::commit_batch(const std::vector<const Change*>& batch) {
  std::vector<Item> items;
  for (const Change* c : batch) {
    Item item;
    item.change = c;
    items.push_back(item);
  }
  return run(items);
}

std::vector<Committer::Outcome> Committer::commit_prepared(const Take& take) {
  MDB_txn* begun = nullptr;
  std::exception_ptr error;
  try {
    begun = store_.begin_write();
  } catch (...) {
    error = std::current_exception();
  }
  WriteTxn owner(store_, begun);  // aborted if anything below throws
  std::vector<const Change*> changes = take();
  if (error) {
    std::vector<Outcome> refused(changes.size(), Outcome{false, error});
    count({}, refused);
    return refused;
  }
  std::vector<Item> items(changes.size());
  for (size_t i = 0; i < changes.size(); i++) items[i].change = changes[i];
  return run_counted(items, owner.release());
}

// run(), counted in the stats and the shared metrics
std::vector<Committer::Outcome> Committer::run_counted(const std::vector<Item>& batch,
                                                       MDB_txn* begun) {
  std::vector<Commit> commits;
  std::vector<Outcome> outcomes = run(batch, begun, &commits);
  count(commits, outcomes);
  size_t conflicts = 0;
  for (const Outcome& o : outcomes) conflicts += !o.applied && !o.error;
  std::lock_guard<std::mutex> lk(m_);
  stats_.batches++;
  stats_.changes += batch.size();
  stats_.conflicts += conflicts;
  return outcomes;
}

namespace {

// An error of the system under LMDB (an errno: I/O, no space, a read-only
// file system) or LMDB's own panic after one, rather than one change's
// (LMDB's codes are negative: a full map, a value too large).
bool disk_failed(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const StoreError& se) {
    return se.rc() == MDB_PANIC || se.rc() > 0;
  } catch (...) {
    return false;
  }
}

}  // namespace

namespace {

// a commit of applied changes since start, noted in commits (one that
// wrote nothing, every change a conflict, is no commit: LMDB writes
// nothing for it)
void note_commit(std::vector<Committer::Commit>* commits, size_t applied,
                 std::chrono::steady_clock::time_point start) {
  if (!commits || applied == 0) return;
  commits->push_back({applied, std::chrono::steady_clock::now() - start});
}

}  // namespace

std::vector<Committer::Outcome> Committer::run(const std::vector<Item>& batch, MDB_txn* begun,
                                               std::vector<Commit>* commits) {
  const auto start = std::chrono::steady_clock::now();
  WriteTxn txn(store_, begun);  // owns a transaction begun already, if any
  std::vector<Outcome> out(batch.size());
  try {
    run_batch(batch, out, txn);
    size_t applied = 0;
    for (const Outcome& o : out) applied += o.applied;
    note_commit(commits, applied, start);
  } catch (...) {
    // refuse_if_mirror, or a disk that failed under the batch: each change
    // would meet the same, and tried alone each would cost the disk one
    // more sync, the writer lock held (R75, R77): all are refused with it
    if (store_.is_mirror() || disk_failed(std::current_exception())) {
      for (Outcome& o : out) o = Outcome{false, std::current_exception()};
      return out;
    }
    // one change's failure (a full map) must not fail the others
    txn.abort();
    for (size_t i = 0; i < batch.size(); i++) {
      const auto alone = std::chrono::steady_clock::now();
      out[i] = run_alone(batch[i]);
      note_commit(commits, out[i].applied, alone);
    }
  }
  return out;
}

void Committer::run_batch(const std::vector<Item>& batch, std::vector<Outcome>& out,
                          WriteTxn& txn) {
  if (!txn.get()) txn.reset(store_.begin_write());
  refuse_if_mirror(txn.get());
  for (size_t i = 0; i < batch.size(); i++) out[i] = run_one(txn.get(), batch[i]);
  txn.commit();  // one sync for the batch
}

// A store that became a mirror since this process opened it (sync's
// first snapshot, into the empty store the packaged daemon had opened) is
// written only by sync: no local change is applied to it, now or later.
void Committer::refuse_if_mirror(MDB_txn* txn) {
  MDB_val k = val(kMirrorOfMeta), v;
  const int rc = mdb_get(txn, store_.dbi(Db::kMeta), &k, &v);
  if (rc == MDB_NOTFOUND) return;
  check(rc, "mdb_get(meta)");
  store_.mirror_committed();
  refuse_mirror_write(store_.path());
}

void Committer::record_map_size(size_t size) {
  try {
    WriteTxn txn(store_, store_.begin_write());
    Change record;
    record.writes.push_back({Db::kMeta, kMapSizeMeta, std::to_string(size)});
    apply_change(store_, txn.get(), record);
    txn.commit();
  } catch (...) {
    // not recorded: the next open records it
  }
}

// One item in txn.  A decision that throws leaves txn as it was (its
// writes are only kept aside) and fails alone; an LMDB error while
// applying throws, for run() to retry each item alone.
Committer::Outcome Committer::run_one(MDB_txn* txn, const Item& item) {
  Outcome o;
  if (item.change) {
    o.applied = change_holds(store_, txn, *item.change);
    if (o.applied) apply_change(store_, txn, *item.change);
    return o;
  }
  Change c;
  try {
    Txn t(&store_, txn, Txn::Mode::kExclusive);
    (*item.decide)(t);
    c = t.take_change();
  } catch (...) {
    o.error = std::current_exception();
    return o;
  }
  apply_change(store_, txn, c);
  o.applied = true;
  return o;
}

Committer::Outcome Committer::run_alone(const Item& item) {
  try {
    WriteTxn txn(store_, store_.begin_write());
    Outcome o = run_one(txn.get(), item);
    if (o.applied) txn.commit();
    return o;
  } catch (...) {
    Outcome o;
    o.error = std::current_exception();
    return o;
  }
}

}  // namespace oauth2
