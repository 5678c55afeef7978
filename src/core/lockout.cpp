#include "lockout.hpp"

#include <algorithm>

#include "codec.hpp"
#include "crypto.hpp"

namespace oauth2 {

namespace {

// An origin's id: the SHA-256 of its kind and value, whose first bit is
// then the kind (set: a browser's device, clear: an address), so that a
// full list can evict by kind.  Ids are compared without that bit: those
// stored before it was the kind still match.
constexpr unsigned char kDeviceBit = 0x80;

Digest origin_id(char kind, std::string_view value) {
  std::string in(1, kind);
  in.push_back(':');
  in.append(value);
  Digest d = sha256(in);
  d[0] = kind == 'd' ? (d[0] | kDeviceBit) : (d[0] & ~kDeviceBit & 0xff);
  return d;
}

bool is_device(const Digest& id) {
  return (id[0] & kDeviceBit) != 0;
}

bool same_origin(const Digest& a, const Digest& b) {
  return ((a[0] ^ b[0]) & ~kDeviceBit & 0xff) == 0 &&
         equal_ct(a.data() + 1, b.data() + 1, a.size() - 1);
}

bool trusted(const AccountLock& l, const Digest& id, int64_t now) {
  for (const AccountLock::Origin& o : l.trusted) {
    if (o.last + kTrustedFor > now && same_origin(o.id, id)) return true;
  }
  return false;
}

// Newest first, at most kMaxTrusted: a full list drops the oldest origin
// of the kind that holds more than half of it, so that sign-ins from many
// addresses (a phone's password grant on the move) never push out the
// browsers that signed in, nor many browsers the addresses (R83)
void trust(AccountLock& l, const Digest& id, int64_t now) {
  auto same = [&](const AccountLock::Origin& o) { return same_origin(o.id, id); };
  l.trusted.erase(std::remove_if(l.trusted.begin(), l.trusted.end(), same), l.trusted.end());
  l.trusted.insert(l.trusted.begin(), AccountLock::Origin{id, now});
  while (l.trusted.size() > AccountLock::kMaxTrusted) {
    const size_t devices = static_cast<size_t>(
        std::count_if(l.trusted.begin(), l.trusted.end(),
                      [](const AccountLock::Origin& o) { return is_device(o.id); }));
    const bool drop_device = devices > AccountLock::kMaxTrusted / 2;
    auto oldest =
        std::find_if(l.trusted.rbegin(), l.trusted.rend(),
                     [&](const AccountLock::Origin& o) { return is_device(o.id) == drop_device; });
    l.trusted.erase(std::next(oldest).base());
  }
}

// A lock or a window that ends further off than this was dated by a clock
// that has stepped back since (NTP, a virtual machine resumed, an edge
// whose clock ran ahead): no window runs more than a day
// (oauth2_account_limit), and a guess's time is its arrival, at most a
// hash queue's wait before the window a newer guess opened.  Such a lock
// would hold for as long as the step
constexpr int64_t kStepBound = 2 * 86400;

}  // namespace

unsigned account_wait(Txn& txn, std::string_view realm, uint64_t user, const LoginOrigin& origin,
                      int64_t now) {
  auto l = txn.get_account_lock(realm, user);
  if (!l || l->locked_until <= now || l->locked_until > now + kStepBound) return 0;
  if (trusted(*l, origin_id('a', origin.address), now)) return 0;
  if (!origin.device.empty() && trusted(*l, origin_id('d', origin.device), now)) {
    return 0;
  }
  return static_cast<unsigned>(std::min<int64_t>(l->locked_until - now, 86400));
}

void account_failed(Txn& txn, std::string_view realm, uint64_t user, const AccountLimit& limit,
                    int64_t now) {
  if (limit.limit == 0) return;
  AccountLock l = txn.get_account_lock(realm, user).value_or(AccountLock{});
  // a guess that waited in a hash queue comes with the time it arrived,
  // which may be before the window a newer guess opened: it counts in
  // that window, never starts one (a reset of the count, R84)
  if (now >= l.window_start + limit.window || l.window_start > now + kStepBound) {
    l.window_start = now;
    l.failures = 0;
  }
  if (l.locked_until > now + kStepBound) l.locked_until = 0;
  if (l.failures < UINT32_MAX) l.failures++;
  // every failure counts, wherever it came from; the lock only spares the
  // origins that signed in before
  if (l.failures >= limit.limit) {
    l.locked_until = std::max(l.locked_until, l.window_start + limit.window);
  }
  txn.put_account_lock(realm, user, l);
}

void account_password_changed(Txn& txn, std::string_view realm, uint64_t user) {
  auto l = txn.get_account_lock(realm, user);
  if (!l || l->trusted.empty()) return;
  l->trusted.clear();
  txn.put_account_lock(realm, user, *l);
}

std::string account_signed_in(Txn& txn, std::string_view realm, uint64_t user,
                              const LoginOrigin& origin, int64_t now) {
  AccountLock l = txn.get_account_lock(realm, user).value_or(AccountLock{});
  // a success leaves the count alone: signing in must not unlock the
  // account for the others (R83)
  trust(l, origin_id('a', origin.address), now);
  std::string device;
  if (!origin.device.empty()) {
    // only a value this server gave a browser that signed in to the
    // account is trusted again: one a browser merely sent (a sibling
    // host can plant a cookie, Domain=) is replaced by a fresh one, or
    // whoever planted it would pass the lock with it
    device = trusted(l, origin_id('d', origin.device), now) ? origin.device : new_device_cookie();
    trust(l, origin_id('d', device), now);
  }
  txn.put_account_lock(realm, user, l);
  return device;
}

std::string new_device_cookie() {
  return random_token();
}

bool valid_device_cookie(std::string_view value) {
  return value.size() == 43 && is_token68(value);
}

}  // namespace oauth2
