#include "password.hpp"

#include <openssl/evp.h>

#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <vector>

#include "codec.hpp"
#include "crypto.hpp"

namespace oauth2 {

namespace {

constexpr unsigned kMaxIterations = 100000000;

std::atomic<uint64_t> g_iterations_run{0};

std::string base64_encode(const unsigned char* p, size_t n) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = uint32_t(p[i]) << 16;
    if (i + 1 < n) v |= uint32_t(p[i + 1]) << 8;
    if (i + 2 < n) v |= p[i + 2];
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(i + 1 < n ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back(i + 2 < n ? kAlphabet[v & 63] : '=');
  }
  return out;
}

std::string pbkdf2(std::string_view password, std::string_view salt, unsigned iterations) {
  g_iterations_run.fetch_add(iterations, std::memory_order_relaxed);
  unsigned char key[32];
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()),
                        static_cast<int>(salt.size()), static_cast<int>(iterations), EVP_sha256(),
                        sizeof(key), key) != 1) {
    throw std::runtime_error("PBKDF2 failed");
  }
  std::string out = base64_encode(key, sizeof(key));
  OPENSSL_cleanse(key, sizeof(key));
  return out;
}

struct Parsed {
  unsigned iterations = 0;
  std::string_view salt;
  std::string_view hash;
};

bool parse(std::string_view stored, Parsed* p) {
  constexpr std::string_view kPrefix = "pbkdf2_sha256$";
  if (stored.substr(0, kPrefix.size()) != kPrefix) return false;
  std::string_view rest = stored.substr(kPrefix.size());
  size_t d1 = rest.find('$');
  if (d1 == std::string_view::npos || d1 == 0 || d1 > 9) return false;
  unsigned long it = 0;
  for (char c : rest.substr(0, d1)) {
    if (c < '0' || c > '9') return false;
    it = it * 10 + static_cast<unsigned long>(c - '0');
  }
  if (it == 0 || it > kMaxIterations) return false;
  rest = rest.substr(d1 + 1);
  size_t d2 = rest.find('$');
  if (d2 == std::string_view::npos || d2 == 0) return false;
  p->iterations = static_cast<unsigned>(it);
  p->salt = rest.substr(0, d2);
  p->hash = rest.substr(d2 + 1);
  if (p->salt.find('$') != std::string_view::npos || p->hash.size() != 44) {
    return false;
  }
  return true;
}

}  // namespace

std::string hash_password(std::string_view password, unsigned iterations) {
  if (iterations == 0 || iterations > kMaxIterations) {
    throw std::invalid_argument("PBKDF2 iterations out of range");
  }
  std::string salt = random_alnum(22);
  return "pbkdf2_sha256$" + std::to_string(iterations) + "$" + salt + "$" +
         pbkdf2(password, salt, iterations);
}

bool is_password_hash(std::string_view stored) {
  Parsed p;
  return parse(stored, &p);
}

PasswordCheck verify_password(std::string_view password, std::string_view stored,
                              unsigned iterations) {
  PasswordCheck out;
  Parsed p;
  if (!parse(stored, &p)) {
    verify_password_dummy(password, iterations);
    return out;
  }
  std::string got = pbkdf2(password, p.salt, p.iterations);
  out.ok = got.size() == p.hash.size() &&
           equal_ct(reinterpret_cast<const unsigned char*>(got.data()),
                    reinterpret_cast<const unsigned char*>(p.hash.data()), got.size());
  wipe(got);
  out.needs_rehash = out.ok && p.iterations != iterations;  // Django's must_update
  // Django's harden_runtime: else a wrong password would tell, by its
  // time, that the name is an account whose hash is older (fewer
  // iterations: imported, or from before the setting was raised)
  if (!out.ok && p.iterations < iterations) {
    verify_password_dummy(password, iterations - p.iterations);
  }
  return out;
}

uint64_t pbkdf2_iterations_run() {
  return g_iterations_run.load(std::memory_order_relaxed);
}

void verify_password_dummy(std::string_view password, unsigned iterations) {
  std::string got = pbkdf2(password, "dummysaltdummysaltdumm", iterations ? iterations : 1);
  wipe(got);
}

}  // namespace oauth2
