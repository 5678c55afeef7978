// One lock per account (R83, R89).  Every place that checks a user's
// password (the module's token, login and authorization endpoints, the
// admin daemon's pages and API) counts its failures in the account's
// record in the store, so the module, the daemon and every process on the
// store see one lock.  Past the ceiling (oauth2_account_limit, default 100
// failures an hour: NIST SP 800-63B 5.2.2) the account refuses, until the
// window ends, every origin that has not signed in to it recently: an
// address, or a browser by its device cookie (OWASP's device cookies).
// The owner keeps signing in from where they did before; an attacker with
// many addresses gets at most the ceiling of guesses per window.
//
// The throttles in front of the store (throttle.hpp) keep a flood of
// failures from becoming a flood of writes: each address gets n attempts
// per account and 3n in all per window before the store is written.

#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "store.hpp"

namespace oauth2 {

constexpr int64_t kTrustedFor = 30 * 86400;  // "recently"
constexpr int64_t kDeviceCookieTtl = 365 * 86400;
constexpr const char* kDeviceCookie = "oauth2_device";

struct AccountLimit {
  unsigned limit = 100;  // failures per window; 0: no lock
  int64_t window = 3600;
};

// Where a sign-in comes from.
struct LoginOrigin {
  std::string address;  // throttle_address() of the client
  std::string device;   // the browser's device cookie, or empty
};

// Seconds before origin may try the account's password, 0 if it may.
unsigned account_wait(Txn& txn, std::string_view realm, uint64_t user, const LoginOrigin& origin,
                      int64_t now);

// A wrong password for the account; txn is a write transaction the
// caller commits.
void account_failed(Txn& txn, std::string_view realm, uint64_t user, const AccountLimit& limit,
                    int64_t now);

// A new password (R39): the browsers and addresses that signed in with the
// old one are no longer trusted, so that whoever had it meets the lock as
// a stranger; the count and the lock stay.  In the caller's write.
void account_password_changed(Txn& txn, std::string_view realm, uint64_t user);

// A successful sign-in: origin's address is trusted for kTrustedFor, and a
// browser's device value (origin.device not empty): the one it sent if the
// account trusts it already (this server gave it), else a fresh one.  The
// device value the browser is to keep ("" for none).
std::string account_signed_in(Txn& txn, std::string_view realm, uint64_t user,
                              const LoginOrigin& origin, int64_t now);

// A device cookie's value: 256 random bits; and whether a value the
// browser sent has that shape.
std::string new_device_cookie();
bool valid_device_cookie(std::string_view value);

}  // namespace oauth2
