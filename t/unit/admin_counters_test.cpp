// The admin daemon's counters of failed sign-ins and its queue of
// password hashes (src/admin/counters.hpp): bounded, and no bound a way
// to unlock a locked account or to hold every connection
// (docs/security.md R17, R88).

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "../../src/admin/counters.hpp"

namespace {

using oauth2::admin::HashSlots;
using oauth2::admin::MemoryCounters;

unsigned check(oauth2_counters_t& c, const std::string& key, unsigned limit, unsigned window) {
  return c.check(c.ctx, reinterpret_cast<const unsigned char*>(key.data()), key.size(), limit,
                 window);
}

void fail(oauth2_counters_t& c, const std::string& key, unsigned window) {
  c.failed(c.ctx, reinterpret_cast<const unsigned char*>(key.data()), key.size(), window);
}

// A table full of live counts refuses a new key (the caller answers 429)
// and keeps every count it holds: a flood of new addresses never evicts
// the count that throttles an account.
TEST(MemoryCounters, FullOfLiveCountsRefusesNewKeysAndKeepsTheLockR17) {
  MemoryCounters m(4);
  int said = 0;  // R84: a full table says so, once until it has room again
  m.on_full = [&said](size_t keys) {
    EXPECT_EQ(keys, 4u);
    said++;
  };
  oauth2_counters_t c = m.counters();
  for (int i = 0; i < 3; i++) fail(c, "victim", 60);
  const unsigned locked = check(c, "victim", 3, 60);
  EXPECT_GT(locked, 0u);
  EXPECT_LE(locked, 60u);
  for (int i = 0; i < 3; i++) fail(c, "other" + std::to_string(i), 60);
  EXPECT_EQ(check(c, "flood", 3, 60), OAUTH2_COUNTER_FULL);
  for (int i = 0; i < 100; i++) fail(c, "flood" + std::to_string(i), 60);
  EXPECT_EQ(said, 1) << "the full table said so once";
  const unsigned still = check(c, "victim", 3, 60);
  EXPECT_NE(still, OAUTH2_COUNTER_FULL);
  EXPECT_GT(still, 0u) << "a flood of new keys unlocked the account";
}

// Once a window has ended the next failure opens a new one: the limit
// holds in every window, not only in the first.
TEST(MemoryCounters, EachWindowCountsAfreshR17) {
  MemoryCounters m;
  oauth2_counters_t c = m.counters();
  // a window of 2 s: the calls below, each well within a second, cannot
  // straddle one
  for (int i = 0; i < 2; i++) fail(c, "k", 2);
  EXPECT_GT(check(c, "k", 2, 2), 0u);
  std::this_thread::sleep_for(std::chrono::milliseconds(3100));
  EXPECT_EQ(check(c, "k", 2, 2), 0u) << "the window has ended";
  fail(c, "k", 2);
  EXPECT_EQ(check(c, "k", 2, 2), 0u) << "one failure in the new window";
  fail(c, "k", 2);
  EXPECT_GT(check(c, "k", 2, 2), 0u) << "two failures in the new window: throttled";
}

// R80: an entry counted while the clock was ahead (NTP stepping it back,
// a virtual machine resumed) ends a step's length off.  As the module's
// zone (NGX_HTTP_OAUTH2_LIMIT_STEP) and the store's account lock do, an
// entry that ends more than two days ahead starts again: it neither
// throttles its address or account for the step's length nor holds its
// slot in a full table.
TEST(MemoryCounters, AnEntryDatedByAClockSinceSteppedBackStartsAgainR80) {
  constexpr int64_t kDay = 86400;
  int64_t now = 1700000000;
  MemoryCounters m(2, [&now] { return now; });
  oauth2_counters_t c = m.counters();
  now += 30 * kDay;  // the clock ran a month ahead
  for (int i = 0; i < 3; i++) fail(c, "victim", 60);
  fail(c, "other", 60);
  EXPECT_EQ(check(c, "victim", 3, 60), 60u) << "throttled while the clock is ahead";
  EXPECT_EQ(check(c, "new", 3, 60), OAUTH2_COUNTER_FULL) << "both slots live";

  now -= 30 * kDay;  // and steps back
  EXPECT_EQ(check(c, "victim", 3, 60), 0u) << "a month's Retry-After after the step back";
  fail(c, "victim", 60);
  EXPECT_EQ(check(c, "victim", 3, 60), 0u) << "one failure in its new window";
  for (int i = 0; i < 2; i++) fail(c, "victim", 60);
  EXPECT_EQ(check(c, "victim", 3, 60), 60u) << "three: throttled again, for the window";
  EXPECT_EQ(check(c, "new", 3, 60), 0u)
      << "the entry dated ahead (\"other\") still holds its slot after the step back";

  // a window's own length ahead is no step: it still counts
  now += 30;
  EXPECT_EQ(check(c, "victim", 3, 60), 30u);
}

// With every slot running and the queue full, one more is refused at
// once, not queued: a flood of sign-ins cannot hold every connection
// thread for the queue's wait (R88).
TEST(HashSlots, AFullQueueRefusesAtOnceR88) {
  HashSlots slots(1, 1, std::chrono::seconds(30));
  HashSlots::Slot running = slots.acquire();
  ASSERT_TRUE(running);
  auto queued = std::async(std::launch::async, [&] { return static_cast<bool>(slots.acquire()); });
  // the queued one is waiting once a third is refused; give it the time
  // to start waiting, then ask
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto third = std::async(std::launch::async, [&] { return static_cast<bool>(slots.acquire()); });
  ASSERT_EQ(third.wait_for(std::chrono::seconds(5)), std::future_status::ready)
      << "the third waited in a full queue";
  EXPECT_FALSE(third.get());
  running.reset();
  ASSERT_EQ(queued.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_TRUE(queued.get()) << "the queued one runs once the slot is free";
}

}  // namespace
