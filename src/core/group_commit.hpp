// The turn-taking of a group commit, shared by the local Committer and the
// cluster's (etcd) one: threads that want a change applied wait in a
// queue; the first to arrive leads, takes what waits (itself among it),
// commits it with the lock released, and hands the lead to the first of
// those that came meanwhile.  Each waiter is woken once, when it is done
// or leads: no herd of wake-ups per batch.

#pragma once

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <vector>

namespace oauth2 {

// Waiter has bool done, bool lead, std::condition_variable cv and
// void fail(std::exception_ptr), which records why it was not applied.
template <typename Waiter>
class GroupQueue {
 public:
  // the waiters not yet taken into a batch, in arrival order
  std::vector<Waiter*> waiting;
  // those the leader took out of `waiting` and has not marked done yet
  std::vector<Waiter*> taken;

  // Queues w (lk holds the owner's mutex) and returns once w is done.
  // lead(lk) runs while w leads: it moves waiters from `waiting` to
  // `taken` (the front one always: that is the leader's own, or the one
  // handed the lead), commits them, marks them done and clears `taken`,
  // and may unlock meanwhile.  If it throws (an allocation failed), what
  // it took, and w if it took not even w, fail with the exception: no
  // waiter is left waiting for a leader that is gone.
  template <typename Lead>
  void wait_done(std::unique_lock<std::mutex>& lk, Waiter& w, Lead&& lead) {
    waiting.push_back(&w);
    if (!leading_) leading_ = w.lead = true;
    while (!w.done) {
      if (!w.lead) {
        w.cv.wait(lk);
        continue;
      }
      try {
        lead(lk);  // w's batch, or one before it when more wait than fit
      } catch (...) {
        fail_taken(lk, w, std::current_exception());
      }
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
  void fail_taken(std::unique_lock<std::mutex>& lk, Waiter& w, std::exception_ptr e) {
    if (!lk.owns_lock()) lk.lock();
    for (Waiter* t : taken) {
      t->fail(e);
      t->done = true;
      if (t != &w) t->cv.notify_one();
    }
    taken.clear();
    if (!w.done) {
      waiting.erase(std::find(waiting.begin(), waiting.end(), &w));
      w.fail(e);
      w.done = true;
    }
  }

  bool leading_ = false;
};

}  // namespace oauth2
