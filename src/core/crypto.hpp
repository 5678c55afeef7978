// Randomness, hashing and comparison.  Every secret comes from RAND_bytes;
// every comparison of secret-derived bytes is constant time.

#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace oauth2 {

using Digest = std::array<unsigned char, 32>;

// Fills p with n bytes from OpenSSL's CSPRNG; throws on failure.
void random_bytes(unsigned char* p, size_t n);

// n characters drawn uniformly from [A-Za-z0-9] (rejection sampling).
std::string random_alnum(size_t n);

// 256 random bits, base64url without padding: 43 token68 characters.
std::string random_token();

// A credential the store keeps (a token, a code, a session): 43
// base64url characters of 32 bytes, the first six the time in
// milliseconds (big-endian), the other 26 random (208 bits, above RFC
// 6749 10.10's 128).  The store orders its records by those six bytes
// (TokenId), so the ones issued together are written together.
std::string new_token();

Digest sha256(std::string_view data);

bool equal_ct(const unsigned char* a, const unsigned char* b, size_t n);

// Overwrites the string's bytes before it is released.
void wipe(std::string& s);

// Wipes a string when the scope ends, on every return and throw.
class WipeOnExit {
 public:
  explicit WipeOnExit(std::string& s) : s_(s) {}
  ~WipeOnExit() { wipe(s_); }
  WipeOnExit(const WipeOnExit&) = delete;
  WipeOnExit& operator=(const WipeOnExit&) = delete;

 private:
  std::string& s_;
};

// A secret held by a write that may run more than once (Store::change):
// shared by the runs, wiped when the last holder lets go.
struct Secret {
  explicit Secret(std::string v) : value(std::move(v)) {}
  ~Secret() { wipe(value); }
  Secret(const Secret&) = delete;
  Secret& operator=(const Secret&) = delete;
  std::string value;
};

// Client secrets.  Generated secrets carry more than 256 bits, so one
// salted SHA-256 is enough: "sha256$<salt hex>$<digest hex>".
std::string hash_secret(std::string_view secret);
// A secret this long is taken for a generated one (DOT generates 128
// characters, and so many carry 256 bits even if only alphanumeric): the
// fast hash suits it.  A shorter one that was not generated here may have
// been chosen by hand, and keeps a slow hash (R16).
constexpr size_t kStrongSecret = 64;
// Also verifies a Django "pbkdf2_sha256$..." hash (password.hpp), the form
// django-oauth-toolkit 2+ stores secrets in and import-django keeps: that
// one costs a full PBKDF2 run.
bool verify_secret(std::string_view secret, std::string_view stored);

// Reads a small file holding a secret (at most 4096 bytes, one trailing
// newline dropped).  false with a message in err.
bool read_secret_file(const char* path, std::string* out, char* err, size_t errlen);

// Runs the same work as verify_secret against a dummy hash, so that an
// unknown client costs what a wrong secret costs.
void verify_secret_dummy(std::string_view secret);

}  // namespace oauth2
