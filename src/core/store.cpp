#include "store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "codec.hpp"
#include "json.hpp"

namespace oauth2 {

namespace {

constexpr unsigned kEnvFlags = MDB_NOTLS;
constexpr unsigned kMaxReaders = 1024;
constexpr size_t kTokenHeader = 1 + 1 + 2 + 8 + 8;
constexpr char kRecordV2 = 2;
constexpr unsigned char kFlagDisabled = 1;  // clients
constexpr unsigned char kFlagActive = 1;    // users
constexpr unsigned kTokenRedirectOmitted = 1;  // token record flags
constexpr unsigned kTokenJwt = 2;

void check(int rc, const char* what) {
  if (rc != MDB_SUCCESS) throw StoreError(what, rc);
}

MDB_val val(std::string_view s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}

std::string_view view(const MDB_val& v) {
  return std::string_view(static_cast<const char*>(v.mv_data), v.mv_size);
}

std::string realm_prefix(std::string_view realm) {
  if (!valid_realm(realm)) throw std::invalid_argument("invalid realm");
  std::string k;
  k.push_back(static_cast<char>(realm.size()));
  k.append(realm);
  return k;
}

// callers check the id (valid_client_id) first
std::string client_key(std::string_view realm, std::string_view id) {
  return realm_prefix(realm).append(id);
}

std::string token_key(std::string_view realm, const Digest& hash) {
  return realm_prefix(realm).append(reinterpret_cast<const char*>(hash.data()),
                                    hash.size());
}

// realm, then the client id length-prefixed, then the token hash
std::string client_tokens_prefix(std::string_view realm, std::string_view id) {
  if (!valid_client_id(id)) throw std::invalid_argument("invalid client_id");
  std::string k = realm_prefix(realm);
  k.push_back(static_cast<char>(id.size()));
  k.append(id);
  return k;
}

void put_u64_be(std::string& out, uint64_t v) {
  for (int i = 7; i >= 0; i--) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

uint64_t get_u64_be(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// realm, then the id big-endian: users list in id order
std::string user_key(std::string_view realm, uint64_t id) {
  std::string k = realm_prefix(realm);
  put_u64_be(k, id);
  return k;
}

std::string username_key(std::string_view realm, std::string_view name) {
  return realm_prefix(realm).append(name);
}

// realm, the lower-cased email length-prefixed, then the user's id
std::string email_prefix(std::string_view realm, std::string_view email) {
  std::string k = realm_prefix(realm);
  std::string lower(email.substr(0, 254));
  for (char& ch : lower) {
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch + 32);
  }
  k.push_back(static_cast<char>(lower.size()));
  k += lower;
  return k;
}

std::string user_tokens_prefix(std::string_view realm, uint64_t id) {
  return user_key(realm, id);
}

void put_u16(std::string& out, size_t v) {
  out.push_back(static_cast<char>(v & 0xFF));
  out.push_back(static_cast<char>((v >> 8) & 0xFF));
}

void put_i64(std::string& out, int64_t v) {
  uint64_t u = static_cast<uint64_t>(v);
  for (int i = 0; i < 8; i++) out.push_back(static_cast<char>((u >> (8 * i)) & 0xFF));
}

int64_t get_i64(const unsigned char* p) {
  uint64_t u = 0;
  for (int i = 7; i >= 0; i--) u = (u << 8) | p[i];
  return static_cast<int64_t>(u);
}

// Token records.  Version 1: type, times, client_id, scope, user.
// Version 2 adds the family, used_at and the code and rotation fields;
// version 3 the data field.  A record without data is written as version
// 2, so a store stays readable by the release before.
std::string encode_token(const Token& t) {
  std::string out;
  out.reserve(kTokenHeader + 64 + t.client_id.size() + t.scope.size() +
              t.user.size() + t.redirect_uri.size() + t.sealed.size() +
              t.data.size());
  out.push_back(t.data.empty() ? 2 : 3);  // record version
  out.push_back(static_cast<char>(t.type));
  put_u16(out, (t.redirect_uri_omitted ? kTokenRedirectOmitted : 0) |
                   (t.jwt ? kTokenJwt : 0));  // flags
  put_i64(out, t.issued_at);
  put_i64(out, t.expires_at);
  for (const std::string* s : {&t.client_id, &t.scope, &t.user}) {
    if (s->size() > 0xFFFF) throw std::invalid_argument("token field too long");
    put_u16(out, s->size());
    out.append(*s);
  }
  out.append(reinterpret_cast<const char*>(t.family.data()), t.family.size());
  put_i64(out, t.used_at);
  for (const std::string* s : {&t.redirect_uri, &t.code_challenge, &t.sealed}) {
    if (s->size() > 0xFFFF) throw std::invalid_argument("token field too long");
    put_u16(out, s->size());
    out.append(*s);
  }
  if (!t.data.empty()) {
    if (t.data.size() > 0xFFFF) throw std::invalid_argument("token field too long");
    put_u16(out, t.data.size());
    out.append(t.data);
  }
  return out;
}

std::optional<Token> decode_token(std::string_view v) {
  const auto* p = reinterpret_cast<const unsigned char*>(v.data());
  if (v.size() < kTokenHeader || p[0] < 1 || p[0] > 3) return std::nullopt;
  Token t;
  t.type = static_cast<TokenType>(p[1]);
  t.issued_at = get_i64(p + 4);
  t.expires_at = get_i64(p + 12);
  size_t off = kTokenHeader;
  auto read_str = [&](std::string* s) {
    if (off + 2 > v.size()) return false;
    size_t len = p[off] | (size_t(p[off + 1]) << 8);
    off += 2;
    if (off + len > v.size()) return false;
    s->assign(v.data() + off, len);
    off += len;
    return true;
  };
  for (std::string* s : {&t.client_id, &t.scope, &t.user}) {
    if (!read_str(s)) return std::nullopt;
  }
  if (p[0] == 1) return t;
  t.redirect_uri_omitted = (p[2] & kTokenRedirectOmitted) != 0;
  t.jwt = (p[2] & kTokenJwt) != 0;
  if (off + 16 + 8 > v.size()) return std::nullopt;
  std::memcpy(t.family.data(), p + off, 16);
  off += 16;
  t.used_at = get_i64(p + off);
  off += 8;
  for (std::string* s : {&t.redirect_uri, &t.code_challenge, &t.sealed}) {
    if (!read_str(s)) return std::nullopt;
  }
  if (p[0] == 3 && !read_str(&t.data)) return std::nullopt;
  return t;
}

std::string family_prefix(std::string_view realm, const Family& f) {
  return realm_prefix(realm).append(reinterpret_cast<const char*>(f.data()),
                                    f.size());
}

json_t* json_str(const std::string& s) {
  json_t* j = json_stringn(s.data(), s.size());
  if (!j) throw std::invalid_argument("a client field is not valid UTF-8");
  return j;
}

json_t* string_array(const std::vector<std::string>& v) {
  json_t* a = json_array();
  for (const auto& s : v) json_array_append_new(a, json_str(s));
  return a;
}

std::string encode_client(const Client& c) {
  Json j(json_object());
  json_object_set_new(j.get(), "v", json_integer(1));
  json_object_set_new(j.get(), "client_id", json_str(c.client_id));
  json_object_set_new(j.get(), "name", json_str(c.name));
  json_object_set_new(j.get(), "secret_hash", json_str(c.secret_hash));
  json_object_set_new(j.get(), "client_type",
                      json_string(c.confidential ? "confidential" : "public"));
  json_object_set_new(j.get(), "grant_types", string_array(c.grant_types));
  json_object_set_new(j.get(), "scope", json_str(c.scope));
  json_object_set_new(j.get(), "redirect_uris", string_array(c.redirect_uris));
  json_object_set_new(j.get(), "auth_method", json_str(c.auth_method));
  json_object_set_new(j.get(), "access_token_ttl", json_integer(c.access_token_ttl));
  if (!c.access_token_format.empty()) {
    json_object_set_new(j.get(), "access_token_format", json_str(c.access_token_format));
  }
  json_object_set_new(j.get(), "created_at", json_integer(c.created_at));
  json_object_set_new(j.get(), "disabled", json_boolean(c.disabled));
  if (c.imported_secret) json_object_set_new(j.get(), "imported_secret", json_true());
  if (c.first_party) json_object_set_new(j.get(), "first_party", json_true());
  // record version 2: a binary header the validation path reads without
  // decoding the JSON (version, flags), then the JSON
  std::string out;
  out.push_back(kRecordV2);
  out.push_back(static_cast<char>(c.disabled ? kFlagDisabled : 0));
  out += json_text(j.get(), JSON_COMPACT);
  return out;
}

// The JSON part of a client or user record (v1 records are JSON only).
std::optional<std::string_view> record_json(std::string_view v, bool user) {
  if (!v.empty() && v[0] == '{') return v;
  if (v.size() < 2 || v[0] != kRecordV2) return std::nullopt;
  size_t skip = 2;
  if (user) {
    if (v.size() < 3) return std::nullopt;
    skip = 3 + static_cast<unsigned char>(v[2]);
  }
  if (v.size() < skip) return std::nullopt;
  return v.substr(skip);
}

std::string get_string(json_t* o, const char* key) {
  json_t* v = json_object_get(o, key);
  if (!json_is_string(v)) return {};
  return std::string(json_string_value(v), json_string_length(v));
}

std::vector<std::string> get_strings(json_t* o, const char* key) {
  std::vector<std::string> out;
  json_t* a = json_object_get(o, key);
  size_t i;
  json_t* v;
  json_array_foreach(a, i, v) {
    if (json_is_string(v)) out.emplace_back(json_string_value(v), json_string_length(v));
  }
  return out;
}

// The JSON object of a client or user record, or null if it is not one.
Json load_record(std::string_view rec, bool user) {
  auto v = record_json(rec, user);
  if (!v) return nullptr;
  json_error_t err;
  Json j(json_loadb(v->data(), v->size(), JSON_REJECT_DUPLICATES, &err));
  if (!j || !json_is_object(j.get())) return nullptr;
  return j;
}

std::optional<Client> decode_client(std::string_view realm, std::string_view rec) {
  Json j = load_record(rec, false);
  if (!j) return std::nullopt;
  Client c;
  c.realm = std::string(realm);
  c.client_id = get_string(j.get(), "client_id");
  c.name = get_string(j.get(), "name");
  c.secret_hash = get_string(j.get(), "secret_hash");
  c.confidential = get_string(j.get(), "client_type") != "public";
  c.grant_types = get_strings(j.get(), "grant_types");
  c.scope = get_string(j.get(), "scope");
  c.redirect_uris = get_strings(j.get(), "redirect_uris");
  c.auth_method = get_string(j.get(), "auth_method");
  c.access_token_ttl = json_integer_value(json_object_get(j.get(), "access_token_ttl"));
  c.access_token_format = get_string(j.get(), "access_token_format");
  c.created_at = json_integer_value(json_object_get(j.get(), "created_at"));
  c.disabled = json_is_true(json_object_get(j.get(), "disabled"));
  c.imported_secret = json_is_true(json_object_get(j.get(), "imported_secret"));
  c.first_party = json_is_true(json_object_get(j.get(), "first_party"));
  return c;
}

std::string encode_user(const User& u) {
  Json j(json_object());
  json_object_set_new(j.get(), "v", json_integer(1));
  json_object_set_new(j.get(), "id", json_integer(static_cast<json_int_t>(u.id)));
  json_object_set_new(j.get(), "username", json_str(u.username));
  json_object_set_new(j.get(), "email", json_str(u.email));
  json_object_set_new(j.get(), "first_name", json_str(u.first_name));
  json_object_set_new(j.get(), "last_name", json_str(u.last_name));
  json_object_set_new(j.get(), "password", json_str(u.password));
  json_object_set_new(j.get(), "is_staff", json_boolean(u.is_staff));
  json_object_set_new(j.get(), "is_superuser", json_boolean(u.is_superuser));
  json_object_set_new(j.get(), "is_active", json_boolean(u.is_active));
  json_object_set_new(j.get(), "date_joined", json_integer(u.date_joined));
  json_object_set_new(j.get(), "last_login", json_integer(u.last_login));
  // version 2 header: version, flags, the username length-prefixed
  std::string out;
  out.push_back(kRecordV2);
  out.push_back(static_cast<char>(u.is_active ? kFlagActive : 0));
  out.push_back(static_cast<char>(u.username.size()));
  out += u.username;
  out += json_text(j.get(), JSON_COMPACT);
  return out;
}

std::optional<User> decode_user(std::string_view realm, std::string_view rec) {
  Json j = load_record(rec, true);
  if (!j) return std::nullopt;
  User u;
  u.realm = std::string(realm);
  u.id = static_cast<uint64_t>(json_integer_value(json_object_get(j.get(), "id")));
  u.username = get_string(j.get(), "username");
  u.email = get_string(j.get(), "email");
  u.first_name = get_string(j.get(), "first_name");
  u.last_name = get_string(j.get(), "last_name");
  u.password = get_string(j.get(), "password");
  u.is_staff = json_is_true(json_object_get(j.get(), "is_staff"));
  u.is_superuser = json_is_true(json_object_get(j.get(), "is_superuser"));
  u.is_active = json_is_true(json_object_get(j.get(), "is_active"));
  u.date_joined = json_integer_value(json_object_get(j.get(), "date_joined"));
  u.last_login = json_integer_value(json_object_get(j.get(), "last_login"));
  return u;
}

bool storable_text(const std::string& s, size_t max) {
  return s.size() <= max && valid_utf8(s) && !has_control(s);
}

void mkdir_p(const std::string& path) {
  std::string cur;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    cur = path.substr(0, pos);
    if (cur.empty()) continue;
    if (mkdir(cur.c_str(), 0750) != 0 && errno != EEXIST) {
      throw std::runtime_error("mkdir " + cur + ": " + strerror(errno));
    }
  }
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    throw std::runtime_error(path + " is not a directory");
  }
}

}  // namespace

void decode_client_dummy() {
  // the size of a typical record: an unknown client costs what a known
  // one does (R15)
  static const char kDummy[] =
      "{\"v\":1,\"client_id\":\"0000000000000000000000000000000000000000\","
      "\"name\":\"dummy\",\"secret_hash\":\"sha256$000000000000000000000000"
      "00000000$000000000000000000000000000000000000000000000000000000000000"
      "0000\",\"client_type\":\"confidential\",\"grant_types\":"
      "[\"client_credentials\"],\"scope\":\"\",\"redirect_uris\":[],"
      "\"auth_method\":\"\",\"access_token_ttl\":0,\"created_at\":0,"
      "\"disabled\":false}";
  (void)decode_client(kDefaultRealm, std::string_view(kDummy, sizeof(kDummy) - 1));
}

bool valid_realm(std::string_view realm) {
  return !realm.empty() && realm.size() <= kMaxRealm && !has_control(realm);
}

bool valid_client_id(std::string_view id) {
  return !id.empty() && id.size() <= kMaxClientId && valid_utf8(id) &&
         !has_control(id);
}

bool valid_username(std::string_view name) {
  if (name.empty() || name.size() > 150) return false;
  for (char ch : name) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '@' || c == '.' || c == '+' ||
          c == '-' || c == '_')) {
      return false;
    }
  }
  return true;
}

uint64_t token_user_id(const Token& t) {
  if (t.user.empty() || t.user.size() > 19) return 0;
  uint64_t id = 0;
  for (char c : t.user) {
    if (c < '0' || c > '9') return 0;
    id = id * 10 + static_cast<uint64_t>(c - '0');
  }
  return id;
}

namespace {

// Every string of a client record is stored as JSON text: valid UTF-8 and
// no NUL, or it would not come back byte for byte.
bool storable(const Client& c) {
  auto ok = [](const std::string& s) {
    return valid_utf8(s) && s.find('\0') == std::string::npos;
  };
  if (!valid_client_id(c.client_id) || !valid_realm(c.realm)) return false;
  for (const std::string* s : {&c.name, &c.secret_hash, &c.scope, &c.auth_method}) {
    if (!ok(*s)) return false;
  }
  for (const auto& v : {&c.grant_types, &c.redirect_uris}) {
    for (const auto& s : *v) {
      if (!ok(s)) return false;
    }
  }
  return true;
}

}  // namespace

bool Token::has_family() const {
  for (unsigned char b : family) {
    if (b) return true;
  }
  return false;
}

bool Client::allows_grant(std::string_view grant) const {
  return std::find(grant_types.begin(), grant_types.end(), grant) !=
         grant_types.end();
}

// ---------------------------------------------------------------- Store

Store::Store(const std::string& path, size_t mapsize, bool create)
    : path_(path) {
  mkdir_p(path);
  check(mdb_env_create(&env_), "mdb_env_create");
  try {
    check(mdb_env_set_maxdbs(env_, 16), "mdb_env_set_maxdbs");
    check(mdb_env_set_maxreaders(env_, kMaxReaders), "mdb_env_set_maxreaders");
    check(mdb_env_set_mapsize(env_, mapsize), "mdb_env_set_mapsize");
    check(mdb_env_open(env_, path.c_str(), kEnvFlags, 0660), "mdb_env_open");
    // An existing store opens with a read transaction only, so that
    // opening never waits for the writer lock (a reload must not stall
    // behind a long write); a new one gets its databases in a write.
    if (!open_databases(MDB_RDONLY) && create) open_databases(0);
  } catch (...) {
    mdb_env_close(env_);
    throw;
  }
}

bool Store::open_databases(unsigned flags) {
  MDB_txn* txn = nullptr;
  check(mdb_txn_begin(env_, nullptr, flags, &txn), "mdb_txn_begin");
  const unsigned create = (flags & MDB_RDONLY) ? 0 : MDB_CREATE;
  struct {
    const char* name;
    MDB_dbi* dbi;
  } dbs[] = {{"meta", &meta_},         {"clients", &clients_},
             {"tokens", &tokens_},     {"client_tokens", &client_tokens_},
             {"users", &users_},       {"usernames", &usernames_},
             {"user_tokens", &user_tokens_},
             {"family_tokens", &family_tokens_},
             {"emails", &emails_},
             {"account_locks", &account_locks_}};
  int rc = MDB_SUCCESS;
  for (auto& db : dbs) {
    rc = mdb_dbi_open(txn, db.name, create, db.dbi);
    if (rc != MDB_SUCCESS) break;
  }
  if (rc == MDB_NOTFOUND && !create) {
    mdb_txn_abort(txn);
    return false;  // a new store, or one from before a database was added
  }
  if (rc != MDB_SUCCESS) {
    mdb_txn_abort(txn);
    throw StoreError("mdb_dbi_open", rc);
  }
  MDB_val k = val("schema_version"), v;
  rc = mdb_get(txn, meta_, &k, &v);
  if (rc == MDB_NOTFOUND && create) {
    std::string ver = std::to_string(kSchemaVersion);
    MDB_val nv = val(ver);
    rc = mdb_put(txn, meta_, &k, &nv, 0);
  } else if (rc == MDB_NOTFOUND) {
    mdb_txn_abort(txn);
    return false;
  } else if (rc == MDB_SUCCESS) {
    std::string ver(view(v));
    if (std::strtoul(ver.c_str(), nullptr, 10) > kSchemaVersion) {
      mdb_txn_abort(txn);
      throw StoreError("store schema " + ver + " is newer than this build",
                       MDB_VERSION_MISMATCH);
    }
  }
  if (rc != MDB_SUCCESS) {
    mdb_txn_abort(txn);
    throw StoreError("schema", rc);
  }
  check(mdb_txn_commit(txn), "mdb_txn_commit");
  return true;
}

Store::~Store() {
  if (cached_) mdb_txn_abort(cached_);
  mdb_env_close(env_);
}

MDB_txn* Store::begin(unsigned flags) {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, flags, &txn);
  if (rc == MDB_MAP_RESIZED) {
    // another process grew the map: adopt its size and retry once
    check(mdb_env_set_mapsize(env_, 0), "mdb_env_set_mapsize");
    rc = mdb_txn_begin(env_, nullptr, flags, &txn);
  }
  check(rc, flags & MDB_RDONLY ? "mdb_txn_begin(read)" : "mdb_txn_begin(write)");
  return txn;
}

Txn Store::read() { return Txn(this, begin(MDB_RDONLY), false); }

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

Txn Store::write() { return Txn(this, begin(0), false); }

int Store::reader_check() {
  int dead = 0;
  check(mdb_reader_check(env_, &dead), "mdb_reader_check");
  return dead;
}

// ------------------------------------------------------------------ Txn

Txn::Txn(Txn&& other) noexcept
    : store_(other.store_), txn_(other.txn_), cached_(other.cached_) {
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

std::optional<Client> Txn::get_client(std::string_view realm,
                                      std::string_view client_id) {
  if (!valid_client_id(client_id) || !valid_realm(realm)) return std::nullopt;
  std::string key = client_key(realm, client_id);
  MDB_val k = val(key), v;
  int rc = mdb_get(txn_, store_->clients_, &k, &v);
  if (rc == MDB_NOTFOUND) return std::nullopt;
  check(rc, "mdb_get(clients)");
  auto c = decode_client(realm, view(v));
  if (!c) throw StoreError("corrupt client record", MDB_CORRUPTED);
  return c;
}

std::vector<Client> Txn::list_clients(std::string_view realm) {
  std::vector<Client> out;
  std::string prefix = realm_prefix(realm);
  MDB_cursor* cur = nullptr;
  check(mdb_cursor_open(txn_, store_->clients_, &cur), "mdb_cursor_open");
  MDB_val k = val(prefix), v;
  int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
  while (rc == MDB_SUCCESS) {
    std::string_view key = view(k);
    if (key.substr(0, prefix.size()) != prefix) break;
    auto c = decode_client(realm, view(v));
    if (c) out.push_back(std::move(*c));
    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(cur);
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) throw StoreError("list clients", rc);
  return out;
}

std::optional<Token> Txn::get_token(std::string_view realm, const Digest& hash) {
  if (!valid_realm(realm)) return std::nullopt;
  std::string key = token_key(realm, hash);
  MDB_val k = val(key), v;
  int rc = mdb_get(txn_, store_->tokens_, &k, &v);
  if (rc == MDB_NOTFOUND) return std::nullopt;
  check(rc, "mdb_get(tokens)");
  auto t = decode_token(view(v));
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
  MDB_val k = val(key);
  int rc = mdb_del(txn_, store_->clients_, &k, nullptr);
  if (rc == MDB_NOTFOUND) return false;
  check(rc, "mdb_del(clients)");

  // every token of the client, through the client_tokens index (each
  // token's user and family entries go with it)
  delete_indexed(realm, store_->client_tokens_,
                 client_tokens_prefix(realm, client_id));
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
  if (!old || old->client_id != t.client_id || old->user != t.user ||
      old->family != t.family) {
    return false;  // the indexes stay as they are: only these fields may change
  }
  std::string key = token_key(realm, hash);
  std::string data = encode_token(t);
  MDB_val k = val(key), d = val(data);
  check(mdb_put(txn_, store_->tokens_, &k, &d, 0), "mdb_put(tokens)");
  return true;
}

size_t Txn::revoke_family(std::string_view realm, const Family& family) {
  return delete_indexed(realm, store_->family_tokens_,
                        family_prefix(realm, family));
}

size_t Txn::delete_indexed(std::string_view realm, MDB_dbi index,
                           const std::string& prefix) {
  std::vector<Digest> doomed;
  MDB_cursor* cur = nullptr;
  check(mdb_cursor_open(txn_, index, &cur), "mdb_cursor_open");
  MDB_val k = val(prefix), v;
  int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
  while (rc == MDB_SUCCESS) {
    std::string_view key = view(k);
    if (key.size() != prefix.size() + 32 || key.substr(0, prefix.size()) != prefix) {
      break;
    }
    Digest d;
    std::memcpy(d.data(), key.data() + prefix.size(), 32);
    doomed.push_back(d);
    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(cur);
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) throw StoreError("index", rc);
  size_t n = 0;
  for (const Digest& d : doomed) {
    if (delete_token(realm, d)) {
      n++;
      continue;
    }
    // a dangling index entry: drop it
    std::string ikey = prefix;
    ikey.append(reinterpret_cast<const char*>(d.data()), d.size());
    MDB_val ik = val(ikey);
    int drc = mdb_del(txn_, index, &ik, nullptr);
    if (drc != MDB_SUCCESS && drc != MDB_NOTFOUND) throw StoreError("index", drc);
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
    MDB_val ik = val(ikey);
    int rc = mdb_del(txn_, store_->client_tokens_, &ik, nullptr);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) throw StoreError("mdb_del(index)", rc);
  }
  if (uint64_t uid = token_user_id(*t)) {
    std::string ukey = user_tokens_prefix(realm, uid);
    ukey.append(reinterpret_cast<const char*>(hash.data()), hash.size());
    MDB_val uk = val(ukey);
    int rc = mdb_del(txn_, store_->user_tokens_, &uk, nullptr);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) throw StoreError("mdb_del(index)", rc);
  }
  if (t->has_family()) {
    std::string fkey = family_prefix(realm, t->family);
    fkey.append(reinterpret_cast<const char*>(hash.data()), hash.size());
    MDB_val fk = val(fkey);
    int rc = mdb_del(txn_, store_->family_tokens_, &fk, nullptr);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) throw StoreError("mdb_del(index)", rc);
  }
  return true;
}

std::optional<bool> Txn::client_enabled(std::string_view realm,
                                        std::string_view client_id) {
  // the id comes from a token record, checked when the token was issued:
  // only the key's bounds matter here (the validation path)
  if (client_id.empty() || client_id.size() > kMaxClientId ||
      !valid_realm(realm)) {
    return std::nullopt;
  }
  std::string key = client_key(realm, client_id);
  MDB_val k = val(key), v;
  int rc = mdb_get(txn_, store_->clients_, &k, &v);
  if (rc == MDB_NOTFOUND) return std::nullopt;
  check(rc, "mdb_get(clients)");
  std::string_view rec = view(v);
  if (rec.size() >= 2 && rec[0] == kRecordV2) {
    return (static_cast<unsigned char>(rec[1]) & kFlagDisabled) == 0;
  }
  auto c = decode_client(realm, rec);  // a version 1 record
  if (!c) throw StoreError("corrupt client record", MDB_CORRUPTED);
  return !c->disabled;
}

std::optional<std::string> Txn::active_username(std::string_view realm,
                                                uint64_t id) {
  if (!valid_realm(realm) || id == 0) return std::nullopt;
  std::string key = user_key(realm, id);
  MDB_val k = val(key), v;
  int rc = mdb_get(txn_, store_->users_, &k, &v);
  if (rc == MDB_NOTFOUND) return std::nullopt;
  check(rc, "mdb_get(users)");
  std::string_view rec = view(v);
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
  std::string prefix = realm_prefix(realm);
  std::vector<std::pair<Digest, std::string>> doomed;  // hash, client_id
  MDB_cursor* cur = nullptr;
  check(mdb_cursor_open(txn_, store_->tokens_, &cur), "mdb_cursor_open");
  MDB_val k = val(prefix), v;
  int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
  while (rc == MDB_SUCCESS && doomed.size() < max) {
    std::string_view key = view(k);
    if (key.size() != prefix.size() + 32 ||
        key.substr(0, prefix.size()) != prefix) {
      break;
    }
    auto t = decode_token(view(v));
    if (t && now >= t->expires_at) {
      Digest d;
      std::memcpy(d.data(), key.data() + prefix.size(), 32);
      doomed.emplace_back(d, std::move(t->client_id));
    }
    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(cur);
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) throw StoreError("purge", rc);
  for (const auto& [hash, client] : doomed) delete_token(realm, hash);
  return doomed.size();
}

std::optional<std::string> Txn::get_meta(std::string_view name) {
  MDB_val k = val(name), v;
  int rc = mdb_get(txn_, store_->meta_, &k, &v);
  if (rc == MDB_NOTFOUND) return std::nullopt;
  check(rc, "mdb_get(meta)");
  return std::string(view(v));
}

void Txn::put_meta(std::string_view name, std::string_view value) {
  MDB_val k = val(name), v = val(value);
  check(mdb_put(txn_, store_->meta_, &k, &v, 0), "mdb_put(meta)");
}

bool Txn::delete_meta(std::string_view name) {
  MDB_val k = val(name);
  int rc = mdb_del(txn_, store_->meta_, &k, nullptr);
  if (rc == MDB_NOTFOUND) return false;
  check(rc, "mdb_del(meta)");
  return true;
}

std::vector<std::pair<Digest, Token>> Txn::client_tokens_of_type(
    std::string_view realm, std::string_view client_id, TokenType type) {
  std::vector<std::pair<Digest, Token>> out;
  if (!valid_realm(realm) || !valid_client_id(client_id)) return out;
  const std::string prefix = client_tokens_prefix(realm, client_id);
  MDB_cursor* cur = nullptr;
  check(mdb_cursor_open(txn_, store_->client_tokens_, &cur), "mdb_cursor_open");
  MDB_val k = val(prefix), v;
  int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
  std::vector<Digest> hashes;
  while (rc == MDB_SUCCESS) {
    std::string_view key = view(k);
    if (key.size() != prefix.size() + 32 ||
        key.substr(0, prefix.size()) != prefix) {
      break;
    }
    Digest d;
    std::memcpy(d.data(), key.data() + prefix.size(), 32);
    hashes.push_back(d);
    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(cur);
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) throw StoreError("client tokens", rc);
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
  MDB_val k = val(key), v;
  int rc = mdb_get(txn_, store_->users_, &k, &v);
  if (rc == MDB_NOTFOUND) return std::nullopt;
  check(rc, "mdb_get(users)");
  auto u = decode_user(realm, view(v));
  if (!u) throw StoreError("corrupt user record", MDB_CORRUPTED);
  return u;
}

std::optional<User> Txn::get_user_by_username(std::string_view realm,
                                              std::string_view username) {
  if (!valid_realm(realm) || !valid_username(username)) return std::nullopt;
  std::string key = username_key(realm, username);
  MDB_val k = val(key), v;
  int rc = mdb_get(txn_, store_->usernames_, &k, &v);
  if (rc == MDB_NOTFOUND) return std::nullopt;
  check(rc, "mdb_get(usernames)");
  if (v.mv_size != 8) throw StoreError("corrupt username index", MDB_CORRUPTED);
  return get_user(realm, get_u64_be(static_cast<const char*>(v.mv_data)));
}

std::vector<User> Txn::list_users(std::string_view realm, size_t offset,
                                  size_t limit, size_t* total) {
  std::vector<User> out;
  size_t n = 0;
  std::string prefix = realm_prefix(realm);
  MDB_cursor* cur = nullptr;
  check(mdb_cursor_open(txn_, store_->users_, &cur), "mdb_cursor_open");
  MDB_val k = val(prefix), v;
  int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
  while (rc == MDB_SUCCESS) {
    std::string_view key = view(k);
    if (key.size() != prefix.size() + 8 || key.substr(0, prefix.size()) != prefix) {
      break;
    }
    if (n >= offset && out.size() < limit) {
      auto u = decode_user(realm, view(v));
      if (u) out.push_back(std::move(*u));
    }
    n++;
    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(cur);
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) throw StoreError("list users", rc);
  if (total) *total = n;
  return out;
}

PutUser Txn::put_user(User& u, bool create) {
  if (!valid_realm(u.realm) || !valid_username(u.username) ||
      !storable_text(u.email, 254) || !storable_text(u.first_name, 150) ||
      !storable_text(u.last_name, 150) || !storable_text(u.password, 512)) {
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
    MDB_val ok = val(okey);
    rc = mdb_del(txn_, store_->usernames_, &ok, nullptr);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) throw StoreError("mdb_del", rc);
  }
  std::string idv;
  put_u64_be(idv, u.id);
  MDB_val iv = val(idv);
  check(mdb_put(txn_, store_->usernames_, &nk, &iv, 0), "mdb_put(usernames)");

  if (old && !old->email.empty() && old->email != u.email) {
    std::string ekey = email_prefix(u.realm, old->email);
    put_u64_be(ekey, u.id);
    MDB_val ek = val(ekey);
    rc = mdb_del(txn_, store_->emails_, &ek, nullptr);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) throw StoreError("mdb_del", rc);
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

std::vector<uint64_t> Txn::users_by_email(std::string_view realm,
                                          std::string_view email, size_t max) {
  std::vector<uint64_t> out;
  if (!valid_realm(realm) || email.empty() || email.size() > 254) return out;
  std::string prefix = email_prefix(realm, email);
  MDB_cursor* cur = nullptr;
  check(mdb_cursor_open(txn_, store_->emails_, &cur), "mdb_cursor_open");
  MDB_val k = val(prefix), v;
  int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
  while (rc == MDB_SUCCESS && out.size() < max) {
    std::string_view key = view(k);
    if (key.size() != prefix.size() + 8 || key.substr(0, prefix.size()) != prefix) {
      break;
    }
    out.push_back(get_u64_be(key.data() + prefix.size()));
    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(cur);
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) throw StoreError("emails", rc);
  return out;
}

size_t Txn::delete_user_tokens(std::string_view realm, uint64_t id) {
  return delete_indexed(realm, store_->user_tokens_,
                        user_tokens_prefix(realm, id));
}

namespace {

// Account lock records: version, window start, failures, locked until,
// then the trusted origins (digest, last sign-in).
constexpr char kLockV1 = 1;
constexpr size_t kLockHeader = 1 + 8 + 4 + 8;
constexpr size_t kLockOrigin = 32 + 8;

std::string encode_lock(const AccountLock& l) {
  std::string out;
  out.push_back(kLockV1);
  put_i64(out, l.window_start);
  for (int i = 0; i < 4; i++) out.push_back(static_cast<char>((l.failures >> (8 * i)) & 0xFF));
  put_i64(out, l.locked_until);
  size_t n = std::min(l.trusted.size(), AccountLock::kMaxTrusted);
  for (size_t i = 0; i < n; i++) {
    out.append(reinterpret_cast<const char*>(l.trusted[i].id.data()), 32);
    put_i64(out, l.trusted[i].last);
  }
  return out;
}

std::optional<AccountLock> decode_lock(std::string_view v) {
  const auto* p = reinterpret_cast<const unsigned char*>(v.data());
  if (v.size() < kLockHeader || p[0] != kLockV1 ||
      (v.size() - kLockHeader) % kLockOrigin != 0) {
    return std::nullopt;
  }
  AccountLock l;
  l.window_start = get_i64(p + 1);
  l.failures = static_cast<uint32_t>(p[9] | (p[10] << 8) | (p[11] << 16) |
                                     (uint32_t(p[12]) << 24));
  l.locked_until = get_i64(p + 13);
  for (size_t off = kLockHeader; off < v.size(); off += kLockOrigin) {
    AccountLock::Origin o;
    std::memcpy(o.id.data(), p + off, 32);
    o.last = get_i64(p + off + 32);
    l.trusted.push_back(o);
  }
  return l;
}

}  // namespace

std::optional<AccountLock> Txn::get_account_lock(std::string_view realm,
                                                 uint64_t user) {
  std::string key = user_key(realm, user);
  MDB_val k = val(key), v;
  int rc = mdb_get(txn_, store_->account_locks_, &k, &v);
  if (rc == MDB_NOTFOUND) return std::nullopt;
  check(rc, "mdb_get(account_locks)");
  auto l = decode_lock(view(v));
  if (!l) throw StoreError("corrupt account lock record", MDB_CORRUPTED);
  return l;
}

void Txn::put_account_lock(std::string_view realm, uint64_t user,
                           const AccountLock& lock) {
  std::string key = user_key(realm, user);
  std::string rec = encode_lock(lock);
  MDB_val k = val(key), v = val(rec);
  check(mdb_put(txn_, store_->account_locks_, &k, &v, 0),
        "mdb_put(account_locks)");
}

bool Txn::delete_user(std::string_view realm, uint64_t id) {
  auto u = get_user(realm, id);
  if (!u) return false;
  delete_user_tokens(realm, id);
  {
    std::string lkey = user_key(realm, id);
    MDB_val lk = val(lkey);
    int lrc = mdb_del(txn_, store_->account_locks_, &lk, nullptr);
    if (lrc != MDB_SUCCESS && lrc != MDB_NOTFOUND) throw StoreError("mdb_del", lrc);
  }
  std::string nkey = username_key(realm, u->username);
  MDB_val nk = val(nkey);
  int rc = mdb_del(txn_, store_->usernames_, &nk, nullptr);
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) throw StoreError("mdb_del", rc);
  if (!u->email.empty()) {
    std::string ekey = email_prefix(realm, u->email);
    put_u64_be(ekey, id);
    MDB_val ek = val(ekey);
    rc = mdb_del(txn_, store_->emails_, &ek, nullptr);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) throw StoreError("mdb_del", rc);
  }
  std::string key = user_key(realm, id);
  MDB_val k = val(key);
  check(mdb_del(txn_, store_->users_, &k, nullptr), "mdb_del(users)");
  return true;
}

// ------------------------------------------------------------- prepare

void prepare_store(const std::string& path, size_t mapsize, long uid, long gid) {
  mkdir_p(path);
  struct stat data_st;
  const bool exists = lstat((path + "/data.mdb").c_str(), &data_st) == 0;
  if (uid < 0 && gid < 0) {
    if (exists) {
      Store check(path, mapsize, false);
    }
    return;
  }

  // The directory and any files root left (oauth2-admin run before nginx)
  // go to the workers' user.  Never follow a symlink: the directory belongs
  // to that user, who could plant one pointing anywhere.
  for (const char* name : {"", "data.mdb", "lock.mdb"}) {
    std::string p = *name ? path + "/" + name : path;
    struct stat st;
    if (lstat(p.c_str(), &st) != 0) continue;
    if (fchownat(AT_FDCWD, p.c_str(), static_cast<uid_t>(uid),
                 static_cast<gid_t>(gid), AT_SYMLINK_NOFOLLOW) != 0) {
      throw std::runtime_error("chown " + p + ": " + strerror(errno));
    }
  }

  // Create or validate the environment as that user, in a child process,
  // so that root never opens files inside a directory another user owns.
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe: " + std::string(strerror(errno)));
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    throw std::runtime_error("fork: " + std::string(strerror(errno)));
  }
  if (pid == 0) {
    close(fds[0]);
    std::string msg;
    if (setgid(static_cast<gid_t>(gid)) != 0 || setuid(static_cast<uid_t>(uid)) != 0) {
      msg = std::string("setuid: ") + strerror(errno);
    } else {
      try {
        if (exists) {
      Store check(path, mapsize, false);
    }
      } catch (const std::exception& e) {
        msg = e.what();
      }
    }
    if (!msg.empty()) {
      ssize_t n = write(fds[1], msg.data(), msg.size());
      (void)n;
    }
    _exit(msg.empty() ? 0 : 1);
  }
  close(fds[1]);
  char buf[512];
  std::string msg;
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) msg.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  // never hang the master: a writer that holds the lock for long (a
  // stopped oauth2-admin) only delays the check, the workers retry anyway
  int status = 0;
  for (int waited_ms = 0;; waited_ms += 10) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) break;
    if (waited_ms >= 5000) {
      kill(pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      throw std::runtime_error("store busy (its writer lock is held): not "
                               "checked, workers will open it");
    }
    usleep(10000);
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error(msg.empty() ? "store check failed" : msg);
  }
}

}  // namespace oauth2
