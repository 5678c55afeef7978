// The LMDB store: one environment shared by every nginx worker and by
// oauth2-admin.  Records of each kind live in their own named database and
// every key starts with its realm, length-prefixed, so no key built from
// one record can address another.  Tokens are keyed by their SHA-256 and
// never stored in clear.

#pragma once

#include <lmdb.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "crypto.hpp"

namespace oauth2 {

constexpr uint32_t kSchemaVersion = 1;
constexpr size_t kMaxRealm = 64;
constexpr size_t kMaxClientId = 200;
constexpr size_t kDefaultMapSize = size_t(256) << 20;
constexpr const char* kDefaultRealm = "default";

// A real failure of the store (I/O, full map, corruption); expected
// outcomes such as "not found" are values, never this.
class StoreError : public std::runtime_error {
 public:
  StoreError(const std::string& what, int rc)
      : std::runtime_error(what + ": " + mdb_strerror(rc)), rc_(rc) {}
  int rc() const { return rc_; }

 private:
  int rc_;
};

struct Client {
  std::string realm = kDefaultRealm;
  std::string client_id;
  std::string name;
  std::string secret_hash;  // empty for a public client
  bool confidential = true;
  std::vector<std::string> grant_types;
  std::string scope;  // allowed scopes; empty: the server's default
  std::vector<std::string> redirect_uris;
  std::string auth_method;          // empty: basic or post
  int64_t access_token_ttl = 0;     // 0: the server's default
  std::string access_token_format;  // "jwt", "opaque"; empty: the server's
  int64_t created_at = 0;
  bool disabled = false;
  // its secret was chosen elsewhere (import-django) and may be guessable:
  // throttled per (client, address) until it is rotated
  bool imported_secret = false;
  // the operator's own application: its users' tokens act with the user's
  // full rights at the admin API, whatever their scope
  bool first_party = false;

  bool allows_grant(std::string_view grant) const;
};

// A user, with the fields of Django's auth.User that the APIs expose.
struct User {
  std::string realm = kDefaultRealm;
  uint64_t id = 0;  // assigned by put_user(create) when 0
  std::string username;
  std::string email;
  std::string first_name;
  std::string last_name;
  std::string password;  // password.hpp format; "" or "!...": unusable
  bool is_staff = false;
  bool is_superuser = false;
  bool is_active = true;
  int64_t date_joined = 0;
  int64_t last_login = 0;
};

enum class PutUser { kOk, kUsernameTaken, kMissing, kInvalid };

// The failed passwords of one account, shared by every place that checks
// a password (lockout.hpp), and the origins (addresses, browsers) that
// signed in to it recently.
struct AccountLock {
  struct Origin {
    Digest id{};       // SHA-256 of the address or the device cookie
    int64_t last = 0;  // its last successful sign-in
  };
  int64_t window_start = 0;
  uint32_t failures = 0;  // in the window
  int64_t locked_until = 0;
  std::vector<Origin> trusted;  // newest first, at most kMaxTrusted
  static constexpr size_t kMaxTrusted = 8;
};

enum class TokenType : uint8_t {
  kAccess = 1,
  kRefresh = 2,
  kCode = 3,
  kSession = 4,    // a browser's login at the authorization endpoint
  kApiKey = 5,     // a handshake API key (seed 002); never expires
  kHandshake = 6,  // keyed by the SHA-256 of its handshake_id
};

using Family = std::array<unsigned char, 16>;

// An access token, a refresh token or an authorization code, stored under
// the SHA-256 of its value.
struct Token {
  TokenType type = TokenType::kAccess;
  int64_t issued_at = 0;
  int64_t expires_at = 0;
  std::string client_id;
  std::string scope;
  std::string user;  // the user's id in decimal; empty for client tokens
  // the grant it belongs to (a code and every token issued from it, a
  // refresh token and its successors); all zero: none
  Family family{};
  int64_t used_at = 0;                // code redeemed, refresh token rotated
  std::string redirect_uri;           // codes: the one the user is sent back to
  bool redirect_uri_omitted = false;  // codes: the request did not name it
  std::string code_challenge;         // codes: PKCE S256 challenge, or empty
  std::string sealed;                 // rotated refresh token: its successors,
                                      // encrypted under it (crypto.hpp seal)
  bool jwt = false;                   // keyed by the SHA-256 of a JWT's jti: only
                                      // a signed JWT carrying that jti presents it
  std::string data;                   // API keys and handshakes: their JSON
                                      // attributes (names, hashed secret)

  bool has_family() const;
};

class Store;

// A transaction.  Move-only; aborts (or, for the cached read transaction,
// resets) in its destructor unless committed.
class Txn {
 public:
  Txn(Txn&& other) noexcept;
  Txn& operator=(Txn&&) = delete;
  Txn(const Txn&) = delete;
  ~Txn();

  std::optional<Client> get_client(std::string_view realm, std::string_view client_id);
  std::vector<Client> list_clients(std::string_view realm);
  std::optional<Token> get_token(std::string_view realm, const Digest& hash);
  // the validation path: header reads, no JSON decoding.  nullopt: no
  // such client; false: disabled.
  std::optional<bool> client_enabled(std::string_view realm, std::string_view client_id);
  // the username of an active user; nullopt if missing or inactive
  std::optional<std::string> active_username(std::string_view realm, uint64_t id);

  // false if create and the client exists, or !create and it does not
  bool put_client(const Client& c, bool create);
  // deletes the client and every token it holds; false if it did not exist
  bool delete_client(std::string_view realm, std::string_view client_id);
  // false if a token with this hash exists (never overwritten)
  bool put_token(std::string_view realm, const Digest& hash, const Token& t);
  bool delete_token(std::string_view realm, const Digest& hash);
  // rewrites an existing token record (false if there is none)
  bool update_token(std::string_view realm, const Digest& hash, const Token& t);
  // deletes every token of a grant; how many
  size_t revoke_family(std::string_view realm, const Family& family);
  // deletes up to max tokens of the realm expired at now; how many it did
  size_t purge_expired(std::string_view realm, int64_t now, size_t max);

  std::optional<User> get_user(std::string_view realm, uint64_t id);
  std::optional<User> get_user_by_username(std::string_view realm, std::string_view username);
  // users in id order, skipping offset, at most limit; *total gets all
  std::vector<User> list_users(std::string_view realm, size_t offset, size_t limit, size_t* total);
  // create: assigns u.id when 0 (then updated in place); !create: u.id
  // must exist.  Keeps usernames unique per realm.
  PutUser put_user(User& u, bool create);
  // deletes the user and every token issued to them
  bool delete_user(std::string_view realm, uint64_t id);
  // the ids of the users with this email (compared case-insensitively;
  // Django does not make emails unique), at most max
  std::vector<uint64_t> users_by_email(std::string_view realm, std::string_view email, size_t max);
  // deletes every token issued to the user (password change, disable)
  size_t delete_user_tokens(std::string_view realm, uint64_t id);

  // the account's lock record (lockout.hpp); nullopt if it has none
  std::optional<AccountLock> get_account_lock(std::string_view realm, uint64_t user);
  void put_account_lock(std::string_view realm, uint64_t user, const AccountLock& lock);

  // a server-wide value kept in meta
  std::optional<std::string> get_meta(std::string_view name);
  void put_meta(std::string_view name, std::string_view value);
  bool delete_meta(std::string_view name);
  // the tokens an index of the client lists (hash, record) of one type
  std::vector<std::pair<Digest, Token>> client_tokens_of_type(std::string_view realm,
                                                              std::string_view client_id,
                                                              TokenType type);

  void commit();

 private:
  friend class Store;
  Txn(Store* store, MDB_txn* txn, bool cached) noexcept
      : store_(store), txn_(txn), cached_(cached) {}
  // deletes the tokens an index lists under prefix (+ 32-byte hashes)
  size_t delete_indexed(std::string_view realm, MDB_dbi index, const std::string& prefix);

  Store* store_;
  MDB_txn* txn_;
  bool cached_;
};

class Store {
 public:
  // Opens (creating the directory and the databases if missing, unless
  // !create: then it only checks, and writes nothing).  Throws StoreError.
  // One Store per process per environment: LMDB forbids opening the same
  // environment twice in one process.
  Store(const std::string& path, size_t mapsize, bool create = true);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  Txn read();  // a fresh read transaction, any thread
  // the reused read transaction of a single-threaded caller (an nginx
  // worker's event loop); a fresh one after disable_read_cache()
  Txn read_cached();
  void disable_read_cache() { cache_reads_ = false; }
  Txn write();

  int reader_check();
  const std::string& path() const { return path_; }

 private:
  friend class Txn;
  MDB_txn* begin(unsigned flags);
  bool open_databases(unsigned flags);

  std::string path_;
  struct EnvClose {
    void operator()(MDB_env* e) const { mdb_env_close(e); }
  };
  std::unique_ptr<MDB_env, EnvClose> env_;
  MDB_dbi meta_ = 0, clients_ = 0, tokens_ = 0, client_tokens_ = 0;
  MDB_dbi users_ = 0, usernames_ = 0, user_tokens_ = 0;
  MDB_dbi family_tokens_ = 0, emails_ = 0, account_locks_ = 0;
  MDB_txn* cached_ = nullptr;
  bool cache_reads_ = true;
};

// Where releases before 0.9 kept a generated handshake key, in clear: read
// only by `oauth2-admin handshake-key extract`, which moves it to a file.
constexpr const char* kHandshakeKeyMeta = "handshake_hs256_key";
// the kid of the handshake tokens that key signed
constexpr const char* kLegacyHandshakeKid = "handshake";

// Master-side preparation: mkdir -p, chown to uid/gid when they are >= 0,
// and a check of an existing environment that writes nothing (R86: the
// master never writes the store; the first worker creates what is
// missing).  Throws StoreError / std::runtime_error.
void prepare_store(const std::string& path, size_t mapsize, long uid, long gid);

bool valid_realm(std::string_view realm);
// decodes a built-in client record: the work get_client does on a hit
void decode_client_dummy();
bool valid_client_id(std::string_view id);
// Django's rule: 1 to 150 of letters, digits and @.+-_
bool valid_username(std::string_view name);
// the decimal user id of a token, 0 if none or malformed
uint64_t token_user_id(const Token& t);

}  // namespace oauth2
