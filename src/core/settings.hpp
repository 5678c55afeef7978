// What a location loads at configuration time (include/oauth2.h
// oauth2_settings_t): JWT keys, the handshake key, handshake solutions and
// the status endpoint's token.  Read-only once built, so every thread may
// share it.

#pragma once

#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "crypto.hpp"
#include "jwt.hpp"
#include "password_policy.hpp"

namespace oauth2 {

struct Solution {
  std::string name;
  // role -> database, in configuration order; the first is the one
  // validate/ reports as "database_name"
  std::vector<std::pair<std::string, std::string>> databases;
};

// Signatures a worker has verified, by the SHA-256 of the token: a client
// shows the same JWT on every request, and checking an ES256 or EdDSA
// signature costs a hundred times a lookup.  An entry says only that the
// signature, issuer and audience were good; expiry is checked on every
// hit and revocation is still one lookup of the jti in the store.  Used on
// an nginx worker's event loop only (one thread), never from the pool.
class JwtCache {
 public:
  struct Entry {
    Digest record_key;  // the SHA-256 of its jti
    int64_t exp = 0;
    bool handshake = false;
  };
  const Entry* find(const Digest& d) const {
    auto it = map_.find(d);
    return it == map_.end() ? nullptr : &it->second;
  }
  void put(const Digest& d, Entry e) {
    if (map_.size() >= kMax) map_.clear();  // bounded; refilled by use
    map_[d] = std::move(e);
  }
  void erase(const Digest& d) { map_.erase(d); }

 private:
  static constexpr size_t kMax = 8192;
  struct Hash {
    size_t operator()(const Digest& d) const {
      size_t h;
      std::memcpy(&h, d.data(), sizeof(h));
      return h;
    }
  };
  std::unordered_map<Digest, Entry, Hash> map_;
};

struct Settings {
  JwtKeys jwt_keys;
  std::shared_ptr<JwtKey> handshake_key;  // signs; null: no handshakes
  JwtKeys handshake_keys;                 // verify: the key, and the same
                                          // secret under the kid of tokens
                                          // signed by the store's old key
  std::vector<Solution> solutions;
  std::string service;                    // oauth2_status
  Digest status_token_hash{};
  bool has_status_token = false;
  PasswordPolicy password_policy;         // oauth2_password_policy
  mutable JwtCache verified;               // see JwtCache

  const Solution* solution(std::string_view name) const {
    for (const Solution& s : solutions) {
      if (s.name == name) return &s;
    }
    return nullptr;
  }
};

}  // namespace oauth2

struct oauth2_settings_s {
  oauth2::Settings s;
};
