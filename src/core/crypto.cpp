// SHA256_Init and friends: see salted_sha256
#define OPENSSL_SUPPRESS_DEPRECATED
#include "crypto.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cerrno>
#include <cstdint>
#include <ctime>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "codec.hpp"
#include "password.hpp"

namespace oauth2 {

namespace {

// SHA-256 by OpenSSL's SHA256_* functions, on the stack.  They are
// deprecated in OpenSSL 3 in favour of EVP, but EVP_DigestInit_ex2 in 3.0
// frees and allocates its provider context on every call, even on a
// reused EVP_MD_CTX, and dispatches through the provider and the engine
// table: on the path of every validated request, that was most of the
// hash's cost (99 ns against 58 ns for a 43-byte token in a loop; in a
// worker, cold, libcrypto fell from 2.1% to 0.8% of its time).  Both run
// the same assembly (SHA-NI where the CPU has it).
Digest salted_sha256(std::string_view salt, std::string_view secret) {
  Digest out{};
  SHA256_CTX c;
  if (SHA256_Init(&c) != 1 || (!salt.empty() && SHA256_Update(&c, salt.data(), salt.size()) != 1) ||
      SHA256_Update(&c, secret.data(), secret.size()) != 1 || SHA256_Final(out.data(), &c) != 1) {
    throw std::runtime_error("sha256 failed");
  }
  OPENSSL_cleanse(&c, sizeof(c));  // its last block holds the tail of the secret
  return out;
}

constexpr std::string_view kDummyHash =
    "sha256$00000000000000000000000000000000$"
    "0000000000000000000000000000000000000000000000000000000000000000";

}  // namespace

void random_bytes(unsigned char* p, size_t n) {
  if (RAND_bytes(p, static_cast<int>(n)) != 1) {
    throw std::runtime_error("RAND_bytes failed");
  }
}

std::string random_alnum(size_t n) {
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string out;
  out.reserve(n);
  unsigned char buf[64];
  while (out.size() < n) {
    random_bytes(buf, sizeof(buf));
    for (unsigned char b : buf) {
      if (b < 248 && out.size() < n) out.push_back(kAlphabet[b % 62]);
    }
  }
  OPENSSL_cleanse(buf, sizeof(buf));
  return out;
}

std::string random_token() {
  unsigned char buf[32];
  random_bytes(buf, sizeof(buf));
  std::string out = base64url_encode(buf, sizeof(buf));
  OPENSSL_cleanse(buf, sizeof(buf));
  return out;
}

std::string new_token() {
  unsigned char buf[32];
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  const uint64_t ms = uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
  for (int i = 0; i < 6; i++) buf[i] = static_cast<unsigned char>(ms >> (8 * (5 - i)));
  random_bytes(buf + 6, sizeof(buf) - 6);
  std::string out = base64url_encode(buf, sizeof(buf));
  OPENSSL_cleanse(buf, sizeof(buf));
  return out;
}

Digest sha256(std::string_view data) {
  return salted_sha256({}, data);
}

bool equal_ct(const unsigned char* a, const unsigned char* b, size_t n) {
  return CRYPTO_memcmp(a, b, n) == 0;
}

void wipe(std::string& s) {
  if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

std::string hash_secret(std::string_view secret) {
  unsigned char salt[16];
  random_bytes(salt, sizeof(salt));
  std::string salt_hex = hex_encode(salt, sizeof(salt));
  Digest d = salted_sha256(salt_hex, secret);
  return "sha256$" + salt_hex + "$" + hex_encode(d.data(), d.size());
}

bool verify_secret(std::string_view secret, std::string_view stored) {
  // A secret imported from django-oauth-toolkit 2+, which keeps Django's
  // password hash of it.  PBKDF2 is slow on purpose: this belongs off the
  // event loop, and the secret should be rehashed to the fast form below
  // after its first success (docs/design.md "The store").
  if (is_password_hash(stored)) {
    return verify_password(secret, stored, 0).ok;
  }
  // sha256$<32 hex>$<64 hex>
  if (stored.size() != 7 + 32 + 1 + 64 || stored.substr(0, 7) != "sha256$" || stored[39] != '$') {
    return false;
  }
  std::string_view salt_hex = stored.substr(7, 32);
  auto want = hex_decode(stored.substr(40));
  if (!want || want->size() != 32) return false;
  Digest got = salted_sha256(salt_hex, secret);
  return equal_ct(got.data(), reinterpret_cast<const unsigned char*>(want->data()), 32);
}

void verify_secret_dummy(std::string_view secret) {
  (void)verify_secret(secret, kDummyHash);
}

bool read_secret_file(const char* path, std::string* out, char* err, size_t errlen) {
  auto fail = [&](const std::string& why) {
    if (err && errlen) {
      std::string m = std::string(path) + ": " + why;
      std::strncpy(err, m.c_str(), errlen - 1);
      err[errlen - 1] = '\0';
    }
    wipe(*out);
    out->clear();
    return false;
  };
  FILE* f = std::fopen(path, "rb");
  if (!f) return fail(std::strerror(errno));
  char buf[4097];
  size_t n = std::fread(buf, 1, sizeof(buf), f);
  bool bad = std::ferror(f);
  std::fclose(f);
  out->assign(buf, n);
  OPENSSL_cleanse(buf, sizeof(buf));
  if (bad) return fail("read error");
  if (n > 4096) return fail("longer than 4096 bytes");
  if (!out->empty() && out->back() == '\n') out->pop_back();
  if (!out->empty() && out->back() == '\r') out->pop_back();
  if (out->empty()) return fail("empty");
  return true;
}

}  // namespace oauth2
