// Unit tests of src/core/jwt beyond jwt_test.cpp: the unused bits of
// base64url, the size of an issued token, the key files (their 64 KiB
// cap, a binary HS256 key's last newline, a private key that does not
// match its public half), a key set in rotation whose old key only
// verifies, OpenSSL's error queue after a forged token or a bad JWK, and
// the checks of a JWK a client sends (DPoP, RFC 9449).  Keys come from
// the openssl CLI, as in jwt_test.cpp.

#include <gtest/gtest.h>
#include <openssl/err.h>

#include <algorithm>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "codec.hpp"
#include "crypto.hpp"
#include "jwt.hpp"
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
const std::string kClaims =
    "{\"iss\":\"https://as.example\",\"sub\":\"alice\",\"aud\":\"api\","
    "\"exp\":1700000600,\"iat\":1700000000}";

// The keys of these tests, made once by the openssl CLI on first use,
// with the SEC1 DER of the two EC keys (SEQUENCE {1, d, [0] curve, [1]
// public point}; the point is the last 65 bytes).
struct KeyFiles {
  TempDir dir;
  std::string path(const std::string& name) const { return dir.path() + "/" + name; }
  std::shared_ptr<JwtKey> load(const std::string& name) const {
    return JwtKey::load_file(path(name), false);
  }

  KeyFiles() {
    const std::string gen = "openssl genpkey -out " + path("");
    for (const std::string& c :
         {gen + "ec.pem -algorithm EC -pkeyopt ec_paramgen_curve:P-256",
          gen + "ec2.pem -algorithm EC -pkeyopt ec_paramgen_curve:P-256",
          gen + "ed.pem -algorithm ED25519",
          gen + "rsa.pem -algorithm RSA -pkeyopt rsa_keygen_bits:2048",
          "openssl pkey -pubout -in " + path("ec.pem") + " -out " + path("ec_pub.pem"),
          "openssl pkey -pubout -in " + path("ed.pem") + " -out " + path("ed_pub.pem"),
          "openssl pkey -pubout -in " + path("rsa.pem") + " -out " + path("rsa_pub.pem"),
          "openssl ec -in " + path("ec.pem") + " -outform DER -out " + path("ec.der"),
          "openssl ec -in " + path("ec2.pem") + " -outform DER -out " + path("ec2.der")}) {
      if (!run(c)) throw std::runtime_error("failed: " + c);
    }
  }
};

KeyFiles* g_keys = nullptr;

const KeyFiles& keys() {
  if (!g_keys) g_keys = new KeyFiles();
  return *g_keys;
}

class KeyFilesCleanup : public ::testing::Environment {
 public:
  void TearDown() override {
    delete g_keys;
    g_keys = nullptr;
  }
};
[[maybe_unused]] ::testing::Environment* const g_cleanup =
    ::testing::AddGlobalTestEnvironment(new KeyFilesCleanup);

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

std::string sign(const JwtKey& k, const std::string& claims) {
  return oauth2::jwt_sign(k, parse(claims).get(), "");
}

JwtStatus verify(const JwtKeys& ks, const std::string& token) {
  JwtCheck c;
  c.now = kNow;
  return oauth2::jwt_verify(ks, token, c).status;
}

std::string b64(std::string_view s) {
  return oauth2::b64url_encode(s);
}

std::string unb64(std::string_view s) {
  std::string out;
  if (!oauth2::b64url_decode(s, out)) throw std::runtime_error("bad b64url");
  return out;
}

// A PEM block of DER bytes, as the openssl CLI writes one.
std::string pem(const std::string& label, std::string_view der) {
  std::string body = oauth2_test::b64(der), out = "-----BEGIN " + label + "-----\n";
  for (size_t i = 0; i < body.size(); i += 64) out += body.substr(i, 64) + "\n";
  return out + "-----END " + label + "-----\n";
}

// The message of what load_file throws ("" if it loads).
std::string load_error(const std::string& path, bool hmac) {
  try {
    JwtKey::load_file(path, hmac);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

// ---------------------------------------------------------- base64url

// A last group of 2 characters holds 8 bits in 12: the last character's
// 4 low bits are unused and must be 0, or one value has 16 spellings (a
// 64-byte ES256 or EdDSA signature is 86 characters: each token would be
// 16 token texts for the workers' validation cache (R66) and the logs).
// "Zk" and "Zo" set the unused bits 2 and 3.
TEST(JwtB64urlBits, AllFourUnusedBitsOfATwoCharacterGroupMustBeZero) {
  std::string out;
  EXPECT_TRUE(oauth2::b64url_decode("Zg", out));
  EXPECT_EQ(out, "f");
  for (const char* bad : {"Zh", "Zi", "Zk", "Zo", "Zm9vYk", "Zm9vYo"}) {
    EXPECT_FALSE(oauth2::b64url_decode(bad, out)) << bad;
  }

  // the same ES256 signature with an unused bit set is not the token
  auto k = keys().load("ec.pem");
  JwtKeys ks = set_of({k});
  std::string token = sign(*k, kClaims);
  ASSERT_EQ(token.size() - token.rfind('.') - 1, 86u);
  ASSERT_EQ(verify(ks, token), JwtStatus::kOk);
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t last = kAlphabet.find(token.back());
  ASSERT_EQ(last & 15, 0u);
  for (size_t bit : {1u, 2u, 4u, 8u}) {
    std::string other = token;
    other.back() = kAlphabet[last | bit];
    EXPECT_EQ(verify(ks, other), JwtStatus::kMalformed) << other.back();
  }
}

// ------------------------------------------------------------- signing

// jwt_verify (and so every verifier here) refuses a token over 8192
// bytes: jwt_sign must refuse to make one, not hand out a token no
// resource server accepts.
TEST(JwtSignLimit, ATokenOver8192BytesIsRefusedAtSigning) {
  auto k = JwtKey::hmac(oauth2::random_alnum(40), "hs");
  for (size_t n : {6200u, 9000u, 30000u}) {
    std::string claims = "{\"exp\":1700000600,\"x\":\"" + std::string(n, 'a') + "\"}";
    EXPECT_THROW(sign(*k, claims), std::length_error) << n;
  }
  std::string ok = sign(*k, "{\"exp\":1700000600,\"x\":\"" + std::string(6000, 'a') + "\"}");
  EXPECT_LE(ok.size(), oauth2::kJwtMaxBytes);
  EXPECT_EQ(verify(set_of({k}), ok), JwtStatus::kOk);
}

// ----------------------------------------------------------- key files

// A key file is read up to 64 KiB: "oauth2_jwt_key /dev/urandom hmac"
// (or a log file named by mistake) fails `nginx -t` saying so, rather
// than becoming a secret of its first 64 KiB and a byte that no one can
// give another server.
TEST(JwtKeyFile, OverSixtyFourKiBIsRefused) {
  TempDir tmp;
  std::string p = tmp.path() + "/big.key";
  write_file(p, std::string(64 * 1024, 'k'));
  EXPECT_EQ(load_error(p, true), "");
  write_file(p, std::string(64 * 1024 + 1, 'k'));
  std::string why = load_error(p, true);
  EXPECT_NE(why.find(p), std::string::npos) << why;
  EXPECT_NE(why.find("over 64 KiB"), std::string::npos) << why;

  // a PEM file too, though its key would be read past any text before it
  std::string key = oauth2_test::read_file(keys().path("ec.pem"));
  write_file(p, std::string(64 * 1024 - key.size(), '#') + "\n" + key);
  why = load_error(p, false);
  EXPECT_NE(why.find("over 64 KiB"), std::string::npos) << why;
  write_file(p, std::string(64 * 1024 - key.size() - 1, '#') + "\n" + key);
  EXPECT_EQ(load_error(p, false), "");
  EXPECT_NE(load_error("/dev/urandom", true).find("over 64 KiB"), std::string::npos);
}

// A binary key of bytes 0x80-0xff ending in a newline (`openssl rand
// -out file 32` makes one) is not a text key: its newline is one of its
// 32 bytes, and the key is all of them, not 31 bytes refused.  Longer,
// it loses only the newline, never a "\r" before it as a text key does.
TEST(JwtKeyFile, BinaryHmacKeyOfHighBytesIsNotText) {
  TempDir tmp;
  std::string p = tmp.path() + "/bin.key";
  std::string high(38, '\0');
  oauth2::random_bytes(reinterpret_cast<unsigned char*>(high.data()), high.size());
  for (char& c : high) c = static_cast<char>(static_cast<unsigned char>(c) | 0x80);

  std::string secret = high.substr(0, 31) + "\n";
  write_file(p, secret);
  ASSERT_EQ(load_error(p, true), "");
  auto k = JwtKey::load_file(p, true);
  EXPECT_EQ(verify(set_of({JwtKey::hmac(secret, k->kid())}), sign(*k, kClaims)), JwtStatus::kOk);

  write_file(p, high + "\r\n");
  k = JwtKey::load_file(p, true);
  std::string token = sign(*k, kClaims);
  EXPECT_EQ(verify(set_of({JwtKey::hmac(high + "\r", k->kid())}), token), JwtStatus::kOk);
  EXPECT_EQ(verify(set_of({JwtKey::hmac(high, k->kid())}), token), JwtStatus::kBadSignature);
}

// An EC private key whose public point is another key's loads in OpenSSL
// (the file carries both); the signature made and checked at load time
// refuses it, so `nginx -t` fails rather than every token it signs.
TEST(JwtKeyFile, PrivateKeyWithAnotherKeysPublicPointIsRefused) {
  std::string a = oauth2_test::read_file(keys().path("ec.der"));
  std::string b = oauth2_test::read_file(keys().path("ec2.der"));
  ASSERT_EQ(a.size(), 121u);
  ASSERT_EQ(b.size(), 121u);
  TempDir tmp;
  std::string same = tmp.path() + "/same.pem", mixed = tmp.path() + "/mixed.pem";
  write_file(same, pem("EC PRIVATE KEY", a));
  write_file(mixed, pem("EC PRIVATE KEY", a.substr(0, 56) + b.substr(56)));
  ASSERT_EQ(load_error(same, false), "");  // the PEM is made right
  EXPECT_EQ(JwtKey::load_file(same, false)->kid(), keys().load("ec.pem")->kid());
  std::string why = load_error(mixed, false);
  EXPECT_NE(why.find(mixed), std::string::npos) << why;
  EXPECT_NE(why.find("does not match its public key"), std::string::npos) << why;
}

// ------------------------------------------------------------ rotation

// Rotating keys (README, oauth2_jwt_key: "the first that can sign signs;
// all verify"), the old key's public half stays listed while its tokens
// live.  It verifies, but it never signs: not as the signer of its alg
// (an application registered for ES256 id_tokens gets the new ES256 key,
// not a signing failure) and not in discovery's
// id_token_signing_alg_values_supported (a client asking for RS256
// would get another alg).
TEST(JwtKeySet, AVerifyOnlyKeyIsNoSignerOfItsAlg) {
  auto old_ec = keys().load("ec_pub.pem"), new_ec = keys().load("ec2.pem");
  auto old_rsa = keys().load("rsa_pub.pem");
  JwtKeys ks = set_of({old_rsa, old_ec, new_ec});
  EXPECT_EQ(ks.signer(), new_ec.get());
  EXPECT_EQ(ks.signer(JwtAlg::kES256), new_ec.get());
  EXPECT_EQ(ks.signer(JwtAlg::kRS256), nullptr);
  EXPECT_EQ(ks.signer(JwtAlg::kEdDSA), nullptr);
  EXPECT_EQ(ks.signing_algs(), std::vector<JwtAlg>{JwtAlg::kES256});
  EXPECT_EQ(verify(ks, sign(*keys().load("ec.pem"), kClaims)), JwtStatus::kOk);

  JwtKeys only_public = set_of({old_rsa, keys().load("ed_pub.pem")});
  EXPECT_EQ(only_public.signer(JwtAlg::kRS256), nullptr);
  EXPECT_EQ(only_public.signer(JwtAlg::kEdDSA), nullptr);
  EXPECT_TRUE(only_public.signing_algs().empty());

  auto rsa = keys().load("rsa.pem"), ed = keys().load("ed.pem");
  JwtKeys all = set_of({old_ec, rsa, new_ec, ed});
  EXPECT_EQ(all.signer(JwtAlg::kRS256), rsa.get());
  EXPECT_EQ(all.signer(JwtAlg::kEdDSA), ed.get());
  EXPECT_EQ(all.signing_algs(),
            (std::vector<JwtAlg>{JwtAlg::kRS256, JwtAlg::kES256, JwtAlg::kEdDSA}));
}

// ---------------------------------------------- OpenSSL's error queue

// A worker's OpenSSL error queue is nginx's too: an error left there by
// a forged token (anyone can send one) would be found by the next TLS
// call on that worker and fail or log an unrelated connection.
TEST(JwtOpensslQueue, AForgedTokenLeavesNoError) {
  for (const char* name : {"rsa.pem", "ec.pem", "ed.pem"}) {
    auto k = keys().load(name);
    JwtKeys ks = set_of({k});
    std::string token = sign(*k, kClaims);
    size_t dot = token.rfind('.');
    std::string sig = unb64(token.substr(dot + 1));
    sig[sig.size() / 2] ^= 0x01;
    ERR_clear_error();
    EXPECT_EQ(verify(ks, token.substr(0, dot + 1) + b64(sig)), JwtStatus::kBadSignature) << name;
    EXPECT_EQ(ERR_peek_error(), 0u) << name << ": " << ERR_error_string(ERR_peek_error(), nullptr);
    ERR_clear_error();
  }
}

// The public JWK of a key file, as a client would send it in a DPoP
// proof (the JWKS's members less kid, alg and use).
Json jwk_of(const std::string& name) {
  Json set = parse(set_of({keys().load(name)}).jwks_json());
  Json jwk(json_deep_copy(json_array_get(json_object_get(set.get(), "keys"), 0)));
  for (const char* m : {"kid", "alg", "use"}) json_object_del(jwk.get(), m);
  return jwk;
}

void set_member(const Json& jwk, const char* name, const std::string& value) {
  json_object_set_new(jwk.get(), name, json_string(value.c_str()));
}

// The same for a JWK a DPoP proof carries: anyone can send an EC point
// off the curve, which OpenSSL refuses with an error of its own.
TEST(JwtOpensslQueue, ABadJwkLeavesNoError) {
  Json jwk = jwk_of("ec_pub.pem");
  std::string why;
  ERR_clear_error();
  ASSERT_NE(oauth2::jwt_key_from_jwk(jwk.get(), &why), nullptr) << why;
  std::string y = unb64(json_string_value(json_object_get(jwk.get(), "y")));
  y[31] ^= 0x01;
  set_member(jwk, "y", b64(y));
  EXPECT_EQ(oauth2::jwt_key_from_jwk(jwk.get(), &why), nullptr);
  EXPECT_NE(why.find("not a point of P-256"), std::string::npos) << why;
  EXPECT_EQ(ERR_peek_error(), 0u) << ERR_error_string(ERR_peek_error(), nullptr);
  ERR_clear_error();
}

// ------------------------------------------------------- a client's JWK

std::shared_ptr<JwtKey> from_jwk(const Json& jwk, std::string* why) {
  why->clear();
  return oauth2::jwt_key_from_jwk(jwk.get(), why);
}

// An Ed25519 key of small order (with either sign bit) is refused: under
// the identity a signature R = identity, S = 0 verifies for any message
// (OpenSSL 3.0 checks none of this), so a DPoP proof of such a key binds
// its token to nothing
TEST(JwtClientJwk, AnEd25519KeyOfSmallOrderIsRefused) {
  std::string why;
  Json jwk(json_pack("{s:s, s:s, s:s}", "kty", "OKP", "crv", "Ed25519", "x",
                     "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"));  // RFC 8032 7.1 test 1
  ASSERT_NE(from_jwk(jwk, &why), nullptr) << why;
  const std::string ff(30, '\xff');
  for (std::string x :
       {std::string(32, '\0'), "\x01" + std::string(31, '\0'),
        std::string("\x26\xe8\x95\x8f\xc2\xb2\x27\xb0\x45\xc3\xf4\x89\xf2\xef\x98\xf0"
                    "\xd5\xdf\xac\x05\xd3\xc6\x33\x39\xb1\x38\x02\x88\x6d\x53\xfc\x05",
                    32),
        std::string("\xc7\x17\x6a\x70\x3d\x4d\xd8\x4f\xba\x3c\x0b\x76\x0d\x10\x67\x0f"
                    "\x2a\x20\x53\xfa\x2c\x39\xcc\xc6\x4e\xc7\xfd\x77\x92\xac\x03\x7a",
                    32),
        "\xec" + ff + "\x7f", "\xed" + ff + "\x7f", "\xee" + ff + "\x7f"}) {
    for (int sign : {0, 0x80}) {
      x[31] = static_cast<char>(x[31] | sign);
      set_member(jwk, "x", b64(x));
      EXPECT_EQ(from_jwk(jwk, &why), nullptr) << b64(x);
      EXPECT_NE(why.find("small order"), std::string::npos) << why;
    }
  }
}

// RSA's public exponent is 65537 in practice; one of more than 4 bytes
// (up to the modulus's length) makes each proof's verification cost more,
// up to a private key operation, a cheap way for anyone to load the
// server.
TEST(JwtClientJwk, RsaExponentOfMoreThanFourBytesIsRefused) {
  std::string why;
  Json jwk = jwk_of("rsa_pub.pem");
  ASSERT_NE(from_jwk(jwk, &why), nullptr) << why;
  const std::string n = unb64(json_string_value(json_object_get(jwk.get(), "n")));
  set_member(jwk, "e", b64("\x01" + std::string(2, '\0') + "\x01"));  // 4 bytes
  EXPECT_NE(from_jwk(jwk, &why), nullptr) << why;
  for (const std::string& e : {"\x01" + std::string(3, '\0') + "\x01",  // 5 bytes
                               n.substr(0, n.size() - 1) + "\x01"}) {
    set_member(jwk, "e", b64(e));
    EXPECT_EQ(from_jwk(jwk, &why), nullptr) << e.size();
    EXPECT_NE(why.find("malformed"), std::string::npos) << why;
  }
}

// RFC 7518 6.3.1: n and e have no leading zero byte.  With one the same
// key has a second spelling, and a client that hashes the jwk it sent
// (RFC 7638 over its members as sent) finds a thumbprint that is not the
// jkt its tokens are bound to.
TEST(JwtClientJwk, RsaNAndEWithALeadingZeroAreRefused) {
  std::string why;
  Json jwk = jwk_of("rsa_pub.pem");
  const std::string n = json_string_value(json_object_get(jwk.get(), "n"));
  ASSERT_NE(from_jwk(jwk, &why), nullptr) << why;
  set_member(jwk, "n", b64(std::string(1, '\0') + unb64(n)));
  EXPECT_EQ(from_jwk(jwk, &why), nullptr);
  EXPECT_NE(why.find("malformed"), std::string::npos) << why;
  set_member(jwk, "n", n);
  set_member(jwk, "e", b64(std::string("\0\x01\0\x01", 4)));
  EXPECT_EQ(from_jwk(jwk, &why), nullptr);
  set_member(jwk, "e", b64(std::string(1, '\0')));
  EXPECT_EQ(from_jwk(jwk, &why), nullptr);
}

// An EC jwk is P-256's only when its crv says so: a "P-384" jwk (or one
// without crv) whose x and y happen to be 32 bytes names another key
// than the client's, and is refused rather than read as P-256.
TEST(JwtClientJwk, EcCurveMustBeP256) {
  std::string why;
  Json jwk = jwk_of("ec_pub.pem");
  ASSERT_NE(from_jwk(jwk, &why), nullptr) << why;
  for (const char* crv : {"P-384", "P-521", "secp256k1", "p-256", ""}) {
    set_member(jwk, "crv", crv);
    EXPECT_EQ(from_jwk(jwk, &why), nullptr) << crv;
    EXPECT_NE(why.find("P-256"), std::string::npos) << why;
  }
  json_object_set_new(jwk.get(), "crv", json_integer(256));
  EXPECT_EQ(from_jwk(jwk, &why), nullptr);
  json_object_del(jwk.get(), "crv");
  EXPECT_EQ(from_jwk(jwk, &why), nullptr);
  EXPECT_NE(why.find("P-256"), std::string::npos) << why;
}

// RFC 8037 2: an OKP jwk's crv names its curve.  An X25519 key is for key
// agreement, never signatures, and Ed448's are 57 bytes: a 32-byte x
// under either is refused, not taken as an Ed25519 key.
TEST(JwtClientJwk, OkpCurveMustBeEd25519) {
  std::string why;
  Json jwk = jwk_of("ed_pub.pem");
  ASSERT_NE(from_jwk(jwk, &why), nullptr) << why;
  for (const char* crv : {"X25519", "Ed448", "X448", "ed25519", ""}) {
    set_member(jwk, "crv", crv);
    EXPECT_EQ(from_jwk(jwk, &why), nullptr) << crv;
    EXPECT_NE(why.find("Ed25519"), std::string::npos) << why;
  }
  json_object_del(jwk.get(), "crv");
  EXPECT_EQ(from_jwk(jwk, &why), nullptr);
}

}  // namespace
