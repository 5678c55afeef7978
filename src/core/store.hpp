// The LMDB store: one environment shared by every nginx worker and by
// oauth2-admin.  Records of each kind live in their own named database and
// every key starts with its realm, length-prefixed, so no key built from
// one record can address another.  Tokens are keyed by their TokenId and
// never stored in clear.

#pragma once

#include <lmdb.h>

#include <array>
#include <atomic>
#include <thread>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <vector>

#include "../../include/oauth2.h"
#include "change.hpp"
#include "crypto.hpp"

namespace oauth2 {

// 2: token records keyed by TokenId (time-ordered); version 4 records
constexpr uint32_t kSchemaVersion = 2;
constexpr size_t kMaxRealm = 64;
constexpr size_t kMaxClientId = 200;
// The map's size is address space, not disk: the file grows as records
// are written.  16 GiB holds tens of millions of tokens; a full map
// refuses writes (503, with the reason in the log) and loses nothing.
constexpr size_t kDefaultMapSize = size_t(16) << 30;
constexpr const char* kDefaultRealm = "default";

// A real failure of the store (I/O, full map, corruption); expected
// outcomes such as "not found" are values, never this.
class StoreError : public std::runtime_error {
 public:
  StoreError(const std::string& what, int rc)
      : std::runtime_error(what + ": " + mdb_strerror(rc)), rc_(rc) {}
  int rc() const { return rc_; }
  // the cluster (etcd, or the mirror behind it) cannot take a write now:
  // a 503, with what says why
  static StoreError unavailable(const std::string& what) {
    return StoreError(Verbatim{}, what, EAGAIN);
  }
  // the mirror cannot be read or written through now: staler than
  // max_staleness, or behind etcd past the wait (a 503, what says why)
  static StoreError stale(const std::string& what) { return StoreError(Verbatim{}, what, ESTALE); }
  // etcd applied the change, but the mirror has not shown it within the
  // wait: done in the cluster, not seen here yet.  nginx and the daemon
  // answer 503 as for a mirror behind (their answer could not be read
  // back here); oauth2-admin's commands count it as done
  // (Cluster::set_applied_unseen) and never see this
  static StoreError applied_unseen(const std::string& what) {
    return StoreError(Verbatim{}, what, EINPROGRESS);
  }
  bool is_applied_unseen() const { return rc_ == EINPROGRESS; }
  // this store takes no local write (a mirror, written only by sync)
  static StoreError read_only(const std::string& what) {
    return StoreError(Verbatim{}, what, EROFS);
  }
  // etcd refused the change as beyond its --max-txn-ops or
  // --max-request-bytes: nothing of it applied, and trying it again as
  // it is will not help (Store::change revokes the tokens it deletes in
  // rounds first; what is left is a 503 with what says why)
  static StoreError too_large(const std::string& what) {
    return StoreError(Verbatim{}, what, E2BIG);
  }
  bool is_too_large() const { return rc_ == E2BIG; }
  // why the 503 it causes (include/oauth2.h OAUTH2_UNAVAILABLE_*): the
  // cluster's, the mirror's, or else the store's
  static unsigned unavailable_reason(int rc) {
    return rc == EAGAIN || rc == E2BIG         ? OAUTH2_UNAVAILABLE_CLUSTER
           : rc == ESTALE || rc == EINPROGRESS ? OAUTH2_UNAVAILABLE_MIRROR
                                               : OAUTH2_UNAVAILABLE_STORE;
  }

 private:
  struct Verbatim {};  // what is the whole message: no mdb_strerror(rc) after it
  StoreError(Verbatim, const std::string& what, int rc) : std::runtime_error(what), rc_(rc) {}
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
  // OpenID Connect: the id_token's algorithm (empty: RS256 if the server
  // has an RS256 key) and where end-session may send the browser back
  std::string id_token_alg;
  std::vector<std::string> post_logout_redirect_uris;
  // RFC 8707: the resources its tokens may be asked for (absolute URIs)
  std::vector<std::string> resources;
  // RFC 9449 5.2: its token requests must carry a DPoP proof
  bool dpop_bound_access_tokens = false;
  // the record it was decoded from (Txn::get_client): a write decided on
  // this client checks that the record is still this (client_as_read)
  std::string record;

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
  kSession = 4,     // a browser's login at the authorization endpoint
  kApiKey = 5,      // a handshake API key (seed 002); never expires
  kHandshake = 6,   // keyed by the TokenId of its handshake_id
  kConsent = 7,     // a user's remembered grant of scopes to a client (consent.hpp)
  kDevice = 8,      // a device code (RFC 8628, device.hpp)
  kDeviceUser = 9,  // a user code, naming its device code's record
  // a rotated refresh token's successor pair, sealed by that token, for
  // the grace only (R38): a record of its own, which expiry removes, so
  // that no store dump holds it longer than that
  kSealedPair = 10,
  // a staff user's login at the daemon's pages (oauth2-admin serve), under
  // an id derived from its cookie: never an authorization-server session
  // (kSession), whatever cookie names it.  Pages' records of releases
  // before this kind are kSession under that id, which the module never
  // looks up (session.hpp is_session_value)
  kPageSession = 11,
};

using Family = std::array<unsigned char, 16>;

// What the store finds a credential by (never the value itself): the
// value's first six bytes, as base64url decodes them (for new_token()'s
// values, the time they were made, so that records written together sit
// together: a batch of new tokens dirties a few pages, and the pages fill)
// and its SHA-256.  Stores before schema 2 keyed records by the SHA-256
// alone; a legacy id names such a record.  Lookups by value find both.
struct TokenId {
  std::array<unsigned char, 6> order{};
  Digest hash{};
  bool legacy = false;
  bool operator==(const TokenId& o) const {
    return order == o.order && hash == o.hash && legacy == o.legacy;
  }
  bool operator<(const TokenId& o) const {
    return std::tie(legacy, order, hash) < std::tie(o.legacy, o.order, o.hash);
  }
};
TokenId token_id(std::string_view value);
// the same, with hash the SHA-256 of value, already computed
TokenId token_id(std::string_view value, const Digest& hash);
// 16 hex digits of the id's SHA-256: names a token in logs and metrics
// (the same at issue and at validation) and reveals nothing of it.  Held
// in place (the validation path makes one a request), read as a string.
// Default-constructed: empty, no token.
struct ShortTokenId {
  std::array<char, 16> hex{};
  size_t size = 0;
  operator std::string_view() const { return std::string_view(hex.data(), size); }
};
ShortTokenId short_token_id(const TokenId& id);

// An access token, a refresh token or an authorization code, stored under
// its TokenId.
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
  bool jwt = false;                   // keyed by the TokenId of a JWT's jti: only
                                      // a signed JWT carrying that jti presents it
  std::string data;                   // API keys and handshakes: their JSON
                                      // attributes (names, hashed secret)
  std::string audience;               // RFC 8707: the resources it is for,
                                      // space-separated; empty: the default
                                      // audience (audience.hpp)
  std::string jkt;                    // DPoP (RFC 9449): the thumbprint of
                                      // the key it is bound to, or empty

  bool has_family() const;
};

class Store;
class Committer;
class Cluster;
class MirrorWriter;

// What a snapshot of a store saw: the store (a number no other Store of
// this process had) and LMDB's transaction id.  While a store's version
// is a snapshot's, a new snapshot would read exactly what it read.
struct StoreVersion {
  uint64_t store = 0;
  uint64_t txn = 0;
};

// A transaction: a read-only snapshot (Store::read), or the building of a
// change (Store::change): reads come from a snapshot and are recorded with
// what they saw, writes are kept aside and applied by the committer only
// if those reads still hold.  Move-only.
class Txn {
 public:
  Txn(Txn&& other) noexcept;
  Txn& operator=(Txn&&) = delete;
  Txn(const Txn&) = delete;
  ~Txn();

  std::optional<Client> get_client(std::string_view realm, std::string_view client_id);
  std::vector<Client> list_clients(std::string_view realm);
  // A value that every write of realm's applications changes (8 random
  // bytes; "" before any write by this version): what is known of them
  // all, such as whether one allows a grant, holds while it is the same.
  std::string clients_version(std::string_view realm);
  std::optional<Token> get_token(std::string_view realm, const TokenId& id);
  // the version this snapshot reads
  StoreVersion version() const;
  // the validation epoch this snapshot reads (kValidEpochMeta): moved by
  // a change to an application or a user
  uint64_t valid_epoch();
  // ... and with it the epoch of the tokens of bucket (kValidEpochsMeta,
  // token_epoch_bucket), their sum: while it is the store's, validation
  // would answer as it answered then for every token of the bucket it
  // found valid (issuance goes on without moving it)
  uint64_t token_valid_epoch(uint8_t bucket);
  // the validation path: header reads, no JSON decoding.  nullopt: no
  // such client; false: disabled.
  std::optional<bool> client_enabled(std::string_view realm, std::string_view client_id);
  // the client's record is still the one c was read from, or of the same
  // terms (a new name, its secret hashed again or rotated), and enabled: a
  // write decided on c applies (R35, R70), or is refused when the
  // application was deleted, disabled or its terms changed since (made
  // public, its grants, scopes, redirect URIs, resources, DPoP...)
  bool client_as_read(std::string_view realm, const Client& c);
  // a client's record says it is enabled
  static bool record_enabled(std::string_view realm, std::string_view rec);
  // the username of an active user; nullopt if missing or inactive
  std::optional<std::string> active_username(std::string_view realm, uint64_t id);

  // false if create and the client exists, or !create and it does not
  bool put_client(const Client& c, bool create);
  // deletes the client and every token it holds; false if it did not exist
  bool delete_client(std::string_view realm, std::string_view client_id);
  // false if a token with this hash exists (never overwritten)
  bool put_token(std::string_view realm, const TokenId& id, const Token& t);
  // put_token for the id of a token new_token() just drew.  The change
  // relies on its key's absence (in cluster mode a Txn tried again after
  // a lost answer then fails that compare, rather than putting back a
  // token revoked meanwhile), but not on its legacy key's: a record there
  // needs the token's value, which only this change knows.  One compare
  // in etcd a token fewer.
  bool put_new_token(std::string_view realm, const TokenId& id, const Token& t);
  bool delete_token(std::string_view realm, const TokenId& id);
  // rewrites an existing token record (false if there is none)
  bool update_token(std::string_view realm, const TokenId& id, const Token& t);
  // deletes every token of a grant; how many
  size_t revoke_family(std::string_view realm, const Family& family);

  std::optional<User> get_user(std::string_view realm, uint64_t id);
  // the highest user id the realm has handed out (0: none); ids at or
  // below it are never given again
  uint64_t user_seq(std::string_view realm);
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
  // the tokens an index of the client lists (hash, record) of one type;
  // guard: the change runs again when a token was added under the client
  // meanwhile (in cluster mode, one this edge's mirror has not seen), for
  // a change that must find them all
  std::vector<std::pair<TokenId, Token>> client_tokens_of_type(std::string_view realm,
                                                               std::string_view client_id,
                                                               TokenType type, bool guard = false);
  // the same for the tokens of a user
  std::vector<std::pair<TokenId, Token>> user_tokens_of_type(std::string_view realm, uint64_t user,
                                                             TokenType type);

  // In a change: its writes are to be applied when the change ends
  // (without it they are dropped).  In a read transaction: a logic error.
  void commit();
  // Cluster mode: the tokens an earlier run of this change revoked in
  // rounds of their own, because etcd refused it whole as too large
  // (Store::change); what this run deletes comes on top.  0 otherwise.
  size_t revoked_first() const { return revoked_first_; }

  // The key-value level the records above are built on (store_records.hpp
  // makes the keys).  get's view lasts until the next write of that key.
  std::optional<std::string_view> get(Db db, std::string_view key);
  void put(Db db, std::string_view key, std::string_view value);
  bool del(Db db, std::string_view key);  // false: it was not there
  // f(suffix, value) for the records under prefix whose keys are prefix
  // plus suffix_len bytes (0: any), in key order, while f returns true.
  // guard: the change relies on the whole range, which must not change
  // before it commits (an index it deletes through, say).
  void scan(Db db, std::string_view prefix, size_t suffix_len, bool guard,
            const std::function<bool(std::string_view, std::string_view)>& f);
  // f(key, value) for the snapshot's records under prefix whose keys sort
  // after `after` (empty: from the first), while f returns true.  Not
  // guarded, and blind to the change's own writes: for sweeps that read
  // before they write.
  void scan_after(Db db, std::string_view prefix, std::string_view after,
                  const std::function<bool(std::string_view, std::string_view)>& f);

 private:
  friend class Store;
  friend class Committer;
  // a new clients_version(realm), with a write of its applications
  void new_clients_version(std::string_view realm);
  struct Pending;  // a change being built: its reads and writes
  // kExclusive: a change built inside the committer's write transaction
  enum class Mode { kRead, kChange, kExclusive };
  Txn(Store* store, MDB_txn* txn, Mode mode);
  // what the change became (empty without commit()); ends the snapshot
  Change take_change();
  // deletes the tokens an index lists under prefix (+ their ids)
  size_t delete_indexed(std::string_view realm, Db index, const std::string& prefix);
  // the tokens of one type an index lists under prefix (guard: scan's)
  std::vector<std::pair<TokenId, Token>> indexed_of_type(std::string_view realm, Db index,
                                                         const std::string& prefix, TokenType type,
                                                         bool guard);
  // the record of id: the id it is stored under (id, or for a value's id
  // the legacy id of the same value), and the record
  // (the change relies on both reads, or on the legacy one only if asked)
  std::optional<std::pair<TokenId, std::string_view>> find_token(std::string_view realm,
                                                                 const TokenId& id,
                                                                 bool rely_on_legacy = true);
  // get; !rely: not a read the change relies on (no compare, no conflict)
  std::optional<std::string_view> get(Db db, std::string_view key, bool rely);
  void write_token(std::string_view realm, const TokenId& id, const Token& t);
  bool assign_user_id(User& u);
  void release() noexcept;

  Store* store_;
  MDB_txn* txn_;
  Mode mode_;
  std::unique_ptr<Pending> pending_;
  size_t revoked_first_ = 0;
};

class Store {
 public:
  // Opens (creating the directory and the databases if missing, unless
  // !create: then it only checks, and writes nothing).  Throws StoreError.
  // One Store per process per environment: LMDB forbids opening the same
  // environment twice in one process.  mapsize 0: the size the
  // environment was given (kDefaultMapSize for a new one).
  Store(const std::string& path, size_t mapsize, bool create = true);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // a read-only snapshot, on any thread: a reset read transaction from
  // the pool, renewed (no allocation, no lock on the LMDB reader table)
  Txn read();

  // The one way to write.  Runs decide(txn) on a fresh snapshot; if it
  // called txn.commit(), its writes go to this process's committer, which
  // applies them with the other changes waiting, in one LMDB transaction
  // and one sync, provided what decide read still holds; if it does not,
  // decide runs again on a newer snapshot.  After kOptimisticRuns such
  // runs it runs once more inside the committer's write transaction,
  // where nothing can overtake it (a record many write at once: a code
  // redeemed by many clients, a counter).  Returns what decide returned
  // once the writes are durable.  decide must be safe to run more than
  // once: its only effects are through txn and its return value.
  // Cluster mode: etcd takes at most --max-txn-ops operations (128 by
  // default) and --max-request-bytes in one Txn.  When it refuses a
  // change as larger, the tokens the change deletes (an application's or
  // a user's, an expiry round's: deleting a token is always revoking it,
  // which the change was about to do) are revoked first, in rounds etcd
  // takes, each a change of its own; decide then runs again, with only
  // what came since left to delete (Txn::revoked_first counts the rest).
  // A change too large without them is a StoreError (is_too_large).
  template <typename F>
  auto change(F&& decide) -> std::invoke_result_t<F&, Txn&>;
  static constexpr int kOptimisticRuns = 8;
  // Runs decide(txn) once on a fresh snapshot and returns the change it
  // built (empty without txn.commit()), uncommitted: a change decided on
  // the event loop and committed later in a batch (Committer::
  // commit_prepared), which must be decided afresh through change() if
  // its reads no longer hold then.  Local stores only: nullopt in cluster
  // mode and on a mirror, where change() is the way.
  template <typename F>
  std::optional<Change> prepare(F&& decide) {
    if (cluster_ || mirror_) return std::nullopt;
    Txn txn = begin_change();
    decide(txn);
    return txn.take_change();
  }
  // cluster mode: runs of a contended change before it is refused (503)
  static constexpr int kClusterRuns = 64;
  // cluster mode: the tokens changes of this Store revoked first, in
  // rounds, because etcd refused them as too large (Store::change)
  uint64_t revoked_in_rounds() const { return revoked_in_rounds_; }

  int reader_check();
  // the bytes the map may grow to, and those its pages use now
  struct Usage {
    uint64_t map_size = 0;
    uint64_t used = 0;
  };
  Usage usage();
  // A hot backup: the environment as one read transaction sees it,
  // compacted (mdb_env_copyfd2, MDB_CP_COMPACT), written to fd from its
  // offset 0; writers go on meanwhile.  Throws StoreError.
  void copy_compact(int fd);
  const std::string& path() const { return path_; }
  MDB_dbi dbi(Db db) const { return dbi_[static_cast<size_t>(db)]; }
  Committer& committer() { return *committer_; }

  // Cluster mode: from now on every change goes to etcd (cluster.hpp)
  void use_cluster(std::shared_ptr<Cluster> cluster);
  Cluster* cluster() const { return cluster_.get(); }
  // oauth2-admin sync writes this store: local changes are refused
  bool is_mirror() const { return mirror_; }
  // the etcd revision the mirror has applied, and when it was last known
  // to be current (ms since the epoch); 0: never
  int64_t mirror_revision();
  int64_t mirror_fresh_at();
  // the mirror_fresh_at this process read last: a mirror never goes
  // back, so it still holds everything etcd had then (mirror_staleness)
  int64_t mirror_fresh_seen() const { return mirror_fresh_seen_.load(std::memory_order_relaxed); }
  // Waits for the commit of its own that opening a new store makes off
  // the opener's way (the map size's record, settle_map_size), for the
  // unit tests that count commits from the first request.
  void wait_opened() {
    if (recorder_.joinable()) recorder_.join();
  }

 private:
  friend class Txn;
  friend class Committer;
  friend class MirrorWriter;
  void mirror_committed() { mirror_ = true; }
  // a meta record of this machine (local_meta), written at once
  int64_t meta_int(std::string_view name);
  MDB_txn* begin(unsigned flags);
  MDB_txn* begin_write() { return begin(0); }
  // kOlder: readable, of a schema this build brings up to date
  enum class Opened { kMissing, kOlder, kCurrent };
  Opened open_databases(unsigned flags);
  size_t settle_map_size(size_t requested);
  // the thread that makes that write at the open (joined by ~Store)
  std::thread recorder_;
  Txn begin_change(size_t revoked_first = 0);
  // *revoked_first: what revoke_first did for c, added
  bool commit_change(const Change& c, size_t* revoked_first);
  void commit_exclusive(const std::function<void(Txn&)>& decide, size_t* revoked_first);
  // the tokens c deletes, revoked in rounds (Store::change); false: it
  // deletes none
  bool revoke_first(const Change& c, size_t* revoked);
  static size_t tokens_deleted(const Change& c);
  static constexpr size_t kRevokeRound = 1000;
  // a local change that deletes more tokens revokes them first
  static constexpr size_t kRevokeWhole = 10 * kRevokeRound;
  // read transactions kept reset between uses, for read() and changes
  MDB_txn* take_snapshot();
  void give_back_snapshot(MDB_txn* txn) noexcept;

  // LMDB lets a process adopt a map that another process grew
  // (MDB_MAP_RESIZED: oauth2_store's size= raised at a reload while the
  // daemon or older workers run) only while none of its transactions is
  // live, since the old map is unmapped under them.  Every transaction is
  // counted from its begin (gate_enter) to its end (gate_leave); the
  // adoption waits until none is live, and holds new ones back meanwhile.
  // A thread that holds one itself cannot wait for that: its transaction
  // fails (a StoreError, 503), and a later one adopts the map.
  void gate_enter();
  void gate_leave() noexcept;
  void adopt_grown_map();
  friend class WriteTxn;
  std::mutex gate_m_;
  std::condition_variable gate_cv_;
  size_t live_ = 0;       // transactions begun and not ended
  bool pending_ = false;  // an adoption waits for live_ to be 0

  std::string path_;
  struct EnvClose {
    void operator()(MDB_env* e) const { mdb_env_close(e); }
  };
  std::unique_ptr<MDB_env, EnvClose> env_;
  std::array<MDB_dbi, kDbCount> dbi_{};
  std::mutex snapshots_m_;
  std::vector<MDB_txn*> snapshots_;
  std::unique_ptr<Committer> committer_;
  std::shared_ptr<Cluster> cluster_;
  bool mirror_ = false;
  uint64_t serial_;  // StoreVersion::store
  std::atomic<uint64_t> revoked_in_rounds_{0};
  std::atomic<int64_t> mirror_fresh_seen_{0};
};

template <typename F>
auto Store::change(F&& decide) -> std::invoke_result_t<F&, Txn&> {
  using R = std::invoke_result_t<F&, Txn&>;
  size_t revoked = 0;  // cluster mode: by revoke_first
  for (int run = 1; run <= kOptimisticRuns; run++) {
    Change c;
    if constexpr (std::is_void_v<R>) {
      {
        Txn txn = begin_change(revoked);
        decide(txn);
        c = txn.take_change();
      }
      if (c.empty() || commit_change(c, &revoked)) return;
    } else {
      std::optional<R> result;
      {
        Txn txn = begin_change(revoked);
        result.emplace(decide(txn));
        c = txn.take_change();
      }
      if (c.empty() || commit_change(c, &revoked)) return std::move(*result);
    }
  }
  if constexpr (std::is_void_v<R>) {
    commit_exclusive([&](Txn& txn) { decide(txn); }, &revoked);
  } else {
    std::optional<R> result;
    commit_exclusive([&](Txn& txn) { result.emplace(decide(txn)); }, &revoked);
    return std::move(*result);
  }
}

// Cluster mode: round() with rounds of n, and again with n halved while
// etcd refuses what it sends as too large (StoreError::is_too_large);
// n keeps the size that passed, for the rounds after.  At n == 1 the
// refusal is thrown.  round reads n for its size.
template <typename N, typename F>
auto halving_while_too_large(N& n, F&& round) -> std::invoke_result_t<F&> {
  for (;;) {
    try {
      return round();
    } catch (const StoreError& e) {
      if (!e.is_too_large() || n <= 1) throw;
      n /= 2;
    }
  }
}

// the map size nginx.conf gave the store (oauth2_store size=)
constexpr const char* kMapSizeMeta = "map_size";
// The store's validation epochs, moved on by every commit that replaces
// or deletes a record validation reads (records::feeds_validation), by
// every process that writes the store, the sync daemon of a mirror
// included; each mirror keeps its own (local_meta).  kValidEpochMeta
// (decimal) moves for an application or a user record, and for a new
// snapshot of a mirror: every answer may change.  A token record's moves
// only its bucket's epoch in kValidEpochsMeta (kTokenEpochBuckets
// little-endian 64-bit numbers, a bucket for each value of the last byte
// of the token's SHA-256, which ends its record key): a revocation or a
// refresh ends the cache's entries of one token in 256, not every one.
constexpr const char* kValidEpochMeta = "valid_epoch";
constexpr const char* kValidEpochsMeta = "valid_epochs";
constexpr size_t kTokenEpochBuckets = 256;
// the bucket of a token by its id (records::token_epoch_bucket by its key)
inline uint8_t token_epoch_bucket(const TokenId& id) {
  return id.hash.back();
}

// Where releases before 0.9 kept a generated handshake key, in clear: read
// only by `oauth2-admin handshake-key extract`, which moves it to a file.
constexpr const char* kHandshakeKeyMeta = "handshake_hs256_key";
// the kid of the handshake tokens that key signed
constexpr const char* kLegacyHandshakeKid = "handshake";

// The StoreError (503) of a local write to the store at path, a mirror.
[[noreturn]] void refuse_mirror_write(const std::string& path);

// Master-side preparation: mkdir -p, chown to uid/gid when they are >= 0,
// and a check of an existing environment that writes nothing (R86: the
// master never writes the store; the first worker creates what is
// missing).  Throws StoreError / std::runtime_error.
void prepare_store(const std::string& path, size_t mapsize, long uid, long gid);

// a realm's name: 1 to kMaxRealm letters, digits, ".", "-" or "_" (ASCII),
// so that it reads the same in nginx.conf, an HTTP header and a key
bool valid_realm(std::string_view realm);
// copies a built-in client: the work get_client does on a hit (R15)
void client_dummy();
bool valid_client_id(std::string_view id);
// text that Python's int() or JavaScript's Number() reads as a number
// (" 42", "+1", "１", "1_000", "0x2A", "1e3", "Infinity"): a client's
// tokens carry its client_id as their sub, which must not read as a
// user's id (R41)
bool reads_as_number(std::string_view text);
// Django's rule (UnicodeUsernameValidator's ^[\w.@+-]+\Z, without
// re.ASCII, and max_length): 1 to kMaxUsername code points of valid UTF-8,
// each a word character as Python's re has it (str.isalnum() or "_":
// "josé", "用户_1") or one of @.+-; no space, control or stray byte
constexpr size_t kMaxUsername = 150;                    // code points
constexpr size_t kMaxUsernameBytes = 4 * kMaxUsername;  // their UTF-8
bool valid_username(std::string_view name);
// A name Django's create_user would store as it is given: Django
// normalizes a new user's name (NFKC: "ﬁx" becomes "fix", a fullwidth
// "Ａ" an "A"), for which there are no tables here, so registration, the
// users API and `user add` refuse a name NFKC may change instead.  Judged
// code point by code point (NFKC_Quick_Check, unicode_nfkc_unsure):
// conservative, a mark NFKC would leave where it is refuses the name too.
// An import takes Django's stored names as they are (normalized there).
bool username_nfkc_stable(std::string_view name);
// Django's EmailValidator, ASCII only: a dot-atom user part, and a domain
// of LDH labels with a TLD of 2 to 63 characters, "localhost", or an
// address literal [..].  The rule of the users API and of seed 001's
// registration both, so that neither stores what the other refuses (a C1
// control, which `oauth2-admin user list` would print to a terminal).
bool valid_email(std::string_view e);
// the decimal user id of a token, 0 if none or malformed
uint64_t token_user_id(const Token& t);

}  // namespace oauth2
