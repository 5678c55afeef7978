// Unit tests of src/core/jwt: JWS signing and verification, key loading,
// JWKS.  Keys come from the openssl CLI, and ES256, EdDSA, RS256 and HS256
// signatures are checked against it in both directions, so the code is not
// only tested against itself.

#include "jwt.hpp"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "codec.hpp"
#include "crypto.hpp"
#include "location.hpp"
#include "test_helpers.hpp"

namespace {

using oauth2::Json;
using oauth2::JwtAlg;
using oauth2::JwtCheck;
using oauth2::JwtKey;
using oauth2::JwtKeys;
using oauth2::JwtStatus;
using oauth2_test::run;
using oauth2_test::TempDir;
using oauth2_test::write_file;

constexpr int64_t kNow = 1700000000;

// --------------------------------------------------------------- helpers

// Every key the tests use, made once by the openssl CLI on first use.
struct KeyFiles {
  TempDir dir;
  std::string path(const std::string& name) const { return dir.path() + "/" + name; }

  KeyFiles() {
    const std::string gen = "openssl genpkey -out " + dir.path() + "/";
    const std::string pub = "openssl pkey -pubout -in " + dir.path() + "/";
    const std::vector<std::string> cmds = {
        gen + "ec.pem -algorithm EC -pkeyopt ec_paramgen_curve:P-256",
        gen + "ec2.pem -algorithm EC -pkeyopt ec_paramgen_curve:P-256",
        gen + "ed.pem -algorithm ED25519",
        gen + "rsa.pem -algorithm RSA -pkeyopt rsa_keygen_bits:2048",
        gen + "p384.pem -algorithm EC -pkeyopt ec_paramgen_curve:P-384",
        gen + "k1.pem -algorithm EC -pkeyopt ec_paramgen_curve:secp256k1",
        gen + "rsa1024.pem -algorithm RSA -pkeyopt rsa_keygen_bits:1024",
        gen + "ed448.pem -algorithm ED448",
        gen +
            "enc.pem -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
            "-aes256 -pass pass:secret",
        pub + "ec.pem -out " + path("ec_pub.pem"),
        pub + "ed.pem -out " + path("ed_pub.pem"),
        pub + "rsa.pem -out " + path("rsa_pub.pem"),
        pub + "p384.pem -out " + path("p384_pub.pem"),
        pub + "rsa1024.pem -out " + path("rsa1024_pub.pem"),
    };
    for (const auto& c : cmds) {
      if (!run(c)) throw std::runtime_error("failed: " + c);
    }
    write_file(path("garbage.pem"), "-----BEGIN NOTHING-----\nabc\n");
  }
};

KeyFiles* g_files = nullptr;

const KeyFiles& files() {
  if (!g_files) g_files = new KeyFiles();
  return *g_files;
}

class JwtFilesCleanup : public ::testing::Environment {
 public:
  void TearDown() override {
    delete g_files;
    g_files = nullptr;
  }
};
[[maybe_unused]] ::testing::Environment* const g_cleanup =
    ::testing::AddGlobalTestEnvironment(new JwtFilesCleanup);

std::shared_ptr<JwtKey> load(const std::string& name) {
  return JwtKey::load_file(files().path(name), false);
}

// Loaded once: RSA key checks cost milliseconds each.
std::shared_ptr<JwtKey> key(const std::string& name) {
  static auto* cache = new std::vector<std::pair<std::string, std::shared_ptr<JwtKey>>>();
  for (const auto& [n, k] : *cache) {
    if (n == name) return k;
  }
  cache->emplace_back(name, load(name));
  return cache->back().second;
}

const std::string& hmac_secret() {
  static const std::string* s = new std::string(oauth2::random_alnum(48));
  return *s;
}

std::shared_ptr<JwtKey> hmac_key() {
  return JwtKey::hmac(hmac_secret(), "hmac-1");
}

JwtKeys set_of(std::initializer_list<std::shared_ptr<JwtKey>> ks) {
  JwtKeys s;
  for (const auto& k : ks) s.add(k);
  return s;
}

Json parse(const std::string& text) {
  Json j(json_loads(text.c_str(), 0, nullptr));
  if (!j) throw std::runtime_error("bad test JSON: " + text);
  return j;
}

std::string b64(std::string_view s) {
  return oauth2::b64url_encode(s);
}

std::string unb64(std::string_view s) {
  std::string out;
  if (!oauth2::b64url_decode(s, out)) throw std::runtime_error("bad b64url");
  return out;
}

std::vector<std::string> split(const std::string& token) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    size_t dot = token.find('.', start);
    parts.push_back(token.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return parts;
}

std::string signing_input(const std::string& token) {
  return token.substr(0, token.rfind('.'));
}

// HMAC-SHA256 by OpenSSL's one-shot HMAC(), not by the code under test.
std::string hs256(std::string_view secret, std::string_view data) {
  unsigned char out[32];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

// A token with any header and payload text, MACed with the test secret.
std::string craft_hs256(const std::string& header, const std::string& payload,
                        std::string_view secret = hmac_secret()) {
  std::string input = b64(header) + "." + b64(payload);
  return input + "." + b64(hs256(secret, input));
}

JwtCheck at(int64_t now) {
  JwtCheck c;
  c.now = now;
  return c;
}

JwtStatus verify(const JwtKeys& keys, const std::string& token, const JwtCheck& c = at(kNow)) {
  return oauth2::jwt_verify(keys, token, c).status;
}

std::string sign(const JwtKey& k, const std::string& claims, std::string_view typ = "") {
  return oauth2::jwt_sign(k, parse(claims).get(), typ);
}

const std::string kClaims =
    "{\"iss\":\"https://as.example\",\"sub\":\"alice\",\"aud\":\"api\","
    "\"exp\":1700000600,\"iat\":1700000000}";

// DER of an ECDSA signature from raw R||S and back, written out here
// rather than through OpenSSL's ECDSA_SIG as the code under test does.
std::string der_integer(std::string_view v) {
  size_t i = 0;
  while (i + 1 < v.size() && v[i] == 0) i++;
  std::string out(v.substr(i));
  if (static_cast<unsigned char>(out[0]) & 0x80) out.insert(0, 1, '\0');
  return std::string("\x02", 1) + static_cast<char>(out.size()) + out;
}

std::string raw_to_der(std::string_view raw) {
  std::string body = der_integer(raw.substr(0, 32)) + der_integer(raw.substr(32));
  return std::string("\x30", 1) + static_cast<char>(body.size()) + body;
}

std::string der_to_raw(std::string_view der) {
  std::string out;
  size_t p = 2;  // SEQUENCE, short length
  for (int n = 0; n < 2; n++) {
    size_t len = static_cast<unsigned char>(der.at(p + 1));
    std::string_view v = der.substr(p + 2, len);
    while (v.size() > 32) v.remove_prefix(1);
    out += std::string(32 - v.size(), '\0') + std::string(v);
    p += 2 + len;
  }
  return out;
}

// The order n of P-256 (SEC 2, FIPS 186-4 D.1.2.3), and n / 2, big-endian
std::string unhex(std::string_view h) {
  std::string out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16)));
  }
  return out;
}
const std::string& kP256Order() {
  static const std::string n =
      unhex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
  return n;
}
const std::string& kP256HalfOrder() {
  static const std::string h =
      unhex("7fffffff800000007fffffffffffffffde737d56d38bcf4279dce5617e3192a8");
  return h;
}
// n - s, 32 bytes
std::string p256_negate(const std::string& s) {
  std::string out(32, '\0');
  int borrow = 0;
  for (int i = 31; i >= 0; i--) {
    int d = static_cast<unsigned char>(kP256Order()[i]) - static_cast<unsigned char>(s[i]) - borrow;
    borrow = d < 0;
    out[i] = static_cast<char>(d + (borrow ? 256 : 0));
  }
  return out;
}

// ------------------------------------------------------------- base64url

TEST(JwtB64url, Rfc4648VectorsWithoutPadding) {
  const std::pair<std::string, std::string> vectors[] = {
      {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
      {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}, {"\xfb\xff", "-_8"}};
  for (const auto& [plain, enc] : vectors) {
    EXPECT_EQ(oauth2::b64url_encode(plain), enc);
    std::string out = "junk";
    EXPECT_TRUE(oauth2::b64url_decode(enc, out)) << enc;
    EXPECT_EQ(out, plain);
  }
}

TEST(JwtB64url, RoundTripOfRandomBytes) {
  for (size_t n = 0; n < 200; n++) {
    std::string data(n, '\0');
    oauth2::random_bytes(reinterpret_cast<unsigned char*>(data.data()), n);
    std::string enc = oauth2::b64url_encode(data), dec;
    ASSERT_TRUE(oauth2::b64url_decode(enc, dec)) << enc;
    EXPECT_EQ(dec, data);
  }
}

TEST(JwtB64url, DecodingIsStrict) {
  for (std::string bad :
       {std::string("Zg=="), std::string("Zg="), std::string("Z"), std::string("Zm9vY"),
        std::string("Zm9v+"), std::string("Zm9v/A"), std::string(" Zm9v"), std::string("Zm9v\n"),
        std::string("Zm 9v"), std::string("Zm9v."), std::string("Zh"), std::string("Zm9"),
        std::string("-_9"), oauth2_test::bytes("Zm\0v"), std::string("Zm9v\xc3\xa9")}) {
    std::string out;
    EXPECT_FALSE(oauth2::b64url_decode(bad, out)) << bad;
    EXPECT_TRUE(out.empty()) << bad;
  }
}

// ------------------------------------------------------------ key files

TEST(JwtKeyLoad, PrivateKeysGiveTheirAlgorithmAndSign) {
  EXPECT_EQ(key("ec.pem")->alg(), JwtAlg::kES256);
  EXPECT_EQ(key("ed.pem")->alg(), JwtAlg::kEdDSA);
  EXPECT_EQ(key("rsa.pem")->alg(), JwtAlg::kRS256);
  for (const char* n : {"ec.pem", "ed.pem", "rsa.pem"}) {
    EXPECT_TRUE(key(n)->can_sign()) << n;
    EXPECT_EQ(key(n)->kid().size(), 43u) << n;  // SHA-256, base64url
  }
  EXPECT_STREQ(oauth2::jwt_alg_name(JwtAlg::kES256), "ES256");
  EXPECT_STREQ(oauth2::jwt_alg_name(JwtAlg::kEdDSA), "EdDSA");
  EXPECT_STREQ(oauth2::jwt_alg_name(JwtAlg::kRS256), "RS256");
  EXPECT_STREQ(oauth2::jwt_alg_name(JwtAlg::kHS256), "HS256");
}

TEST(JwtKeyLoad, PublicKeyVerifiesButCannotSign) {
  for (const char* n : {"ec", "ed", "rsa"}) {
    auto priv = key(std::string(n) + ".pem");
    auto pub = load(std::string(n) + "_pub.pem");
    EXPECT_FALSE(pub->can_sign()) << n;
    EXPECT_EQ(pub->alg(), priv->alg()) << n;
    EXPECT_EQ(pub->kid(), priv->kid()) << n;  // the thumbprint is public
    EXPECT_THROW(sign(*pub, kClaims), std::logic_error) << n;
    EXPECT_EQ(verify(set_of({pub}), sign(*priv, kClaims)), JwtStatus::kOk) << n;
    EXPECT_EQ(set_of({pub}).signer(), nullptr);
  }
}

TEST(JwtKeyLoad, OtherKeysAreRefusedWithFileAndReason) {
  const std::pair<std::string, std::string> refused[] = {
      {"p384.pem", "P-256"},    {"p384_pub.pem", "P-256"},   {"k1.pem", "secp256k1"},
      {"rsa1024.pem", "2048"},  {"rsa1024_pub.pem", "2048"}, {"ed448.pem", "ED448"},
      {"enc.pem", "encrypted"}, {"garbage.pem", "no PEM"},   {"missing.pem", "No such file"}};
  for (const auto& [name, reason] : refused) {
    try {
      load(name);
      ADD_FAILURE() << name << " was accepted";
    } catch (const std::runtime_error& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find(files().path(name)), std::string::npos) << msg;
      EXPECT_NE(msg.find(reason), std::string::npos) << msg;
    }
  }
  EXPECT_THROW(JwtKey::load_file(files().dir.path(), false), std::runtime_error);
}

TEST(JwtKeyLoad, HmacFileNeedsThirtyTwoBytesAfterItsNewline) {
  std::string p = files().path("hs.key");
  write_file(p, std::string(31, 'k') + "\n");
  EXPECT_THROW(JwtKey::load_file(p, true), std::runtime_error);
  write_file(p, std::string(32, 'k') + "\n");
  auto k = JwtKey::load_file(p, true);
  EXPECT_EQ(k->alg(), JwtAlg::kHS256);
  EXPECT_TRUE(k->can_sign());

  // the newline is not part of the secret
  std::string token = sign(*k, kClaims);
  auto same = JwtKey::hmac(std::string(32, 'k'), k->kid());
  EXPECT_EQ(verify(set_of({same}), token), JwtStatus::kOk);
  auto with_nl = JwtKey::hmac(std::string(32, 'k') + "\n", k->kid());
  EXPECT_EQ(verify(set_of({with_nl}), token), JwtStatus::kBadSignature);
}

// `openssl rand -out handshake.key 32`, as conf.example says, ends in a
// newline once in 256 files: a binary key keeps all its bytes
TEST(JwtKeyLoad, BinaryHmacFileKeepsItsLastNewline) {
  std::string p = files().path("hs-bin.key");
  std::string secret = std::string("\x01\xff\x00", 3) + std::string(28, '\x80') + "\n";
  ASSERT_EQ(secret.size(), 32u);
  write_file(p, secret);
  auto k = JwtKey::load_file(p, true);
  std::string token = sign(*k, kClaims);
  EXPECT_EQ(verify(set_of({JwtKey::hmac(secret, k->kid())}), token), JwtStatus::kOk);

  // oauth2-admin handshake-key extract writes a 0.8 store's 32 random
  // bytes and a newline: the key is the 32 bytes, whatever the last is
  std::string legacy = std::string(31, '\x80') + "\n";
  write_file(p, legacy + "\n");
  k = JwtKey::load_file(p, true);
  token = sign(*k, kClaims);
  EXPECT_EQ(verify(set_of({JwtKey::hmac(legacy, k->kid())}), token), JwtStatus::kOk);

  // a text key's CRLF is not part of it either
  write_file(p, std::string(32, 'k') + "\r\n");
  k = JwtKey::load_file(p, true);
  token = sign(*k, kClaims);
  EXPECT_EQ(verify(set_of({JwtKey::hmac(std::string(32, 'k'), k->kid())}), token), JwtStatus::kOk);
}

TEST(JwtKeyLoad, HmacFileKidIsStableAndRevealsNothing) {
  std::string p = files().path("hs2.key");
  std::string secret = oauth2::random_alnum(40);
  write_file(p, secret);
  auto a = JwtKey::load_file(p, true);
  auto b = JwtKey::load_file(p, true);
  EXPECT_EQ(a->kid(), b->kid());
  EXPECT_EQ(a->kid().size(), 43u);
  EXPECT_EQ(a->kid().find(secret.substr(0, 8)), std::string::npos);
  auto s = oauth2::sha256(secret);
  EXPECT_NE(a->kid(), oauth2::base64url_encode(s.data(), s.size()));
  write_file(p, oauth2::random_alnum(40));
  EXPECT_NE(JwtKey::load_file(p, true)->kid(), a->kid());
}

TEST(JwtKeyLoad, HmacFromBytesChecksLengthAndKid) {
  EXPECT_THROW(JwtKey::hmac(std::string(31, 'x'), "k"), std::invalid_argument);
  EXPECT_THROW(JwtKey::hmac(std::string(32, 'x'), ""), std::invalid_argument);
  auto k = JwtKey::hmac(std::string(32, 'x'), "k1");
  EXPECT_EQ(k->kid(), "k1");
  EXPECT_TRUE(k->can_sign());
}

// ------------------------------------------------------ sign and verify

TEST(JwtSign, RoundTripForEveryAlgorithm) {
  for (const auto& k : {key("ec.pem"), key("ed.pem"), key("rsa.pem"), hmac_key()}) {
    JwtKeys keys = set_of({k});
    std::string token = sign(*k, kClaims, "at+jwt");
    auto r = oauth2::jwt_verify(keys, token, at(kNow));
    ASSERT_EQ(r.status, JwtStatus::kOk) << oauth2::jwt_alg_name(k->alg());
    EXPECT_EQ(r.key, k.get());
    EXPECT_EQ(oauth2::json_text(r.claims.get(), JSON_COMPACT), kClaims);

    auto parts = split(token);
    ASSERT_EQ(parts.size(), 3u);
    EXPECT_EQ(unb64(parts[0]), std::string("{\"alg\":\"") + oauth2::jwt_alg_name(k->alg()) +
                                   "\",\"typ\":\"at+jwt\",\"kid\":\"" + k->kid() + "\"}");
    EXPECT_EQ(unb64(parts[1]), kClaims);
  }
}

TEST(JwtSign, TypIsOmittedWhenEmpty) {
  auto k = hmac_key();
  auto parts = split(sign(*k, "{}"));
  EXPECT_EQ(unb64(parts[0]), "{\"alg\":\"HS256\",\"kid\":\"hmac-1\"}");
}

TEST(JwtSign, RefusesNonObjectClaims) {
  auto k = hmac_key();
  Json arr(json_array());
  EXPECT_THROW(oauth2::jwt_sign(*k, arr.get(), ""), std::logic_error);
  EXPECT_THROW(oauth2::jwt_sign(*k, nullptr, ""), std::logic_error);
}

TEST(JwtSign, SignatureSizes) {
  EXPECT_EQ(unb64(split(sign(*key("ec.pem"), kClaims))[2]).size(), 64u);
  EXPECT_EQ(unb64(split(sign(*key("ed.pem"), kClaims))[2]).size(), 64u);
  EXPECT_EQ(unb64(split(sign(*key("rsa.pem"), kClaims))[2]).size(), 256u);
  EXPECT_EQ(unb64(split(sign(*hmac_key(), kClaims))[2]).size(), 32u);
}

// The table of signatures a worker has verified (location.hpp JwtCache)
// is bounded (R84): a worker that meets more distinct JWTs than its bound
// starts the table over, instead of keeping every token it ever verified
// for its life, memory that would grow with issuance.
TEST(JwtVerify, TheTableOfVerifiedTokensIsBounded) {
  using oauth2::JwtCache;
  auto digest = [](size_t i) {
    oauth2::Digest d{};
    std::memcpy(d.data(), &i, sizeof(i));
    return d;
  };
  JwtCache cache;
  for (size_t i = 0; i < JwtCache::kMax; i++) cache.put(digest(i), JwtCache::Entry{});
  EXPECT_NE(cache.find(digest(0)), nullptr) << "full to its bound: everything kept";
  EXPECT_NE(cache.find(digest(JwtCache::kMax - 1)), nullptr);
  cache.put(digest(JwtCache::kMax), JwtCache::Entry{});
  EXPECT_EQ(cache.find(digest(0)), nullptr) << "past its bound: the table started over";
  EXPECT_EQ(cache.find(digest(JwtCache::kMax - 1)), nullptr);
  EXPECT_NE(cache.find(digest(JwtCache::kMax)), nullptr) << "the new entry is kept";
}

TEST(JwtVerify, TamperingIsABadSignature) {
  for (const auto& k : {key("ec.pem"), key("ed.pem"), key("rsa.pem"), hmac_key()}) {
    const char* alg = oauth2::jwt_alg_name(k->alg());
    JwtKeys keys = set_of({k});
    auto p = split(sign(*k, kClaims));

    std::string other_claims = kClaims;
    other_claims.replace(other_claims.find("alice"), 5, "admin");
    EXPECT_EQ(verify(keys, p[0] + "." + b64(other_claims) + "." + p[2]), JwtStatus::kBadSignature)
        << alg;

    std::string header = unb64(p[0]);
    header.insert(header.size() - 1, ",\"x\":1");
    EXPECT_EQ(verify(keys, b64(header) + "." + p[1] + "." + p[2]), JwtStatus::kBadSignature) << alg;

    std::string sig = unb64(p[2]);
    sig[sig.size() / 2] ^= 0x01;
    EXPECT_EQ(verify(keys, p[0] + "." + p[1] + "." + b64(sig)), JwtStatus::kBadSignature) << alg;
    EXPECT_EQ(verify(keys, p[0] + "." + p[1] + "."), JwtStatus::kBadSignature) << alg;
    EXPECT_EQ(verify(keys, p[0] + "." + p[1] + "." + b64(sig + "x")), JwtStatus::kBadSignature)
        << alg;
  }
}

TEST(JwtVerify, EverySingleCharacterChangeIsRefused) {
  for (const auto& k : {key("ec.pem"), hmac_key()}) {
    JwtKeys keys = set_of({k});
    std::string token = sign(*k, kClaims);
    for (size_t i = 0; i < token.size(); i++) {
      for (char c : {'A', 'g', '_', '.', '='}) {
        if (token[i] == c) continue;
        std::string t = token;
        t[i] = c;
        JwtStatus s = JwtStatus::kOk;
        EXPECT_NO_THROW(s = verify(keys, t));
        EXPECT_NE(s, JwtStatus::kOk) << t;
      }
      std::string cut = token;
      cut.erase(i, 1);
      EXPECT_NE(verify(keys, cut), JwtStatus::kOk) << cut;
    }
  }
}

TEST(JwtVerify, Es256DerSignatureIsRefused) {
  auto k = key("ec.pem");
  auto p = split(sign(*k, kClaims));
  std::string raw = unb64(p[2]);
  EXPECT_EQ(verify(set_of({k}), p[0] + "." + p[1] + "." + b64(raw_to_der(raw))),
            JwtStatus::kBadSignature);
  EXPECT_EQ(verify(set_of({k}), p[0] + "." + p[1] + "." + b64(raw.substr(0, 63))),
            JwtStatus::kBadSignature);
}

// A valid signature with a byte after it, or a zero before it, is another
// spelling of the same signed token: refused for every algorithm (RFC 7518
// 3.4: R || S, 64 bytes; 3.3 and RFC 8017 8.2.2: exactly the modulus's
// length), though ECDSA would read its first 64 bytes and RSA a number.
TEST(JwtVerify, AValidSignatureWithAByteMoreIsRefused) {
  for (const auto& k : {key("ec.pem"), key("ed.pem"), key("rsa.pem"), hmac_key()}) {
    const char* alg = oauth2::jwt_alg_name(k->alg());
    JwtKeys keys = set_of({k});
    auto p = split(sign(*k, kClaims));
    const std::string sig = unb64(p[2]);
    ASSERT_EQ(verify(keys, p[0] + "." + p[1] + "." + b64(sig)), JwtStatus::kOk) << alg;
    EXPECT_EQ(verify(keys, p[0] + "." + p[1] + "." + b64(sig + std::string(1, '\0'))),
              JwtStatus::kBadSignature)
        << alg;
    EXPECT_EQ(verify(keys, p[0] + "." + p[1] + "." + b64(sig + "x")), JwtStatus::kBadSignature)
        << alg;
  }
}

// RS256: a signature whose first byte is 0 still verifies as a number
// without it (OpenSSL reads it so); the short spelling is refused.
TEST(JwtVerify, Rs256SignatureWithoutItsLeadingZeroIsRefused) {
  auto k = key("rsa.pem");
  JwtKeys keys = set_of({k});
  for (int i = 0; i < 4096; i++) {
    const std::string claims =
        "{\"sub\":\"alice\",\"n\":" + std::to_string(i) + ",\"exp\":1700000600,\"iat\":1700000000}";
    auto p = split(sign(*k, claims));
    const std::string sig = unb64(p[2]);
    if (sig[0] != '\0') continue;
    ASSERT_EQ(verify(keys, p[0] + "." + p[1] + "." + b64(sig)), JwtStatus::kOk);
    EXPECT_EQ(verify(keys, p[0] + "." + p[1] + "." + b64(sig.substr(1))), JwtStatus::kBadSignature);
    return;
  }
  FAIL() << "no RS256 signature began with a zero byte in 4096 tries";
}

TEST(JwtVerify, AlgNoneIsNeverAccepted) {
  for (const auto& k : {key("ec.pem"), key("rsa.pem"), hmac_key()}) {
    JwtKeys keys = set_of({k});
    for (const char* none : {"none", "None", "NONE"}) {
      for (const std::string& kid : {",\"kid\":\"" + k->kid() + "\"", std::string()}) {
        std::string h = std::string("{\"alg\":\"") + none + "\"" + kid + "}";
        for (const std::string& sig : {std::string(), b64("x")}) {
          JwtStatus s = verify(keys, b64(h) + "." + b64(kClaims) + "." + sig);
          EXPECT_TRUE(s == JwtStatus::kBadSignature || s == JwtStatus::kMalformed) << h;
        }
      }
    }
    // no alg at all, or not a string
    EXPECT_EQ(verify(keys, craft_hs256("{\"kid\":\"" + k->kid() + "\"}", kClaims)),
              JwtStatus::kMalformed);
    EXPECT_EQ(verify(keys, craft_hs256("{\"alg\":null}", kClaims)), JwtStatus::kMalformed);
  }
}

TEST(JwtVerify, HmacWithTheRsaPublicKeyAsSecretIsRefused) {
  // The classic confusion: a verifier that takes "alg" from the token
  // would HMAC with the RSA public key bytes it has, which anyone has.
  auto k = key("rsa.pem");
  JwtKeys keys = set_of({k});
  std::string pem = oauth2_test::read_file(files().path("rsa_pub.pem"));
  for (const std::string& secret : {pem, pem.substr(0, pem.size() - 1)}) {
    for (const std::string& kid : {",\"kid\":\"" + k->kid() + "\"", std::string()}) {
      std::string t = craft_hs256("{\"alg\":\"HS256\"" + kid + "}", kClaims, secret);
      EXPECT_EQ(verify(keys, t), JwtStatus::kBadSignature);
    }
  }
  // and an ES256 signature relabelled RS256 or EdDSA
  auto ec = key("ec.pem");
  auto p = split(sign(*ec, kClaims));
  for (const char* alg : {"RS256", "EdDSA", "HS256"}) {
    std::string h = std::string("{\"alg\":\"") + alg + "\",\"kid\":\"" + ec->kid() + "\"}";
    EXPECT_EQ(verify(set_of({ec, k}), b64(h) + "." + p[1] + "." + p[2]), JwtStatus::kBadSignature)
        << alg;
  }
}

TEST(JwtVerify, KidSelectsTheKey) {
  auto a = key("ec.pem"), b = key("ec2.pem"), h = hmac_key();
  JwtKeys both = set_of({a, b, h});
  std::string ta = sign(*a, kClaims), tb = sign(*b, kClaims);
  auto ra = oauth2::jwt_verify(both, ta, at(kNow));
  auto rb = oauth2::jwt_verify(both, tb, at(kNow));
  EXPECT_EQ(ra.status, JwtStatus::kOk);
  EXPECT_EQ(ra.key, a.get());
  EXPECT_EQ(rb.status, JwtStatus::kOk);
  EXPECT_EQ(rb.key, b.get());

  // b removed: its tokens name a key the set no longer has
  EXPECT_EQ(verify(set_of({a, h}), tb), JwtStatus::kUnknownKey);
  EXPECT_EQ(verify(JwtKeys(), ta), JwtStatus::kUnknownKey);

  // a's signature under b's kid
  auto p = split(ta);
  std::string h_b = "{\"alg\":\"ES256\",\"kid\":\"" + b->kid() + "\"}";
  EXPECT_EQ(verify(both, b64(h_b) + "." + p[1] + "." + p[2]), JwtStatus::kBadSignature);

  // kid must be a string
  EXPECT_EQ(verify(set_of({h}), craft_hs256("{\"alg\":\"HS256\",\"kid\":1}", kClaims)),
            JwtStatus::kMalformed);
}

TEST(JwtVerify, NoKidOnlyWithAOneKeySet) {
  auto h = hmac_key();
  std::string t = craft_hs256("{\"alg\":\"HS256\"}", kClaims);
  EXPECT_EQ(verify(set_of({h}), t), JwtStatus::kOk);
  EXPECT_EQ(verify(set_of({h, key("ec.pem")}), t), JwtStatus::kUnknownKey);
  EXPECT_EQ(verify(set_of({key("ec.pem"), h}), t), JwtStatus::kUnknownKey);
}

TEST(JwtVerify, RotationSignsWithTheFirstAndVerifiesWithAll) {
  auto old_key = key("ec.pem"), new_key = key("ed.pem");
  JwtKeys before = set_of({old_key});
  std::string old_token = sign(*before.signer(), kClaims);
  JwtKeys after = set_of({new_key, old_key});
  EXPECT_EQ(after.signer(), new_key.get());
  EXPECT_EQ(verify(after, old_token), JwtStatus::kOk);
  EXPECT_EQ(verify(after, sign(*after.signer(), kClaims)), JwtStatus::kOk);

  // a verify-only key first does not become the signer
  JwtKeys pub_first = set_of({load("rsa_pub.pem"), old_key});
  EXPECT_EQ(pub_first.signer(), old_key.get());
}

TEST(JwtVerify, DuplicateKidOrNullKeyIsRefused) {
  JwtKeys keys = set_of({key("ec.pem")});
  EXPECT_THROW(keys.add(load("ec_pub.pem")), std::runtime_error);
  EXPECT_THROW(keys.add(nullptr), std::invalid_argument);
  EXPECT_EQ(keys.find(key("ec.pem")->kid()), key("ec.pem").get());
  EXPECT_EQ(keys.find("nope"), nullptr);
  EXPECT_FALSE(keys.empty());
  EXPECT_TRUE(JwtKeys().empty());
}

TEST(JwtVerify, CritIsRefused) {
  JwtKeys keys = set_of({hmac_key()});
  EXPECT_EQ(verify(keys, craft_hs256("{\"alg\":\"HS256\",\"crit\":[\"b64\"],"
                                     "\"b64\":false}",
                                     kClaims)),
            JwtStatus::kMalformed);
  EXPECT_EQ(verify(keys, craft_hs256("{\"alg\":\"HS256\",\"crit\":[]}", kClaims)),
            JwtStatus::kMalformed);
}

TEST(JwtVerify, MalformedTokens) {
  JwtKeys keys = set_of({hmac_key()});
  std::string good = sign(*hmac_key(), kClaims);
  ASSERT_EQ(verify(keys, good), JwtStatus::kOk);
  auto p = split(good);
  const std::string h_ok = "{\"alg\":\"HS256\"}";

  std::vector<std::string> bad = {
      "",
      ".",
      "..",
      "...",
      p[0] + "." + p[1],
      p[0] + "." + p[1] + "." + p[2] + "." + p[2],
      p[0] + "." + p[1] + "." + p[2] + ".",
      p[0] + "=." + p[1] + "." + p[2],
      p[0] + "." + p[1] + "=." + p[2],
      p[0] + "." + p[1] + "." + p[2] + "=",
      p[0] + "." + p[1] + "*." + p[2],
      p[0] + "." + p[1] + "." + p[2] + "+",
      p[0] + "." + p[1] + "/." + p[2],
      " " + good,
      good + " ",
      good + "\n",
      p[0] + ".\n" + p[1] + "." + p[2],
      p[0] + "." + p[1] + ". " + p[2],
      oauth2_test::bytes("a\0.b.c"),
      "." + p[1] + "." + p[2],
      p[0] + ".." + p[2],
      // header not an object, not JSON, trailing garbage, duplicates
      craft_hs256("[\"alg\",\"HS256\"]", kClaims),
      craft_hs256("\"HS256\"", kClaims),
      craft_hs256("1", kClaims),
      craft_hs256("null", kClaims),
      craft_hs256("", kClaims),
      craft_hs256("{\"alg\":\"HS256\"", kClaims),
      craft_hs256("{\"alg\":\"HS256\"}x", kClaims),
      craft_hs256("{\"alg\":\"HS256\"}{}", kClaims),
      craft_hs256("{'alg':'HS256'}", kClaims),
      craft_hs256("{\"alg\":\"HS256\",\"alg\":\"HS256\"}", kClaims),
      craft_hs256("{\"alg\":\"HS256\",\"x\":\"\\u0000\"}", kClaims),
      craft_hs256("{\"alg\":\"HS256\",\"x\":" + std::string(16, '[') + std::string(16, ']') + "}",
                  kClaims),
      craft_hs256("\xef\xbb\xbf" + h_ok, kClaims),
      // payload (correctly MACed) not an object, duplicated, too deep
      craft_hs256(h_ok, "[]"),
      craft_hs256(h_ok, "\"claims\""),
      craft_hs256(h_ok, ""),
      craft_hs256(h_ok, "{\"exp\":1700000600,\"sub\":\"a\",\"sub\":\"b\"}"),
      craft_hs256(h_ok, "{\"exp\":1700000600,\"x\":" + std::string(100000, '[') + "}"),
      craft_hs256(h_ok, "{\"exp\":1700000600}trailing"),
  };
  for (const auto& t : bad) {
    JwtStatus s = JwtStatus::kOk;
    EXPECT_NO_THROW(s = verify(keys, t));
    EXPECT_EQ(s, JwtStatus::kMalformed) << t.substr(0, 200);
  }
  // 15 levels inside the header object make 16: still accepted
  EXPECT_EQ(verify(keys, craft_hs256("{\"alg\":\"HS256\",\"x\":" + std::string(15, '[') +
                                         std::string(15, ']') + "}",
                                     kClaims)),
            JwtStatus::kOk);
}

TEST(JwtVerify, SizeLimitIs8192Bytes) {
  auto k = hmac_key();
  JwtKeys keys = set_of({k});
  std::string at_limit;
  for (int typ_len = 0; typ_len < 4 && at_limit.empty(); typ_len++) {
    for (size_t n = 8000; n > 5000; n--) {
      std::string claims = "{\"exp\":1700000600,\"x\":\"" + std::string(n, 'a') + "\"}";
      try {
        std::string t = sign(*k, claims, std::string(typ_len, 't'));
        if (t.size() == oauth2::kJwtMaxBytes) at_limit = t;
        if (t.size() <= oauth2::kJwtMaxBytes) break;
      } catch (const std::length_error&) {
        continue;  // jwt_sign refuses what verify would refuse
      }
    }
  }
  ASSERT_EQ(at_limit.size(), 8192u);
  EXPECT_EQ(verify(keys, at_limit), JwtStatus::kOk);

  std::string over = craft_hs256("{\"alg\":\"HS256\"}",
                                 "{\"exp\":1700000600,\"x\":\"" + std::string(6700, 'a') + "\"}");
  ASSERT_GE(over.size(), 9000u);
  EXPECT_EQ(verify(keys, over), JwtStatus::kMalformed);
  EXPECT_EQ(verify(keys, std::string(9000, 'A')), JwtStatus::kMalformed);
  EXPECT_EQ(oauth2::jwt_peek_claims(over), nullptr);
}

// --------------------------------------------------------------- claims

class JwtClaims : public ::testing::Test {
 protected:
  std::shared_ptr<JwtKey> k_ = hmac_key();
  JwtKeys keys_ = set_of({k_});

  JwtStatus check(const std::string& claims, JwtCheck c) {
    return oauth2::jwt_verify(keys_, sign(*k_, claims), c).status;
  }
  JwtStatus check(const std::string& claims) { return check(claims, at(kNow)); }
  static std::string exp(int64_t v) { return "{\"exp\":" + std::to_string(v) + "}"; }
};

TEST_F(JwtClaims, ExpiryAtTheLeewayBoundary) {
  EXPECT_EQ(check(exp(kNow - 30)), JwtStatus::kExpired);  // exp <= now-30
  EXPECT_EQ(check(exp(kNow - 29)), JwtStatus::kOk);
  EXPECT_EQ(check(exp(kNow)), JwtStatus::kOk);
  JwtCheck strict = at(kNow);
  strict.leeway = 0;
  EXPECT_EQ(check(exp(kNow), strict), JwtStatus::kExpired);
  EXPECT_EQ(check(exp(kNow + 1), strict), JwtStatus::kOk);
  strict.leeway = -100;  // treated as none
  EXPECT_EQ(check(exp(kNow), strict), JwtStatus::kExpired);
  EXPECT_EQ(check(exp(kNow + 1), strict), JwtStatus::kOk);
}

TEST_F(JwtClaims, ClaimsComeBackEvenWhenExpired) {
  auto r = oauth2::jwt_verify(keys_, sign(*k_, "{\"exp\":1,\"sub\":\"bob\"}"), at(kNow));
  EXPECT_EQ(r.status, JwtStatus::kExpired);
  ASSERT_NE(r.claims, nullptr);
  EXPECT_STREQ(json_string_value(json_object_get(r.claims.get(), "sub")), "bob");
  EXPECT_EQ(r.key, k_.get());
}

TEST_F(JwtClaims, NbfAndIatAtTheLeewayBoundary) {
  auto with = [](const char* name, int64_t v) {
    return "{\"exp\":1700000600,\"" + std::string(name) + "\":" + std::to_string(v) + "}";
  };
  for (const char* name : {"nbf", "iat"}) {
    EXPECT_EQ(check(with(name, kNow + 30)), JwtStatus::kOk) << name;
    EXPECT_EQ(check(with(name, kNow + 31)), JwtStatus::kNotYetValid) << name;
    EXPECT_EQ(check(with(name, kNow)), JwtStatus::kOk) << name;
    EXPECT_EQ(check(with(name, 0)), JwtStatus::kOk) << name;
  }
}

TEST_F(JwtClaims, TimesMustBeIntegers) {
  for (const std::string& v :
       {std::string("\"1700000600\""), std::string("1700000600.0"), std::string("1.7e9"),
        std::string("null"), std::string("true"), std::string("[1]")}) {
    EXPECT_EQ(check("{\"exp\":" + v + "}"), JwtStatus::kMalformed) << v;
    EXPECT_EQ(check("{\"exp\":1700000600,\"nbf\":" + v + "}"), JwtStatus::kMalformed) << v;
    EXPECT_EQ(check("{\"exp\":1700000600,\"iat\":" + v + "}"), JwtStatus::kMalformed) << v;
  }
  // beyond int64: jansson refuses to parse it
  EXPECT_EQ(verify(keys_, craft_hs256("{\"alg\":\"HS256\"}", "{\"exp\":99999999999999999999999}")),
            JwtStatus::kMalformed);
}

TEST_F(JwtClaims, ExpIsRequiredUnlessTheCallerChecksIt) {
  EXPECT_EQ(check("{\"sub\":\"a\"}"), JwtStatus::kMalformed);
  JwtCheck c = at(kNow);
  c.check_exp = false;
  EXPECT_EQ(check("{\"sub\":\"a\"}", c), JwtStatus::kOk);
  EXPECT_EQ(check(exp(1), c), JwtStatus::kOk);
  EXPECT_EQ(check("{\"exp\":\"soon\"}", c), JwtStatus::kMalformed);
}

TEST_F(JwtClaims, ExtremeTimesDoNotOverflow) {
  const int64_t max = std::numeric_limits<int64_t>::max();
  const int64_t min = std::numeric_limits<int64_t>::min();
  EXPECT_EQ(check(exp(max)), JwtStatus::kOk);
  EXPECT_EQ(check(exp(min)), JwtStatus::kExpired);
  JwtCheck late = at(max);
  late.leeway = max;
  EXPECT_EQ(check(exp(max), late), JwtStatus::kOk);
  JwtCheck early = at(min);
  early.leeway = max;
  EXPECT_EQ(check(exp(min), early), JwtStatus::kExpired);
  EXPECT_EQ(
      check("{\"exp\":" + std::to_string(max) + ",\"nbf\":" + std::to_string(max) + "}", late),
      JwtStatus::kOk);
}

TEST_F(JwtClaims, Issuer) {
  JwtCheck c = at(kNow);
  c.issuer = "https://as.example";
  EXPECT_EQ(check(kClaims, c), JwtStatus::kOk);
  EXPECT_EQ(check("{\"exp\":1700000600,\"iss\":\"https://as.example/\"}", c),
            JwtStatus::kWrongIssuer);
  EXPECT_EQ(check("{\"exp\":1700000600,\"iss\":\"HTTPS://as.example\"}", c),
            JwtStatus::kWrongIssuer);
  EXPECT_EQ(check("{\"exp\":1700000600}", c), JwtStatus::kWrongIssuer);
  EXPECT_EQ(check("{\"exp\":1700000600,\"iss\":[\"https://as.example\"]}", c),
            JwtStatus::kWrongIssuer);
}

TEST_F(JwtClaims, AudienceStringOrArray) {
  JwtCheck c = at(kNow);
  c.audience = "api";
  EXPECT_EQ(check(kClaims, c), JwtStatus::kOk);
  EXPECT_EQ(check("{\"exp\":1700000600,\"aud\":[\"other\",\"api\"]}", c), JwtStatus::kOk);
  EXPECT_EQ(check("{\"exp\":1700000600,\"aud\":[\"other\"]}", c), JwtStatus::kWrongAudience);
  EXPECT_EQ(check("{\"exp\":1700000600,\"aud\":[]}", c), JwtStatus::kWrongAudience);
  EXPECT_EQ(check("{\"exp\":1700000600,\"aud\":\"apis\"}", c), JwtStatus::kWrongAudience);
  EXPECT_EQ(check("{\"exp\":1700000600,\"aud\":[[\"api\"]]}", c), JwtStatus::kWrongAudience);
  EXPECT_EQ(check("{\"exp\":1700000600,\"aud\":{\"api\":1}}", c), JwtStatus::kWrongAudience);
  EXPECT_EQ(check("{\"exp\":1700000600}", c), JwtStatus::kWrongAudience);
  // not checked when the caller gives none
  EXPECT_EQ(check("{\"exp\":1700000600,\"aud\":\"x\"}"), JwtStatus::kOk);
}

TEST_F(JwtClaims, TypIsCaseInsensitiveWithOptionalApplicationPrefix) {
  JwtCheck c = at(kNow);
  c.typ = "at+jwt";
  auto with_typ = [&](const std::string& typ) {
    return oauth2::jwt_verify(keys_, sign(*k_, kClaims, typ), c).status;
  };
  EXPECT_EQ(with_typ("at+jwt"), JwtStatus::kOk);
  EXPECT_EQ(with_typ("AT+JWT"), JwtStatus::kOk);
  EXPECT_EQ(with_typ("application/at+jwt"), JwtStatus::kOk);
  EXPECT_EQ(with_typ("Application/At+Jwt"), JwtStatus::kOk);
  EXPECT_EQ(with_typ("JWT"), JwtStatus::kWrongType);
  EXPECT_EQ(with_typ("application/jwt"), JwtStatus::kWrongType);
  EXPECT_EQ(with_typ("text/at+jwt"), JwtStatus::kWrongType);
  EXPECT_EQ(with_typ("at+jwt "), JwtStatus::kWrongType);
  EXPECT_EQ(with_typ(""), JwtStatus::kWrongType);  // typ absent
  std::string num_typ = craft_hs256("{\"alg\":\"HS256\",\"kid\":\"hmac-1\",\"typ\":1}", kClaims);
  EXPECT_EQ(verify(keys_, num_typ, c), JwtStatus::kWrongType);
  EXPECT_EQ(verify(keys_, num_typ), JwtStatus::kOk);  // unchecked
}

// ------------------------------------------------------------------ peek

TEST(JwtPeek, ReadsClaimsWithoutVerifying) {
  std::string t = sign(*hmac_key(), kClaims);
  Json c = oauth2::jwt_peek_claims(t);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(oauth2::json_text(c.get(), JSON_COMPACT), kClaims);
  auto p = split(t);
  EXPECT_NE(oauth2::jwt_peek_claims(p[0] + "." + p[1] + ".AAAA"), nullptr);
  for (const std::string& bad :
       {p[0] + "." + p[1], std::string(""), p[0] + "." + p[1] + "=." + p[2],
        p[0] + "." + b64("[1]") + "." + p[2], p[0] + "." + b64("{\"a\":1,\"a\":2}") + "." + p[2],
        p[0] + "." + b64(std::string(40, '[')) + "." + p[2], p[0] + "*." + p[1] + "." + p[2]}) {
    EXPECT_EQ(oauth2::jwt_peek_claims(bad), nullptr) << bad;
  }
}

// ------------------------------------------------- the openssl CLI agrees

class JwtCli : public ::testing::Test {
 protected:
  TempDir tmp_;
  std::string file(const std::string& name, std::string_view data) {
    std::string p = tmp_.path() + "/" + name;
    write_file(p, data);
    return p;
  }
  std::string read(const std::string& name) {
    return oauth2_test::read_file(tmp_.path() + "/" + name);
  }
};

TEST_F(JwtCli, Es256TokenVerifiesWithOpensslDgst) {
  std::string token = sign(*key("ec.pem"), kClaims);
  std::string in = file("in", signing_input(token));
  std::string sig = file("sig", raw_to_der(unb64(split(token)[2])));
  std::string pub = files().path("ec_pub.pem");
  EXPECT_TRUE(run("openssl dgst -sha256 -verify " + pub + " -signature " + sig + " " + in));
  file("in", signing_input(token) + "x");  // the check can fail
  EXPECT_FALSE(run("openssl dgst -sha256 -verify " + pub + " -signature " + sig + " " + in));
}

TEST_F(JwtCli, OpensslSignedEs256TokenVerifies) {
  std::string input =
      b64("{\"alg\":\"ES256\",\"kid\":\"" + key("ec.pem")->kid() + "\"}") + "." + b64(kClaims);
  std::string in = file("in", input);
  ASSERT_TRUE(run("openssl dgst -sha256 -sign " + files().path("ec.pem") + " -out " + tmp_.path() +
                  "/sig " + in));
  // the CLI picks either s; we accept only the low one (one encoding per
  // token), so the high one is refused and its low twin n - s verifies
  std::string raw = der_to_raw(read("sig"));
  std::string s = raw.substr(32);
  std::string low = s < kP256HalfOrder() ? s : p256_negate(s);
  std::string high = p256_negate(low);
  auto ec = set_of({load("ec_pub.pem")});
  EXPECT_EQ(verify(ec, input + "." + b64(raw.substr(0, 32) + low)), JwtStatus::kOk);
  EXPECT_EQ(verify(ec, input + "." + b64(raw.substr(0, 32) + high)), JwtStatus::kBadSignature);
  // a client's signature (a DPoP proof's) is taken with either s: clients
  // send what their library computed, and RFC 7518 3.4 asks for neither
  auto pub = load("ec_pub.pem");
  EXPECT_TRUE(oauth2::jwt_signature_ok(*pub, input, raw.substr(0, 32) + low));
  EXPECT_TRUE(oauth2::jwt_signature_ok(*pub, input, raw.substr(0, 32) + high));
  EXPECT_FALSE(oauth2::jwt_signature_ok(*pub, input + "x", raw.substr(0, 32) + high));
}

TEST_F(JwtCli, Es256SignsWithTheLowS) {
  for (int i = 0; i < 64; i++) {
    std::string sig = unb64(split(sign(*key("ec.pem"), kClaims))[2]);
    ASSERT_EQ(sig.size(), 64u);
    EXPECT_LE(sig.substr(32), kP256HalfOrder()) << "signature " << i;
  }
}

TEST_F(JwtCli, EdDsaTokenVerifiesWithOpensslPkeyutl) {
  std::string token = sign(*key("ed.pem"), kClaims);
  std::string in = file("in", signing_input(token));
  std::string sig = file("sig", unb64(split(token)[2]));
  std::string cmd = "openssl pkeyutl -verify -pubin -inkey " + files().path("ed_pub.pem") +
                    " -rawin -in " + in + " -sigfile " + sig;
  EXPECT_TRUE(run(cmd));
  file("in", "x" + signing_input(token));
  EXPECT_FALSE(run(cmd));
}

TEST_F(JwtCli, OpensslSignedEdDsaTokenVerifies) {
  std::string input = b64("{\"alg\":\"EdDSA\"}") + "." + b64(kClaims);
  std::string in = file("in", input);
  ASSERT_TRUE(run("openssl pkeyutl -sign -inkey " + files().path("ed.pem") + " -rawin -in " + in +
                  " -out " + tmp_.path() + "/sig"));
  std::string token = input + "." + b64(read("sig"));
  EXPECT_EQ(verify(set_of({load("ed_pub.pem")}), token), JwtStatus::kOk);
}

TEST_F(JwtCli, Rs256SignatureEqualsOpensslDgst) {
  // PKCS #1 v1.5 is deterministic: the bytes must be the same
  std::string token = sign(*key("rsa.pem"), kClaims);
  std::string in = file("in", signing_input(token));
  ASSERT_TRUE(run("openssl dgst -sha256 -sign " + files().path("rsa.pem") + " -out " + tmp_.path() +
                  "/sig " + in));
  EXPECT_EQ(read("sig"), unb64(split(token)[2]));
}

TEST_F(JwtCli, Hs256MacEqualsOpensslMac) {
  std::string secret = hmac_secret();
  std::string token = sign(*hmac_key(), kClaims);
  std::string in = file("in", signing_input(token));
  ASSERT_TRUE(
      run("openssl dgst -sha256 -mac HMAC -macopt hexkey:" +
          oauth2::hex_encode(reinterpret_cast<const unsigned char*>(secret.data()), secret.size()) +
          " -binary -out " + tmp_.path() + "/mac " + in));
  EXPECT_EQ(read("mac"), unb64(split(token)[2]));
}

// ------------------------------------------------------ RFC test vectors

TEST(JwtRfc, Rfc7515AppendixA1Hs256) {
  const std::string k =
      "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hc"
      "gUuTwjAzZr1Z9CAow";
  const std::string token =
      "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
      ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxl"
      "LmNvbS9pc19yb290Ijp0cnVlfQ"
      ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
  JwtKeys keys = set_of({JwtKey::hmac(unb64(k), "a1")});
  JwtCheck c = at(1300819380 - 60);
  c.issuer = "joe";
  c.typ = "JWT";
  auto r = oauth2::jwt_verify(keys, token, c);
  ASSERT_EQ(r.status, JwtStatus::kOk);
  EXPECT_TRUE(json_is_true(json_object_get(r.claims.get(), "http://example.com/is_root")));
  EXPECT_EQ(verify(keys, token, at(1300819380 + 30)), JwtStatus::kExpired);
  EXPECT_EQ(verify(keys, token, at(1300819380 + 29)), JwtStatus::kOk);
  EXPECT_EQ(verify(set_of({JwtKey::hmac(unb64(k) + "x", "a1")}), token, at(1300819380 - 60)),
            JwtStatus::kBadSignature);
}

TEST(JwtRfc, Rfc7638ThumbprintIsTheKid) {
  const std::string n =
      "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7"
      "aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBX"
      "Arwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9"
      "c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM"
      "4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
  std::string n_bytes = unb64(n), e_bytes = unb64("AQAB");
  // a PEM public key made from n and e by OpenSSL, then loaded as a file
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  BIGNUM* bn_n = BN_bin2bn(reinterpret_cast<const unsigned char*>(n_bytes.data()),
                           static_cast<int>(n_bytes.size()), nullptr);
  BIGNUM* bn_e = BN_bin2bn(reinterpret_cast<const unsigned char*>(e_bytes.data()),
                           static_cast<int>(e_bytes.size()), nullptr);
  OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n);
  OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e);
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr);
  EVP_PKEY* pk = nullptr;
  ASSERT_EQ(EVP_PKEY_fromdata_init(ctx), 1);
  ASSERT_EQ(EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params), 1);
  TempDir tmp;
  std::string path = tmp.path() + "/rfc7638.pem";
  FILE* f = fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(PEM_write_PUBKEY(f, pk), 1);
  fclose(f);
  EVP_PKEY_free(pk);
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  BN_free(bn_n);
  BN_free(bn_e);

  auto k = JwtKey::load_file(path, false);
  EXPECT_EQ(k->kid(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
  EXPECT_EQ(k->alg(), JwtAlg::kRS256);
  EXPECT_FALSE(k->can_sign());
  EXPECT_EQ(set_of({k}).jwks_json(),
            "{\"keys\":[{\"e\":\"AQAB\",\"kty\":\"RSA\",\"n\":\"" + n +
                "\",\"kid\":\"NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs\","
                "\"alg\":\"RS256\",\"use\":\"sig\"}]}");
}

// ----------------------------------------------------------------- JWKS

// The public key bytes at the end of the DER SubjectPublicKeyInfo the
// openssl CLI writes: 04||x||y for P-256, x for Ed25519.
std::string cli_public_point(const std::string& pem, size_t n) {
  TempDir tmp;
  std::string der = tmp.path() + "/pub.der";
  if (!run("openssl pkey -pubin -in " + pem + " -outform DER -out " + der)) {
    throw std::runtime_error("openssl pkey failed");
  }
  std::string bytes = oauth2_test::read_file(der);
  return bytes.substr(bytes.size() - n);
}

TEST(JwtJwks, PublishesPublicMembersOfAsymmetricKeysOnly) {
  auto ec = key("ec.pem"), ed = key("ed.pem"), rsa = key("rsa.pem");
  JwtKeys keys = set_of({hmac_key(), ec, ed, rsa});
  Json jwks = parse(keys.jwks_json());
  ASSERT_TRUE(json_is_object(jwks.get()));
  EXPECT_EQ(json_object_size(jwks.get()), 1u);
  json_t* arr = json_object_get(jwks.get(), "keys");
  ASSERT_EQ(json_array_size(arr), 3u);  // no HS256 key

  auto member = [](json_t* jwk, const char* name) {
    json_t* v = json_object_get(jwk, name);
    return std::string(v && json_is_string(v) ? json_string_value(v) : "");
  };
  auto names = [](json_t* jwk) {
    std::string out;
    const char* name;
    json_t* v;
    json_object_foreach(jwk, name, v) out += std::string(name) + ",";
    return out;
  };
  json_t* e = json_array_get(arr, 0);
  EXPECT_EQ(names(e), "crv,kty,x,y,kid,alg,use,");
  EXPECT_EQ(member(e, "kty"), "EC");
  EXPECT_EQ(member(e, "crv"), "P-256");
  EXPECT_EQ(member(e, "kid"), ec->kid());
  EXPECT_EQ(member(e, "alg"), "ES256");
  EXPECT_EQ(member(e, "use"), "sig");
  EXPECT_EQ(unb64(member(e, "x")) + unb64(member(e, "y")),
            cli_public_point(files().path("ec_pub.pem"), 64));

  json_t* o = json_array_get(arr, 1);
  EXPECT_EQ(names(o), "crv,kty,x,kid,alg,use,");
  EXPECT_EQ(member(o, "kty"), "OKP");
  EXPECT_EQ(member(o, "crv"), "Ed25519");
  EXPECT_EQ(member(o, "alg"), "EdDSA");
  EXPECT_EQ(unb64(member(o, "x")), cli_public_point(files().path("ed_pub.pem"), 32));

  json_t* r = json_array_get(arr, 2);
  EXPECT_EQ(names(r), "e,kty,n,kid,alg,use,");
  EXPECT_EQ(member(r, "kty"), "RSA");
  EXPECT_EQ(member(r, "e"), "AQAB");
  EXPECT_EQ(unb64(member(r, "n")).size(), 256u);  // no leading zero byte
  EXPECT_EQ(member(r, "alg"), "RS256");

  // RFC 7638 over the published members gives each kid
  for (json_t* jwk : {e, o, r}) {
    std::string canonical;
    if (member(jwk, "kty") == "EC") {
      canonical = "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"" + member(jwk, "x") + "\",\"y\":\"" +
                  member(jwk, "y") + "\"}";
    } else if (member(jwk, "kty") == "OKP") {
      canonical = "{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"" + member(jwk, "x") + "\"}";
    } else {
      canonical = "{\"e\":\"AQAB\",\"kty\":\"RSA\",\"n\":\"" + member(jwk, "n") + "\"}";
    }
    auto d = oauth2::sha256(canonical);
    EXPECT_EQ(member(jwk, "kid"), oauth2::base64url_encode(d.data(), d.size()));
  }

  // no private or secret material anywhere in the text
  std::string text = keys.jwks_json();
  for (const char* secret_member : {"\"d\"", "\"p\"", "\"q\"", "\"k\"", "\"dp\"", "\"qi\""}) {
    EXPECT_EQ(text.find(secret_member), std::string::npos) << secret_member;
  }
  EXPECT_EQ(text.find(hmac_secret()), std::string::npos);
  EXPECT_EQ(text.find("hmac-1"), std::string::npos);
}

TEST(JwtJwks, EmptyWithoutAsymmetricKeys) {
  EXPECT_EQ(JwtKeys().jwks_json(), "{\"keys\":[]}");
  EXPECT_EQ(set_of({hmac_key()}).jwks_json(), "{\"keys\":[]}");
}

// ------------------------------------------------------ a client's JWK

std::string bn_b64(const EVP_PKEY* pk, const char* name, int pad) {
  BIGNUM* b = nullptr;
  if (EVP_PKEY_get_bn_param(pk, name, &b) != 1) throw std::runtime_error(name);
  std::string out(pad ? pad : BN_num_bytes(b), '\0');
  BN_bn2binpad(b, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(out.size()));
  BN_free(b);
  return b64(out);
}

Json rsa_jwk(int bits) {
  EVP_PKEY* pk = EVP_RSA_gen(static_cast<unsigned>(bits));
  if (!pk) throw std::runtime_error("EVP_RSA_gen");
  Json j(json_object());
  json_object_set_new(j.get(), "kty", json_string("RSA"));
  json_object_set_new(j.get(), "n", json_string(bn_b64(pk, OSSL_PKEY_PARAM_RSA_N, 0).c_str()));
  json_object_set_new(j.get(), "e", json_string(bn_b64(pk, OSSL_PKEY_PARAM_RSA_E, 0).c_str()));
  EVP_PKEY_free(pk);
  return j;
}

// RFC 7518 3.3: an RSA key of less than 2048 bits is refused, saying so
TEST(JwtFromJwk, RsaOf1024BitsIsRefusedAnd2048Taken) {
  std::string why;
  EXPECT_EQ(oauth2::jwt_key_from_jwk(rsa_jwk(1024).get(), &why), nullptr);
  EXPECT_NE(why.find("2048"), std::string::npos) << why;
  why.clear();
  auto k = oauth2::jwt_key_from_jwk(rsa_jwk(2048).get(), &why);
  ASSERT_NE(k, nullptr) << why;
  EXPECT_EQ(k->alg(), JwtAlg::kRS256);
}

// A key from a request costs what its n and e make a verification cost:
// n over 4096 bits (OpenSSL takes 16384) and an e other than an odd one
// of at most 4 bytes (OpenSSL takes 8) are refused before any signature
TEST(JwtFromJwk, RsaOfMoreThan4096BitsOrALargeExponentIsRefused) {
  std::string why;
  auto jwk = [](const std::string& n, const std::string& e) {
    Json j(json_object());
    json_object_set_new(j.get(), "kty", json_string("RSA"));
    json_object_set_new(j.get(), "n", json_string(b64(n).c_str()));
    json_object_set_new(j.get(), "e", json_string(b64(e).c_str()));
    return j;
  };
  auto modulus = [](size_t bytes, unsigned char first) {
    std::string n(bytes, '\x5b');
    n[0] = static_cast<char>(first);
    n.back() = '\x01';  // odd
    return n;
  };
  const std::string e65537("\x01\x00\x01", 3);
  ASSERT_NE(oauth2::jwt_key_from_jwk(jwk(modulus(512, 0xc1), e65537).get(), &why), nullptr)
      << "4096 bits: " << why;
  ASSERT_NE(oauth2::jwt_key_from_jwk(
                jwk(modulus(256, 0xc1), std::string("\x7f\xff\xff\xff", 4)).get(), &why),
            nullptr)
      << "an odd e of 4 bytes: " << why;
  for (const auto& [name, n, e] : std::vector<std::tuple<const char*, std::string, std::string>>{
           {"4097 bits", modulus(513, 0x01), e65537},
           {"16384 bits", modulus(2048, 0xc1), e65537},
           {"an e of 5 bytes", modulus(256, 0xc1), std::string("\x01\x00\x00\x00\x01", 5)},
           {"an e of 8 bytes", modulus(256, 0xc1), std::string(8, '\xff')},
           {"an even e", modulus(256, 0xc1), std::string("\x01\x00\x00", 3)},
           {"e of 1", modulus(256, 0xc1), std::string("\x01", 1)},
       }) {
    why.clear();
    EXPECT_EQ(oauth2::jwt_key_from_jwk(jwk(n, e).get(), &why), nullptr) << name;
    EXPECT_FALSE(why.empty()) << name;
  }
}

// An EC public key whose point is not on P-256 (its y changed) is refused:
// signatures checked against it would leak the signer's secrets to an
// invalid-curve attack
TEST(JwtFromJwk, EcPointOffTheCurveIsRefused) {
  EVP_PKEY* pk = EVP_EC_gen("P-256");
  ASSERT_NE(pk, nullptr);
  const std::string x = bn_b64(pk, OSSL_PKEY_PARAM_EC_PUB_X, 32);
  std::string y;
  ASSERT_TRUE(oauth2::b64url_decode(bn_b64(pk, OSSL_PKEY_PARAM_EC_PUB_Y, 32), y));
  EVP_PKEY_free(pk);
  auto jwk = [&](const std::string& yy) {
    Json j(json_object());
    json_object_set_new(j.get(), "kty", json_string("EC"));
    json_object_set_new(j.get(), "crv", json_string("P-256"));
    json_object_set_new(j.get(), "x", json_string(x.c_str()));
    json_object_set_new(j.get(), "y", json_string(b64(yy).c_str()));
    return j;
  };
  std::string why;
  ASSERT_NE(oauth2::jwt_key_from_jwk(jwk(y).get(), &why), nullptr) << why;
  std::string off = y;
  off[31] ^= 0x01;
  why.clear();
  EXPECT_EQ(oauth2::jwt_key_from_jwk(jwk(off).get(), &why), nullptr);
  EXPECT_NE(why.find("not a point of P-256"), std::string::npos) << why;
}

// ------------------------------------------------------------- threads

TEST(JwtThreads, OneKeySetSignsAndVerifiesFromManyThreads) {
  JwtKeys keys = set_of({key("ec.pem"), key("ed.pem"), key("rsa.pem"), hmac_key()});
  std::vector<const JwtKey*> all = {keys.find(key("ec.pem")->kid()),
                                    keys.find(key("ed.pem")->kid()),
                                    keys.find(key("rsa.pem")->kid()), keys.find("hmac-1")};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; t++) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 60; i++) {
        const JwtKey* k = all[(t + i) % all.size()];
        std::string claims = "{\"exp\":1700000600,\"n\":" + std::to_string(t * 1000 + i) + "}";
        std::string token = sign(*k, claims);
        auto r = oauth2::jwt_verify(keys, token, at(kNow));
        if (r.status != JwtStatus::kOk || r.key != k) failures++;
        std::string bad = token;
        bad[bad.size() / 2] = bad[bad.size() / 2] == 'A' ? 'B' : 'A';
        if (oauth2::jwt_verify(keys, bad, at(kNow)).status == JwtStatus::kOk) {
          failures++;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
