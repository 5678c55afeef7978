// Unit tests of the one write path: Store::change (store.hpp) and the group
// committer (committer.hpp), against a real store in a temporary directory.
// A change is applied only if what it read still holds; a batch applies
// the changes that hold and leaves the others to run again; a full map
// refuses only the change at fault.

#include "committer.hpp"

#include <gtest/gtest.h>
#include <lmdb.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "cluster.hpp"
#include "store_records.hpp"
#include "store.hpp"
#include "test_helpers.hpp"

using oauth2::Change;
using oauth2::Committer;
using oauth2::Db;
using oauth2::Store;
using oauth2::StoreError;
using oauth2::Txn;

// The next allocation on this thread fails when set (an out-of-memory in
// the group commit's leader); off, operator new is malloc's, as the
// standard library's own.
namespace {
thread_local bool t_fail_next_allocation = false;
}  // namespace

void* operator new(std::size_t n) {
  if (t_fail_next_allocation) {
    t_fail_next_allocation = false;
    throw std::bad_alloc();
  }
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

namespace {

constexpr size_t kMapSize = size_t(64) << 20;

class CommitterTest : public ::testing::Test {
 protected:
  void SetUp() override { open(kMapSize); }
  void TearDown() override {
    store_.reset();
    dir_.reset();
  }
  void open(size_t map_size) {
    store_.reset();
    dir_ = std::make_unique<oauth2_test::TempDir>();
    store_ = std::make_unique<Store>(dir_->path() + "/store", map_size);
  }

  std::optional<std::string> meta(const std::string& name) {
    Txn txn = store_->read();
    return txn.get_meta(name);
  }

  // a change that read `key` absent and writes it
  static Change create(const std::string& key, const std::string& value) {
    Change c;
    c.reads.push_back({Db::kMeta, key, std::nullopt});
    c.writes.push_back({Db::kMeta, key, value});
    return c;
  }

  std::unique_ptr<oauth2_test::TempDir> dir_;
  std::unique_ptr<Store> store_;
};

// A batch whose second change read what the first one wrote: the first
// and the third are applied, the second is not (and changes nothing).
TEST_F(CommitterTest, BatchAppliesWhatHoldsAndSkipsTheConflict) {
  Change a = create("x", "a");
  Change b = create("x", "b");  // also saw "x" absent: overtaken by a
  Change c = create("y", "c");
  auto out = store_->committer().commit_batch({&a, &b, &c});
  ASSERT_EQ(out.size(), 3u);
  EXPECT_TRUE(out[0].applied);
  EXPECT_FALSE(out[1].applied);
  EXPECT_FALSE(out[1].error);
  EXPECT_TRUE(out[2].applied);
  EXPECT_EQ(meta("x"), "a");
  EXPECT_EQ(meta("y"), "c");
}

// A read of a value (not only of an absence) is checked too.
TEST_F(CommitterTest, AChangedValueIsAConflict) {
  store_->change([](Txn& txn) {
    txn.put_meta("n", "1");
    txn.commit();
  });
  Change stale;
  stale.reads.push_back({Db::kMeta, "n", std::string("0")});
  stale.writes.push_back({Db::kMeta, "n", std::string("1-from-0")});
  Change fresh;
  fresh.reads.push_back({Db::kMeta, "n", std::string("1")});
  fresh.writes.push_back({Db::kMeta, "n", std::string("2")});
  auto out = store_->committer().commit_batch({&stale, &fresh});
  EXPECT_FALSE(out[0].applied);
  EXPECT_TRUE(out[1].applied);
  EXPECT_EQ(meta("n"), "2");
}

// Store::change runs decide again when another change overtook its reads:
// here a nested change, committed while the outer one was deciding.
TEST_F(CommitterTest, ChangeRunsAgainWhenOvertaken) {
  int runs = 0;
  std::string seen_on_last_run;
  store_->change([&](Txn& txn) {
    runs++;
    auto v = txn.get_meta("counter");
    seen_on_last_run = v.value_or("none");
    if (runs == 1) {
      store_->change([](Txn& other) {
        other.put_meta("counter", "from-other");
        other.commit();
      });
    }
    txn.put_meta("counter", v ? *v + "+1" : "1");
    txn.commit();
  });
  EXPECT_EQ(runs, 2);
  EXPECT_EQ(seen_on_last_run, "from-other");
  EXPECT_EQ(meta("counter"), "from-other+1");
}

// A change overtaken on every optimistic run finally runs inside the
// committer's write transaction, where nothing can overtake it.
TEST_F(CommitterTest, AHotRecordEndsInAnExclusiveRun) {
  int runs = 0;
  store_->change([&](Txn& txn) {
    runs++;
    auto v = txn.get_meta("hot");
    if (runs <= Store::kOptimisticRuns) {
      store_->change([&](Txn& other) {
        other.put_meta("hot", "other-" + std::to_string(runs));
        other.commit();
      });
    }
    txn.put_meta("hot", v.value_or("none") + "+mine");
    txn.commit();
  });
  EXPECT_EQ(runs, Store::kOptimisticRuns + 1);
  EXPECT_EQ(meta("hot"), "other-" + std::to_string(Store::kOptimisticRuns) + "+mine");
}

// A guarded range read (an index a change deletes through) conflicts with
// a record added under the range meanwhile.
TEST_F(CommitterTest, AGuardedScanConflictsWithAnAddition) {
  store_->change([](Txn& txn) {
    txn.put(Db::kMeta, "range/a", "1");
    txn.commit();
  });
  int runs = 0;
  size_t deleted = 0;
  store_->change([&](Txn& txn) {
    runs++;
    std::vector<std::string> keys;
    txn.scan(Db::kMeta, "range/", 0, true, [&](std::string_view suffix, std::string_view) {
      keys.emplace_back(suffix);
      return true;
    });
    if (runs == 1) {
      store_->change([](Txn& other) {
        other.put(Db::kMeta, "range/b", "2");
        other.commit();
      });
    }
    for (const auto& k : keys) txn.del(Db::kMeta, "range/" + k);
    deleted = keys.size();
    txn.commit();
  });
  EXPECT_EQ(runs, 2);
  EXPECT_EQ(deleted, 2u);  // the second run saw the addition
  EXPECT_FALSE(meta("range/a"));
  EXPECT_FALSE(meta("range/b"));
}

// No lost update: 32 threads each add one to a counter.
TEST_F(CommitterTest, ParallelIncrementsLoseNothing) {
  constexpr int kThreads = 32;
  const Committer::Stats before = store_->committer().stats();  // the open's
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; i++) {
    threads.emplace_back([&] {
      store_->change([](Txn& txn) {
        auto v = txn.get_meta("count");
        txn.put_meta("count", std::to_string(v ? std::stoi(*v) + 1 : 1));
        txn.commit();
      });
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(meta("count"), std::to_string(kThreads));
  Committer::Stats st = store_->committer().stats();
  st.changes -= before.changes;
  st.conflicts -= before.conflicts;
  EXPECT_GE(st.changes, static_cast<uint64_t>(kThreads));  // the re-runs too
  EXPECT_EQ(st.changes - st.conflicts, static_cast<uint64_t>(kThreads));
}

// Independent changes from many threads are grouped: fewer batches (and
// syncs) than changes.
TEST_F(CommitterTest, ParallelChangesShareCommits) {
  constexpr int kThreads = 32;
  const Committer::Stats before = store_->committer().stats();
  constexpr int kEach = 20;
  std::atomic<int> go{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; i++) {
    threads.emplace_back([&, i] {
      go++;
      while (go.load() < kThreads) std::this_thread::yield();
      for (int j = 0; j < kEach; j++) {
        store_->change([&](Txn& txn) {
          txn.put_meta("k" + std::to_string(i) + "-" + std::to_string(j), "v");
          txn.commit();
        });
      }
    });
  }
  for (auto& t : threads) t.join();
  Committer::Stats st = store_->committer().stats();
  st.changes -= before.changes;
  st.batches -= before.batches;
  st.conflicts -= before.conflicts;
  EXPECT_EQ(st.changes, static_cast<uint64_t>(kThreads * kEach));
  EXPECT_EQ(st.conflicts, 0u);
  EXPECT_LT(st.batches, st.changes);
  for (int i = 0; i < kThreads; i++) EXPECT_EQ(meta("k" + std::to_string(i) + "-19"), "v");
}

// A flood: more changes waiting at once than one batch takes
// (kMaxBatch).  The queue has no other bound, so none is refused: the
// leader keeps leading until its own change is in, and every change is
// applied once.
TEST_F(CommitterTest, AFloodBeyondOneBatchIsAllApplied) {
  const int kThreads = static_cast<int>(Committer::kMaxBatch) + 44;
  std::atomic<int> go{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; i++) {
    threads.emplace_back([&, i] {
      go++;
      while (go.load() < kThreads) std::this_thread::yield();
      try {
        store_->change([&](Txn& txn) {
          txn.put_meta("flood" + std::to_string(i), "v");
          txn.commit();
        });
      } catch (...) {
        failed++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  for (int i = 0; i < kThreads; i++) EXPECT_EQ(meta("flood" + std::to_string(i)), "v") << i;
}

// A change that does not fit the map is refused with a clear error; the
// others of its batch are applied, and nothing of it is written.
TEST_F(CommitterTest, AFullMapRefusesOnlyTheChangeAtFault) {
  open(size_t(1) << 20);  // 1 MiB
  Change big;
  for (int i = 0; i < 4000; i++) {
    big.writes.push_back({Db::kMeta, "big" + std::to_string(i), std::string(1000, 'x')});
  }
  Change small = create("small", "fits");
  auto out = store_->committer().commit_batch({&big, &small});
  ASSERT_TRUE(out[0].error);
  EXPECT_FALSE(out[0].applied);
  try {
    std::rethrow_exception(out[0].error);
  } catch (const StoreError& e) {
    EXPECT_EQ(e.rc(), MDB_MAP_FULL);
    EXPECT_NE(std::string(e.what()).find("the store is full"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(out[1].applied);
  EXPECT_EQ(meta("small"), "fits");
  EXPECT_FALSE(meta("big0"));
  // and through Store::change: the error reaches the caller
  EXPECT_THROW(store_->change([](Txn& txn) {
    for (int i = 0; i < 4000; i++)
      txn.put_meta("again" + std::to_string(i), std::string(1000, 'y'));
    txn.commit();
  }),
               StoreError);
  EXPECT_FALSE(meta("again0"));
  store_->change([](Txn& txn) {
    txn.put_meta("after", "ok");
    txn.commit();
  });
  EXPECT_EQ(meta("after"), "ok");
}

// A change that failed (the store is full) is counted as a change, never
// as a conflict: oauth2_store_conflicts_total shows contention, not a
// full store.
TEST_F(CommitterTest, AFullStoreIsNoConflictInTheStats) {
  open(size_t(1) << 20);  // 1 MiB
  const Committer::Stats before = store_->committer().stats();
  EXPECT_THROW(store_->change([](Txn& txn) {
    for (int i = 0; i < 4000; i++) txn.put_meta("big" + std::to_string(i), std::string(1000, 'x'));
    txn.commit();
  }),
               StoreError);
  const Committer::Stats after = store_->committer().stats();
  EXPECT_EQ(after.changes - before.changes, 1u);
  EXPECT_EQ(after.conflicts, before.conflicts);
}

// oauth2_metrics' commit histograms count commits only: a batch that a
// full map failed is none, the change of it that fits alone is one of
// its own (a batch of one), and the change at fault is a write error,
// never a commit nor a conflict.
TEST_F(CommitterTest, AFailedBatchIsNoCommitInTheMetrics) {
  open(size_t(1) << 20);  // 1 MiB
  oauth2_write_metrics_t m{};
  store_->committer().share_metrics(&m);
  Change big;
  for (int i = 0; i < 4000; i++) {
    big.writes.push_back({Db::kMeta, "big" + std::to_string(i), std::string(1000, 'x')});
  }
  Change small = create("small", "fits");
  auto out = store_->committer().commit_prepared([&] {
    return std::vector<const Change*>{&big, &small};
  });
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(out[0].error);
  EXPECT_TRUE(out[1].applied);
  EXPECT_EQ(m.batches, 1u);  // the small change alone
  EXPECT_EQ(m.changes, 1u);
  EXPECT_EQ(m.batch[0], 1u);  // le="1"
  uint64_t commits = 0;
  for (uint64_t n : m.commit) commits += n;
  EXPECT_EQ(commits, 1u);
  EXPECT_EQ(m.errors, 1u);
  EXPECT_EQ(m.conflicts, 0u);
  // through Store::change: refused, counted as an error and nothing else
  EXPECT_THROW(store_->change([](Txn& txn) {
    for (int i = 0; i < 4000; i++)
      txn.put_meta("again" + std::to_string(i), std::string(1000, 'y'));
    txn.commit();
  }),
               StoreError);
  EXPECT_EQ(m.batches, 1u);
  EXPECT_EQ(m.changes, 1u);
  EXPECT_EQ(m.errors, 2u);
  // a change that fits: one commit of one change
  store_->change([](Txn& txn) {
    txn.put_meta("after", "ok");
    txn.commit();
  });
  EXPECT_EQ(m.batches, 2u);
  EXPECT_EQ(m.changes, 2u);
  EXPECT_EQ(m.batch[0], 2u);
  EXPECT_EQ(m.errors, 2u);
  store_->committer().share_metrics(nullptr);
}

// A change that only reads, or never calls commit(), writes nothing and
// never reaches the committer.
TEST_F(CommitterTest, AChangeWithoutWritesSkipsTheCommitter) {
  const uint64_t before = store_->committer().stats().changes;
  store_->change([](Txn& txn) { (void)txn.get_meta("nothing"); });
  store_->change([](Txn& txn) { txn.put_meta("dropped", "x"); });
  EXPECT_EQ(store_->committer().stats().changes, before);
  EXPECT_FALSE(meta("dropped"));
}

// An exception in decide propagates and writes nothing.
TEST_F(CommitterTest, AThrowingDecisionWritesNothing) {
  EXPECT_THROW(store_->change([](Txn& txn) {
    txn.put_meta("half", "written");
    txn.commit();
    throw std::runtime_error("decided against it");
  }),
               std::runtime_error);
  EXPECT_FALSE(meta("half"));
}

// A leader whose batch fails to allocate (out of memory, after it took
// its own change out of the queue) fails that change with the exception
// and leaves the lead: the next change is committed.  Before, the lead
// stayed with the thread that had left, and every later change waited
// for it for ever.
TEST_F(CommitterTest, ALeaderThatCannotAllocateFailsItsChangeAndLeavesTheLead) {
  Change c0 = create("a", "1"), c1 = create("b", "1"), c2 = create("c", "1");
  ASSERT_TRUE(store_->committer().commit(c0));  // the queue's vectors hold one: no allocation
  std::thread([&] {
    t_fail_next_allocation = true;
    EXPECT_THROW(store_->committer().commit(c1), std::bad_alloc);
    t_fail_next_allocation = false;
  }).join();
  EXPECT_FALSE(meta("b"));
  auto next = std::make_shared<std::promise<bool>>();
  std::thread([this, next, &c2] { next->set_value(store_->committer().commit(c2)); }).detach();
  auto f = next->get_future();
  if (f.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    std::fprintf(stderr, "the committer waits for a leader that is gone\n");
    std::_Exit(1);  // a thread is stuck in the store: no teardown
  }
  EXPECT_TRUE(f.get());
  EXPECT_EQ(meta("c"), "1");
}

// A store that became a mirror after this process opened it (sync's first
// snapshot into the empty store the packaged daemon had opened; here
// another process marks it so, as sync does): no local change is applied
// to it, through the committer or a prepared batch, as a store opened as
// a mirror refuses them.  Before, the process that had opened it first
// went on writing into the mirror, and etcd never saw its writes.
TEST_F(CommitterTest, AStoreThatBecameAMirrorTakesNoLocalChange) {
  ASSERT_TRUE(store_->committer().commit(create("before", "1")));
  const std::string path = store_->path();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {  // the other process: LMDB itself, as little as can be
    MDB_env* env = nullptr;
    MDB_txn* txn = nullptr;
    MDB_dbi dbi;
    MDB_val k{std::strlen(oauth2::kMirrorOfMeta), const_cast<char*>(oauth2::kMirrorOfMeta)};
    MDB_val v{std::strlen("etcd /oauth2/"), const_cast<char*>("etcd /oauth2/")};
    int rc = mdb_env_create(&env) || mdb_env_set_maxdbs(env, 16) ||
             mdb_env_set_mapsize(env, kMapSize) || mdb_env_open(env, path.c_str(), 0, 0660) ||
             mdb_txn_begin(env, nullptr, 0, &txn) || mdb_dbi_open(txn, "meta", 0, &dbi) ||
             mdb_put(txn, dbi, &k, &v, 0) || mdb_txn_commit(txn);
    _exit(rc == 0 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the other process marked it";
  EXPECT_THROW(store_->committer().commit(create("after", "1")), StoreError);
  EXPECT_FALSE(meta("after"));
  EXPECT_TRUE(store_->is_mirror()) << "and this process knows it from then on";
  EXPECT_THROW(store_->change([](Txn& txn) {
    txn.put_meta("later", "1");
    txn.commit();
  }),
               StoreError);
  EXPECT_FALSE(meta("later"));
}

}  // namespace

namespace {

Change write_of(Db db, const std::string& key, std::optional<std::string> value) {
  Change c;
  c.writes.push_back({db, key, std::move(value)});
  return c;
}

}  // namespace

// The validation epochs (kValidEpochMeta and kValidEpochsMeta, the
// workers' validation cache's clocks): a change that replaces or deletes
// an application or user record moves the epoch of every token on, one
// that replaces or deletes a token record the epoch of its bucket (the
// last byte of its key) alone, in its own commit, one step per change of
// a batch; one that creates them, deletes what is not there, or writes
// any other database (indexes, meta, account locks) moves none.  R52, R66.
TEST_F(CommitterTest, TheValidationEpochMovesOnlyForWhatValidationReads) {
  auto epoch = [&] { return store_->read().valid_epoch(); };
  auto bucket = [&](char b) { return store_->read().token_valid_epoch(static_cast<uint8_t>(b)); };
  EXPECT_EQ(epoch(), 0u);
  for (Db db : {Db::kTokens, Db::kClients, Db::kUsers}) {
    ASSERT_TRUE(store_->committer().commit(write_of(db, "k", "v1")));
  }
  ASSERT_TRUE(store_->committer().commit(write_of(Db::kClientTokens, "i", "v1")));
  ASSERT_TRUE(store_->committer().commit(write_of(Db::kAccountLocks, "l", "v1")));
  ASSERT_TRUE(store_->committer().commit(write_of(Db::kTokens, "absent", std::nullopt)));
  EXPECT_EQ(epoch(), 0u) << "creations and a deletion of nothing";
  EXPECT_EQ(bucket('k'), 0u);
  EXPECT_EQ(bucket('t'), 0u);
  ASSERT_TRUE(store_->committer().commit(write_of(Db::kClientTokens, "i", "v2")));
  ASSERT_TRUE(store_->committer().commit(write_of(Db::kAccountLocks, "l", std::nullopt)));
  ASSERT_TRUE(store_->committer().commit(write_of(Db::kMeta, "m", "v2")));
  EXPECT_EQ(epoch(), 0u) << "what validation does not read";
  EXPECT_EQ(bucket('k'), 0u);

  // a token: its bucket's epoch alone
  ASSERT_TRUE(store_->committer().commit(write_of(Db::kTokens, "k", "v2")));
  EXPECT_EQ(bucket('k'), 1u) << "a token replaced";
  ASSERT_TRUE(store_->committer().commit(write_of(Db::kTokens, "k", "v2")));
  EXPECT_EQ(bucket('k'), 2u) << "a token rewritten as it was";
  EXPECT_EQ(epoch(), 0u);
  EXPECT_EQ(bucket('j'), 0u);
  EXPECT_EQ(bucket('l'), 0u);
  // an application or a user: every bucket's
  uint64_t want = 0;
  for (Db db : {Db::kClients, Db::kUsers}) {
    ASSERT_TRUE(store_->committer().commit(write_of(db, "k", "v2")));
    EXPECT_EQ(epoch(), ++want) << "replaced in " << oauth2::db_name(db);
    ASSERT_TRUE(store_->committer().commit(write_of(db, "k", "v2")));
    EXPECT_EQ(epoch(), ++want) << "rewritten as it was in " << oauth2::db_name(db);
  }
  EXPECT_EQ(bucket('j'), want);
  EXPECT_EQ(bucket('k'), want + 2);
  for (Db db : {Db::kClients, Db::kUsers}) {
    ASSERT_TRUE(store_->committer().commit(write_of(db, "k", std::nullopt)));
    EXPECT_EQ(epoch(), ++want) << "deleted from " << oauth2::db_name(db);
  }
  ASSERT_TRUE(store_->committer().commit(write_of(Db::kTokens, "k", std::nullopt)));
  EXPECT_EQ(bucket('k'), want + 3) << "a token deleted";
  EXPECT_EQ(bucket('j'), want);
  // one batch: a creation, two replacements: two steps, one commit
  ASSERT_TRUE(store_->committer().commit(write_of(Db::kTokens, "a", "1")));
  ASSERT_TRUE(store_->committer().commit(write_of(Db::kTokens, "ba", "1")));
  ASSERT_TRUE(store_->committer().commit(write_of(Db::kTokens, "b", "1")));
  const Change fresh = write_of(Db::kTokens, "c", "1");
  const Change ra = write_of(Db::kTokens, "a", "2"), rba = write_of(Db::kTokens, "ba", "2"),
               rb = write_of(Db::kTokens, "b", "2");
  auto out = store_->committer().commit_batch({&fresh, &ra, &rba, &rb});
  ASSERT_EQ(out.size(), 4u);
  for (const auto& o : out) EXPECT_TRUE(o.applied);
  EXPECT_EQ(bucket('a'), want + 2) << "a and ba: one bucket";
  EXPECT_EQ(bucket('b'), want + 1);
  EXPECT_EQ(bucket('c'), want) << "a creation";
  EXPECT_EQ(epoch(), want);
  EXPECT_EQ(meta(oauth2::kValidEpochMeta), std::to_string(want));
  EXPECT_EQ(meta(oauth2::kValidEpochsMeta).value_or("").size(), oauth2::kTokenEpochBuckets * 8);
}

// A user record rewritten with what validation reads unchanged (the
// active flag and the name: a sign-in's last_login, a password, an email)
// moves no epoch: every sign-in of any realm ended every worker's cached
// answers for every token of every realm.  A changed flag or name, or a
// record whose header does not hold the name, moves every token's.
TEST_F(CommitterTest, AUserRecordChangedOnlyWhereValidationDoesNotReadMovesNoEpoch) {
  auto epoch = [&] { return store_->read().valid_epoch(); };
  oauth2::User u;
  u.id = 7;
  u.username = "alice";
  u.password = "x";
  auto put = [&](const oauth2::User& user) {
    return store_->committer().commit(
        write_of(Db::kUsers, "u", oauth2::records::encode_user(user)));
  };
  ASSERT_TRUE(put(u));
  u.last_login = 1700000000;
  u.password = "y";
  u.email = "a@example.com";
  u.is_staff = true;
  ASSERT_TRUE(put(u));
  EXPECT_EQ(epoch(), 0u) << "last_login, password, email, staff";
  u.is_active = false;
  ASSERT_TRUE(put(u));
  EXPECT_EQ(epoch(), 1u) << "disabled";
  ASSERT_TRUE(put(u));
  EXPECT_EQ(epoch(), 1u) << "disabled again";
  u.is_active = true;
  ASSERT_TRUE(put(u));
  EXPECT_EQ(epoch(), 2u) << "enabled";
  u.username = "alicia";
  ASSERT_TRUE(put(u));
  EXPECT_EQ(epoch(), 3u) << "renamed";
  u.username = std::string(300, 'a');  // too long for the header
  ASSERT_TRUE(put(u));
  EXPECT_EQ(epoch(), 4u);
  ASSERT_TRUE(put(u));
  EXPECT_EQ(epoch(), 5u) << "a name the header does not hold: compared as different";
}

// A value of the epoch that is no number is a corrupt store, never read
// as 0: an epoch read as 0 and stepped to 1 at every change would match
// every entry kept at 1 (R66).
TEST_F(CommitterTest, ACorruptValidationEpochIsAnErrorNotZero) {
  ASSERT_TRUE(store_->committer().commit(write_of(Db::kMeta, oauth2::kValidEpochMeta, "x1")));
  EXPECT_THROW(store_->read().valid_epoch(), StoreError);
  EXPECT_NO_THROW(store_->committer().commit(write_of(Db::kClients, "k", "v")));  // a creation
  EXPECT_THROW(store_->committer().commit(write_of(Db::kClients, "k", "w")), StoreError);
  EXPECT_THROW(store_->read().token_valid_epoch('k'), StoreError) << "it is every token's too";
  EXPECT_EQ(store_->read().get(Db::kClients, "k"), std::optional<std::string_view>("v"))
      << "the replacement was not applied";
  for (const char* bad : {"", "-1", "18446744073709551615", "12 ", "0x10"}) {
    ASSERT_TRUE(store_->committer().commit(write_of(Db::kMeta, oauth2::kValidEpochMeta, bad)));
    EXPECT_THROW(store_->read().valid_epoch(), StoreError) << "\"" << bad << "\"";
  }
  ASSERT_TRUE(store_->committer().commit(write_of(Db::kMeta, oauth2::kValidEpochMeta, "41")));
  EXPECT_EQ(store_->read().valid_epoch(), 41u);
}

// ... and so is a token buckets' record of another size than 256 numbers
// of 8 bytes: nothing reads a bucket's epoch from it, nothing moves one
TEST_F(CommitterTest, CorruptTokenEpochsAreAnErrorNotZero) {
  ASSERT_TRUE(store_->committer().commit(write_of(Db::kTokens, "k", "v")));
  ASSERT_TRUE(store_->committer().commit(write_of(Db::kTokens, "k", "w")));
  std::string epochs = meta(oauth2::kValidEpochsMeta).value_or("");
  ASSERT_EQ(epochs.size(), 2048u);
  EXPECT_EQ(epochs['k' * 8], 1) << "little-endian, bucket 'k'";
  EXPECT_EQ(store_->read().token_valid_epoch('k'), 1u);
  for (const std::string& bad : {std::string(), epochs.substr(1), epochs + '\0'}) {
    ASSERT_TRUE(store_->committer().commit(write_of(Db::kMeta, oauth2::kValidEpochsMeta, bad)));
    EXPECT_THROW(store_->read().token_valid_epoch('k'), StoreError) << bad.size();
    EXPECT_THROW(store_->committer().commit(write_of(Db::kTokens, "k", "x")), StoreError);
    EXPECT_EQ(store_->read().get(Db::kTokens, "k"), std::optional<std::string_view>("w"))
        << "the replacement was not applied";
  }
  epochs['k' * 8] = 7;
  ASSERT_TRUE(store_->committer().commit(write_of(Db::kMeta, oauth2::kValidEpochsMeta, epochs)));
  EXPECT_EQ(store_->read().token_valid_epoch('k'), 7u);
  ASSERT_TRUE(store_->committer().commit(write_of(Db::kTokens, "k", "x")));
  EXPECT_EQ(store_->read().token_valid_epoch('k'), 8u);
}
