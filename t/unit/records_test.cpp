// Unit tests of the token record codec (src/core/store_records): version 4
// writes only the fields that are set and reads back what it wrote; the
// versions earlier releases wrote (1, 2, 3) are still read; a truncated
// record is refused, never read past its end.

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "store.hpp"
#include "store_records.hpp"

using oauth2::Token;
using oauth2::TokenType;
using oauth2::records::decode_client;
using oauth2::records::decode_token;
using oauth2::records::decode_user;
using oauth2::records::encode_client;
using oauth2::records::encode_token;
using oauth2::records::encode_user;

namespace {

Token client_token() {
  Token t;
  t.type = TokenType::kAccess;
  t.issued_at = 1700000000;
  t.expires_at = 1700036000;
  t.client_id = std::string(40, 'c');
  t.scope = "read write";
  return t;
}

Token full_token() {
  Token t = client_token();
  t.type = TokenType::kCode;
  t.user = "42";
  for (size_t i = 0; i < t.family.size(); i++) t.family[i] = static_cast<unsigned char>(i + 1);
  t.used_at = 1700000100;
  t.redirect_uri = "https://app.example/cb";
  t.redirect_uri_omitted = true;
  t.code_challenge = std::string(43, 'x');
  t.sealed = std::string(60, '\x01');
  t.jwt = true;
  t.data = "{\"name\":\"k\"}";
  return t;
}

void expect_same(const Token& a, const Token& b) {
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.issued_at, b.issued_at);
  EXPECT_EQ(a.expires_at, b.expires_at);
  EXPECT_EQ(a.client_id, b.client_id);
  EXPECT_EQ(a.scope, b.scope);
  EXPECT_EQ(a.user, b.user);
  EXPECT_EQ(a.family, b.family);
  EXPECT_EQ(a.used_at, b.used_at);
  EXPECT_EQ(a.redirect_uri, b.redirect_uri);
  EXPECT_EQ(a.redirect_uri_omitted, b.redirect_uri_omitted);
  EXPECT_EQ(a.code_challenge, b.code_challenge);
  EXPECT_EQ(a.sealed, b.sealed);
  EXPECT_EQ(a.jwt, b.jwt);
  EXPECT_EQ(a.data, b.data);
}

void put_u16(std::string& out, size_t v) {
  out.push_back(static_cast<char>(v & 0xFF));
  out.push_back(static_cast<char>(v >> 8));
}

void put_i64(std::string& out, int64_t v) {
  for (int i = 0; i < 8; i++) out.push_back(static_cast<char>((uint64_t(v) >> (8 * i)) & 0xFF));
}

// A record as release 3 wrote it: every field, whether set or not.
std::string v3_record(const Token& t) {
  std::string out;
  out.push_back(t.data.empty() ? 2 : 3);
  out.push_back(static_cast<char>(t.type));
  put_u16(out, (t.redirect_uri_omitted ? 1 : 0) | (t.jwt ? 2 : 0));
  put_i64(out, t.issued_at);
  put_i64(out, t.expires_at);
  for (const std::string* s : {&t.client_id, &t.scope, &t.user}) {
    put_u16(out, s->size());
    out += *s;
  }
  out.append(reinterpret_cast<const char*>(t.family.data()), t.family.size());
  put_i64(out, t.used_at);
  for (const std::string* s : {&t.redirect_uri, &t.code_challenge, &t.sealed}) {
    put_u16(out, s->size());
    out += *s;
  }
  if (!t.data.empty()) {
    put_u16(out, t.data.size());
    out += t.data;
  }
  return out;
}

TEST(TokenRecord, ClientTokenHasOnlyItsFields) {
  const Token t = client_token();
  const std::string rec = encode_token(t);
  // header 20, three strings 2 + 40, 2 + 10, 2 + 0: no family, no times
  // of use, no code or rotation fields
  EXPECT_EQ(rec.size(), 20u + 42 + 12 + 2);
  EXPECT_EQ(rec[0], 4);
  auto back = decode_token(rec);
  ASSERT_TRUE(back.has_value());
  expect_same(*back, t);
  EXPECT_EQ(v3_record(t).size() - rec.size(), 30u);  // 30 bytes less
}

TEST(TokenRecord, EveryFieldRoundTrips) {
  const Token t = full_token();
  auto back = decode_token(encode_token(t));
  ASSERT_TRUE(back.has_value());
  expect_same(*back, t);
}

TEST(TokenRecord, EachOptionalFieldAlone) {
  const Token base = client_token();
  Token fam = base, used = base, code = base, chal = base, sealed = base, data = base;
  fam.family[3] = 9;
  used.used_at = 5;
  code.redirect_uri = "https://a.example/";
  chal.code_challenge = "c";
  sealed.sealed = "s";
  data.data = "{}";
  for (const Token* t : {&fam, &used, &code, &chal, &sealed, &data}) {
    const std::string rec = encode_token(*t);
    auto back = decode_token(rec);
    ASSERT_TRUE(back.has_value());
    expect_same(*back, *t);
    // the field is the record's last: cut anywhere, it is refused, never
    // read a byte past the end (a used refresh token ends in used_at)
    for (size_t n = 0; n < rec.size(); n++) {
      EXPECT_FALSE(decode_token(rec.substr(0, n)).has_value())
          << "cut at " << n << " of " << rec.size();
    }
  }
}

// R77: a field's length is 16 bits; one longer is refused, never written
// with its length cut (the record would read back with the field short
// and the next fields taken from its tail)
TEST(TokenRecord, AFieldOver65535BytesIsRefusedR77) {
  Token t = client_token();
  t.data = std::string(0xFFFF, 'd');
  auto back = decode_token(encode_token(t));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->data, t.data);
  t.data.push_back('d');
  EXPECT_THROW(encode_token(t), std::invalid_argument);
  t.data.clear();
  t.sealed = std::string(0x10000, 's');
  EXPECT_THROW(encode_token(t), std::invalid_argument);
}

TEST(TokenRecord, EarlierVersionsAreRead) {
  for (const Token& t : {client_token(), full_token()}) {
    auto back = decode_token(v3_record(t));
    ASSERT_TRUE(back.has_value());
    expect_same(*back, t);
  }
  // version 1: the header and three strings only
  const Token t = client_token();
  std::string v1 = v3_record(t).substr(0, 20 + 42 + 12 + 2);
  v1[0] = 1;
  auto back = decode_token(v1);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->client_id, t.client_id);
  EXPECT_EQ(back->expires_at, t.expires_at);
}

TEST(TokenRecord, TruncatedOrUnknownIsRefused) {
  const std::string rec = encode_token(full_token());
  for (size_t n = 0; n < rec.size(); n++) {
    EXPECT_FALSE(decode_token(rec.substr(0, n)).has_value()) << "cut at " << n;
  }
  std::string v5 = rec;
  v5[0] = 5;
  EXPECT_FALSE(decode_token(v5).has_value());
  std::string v0 = rec;
  v0[0] = 0;
  EXPECT_FALSE(decode_token(v0).has_value());
}

// An account lock's record (R83, R89): a header, then whole origins of 40
// bytes; one cut short is refused, not read past its end.
TEST(LockRecord, RoundTripsAndAPartialOriginIsRefused) {
  oauth2::AccountLock l;
  l.window_start = 1700000000;
  l.failures = 7;
  l.locked_until = 1700000600;
  for (int i = 0; i < 2; i++) {
    oauth2::AccountLock::Origin o;
    o.id[0] = static_cast<unsigned char>(i + 1);
    o.last = 1700000000 - i;
    l.trusted.push_back(o);
  }
  const std::string rec = oauth2::records::encode_lock(l);
  auto back = oauth2::records::decode_lock(rec);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->failures, 7u);
  EXPECT_EQ(back->locked_until, l.locked_until);
  ASSERT_EQ(back->trusted.size(), 2u);
  EXPECT_EQ(back->trusted[1].id[0], 2);
  EXPECT_EQ(back->trusted[1].last, l.trusted[1].last);
  for (size_t n = 0; n < rec.size(); n++) {
    const bool whole = n >= 21 && (n - 21) % 40 == 0;
    EXPECT_EQ(oauth2::records::decode_lock(rec.substr(0, n)).has_value(), whole) << "cut at " << n;
  }
}

// A client or user record of version 1 (its JSON alone, as the builds
// before the version 2 header wrote it) is still read, its flags taken
// from the JSON
TEST(ClientUserRecord, Version1IsReadAsTheJsonAlone) {
  oauth2::Client c;
  c.client_id = "app1";
  c.name = "App";
  c.scope = "read";
  c.grant_types = {"client_credentials"};
  c.disabled = true;
  const std::string v2 = encode_client(c);
  ASSERT_EQ(v2[0], 2);
  auto back = decode_client("default", v2.substr(2));  // v1: no header
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->client_id, "app1");
  EXPECT_EQ(back->scope, "read");
  EXPECT_TRUE(back->disabled);

  oauth2::User u;
  u.id = 7;
  u.username = "dora";
  u.email = "dora@example.com";
  u.is_active = false;
  const std::string uv2 = encode_user(u);
  auto ub = decode_user("default", uv2.substr(3 + u.username.size()));
  ASSERT_TRUE(ub.has_value());
  EXPECT_EQ(ub->id, 7u);
  EXPECT_EQ(ub->username, "dora");
  EXPECT_FALSE(ub->is_active);
  // neither a header's version byte nor a cut JSON is a version 1 record
  EXPECT_FALSE(decode_client("default", v2.substr(1)).has_value());
  EXPECT_FALSE(decode_user("default", uv2.substr(3 + u.username.size(), 10)).has_value());
}


// A username too long for the header's length byte (a Unicode one of more
// than 255 bytes) is left to the JSON, the length 0: the record reads
// back, and the builds before, which skip the header by its length, read
// its JSON too
TEST(ClientUserRecord, ALongUnicodeNameIsInTheJsonAlone) {
  oauth2::User u;
  u.id = 9;
  for (int i = 0; i < 150; i++) u.username += "\xE7\x94\xA8";  // 用, 450 bytes
  u.is_active = true;
  const std::string rec = encode_user(u);
  ASSERT_GE(rec.size(), 4u);
  EXPECT_EQ(rec[2], 0);
  EXPECT_EQ(rec[3], '{');
  auto back = decode_user("default", rec);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->username, u.username);
  auto before = decode_user("default", rec.substr(3));
  ASSERT_TRUE(before.has_value());
  EXPECT_EQ(before->username, u.username);
  // 255 bytes still fit the header
  u.username = std::string(253, 'a') + "\xC3\xA9";
  const std::string fits = encode_user(u);
  EXPECT_EQ(static_cast<unsigned char>(fits[2]), 255);
  EXPECT_EQ(fits.substr(3, 255), u.username);
  EXPECT_EQ(decode_user("default", fits)->username, u.username);
}

}  // namespace

// Every field of a client is checked before it is stored: a NUL in a
// post-logout URI made a record decode_client refused (every later read
// of the client "corrupt", a 503), invalid UTF-8 an exception out of
// encode_client that leaked the array it was building
namespace {

TEST(ClientRecord, EveryFieldIsCheckedBeforeItIsStoredR77) {
  oauth2::Client c;
  c.client_id = "abc";
  c.name = "app";
  EXPECT_TRUE(oauth2::records::storable(c));
  auto refused = [&](auto change) {
    oauth2::Client bad = c;
    change(bad);
    return !oauth2::records::storable(bad);
  };
  EXPECT_TRUE(refused(
      [](oauth2::Client& b) { b.post_logout_redirect_uris = {std::string("https://a/\0x", 11)}; }));
  EXPECT_TRUE(refused([](oauth2::Client& b) { b.post_logout_redirect_uris = {"https://a/\xff"}; }));
  EXPECT_TRUE(refused([](oauth2::Client& b) { b.access_token_format = "jw\xc3"; }));
  EXPECT_TRUE(refused([](oauth2::Client& b) { b.id_token_alg = std::string("RS\0", 3); }));
}

}  // namespace
