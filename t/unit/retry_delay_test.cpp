// The wait of oauth2-admin sync between its tries at etcd
// (retry_delay.hpp, used by sync.cpp's sync_run).

#include <gtest/gtest.h>

#include "retry_delay.hpp"

namespace oauth2 {
namespace {

// A watch that was healthy (it brought events, the heartbeats among
// them) and then was lost is followed at once again, however many
// failures the daemon saw before: the doubling only counts failures in
// a row.  Before, the delay was reset only when a watch ended as it
// should (a compaction), so after five ordinary losses of a watch in the
// daemon's life every later one cost 2 s more of a stale mirror, and of
// 503 at the edge (R77).
TEST(SyncRetryDelay, AHealthyWatchLostIsRetriedSoon) {
  RetryDelay d;
  const char* lost = "etcd watch: http://a:2379: nothing heard for 3000 ms";
  EXPECT_EQ(d.after(lost, false), 100);
  EXPECT_EQ(d.after(lost, false), 200);
  EXPECT_EQ(d.after(lost, false), 400);
  EXPECT_EQ(d.after(lost, false), 800);
  EXPECT_EQ(d.after(lost, false), 1600);
  EXPECT_EQ(d.after(lost, false), 2000) << "capped";
  EXPECT_EQ(d.after(lost, false), 2000);
  EXPECT_EQ(d.after(lost, true), 100) << "the watch had been healthy";
  EXPECT_EQ(d.after(lost, false), 200) << "then doubling again from there";
  EXPECT_EQ(d.after("etcdserver: no leader", false), 400);
  EXPECT_EQ(d.after(lost, false), 100) << "after an election, soon";
  d.after(lost, false);
  d.reset();
  EXPECT_EQ(d.after(lost, false), 100) << "after a compaction, soon";
}

}  // namespace
}  // namespace oauth2
