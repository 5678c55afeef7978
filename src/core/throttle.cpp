#include "throttle.hpp"

#include <arpa/inet.h>

#include <cstring>

#include "codec.hpp"
#include "crypto.hpp"

namespace oauth2 {

namespace {

constexpr size_t kMaxAddress = 64;
// the longest key kept as it is, past which its hash stands for it: the
// shim's NGX_HTTP_OAUTH2_MAX_KEY (255) less the 32 bytes its rate limits
// put before a key ("R<window>/<limit>:"), whose counter zone refuses a
// longer one (every request of that client would be 429)
constexpr size_t kMaxCounterKey = 255 - 32;
constexpr unsigned kFullWait = 1;

// a key part that may be long (a login name, a client id): its hash
std::string short_id(std::string_view id) {
  if (id.size() <= 64) return std::string(id);
  Digest d = sha256(id);
  return "#" + hex_encode(d.data(), 16);
}

}  // namespace

std::string counter_key(std::string_view realm, std::string_view key) {
  std::string k(realm);
  k.push_back('\x1f');
  if (k.size() + key.size() <= kMaxCounterKey) {
    k.append(key);
  } else {
    Digest d = sha256(key);
    k += "#" + hex_encode(d.data(), 16);
  }
  return k;
}

std::string throttle_address(std::string_view text) {
  if (text.size() > kMaxAddress) text = text.substr(0, kMaxAddress);
  std::string a(text);
  unsigned char v6[16];
  if (a.find(':') == std::string::npos || inet_pton(AF_INET6, a.c_str(), v6) != 1) {
    return a;
  }
  // an IPv4-mapped address counts as the IPv4 address, and so does one
  // of NAT64's well-known prefix (RFC 6052 2.1: 64:ff9b::/96), where an
  // IPv6-only site behind a translator sees every IPv4 client: as one
  // /64 they would all share one throttle, and one sign-in would make all
  // of them an account's known address
  static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  static const unsigned char kNat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  char buf[INET6_ADDRSTRLEN];
  if (std::memcmp(v6, kMapped, sizeof(kMapped)) == 0 ||
      std::memcmp(v6, kNat64, sizeof(kNat64)) == 0) {
    return inet_ntop(AF_INET, v6 + 12, buf, sizeof(buf)) ? std::string(buf) : a;
  }
  std::memset(v6 + 8, 0, 8);
  if (!inet_ntop(AF_INET6, v6, buf, sizeof(buf))) return a;
  return std::string(buf) + "/64";
}

Throttle::Throttle(const oauth2_counters_t& counters, std::string_view realm, unsigned limit,
                   unsigned window, std::string_view address)
    : c_(counters),
      limit_(limit),
      window_(window),
      realm_(realm),
      address_(throttle_address(address)) {}

unsigned Throttle::check(const std::string& name, unsigned limit) const {
  if (!enabled()) return 0;
  const std::string key = counter_key(realm_, name);
  unsigned wait = c_.check(c_.ctx, reinterpret_cast<const unsigned char*>(key.data()), key.size(),
                           limit, window_);
  return wait == OAUTH2_COUNTER_FULL ? kFullWait : wait;
}

void Throttle::failed(const std::string& name) const {
  if (!enabled() || !c_.failed) return;
  const std::string key = counter_key(realm_, name);
  c_.failed(c_.ctx, reinterpret_cast<const unsigned char*>(key.data()), key.size(), window_);
}

unsigned Throttle::address_wait() const {
  return check("a:" + address_, 3 * limit_);
}

unsigned Throttle::client_wait(std::string_view client_id) const {
  return check("ca:" + short_id(client_id) + "|" + address_, limit_);
}

unsigned Throttle::password_wait(std::string_view account) const {
  return check("pa:" + short_id(account) + "|" + address_, limit_);
}

unsigned Throttle::user_code_wait(std::string_view user) const {
  return check("uc:" + short_id(user), limit_);
}

void Throttle::user_code_failed(std::string_view user) const {
  failed("uc:" + short_id(user));
}

void Throttle::address_failed() const {
  failed("a:" + address_);
}

void Throttle::client_failed(std::string_view client_id) const {
  failed("ca:" + short_id(client_id) + "|" + address_);
}

void Throttle::password_failed(std::string_view account) const {
  failed("pa:" + short_id(account) + "|" + address_);
}

}  // namespace oauth2
