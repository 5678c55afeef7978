#include "store.hpp"

#include <algorithm>
#include <cstring>

#include "codec.hpp"
#include "store_records.hpp"

namespace oauth2 {

using namespace records;

namespace {

constexpr unsigned kEnvFlags = MDB_NOTLS;
constexpr unsigned kMaxReaders = 1024;

}  // namespace

// ---------------------------------------------------------------- Store

Store::Store(const std::string& path, size_t mapsize, bool create) : path_(path) {
  mkdir_p(path);
  MDB_env* env = nullptr;
  check(mdb_env_create(&env), "mdb_env_create");
  env_.reset(env);  // closed by its holder if what follows throws
  check(mdb_env_set_maxdbs(env, 16), "mdb_env_set_maxdbs");
  check(mdb_env_set_maxreaders(env, kMaxReaders), "mdb_env_set_maxreaders");
  check(mdb_env_set_mapsize(env, mapsize), "mdb_env_set_mapsize");
  check(mdb_env_open(env, path.c_str(), kEnvFlags, 0660), "mdb_env_open");
  // An existing store opens with a read transaction only, so that
  // opening never waits for the writer lock (a reload must not stall
  // behind a long write); a new one gets its databases in a write.
  if (!open_databases(MDB_RDONLY) && create) open_databases(0);
}

bool Store::open_databases(unsigned flags) {
  TxnHandle txn(env_.get(), flags);
  const unsigned create = (flags & MDB_RDONLY) ? 0 : MDB_CREATE;
  struct {
    const char* name;
    MDB_dbi* dbi;
  } dbs[] = {{"meta", &meta_},
             {"clients", &clients_},
             {"tokens", &tokens_},
             {"client_tokens", &client_tokens_},
             {"users", &users_},
             {"usernames", &usernames_},
             {"user_tokens", &user_tokens_},
             {"family_tokens", &family_tokens_},
             {"emails", &emails_},
             {"account_locks", &account_locks_}};
  for (auto& db : dbs) {
    int rc = mdb_dbi_open(txn.get(), db.name, create, db.dbi);
    // a new store, or one from before a database was added
    if (rc == MDB_NOTFOUND && !create) return false;
    check(rc, "mdb_dbi_open");
  }
  MDB_val k = val("schema_version"), v;
  int rc = mdb_get(txn.get(), meta_, &k, &v);
  if (rc == MDB_NOTFOUND) {
    if (!create) return false;
    std::string ver = std::to_string(kSchemaVersion);
    MDB_val nv = val(ver);
    check(mdb_put(txn.get(), meta_, &k, &nv, 0), "schema");
  } else {
    check(rc, "schema");
    std::string ver(view(v));
    if (std::strtoul(ver.c_str(), nullptr, 10) > kSchemaVersion) {
      throw StoreError("store schema " + ver + " is newer than this build", MDB_VERSION_MISMATCH);
    }
  }
  txn.commit();
  return true;
}

Store::~Store() {
  if (cached_) mdb_txn_abort(cached_);  // before env_ closes
}

MDB_txn* Store::begin(unsigned flags) {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_.get(), nullptr, flags, &txn);
  if (rc == MDB_MAP_RESIZED) {
    // another process grew the map: adopt its size and retry once
    check(mdb_env_set_mapsize(env_.get(), 0), "mdb_env_set_mapsize");
    rc = mdb_txn_begin(env_.get(), nullptr, flags, &txn);
  }
  check(rc, flags & MDB_RDONLY ? "mdb_txn_begin(read)" : "mdb_txn_begin(write)");
  return txn;
}

Txn Store::read() {
  return Txn(this, begin(MDB_RDONLY), false);
}

Txn Store::read_cached() {
  if (!cache_reads_) return read();
  if (cached_) {
    MDB_txn* txn = cached_;
    cached_ = nullptr;
    int rc = mdb_txn_renew(txn);
    if (rc == MDB_SUCCESS) return Txn(this, txn, true);
    mdb_txn_abort(txn);
    if (rc != MDB_MAP_RESIZED) throw StoreError("mdb_txn_renew", rc);
  }
  return Txn(this, begin(MDB_RDONLY), true);
}

Txn Store::write() {
  return Txn(this, begin(0), false);
}

int Store::reader_check() {
  int dead = 0;
  check(mdb_reader_check(env_.get(), &dead), "mdb_reader_check");
  return dead;
}

// ------------------------------------------------------------------ Txn

Txn::Txn(Txn&& other) noexcept : store_(other.store_), txn_(other.txn_), cached_(other.cached_) {
  other.txn_ = nullptr;
}

Txn::~Txn() {
  if (!txn_) return;
  if (cached_ && !store_->cached_) {
    mdb_txn_reset(txn_);
    store_->cached_ = txn_;
  } else {
    mdb_txn_abort(txn_);
  }
}

void Txn::commit() {
  MDB_txn* txn = txn_;
  txn_ = nullptr;
  check(mdb_txn_commit(txn), "mdb_txn_commit");
}

std::optional<Client> Txn::get_client(std::string_view realm, std::string_view client_id) {
  if (!valid_client_id(client_id) || !valid_realm(realm)) return std::nullopt;
  std::string key = client_key(realm, client_id);
  auto v = get_value(txn_, store_->clients_, key, "mdb_get(clients)");
  if (!v) return std::nullopt;
  auto c = decode_client(realm, *v);
  if (!c) throw StoreError("corrupt client record", MDB_CORRUPTED);
  return c;
}

std::vector<Client> Txn::list_clients(std::string_view realm) {
  std::vector<Client> out;
  scan_prefix(txn_, store_->clients_, realm_prefix(realm), 0, "list clients",
              [&](std::string_view, std::string_view rec) {
                if (auto c = decode_client(realm, rec)) out.push_back(std::move(*c));
                return true;
              });
  return out;
}

std::optional<Token> Txn::get_token(std::string_view realm, const Digest& hash) {
  if (!valid_realm(realm)) return std::nullopt;
  std::string key = token_key(realm, hash);
  auto v = get_value(txn_, store_->tokens_, key, "mdb_get(tokens)");
  if (!v) return std::nullopt;
  auto t = decode_token(*v);
  if (!t) throw StoreError("corrupt token record", MDB_CORRUPTED);
  return t;
}

bool Txn::put_client(const Client& c, bool create) {
  if (!storable(c)) return false;
  std::string key = client_key(c.realm, c.client_id);
  MDB_val k = val(key), v;
  int rc = mdb_get(txn_, store_->clients_, &k, &v);
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) throw StoreError("mdb_get", rc);
  if (create == (rc == MDB_SUCCESS)) return false;
  std::string data = encode_client(c);
  MDB_val d = val(data);
  check(mdb_put(txn_, store_->clients_, &k, &d, 0), "mdb_put(clients)");
  return true;
}

bool Txn::delete_client(std::string_view realm, std::string_view client_id) {
  if (!valid_client_id(client_id)) return false;
  std::string key = client_key(realm, client_id);
  if (!del_key(txn_, store_->clients_, key, "mdb_del(clients)")) return false;

  // every token of the client, through the client_tokens index (each
  // token's user and family entries go with it)
  delete_indexed(realm, store_->client_tokens_, client_tokens_prefix(realm, client_id));
  return true;
}

bool Txn::put_token(std::string_view realm, const Digest& hash, const Token& t) {
  std::string key = token_key(realm, hash);
  std::string data = encode_token(t);
  MDB_val k = val(key), d = val(data);
  int rc = mdb_put(txn_, store_->tokens_, &k, &d, MDB_NOOVERWRITE);
  if (rc == MDB_KEYEXIST) return false;
  check(rc, "mdb_put(tokens)");
  MDB_val empty{0, nullptr};
  if (!t.client_id.empty()) {  // sessions belong to no client
    std::string ikey = client_tokens_prefix(realm, t.client_id);
    ikey.append(reinterpret_cast<const char*>(hash.data()), hash.size());
    MDB_val ik = val(ikey);
    check(mdb_put(txn_, store_->client_tokens_, &ik, &empty, 0), "mdb_put(index)");
  }
  if (uint64_t uid = token_user_id(t)) {
    std::string ukey = user_tokens_prefix(realm, uid);
    ukey.append(reinterpret_cast<const char*>(hash.data()), hash.size());
    MDB_val uk = val(ukey);
    check(mdb_put(txn_, store_->user_tokens_, &uk, &empty, 0), "mdb_put(index)");
  }
  if (t.has_family()) {
    std::string fkey = family_prefix(realm, t.family);
    fkey.append(reinterpret_cast<const char*>(hash.data()), hash.size());
    MDB_val fk = val(fkey);
    check(mdb_put(txn_, store_->family_tokens_, &fk, &empty, 0), "mdb_put(index)");
  }
  return true;
}

bool Txn::update_token(std::string_view realm, const Digest& hash, const Token& t) {
  auto old = get_token(realm, hash);
  if (!old || old->client_id != t.client_id || old->user != t.user || old->family != t.family) {
    return false;  // the indexes stay as they are: only these fields may change
  }
  std::string key = token_key(realm, hash);
  std::string data = encode_token(t);
  MDB_val k = val(key), d = val(data);
  check(mdb_put(txn_, store_->tokens_, &k, &d, 0), "mdb_put(tokens)");
  return true;
}

size_t Txn::revoke_family(std::string_view realm, const Family& family) {
  return delete_indexed(realm, store_->family_tokens_, family_prefix(realm, family));
}

size_t Txn::delete_indexed(std::string_view realm, MDB_dbi index, const std::string& prefix) {
  std::vector<Digest> doomed;
  scan_prefix(txn_, index, prefix, kDigestSize, "index",
              [&](std::string_view hash, std::string_view) {
                doomed.push_back(digest_of(hash));
                return true;
              });
  size_t n = 0;
  for (const Digest& d : doomed) {
    if (delete_token(realm, d)) {
      n++;
      continue;
    }
    // a dangling index entry: drop it
    std::string ikey = prefix;
    ikey.append(reinterpret_cast<const char*>(d.data()), d.size());
    del_key(txn_, index, ikey, "index");
  }
  return n;
}

bool Txn::delete_token(std::string_view realm, const Digest& hash) {
  auto t = get_token(realm, hash);
  if (!t) return false;
  std::string key = token_key(realm, hash);
  MDB_val k = val(key);
  check(mdb_del(txn_, store_->tokens_, &k, nullptr), "mdb_del(tokens)");
  if (valid_client_id(t->client_id)) {
    std::string ikey = client_tokens_prefix(realm, t->client_id);
    ikey.append(reinterpret_cast<const char*>(hash.data()), hash.size());
    del_key(txn_, store_->client_tokens_, ikey, "mdb_del(index)");
  }
  if (uint64_t uid = token_user_id(*t)) {
    std::string ukey = user_tokens_prefix(realm, uid);
    ukey.append(reinterpret_cast<const char*>(hash.data()), hash.size());
    del_key(txn_, store_->user_tokens_, ukey, "mdb_del(index)");
  }
  if (t->has_family()) {
    std::string fkey = family_prefix(realm, t->family);
    fkey.append(reinterpret_cast<const char*>(hash.data()), hash.size());
    del_key(txn_, store_->family_tokens_, fkey, "mdb_del(index)");
  }
  return true;
}

std::optional<bool> Txn::client_enabled(std::string_view realm, std::string_view client_id) {
  // the id comes from a token record, checked when the token was issued:
  // only the key's bounds matter here (the validation path)
  if (client_id.empty() || client_id.size() > kMaxClientId || !valid_realm(realm)) {
    return std::nullopt;
  }
  std::string key = client_key(realm, client_id);
  auto v = get_value(txn_, store_->clients_, key, "mdb_get(clients)");
  if (!v) return std::nullopt;
  std::string_view rec = *v;
  if (rec.size() >= 2 && rec[0] == kRecordV2) {
    return (static_cast<unsigned char>(rec[1]) & kFlagDisabled) == 0;
  }
  auto c = decode_client(realm, rec);  // a version 1 record
  if (!c) throw StoreError("corrupt client record", MDB_CORRUPTED);
  return !c->disabled;
}

std::optional<std::string> Txn::active_username(std::string_view realm, uint64_t id) {
  if (!valid_realm(realm) || id == 0) return std::nullopt;
  std::string key = user_key(realm, id);
  auto v = get_value(txn_, store_->users_, key, "mdb_get(users)");
  if (!v) return std::nullopt;
  std::string_view rec = *v;
  if (rec.size() >= 3 && rec[0] == kRecordV2) {
    size_t len = static_cast<unsigned char>(rec[2]);
    if ((static_cast<unsigned char>(rec[1]) & kFlagActive) == 0) return std::nullopt;
    if (rec.size() < 3 + len) throw StoreError("corrupt user record", MDB_CORRUPTED);
    return std::string(rec.substr(3, len));
  }
  auto u = decode_user(realm, rec);
  if (!u) throw StoreError("corrupt user record", MDB_CORRUPTED);
  if (!u->is_active) return std::nullopt;
  return u->username;
}

size_t Txn::purge_expired(std::string_view realm, int64_t now, size_t max) {
  if (max == 0) return 0;
  std::vector<Digest> doomed;
  scan_prefix(txn_, store_->tokens_, realm_prefix(realm), kDigestSize, "purge",
              [&](std::string_view hash, std::string_view rec) {
                auto t = decode_token(rec);
                if (t && now >= t->expires_at) doomed.push_back(digest_of(hash));
                return doomed.size() < max;
              });
  for (const Digest& hash : doomed) delete_token(realm, hash);
  return doomed.size();
}

std::optional<std::string> Txn::get_meta(std::string_view name) {
  auto v = get_value(txn_, store_->meta_, name, "mdb_get(meta)");
  if (!v) return std::nullopt;
  return std::string(*v);
}

void Txn::put_meta(std::string_view name, std::string_view value) {
  MDB_val k = val(name), v = val(value);
  check(mdb_put(txn_, store_->meta_, &k, &v, 0), "mdb_put(meta)");
}

bool Txn::delete_meta(std::string_view name) {
  if (!del_key(txn_, store_->meta_, name, "mdb_del(meta)")) return false;
  return true;
}

std::vector<std::pair<Digest, Token>> Txn::client_tokens_of_type(std::string_view realm,
                                                                 std::string_view client_id,
                                                                 TokenType type) {
  std::vector<std::pair<Digest, Token>> out;
  if (!valid_realm(realm) || !valid_client_id(client_id)) return out;
  std::vector<Digest> hashes;
  scan_prefix(txn_, store_->client_tokens_, client_tokens_prefix(realm, client_id), kDigestSize,
              "client tokens", [&](std::string_view hash, std::string_view) {
                hashes.push_back(digest_of(hash));
                return true;
              });
  for (const Digest& d : hashes) {
    auto t = get_token(realm, d);
    if (t && t->type == type) out.emplace_back(d, std::move(*t));
  }
  return out;
}

// ---------------------------------------------------------------- users

std::optional<User> Txn::get_user(std::string_view realm, uint64_t id) {
  if (!valid_realm(realm) || id == 0) return std::nullopt;
  std::string key = user_key(realm, id);
  auto v = get_value(txn_, store_->users_, key, "mdb_get(users)");
  if (!v) return std::nullopt;
  auto u = decode_user(realm, *v);
  if (!u) throw StoreError("corrupt user record", MDB_CORRUPTED);
  return u;
}

std::optional<User> Txn::get_user_by_username(std::string_view realm, std::string_view username) {
  if (!valid_realm(realm) || !valid_username(username)) return std::nullopt;
  std::string key = username_key(realm, username);
  auto v = get_value(txn_, store_->usernames_, key, "mdb_get(usernames)");
  if (!v) return std::nullopt;
  if (v->size() != 8) throw StoreError("corrupt username index", MDB_CORRUPTED);
  return get_user(realm, get_u64_be(v->data()));
}

std::vector<User> Txn::list_users(std::string_view realm, size_t offset, size_t limit,
                                  size_t* total) {
  std::vector<User> out;
  size_t n = 0;
  scan_prefix(txn_, store_->users_, realm_prefix(realm), 8, "list users",
              [&](std::string_view, std::string_view rec) {
                if (n >= offset && out.size() < limit) {
                  if (auto u = decode_user(realm, rec)) out.push_back(std::move(*u));
                }
                n++;
                return true;
              });
  if (total) *total = n;
  return out;
}

PutUser Txn::put_user(User& u, bool create) {
  if (!valid_realm(u.realm) || !valid_username(u.username) || !storable_text(u.email, 254) ||
      !storable_text(u.first_name, 150) || !storable_text(u.last_name, 150) ||
      !storable_text(u.password, 512)) {
    return PutUser::kInvalid;
  }
  std::optional<User> old;
  if (create) {
    // the realm's id sequence lives in meta; an explicit id (an import
    // keeping Django's pks) raises it, automatic ids skip taken ones
    std::string seq_key = "\x01user_seq" + realm_prefix(u.realm);
    MDB_val sk = val(seq_key), sv;
    uint64_t seq = 0;
    int rc = mdb_get(txn_, store_->meta_, &sk, &sv);
    if (rc == MDB_SUCCESS && sv.mv_size == 8) {
      seq = get_u64_be(static_cast<const char*>(sv.mv_data));
    } else if (rc != MDB_NOTFOUND && rc != MDB_SUCCESS) {
      throw StoreError("mdb_get(meta)", rc);
    }
    if (u.id == 0) {
      u.id = seq + 1;
      while (get_user(u.realm, u.id)) u.id++;
    } else if (get_user(u.realm, u.id)) {
      return PutUser::kInvalid;  // an explicit id that is taken
    }
    if (u.id > seq) {
      std::string nv;
      put_u64_be(nv, u.id);
      MDB_val nval = val(nv);
      check(mdb_put(txn_, store_->meta_, &sk, &nval, 0), "mdb_put(meta)");
    }
  } else {
    old = get_user(u.realm, u.id);
    if (!old) return PutUser::kMissing;
  }

  std::string ukey = username_key(u.realm, u.username);
  MDB_val nk = val(ukey), nv;
  int rc = mdb_get(txn_, store_->usernames_, &nk, &nv);
  if (rc == MDB_SUCCESS) {
    if (nv.mv_size != 8 || get_u64_be(static_cast<const char*>(nv.mv_data)) != u.id) {
      return PutUser::kUsernameTaken;
    }
  } else if (rc != MDB_NOTFOUND) {
    throw StoreError("mdb_get(usernames)", rc);
  }
  if (old && old->username != u.username) {
    std::string okey = username_key(u.realm, old->username);
    del_key(txn_, store_->usernames_, okey, "mdb_del");
  }
  std::string idv;
  put_u64_be(idv, u.id);
  MDB_val iv = val(idv);
  check(mdb_put(txn_, store_->usernames_, &nk, &iv, 0), "mdb_put(usernames)");

  if (old && !old->email.empty() && old->email != u.email) {
    std::string ekey = email_prefix(u.realm, old->email);
    put_u64_be(ekey, u.id);
    del_key(txn_, store_->emails_, ekey, "mdb_del");
  }
  if (!u.email.empty()) {
    std::string ekey = email_prefix(u.realm, u.email);
    put_u64_be(ekey, u.id);
    MDB_val ek = val(ekey), empty{0, nullptr};
    check(mdb_put(txn_, store_->emails_, &ek, &empty, 0), "mdb_put(emails)");
  }

  std::string key = user_key(u.realm, u.id);
  std::string data = encode_user(u);
  MDB_val k = val(key), d = val(data);
  check(mdb_put(txn_, store_->users_, &k, &d, 0), "mdb_put(users)");
  return PutUser::kOk;
}

std::vector<uint64_t> Txn::users_by_email(std::string_view realm, std::string_view email,
                                          size_t max) {
  std::vector<uint64_t> out;
  if (!valid_realm(realm) || email.empty() || email.size() > 254 || max == 0) return out;
  scan_prefix(txn_, store_->emails_, email_prefix(realm, email), 8, "emails",
              [&](std::string_view id, std::string_view) {
                out.push_back(get_u64_be(id.data()));
                return out.size() < max;
              });
  return out;
}

size_t Txn::delete_user_tokens(std::string_view realm, uint64_t id) {
  return delete_indexed(realm, store_->user_tokens_, user_tokens_prefix(realm, id));
}

std::optional<AccountLock> Txn::get_account_lock(std::string_view realm, uint64_t user) {
  std::string key = user_key(realm, user);
  auto v = get_value(txn_, store_->account_locks_, key, "mdb_get(account_locks)");
  if (!v) return std::nullopt;
  auto l = decode_lock(*v);
  if (!l) throw StoreError("corrupt account lock record", MDB_CORRUPTED);
  return l;
}

void Txn::put_account_lock(std::string_view realm, uint64_t user, const AccountLock& lock) {
  std::string key = user_key(realm, user);
  std::string rec = encode_lock(lock);
  MDB_val k = val(key), v = val(rec);
  check(mdb_put(txn_, store_->account_locks_, &k, &v, 0), "mdb_put(account_locks)");
}

bool Txn::delete_user(std::string_view realm, uint64_t id) {
  auto u = get_user(realm, id);
  if (!u) return false;
  delete_user_tokens(realm, id);
  {
    std::string lkey = user_key(realm, id);
    del_key(txn_, store_->account_locks_, lkey, "mdb_del");
  }
  std::string nkey = username_key(realm, u->username);
  del_key(txn_, store_->usernames_, nkey, "mdb_del");
  if (!u->email.empty()) {
    std::string ekey = email_prefix(realm, u->email);
    put_u64_be(ekey, id);
    del_key(txn_, store_->emails_, ekey, "mdb_del");
  }
  std::string key = user_key(realm, id);
  MDB_val k = val(key);
  check(mdb_del(txn_, store_->users_, &k, nullptr), "mdb_del(users)");
  return true;
}

}  // namespace oauth2
