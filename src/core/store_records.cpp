// The store's records and keys: see store_records.hpp.

#include "store_records.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <stdexcept>

#include "codec.hpp"
#include "crypto.hpp"
#include "json.hpp"
#include "unicode.hpp"

namespace oauth2 {
namespace records {

namespace {

constexpr size_t kTokenHeader = 1 + 1 + 2 + 8 + 8;
constexpr char kTokenV4 = 4;
constexpr unsigned kTokenRedirectOmitted = 1;  // token record flags
constexpr unsigned kTokenJwt = 2;
constexpr unsigned kTokenFamily = 4;  // version 4: which fields follow
constexpr unsigned kTokenUsed = 8;
constexpr unsigned kTokenCode = 16;
constexpr unsigned kTokenSealed = 32;
constexpr unsigned kTokenData = 64;
constexpr unsigned kTokenJkt = 256;  // DPoP: the key's thumbprint
// RFC 8707's resources; fields are read in flag order
constexpr unsigned kTokenAudience = 512;

// Account lock records: version, window start, failures, locked until,
// then the trusted origins (digest, last sign-in).
constexpr char kLockV1 = 1;
constexpr size_t kLockHeader = 1 + 8 + 4 + 8;
constexpr size_t kLockOrigin = 32 + 8;

void put_u16(std::string& out, size_t v) {
  out.push_back(static_cast<char>(v & 0xFF));
  out.push_back(static_cast<char>((v >> 8) & 0xFF));
}

void put_str(std::string& out, const std::string& s) {
  if (s.size() > 0xFFFF) throw std::invalid_argument("token field too long");
  put_u16(out, s.size());
  out.append(s);
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

json_t* json_str(const std::string& s) {
  json_t* j = json_stringn(s.data(), s.size());
  if (!j) throw std::invalid_argument("a client field is not valid UTF-8");
  return j;
}

json_t* string_array(const std::vector<std::string>& v) {
  Json a(json_array());  // freed if an item throws
  for (const auto& s : v) json_array_append_new(a.get(), json_str(s));
  return a.release();
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

}  // namespace

std::string realm_prefix(std::string_view realm) {
  return std::string(StackKey(realm).view());
}

StackKey::StackKey(std::string_view realm) {
  if (!valid_realm(realm)) throw std::invalid_argument("invalid realm");
  buf_[0] = static_cast<char>(realm.size());
  size_ = 1;
  append(realm);
}

StackKey& StackKey::append(std::string_view bytes) {
  if (bytes.size() > buf_.size() - size_) throw std::length_error("key too long");
  std::memcpy(buf_.data() + size_, bytes.data(), bytes.size());
  size_ += bytes.size();
  return *this;
}

// callers check the id (valid_client_id) first
StackKey client_stack_key(std::string_view realm, std::string_view id) {
  StackKey k(realm);
  k.append(id);
  return k;
}

std::string client_key(std::string_view realm, std::string_view id) {
  return std::string(client_stack_key(realm, id).view());
}

StackKey token_stack_key(std::string_view realm, const TokenId& id) {
  StackKey k(realm);
  if (!id.legacy) k.append(id.order.data(), id.order.size());
  k.append(id.hash.data(), id.hash.size());
  return k;
}

std::string token_id_bytes(const TokenId& id) {
  std::string out;
  if (!id.legacy) out.append(reinterpret_cast<const char*>(id.order.data()), id.order.size());
  out.append(reinterpret_cast<const char*>(id.hash.data()), id.hash.size());
  return out;
}

std::optional<TokenId> parse_token_id(std::string_view bytes) {
  TokenId id;
  if (bytes.size() == id.hash.size()) {
    id.legacy = true;
  } else if (bytes.size() == id.order.size() + id.hash.size()) {
    std::memcpy(id.order.data(), bytes.data(), id.order.size());
    bytes.remove_prefix(id.order.size());
  } else {
    return std::nullopt;
  }
  std::memcpy(id.hash.data(), bytes.data(), id.hash.size());
  return id;
}

std::string token_key(std::string_view realm, const TokenId& id) {
  return std::string(token_stack_key(realm, id).view());
}

// the realm length-prefixed, then the TokenId
bool split_token_key(std::string_view key, std::string_view* realm, TokenId* id) {
  if (key.empty()) return false;
  size_t len = static_cast<unsigned char>(key[0]);
  if (key.size() < 1 + len) return false;
  auto parsed = parse_token_id(key.substr(1 + len));
  if (!parsed) return false;
  *realm = key.substr(1, len);
  *id = *parsed;
  return true;
}

// realm, then the client id length-prefixed, then the token hash
std::string client_tokens_prefix(std::string_view realm, std::string_view id) {
  if (!valid_client_id(id)) throw std::invalid_argument("invalid client_id");
  std::string k = realm_prefix(realm);
  k.push_back(static_cast<char>(id.size()));
  k.append(id);
  return k;
}

namespace {

std::array<char, 8> u64_be(uint64_t v) {
  std::array<char, 8> out;
  for (int i = 0; i < 8; i++) out[i] = static_cast<char>((v >> (8 * (7 - i))) & 0xFF);
  return out;
}

}  // namespace

void put_u64_be(std::string& out, uint64_t v) {
  const std::array<char, 8> be = u64_be(v);
  out.append(be.data(), be.size());
}

uint64_t get_u64_be(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// realm, then the id big-endian: users list in id order
StackKey user_stack_key(std::string_view realm, uint64_t id) {
  const std::array<char, 8> be = u64_be(id);
  StackKey k(realm);
  k.append(std::string_view(be.data(), be.size()));
  return k;
}

std::string user_key(std::string_view realm, uint64_t id) {
  return std::string(user_stack_key(realm, id).view());
}

std::string user_seq_key(std::string_view realm) {
  return "\x01user_seq" + realm_prefix(realm);
}

std::string clients_version_key(std::string_view realm) {
  return "\x01clients_version" + realm_prefix(realm);
}

std::string username_key(std::string_view realm, std::string_view name) {
  std::string k = realm_prefix(realm);
  if (name.size() <= kMaxKeyName) return k.append(name);
  const Digest d = sha256(name);
  k.push_back('\xFF');  // a byte no UTF-8 holds: never a name's first
  k.append(reinterpret_cast<const char*>(d.data()), d.size());
  return k;
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

// Token records.  Version 1: type, times, client_id, scope, user.
// Version 2 adds the family, used_at and the code and rotation fields;
// version 3 the data field.  Version 4, written now, has only the fields
// that are set, as its flags say: an access token of a client costs the
// header and its three strings (at 10 million tokens every byte counts
// about 1.5 times, with the B-tree's free space).  All four are read.
namespace {

unsigned token_flags(const Token& t) {
  unsigned f = (t.redirect_uri_omitted ? kTokenRedirectOmitted : 0) | (t.jwt ? kTokenJwt : 0);
  if (t.has_family()) f |= kTokenFamily;
  if (t.used_at) f |= kTokenUsed;
  if (!t.redirect_uri.empty() || !t.code_challenge.empty()) f |= kTokenCode;
  if (!t.sealed.empty()) f |= kTokenSealed;
  if (!t.data.empty()) f |= kTokenData;
  if (!t.jkt.empty()) f |= kTokenJkt;
  if (!t.audience.empty()) f |= kTokenAudience;
  return f;
}

// A token record being read: its fields in order, each checked against
// the record's end.
class TokenReader {
 public:
  explicit TokenReader(std::string_view v)
      : v_(v), p_(reinterpret_cast<const unsigned char*>(v.data())) {}
  bool str(std::string* s) {
    if (off_ + 2 > v_.size()) return false;
    size_t len = p_[off_] | (size_t(p_[off_ + 1]) << 8);
    off_ += 2;
    if (off_ + len > v_.size()) return false;
    s->assign(v_.data() + off_, len);
    off_ += len;
    return true;
  }
  bool i64(int64_t* x) {
    if (off_ + 8 > v_.size()) return false;
    *x = get_i64(p_ + off_);
    off_ += 8;
    return true;
  }
  bool family(Family* f) {
    if (off_ + f->size() > v_.size()) return false;
    std::memcpy(f->data(), p_ + off_, f->size());
    off_ += f->size();
    return true;
  }
  void skip(size_t n) { off_ += n; }

 private:
  std::string_view v_;
  const unsigned char* p_;
  size_t off_ = 0;
};

// the fields after the three strings: all of them (versions 2 and 3)
bool read_v2_tail(TokenReader& r, unsigned version, Token* t) {
  if (!r.family(&t->family) || !r.i64(&t->used_at)) return false;
  for (std::string* s : {&t->redirect_uri, &t->code_challenge, &t->sealed}) {
    if (!r.str(s)) return false;
  }
  return version == 2 || r.str(&t->data);
}

// ... or those the flags name (version 4)
bool read_v4_tail(TokenReader& r, unsigned flags, Token* t) {
  return (!(flags & kTokenFamily) || r.family(&t->family)) &&
         (!(flags & kTokenUsed) || r.i64(&t->used_at)) &&
         (!(flags & kTokenCode) || (r.str(&t->redirect_uri) && r.str(&t->code_challenge))) &&
         (!(flags & kTokenSealed) || r.str(&t->sealed)) &&
         (!(flags & kTokenData) || r.str(&t->data)) && (!(flags & kTokenJkt) || r.str(&t->jkt)) &&
         (!(flags & kTokenAudience) || r.str(&t->audience));
}

}  // namespace

std::string encode_token(const Token& t) {
  const unsigned flags = token_flags(t);
  std::string out;
  out.reserve(kTokenHeader + 64 + t.client_id.size() + t.scope.size() + t.user.size() +
              t.redirect_uri.size() + t.sealed.size() + t.data.size() + t.audience.size());
  out.push_back(kTokenV4);
  out.push_back(static_cast<char>(t.type));
  put_u16(out, flags);
  put_i64(out, t.issued_at);
  put_i64(out, t.expires_at);
  for (const std::string* s : {&t.client_id, &t.scope, &t.user}) put_str(out, *s);
  if (flags & kTokenFamily) out.append(reinterpret_cast<const char*>(t.family.data()), 16);
  if (flags & kTokenUsed) put_i64(out, t.used_at);
  if (flags & kTokenCode) {
    put_str(out, t.redirect_uri);
    put_str(out, t.code_challenge);
  }
  if (flags & kTokenSealed) put_str(out, t.sealed);
  if (flags & kTokenData) put_str(out, t.data);
  if (flags & kTokenJkt) put_str(out, t.jkt);
  if (flags & kTokenAudience) put_str(out, t.audience);
  return out;
}

namespace {

// decode_token into a Token made in place (a validation decodes one
// record a request: no move of its nine strings)
bool decode_token_into(std::string_view v, Token& t) {
  const auto* p = reinterpret_cast<const unsigned char*>(v.data());
  if (v.size() < kTokenHeader || p[0] < 1 || p[0] > kTokenV4) return false;
  const unsigned version = p[0];
  const unsigned flags = p[2] | (unsigned(p[3]) << 8);
  t.type = static_cast<TokenType>(p[1]);
  t.issued_at = get_i64(p + 4);
  t.expires_at = get_i64(p + 12);
  TokenReader r(v);
  r.skip(kTokenHeader);
  for (std::string* s : {&t.client_id, &t.scope, &t.user}) {
    if (!r.str(s)) return false;
  }
  if (version == 1) return true;
  t.redirect_uri_omitted = (flags & kTokenRedirectOmitted) != 0;
  t.jwt = (flags & kTokenJwt) != 0;
  return version == 4 ? read_v4_tail(r, flags, &t) : read_v2_tail(r, version, &t);
}

}  // namespace

std::optional<Token> decode_token(std::string_view v) {
  std::optional<Token> t(std::in_place);
  if (!decode_token_into(v, *t)) t.reset();
  return t;
}

std::string family_prefix(std::string_view realm, const Family& f) {
  return realm_prefix(realm).append(reinterpret_cast<const char*>(f.data()), f.size());
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
  if (!c.id_token_alg.empty()) {
    json_object_set_new(j.get(), "id_token_signed_response_alg", json_str(c.id_token_alg));
  }
  if (!c.post_logout_redirect_uris.empty()) {
    json_object_set_new(j.get(), "post_logout_redirect_uris",
                        string_array(c.post_logout_redirect_uris));
  }
  if (!c.resources.empty()) json_object_set_new(j.get(), "resources", string_array(c.resources));
  if (c.dpop_bound_access_tokens) {
    json_object_set_new(j.get(), "dpop_bound_access_tokens", json_true());
  }
  // record version 2: a binary header the validation path reads without
  // decoding the JSON (version, flags), then the JSON
  std::string out;
  out.push_back(kRecordV2);
  out.push_back(static_cast<char>(c.disabled ? kFlagDisabled : 0));
  out += json_text(j.get(), JSON_COMPACT);
  return out;
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
  c.id_token_alg = get_string(j.get(), "id_token_signed_response_alg");
  c.post_logout_redirect_uris = get_strings(j.get(), "post_logout_redirect_uris");
  c.resources = get_strings(j.get(), "resources");
  c.dpop_bound_access_tokens = json_is_true(json_object_get(j.get(), "dpop_bound_access_tokens"));
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
  // version 2 header: version, flags, the username length-prefixed; a
  // name too long for its byte (a Unicode one over 255 bytes) is
  // left to the JSON, its length 0 (no name is empty): the same layout,
  // which the builds before read as it is
  std::string out;
  out.push_back(kRecordV2);
  out.push_back(static_cast<char>(u.is_active ? kFlagActive : 0));
  if (u.username.size() <= kMaxHeaderName) {
    out.push_back(static_cast<char>(u.username.size()));
    out += u.username;
  } else {
    out.push_back(0);
  }
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
  if (v.size() < kLockHeader || p[0] != kLockV1 || (v.size() - kLockHeader) % kLockOrigin != 0) {
    return std::nullopt;
  }
  AccountLock l;
  l.window_start = get_i64(p + 1);
  l.failures = static_cast<uint32_t>(p[9] | (p[10] << 8) | (p[11] << 16) | (uint32_t(p[12]) << 24));
  l.locked_until = get_i64(p + 13);
  for (size_t off = kLockHeader; off < v.size(); off += kLockOrigin) {
    AccountLock::Origin o;
    std::memcpy(o.id.data(), p + off, 32);
    o.last = get_i64(p + off + 32);
    l.trusted.push_back(o);
  }
  return l;
}

// Every string of a client record is stored as JSON text: valid UTF-8 and
// no NUL, or it would not come back byte for byte.
bool storable(const Client& c) {
  auto ok = [](const std::string& s) { return valid_utf8(s) && s.find('\0') == std::string::npos; };
  if (!valid_client_id(c.client_id) || !valid_realm(c.realm)) return false;
  for (const std::string* s : {&c.name, &c.secret_hash, &c.scope, &c.auth_method,
                               &c.access_token_format, &c.id_token_alg}) {
    if (!ok(*s)) return false;
  }
  for (const auto& v :
       {&c.grant_types, &c.redirect_uris, &c.resources, &c.post_logout_redirect_uris}) {
    for (const auto& s : *v) {
      if (!ok(s)) return false;
    }
  }
  return true;
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

uint64_t valid_epoch_of(std::optional<std::string_view> v) {
  if (!v) return 0;
  uint64_t n = 0;
  const char* end = v->data() + v->size();
  auto [p, ec] = std::from_chars(v->data(), end, n);
  if (v->empty() || ec != std::errc() || p != end || n == UINT64_MAX) {
    throw StoreError("corrupt meta valid_epoch", MDB_CORRUPTED);
  }
  return n;
}

namespace {
constexpr size_t kEpochsSize = kTokenEpochBuckets * sizeof(uint64_t);

void check_epochs(std::optional<std::string_view> v) {
  if (v && v->size() != kEpochsSize) {
    throw StoreError("corrupt meta valid_epochs", MDB_CORRUPTED);
  }
}

uint64_t load_le64(const char* p) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(p[i]);
  return n;
}

void store_le64(char* p, uint64_t n) {
  for (int i = 0; i < 8; ++i, n >>= 8) p[i] = static_cast<char>(n & 0xff);
}
}  // namespace

uint64_t bucket_epoch_of(std::optional<std::string_view> v, uint8_t bucket) {
  check_epochs(v);
  return v ? load_le64(v->data() + size_t(bucket) * sizeof(uint64_t)) : 0;
}

int bump_valid_epochs(MDB_txn* txn, MDB_dbi meta, const Invalidation& inv) {
  if (inv.all) {
    const std::string next = std::to_string(
        valid_epoch_of(get_value(txn, meta, kValidEpochMeta, "mdb_get(valid_epoch)")) + 1);
    MDB_val k = val(kValidEpochMeta), v = val(next);
    if (int rc = mdb_put(txn, meta, &k, &v, 0)) return rc;
  }
  if (inv.tokens.none()) return MDB_SUCCESS;
  auto was = get_value(txn, meta, kValidEpochsMeta, "mdb_get(valid_epochs)");
  check_epochs(was);
  std::string epochs = was ? std::string(*was) : std::string(kEpochsSize, '\0');
  for (size_t b = 0; b < kTokenEpochBuckets; ++b) {
    if (!inv.tokens.test(b)) continue;
    char* p = epochs.data() + b * sizeof(uint64_t);
    store_le64(p, load_le64(p) + 1);
  }
  MDB_val k = val(kValidEpochsMeta), v = val(epochs);
  return mdb_put(txn, meta, &k, &v, 0);
}

}  // namespace records

bool valid_realm(std::string_view realm) {
  if (realm.empty() || realm.size() > kMaxRealm) return false;
  for (char ch : realm) {
    if (!chars::is(ch, chars::kRealm)) return false;
  }
  return true;
}

bool valid_client_id(std::string_view id) {
  return !id.empty() && id.size() <= kMaxClientId && valid_utf8(id) && !has_control(id);
}

namespace {

// JavaScript's StrWhiteSpaceChar: Python's spaces less some controls, and
// the byte order mark
bool js_space(char32_t c) {
  return c == 0xFEFF ||
         (unicode_space(c) && c != 0x1C && c != 0x1D && c != 0x1E && c != 0x1F && c != 0x85);
}

bool ascii_digit(char32_t c) {
  return c >= '0' && c <= '9';
}

// Python's int(s): spaces around, a sign, digits with single underscores
// between them
bool python_int(std::u32string_view s) {
  while (!s.empty() && unicode_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && unicode_space(s.back())) s.remove_suffix(1);
  if (!s.empty() && (s.front() == '+' || s.front() == '-')) s.remove_prefix(1);
  if (s.empty() || !unicode_decimal(s.front()) || !unicode_decimal(s.back())) return false;
  for (size_t i = 0; i < s.size(); i++) {
    if (unicode_decimal(s[i])) continue;
    if (s[i] != '_' || !unicode_decimal(s[i + 1])) return false;
  }
  return true;
}

// JavaScript's Number(s) is not NaN: spaces around (all spaces: 0), then
// Infinity, 0x/0o/0b digits, or a decimal with its fraction and exponent
bool js_number(std::u32string_view s) {
  while (!s.empty() && js_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && js_space(s.back())) s.remove_suffix(1);
  if (s.empty()) return true;
  auto radix = [&](char32_t x, bool (*digit)(char32_t)) {
    if (s.size() < 3 || s[0] != '0' || (s[1] | 0x20) != x) return false;
    return std::all_of(s.begin() + 2, s.end(), digit);
  };
  if (radix(
          'x',
          [](char32_t c) { return ascii_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); }) ||
      radix('o', [](char32_t c) { return c >= '0' && c <= '7'; }) ||
      radix('b', [](char32_t c) { return c == '0' || c == '1'; })) {
    return true;
  }
  if (s.front() == '+' || s.front() == '-') s.remove_prefix(1);
  if (s == U"Infinity") return true;
  size_t i = 0, digits = 0;
  while (i < s.size() && ascii_digit(s[i])) i++, digits++;
  if (i < s.size() && s[i] == '.') {
    i++;
    while (i < s.size() && ascii_digit(s[i])) i++, digits++;
  }
  if (digits == 0) return false;
  if (i < s.size() && (s[i] | 0x20) == 'e') {
    i++;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) i++;
    if (i == s.size() || !ascii_digit(s[i])) return false;
    while (i < s.size() && ascii_digit(s[i])) i++;
  }
  return i == s.size();
}

}  // namespace

bool reads_as_number(std::string_view text) {
  const std::u32string s = code_points(text);
  return python_int(s) || js_number(s);
}

bool valid_username(std::string_view name) {
  if (name.empty() || name.size() > kMaxUsernameBytes || !valid_utf8(name)) return false;
  size_t chars = 0;
  for (size_t i = 0; i < name.size(); chars++) {
    const char32_t c = next_code_point(name, &i);
    if (!unicode_word(c) && c != '@' && c != '.' && c != '+' && c != '-') return false;
  }
  return chars <= kMaxUsername;
}

bool username_nfkc_stable(std::string_view name) {
  for (size_t i = 0; i < name.size();) {
    if (unicode_nfkc_unsure(next_code_point(name, &i))) return false;
  }
  return true;
}

namespace {

bool ascii_alnum(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

}  // namespace

bool valid_email(std::string_view e) {
  size_t at = e.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == e.size()) {
    return false;
  }
  std::string_view user = e.substr(0, at), domain = e.substr(at + 1);
  constexpr std::string_view kAtext = "!#$%&'*+/=?^_`{|}~-";
  bool dot_ok = false;
  for (char ch : user) {
    if (ch == '.') {
      if (!dot_ok) return false;
      dot_ok = false;
    } else if (ascii_alnum(ch) || kAtext.find(ch) != std::string_view::npos) {
      dot_ok = true;
    } else {
      return false;
    }
  }
  if (!dot_ok) return false;  // empty, or ends with '.'

  if (domain == "localhost") return true;
  if (domain.front() == '[' && domain.back() == ']') {
    for (char ch : domain.substr(1, domain.size() - 2)) {
      if (!ascii_alnum(ch) && ch != '.' && ch != ':') return false;
    }
    return domain.size() > 2;
  }
  size_t labels = 0;
  std::string_view rest = domain;
  while (true) {
    size_t dot = rest.find('.');
    std::string_view label = rest.substr(0, dot);
    bool last = dot == std::string_view::npos;
    if (label.empty() || label.size() > 63) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    for (char ch : label) {
      if (!ascii_alnum(ch) && ch != '-') return false;
    }
    labels++;
    if (last) {
      if (label.size() < 2) return false;  // the TLD
      break;
    }
    rest = rest.substr(dot + 1);
  }
  return labels >= 2;
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

bool Token::has_family() const {
  for (unsigned char b : family) {
    if (b) return true;
  }
  return false;
}

namespace {

// a base64url character's six bits; -1 for any other byte
int b64url_value(char ch) {
  if (ch >= 'A' && ch <= 'Z') return ch - 'A';
  if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
  if (ch >= '0' && ch <= '9') return ch - '0' + 52;
  if (ch == '-') return 62;
  if (ch == '_') return 63;
  return -1;
}

}  // namespace

ShortTokenId short_token_id(const TokenId& id) {
  static const char kHex[] = "0123456789abcdef";
  ShortTokenId out;
  for (size_t i = 0; i < out.hex.size() / 2; i++) {
    out.hex[2 * i] = kHex[id.hash[i] >> 4];
    out.hex[2 * i + 1] = kHex[id.hash[i] & 15];
  }
  out.size = out.hex.size();
  return out;
}

TokenId token_id(std::string_view value) {
  return token_id(value, sha256(value));
}

TokenId token_id(std::string_view value, const Digest& hash) {
  TokenId id;
  id.hash = hash;
  // the first eight characters are the first six bytes; a value that
  // does not start with eight base64url characters sorts first (zeros)
  uint64_t bits = 0;
  for (size_t i = 0; i < 8; i++) {
    int v = i < value.size() ? b64url_value(value[i]) : -1;
    if (v < 0) return id;
    bits = (bits << 6) | static_cast<unsigned>(v);
  }
  for (size_t i = 0; i < 6; i++) id.order[i] = static_cast<unsigned char>(bits >> (8 * (5 - i)));
  return id;
}

bool Client::allows_grant(std::string_view grant) const {
  return std::find(grant_types.begin(), grant_types.end(), grant) != grant_types.end();
}

}  // namespace oauth2
