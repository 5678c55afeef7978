#include "counters.hpp"

#include <ctime>

namespace oauth2::admin {

namespace {

int64_t now_seconds() {
  return static_cast<int64_t>(time(nullptr));
}

// An entry that ends further off than this was dated by a clock that has
// stepped back since (NTP, a resumed virtual machine): no window of the
// daemon's runs more than a day (--auth-limit's at most).  It would count,
// and hold its slot, for as long as the step; it starts again instead
// (R80), as the module's zone (NGX_HTTP_OAUTH2_LIMIT_STEP) and the
// store's account lock (lockout.cpp) do.
constexpr int64_t kStepBound = 2 * 86400;

}  // namespace

MemoryCounters::MemoryCounters(size_t max_entries, Clock clock)
    : max_(max_entries), clock_(clock ? std::move(clock) : Clock(now_seconds)) {}

oauth2_counters_t MemoryCounters::counters() {
  oauth2_counters_t c{};
  c.ctx = this;
  c.check = &MemoryCounters::check;
  c.failed = &MemoryCounters::failed;
  return c;
}

MemoryCounters::Entry* MemoryCounters::entry(const std::string& key, int64_t now, unsigned window) {
  auto it = map_.find(key);
  if (it != map_.end()) {
    Entry& e = it->second;
    if (e.expire > now + kStepBound) e = Entry{now + window, 0};
    return &e;
  }
  if (map_.size() >= max_) {
    // only what no longer counts goes
    for (auto i = map_.begin(); i != map_.end();) {
      const Entry& e = i->second;
      const bool live = e.count != 0 && e.expire > now && e.expire <= now + kStepBound;
      i = live ? std::next(i) : map_.erase(i);
    }
    if (map_.size() >= max_) {
      if (!full_ && on_full) on_full(max_);
      full_ = true;
      return nullptr;
    }
  }
  full_ = false;
  Entry& e = map_[key];
  e.expire = now + window;
  return &e;
}

unsigned MemoryCounters::check(void* self, const unsigned char* key, size_t len, unsigned limit,
                               unsigned window) {
  auto* m = static_cast<MemoryCounters*>(self);
  const int64_t now = m->clock_();
  std::lock_guard<std::mutex> lock(m->mu_);
  Entry* e = m->entry(std::string(reinterpret_cast<const char*>(key), len), now, window);
  if (!e) return OAUTH2_COUNTER_FULL;
  if (e->expire > now && e->count >= limit) {
    return static_cast<unsigned>(e->expire - now);
  }
  return 0;
}

void MemoryCounters::failed(void* self, const unsigned char* key, size_t len, unsigned window) {
  auto* m = static_cast<MemoryCounters*>(self);
  const int64_t now = m->clock_();
  std::lock_guard<std::mutex> lock(m->mu_);
  Entry* e = m->entry(std::string(reinterpret_cast<const char*>(key), len), now, window);
  if (!e) return;
  if (e->expire <= now || e->count == 0) {
    // the first failure opens the window
    e->expire = now + window;
    e->count = 0;
  }
  e->count++;
}

HashSlots::Slot HashSlots::acquire() {
  std::unique_lock<std::mutex> lock(mu_);
  if (busy_ < running_) {
    busy_++;
    return Slot(this);
  }
  if (waiting_ >= waiting_max_) return Slot(nullptr);
  waiting_++;
  bool got = cv_.wait_for(lock, wait_, [this] { return busy_ < running_; });
  waiting_--;
  if (!got) return Slot(nullptr);
  busy_++;
  return Slot(this);
}

void HashSlots::release() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    busy_--;
  }
  cv_.notify_one();
}

}  // namespace oauth2::admin
