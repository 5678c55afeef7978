// Checking a user's password, the same way at every place that does it
// (the password grant, seed 001's login, seed 003's /api/token/, the
// authorization endpoint's page, and the admin daemon's pages and API):
// the throttles first (cheap, in front of the store), then the account's
// lock in the store, then the slow hash, whose failures are written back
// to the account's lock (lockout.hpp).

#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lockout.hpp"
#include "store.hpp"
#include "throttle.hpp"

namespace oauth2 {

// Who a login names: the users to try (one for a username; those with the
// email, at most kMaxEmailMatches) and the key its failures count under.
constexpr size_t kMaxEmailMatches = 5;
struct LoginTarget {
  std::vector<uint64_t> candidates;
  std::string throttle_key;
};
LoginTarget resolve_login(Txn& txn, std::string_view realm, std::string_view login, bool by_email);

// Before anything is hashed: 0 if the password may be checked, else the
// Retry-After of a 429 (too many failures from this address for this
// account, or the account locked for this origin).  Drops from target the
// accounts that are locked for origin.
unsigned login_gate(Txn& txn, const Throttle& throttle, std::string_view realm, LoginTarget& target,
                    const LoginOrigin& origin, int64_t now);

struct LoginCheck {
  std::optional<User> user;   // the user whose password it is
  bool needs_rehash = false;  // stored with other iterations than asked
  bool failed = false;        // a wrong password: count it (throttle)
  // every candidate was locked for this origin when the check's turn
  // came (guesses queued with it filled the account's ceiling): the wait,
  // refused as login_gate refuses, with no hash
  unsigned locked = 0;
};

// The slow part, off the event loop: the password against each candidate
// (an inactive user's is never right) not locked for origin by then.  A
// wrong password is written to the lock record of every candidate it was
// tried on.  The write that follows a right one checks the lock again
// (account_wait): it may have closed during the hash.
LoginCheck check_login(Store& store, std::string_view realm, const LoginTarget& target,
                       std::string_view password, unsigned iterations, const AccountLimit& limit,
                       const LoginOrigin& origin, int64_t now);

}  // namespace oauth2
