#include "cluster.hpp"

#include <time.h>

#include <chrono>
#include <map>
#include <thread>

#include "store.hpp"
#include "store_records.hpp"

namespace oauth2 {

using records::check;
using records::val;

bool local_meta(std::string_view name) {
  return name == "schema_version" || name == kMapSizeMeta || name == kMirrorRevisionMeta ||
         name == kMirrorFreshMeta || name == kMirrorOfMeta || name == kMirrorClusterMeta ||
         name == kValidEpochMeta || name == kValidEpochsMeta;
}

int64_t now_ms() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

int64_t monotonic_ms() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

int64_t Cluster::mirror_age(int64_t fresh, int64_t now, int64_t mono_now) const {
  // A writer turns stamp_ to kStampWriting, sets stamp_seen_, then stamp_
  // to the new stamp: a reader that finds the stamp it read on both sides
  // of its read of stamp_seen_ has that stamp's time (stamps move on, so
  // never to one they had before).
  int64_t seen = mono_now;  // first read now, unless recorded before
  int64_t at = stamp_.load();
  if (at == fresh) {
    const int64_t first = stamp_seen_.load();
    if (stamp_.load() == fresh) seen = first;
  } else if (at != kStampWriting && stamp_.compare_exchange_strong(at, kStampWriting)) {
    stamp_seen_.store(mono_now);
    stamp_.store(fresh);
  }
  return std::max(now - fresh, mono_now - seen);
}

Cluster::Cluster(EtcdConfig config, int64_t max_staleness_ms)
    : etcd_(std::move(config)), max_staleness_ms_(max_staleness_ms) {}

namespace {

void append(json_t* array, json_t* item) {
  if (!item || json_array_append_new(array, item) != 0) throw std::bad_alloc();
}

std::string b64(std::string_view s) {
  return base64_std(s);
}

// a compare: the key k (base64) holds value, or is absent (nullopt)
json_t* holds(const std::string& k, const std::optional<std::string>& value) {
  if (value) {
    return json_pack("{s:s,s:s,s:s,s:s}", "key", k.c_str(), "target", "VALUE", "result", "EQUAL",
                     "value", b64(*value).c_str());
  }
  return json_pack("{s:s,s:s,s:s,s:s}", "key", k.c_str(), "target", "VERSION", "result", "EQUAL",
                   "version", "0");
}

}  // namespace

Json Cluster::txn_request(const Change& c, int64_t base) const {
  Json compare(json_array()), success(json_array());
  if (!compare || !success) throw std::bad_alloc();
  for (const Change::Read& r : c.reads) {
    if (r.db == Db::kMeta && local_meta(r.key)) continue;
    append(compare.get(), holds(b64(etcd_.key(r.db, r.key)), r.seen));
  }
  // a guarded range: nothing in it created or rewritten since the mirror's
  // revision the change was built on (a deletion there is harmless: the
  // change only ever deletes through such a range)
  const std::string after = std::to_string(base + 1);
  for (const Change::Scan& s : c.scans) {
    const std::string from = etcd_.key(s.db, s.prefix);
    append(compare.get(), json_pack("{s:s,s:s,s:s,s:s,s:s}", "key", b64(from).c_str(), "range_end",
                                    b64(Etcd::range_end(from)).c_str(), "target", "MOD", "result",
                                    "LESS", "mod_revision", after.c_str()));
  }
  for (const Change::Write& w : c.writes) {
    if (w.db == Db::kMeta && local_meta(w.key)) continue;
    const std::string k = b64(etcd_.key(w.db, w.key));
    if (w.value) {
      append(success.get(), json_pack("{s:{s:s,s:s}}", "request_put", "key", k.c_str(), "value",
                                      b64(*w.value).c_str()));
    } else {
      append(success.get(), json_pack("{s:{s:s}}", "request_delete_range", "key", k.c_str()));
    }
  }
  Json req(json_pack("{s:O,s:O}", "compare", compare.get(), "success", success.get()));
  if (!req) throw std::bad_alloc();
  return req;
}

// The etcd keys a change reads, writes and guards, to keep two changes
// that touch the same records out of one batch: etcd evaluates every
// nested Txn's compares before it applies any of their writes.
Cluster::Footprint Cluster::footprint(const Change& c) const {
  Footprint f;
  for (const Change::Read& r : c.reads) f.reads.insert(etcd_.key(r.db, r.key));
  for (const Change::Write& w : c.writes) f.writes.insert(etcd_.key(w.db, w.key));
  for (const Change::Scan& s : c.scans) f.ranges.push_back(etcd_.key(s.db, s.prefix));
  return f;
}

namespace {

bool under(const std::string& key, const std::vector<std::string>& ranges) {
  for (const std::string& p : ranges) {
    if (key.compare(0, p.size(), p) == 0) return true;
  }
  return false;
}

}  // namespace

bool Cluster::Footprint::overlaps(const Footprint& o) const {
  for (const std::string& k : writes) {
    if (o.writes.count(k) || o.reads.count(k) || under(k, o.ranges)) return true;
  }
  for (const std::string& k : o.writes) {
    if (reads.count(k) || under(k, ranges)) return true;
  }
  return false;
}

void Cluster::Footprint::add(const Footprint& o) {
  reads.insert(o.reads.begin(), o.reads.end());
  writes.insert(o.writes.begin(), o.writes.end());
  ranges.insert(ranges.end(), o.ranges.begin(), o.ranges.end());
}

// Group commit (group_commit.hpp): the leader sends what waits as one Txn
// of nested Txns, one per change (the compares they all make, once in
// the outer one); a change that touches what an earlier one of the batch
// touches waits for the next batch.  Under load the leader first lets
// the batch fill (BatchGather).  Each then waits for the mirror on its own.
bool Cluster::commit(Store& store, const Change& c) {
  Waiter w;
  w.change = &c;
  // in the commit path from here until answered, whichever way
  struct Leave {
    Cluster& c;
    bool entered = false;
    ~Leave() {
      if (!entered) return;
      std::lock_guard<std::mutex> g(c.m_);
      c.gather_.leave(BatchGather::Clock::now());
    }
  } leave{*this};
  {
    std::unique_lock<std::mutex> lk(m_);
    gather_.enter(BatchGather::Clock::now());
    leave.entered = true;
    if (gathering_) arrived_.notify_one();
    queue_.wait_done(lk, w, [this](std::unique_lock<std::mutex>& l) { lead(l); });
  }
  if (w.error) std::rethrow_exception(w.error);
  if (!w.applied) {
    // what overtook it is at or before revision: let the mirror see it
    wait_for_mirror(store, w.revision, 1000);
    return false;
  }
  if (!wait_for_mirror(store, w.revision, mirror_wait_ms_)) {
    const std::string why = "etcd applied the change at revision " + std::to_string(w.revision) +
                            " but the mirror " + store.path() + " has not shown it within " +
                            std::to_string(mirror_wait_ms_) +
                            " ms: is oauth2-admin sync running for it?";
    if (!applied_unseen_) throw StoreError::applied_unseen(why);
    applied_unseen_(w.revision, why);
  }
  return true;
}

void BatchGather::enter(Clock::time_point now) {
  inside_++;
  if (now - window_ >= kWindow) {
    // a new window; the last one's peak counts for it too
    last_peak_ = now - window_ < 2 * kWindow ? peak_ : 0;
    peak_ = 0;
    window_ = now;
  }
  peak_ = std::max(peak_, inside_);
}

void BatchGather::leave(Clock::time_point now) {
  inside_--;
  left_[(left_first_ + left_n_) % max_batch_] = now;
  if (left_n_ < max_batch_) {
    left_n_++;
  } else {
    left_first_ = (left_first_ + 1) % max_batch_;
  }
}

size_t BatchGather::target(Clock::time_point now) {
  size_t peak = 0;  // of this second and the last
  if (now - window_ < kWindow) {
    peak = std::max(peak_, last_peak_);
  } else if (now - window_ < 2 * kWindow) {
    peak = peak_;
  }
  if (peak <= kSiblings) return 0;
  while (left_n_ && now - left_[left_first_] > kMaxWait) {
    left_first_ = (left_first_ + 1) % max_batch_;
    left_n_--;
  }
  return std::min({peak, inside_ + left_n_, max_batch_});
}

int64_t Cluster::current_revision() {
  std::unique_lock<std::mutex> lk(read_m_);
  // the read this call needs: the next to start (one in flight now may
  // have been answered before this caller's record was written)
  const uint64_t want = reads_started_ + 1;
  for (;;) {
    if (reads_finished_ >= want) {  // want's, or a later one's
      if (read_error_) std::rethrow_exception(read_error_);
      return read_revision_;
    }
    if (reads_started_ == reads_finished_) {  // none in flight: this one
      reads_started_++;
      lk.unlock();
      int64_t revision = 0;
      std::exception_ptr error;
      try {
        revision = etcd_.revision(kEtcdTimeoutMs);
      } catch (const EtcdError& e) {
        error = std::make_exception_ptr(StoreError::unavailable(e.what()));
      } catch (...) {
        error = std::current_exception();
      }
      lk.lock();
      reads_finished_++;
      read_revision_ = revision;
      read_error_ = error;
      read_cv_.notify_all();
      continue;
    }
    read_cv_.wait(lk);
  }
}

void Cluster::catch_up(Store& store) {
  // a mirror already staler than max_staleness (sync stopped, etcd out of
  // reach) will not catch up within the wait: 503 at once, without a read
  // of etcd or a thread held for kMirrorWaitMs a request
  if (std::string why = mirror_staleness(store); !why.empty()) {
    throw StoreError::stale(why);
  }
  const int64_t revision = current_revision();
  if (!wait_for_mirror(store, revision, mirror_wait_ms_)) {
    throw StoreError::stale("the mirror " + store.path() + " has not reached etcd's revision " +
                            std::to_string(revision) + " within " +
                            std::to_string(mirror_wait_ms_) +
                            " ms: is oauth2-admin sync running for it?");
  }
}

// Waits for the batch to fill (BatchGather, kMaxWait at most), takes from
// the queue the changes that can go together, sends them with the lock
// released, and marks them done.
void Cluster::lead(std::unique_lock<std::mutex>& lk) {
  std::vector<Waiter*>& batch = queue_.taken;  // failed by the queue if this throws
  Footprint taken;
  std::vector<Waiter*>& waiting = queue_.waiting;
  const auto now = BatchGather::Clock::now();
  if (const size_t target = gather_.target(now); waiting.size() < target) {
    gathering_ = true;
    arrived_.wait_until(lk, now + BatchGather::kMaxWait, [&] { return waiting.size() >= target; });
    gathering_ = false;
  }
  for (auto it = waiting.begin(); it != waiting.end() && batch.size() < kMaxBatch;) {
    Footprint f = footprint(*(*it)->change);
    if (!batch.empty() && f.overlaps(taken)) {
      ++it;
      continue;
    }
    taken.add(f);
    batch.push_back(*it);
    it = waiting.erase(it);
  }
  lk.unlock();
  send(batch);
  lk.lock();
  for (Waiter* b : batch) {
    b->done = true;
    b->cv.notify_one();
  }
  batch.clear();
}

// The compares that every Txn of a batch makes alike (the application
// whose tokens they all are, say), taken out of them: the outer Txn makes
// each once, so that etcd reads and compares the record once per batch
// rather than once per change.  If one fails, none of the batch applies
// and each change is decided again, as it would have been alone.
Json Cluster::hoist_common_compares(std::vector<Json>& txns) {
  Json common(json_array());
  if (!common) throw std::bad_alloc();
  if (txns.size() < 2) return common;
  // each Txn's compares as text, and in how many Txns each text is
  std::vector<std::vector<std::string>> texts(txns.size());
  std::map<std::string, size_t> in;
  for (size_t t = 0; t < txns.size(); t++) {
    json_t* c = json_object_get(txns[t].get(), "compare");
    for (size_t i = 0; i < json_array_size(c); i++)
      texts[t].push_back(json_text(json_array_get(c, i)));
    for (const std::string& k : std::set<std::string>(texts[t].begin(), texts[t].end())) in[k]++;
  }
  for (size_t t = 0; t < txns.size(); t++) {
    json_t* c = json_object_get(txns[t].get(), "compare");
    for (size_t i = texts[t].size(); i-- > 0;) {
      if (in[texts[t][i]] != txns.size()) continue;
      if (t == 0) append(common.get(), json_incref(json_array_get(c, i)));
      if (json_array_remove(c, i) != 0) throw std::bad_alloc();
    }
  }
  return common;
}

// The compares that hold once c has been applied: every record it puts
// has the value it puts, every record it deletes is gone.
Json Cluster::written_compares(const Change& c) const {
  Json compare(json_array());
  if (!compare) throw std::bad_alloc();
  for (const Change::Write& w : c.writes) {
    if (w.db == Db::kMeta && local_meta(w.key)) continue;
    append(compare.get(), holds(b64(etcd_.key(w.db, w.key)), w.value));
  }
  return compare;
}

namespace {

// What a Txn's answer says, read so that an answer that is not etcd's to
// a Txn (cut off in a proxy, or from anything but etcd) is an EtcdError,
// never a refusal: a change taken for refused is decided again, and if it
// had applied, applied twice.  Every answer of etcd's names a revision
// (0 is none etcd has: the change's wait for the mirror would pass at
// once), and its "succeeded" is true, or false, or absent (false, as the
// gateway leaves it out).
int64_t txn_revision(const json_t* answer) {
  const int64_t revision = etcd_revision(answer);
  if (revision <= 0) throw EtcdError("etcd answered a Txn without a revision");
  return revision;
}

bool txn_succeeded(const json_t* answer) {
  const json_t* s = json_object_get(answer, "succeeded");
  if (s && !json_is_boolean(s)) {
    throw EtcdError("etcd answered a Txn with a \"succeeded\" that is neither true nor false");
  }
  return json_is_true(s);
}

// the answer of nested Txn i, of a Txn that succeeded
const json_t* nested_answer(const json_t* answer, size_t i) {
  const json_t* r =
      json_object_get(json_array_get(json_object_get(answer, "responses"), i), "response_txn");
  if (!json_is_object(r))
    throw EtcdError("etcd answered a batch without each of its Txns' answers");
  return r;
}

}  // namespace

// A batch whose answer came only after a try that may have taken effect
// (in doubt: sent, then no answer), and in which some changes failed
// their compares: were they failed by their own earlier try?  One Txn
// asks, per such change, whether everything it writes is in etcd as it
// writes it; those that are count as applied.  The records a change
// writes carry what it made (new tokens' keys, a code's use), so another
// change does not leave them so by chance; for a deletion alone, another
// deletion of the same records is the same outcome.  Without this, a code
// redeemed by a try whose answer was lost would, decided again, be found
// used: a replay, and the grant revoked.
void Cluster::confirm_in_doubt(const std::vector<Waiter*>& batch) {
  std::vector<Waiter*> unsure;
  for (Waiter* b : batch) {
    if (!b->applied) unsure.push_back(b);
  }
  if (unsure.empty()) return;
  Json ops(json_array());
  if (!ops) throw std::bad_alloc();
  for (Waiter* b : unsure) {
    Json compare = written_compares(*b->change);
    append(ops.get(),
           json_pack("{s:{s:O,s:[]}}", "request_txn", "compare", compare.get(), "success"));
  }
  Json req(json_pack("{s:O}", "success", ops.get()));
  if (!req) throw std::bad_alloc();
  Json answer = etcd_.call("/v3/kv/txn", req.get(), kEtcdTimeoutMs);
  const int64_t revision = txn_revision(answer.get());
  if (!txn_succeeded(answer.get())) throw EtcdError("etcd refused a Txn without compares");
  for (size_t i = 0; i < unsure.size(); i++) {
    if (txn_succeeded(nested_answer(answer.get(), i))) {
      unsure[i]->applied = true;
      unsure[i]->revision = revision;
    }
  }
}

namespace {

constexpr const char* kTooLargeAdvice =
    " (one change, more than this etcd takes in one Txn: start its members with"
    " --max-txn-ops 10000 --max-request-bytes 10485760)";

}  // namespace

void Cluster::send(const std::vector<Waiter*>& batch, bool in_doubt) {
  try {
    if (batch.size() == 1) {
      Json req = txn_request(*batch[0]->change, batch[0]->change->base_revision);
      Json answer = etcd_.call("/v3/kv/txn", req.get(), kEtcdTimeoutMs, &in_doubt);
      batch[0]->revision = txn_revision(answer.get());
      batch[0]->applied = txn_succeeded(answer.get());
      if (in_doubt) confirm_in_doubt(batch);
      return;
    }
    std::vector<Json> txns;
    for (Waiter* b : batch) txns.push_back(txn_request(*b->change, b->change->base_revision));
    Json common = hoist_common_compares(txns);
    Json ops(json_array());
    if (!ops) throw std::bad_alloc();
    for (Json& t : txns) append(ops.get(), json_pack("{s:o}", "request_txn", t.release()));
    Json req(json_pack("{s:O,s:O}", "compare", common.get(), "success", ops.get()));
    if (!req) throw std::bad_alloc();
    Json answer = etcd_.call("/v3/kv/txn", req.get(), kEtcdTimeoutMs, &in_doubt);
    // the outer compares failing: none applied, each decided again
    const int64_t revision = txn_revision(answer.get());
    const bool all = txn_succeeded(answer.get());
    std::vector<bool> applied(batch.size(), false);  // none, unless each answer reads
    for (size_t i = 0; all && i < batch.size(); i++) {
      applied[i] = txn_succeeded(nested_answer(answer.get(), i));
    }
    for (size_t i = 0; i < batch.size(); i++) {
      batch[i]->revision = revision;
      batch[i]->applied = applied[i];
    }
    if (in_doubt) confirm_in_doubt(batch);
  } catch (const EtcdError& e) {
    if (e.too_large && batch.size() > 1) {
      // one change of the batch, or all of them together, beyond etcd's
      // limits (refused whole, nothing applied): each half on its own,
      // until the change too large is alone; a try before the refusal
      // (a member of a higher limit) may have applied them all the same
      const auto half = batch.begin() + static_cast<std::ptrdiff_t>(batch.size() / 2);
      send(std::vector<Waiter*>(batch.begin(), half), in_doubt);
      send(std::vector<Waiter*>(half, batch.end()), in_doubt);
      return;
    }
    // a change etcd said it applied (before a confirmation of the others
    // failed) is answered as applied: only the others are unknown
    for (Waiter* b : batch) {
      if (b->applied) continue;
      b->error = std::make_exception_ptr(
          e.too_large ? StoreError::too_large(std::string(e.what()) + kTooLargeAdvice)
                      : StoreError::unavailable(e.what()));
    }
  } catch (...) {
    for (Waiter* b : batch) {
      if (!b->applied) b->error = std::current_exception();
    }
  }
}

std::string mirror_staleness(Store& store) {
  const Cluster* cluster = store.cluster();
  if (!cluster) return std::string();
  const int64_t bound = cluster->max_staleness_ms();
  // A mirror never goes back (sync only applies etcd's events forward, a
  // new snapshot is dated later still, restore refuses a mirror): fresh
  // once at F, it holds all etcd had at F.  So while the F this process
  // last read is within the bound, no request needs a read transaction
  // to learn it again.  F is dated by sync's clock, this host's, before
  // it is read here: one dated after now says the clock went back since
  // (a step of NTP, a virtual machine resumed), and nothing of the
  // mirror's age: taken for fresh, a mirror whose sync stopped would be
  // served for as long as the step (R77).  It waits for sync's next
  // heartbeat, dated by the clock as it is now.
  // A step back smaller than the mirror's age would still stretch the
  // bound by the step: the age is also counted on the monotonic clock,
  // from when this process first read F (Cluster::mirror_age).
  const int64_t seen = store.mirror_fresh_seen();
  int64_t now = now_ms();
  if (seen && seen <= now && cluster->mirror_age(seen, now, monotonic_ms()) <= bound) {
    return std::string();
  }
  const int64_t fresh = store.mirror_fresh_at();
  now = now_ms();
  const int64_t age = fresh ? cluster->mirror_age(fresh, now, monotonic_ms()) : 0;
  if (fresh && fresh <= now && age <= bound) return std::string();
  if (!fresh) return "the cluster mirror has never been synced: is oauth2-admin sync running?";
  if (fresh > now) {
    return "the cluster mirror's last heartbeat is dated " + std::to_string(fresh - now) +
           " ms from now: the clock went back; waiting for oauth2-admin sync's next heartbeat";
  }
  return "the cluster mirror is " + std::to_string(age) + " ms old (max_staleness " +
         std::to_string(bound) + " ms): is oauth2-admin sync running, and etcd reachable?";
}

bool MirrorWaits::wait(Store& store, int64_t revision, long timeout_ms) {
  using Clock = std::chrono::steady_clock;
  const auto end = Clock::now() + std::chrono::milliseconds(timeout_ms);
  if (store.mirror_revision() >= revision) return true;
  std::unique_lock<std::mutex> lk(m_);
  Waiter w;
  w.revision = revision;
  auto it = waiting_.emplace(revision, &w);
  try {
    while (!w.done) {
      if (!polling_) {
        poll(lk, store, w, end);
        break;
      }
      // past the end, one more look if the poll is free
      if (w.cv.wait_until(lk, end) == std::cv_status::timeout && !w.done && polling_) break;
    }
  } catch (...) {
    if (!w.done) waiting_.erase(it);
    throw;
  }
  if (!w.done) waiting_.erase(it);
  return w.done;
}

void MirrorWaits::poll(std::unique_lock<std::mutex>& lk, Store& store, Waiter& w,
                       std::chrono::steady_clock::time_point end) {
  polling_ = true;
  // the poll is handed on however it ends: to the waiter of the lowest
  // revision (with w gone from waiting_, if unsatisfied, by the caller)
  auto hand_on = [&] {
    polling_ = false;
    for (auto& [revision, other] : waiting_) {
      if (other != &w) {
        other->cv.notify_one();
        break;
      }
    }
  };
  constexpr auto kFirstPause = std::chrono::microseconds(100);
  auto pause = kFirstPause;
  int64_t last = -1;
  try {
    for (;;) {
      lk.unlock();
      const int64_t applied = store.mirror_revision();
      lk.lock();
      wake_upto(applied);
      if (w.done || std::chrono::steady_clock::now() >= end) break;
      // the mirror moving: more is likely on its way
      pause = applied != last ? kFirstPause : std::min(pause * 2, std::chrono::microseconds(1000));
      last = applied;
      lk.unlock();
      std::this_thread::sleep_for(pause);
      lk.lock();
    }
  } catch (...) {
    if (!lk.owns_lock()) lk.lock();
    hand_on();
    throw;
  }
  hand_on();
}

// Marks done and wakes every waiter whose revision is applied (under m_).
void MirrorWaits::wake_upto(int64_t applied) {
  auto last = waiting_.upper_bound(applied);
  for (auto it = waiting_.begin(); it != last; ++it) {
    it->second->done = true;
    it->second->cv.notify_one();
  }
  waiting_.erase(waiting_.begin(), last);
}

std::string mirror_of(const std::string& prefix) {
  return "etcd " + prefix;
}

void check_mirror_of(Store& store, const std::string& prefix) {
  std::optional<std::string> of = store.read().get_meta(kMirrorOfMeta);
  if (!of || *of == mirror_of(prefix)) return;
  const std::string theirs = of->rfind("etcd ", 0) == 0 ? of->substr(5) : *of;
  throw std::runtime_error("the store " + store.path() + " mirrors etcd prefix " + theirs +
                           ", not this configuration's prefix " + prefix +
                           ": give each prefix its own store and oauth2-admin sync");
}

// ---------------------------------------------------------------- MirrorWriter

MirrorWriter::MirrorWriter(Store& store) : store_(store), txn_(store.begin_write()) {}

MirrorWriter::~MirrorWriter() {
  if (!txn_) return;
  mdb_txn_abort(txn_);
  store_.gate_leave();
}

void MirrorWriter::reset() {
  reset_ = true;
  invalidates_.all = true;
  for (size_t i = 0; i < kDbCount; i++) {
    const Db db = static_cast<Db>(i);
    if (db != Db::kMeta) {
      check(mdb_drop(txn_, store_.dbi(db), 0), "mdb_drop");
      continue;
    }
    std::vector<std::string> doomed;
    records::scan_prefix(txn_, store_.dbi(db), "", 0, "mirror reset",
                         [&](std::string_view key, std::string_view) {
                           if (!local_meta(key)) doomed.emplace_back(key);
                           return true;
                         });
    for (const std::string& k : doomed) records::del_key(txn_, store_.dbi(db), k, "mirror reset");
  }
}

bool MirrorWriter::holds(std::string_view key) const {
  return !key.empty() &&
         key.size() <= static_cast<size_t>(mdb_env_get_maxkeysize(store_.env_.get()));
}

bool MirrorWriter::put(Db db, std::string_view key, std::string_view value) {
  if (!holds(key)) return false;
  if (db == Db::kMeta && local_meta(key)) return true;  // never etcd's to set
  bool replaced = false;
  int rc = records::put_noting(txn_, store_.dbi(db), db, key, value,
                               records::feeds_validation(db) ? &replaced : nullptr);
  if (rc == MDB_MAP_FULL) {
    throw StoreError("the mirror is full: raise oauth2_store's size=", rc);
  }
  check(rc, "mdb_put(mirror)");
  if (replaced) invalidates_.note(db, key);
  return true;
}

bool MirrorWriter::del(Db db, std::string_view key) {
  if (!holds(key)) return false;
  if (db == Db::kMeta && local_meta(key)) return true;
  const bool deleted = records::del_key(txn_, store_.dbi(db), key, "mdb_del(mirror)");
  if (deleted && records::feeds_validation(db)) invalidates_.note(db, key);
  return true;
}

void MirrorWriter::set_revision(int64_t revision, std::string_view mirror_of,
                                std::string_view cluster_id) {
  // two sync daemons on one mirror (a lock file keeps them apart, but not
  // one on another machine sharing the directory): the slower would take
  // the mirror back to a revision it left, and its records with it
  const std::string r = std::to_string(revision);
  if (!reset_) {
    auto stored =
        records::get_value(txn_, store_.dbi(Db::kMeta), kMirrorRevisionMeta, "mdb_get(revision)");
    const int64_t was = stored ? std::strtoll(std::string(*stored).c_str(), nullptr, 10) : 0;
    if (revision < was) {
      throw StoreError::unavailable("the mirror " + store_.path() + " is at revision " +
                                    std::to_string(was) + ": refusing to take it back to " + r +
                                    " (is another oauth2-admin sync writing it?)");
    }
  }
  MDB_val k = val(kMirrorRevisionMeta), v = val(r);
  check(mdb_put(txn_, store_.dbi(Db::kMeta), &k, &v, 0), "mdb_put(revision)");
  MDB_val ok = val(kMirrorOfMeta), ov = val(mirror_of);
  check(mdb_put(txn_, store_.dbi(Db::kMeta), &ok, &ov, 0), "mdb_put(mirror_of)");
  MDB_val ck = val(kMirrorClusterMeta), cv = val(cluster_id);
  check(mdb_put(txn_, store_.dbi(Db::kMeta), &ck, &cv, 0), "mdb_put(cluster_id)");
}

void MirrorWriter::set_fresh(int64_t at_ms) {
  const std::string t = std::to_string(at_ms);
  MDB_val k = val(kMirrorFreshMeta), v = val(t);
  check(mdb_put(txn_, store_.dbi(Db::kMeta), &k, &v, 0), "mdb_put(fresh)");
}

void MirrorWriter::commit() {
  if (invalidates_.any()) {
    int rc = records::bump_valid_epochs(txn_, store_.dbi(Db::kMeta), invalidates_);
    if (rc == MDB_MAP_FULL) throw StoreError("the mirror is full: raise oauth2_store's size=", rc);
    check(rc, "mdb_put(valid_epoch)");
  }
  MDB_txn* t = txn_;
  txn_ = nullptr;
  int rc = mdb_txn_commit(t);
  store_.gate_leave();
  if (rc == MDB_MAP_FULL) throw StoreError("the mirror is full: raise oauth2_store's size=", rc);
  check(rc, "mdb_txn_commit(mirror)");
  store_.mirror_committed();
}

}  // namespace oauth2
