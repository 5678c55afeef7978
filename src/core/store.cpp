#include "store.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>

#include "codec.hpp"
#include "cluster.hpp"
#include "committer.hpp"
#include "store_records.hpp"

namespace oauth2 {

using namespace records;

namespace {

constexpr unsigned kEnvFlags = MDB_NOTLS;
constexpr unsigned kMaxReaders = 1024;

}  // namespace

const char* db_name(Db db) {
  // in the order of Db (change.hpp)
  static const char* const kNames[kDbCount] = {
      "meta",      "clients",     "tokens",        "client_tokens", "users",
      "usernames", "user_tokens", "family_tokens", "emails",        "account_locks"};
  return kNames[static_cast<size_t>(db)];
}

// ---------------------------------------------------------------- Store

namespace {
std::atomic<uint64_t> g_store_serial{0};
}  // namespace

Store::Store(const std::string& path, size_t mapsize, bool create)
    : path_(path), serial_(++g_store_serial) {
  mkdir_p(path);
  MDB_env* env = nullptr;
  check(mdb_env_create(&env), "mdb_env_create");
  env_.reset(env);  // closed by its holder if what follows throws
  check(mdb_env_set_maxdbs(env, 16), "mdb_env_set_maxdbs");
  check(mdb_env_set_maxreaders(env, kMaxReaders), "mdb_env_set_maxreaders");
  // 0: the size the environment has (a new one gets kDefaultMapSize), so
  // that oauth2-admin keeps the size nginx.conf gave it
  struct stat st;
  if (mapsize == 0 && stat((path + "/data.mdb").c_str(), &st) != 0) mapsize = kDefaultMapSize;
  if (mapsize) check(mdb_env_set_mapsize(env, mapsize), "mdb_env_set_mapsize");
  check(mdb_env_open(env, path.c_str(), kEnvFlags, 0660), "mdb_env_open");
  // An existing store opens with a read transaction only, so that
  // opening never waits for the writer lock (a reload must not stall
  // behind a long write); a new one gets its databases in a write.
  // A store of an older schema is brought up to date the same way.
  Opened opened = open_databases(MDB_RDONLY);
  if (opened != Opened::kCurrent && create) opened = open_databases(0);
  committer_ = std::make_unique<Committer>(*this);
  if (opened != Opened::kMissing) {  // a store without its databases mirrors nothing
    Txn txn = read();
    mirror_ = txn.get_meta(kMirrorOfMeta).has_value();
  }
  if (const size_t record = create ? settle_map_size(mapsize) : 0) {
    // a write of its own, off the opener's way (Store::settle_map_size)
    recorder_ = std::thread([this, record] { committer_->record_map_size(record); });
  }
}

int64_t Store::meta_int(std::string_view name) {
  Txn txn = read();
  auto v = txn.get(Db::kMeta, name);
  return v ? std::strtoll(std::string(*v).c_str(), nullptr, 10) : 0;
}

int64_t Store::mirror_revision() {
  return meta_int(kMirrorRevisionMeta);
}

int64_t Store::mirror_fresh_at() {
  const int64_t fresh = meta_int(kMirrorFreshMeta);
  // the last value read, not the latest: one dated ahead (a clock since
  // stepped back, a heartbeat put in etcd by hand) kept as the latest
  // would pass the mirror unread once the clock reached it
  mirror_fresh_seen_.store(fresh, std::memory_order_relaxed);
  return fresh;
}

void Store::use_cluster(std::shared_ptr<Cluster> cluster) {
  cluster_ = std::move(cluster);
}

// LMDB keeps the largest size any process asked for, so a size that
// shrank (oauth2_store size= lowered, or a store oauth2-admin created)
// would not hold for the others.  The size nginx.conf gives is recorded in
// the store, and a process opened without one (oauth2-admin) takes it.
// It is recorded by a write of its own in a thread the open starts (the
// size returned, 0 for none), not by the open itself: an nginx worker
// opens the store on its way to its event loop, where waiting for the
// writer lock (held by another process's write) would keep it from
// accepting anything.
size_t Store::settle_map_size(size_t requested) {
  std::optional<std::string> recorded;
  {
    Txn txn = read();
    recorded = txn.get_meta(kMapSizeMeta);
  }
  if (requested) return recorded == std::to_string(requested) ? 0 : requested;
  if (!recorded) return 0;
  size_t size = std::strtoull(recorded->c_str(), nullptr, 10);
  MDB_envinfo info;
  check(mdb_env_info(env_.get(), &info), "mdb_env_info");
  if (size && size != info.me_mapsize) {
    check(mdb_env_set_mapsize(env_.get(), size), "mdb_env_set_mapsize");
  }
  return 0;
}

Store::Usage Store::usage() {
  MDB_envinfo info;
  MDB_stat st;
  check(mdb_env_info(env_.get(), &info), "mdb_env_info");
  check(mdb_env_stat(env_.get(), &st), "mdb_env_stat");
  Usage u;
  u.map_size = info.me_mapsize;
  u.used = static_cast<uint64_t>(info.me_last_pgno + 1) * st.ms_psize;
  return u;
}

Store::Opened Store::open_databases(unsigned flags) {
  TxnHandle txn(env_.get(), flags);
  const unsigned create = (flags & MDB_RDONLY) ? 0 : MDB_CREATE;
  std::array<MDB_dbi, kDbCount> dbi{};
  for (size_t i = 0; i < kDbCount; i++) {
    int rc = mdb_dbi_open(txn.get(), db_name(static_cast<Db>(i)), create, &dbi[i]);
    // a new store, or one from before a database was added
    if (rc == MDB_NOTFOUND && !create) return Opened::kMissing;
    check(rc, "mdb_dbi_open");
  }
  MDB_val k = val("schema_version"), v;
  int rc = mdb_get(txn.get(), dbi[0], &k, &v);
  Opened opened = Opened::kCurrent;
  if (rc == MDB_NOTFOUND) {
    if (!create) return Opened::kMissing;
    std::string ver = std::to_string(kSchemaVersion);
    MDB_val nv = val(ver);
    check(mdb_put(txn.get(), dbi[0], &k, &nv, 0), "schema");
  } else {
    check(rc, "schema");
    std::string ver(view(v));
    const unsigned long have = std::strtoul(ver.c_str(), nullptr, 10);
    if (have > kSchemaVersion) {
      throw StoreError("store schema " + ver + " is newer than this build", MDB_VERSION_MISMATCH);
    }
    if (have < kSchemaVersion && !create) opened = Opened::kOlder;
    if (have < kSchemaVersion && create) {
      // this build reads the older records as they are and writes the
      // new kind: a release before can no longer read the store
      std::string now = std::to_string(kSchemaVersion);
      MDB_val nv = val(now);
      check(mdb_put(txn.get(), dbi[0], &k, &nv, 0), "schema");
    }
  }
  txn.commit();
  dbi_ = dbi;
  return opened;
}

Store::~Store() {
  if (recorder_.joinable()) recorder_.join();
  for (MDB_txn* t : snapshots_) mdb_txn_abort(t);  // before env_ closes
}

namespace {
// the transactions of any store this thread holds (gate_enter)
thread_local size_t t_held = 0;
constexpr auto kAdoptWait = std::chrono::seconds(2);
}  // namespace

void Store::gate_enter() {
  std::unique_lock<std::mutex> lk(gate_m_);
  // one that holds a transaction never waits for an adoption (its own
  // keeps live_ above 0, so none runs until it ends)
  gate_cv_.wait(lk, [&] { return t_held > 0 || !pending_; });
  live_++;
  t_held++;
}

void Store::gate_leave() noexcept {
  std::lock_guard<std::mutex> lk(gate_m_);
  live_--;
  t_held--;
  if (live_ == 0) gate_cv_.notify_all();
}

void Store::adopt_grown_map() {
  std::unique_lock<std::mutex> lk(gate_m_);
  if (t_held > 0) {
    throw StoreError(
        "the store grew in another process (oauth2_store size= raised?) while this "
        "thread holds a transaction: its map is adopted by the next one",
        MDB_MAP_RESIZED);
  }
  if (pending_) {  // another thread adopts it
    gate_cv_.wait(lk, [&] { return !pending_; });
    return;
  }
  pending_ = true;
  const bool drained = gate_cv_.wait_for(lk, kAdoptWait, [&] { return live_ == 0; });
  pending_ = false;
  if (!drained) {
    gate_cv_.notify_all();
    throw StoreError(
        "the store grew in another process (oauth2_store size= raised?) and this "
        "process's transactions did not end within 2 s to adopt its map",
        MDB_MAP_RESIZED);
  }
  // under gate_m_, with no transaction live: none begins until it is done
  const int rc = mdb_env_set_mapsize(env_.get(), 0);
  gate_cv_.notify_all();
  check(rc, "mdb_env_set_mapsize");
}

MDB_txn* Store::begin(unsigned flags) {
  MDB_txn* txn = nullptr;
  gate_enter();
  int rc = mdb_txn_begin(env_.get(), nullptr, flags, &txn);
  if (rc == MDB_MAP_RESIZED) {
    // another process grew the map: adopt its size and retry once
    gate_leave();
    adopt_grown_map();
    gate_enter();
    rc = mdb_txn_begin(env_.get(), nullptr, flags, &txn);
  }
  if (rc != MDB_SUCCESS) gate_leave();
  check(rc, flags & MDB_RDONLY ? "mdb_txn_begin(read)" : "mdb_txn_begin(write)");
  return txn;
}

MDB_txn* Store::take_snapshot() {
  MDB_txn* txn = nullptr;
  {
    std::lock_guard<std::mutex> lk(snapshots_m_);
    if (!snapshots_.empty()) {
      txn = snapshots_.back();
      snapshots_.pop_back();
    }
  }
  if (txn) {
    gate_enter();
    int rc = mdb_txn_renew(txn);
    if (rc == MDB_SUCCESS) return txn;
    gate_leave();
    mdb_txn_abort(txn);
    if (rc != MDB_MAP_RESIZED) throw StoreError("mdb_txn_renew", rc);
  }
  return begin(MDB_RDONLY);
}

void Store::give_back_snapshot(MDB_txn* txn) noexcept {
  mdb_txn_reset(txn);
  gate_leave();
  std::lock_guard<std::mutex> lk(snapshots_m_);
  snapshots_.push_back(txn);
}

Txn Store::read() {
  return Txn(this, take_snapshot(), Txn::Mode::kRead);
}

Txn Store::begin_change(size_t revoked_first) {
  Txn txn(this, take_snapshot(), Txn::Mode::kChange);
  txn.revoked_first_ = revoked_first;
  return txn;
}

void refuse_mirror_write(const std::string& path) {
  throw StoreError::read_only("the store " + path +
                              " is a mirror of etcd, written only by oauth2-admin sync: write "
                              "to the cluster with --etcd (oauth2_cluster in nginx.conf)");
}

bool Store::commit_change(const Change& c, size_t* revoked_first) {
  if (cluster_) {
    try {
      return cluster_->commit(*this, c);
    } catch (const StoreError& e) {
      if (!e.is_too_large() || !revoke_first(c, revoked_first)) throw;
      return false;  // decided again, without what went first
    }
  }
  if (mirror_) refuse_mirror_write(path_);
  // a change that ends many tokens (a user's, an application's) revokes
  // them first in rounds, each a commit of its own: one transaction of
  // them all would hold the writer lock, every realm's writes waiting,
  // for seconds (R75).  No token outlives the change: they go before it.
  if (tokens_deleted(c) > kRevokeWhole && revoke_first(c, revoked_first)) return false;
  return committer_->commit(c);
}

// In cluster mode nothing runs inside a write transaction of etcd's: the
// decision runs again on the mirror, which catches up with what overtook
// it after each refusal, until it holds.
void Store::commit_exclusive(const std::function<void(Txn&)>& decide, size_t* revoked_first) {
  if (!cluster_) {
    if (mirror_) refuse_mirror_write(path_);
    committer_->commit_exclusive(decide);
    return;
  }
  for (int run = 0; run < kClusterRuns; run++) {
    Change c;
    {
      Txn txn = begin_change(*revoked_first);
      decide(txn);
      c = txn.take_change();
    }
    if (c.empty() || commit_change(c, revoked_first)) return;
  }
  throw StoreError::unavailable("a record changed " + std::to_string(kClusterRuns) +
                                " times while this change was decided: try again");
}

namespace {

// The tokens c deletes.
std::vector<std::pair<std::string, TokenId>> doomed_tokens(const Change& c) {
  std::vector<std::pair<std::string, TokenId>> doomed;
  for (const Change::Write& w : c.writes) {
    std::string_view realm;
    TokenId id;
    if (w.db == Db::kTokens && !w.value && records::split_token_key(w.key, &realm, &id)) {
      doomed.emplace_back(std::string(realm), id);
    }
  }
  return doomed;
}

}  // namespace

size_t Store::tokens_deleted(const Change& c) {
  size_t n = 0;
  for (const Change::Write& w : c.writes) n += w.db == Db::kTokens && !w.value;
  return n;
}

// c deletes too many tokens to go whole (cluster mode: etcd refused it as
// too large; a local store: more than kRevokeWhole): they go first,
// kRevokeRound a change (halved while etcd refuses one as too large),
// each token read again and deleted with its index entries as any
// revocation; one already gone counts for nothing.
bool Store::revoke_first(const Change& c, size_t* revoked) {
  std::vector<std::pair<std::string, TokenId>> doomed = doomed_tokens(c);
  if (doomed.empty()) return false;
  size_t round = kRevokeRound;
  for (size_t at = 0; at < doomed.size();) {
    round = std::min(round, doomed.size() - at);
    at += halving_while_too_large(round, [&] {
      for (int run = 0; run < kClusterRuns; run++) {
        size_t gone = 0;
        Change r;
        {
          Txn txn = begin_change();
          for (size_t i = at; i < at + round; i++) {
            gone += txn.delete_token(doomed[i].first, doomed[i].second);
          }
          txn.commit();
          r = txn.take_change();
        }
        if (r.empty() || (cluster_ ? cluster_->commit(*this, r) : committer_->commit(r))) {
          *revoked += gone;
          revoked_in_rounds_ += gone;
          return round;
        }
      }
      throw StoreError::unavailable("tokens revoked by another change " +
                                    std::to_string(kClusterRuns) +
                                    " times while a round revoked them: try again");
    });
  }
  return true;
}

int Store::reader_check() {
  int dead = 0;
  check(mdb_reader_check(env_.get(), &dead), "mdb_reader_check");
  return dead;
}

void Store::copy_compact(int fd) {
  auto copy = [&] {  // its read transaction is live while it runs
    gate_enter();
    const int rc = mdb_env_copyfd2(env_.get(), fd, MDB_CP_COMPACT);
    gate_leave();
    return rc;
  };
  int rc = copy();
  if (rc == MDB_MAP_RESIZED) {
    // another process grew the map: adopt its size, start the copy again
    adopt_grown_map();
    if (lseek(fd, 0, SEEK_SET) != 0 || ftruncate(fd, 0) != 0) {
      throw StoreError("mdb_env_copyfd2", errno);
    }
    rc = copy();
  }
  check(rc, "mdb_env_copyfd2");
}

// ------------------------------------------------------------------ Txn

// A change being built: what it read from its snapshot (and saw), the
// ranges it relies on, and its writes (nullopt: a delete), by database.
struct Txn::Pending {
  using Records = std::map<std::string, std::optional<std::string>, std::less<>>;
  std::array<Records, kDbCount> reads;
  std::array<Records, kDbCount> writes;
  std::vector<Change::Scan> scans;
  bool commit = false;
};

Txn::Txn(Store* store, MDB_txn* txn, Mode mode) : store_(store), txn_(txn), mode_(mode) {
  if (mode == Mode::kChange || mode == Mode::kExclusive) pending_ = std::make_unique<Pending>();
}

StoreVersion Txn::version() const {
  return StoreVersion{store_->serial_, static_cast<uint64_t>(mdb_txn_id(txn_))};
}

uint64_t Txn::valid_epoch() {
  return valid_epoch_of(
      get_value(txn_, store_->dbi(Db::kMeta), kValidEpochMeta, "mdb_get(valid_epoch)"));
}

uint64_t Txn::token_valid_epoch(uint8_t bucket) {
  return valid_epoch() +
         records::bucket_epoch_of(
             get_value(txn_, store_->dbi(Db::kMeta), kValidEpochsMeta, "mdb_get(valid_epochs)"),
             bucket);
}

Txn::Txn(Txn&& other) noexcept
    : store_(other.store_),
      txn_(other.txn_),
      mode_(other.mode_),
      pending_(std::move(other.pending_)),
      revoked_first_(other.revoked_first_) {
  other.txn_ = nullptr;
}

Txn::~Txn() {
  release();
}

void Txn::release() noexcept {
  if (!txn_) return;
  MDB_txn* txn = txn_;
  txn_ = nullptr;
  if (mode_ == Mode::kExclusive) return;  // the committer's own
  store_->give_back_snapshot(txn);
}

void Txn::commit() {
  if (!pending_) throw std::logic_error("commit() outside Store::change");
  pending_->commit = true;
}

Change Txn::take_change() {
  Change c;
  if (txn_ && store_->cluster_) {
    auto v = get_value(txn_, store_->dbi(Db::kMeta), kMirrorRevisionMeta, "mdb_get(revision)");
    if (v) c.base_revision = std::strtoll(std::string(*v).c_str(), nullptr, 10);
  }
  release();
  if (!pending_ || !pending_->commit) return c;
  for (size_t i = 0; i < kDbCount; i++) {
    const Db db = static_cast<Db>(i);
    for (auto& [key, value] : pending_->writes[i]) c.writes.push_back({db, key, value});
    if (pending_->writes[i].empty()) continue;
    for (auto& [key, seen] : pending_->reads[i]) c.reads.push_back({db, key, seen});
  }
  // reads of databases it does not write matter as much
  for (size_t i = 0; i < kDbCount; i++) {
    if (!pending_->writes[i].empty()) continue;
    for (auto& [key, seen] : pending_->reads[i]) {
      c.reads.push_back({static_cast<Db>(i), key, seen});
    }
  }
  c.scans = std::move(pending_->scans);
  if (c.writes.empty()) c.reads.clear(), c.scans.clear();
  return c;
}

std::optional<std::string_view> Txn::get(Db db, std::string_view key) {
  return get(db, key, true);
}

std::optional<std::string_view> Txn::get(Db db, std::string_view key, bool rely) {
  const size_t i = static_cast<size_t>(db);
  if (pending_) {
    const auto& w = pending_->writes[i];
    if (auto it = w.find(key); it != w.end()) {
      if (!it->second) return std::nullopt;
      return std::string_view(*it->second);
    }
  }
  auto v = get_value(txn_, store_->dbi(db), key, "mdb_get");
  if (pending_ && rely) {
    auto& r = pending_->reads[i];
    if (r.find(key) == r.end()) {
      r.emplace(std::string(key), v ? std::optional<std::string>(std::string(*v)) : std::nullopt);
    }
  }
  return v;
}

void Txn::put(Db db, std::string_view key, std::string_view value) {
  if (!pending_) throw std::logic_error("a write outside Store::change");
  pending_->writes[static_cast<size_t>(db)].insert_or_assign(std::string(key), std::string(value));
}

bool Txn::del(Db db, std::string_view key) {
  if (!pending_) throw std::logic_error("a write outside Store::change");
  const bool existed = get(db, key).has_value();
  pending_->writes[static_cast<size_t>(db)].insert_or_assign(std::string(key), std::nullopt);
  return existed;
}

void Txn::scan(Db db, std::string_view prefix, size_t suffix_len, bool guard,
               const std::function<bool(std::string_view, std::string_view)>& f) {
  if (!pending_) {
    scan_prefix(txn_, store_->dbi(db), prefix, suffix_len, "scan", f);
    return;
  }
  // the change's own writes under prefix, merged into the snapshot's
  // records in key order; the snapshot's alone feed the guard's digest
  const auto& w = pending_->writes[static_cast<size_t>(db)];
  auto in_range = [&](const std::string& k) {
    return k.compare(0, prefix.size(), prefix) == 0 &&
           (suffix_len == 0 || k.size() == prefix.size() + suffix_len);
  };
  auto ow = w.lower_bound(prefix);
  bool more = true;
  auto emit_own_before = [&](std::string_view key) {
    for (; more && ow != w.end() && in_range(ow->first) && ow->first < key; ++ow) {
      if (ow->second) more = f(std::string_view(ow->first).substr(prefix.size()), *ow->second);
    }
  };
  ScanDigest digest;
  scan_prefix(txn_, store_->dbi(db), prefix, suffix_len, "scan",
              [&](std::string_view suffix, std::string_view value) {
                std::string key = std::string(prefix).append(suffix);
                if (guard) digest.add(key, value);
                emit_own_before(key);
                if (!more) return guard;
                if (ow != w.end() && ow->first == key) {  // the change rewrote it
                  if (ow->second) more = f(suffix, *ow->second);
                  ++ow;
                } else {
                  more = f(suffix, value);
                }
                return more || guard;
              });
  for (; more && ow != w.end() && in_range(ow->first); ++ow) {
    if (ow->second) more = f(std::string_view(ow->first).substr(prefix.size()), *ow->second);
  }
  if (guard) {
    pending_->scans.push_back({db, std::string(prefix), suffix_len, digest.done()});
  }
}

void Txn::scan_after(Db db, std::string_view prefix, std::string_view after,
                     const std::function<bool(std::string_view, std::string_view)>& f) {
  Cursor cur(txn_, store_->dbi(db));
  std::string start = std::max(std::string(prefix), std::string(after));
  MDB_val k = val(start), v;
  // LMDB takes no empty key: from the first record
  int rc = cur.get(&k, &v, start.empty() ? MDB_FIRST : MDB_SET_RANGE);
  while (rc == MDB_SUCCESS) {
    std::string_view key = view(k);
    if (key.substr(0, prefix.size()) != prefix) return;
    if (key != after && !f(key, view(v))) return;
    rc = cur.get(&k, &v, MDB_NEXT);
  }
  if (rc != MDB_NOTFOUND) throw StoreError("scan", rc);
}

namespace {

// The clients decoded last, by key, each with the record it was decoded
// from: a record byte for byte the same decodes the same, so a hit needs
// no invalidation, and a changed record is decoded again.  Decoding the
// JSON was an eighth of a token request's CPU.  Only records that exist
// get in, and a shard is emptied when full.
//
// Process-wide shards, each behind its own mutex, allocated once and never
// destroyed: nothing here runs at thread or process exit.  (A thread_local
// table was destroyed as nginx's thread-pool threads exited, and that ran
// alongside the worker's own exit; the daemon's threads come and go with
// its connections, so per-thread tables would also pile up there.)
struct DecodedClient {
  Client client;  // its record the key's value it was decoded from
};
struct DecodedShard {
  std::mutex mu;
  std::unordered_map<std::string, DecodedClient> clients;
};
constexpr size_t kDecodedShards = 8;
constexpr size_t kDecodedPerShard = 16;

DecodedShard& decoded_shard(std::string_view key) {
  static DecodedShard* const shards = new DecodedShard[kDecodedShards];
  return shards[std::hash<std::string_view>{}(key) % kDecodedShards];
}

}  // namespace

std::optional<Client> Txn::get_client(std::string_view realm, std::string_view client_id) {
  if (!valid_client_id(client_id) || !valid_realm(realm)) return std::nullopt;
  std::string key = client_key(realm, client_id);
  auto v = get(Db::kClients, key);
  if (!v) return std::nullopt;
  DecodedShard& shard = decoded_shard(key);
  {
    std::lock_guard<std::mutex> lk(shard.mu);
    auto it = shard.clients.find(key);
    if (it != shard.clients.end() && it->second.client.record == *v) return it->second.client;
  }
  auto c = decode_client(realm, *v);
  if (!c) throw StoreError("corrupt client record", MDB_CORRUPTED);
  c->record = std::string(*v);
  std::lock_guard<std::mutex> lk(shard.mu);
  if (shard.clients.size() >= kDecodedPerShard) shard.clients.clear();
  shard.clients[std::move(key)] = DecodedClient{*c};
  return c;
}

void client_dummy() {
  // A built-in client of a typical record's size, decoded once and copied
  // under a shard's lock as get_client copies a known one: an unknown
  // client costs what a known one does (R15).  Never destroyed, as above.
  static const char kDummy[] =
      "{\"v\":1,\"client_id\":\"0000000000000000000000000000000000000000\","
      "\"name\":\"dummy\",\"secret_hash\":\"sha256$000000000000000000000000"
      "00000000$000000000000000000000000000000000000000000000000000000000000"
      "0000\",\"client_type\":\"confidential\",\"grant_types\":"
      "[\"client_credentials\"],\"scope\":\"\",\"redirect_uris\":[],"
      "\"auth_method\":\"\",\"access_token_ttl\":0,\"created_at\":0,"
      "\"disabled\":false}";
  static const Client* const dummy =
      new Client(*decode_client(kDefaultRealm, std::string_view(kDummy, sizeof(kDummy) - 1)));
  DecodedShard& shard = decoded_shard(dummy->client_id);
  std::lock_guard<std::mutex> lk(shard.mu);
  std::optional<Client> copy = *dummy;
  asm volatile("" : : "g"(&copy) : "memory");  // the copy is made
}

std::vector<Client> Txn::list_clients(std::string_view realm) {
  std::vector<Client> out;
  scan(Db::kClients, realm_prefix(realm), 0, false, [&](std::string_view, std::string_view rec) {
    if (auto c = decode_client(realm, rec)) out.push_back(std::move(*c));
    return true;
  });
  return out;
}

std::optional<std::pair<TokenId, std::string_view>> Txn::find_token(std::string_view realm,
                                                                    const TokenId& id,
                                                                    bool rely_on_legacy) {
  if (!valid_realm(realm)) return std::nullopt;
  if (auto v = get(Db::kTokens, token_stack_key(realm, id).view())) return std::make_pair(id, *v);
  if (id.legacy) return std::nullopt;
  TokenId old = id;  // a record of a store from before schema 2
  old.legacy = true;
  if (auto v = get(Db::kTokens, token_stack_key(realm, old).view(), rely_on_legacy)) {
    return std::make_pair(old, *v);
  }
  return std::nullopt;
}

std::optional<Token> Txn::get_token(std::string_view realm, const TokenId& id) {
  auto found = find_token(realm, id);
  if (!found) return std::nullopt;
  auto t = decode_token(found->second);
  if (!t) throw StoreError("corrupt token record", MDB_CORRUPTED);
  return t;
}

std::string Txn::clients_version(std::string_view realm) {
  auto v = get(Db::kMeta, clients_version_key(realm));
  return v ? std::string(*v) : std::string();
}

void Txn::new_clients_version(std::string_view realm) {
  unsigned char b[8];
  random_bytes(b, sizeof(b));
  put(Db::kMeta, clients_version_key(realm),
      std::string_view(reinterpret_cast<const char*>(b), sizeof(b)));
}

bool Txn::put_client(const Client& c, bool create) {
  if (!storable(c)) return false;
  std::string key = client_key(c.realm, c.client_id);
  if (create == get(Db::kClients, key).has_value()) return false;
  put(Db::kClients, key, encode_client(c));
  new_clients_version(c.realm);
  return true;
}

bool Txn::delete_client(std::string_view realm, std::string_view client_id) {
  if (!valid_client_id(client_id)) return false;
  std::string key = client_key(realm, client_id);
  if (!del(Db::kClients, key)) return false;
  new_clients_version(realm);

  // every token of the client, through the client_tokens index (each
  // token's user and family entries go with it)
  delete_indexed(realm, Db::kClientTokens, client_tokens_prefix(realm, client_id));
  return true;
}

bool Txn::put_token(std::string_view realm, const TokenId& id, const Token& t) {
  if (id.legacy || find_token(realm, id)) return false;  // never overwritten
  write_token(realm, id, t);
  return true;
}

bool Txn::put_new_token(std::string_view realm, const TokenId& id, const Token& t) {
  if (id.legacy || find_token(realm, id, false)) return false;
  write_token(realm, id, t);
  return true;
}

void Txn::write_token(std::string_view realm, const TokenId& id, const Token& t) {
  put(Db::kTokens, token_key(realm, id), encode_token(t));
  const std::string suffix = token_id_bytes(id);
  if (!t.client_id.empty()) {  // sessions belong to no client
    put(Db::kClientTokens, client_tokens_prefix(realm, t.client_id) + suffix, "");
  }
  if (uint64_t uid = token_user_id(t))
    put(Db::kUserTokens, user_tokens_prefix(realm, uid) + suffix, "");
  if (t.has_family()) put(Db::kFamilyTokens, family_prefix(realm, t.family) + suffix, "");
}

bool Txn::update_token(std::string_view realm, const TokenId& id, const Token& t) {
  auto found = find_token(realm, id);
  if (!found) return false;
  auto old = decode_token(found->second);
  if (!old) throw StoreError("corrupt token record", MDB_CORRUPTED);
  if (old->client_id != t.client_id || old->user != t.user || old->family != t.family) {
    return false;  // the indexes stay as they are: only these fields may change
  }
  put(Db::kTokens, token_key(realm, found->first), encode_token(t));
  return true;
}

size_t Txn::revoke_family(std::string_view realm, const Family& family) {
  return delete_indexed(realm, Db::kFamilyTokens, family_prefix(realm, family));
}

size_t Txn::delete_indexed(std::string_view realm, Db index, const std::string& prefix) {
  std::vector<std::string> doomed;  // the ids' bytes
  scan(index, prefix, 0, true, [&](std::string_view suffix, std::string_view) {
    doomed.emplace_back(suffix);
    return true;
  });
  size_t n = 0;
  for (const std::string& suffix : doomed) {
    auto id = parse_token_id(suffix);
    if (id && delete_token(realm, *id)) {
      n++;
      continue;
    }
    del(index, prefix + suffix);  // a dangling index entry: drop it
  }
  return n;
}

bool Txn::delete_token(std::string_view realm, const TokenId& id) {
  auto found = find_token(realm, id);
  if (!found) return false;
  auto t = decode_token(found->second);
  if (!t) throw StoreError("corrupt token record", MDB_CORRUPTED);
  del(Db::kTokens, token_key(realm, found->first));
  const std::string suffix = token_id_bytes(found->first);
  if (valid_client_id(t->client_id)) {
    del(Db::kClientTokens, client_tokens_prefix(realm, t->client_id) + suffix);
  }
  if (uint64_t uid = token_user_id(*t))
    del(Db::kUserTokens, user_tokens_prefix(realm, uid) + suffix);
  if (t->has_family()) del(Db::kFamilyTokens, family_prefix(realm, t->family) + suffix);
  return true;
}

std::optional<bool> Txn::client_enabled(std::string_view realm, std::string_view client_id) {
  // the id comes from a token record, checked when the token was issued:
  // only the key's bounds matter here (the validation path)
  if (client_id.empty() || client_id.size() > kMaxClientId || !valid_realm(realm)) {
    return std::nullopt;
  }
  auto v = get(Db::kClients, client_stack_key(realm, client_id).view());
  if (!v) return std::nullopt;
  return record_enabled(realm, *v);
}

bool Txn::record_enabled(std::string_view realm, std::string_view rec) {
  if (rec.size() >= 2 && rec[0] == kRecordV2) {
    return (static_cast<unsigned char>(rec[1]) & kFlagDisabled) == 0;
  }
  auto c = decode_client(realm, rec);  // a version 1 record
  if (!c) throw StoreError("corrupt client record", MDB_CORRUPTED);
  return !c->disabled;
}

namespace {

// What a request is decided on: a client of the same terms may have
// another name, or its secret hashed again (an imported one, on its first
// use); the secret's rotation, too, ends only the requests that come
// after it, as in django-oauth-toolkit
bool same_terms(const Client& a, const Client& b) {
  return a.confidential == b.confidential && a.grant_types == b.grant_types && a.scope == b.scope &&
         a.redirect_uris == b.redirect_uris && a.auth_method == b.auth_method &&
         a.access_token_ttl == b.access_token_ttl &&
         a.access_token_format == b.access_token_format && a.disabled == b.disabled &&
         a.first_party == b.first_party && a.id_token_alg == b.id_token_alg &&
         a.post_logout_redirect_uris == b.post_logout_redirect_uris && a.resources == b.resources &&
         a.dpop_bound_access_tokens == b.dpop_bound_access_tokens;
}

}  // namespace

bool Txn::client_as_read(std::string_view realm, const Client& c) {
  if (!valid_client_id(c.client_id) || !valid_realm(realm) || c.record.empty()) return false;
  auto v = get(Db::kClients, client_stack_key(realm, c.client_id).view());
  if (!v || !record_enabled(realm, *v)) return false;
  if (*v == c.record) return true;
  auto fresh = decode_client(realm, *v);
  return fresh && same_terms(*fresh, c);
}

std::optional<std::string> Txn::active_username(std::string_view realm, uint64_t id) {
  if (!valid_realm(realm) || id == 0) return std::nullopt;
  auto v = get(Db::kUsers, user_stack_key(realm, id).view());
  if (!v) return std::nullopt;
  std::string_view rec = *v;
  if (rec.size() >= 3 && rec[0] == kRecordV2) {
    size_t len = static_cast<unsigned char>(rec[2]);
    if ((static_cast<unsigned char>(rec[1]) & kFlagActive) == 0) return std::nullopt;
    if (rec.size() < 3 + len) throw StoreError("corrupt user record", MDB_CORRUPTED);
    if (len > 0) return std::string(rec.substr(3, len));
    // 0: a name too long for the header, read from the JSON below
  }
  auto u = decode_user(realm, rec);
  if (!u) throw StoreError("corrupt user record", MDB_CORRUPTED);
  if (!u->is_active) return std::nullopt;
  return u->username;
}

std::optional<std::string> Txn::get_meta(std::string_view name) {
  auto v = get(Db::kMeta, name);
  if (!v) return std::nullopt;
  return std::string(*v);
}

void Txn::put_meta(std::string_view name, std::string_view value) {
  put(Db::kMeta, name, value);
}

bool Txn::delete_meta(std::string_view name) {
  if (!del(Db::kMeta, name)) return false;
  return true;
}

std::vector<std::pair<TokenId, Token>> Txn::client_tokens_of_type(std::string_view realm,
                                                                  std::string_view client_id,
                                                                  TokenType type, bool guard) {
  if (!valid_realm(realm) || !valid_client_id(client_id)) return {};
  // not guarded unless asked: an application's index grows with every
  // token it gets, and what reads it mostly (its API keys) looks for one
  // by its id
  return indexed_of_type(realm, Db::kClientTokens, client_tokens_prefix(realm, client_id), type,
                         guard);
}

std::vector<std::pair<TokenId, Token>> Txn::user_tokens_of_type(std::string_view realm,
                                                                uint64_t user, TokenType type) {
  if (!valid_realm(realm) || user == 0) return {};
  // guarded: a change that deletes what it finds (revoke_consent) runs
  // again when a token was added under the user meanwhile, rather than
  // leave it (in cluster mode, one issued on another edge that this
  // edge's mirror had not applied yet)
  return indexed_of_type(realm, Db::kUserTokens, user_tokens_prefix(realm, user), type, true);
}

std::vector<std::pair<TokenId, Token>> Txn::indexed_of_type(std::string_view realm, Db index,
                                                            const std::string& prefix,
                                                            TokenType type, bool guard) {
  std::vector<std::pair<TokenId, Token>> out;
  std::vector<TokenId> ids;
  scan(index, prefix, 0, guard, [&](std::string_view suffix, std::string_view) {
    if (auto id = parse_token_id(suffix)) ids.push_back(*id);
    return true;
  });
  for (const TokenId& id : ids) {
    auto t = get_token(realm, id);
    if (t && t->type == type) out.emplace_back(id, std::move(*t));
  }
  return out;
}

// ---------------------------------------------------------------- users

std::optional<User> Txn::get_user(std::string_view realm, uint64_t id) {
  if (!valid_realm(realm) || id == 0) return std::nullopt;
  auto v = get(Db::kUsers, user_stack_key(realm, id).view());
  if (!v) return std::nullopt;
  auto u = decode_user(realm, *v);
  if (!u) throw StoreError("corrupt user record", MDB_CORRUPTED);
  return u;
}

std::optional<User> Txn::get_user_by_username(std::string_view realm, std::string_view username) {
  if (!valid_realm(realm) || !valid_username(username)) return std::nullopt;
  std::string key = username_key(realm, username);
  auto v = get(Db::kUsernames, key);
  if (!v) return std::nullopt;
  if (v->size() != 8) throw StoreError("corrupt username index", MDB_CORRUPTED);
  return get_user(realm, get_u64_be(v->data()));
}

std::vector<User> Txn::list_users(std::string_view realm, size_t offset, size_t limit,
                                  size_t* total) {
  std::vector<User> out;
  size_t n = 0;
  scan(Db::kUsers, realm_prefix(realm), 8, false, [&](std::string_view, std::string_view rec) {
    if (n >= offset && out.size() < limit) {
      if (auto u = decode_user(realm, rec)) out.push_back(std::move(*u));
    }
    n++;
    return true;
  });
  if (total) *total = n;
  return out;
}

PutUser Txn::put_user(User& u, bool create) {
  if (!valid_realm(u.realm) || !valid_username(u.username) || !storable_text(u.email, 254) ||
      !storable_text(u.first_name, 150) || !storable_text(u.last_name, 150) ||
      !storable_text(u.password, 512)) {
    return PutUser::kInvalid;
  }
  std::optional<User> old;
  if (create) {
    if (!assign_user_id(u)) return PutUser::kInvalid;  // an explicit id that is taken
  } else {
    old = get_user(u.realm, u.id);
    if (!old) return PutUser::kMissing;
  }

  std::string ukey = username_key(u.realm, u.username);
  if (auto holder = get(Db::kUsernames, ukey)) {
    if (holder->size() != 8 || get_u64_be(holder->data()) != u.id) return PutUser::kUsernameTaken;
  }
  if (old && old->username != u.username) del(Db::kUsernames, username_key(u.realm, old->username));
  std::string idv;
  put_u64_be(idv, u.id);
  put(Db::kUsernames, ukey, idv);

  if (old && !old->email.empty() && old->email != u.email) {
    std::string ekey = email_prefix(u.realm, old->email);
    put_u64_be(ekey, u.id);
    del(Db::kEmails, ekey);
  }
  if (!u.email.empty()) {
    std::string ekey = email_prefix(u.realm, u.email);
    put_u64_be(ekey, u.id);
    put(Db::kEmails, ekey, "");
  }
  put(Db::kUsers, user_key(u.realm, u.id), encode_user(u));
  return PutUser::kOk;
}

uint64_t Txn::user_seq(std::string_view realm) {
  auto v = get(Db::kMeta, user_seq_key(realm));
  return v && v->size() == 8 ? get_u64_be(v->data()) : 0;
}

// The realm's id sequence lives in meta; an explicit id (an import keeping
// Django's pks) raises it, automatic ids skip taken ones.  false: the
// explicit id is taken, or was handed out before (at or below the
// sequence, a deleted user's): an id, a user's OpenID Connect sub, is
// never given to a second person.
bool Txn::assign_user_id(User& u) {
  std::string seq_key = user_seq_key(u.realm);
  const uint64_t seq = user_seq(u.realm);
  if (u.id == 0) {
    u.id = seq + 1;
    while (get_user(u.realm, u.id)) u.id++;
  } else if (u.id <= seq || get_user(u.realm, u.id)) {
    return false;
  }
  if (u.id > seq) {
    std::string nv;
    put_u64_be(nv, u.id);
    put(Db::kMeta, seq_key, nv);
  }
  return true;
}

std::vector<uint64_t> Txn::users_by_email(std::string_view realm, std::string_view email,
                                          size_t max) {
  std::vector<uint64_t> out;
  if (!valid_realm(realm) || email.empty() || email.size() > 254 || max == 0) return out;
  scan(Db::kEmails, email_prefix(realm, email), 8, false,
       [&](std::string_view id, std::string_view) {
         out.push_back(get_u64_be(id.data()));
         return out.size() < max;
       });
  return out;
}

size_t Txn::delete_user_tokens(std::string_view realm, uint64_t id) {
  return delete_indexed(realm, Db::kUserTokens, user_tokens_prefix(realm, id));
}

std::optional<AccountLock> Txn::get_account_lock(std::string_view realm, uint64_t user) {
  std::string key = user_key(realm, user);
  auto v = get(Db::kAccountLocks, key);
  if (!v) return std::nullopt;
  auto l = decode_lock(*v);
  if (!l) throw StoreError("corrupt account lock record", MDB_CORRUPTED);
  return l;
}

void Txn::put_account_lock(std::string_view realm, uint64_t user, const AccountLock& lock) {
  put(Db::kAccountLocks, user_key(realm, user), encode_lock(lock));
}

bool Txn::delete_user(std::string_view realm, uint64_t id) {
  auto u = get_user(realm, id);
  if (!u) return false;
  delete_user_tokens(realm, id);
  {
    std::string lkey = user_key(realm, id);
    del(Db::kAccountLocks, lkey);
  }
  std::string nkey = username_key(realm, u->username);
  del(Db::kUsernames, nkey);
  if (!u->email.empty()) {
    std::string ekey = email_prefix(realm, u->email);
    put_u64_be(ekey, id);
    del(Db::kEmails, ekey);
  }
  del(Db::kUsers, user_key(realm, id));
  return true;
}

}  // namespace oauth2
