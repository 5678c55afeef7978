// Unit tests of src/core/dpop (RFC 9449 proofs) and of the token record's
// jkt field.  Proofs are signed here with OpenSSL directly (Ed25519 and
// ES256), and the thumbprint is checked against the one JwtKey computes
// for the same key loaded from a PEM file.

#include "dpop.hpp"

#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstdio>
#include <map>
#include <string>

#include "codec.hpp"
#include "json.hpp"
#include "jwt.hpp"
#include "store_records.hpp"
#include "test_helpers.hpp"

namespace {

using oauth2::DpopExpect;
using oauth2::DpopProof;
using oauth2::DpopStatus;

constexpr int64_t kNow = 1700000000;
const std::string kHtu = "https://as.example/o/token/";

std::string b64(std::string_view s) {
  return oauth2::b64url_encode(s);
}

// A client's key pair and the proofs it signs.
class ClientKey {
 public:
  explicit ClientKey(bool ec) : ec_(ec) {
    pk_ = ec ? EVP_EC_gen("P-256") : EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
    if (!pk_) throw std::runtime_error("keygen");
  }
  ~ClientKey() { EVP_PKEY_free(pk_); }
  ClientKey(const ClientKey&) = delete;
  ClientKey& operator=(const ClientKey&) = delete;

  // the public JWK (plus "d" when with_private)
  oauth2::Json jwk(bool with_private = false) const {
    oauth2::Json j(json_object());
    if (ec_) {
      json_object_set_new(j.get(), "kty", json_string("EC"));
      json_object_set_new(j.get(), "crv", json_string("P-256"));
      json_object_set_new(j.get(), "x", json_string(bn(OSSL_PKEY_PARAM_EC_PUB_X).c_str()));
      json_object_set_new(j.get(), "y", json_string(bn(OSSL_PKEY_PARAM_EC_PUB_Y).c_str()));
    } else {
      unsigned char x[32];
      size_t len = sizeof(x);
      EVP_PKEY_get_raw_public_key(pk_, x, &len);
      json_object_set_new(j.get(), "kty", json_string("OKP"));
      json_object_set_new(j.get(), "crv", json_string("Ed25519"));
      json_object_set_new(j.get(), "x",
                          json_string(b64(std::string(reinterpret_cast<char*>(x), 32)).c_str()));
    }
    if (with_private) json_object_set_new(j.get(), "d", json_string("AAAA"));
    return j;
  }
  const char* alg() const { return ec_ ? "ES256" : "EdDSA"; }

  // the thumbprint JwtKey computes for this key from a PEM file
  std::string pem_thumbprint() const {
    oauth2_test::TempDir dir;
    const std::string path = dir.path() + "/pub.pem";
    FILE* f = std::fopen(path.c_str(), "w");
    PEM_write_PUBKEY(f, pk_);
    std::fclose(f);
    return oauth2::JwtKey::load_file(path, false)->kid();
  }

  // ES256: r||s with the low s, or with high_s the high one (n - s)
  std::string sign(std::string_view input, bool high_s = false) const {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    size_t len = 256;
    std::string sig(len, '\0');
    EVP_DigestSignInit_ex(ctx, nullptr, ec_ ? "SHA256" : nullptr, nullptr, nullptr, pk_, nullptr);
    EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                   reinterpret_cast<const unsigned char*>(input.data()), input.size());
    EVP_MD_CTX_free(ctx);
    sig.resize(len);
    if (!ec_) return sig;
    const unsigned char* p = reinterpret_cast<const unsigned char*>(sig.data());
    ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(es, &r, &s);
    // (r, s) and (r, n - s) both verify: the one asked for
    BIGNUM* order = BN_new();
    BN_hex2bn(&order, "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
    BIGNUM* half = BN_dup(order);
    BN_rshift1(half, half);
    BIGNUM* chosen = BN_dup(s);
    if ((BN_cmp(s, half) > 0) != high_s) BN_sub(chosen, order, s);
    unsigned char rs[64];
    BN_bn2binpad(r, rs, 32);
    BN_bn2binpad(chosen, rs + 32, 32);
    BN_free(order);
    BN_free(half);
    BN_free(chosen);
    ECDSA_SIG_free(es);
    return std::string(reinterpret_cast<char*>(rs), 64);
  }

 private:
  std::string bn(const char* name) const {
    BIGNUM* b = nullptr;
    EVP_PKEY_get_bn_param(pk_, name, &b);
    unsigned char out[32];
    BN_bn2binpad(b, out, 32);
    BN_free(b);
    return b64(std::string(reinterpret_cast<char*>(out), 32));
  }
  bool ec_;
  EVP_PKEY* pk_ = nullptr;
};

// What a proof says; each test changes one thing.
struct ProofSpec {
  std::string typ = "dpop+jwt";
  std::string alg;  // empty: the key's
  bool private_jwk = false;
  bool crit = false;
  std::string htm = "POST";
  std::string htu = kHtu;
  int64_t iat = kNow;
  double iat_real = 0;  // nonzero: iat is this JSON real instead
  std::string jti = "jti-1";
  std::string ath;  // empty: none
  std::string nonce;
  bool break_signature = false;
  bool high_s = false;  // ES256: the high s of the two
};

std::string make_proof(const ClientKey& k, const ProofSpec& s) {
  oauth2::Json h(json_object());
  json_object_set_new(h.get(), "typ", json_string(s.typ.c_str()));
  json_object_set_new(h.get(), "alg", json_string(s.alg.empty() ? k.alg() : s.alg.c_str()));
  json_object_set(h.get(), "jwk", k.jwk(s.private_jwk).get());
  if (s.crit) json_object_set_new(h.get(), "crit", json_pack("[s]", "x"));
  oauth2::Json c(json_object());
  json_object_set_new(c.get(), "jti", json_string(s.jti.c_str()));
  json_object_set_new(c.get(), "htm", json_string(s.htm.c_str()));
  json_object_set_new(c.get(), "htu", json_string(s.htu.c_str()));
  json_object_set_new(c.get(), "iat",
                      s.iat_real != 0 ? json_real(s.iat_real) : json_integer(s.iat));
  if (!s.ath.empty()) json_object_set_new(c.get(), "ath", json_string(s.ath.c_str()));
  if (!s.nonce.empty()) json_object_set_new(c.get(), "nonce", json_string(s.nonce.c_str()));
  std::string input = b64(oauth2::json_text(h.get())) + "." + b64(oauth2::json_text(c.get()));
  std::string sig = k.sign(input, s.high_s);
  if (s.break_signature) sig[5] ^= 1;
  return input + "." + b64(sig);
}

DpopExpect expect() {
  DpopExpect e;
  e.method = "POST";
  e.htu = kHtu;
  e.now = kNow;
  e.window = 60;
  return e;
}

TEST(DpopProof, ValidProofGivesTheRfc7638Thumbprint) {
  for (bool ec : {true, false}) {
    ClientKey k(ec);
    DpopProof p = oauth2::dpop_check(make_proof(k, {}), expect());
    ASSERT_EQ(p.status, DpopStatus::kOk) << p.why;
    EXPECT_EQ(p.jkt, k.pem_thumbprint());
    EXPECT_EQ(p.jti, "jti-1");
  }
}

// RFC 7518 3.4 asks a signer for no particular s, and WebCrypto, Node,
// Java, Go and python-cryptography send the one they computed: a client's
// ES256 proof verifies with s or n - s (replays are known by key and jti,
// not by the signature's bytes)
TEST(DpopProof, Es256WithTheLowOrTheHighSIsAccepted) {
  ClientKey k(true);
  std::string half;  // n / 2 of P-256, big-endian
  ASSERT_TRUE(oauth2::b64url_decode("f____4AAAAB__________95zfVbTi89CedzlYX4xkqg", half));
  for (bool high : {false, true}) {
    ProofSpec s;
    s.high_s = high;
    std::string proof = make_proof(k, s);
    std::string sig;
    ASSERT_TRUE(oauth2::b64url_decode(proof.substr(proof.rfind('.') + 1), sig));
    ASSERT_EQ(sig.size(), 64u);
    EXPECT_EQ(sig.substr(32) > half, high) << "the signature has the s asked for";
    DpopProof p = oauth2::dpop_check(proof, expect());
    EXPECT_EQ(p.status, DpopStatus::kOk) << (high ? "high s: " : "low s: ") << p.why;
    EXPECT_EQ(p.jkt, k.pem_thumbprint());
  }
}

// RFC 7519 2: iat is a NumericDate, which may have a fraction; its
// integer part is compared with the window, and a real too large for a
// time is refused
TEST(DpopProof, IatWithAFractionIsAccepted) {
  ClientKey k(false);
  ProofSpec s;
  for (double ok : {kNow + 0.5, kNow + 60.9, kNow - 59.5}) {
    s.iat_real = ok;
    DpopProof p = oauth2::dpop_check(make_proof(k, s), expect());
    EXPECT_EQ(p.status, DpopStatus::kOk) << std::fixed << ok << ": " << p.why;
  }
  for (double bad : {kNow + 61.5, kNow - 60.5, 1e19, -1e19, 1e300, -1e300}) {
    s.iat_real = bad;
    DpopProof p = oauth2::dpop_check(make_proof(k, s), expect());
    EXPECT_EQ(p.status, DpopStatus::kInvalid) << std::fixed << bad;
    EXPECT_NE(std::string(p.why).find("iat is out of the accepted window"), std::string::npos)
        << p.why;
  }
}

TEST(DpopProof, EveryBadPartIsRefused) {
  ClientKey k(true);
  ClientKey other(true);
  std::map<std::string, ProofSpec> bad;
  bad["typ JWT"].typ = "JWT";
  bad["alg HS256"].alg = "HS256";
  bad["alg none"].alg = "none";
  bad["alg EdDSA with an EC key"].alg = "EdDSA";
  bad["private jwk"].private_jwk = true;
  bad["crit"].crit = true;
  bad["another method"].htm = "GET";
  bad["another URL"].htu = "https://as.example/o/other/";
  bad["another host"].htu = "https://evil.example/o/token/";
  bad["iat too old"].iat = kNow - 61;
  bad["iat too new"].iat = kNow + 61;
  bad["empty jti"].jti = "";
  bad["jti too long"].jti = std::string(oauth2::kDpopMaxJti + 1, 'j');
  bad["broken signature"].break_signature = true;
  for (const auto& [name, spec] : bad) {
    DpopProof p = oauth2::dpop_check(make_proof(k, spec), expect());
    EXPECT_EQ(p.status, DpopStatus::kInvalid) << name;
    EXPECT_TRUE(p.jkt.empty()) << name;
  }
  // signed by another key than the one in its jwk
  std::string good = make_proof(k, {});
  std::string input = good.substr(0, good.rfind('.'));
  std::string forged = input + "." + b64(other.sign(input));
  EXPECT_EQ(oauth2::dpop_check(forged, expect()).status, DpopStatus::kInvalid);
  for (const char* junk : {"", "a.b", "a.b.c", "..", "x.y.z.w"}) {
    EXPECT_EQ(oauth2::dpop_check(junk, expect()).status, DpopStatus::kInvalid) << junk;
  }
}

TEST(DpopProof, WindowEdgesAndQueryAreAccepted) {
  ClientKey k(false);
  ProofSpec s;
  for (int64_t iat : {kNow - 60, kNow + 60}) {
    s.iat = iat;
    EXPECT_EQ(oauth2::dpop_check(make_proof(k, s), expect()).status, DpopStatus::kOk) << iat;
  }
  s.iat = kNow;
  s.htu = kHtu + "?x=1#f";  // RFC 9449 4.3: without query and fragment
  EXPECT_EQ(oauth2::dpop_check(make_proof(k, s), expect()).status, DpopStatus::kOk);
  s.htu = "HTTPS://AS.EXAMPLE/o/token/";  // scheme and host: any case
  EXPECT_EQ(oauth2::dpop_check(make_proof(k, s), expect()).status, DpopStatus::kOk);
  s.htu = "https://as.example/O/TOKEN/";  // the path: exact
  EXPECT_EQ(oauth2::dpop_check(make_proof(k, s), expect()).status, DpopStatus::kInvalid);
}

// A bound token's proof by another key is refused by the key's
// thumbprint, before its signature is verified (whose cost the client
// chooses): a proof whose signature is broken too is refused for its key.
TEST(DpopProof, AnotherKeyThanTheTokensIsRefusedBeforeItsSignature) {
  ClientKey k(false), other(false);
  DpopExpect e = expect();
  const std::string jkt = k.pem_thumbprint();
  e.jkt = jkt;
  EXPECT_EQ(oauth2::dpop_check(make_proof(k, {}), e).status, DpopStatus::kOk);
  DpopProof p = oauth2::dpop_check(make_proof(other, {}), e);
  EXPECT_EQ(p.status, DpopStatus::kInvalid);
  EXPECT_NE(std::string(p.why).find("not the one the token is bound to"), std::string::npos)
      << p.why;
  ProofSpec broken;
  broken.break_signature = true;
  p = oauth2::dpop_check(make_proof(other, broken), e);
  EXPECT_NE(std::string(p.why).find("not the one the token is bound to"), std::string::npos)
      << "the key is compared first: " << p.why;
  p = oauth2::dpop_check(make_proof(k, broken), e);
  EXPECT_NE(std::string(p.why).find("signature"), std::string::npos) << p.why;
}

TEST(DpopProof, AthMustHashTheToken) {
  ClientKey k(true);
  DpopExpect e = expect();
  e.access_token = "the-token";
  ProofSpec s;
  EXPECT_EQ(oauth2::dpop_check(make_proof(k, s), e).status, DpopStatus::kInvalid);  // none
  s.ath = oauth2::dpop_ath("another-token");
  EXPECT_EQ(oauth2::dpop_check(make_proof(k, s), e).status, DpopStatus::kInvalid);
  s.ath = oauth2::dpop_ath("the-token");
  EXPECT_EQ(oauth2::dpop_check(make_proof(k, s), e).status, DpopStatus::kOk);
}

TEST(DpopProof, NonceOfThisOrThePreviousSlot) {
  ClientKey k(false);
  oauth2::Digest key{}, other{};
  key[0] = 1;
  other[0] = 2;
  DpopExpect e = expect();
  e.nonce_key = &key;
  ProofSpec s;
  EXPECT_EQ(oauth2::dpop_check(make_proof(k, s), e).status, DpopStatus::kUseNonce);
  s.nonce = oauth2::dpop_nonce(key, kNow, 60);
  EXPECT_EQ(oauth2::dpop_check(make_proof(k, s), e).status, DpopStatus::kOk);
  s.nonce = oauth2::dpop_nonce(key, kNow - 60, 60);
  EXPECT_EQ(oauth2::dpop_check(make_proof(k, s), e).status, DpopStatus::kOk);
  s.nonce = oauth2::dpop_nonce(key, kNow - 120, 60);
  EXPECT_EQ(oauth2::dpop_check(make_proof(k, s), e).status, DpopStatus::kUseNonce);
  s.nonce = oauth2::dpop_nonce(other, kNow, 60);
  EXPECT_EQ(oauth2::dpop_check(make_proof(k, s), e).status, DpopStatus::kUseNonce);
}

TEST(DpopHtu, FromTheIssuersOriginOnly) {
  EXPECT_EQ(oauth2::issuer_url("https://as.example", "/o/token/"), "https://as.example/o/token/");
  EXPECT_EQ(oauth2::issuer_url("https://as.example:8443/realm1", "/o/token/"),
            "https://as.example:8443/o/token/");
  EXPECT_EQ(oauth2::issuer_url("", "/o/token/"), "");
  EXPECT_EQ(oauth2::issuer_url("ftp://as.example", "/x"), "");
  EXPECT_EQ(oauth2::issuer_url("https://", "/x"), "");
}

// counters that remember keys in a map, with a capacity
struct FakeCounters {
  std::map<std::string, unsigned> seen;
  size_t capacity = 2;
  static unsigned see(void* ctx, const unsigned char* k, size_t len, unsigned ttl) {
    auto* self = static_cast<FakeCounters*>(ctx);
    std::string key(reinterpret_cast<const char*>(k), len);
    if (self->seen.count(key)) return 1;
    if (self->seen.size() >= self->capacity) return OAUTH2_COUNTER_FULL;
    self->seen[key] = ttl;
    return 0;
  }
};

TEST(DpopRecord, ReplayAndFullAreRefused) {
  FakeCounters fake;
  oauth2_counters_t c{};
  c.ctx = &fake;
  c.seen = FakeCounters::see;
  DpopProof p;
  p.jkt = "key";
  p.jti = "a";
  const char* why = "";
  EXPECT_EQ(oauth2::dpop_record(c, p, 60, &why), DpopStatus::kOk);
  EXPECT_EQ(fake.seen.begin()->second, 121u);  // two windows and a second
  EXPECT_EQ(oauth2::dpop_record(c, p, 60, &why), DpopStatus::kInvalid);
  p.jkt = "another key";  // the same jti under another key is another proof
  EXPECT_EQ(oauth2::dpop_record(c, p, 60, &why), DpopStatus::kOk);
  p.jti = "b";
  EXPECT_EQ(oauth2::dpop_record(c, p, 60, &why), DpopStatus::kInvalid);  // full
  c.seen = nullptr;
  p.jti = "c";
  EXPECT_EQ(oauth2::dpop_record(c, p, 60, &why), DpopStatus::kInvalid);  // none
}

TEST(DpopRecord, ReplayKeyFitsTheCounters) {
  std::string k = oauth2::dpop_replay_key(std::string(43, 'k'), std::string(256, 'j'));
  EXPECT_EQ(k.size(), 44u);
  EXPECT_NE(k, oauth2::dpop_replay_key("k", "j2"));
}

TEST(TokenRecordJkt, RoundTripsAndCostsNothingWhenUnset) {
  oauth2::Token t;
  t.type = oauth2::TokenType::kAccess;
  t.issued_at = kNow;
  t.expires_at = kNow + 3600;
  t.client_id = "c";
  const size_t plain = oauth2::records::encode_token(t).size();
  t.jkt = std::string(43, 'T');
  std::string rec = oauth2::records::encode_token(t);
  EXPECT_EQ(rec.size(), plain + 2 + 43);
  auto back = oauth2::records::decode_token(rec);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->jkt, t.jkt);
  rec.pop_back();  // truncated
  EXPECT_FALSE(oauth2::records::decode_token(rec).has_value());
  t.jkt.clear();
  back = oauth2::records::decode_token(oauth2::records::encode_token(t));
  ASSERT_TRUE(back.has_value());
  EXPECT_TRUE(back->jkt.empty());
}

}  // namespace
