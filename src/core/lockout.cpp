#include "lockout.hpp"

#include <algorithm>

#include "codec.hpp"
#include "crypto.hpp"

namespace oauth2 {

namespace {

Digest origin_id(char kind, std::string_view value) {
  std::string in(1, kind);
  in.push_back(':');
  in.append(value);
  return sha256(in);
}

bool trusted(const AccountLock& l, const Digest& id, int64_t now) {
  for (const AccountLock::Origin& o : l.trusted) {
    if (o.last + kTrustedFor > now && equal_ct(o.id.data(), id.data(), id.size())) {
      return true;
    }
  }
  return false;
}

void trust(AccountLock& l, const Digest& id, int64_t now) {
  auto same = [&](const AccountLock::Origin& o) { return o.id == id; };
  l.trusted.erase(std::remove_if(l.trusted.begin(), l.trusted.end(), same), l.trusted.end());
  l.trusted.insert(l.trusted.begin(), AccountLock::Origin{id, now});
  if (l.trusted.size() > AccountLock::kMaxTrusted) {
    l.trusted.resize(AccountLock::kMaxTrusted);
  }
}

}  // namespace

unsigned account_wait(Txn& txn, std::string_view realm, uint64_t user, const LoginOrigin& origin,
                      int64_t now) {
  auto l = txn.get_account_lock(realm, user);
  if (!l || l->locked_until <= now) return 0;
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
  if (now >= l.window_start + limit.window || now < l.window_start) {
    l.window_start = now;
    l.failures = 0;
  }
  if (l.failures < UINT32_MAX) l.failures++;
  // every failure counts, wherever it came from; the lock only spares the
  // origins that signed in before
  if (l.failures >= limit.limit) {
    l.locked_until = std::max(l.locked_until, l.window_start + limit.window);
  }
  txn.put_account_lock(realm, user, l);
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
