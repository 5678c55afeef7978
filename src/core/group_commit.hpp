// The turn-taking of a group commit, shared by the local Committer and the
// cluster's (etcd) one: threads that want a change applied wait in a
// queue; the first to arrive leads, takes what waits (itself among it),
// commits it with the lock released, and hands the lead to the first of
// those that came meanwhile.  Each waiter is woken once, when it is done
// or leads: no herd of wake-ups per batch.

#pragma once

#include <condition_variable>
#include <mutex>
#include <vector>

namespace oauth2 {

// Waiter has bool done, bool lead and std::condition_variable cv.
template <typename Waiter>
class GroupQueue {
 public:
  // the waiters not yet taken into a batch, in arrival order
  std::vector<Waiter*> waiting;

  // Queues w (lk holds the owner's mutex) and returns once w is done.
  // lead(lk) runs while w leads: it takes waiters out of `waiting` (the
  // front one always: that is the leader's own, or the one handed the
  // lead), commits them and marks them done, and may unlock meanwhile.
  template <typename Lead>
  void wait_done(std::unique_lock<std::mutex>& lk, Waiter& w, Lead&& lead) {
    waiting.push_back(&w);
    if (!leading_) leading_ = w.lead = true;
    while (!w.done) {
      if (!w.lead) {
        w.cv.wait(lk);
        continue;
      }
      lead(lk);  // w's batch, or one before it when more wait than fit
      if (!w.done) continue;
      w.lead = false;
      if (waiting.empty()) {
        leading_ = false;
      } else {
        waiting.front()->lead = true;
        waiting.front()->cv.notify_one();
      }
    }
  }

 private:
  bool leading_ = false;
};

}  // namespace oauth2
