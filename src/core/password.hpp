// User passwords in Django's format, so that users imported from a Django
// site keep logging in with the password they had:
//   pbkdf2_sha256$<iterations>$<salt>$<base64 of the 32-byte PBKDF2 key>
// PBKDF2 is slow on purpose: never run it on nginx's event loop.

#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace oauth2 {

constexpr unsigned kDefaultPbkdf2Iterations = 600000;  // Django 4.2

std::string hash_password(std::string_view password, unsigned iterations);

struct PasswordCheck {
  bool ok = false;
  bool needs_rehash = false;  // ok, but with other iterations than asked
};

// Constant time in the password; a stored value that is not a usable
// pbkdf2_sha256 hash ("", "!...", another algorithm) never verifies.  A
// wrong password for a hash of fewer iterations than asked also runs the
// difference (Django's harden_runtime), so that it costs what one for an
// unknown user does (verify_password_dummy).
PasswordCheck verify_password(std::string_view password, std::string_view stored,
                              unsigned iterations);

// The same work as a real check, for an unknown user.
void verify_password_dummy(std::string_view password, unsigned iterations);

// The PBKDF2 iterations this process has run (tests: what a check cost).
uint64_t pbkdf2_iterations_run();

// True if stored looks like a Django pbkdf2_sha256 hash.
bool is_password_hash(std::string_view stored);

}  // namespace oauth2
