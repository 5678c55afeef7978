// The admin daemon's side of the throttles (src/core/throttle.hpp): the
// counters of failed attempts the module keeps in nginx's shared memory,
// here in this process's memory, bounded like the module's zone (a full
// table refuses new keys, never forgets a live count); and the bound on
// password hashes running at once, so that a flood of sign-ins cannot
// take every connection thread and the CPU with it.

#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>

#include "../../include/oauth2.h"

namespace oauth2::admin {

class MemoryCounters {
 public:
  // seconds since the epoch: time(2), or a test's clock
  using Clock = std::function<int64_t()>;
  explicit MemoryCounters(size_t max_entries = 100000, Clock clock = nullptr);
  MemoryCounters(const MemoryCounters&) = delete;
  MemoryCounters& operator=(const MemoryCounters&) = delete;

  // the core's view of these counters (throttles only: no rate limits)
  oauth2_counters_t counters();
  // called once each time the table fills with live counts (the daemon
  // logs it at alert, as the module logs its full zone: R84)
  std::function<void(size_t)> on_full;

 private:
  struct Entry {
    int64_t expire = 0;
    unsigned count = 0;
  };
  static unsigned check(void* self, const unsigned char* key, size_t len, unsigned limit,
                        unsigned window);
  static void failed(void* self, const unsigned char* key, size_t len, unsigned window);
  // the key's entry, made if missing; nullptr when the table is full of
  // live entries.  Called with mu_ held.
  Entry* entry(const std::string& key, int64_t now, unsigned window);

  std::mutex mu_;
  std::unordered_map<std::string, Entry> map_;
  size_t max_;
  Clock clock_;
  bool full_ = false;  // on_full was called since the table last had room
};

// At most `running` password hashes at once, `waiting` more queued (each
// for at most `wait`); acquire() false: refuse the request (503).
class HashSlots {
 public:
  HashSlots(unsigned running, unsigned waiting,
            std::chrono::milliseconds wait = std::chrono::seconds(30))
      : running_(running), waiting_max_(waiting), wait_(wait) {}

  class Slot {
   public:
    explicit Slot(HashSlots* s) : s_(s) {}
    Slot(Slot&& o) noexcept : s_(o.s_) { o.s_ = nullptr; }
    Slot& operator=(Slot&&) = delete;
    ~Slot() { reset(); }
    void reset() {
      if (s_) s_->release();
      s_ = nullptr;
    }
    explicit operator bool() const { return s_ != nullptr; }

   private:
    HashSlots* s_;
  };

  Slot acquire();

 private:
  void release();

  std::mutex mu_;
  std::condition_variable cv_;
  unsigned running_;
  unsigned waiting_max_;
  std::chrono::milliseconds wait_;
  unsigned busy_ = 0;
  unsigned waiting_ = 0;
};

}  // namespace oauth2::admin
