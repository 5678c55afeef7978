// What nginx's configuration gives the core (include/oauth2.h): one Config
// per http{} block and cycle, one Location per location that serves an
// endpoint or checks bearer tokens.  Built once when the configuration is
// read (a reload builds new ones, so key files are read again), read-only
// afterwards and shared by every thread; a request carries only itself.

#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <map>
#include <set>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../../include/oauth2.h"
#include "crypto.hpp"
#include "jwt.hpp"
#include "lockout.hpp"
#include "password_policy.hpp"

namespace oauth2 {

struct Solution {
  std::string name;
  // role -> database, in configuration order; the first is the one
  // validate/ reports as "database_name"
  std::vector<std::pair<std::string, std::string>> databases;
};

// a SHA-256 as a hash table's hash: its first bytes
struct DigestHash {
  size_t operator()(const Digest& d) const {
    size_t h;
    std::memcpy(&h, d.data(), sizeof(h));
    return h;
  }
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
    TokenId record_key;  // its jti's
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
  // entries at most: one more empties the table first
  static constexpr size_t kMax = 8192;

 private:
  std::unordered_map<Digest, Entry, DigestHash> map_;
};

// Tokens a worker has found valid at this location, by the SHA-256 of
// the text presented (an opaque token's, or a JWT's whole text: never a
// JWT's jti, which an opaque token of the jti's text would hash to), each
// with the store's validation epoch of its token's bucket it was read at
// (Txn::token_valid_epoch).  Only a text that passed every check is
// kept, so a hit needs none of them again.  An entry answers only while
// the store's epoch is still that one: every commit that replaces or
// deletes a token, application or user record, by any process (a
// revocation, a refresh, a disabled or deleted user or client, the
// expiry's batches, the sync daemon applying another edge's), moves it
// on in the same transaction, for an application or a user every entry's,
// for a token the entries of its bucket (one token in 256: kValidEpochsMeta),
// and the next request reads the store again (R66: nothing stale, ever);
// a commit that only creates records (an issuance) ends none, so the
// cache goes on answering while tokens are issued.  Expiry
// is checked on every hit (for a JWT, its exp too, with the leeway its
// verification allows).  Only what holds for every request of the
// token is kept: a token bound to a DPoP key, or shown with the DPoP
// scheme, is never kept (its proof is per request), nor any refusal.
// A fixed table (oauth2_validation_cache <entries>, rounded up to whole
// sets), made on first use, of sets of kWays slots: a token's hash picks
// its set, and a short tag of the hash a slot of it, so a lookup reads one
// line of tags and then one entry.  A token the set lacks takes an empty
// slot, or else the oldest filled one (first in, first out), so the memory
// is bounded whatever is presented, and a table of about twice the tokens
// in use keeps nearly all of them (a slot a token, as before, needed some
// sixteen times).  A token whose entry was taken reads the store.  Used on
// an nginx worker's event loop only, as JwtCache.
class ValidCache {
 public:
  struct Entry {
    Digest key{};
    uint64_t store = 0;   // StoreVersion::store (0: an empty slot; stores count from 1)
    uint64_t epoch = 0;   // Txn::token_valid_epoch(bucket) of the snapshot that read it
    uint8_t bucket = 0;   // token_epoch_bucket of its record's id
    int64_t expires = 0;  // the record's
    int64_t jwt_exp = 0;  // a JWT's exp; 0: an opaque token
    ShortTokenId token_id;
    std::string client_id;
    std::string scope;
    std::string user;
    uint64_t user_id = 0;
  };
  // slots a set (fewer when the whole table is smaller)
  static constexpr size_t kWays = 8;
  // 0: keep nothing (off)
  void set_capacity(size_t entries) {
    capacity_ = entries;
    slots_.clear();
    slots_.shrink_to_fit();
    tags_.clear();
    tags_.shrink_to_fit();
    next_.clear();
    next_.shrink_to_fit();
  }
  bool on() const { return capacity_ != 0; }
  size_t slots() const { return slots_.size(); }

  // the entry of d kept in store, if still at the epoch that epoch_of
  // (Txn::token_valid_epoch) gives for its bucket
  template <typename EpochOf>
  const Entry* find(const Digest& d, uint64_t store, EpochOf&& epoch_of) const {
    if (slots_.empty()) return nullptr;
    const size_t at = slot_of(d);
    if (at == kNone) return nullptr;
    const Entry& e = slots_[at];
    if (e.store != store) return nullptr;
    if (e.epoch != epoch_of(e.bucket)) return nullptr;
    return &e;
  }
  // the slot to keep d's answer in: d's own if it has one, else an empty
  // one of its set, else the set's oldest; nullptr when off.  The caller
  // fills every field, the key and store last (fill_begin, fill_end): an
  // entry left half-filled (an exception) answers for no token.
  Entry* slot_for(const Digest& d) {
    if (!capacity_) return nullptr;
    if (slots_.empty()) {
      const size_t ways = std::min(capacity_, kWays);
      const size_t sets = (capacity_ + ways - 1) / ways;
      slots_.resize(sets * ways);
      tags_.assign(sets * ways, 0);
      next_.assign(sets, 0);
    }
    size_t at = slot_of(d);
    if (at != kNone) return &slots_[at];
    const size_t ways = way_count(), base = set_of(d) * ways;
    at = base;
    while (at < base + ways && tags_[at] != 0) at++;
    if (at == base + ways) {  // full: the oldest goes
      uint8_t& next = next_[base / ways];
      at = base + next;
      next = static_cast<uint8_t>((next + 1) % ways);
    }
    tags_[at] = tag_of(d);
    return &slots_[at];
  }
  static void fill_begin(Entry* e) { e->store = 0; }
  static void fill_end(Entry* e, const Digest& d, uint64_t store) {
    e->key = d;
    e->store = store;
  }

 private:
  static constexpr size_t kNone = SIZE_MAX;
  size_t way_count() const { return std::min(slots_.size(), kWays); }
  size_t set_of(const Digest& d) const { return DigestHash()(d) % (slots_.size() / way_count()); }
  // 32 bits of the hash that the set's index does not use; 0: an empty slot
  static uint32_t tag_of(const Digest& d) {
    uint32_t t;
    std::memcpy(&t, d.data() + sizeof(size_t), sizeof(t));
    return t ? t : 1;
  }
  // d's slot in its set, or kNone
  size_t slot_of(const Digest& d) const {
    const size_t ways = way_count(), base = set_of(d) * ways;
    const uint32_t tag = tag_of(d);
    for (size_t at = base; at < base + ways; at++) {
      if (tags_[at] == tag && slots_[at].key == d) return at;
    }
    return kNone;
  }
  size_t capacity_ = OAUTH2_VALID_CACHE_DEFAULT;
  std::vector<Entry> slots_;
  std::vector<uint32_t> tags_;  // a slot's tag_of, 0 while empty
  std::vector<uint8_t> next_;   // a full set's next slot to take
};

// An http{} block: the key files its locations name, each read once, and
// the first location of each endpoint kind in each realm.
class Config {
 public:
  // the key in path, read on first use (the same object for every
  // location that names it); throws std::runtime_error naming the file
  std::shared_ptr<JwtKey> jwt_key(const std::string& path, bool hmac);
  // the handshake key in path, and its alias for tokens signed under the
  // kid of the store's old key (JwtKey::load_hmac_file)
  std::pair<std::shared_ptr<JwtKey>, std::shared_ptr<JwtKey>> handshake_key(
      const std::string& path);

  // a location of endpoint in realm, at path (its own prefix or exact
  // location) or none ("": named, regex or inherited): the first path of
  // each endpoint in a realm is the one its URLs name
  void add_location(const std::string& realm, int endpoint, const std::string& path);
  // the widest iat_window of realm's locations so far, window included:
  // final (and shared by them) once nginx has read the configuration
  std::shared_ptr<const int64_t> dpop_window(const std::string& realm, int64_t window);
  // the realm that issuer names already, if another than realm (else
  // nullptr; the issuer is realm's from now on): each realm needs one of
  // its own, since relying parties tell id_tokens apart by iss and aud
  // alone, and aud (a client_id) may be the same in two realms
  const std::string* issuer_taken(const std::string& issuer, const std::string& realm);
  // "" if no location of realm serves that endpoint at a path
  const std::string& path(std::string_view realm, int endpoint) const;
  // a solution of realm's handshake locations (oauth2_handshake_solution):
  // a handshake of another (one the configuration no longer has) is valid
  // nowhere, and one of these is valid at every handshake location and
  // auth_oauth2 location of the realm.  handshake_solution: the first
  // location's definition of name, or nullptr
  void add_handshake_solution(const std::string& realm, const Solution& s);
  const Solution* handshake_solution(std::string_view realm, std::string_view name) const;
  // a realm with a location of endpoint `has` but no path of `needs`;
  // nullptr if none
  const std::string* realm_without(int has, int needs) const;
  // realm signs id_tokens: one of its token endpoints (or its metadata,
  // which then offers OpenID) has a key that signs them
  void signs_id_tokens(const std::string& realm);
  // a realm whose authorization endpoint gets id_tokens signed that no
  // jwks_uri (a prefix or exact oauth2_jwks location) lets anyone verify
  // (OpenID Connect Discovery 3 requires one); nullptr if none
  const std::string* id_tokens_without_jwks() const;

 private:
  std::map<std::pair<std::string, bool>, std::shared_ptr<JwtKey>> keys_;
  std::map<std::string, std::pair<std::shared_ptr<JwtKey>, std::shared_ptr<JwtKey>>>
      handshake_keys_;
  struct RealmEndpoints {
    uint32_t located = 0;  // 1 << endpoint: it has a location
    bool signs_id_tokens = false;
    std::array<std::string, OAUTH2_ENDPOINT_MAX> paths;
    // the widest oauth2_dpop iat_window of its locations
    std::shared_ptr<int64_t> dpop_window = std::make_shared<int64_t>(0);
    std::map<std::string, Solution, std::less<>> handshake_solutions;
  };
  std::map<std::string, RealmEndpoints, std::less<>> realms_;
  std::map<std::string, std::string> issuers_;  // issuer -> its realm

 public:
  // the key of DPoP nonces (RFC 9449 8), random, made on first use at
  // configuration time, so that every worker shares it
  const Digest* dpop_key();

 private:
  Digest dpop_key_{};
  bool dpop_key_set_ = false;
};

struct Location {
  int endpoint = OAUTH2_ENDPOINT_NONE;
  const Config* config = nullptr;
  std::string realm;

  // auth_oauth2
  bool auth = false;
  std::string auth_realm;
  std::vector<std::string> scopes;

  // tokens
  int64_t access_token_ttl = 36000;
  int64_t refresh_token_ttl = 30 * 86400;
  int64_t refresh_grace = 10;
  int64_t code_ttl = 60;
  int64_t device_code_ttl = 600;  // oauth2_device_code_ttl (RFC 8628)
  std::string default_scope = "read write";
  unsigned pbkdf2_iterations = 600000;
  std::string login_client_id;
  std::string issuer;
  std::string audience;       // empty: the issuer
  std::string auth_audience;  // auth_oauth2_audience; empty: audience
  bool jwt_access = false;
  JwtKeys jwt_keys;
  mutable JwtCache verified;  // see JwtCache
  mutable ValidCache valid;   // see ValidCache

  // the authorization endpoint's pages (empty: the built-in ones)
  std::string login_template;
  std::string consent_template;
  std::string error_template;

  // seed 002's handshake
  std::shared_ptr<JwtKey> handshake_key;  // signs; null: no handshakes
  JwtKeys handshake_keys;                 // verify: the key, and the same
                                          // secret under the old store
                                          // key's kid
  int64_t handshake_max_ttl = 30 * 86400;
  std::vector<Solution> solutions;

  // seed 003's status
  std::string service;
  std::string status_header;  // lower case
  Digest status_token_hash{};
  bool has_status_token = false;

  // limits
  PasswordPolicy password_policy;
  unsigned auth_limit = 10;  // oauth2_client_auth_limit, per window
  unsigned auth_window = 60;
  AccountLimit account_limit;
  std::vector<oauth2_rate_window_t> rates;

  // oauth2_dpop (RFC 9449)
  bool dpop = true;
  bool dpop_nonce = false;
  int64_t dpop_window = 60;          // seconds either side of a proof's iat
  const Digest* dpop_key = nullptr;  // the Config's
  // the realm's widest window: a proof is remembered (its jti) for as
  // long as any location of the realm, which shares the replay zone,
  // would still take it (RFC 9449 11.1)
  std::shared_ptr<const int64_t> dpop_realm_window;
  int64_t dpop_replay_window() const {
    return dpop_realm_window ? std::max(*dpop_realm_window, dpop_window) : dpop_window;
  }

  const Solution* solution(std::string_view name) const {
    for (const Solution& s : solutions) {
      if (s.name == name) return &s;
    }
    return nullptr;
  }
  // the audience JWTs of this location carry and must carry
  // (the default audience: a token issued without RFC 8707's resource)
  const std::string& jwt_audience() const { return audience.empty() ? issuer : audience; }
  // the audience auth_oauth2 accepts here (audience.hpp)
  const std::string& accepted_audience() const {
    return auth_audience.empty() ? jwt_audience() : auth_audience;
  }
  // userinfo is the OpenID provider's own, not a resource server's: the
  // access token of an OpenID request opens it whatever its audience
  // (OpenID Connect Core 5.3), auth_oauth2_audience inherited or not
  bool any_audience() const { return endpoint == OAUTH2_ENDPOINT_USERINFO; }
};

// The URL of path on the issuer's host: its origin (scheme://host[:port])
// and path, whatever path the issuer has; empty if the issuer is not an
// absolute http(s) URL.  Every URL the server names of itself (metadata,
// verification_uri) and expects in a DPoP proof's htu.  A realm's
// locations are under its issuer's path (make_location checks it).
std::string issuer_url(std::string_view issuer, std::string_view path);

// Builds a location from its directives' values; throws
// std::runtime_error with a message for nginx -t.
std::unique_ptr<Location> make_location(Config& config, const oauth2_location_conf_t& lc);

}  // namespace oauth2

struct oauth2_conf_s {
  oauth2::Config c;
};

struct oauth2_location_s {
  std::unique_ptr<oauth2::Location> l;
};
