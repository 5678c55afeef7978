// How long oauth2-admin sync waits before it tries etcd again after a
// failure (sync.cpp's sync_run): header only, for the unit tests.

#pragma once

#include <algorithm>
#include <cstdint>
#include <string_view>

namespace oauth2 {

class RetryDelay {
 public:
  static constexpr int64_t kFirstMs = 100;
  static constexpr int64_t kMaxMs = 2000;

  // The wait after a failure whose message is what, doubling from one
  // failure to the next up to kMaxMs.  healthy: what failed was a watch
  // that had brought events first (the heartbeats come back 4 times a
  // second), which starts the count again: an ordinary loss of a watch
  // (a member restarted, cut off) is followed again soon, however many
  // the daemon saw before, and only failures in a row wait longer.
  int64_t after(std::string_view what, bool healthy) {
    if (healthy) next_ = kFirstMs;
    const int64_t wait = next_;
    // members without a leader refuse at once and cheaply: the next try
    // stays near, to follow the new leader soon after its election
    const bool election = what.find("no leader") != std::string_view::npos;
    next_ = election ? kFirstMs : std::min<int64_t>(next_ * 2, kMaxMs);
    return wait;
  }
  // a watch that ended as it should (etcd compacted past it)
  void reset() { next_ = kFirstMs; }

 private:
  int64_t next_ = kFirstMs;
};

}  // namespace oauth2
