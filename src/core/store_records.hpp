// The store's records and keys (internal to store.cpp and its tests):
// how a client, token, user and account lock are laid out in LMDB, and the
// RAII handles of LMDB resources.  Records are versioned so that a store
// stays readable by the release before (docs/design.md).

#pragma once

#include <lmdb.h>

#include <array>
#include <bitset>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "store.hpp"

namespace oauth2::records {

// record headers the hot paths read without decoding the JSON
constexpr char kRecordV2 = 2;
constexpr unsigned char kFlagDisabled = 1;  // clients
constexpr unsigned char kFlagActive = 1;    // users
// the longest username a user record's header holds (its length is a
// byte); a longer one is in the JSON alone, the header's length 0
constexpr size_t kMaxHeaderName = 255;

// ------------------------------------------------------------------ keys

// Every key starts with its realm, length-prefixed.  Throws
// std::invalid_argument on an invalid realm.
std::string realm_prefix(std::string_view realm);

// The same key built on the stack, for the lookups of the validation path
// (no allocation): the realm length-prefixed, then what is appended, up to
// a client key's length.  Throws std::invalid_argument on an invalid realm
// and std::length_error past the end.
class StackKey {
 public:
  explicit StackKey(std::string_view realm);
  StackKey& append(std::string_view bytes);
  StackKey& append(const unsigned char* p, size_t n) {
    return append(std::string_view(reinterpret_cast<const char*>(p), n));
  }
  std::string_view view() const { return std::string_view(buf_.data(), size_); }

 private:
  std::array<char, 1 + kMaxRealm + kMaxClientId> buf_;
  size_t size_ = 0;
};
StackKey client_stack_key(std::string_view realm, std::string_view id);
StackKey token_stack_key(std::string_view realm, const TokenId& id);
StackKey user_stack_key(std::string_view realm, uint64_t id);
// callers check the id (valid_client_id) first
std::string client_key(std::string_view realm, std::string_view id);
std::string token_key(std::string_view realm, const TokenId& id);
// ... and back: false for a key that is not a token's
bool split_token_key(std::string_view key, std::string_view* realm, TokenId* id);
// what follows the realm (or an index's prefix): the six order bytes and
// the hash, or the hash alone for a legacy id
std::string token_id_bytes(const TokenId& id);
// ... and back; nullopt for any other length
std::optional<TokenId> parse_token_id(std::string_view bytes);
// realm, then the client id length-prefixed (then the token hashes)
std::string client_tokens_prefix(std::string_view realm, std::string_view id);
// realm, then the id big-endian: users list in id order
std::string user_key(std::string_view realm, uint64_t id);
// realm, then the name; a name longer than kMaxKeyName bytes (a Unicode
// one), which would not fit LMDB's 511 bytes of key with the longest
// realm, 0xFF and its SHA-256 instead
constexpr size_t kMaxKeyName = 511 - 1 - kMaxRealm;
std::string username_key(std::string_view realm, std::string_view name);
// meta: the realm's user id sequence (the one realm record in meta)
std::string user_seq_key(std::string_view realm);
// meta: 8 random bytes that every write of a realm's applications changes
// (Txn::clients_version)
std::string clients_version_key(std::string_view realm);
// realm, the lower-cased email length-prefixed (then the user ids)
std::string email_prefix(std::string_view realm, std::string_view email);
std::string user_tokens_prefix(std::string_view realm, uint64_t id);
std::string family_prefix(std::string_view realm, const Family& f);
void put_u64_be(std::string& out, uint64_t v);
uint64_t get_u64_be(const char* p);

// --------------------------------------------------------------- records

std::string encode_token(const Token& t);
std::optional<Token> decode_token(std::string_view v);
std::string encode_client(const Client& c);
std::optional<Client> decode_client(std::string_view realm, std::string_view rec);
std::string encode_user(const User& u);
std::optional<User> decode_user(std::string_view realm, std::string_view rec);
std::string encode_lock(const AccountLock& l);
std::optional<AccountLock> decode_lock(std::string_view v);

// valid UTF-8 without control characters, at most max bytes
bool storable_text(const std::string& s, size_t max);
// every string of the client survives its JSON record byte for byte
bool storable(const Client& c);

void mkdir_p(const std::string& path);

// ------------------------------------------------------------------ LMDB

inline void check(int rc, const char* what) {
  if (rc != MDB_SUCCESS) throw StoreError(what, rc);
}

inline MDB_val val(std::string_view s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}

inline std::string_view view(const MDB_val& v) {
  return std::string_view(static_cast<const char*>(v.mv_data), v.mv_size);
}

// The value under key in dbi (a view into the map, valid while the
// transaction lasts), or nullopt.  Throws StoreError (what) on an error.
inline std::optional<std::string_view> get_value(MDB_txn* txn, MDB_dbi dbi, std::string_view key,
                                                 const char* what) {
  MDB_val k = val(key), v;
  int rc = mdb_get(txn, dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return std::nullopt;
  check(rc, what);
  return view(v);
}

// Deletes key from dbi; false if it was not there.  Throws StoreError
// (what) on an error.
inline bool del_key(MDB_txn* txn, MDB_dbi dbi, std::string_view key, const char* what) {
  MDB_val k = val(key);
  int rc = mdb_del(txn, dbi, &k, nullptr);
  if (rc == MDB_NOTFOUND) return false;
  check(rc, what);
  return true;
}

// Whether what validation answered for a token it found valid can
// depend on db's records: the token's own (Txn::get_token), its
// application's (client_enabled) and its user's (active_username), and
// nothing else.  A write that replaces or deletes one of them moves the
// store's validation epoch (kValidEpochMeta) in its own transaction;
// one that creates a record does not: a new token, application or user
// changes no answer given before it (ValidCache, location.hpp).
constexpr bool feeds_validation(Db db) {
  return db == Db::kTokens || db == Db::kClients || db == Db::kUsers;
}

// Whether two user records give validation the same answer
// (Txn::active_username reads the active flag and the name of a record's
// header, and nothing else): a sign-in's last_login changes neither, and
// must not end every worker's cached answers for every realm.  Only
// records whose header holds the name are compared; any other pair
// counts as different.
inline bool same_user_for_validation(std::string_view a, std::string_view b) {
  auto header = [](std::string_view r) -> std::string_view {
    if (r.size() < 3 || r[0] != kRecordV2) return {};
    const size_t len = static_cast<unsigned char>(r[2]);
    if (len == 0 || r.size() < 3 + len) return {};
    return r.substr(1, 2 + len);  // the flags, the name's length, the name
  };
  const std::string_view ha = header(a), hb = header(b);
  if (ha.empty() || hb.empty() || ha.substr(1) != hb.substr(1)) return false;
  return (static_cast<unsigned char>(ha[0]) & kFlagActive) ==
         (static_cast<unsigned char>(hb[0]) & kFlagActive);
}

// mdb_put of value under key in dbi, db's; with replaced, also whether a
// record was there that validation may have answered differently from
// (one more search only when there was: MDB_NOOVERWRITE first; a user
// record's replacement only if same_user_for_validation says so).
// LMDB's return code.
inline int put_noting(MDB_txn* txn, MDB_dbi dbi, Db db, std::string_view key,
                      std::string_view value, bool* replaced) {
  MDB_val k = val(key), v = val(value);
  if (replaced) {
    int rc = mdb_put(txn, dbi, &k, &v, MDB_NOOVERWRITE);
    if (rc != MDB_KEYEXIST) return rc;
    // MDB_KEYEXIST pointed v at the record there
    *replaced = !(db == Db::kUsers && same_user_for_validation(view(v), value));
    v = val(value);
  }
  return mdb_put(txn, dbi, &k, &v, 0);
}

// The validation epoch of a snapshot (0 before the first); throws
// StoreError on a value that is no number: one read as 0 would never
// move again.
uint64_t valid_epoch_of(std::optional<std::string_view> v);

// The epoch of bucket in a snapshot's kValidEpochsMeta (0 before the
// first); throws StoreError on a value of another size.
uint64_t bucket_epoch_of(std::optional<std::string_view> v, uint8_t bucket);

// The bucket of a token record by its key in Db::kTokens, which ends with
// the token's SHA-256 (token_key): the same as token_epoch_bucket(id)
inline uint8_t token_epoch_bucket(std::string_view key) {
  return key.empty() ? 0 : static_cast<uint8_t>(key.back());
}

// What the writes of one change end of the validation cache's answers:
// every one (an application, a user, a new snapshot), or those of the
// token buckets of the token records it replaced or deleted.
struct Invalidation {
  bool all = false;
  std::bitset<kTokenEpochBuckets> tokens;
  // a record of db under key was replaced or deleted
  void note(Db db, std::string_view key) {
    if (db == Db::kTokens) {
      tokens.set(token_epoch_bucket(key));
    } else if (feeds_validation(db)) {
      all = true;
    }
  }
  bool any() const { return all || tokens.any(); }
};

// Moves on in txn (meta: the meta database) the epochs inv names: the
// validation epoch by one if all, and each bucket's by one.  LMDB's
// return code; throws StoreError for a corrupt epoch.
int bump_valid_epochs(MDB_txn* txn, MDB_dbi meta, const Invalidation& inv);

// A cursor, closed when it goes (before its transaction ends).
class Cursor {
 public:
  Cursor(MDB_txn* txn, MDB_dbi dbi) { check(mdb_cursor_open(txn, dbi, &c_), "mdb_cursor_open"); }
  ~Cursor() { mdb_cursor_close(c_); }
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;
  int get(MDB_val* k, MDB_val* v, MDB_cursor_op op) { return mdb_cursor_get(c_, k, v, op); }

 private:
  MDB_cursor* c_ = nullptr;
};

// Calls f(suffix, value) for the records of dbi whose keys are prefix and
// then exactly suffix_len bytes (0: any), in key order, while f returns
// true.  Stops at the first key without the prefix; the first key of
// another length ends the scan too (the index layouts never mix lengths
// under one prefix).  Throws StoreError (what) on an LMDB error.
template <typename F>
void scan_prefix(MDB_txn* txn, MDB_dbi dbi, std::string_view prefix, size_t suffix_len,
                 const char* what, F&& f) {
  Cursor cur(txn, dbi);
  MDB_val k = val(prefix), v;
  int rc = cur.get(&k, &v, prefix.empty() ? MDB_FIRST : MDB_SET_RANGE);
  while (rc == MDB_SUCCESS) {
    std::string_view key = view(k);
    if (key.substr(0, prefix.size()) != prefix ||
        (suffix_len && key.size() != prefix.size() + suffix_len)) {
      return;
    }
    if (!f(key.substr(prefix.size()), view(v))) return;
    rc = cur.get(&k, &v, MDB_NEXT);
  }
  if (rc != MDB_NOTFOUND) throw StoreError(what, rc);
}

// A transaction aborted when it goes unless committed.
class TxnHandle {
 public:
  TxnHandle(MDB_env* env, unsigned flags) {
    check(mdb_txn_begin(env, nullptr, flags, &t_), "mdb_txn_begin");
  }
  ~TxnHandle() {
    if (t_) mdb_txn_abort(t_);
  }
  TxnHandle(const TxnHandle&) = delete;
  TxnHandle& operator=(const TxnHandle&) = delete;
  MDB_txn* get() const { return t_; }
  void commit() {
    MDB_txn* t = t_;
    t_ = nullptr;
    check(mdb_txn_commit(t), "mdb_txn_commit");
  }

 private:
  MDB_txn* t_ = nullptr;
};

}  // namespace oauth2::records
