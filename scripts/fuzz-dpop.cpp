// libFuzzer harness for src/core/dpop (RFC 9449 proofs) and the client
// JWKs of src/core/jwt (jwt_key_from_jwk): what any network client sends
// in a DPoP header, at the token endpoint and at every auth_oauth2
// location.  A client signs its proofs with a key of its own, so all of
// dpop_check is the attacker's to reach; random bytes never get past the
// signature, so the harness signs what the fuzzer writes with keys of its
// own (ES256, EdDSA, RSA-2048, made at start-up; ES256 with the s OpenSSL
// picked, high or low, as clients' libraries send it).  Each input is one of:
//   0  the proof itself, as the header would carry it;
//   1  a header and claims the fuzzer writes (each member the expected
//      value, a variant, or the input's bytes, plus members appended as
//      raw JSON text), signed by one of the harness's keys, with its jwk
//      or another's, or a jwk the input writes;
//   2  a proof the harness signed, one segment replaced or spliced with
//      the input's bytes, not signed again;
//   3  a jwk as JSON text, for jwt_key_from_jwk.
// against an expectation the input picks (method, htu, now, window, an
// access token's ath, a nonce, a bound key's thumbprint).  Beyond "no
// crash", it aborts when a promise is broken:
//   - kOk only for a proof the harness signed, with the key in its jwk
//     (the key's RFC 7638 thumbprint, computed here, is the jkt), that
//     says what was expected: typ dpop+jwt, alg of its key, no crit, no
//     private members, jti of 1 to 256 bytes, htm, htu (query and
//     fragment left out, scheme and host without case), iat (or a real
//     iat's integer part) within the window, ath, a current nonce, the
//     bound key;
//   - kUseNonce only when a nonce was asked for, and only for a proof
//     the harness signed (the nonce is checked last);
//   - a proof with every member as expected is accepted (else the
//     harness proves nothing), and never once one byte of it changed;
//   - a key jwt_key_from_jwk accepts is an object without private
//     members whose kid is the thumbprint of its required members as
//     given (one key, one jkt);
//   - dpop_nonce is accepted by dpop_nonce_ok; issuer_url is the issuer's
//     origin and the path, or empty.
// Build and run with scripts/fuzz-dpop.

#include <fuzzer/FuzzedDataProvider.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "codec.hpp"
#include "crypto.hpp"
#include "dpop.hpp"
#include "json.hpp"
#include "jwt.hpp"

namespace {

using oauth2::DpopExpect;
using oauth2::DpopProof;
using oauth2::DpopStatus;
using oauth2::Json;

void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz-dpop: broken promise: %s\n", what);
    std::abort();
  }
}

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "fuzz-dpop: %s\n", what);
  std::exit(1);
}

std::string b64(std::string_view s) {
  return oauth2::b64url_encode(s);
}

std::string thumbprint_of(const std::string& canonical) {
  oauth2::Digest d = oauth2::sha256(canonical);
  return oauth2::base64url_encode(d.data(), d.size());
}

constexpr int64_t kNow = 1700000000;
const char* const kAccessToken = "fuzz-dpop-access-token";

// A client's key pair: its public JWK as text, its RFC 7638 thumbprint
// (computed here, not by the code under test) and its signatures.
struct ClientKey {
  enum Kind { kEs, kEd, kRs } kind;
  EVP_PKEY* pk = nullptr;
  std::string jwk;  // the public members, as a client sends them
  std::string thumbprint;

  const char* alg() const { return kind == kEs ? "ES256" : kind == kEd ? "EdDSA" : "RS256"; }

  std::string bn(const char* name, int pad) const {
    BIGNUM* b = nullptr;
    if (EVP_PKEY_get_bn_param(pk, name, &b) != 1) die("a key parameter");
    std::string out(pad ? static_cast<size_t>(pad) : static_cast<size_t>(BN_num_bytes(b)), '\0');
    BN_bn2binpad(b, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(out.size()));
    BN_free(b);
    return b64(out);
  }

  explicit ClientKey(Kind k) : kind(k) {
    pk = k == kEs   ? EVP_EC_gen("P-256")
         : k == kEd ? EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")
                    : EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048});
    if (!pk) die("keygen failed");
    std::string canonical;
    if (k == kEs) {
      std::string x = bn(OSSL_PKEY_PARAM_EC_PUB_X, 32), y = bn(OSSL_PKEY_PARAM_EC_PUB_Y, 32);
      canonical = R"({"crv":"P-256","kty":"EC","x":")" + x + R"(","y":")" + y + "\"}";
    } else if (k == kEd) {
      unsigned char x[32];
      size_t len = sizeof(x);
      if (EVP_PKEY_get_raw_public_key(pk, x, &len) != 1 || len != 32) die("Ed25519 key");
      canonical = R"({"crv":"Ed25519","kty":"OKP","x":")" +
                  b64(std::string_view(reinterpret_cast<char*>(x), 32)) + "\"}";
    } else {
      canonical = R"({"e":")" + bn(OSSL_PKEY_PARAM_RSA_E, 0) + R"(","kty":"RSA","n":")" +
                  bn(OSSL_PKEY_PARAM_RSA_N, 0) + "\"}";
    }
    jwk = canonical;
    thumbprint = thumbprint_of(canonical);
  }

  std::string sign(std::string_view input) const {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    size_t len = 0;
    const auto* in = reinterpret_cast<const unsigned char*>(input.data());
    if (!ctx ||
        EVP_DigestSignInit_ex(ctx.get(), nullptr, kind == kEd ? nullptr : "SHA256", nullptr,
                              nullptr, pk, nullptr) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &len, in, input.size()) != 1) {
      die("signing failed");
    }
    std::string sig(len, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, in,
                       input.size()) != 1) {
      die("signing failed");
    }
    sig.resize(len);
    if (kind != kEs) return sig;
    // DER to r||s, with the s OpenSSL picked, low or high, as a client's
    // library sends it (both verify)
    const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
    ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(es, &r, &s);
    unsigned char rs[64];
    BN_bn2binpad(r, rs, 32);
    BN_bn2binpad(s, rs + 32, 32);
    ECDSA_SIG_free(es);
    return std::string(reinterpret_cast<char*>(rs), 64);
  }
};

ClientKey* g_keys[3];
oauth2::Digest g_nonce_key;

// FUZZ_STATS=1: how many proofs each mode saw accepted, refused and asked
// for a nonce, printed at exit, to see how deep the inputs reach
unsigned long (*g_stats)[3];
unsigned g_mode;

void print_stats() {
  static const char* const kModes[] = {"raw", "signed", "spliced", "jwk"};
  for (unsigned m = 0; m < 4; m++) {
    std::fprintf(stderr, "%-8s ok %lu refused %lu use_nonce %lu\n", kModes[m], g_stats[m][0],
                 g_stats[m][1], g_stats[m][2]);
  }
}

// The expectation of one request.
struct Expect {
  std::string method, htu, issuer, path;
  DpopExpect e;
};

Expect pick_expect(FuzzedDataProvider& in) {
  static const char* const kMethods[] = {"POST", "GET", "PUT", "post"};
  static const char* const kIssuers[] = {"https://as.example", "https://AS.Example:8443/base/",
                                         "http://127.0.0.1:8080", "https://as.example?x#y"};
  static const char* const kPaths[] = {"/o/token/", "/api/v1/things", "/"};
  Expect x;
  const unsigned sel = in.ConsumeIntegral<uint8_t>();
  x.method = sel & 7 ? kMethods[sel & 3] : in.ConsumeRandomLengthString(8);
  x.issuer = (sel >> 3) & 7 ? kIssuers[(sel >> 3) & 3] : in.ConsumeRandomLengthString(40);
  x.path = (sel >> 6) ? kPaths[(sel >> 6) % 3] : in.ConsumeRandomLengthString(40);
  x.htu = oauth2::issuer_url(x.issuer, x.path);
  x.e.method = x.method;
  x.e.htu = x.htu;
  const unsigned sel2 = in.ConsumeIntegral<uint8_t>();
  static const int64_t kWindows[] = {60, 1, 300, 0};
  x.e.window = kWindows[sel2 & 3];
  x.e.now = kNow + (sel2 & 4 ? in.ConsumeIntegralInRange<int64_t>(-1000, 1000) : 0);
  if (sel2 & 8) x.e.access_token = kAccessToken;
  if (sel2 & 16) x.e.nonce_key = &g_nonce_key;
  switch ((sel2 >> 5) & 3) {
    case 1: x.e.jkt = g_keys[0]->thumbprint; break;
    case 2: x.e.jkt = g_keys[1]->thumbprint; break;
    case 3: x.e.jkt = g_keys[2]->thumbprint; break;
    default: break;
  }
  return x;
}

// issuer_url: the issuer's scheme://authority, then the path; or empty
void check_htu(const Expect& x) {
  const std::string& i = x.issuer;
  size_t s = i.find("://");
  bool http = s != std::string::npos &&
              (oauth2::iequals(i.substr(0, s), "https") || oauth2::iequals(i.substr(0, s), "http"));
  if (!http || s + 3 >= i.size()) {
    require(x.htu.empty(), "issuer_url of an issuer that is not an http(s) URL");
    return;
  }
  size_t end = i.find_first_of("/?#", s + 3);
  require(x.htu == i.substr(0, end) + x.path, "issuer_url is not the origin and the path");
}

// RFC 9449 4.3 check 9, as this harness reads it: the htu without query
// and fragment; scheme and host compared without case, the rest exactly
bool htu_ok(std::string got, const std::string& want) {
  if (want.empty()) return false;
  got = got.substr(0, got.find_first_of("?#"));
  if (got.size() != want.size()) return false;
  size_t origin = want.find('/', want.find("://") + 3);
  if (origin == std::string::npos) origin = want.size();
  return oauth2::iequals(std::string_view(got).substr(0, origin),
                         std::string_view(want).substr(0, origin)) &&
         got.substr(origin) == want.substr(origin);
}

bool nonce_current(std::string_view n, const Expect& x) {
  const int64_t w = std::max<int64_t>(1, x.e.window);
  return n == oauth2::dpop_nonce(g_nonce_key, x.e.now, w) ||
         n == oauth2::dpop_nonce(g_nonce_key, x.e.now - w, w);
}

const json_t* str_member(const json_t* o, const char* name) {
  const json_t* v = json_object_get(o, name);
  return json_is_string(v) ? v : nullptr;
}

std::string sv(const json_t* s) {
  return std::string(json_string_value(s), json_string_length(s));
}

Json decode_segment(std::string_view seg) {
  std::string text;
  if (!oauth2::b64url_decode(seg, text)) return Json();
  return Json(json_loadb(text.data(), text.size(), JSON_REJECT_DUPLICATES, nullptr));
}

// What a proof dpop_check accepted must say, read here on its own.
// signer: the harness key that signed it (nullptr: none did).
void check_accepted(std::string_view proof, const Expect& x, const DpopProof& p,
                    const ClientKey* signer) {
  require(signer != nullptr, "a DPoP proof the harness did not sign was accepted");
  require(p.jkt == signer->thumbprint,
          "a DPoP proof was accepted with another key than the one that signed it");
  require(x.e.jkt.empty() || p.jkt == x.e.jkt, "a DPoP proof of another key than the bound one");
  size_t a = proof.find('.'), b = proof.rfind('.');
  require(a != std::string_view::npos && a < b, "an accepted proof without three segments");
  Json h = decode_segment(proof.substr(0, a));
  Json c = decode_segment(proof.substr(a + 1, b - a - 1));
  require(h && json_is_object(h.get()) && c && json_is_object(c.get()),
          "an accepted proof whose header or claims are not JSON objects");
  const json_t* typ = str_member(h.get(), "typ");
  require(typ && oauth2::iequals(sv(typ), "dpop+jwt"), "an accepted proof's typ");
  require(!json_object_get(h.get(), "crit"), "an accepted proof with crit");
  const json_t* alg = str_member(h.get(), "alg");
  require(alg && sv(alg) == signer->alg(), "an accepted proof's alg is not its key's");
  const json_t* jwk = json_object_get(h.get(), "jwk");
  for (const char* priv : {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}) {
    require(!json_object_get(jwk, priv), "an accepted proof's jwk has private members");
  }
  const json_t* jti = str_member(c.get(), "jti");
  require(jti && json_string_length(jti) >= 1 && json_string_length(jti) <= oauth2::kDpopMaxJti,
          "an accepted proof's jti");
  require(p.jti == sv(jti), "dpop_check's jti is not the proof's");
  const json_t* htm = str_member(c.get(), "htm");
  require(htm && sv(htm) == x.method, "an accepted proof for another method");
  const json_t* htu = str_member(c.get(), "htu");
  require(htu && htu_ok(sv(htu), x.htu), "an accepted proof for another URL");
  // a NumericDate (RFC 7519 2): an integer, or a real whose integer part
  // is in the window
  const json_t* iat = json_object_get(c.get(), "iat");
  const double t = json_is_integer(iat) ? static_cast<double>(json_integer_value(iat))
                                        : std::trunc(json_real_value(iat));
  require(json_is_number(iat) && t >= static_cast<double>(x.e.now - x.e.window) &&
              t <= static_cast<double>(x.e.now + x.e.window),
          "an accepted proof's iat is out of the window");
  if (!x.e.access_token.empty()) {
    const json_t* ath = str_member(c.get(), "ath");
    require(ath && sv(ath) == oauth2::dpop_ath(x.e.access_token), "an accepted proof's ath");
  }
  if (x.e.nonce_key) {
    const json_t* nonce = str_member(c.get(), "nonce");
    require(nonce && nonce_current(sv(nonce), x), "an accepted proof without a current nonce");
  }
}

void check_proof(std::string_view proof, const Expect& x, const ClientKey* signer) {
  DpopProof p = oauth2::dpop_check(proof, x.e);
  DpopProof again = oauth2::dpop_check(proof, x.e);
  require(p.status == again.status && p.jkt == again.jkt && p.jti == again.jti,
          "dpop_check is not deterministic");
  require(p.why != nullptr, "a status without its reason");
  if (g_stats) g_stats[g_mode][static_cast<int>(p.status)]++;
  if (p.status == DpopStatus::kOk) {
    check_accepted(proof, x, p, signer);
    return;
  }
  require(p.jkt.empty(), "a refused proof with a jkt");
  if (p.status == DpopStatus::kUseNonce) {
    require(x.e.nonce_key != nullptr, "use_dpop_nonce without a nonce asked for");
    // everything but the nonce holds: the proof was signed by a key here
    require(signer != nullptr, "use_dpop_nonce for a proof the harness did not sign");
  }
}

// ------------------------------------------------------------- proofs

std::string signed_proof(const ClientKey& k, const std::string& header, const std::string& claims) {
  std::string input = b64(header) + '.' + b64(claims);
  return input + '.' + b64(k.sign(input));
}

std::string json_str(std::string_view s) {
  Json j(json_stringn(s.data(), s.size()));
  if (!j) return "\"\"";  // not UTF-8: the harness writes its own bytes below
  return oauth2::json_text(j.get(), JSON_ENCODE_ANY);
}

// A member's text: the expected value (most of the time), a
// variant, the input's bytes as a JSON string, the input's bytes as
// raw text, or absent ("").
std::string member(FuzzedDataProvider& in, const char* name, const std::string& expected,
                   const std::vector<std::string>& variants, bool* honest) {
  const unsigned c = in.ConsumeIntegralInRange<unsigned>(0, 31);
  std::string v;
  if (c < 26) {
    v = expected;
  } else if (c < 26 + variants.size() && c < 29) {
    v = variants[c - 26];
  } else if (c == 29) {
    v = json_str(in.ConsumeRandomLengthString(64));
  } else if (c == 30) {
    v = in.ConsumeRandomLengthString(64);
  } else {
    *honest = false;
    return "";
  }
  if (v != expected) *honest = false;
  return '"' + std::string(name) + "\":" + v;
}

void add(std::string& obj, const std::string& m) {
  if (m.empty()) return;
  if (obj.size() > 1) obj += ',';
  obj += m;
}

// The header: typ, alg and jwk, each as expected or not, then members
// of the input's text.
std::string header_text(FuzzedDataProvider& in, unsigned sel, const ClientKey& k,
                        const ClientKey& other, bool* honest) {
  std::string jwk = k.jwk;
  switch ((sel >> 4) & 7) {  // 4 to 7: the key's own
    case 1:
      jwk = other.jwk;  // signed by k, another key named
      *honest = false;
      break;
    case 2: {
      // the key's members, then the input's (a private "d", a second
      // "x", another kty...)
      std::string extra = in.ConsumeRandomLengthString(64);
      if (!extra.empty()) {
        jwk.pop_back();
        jwk += ',' + extra + '}';
        *honest = false;
      }
      break;
    }
    case 3:
      jwk = in.ConsumeRandomLengthString(256);
      *honest = *honest && jwk == k.jwk;
      break;
    default: break;
  }
  std::string h = "{";
  add(h, member(in, "typ", "\"dpop+jwt\"", {"\"DPoP+JWT\"", "\"JWT\"", "\"at+jwt\""}, honest));
  add(h, member(in, "alg", '"' + std::string(k.alg()) + '"',
                {'"' + std::string(other.alg()) + '"', "\"none\"", "\"HS256\""}, honest));
  add(h, member(in, "jwk", jwk, {other.jwk, "{}", "null"}, honest));
  // now and then, members of the input's text (else most proofs would
  // not be JSON)
  std::string tail = in.ConsumeIntegralInRange(0, 3) == 0 ? in.ConsumeRandomLengthString(64) : "";
  if (!tail.empty()) {
    *honest = false;
    add(h, tail);
  }
  return h + '}';
}

// The claims: jti, htm, htu, iat, ath and nonce, each as expected or
// not, then members of the input's text.
std::string claims_text(FuzzedDataProvider& in, unsigned sel, const Expect& x, bool* honest) {
  const int64_t iat =
      x.e.now + (in.ConsumeBool() ? 0 : in.ConsumeIntegralInRange<int64_t>(-400, 400));
  const int64_t w = std::max<int64_t>(1, x.e.window);
  const std::string& htu = x.htu;
  std::string upper = htu;
  for (size_t i = 0; i < upper.size() && i < upper.find('/', upper.find("://") + 3); i++) {
    if (upper[i] >= 'a' && upper[i] <= 'z') upper[i] = static_cast<char>(upper[i] - 32);
  }
  // a method or URL of the input's bytes that JSON cannot carry (the
  // parser takes no \u0000 either)
  for (const std::string* s : {&x.method, &htu}) {
    if (!oauth2::valid_utf8(*s) || s->find('\0') != std::string::npos) *honest = false;
  }
  std::string c = "{";
  add(c, member(in, "jti", json_str("jti-" + std::to_string(sel)),
                {"\"\"", "1", json_str(std::string(257, 'j'))}, honest));
  add(c, member(in, "htm", json_str(x.method), {"\"GET\"", "\"post\"", "\"POST \""}, honest));
  add(c, member(in, "htu", json_str(htu),
                {json_str(upper), json_str(htu + "?q=1#f"), json_str(htu + "/")}, honest));
  add(c, member(in, "iat", std::to_string(iat),
                {std::to_string(iat) + ".0", '"' + std::to_string(iat) + '"',
                 std::to_string(x.e.now - x.e.window - 1)},
                honest));
  if (iat < x.e.now - x.e.window || iat > x.e.now + x.e.window) *honest = false;
  if (!x.e.access_token.empty() || in.ConsumeBool()) {
    const std::string ath =
        x.e.access_token.empty() ? oauth2::dpop_ath("other") : oauth2::dpop_ath(x.e.access_token);
    add(c, member(in, "ath", json_str(ath), {json_str(oauth2::dpop_ath("other")), "\"\""}, honest));
  }
  if (x.e.nonce_key || in.ConsumeBool()) {
    add(c, member(in, "nonce", json_str(oauth2::dpop_nonce(g_nonce_key, x.e.now, w)),
                  {json_str(oauth2::dpop_nonce(g_nonce_key, x.e.now - w, w)),
                   json_str(oauth2::dpop_nonce(g_nonce_key, x.e.now + w, w)),
                   json_str(oauth2::dpop_nonce(g_nonce_key, x.e.now - 2 * w, w))},
                  honest));
  }
  std::string tail = in.ConsumeIntegralInRange(0, 3) == 0 ? in.ConsumeRandomLengthString(64) : "";
  if (!tail.empty()) {
    *honest = false;
    add(c, tail);
  }
  return c + '}';
}

void structured(FuzzedDataProvider& in, const Expect& x) {
  const unsigned sel = in.ConsumeIntegral<uint8_t>();
  const ClientKey& k = *g_keys[sel % 3];
  const ClientKey& other = *g_keys[(sel / 3 + 1 + sel % 3) % 3];
  bool honest = x.e.jkt.empty() || x.e.jkt == k.thumbprint;
  const std::string h = header_text(in, sel, k, other, &honest);
  const std::string c = claims_text(in, sel, x, &honest);
  const std::string proof = signed_proof(k, h, c);
  check_proof(proof, x, &k);
  // htu must be an http(s) URL for anything to be accepted; a proof of
  // the expected members, signed by the key it names, is
  if (honest && !x.htu.empty() && x.htu.find_first_of("?#") == std::string::npos) {
    DpopProof p = oauth2::dpop_check(proof, x.e);
    if (p.status != DpopStatus::kOk) std::fprintf(stderr, "fuzz-dpop: %s\n", p.why);
    require(p.status == DpopStatus::kOk, "a proof of every expected member was refused");
  }
  // one byte of it changed, not signed again: never accepted (strict
  // base64url gives no segment a second spelling)
  if (!proof.empty() && in.remaining_bytes()) {
    std::string t = proof;
    size_t at = in.ConsumeIntegralInRange<size_t>(0, t.size() - 1);
    t[at] = static_cast<char>(t[at] ^ in.ConsumeIntegralInRange<uint8_t>(1, 255));
    DpopProof p = oauth2::dpop_check(t, x.e);
    require(p.status != DpopStatus::kOk, "a proof changed after its signature was accepted");
  }
}

// A proof the harness signed, one segment replaced by, or with a member
// added from, the input's bytes; the signature left as it was.
void spliced(FuzzedDataProvider& in, const Expect& x) {
  const unsigned sel = in.ConsumeIntegral<uint8_t>();
  const ClientKey& k = *g_keys[sel % 3];
  std::string h =
      R"({"typ":"dpop+jwt","alg":")" + std::string(k.alg()) + R"(","jwk":)" + k.jwk + "}";
  const int64_t w = std::max<int64_t>(1, x.e.window);
  std::string c = R"({"jti":"j1","htm":)" + json_str(x.method) + R"(,"htu":)" + json_str(x.htu) +
                  R"(,"iat":)" + std::to_string(x.e.now) + R"(,"ath":)" +
                  json_str(oauth2::dpop_ath(kAccessToken)) + R"(,"nonce":)" +
                  json_str(oauth2::dpop_nonce(g_nonce_key, x.e.now, w)) + "}";
  const std::string base = signed_proof(k, h, c);
  const std::string piece = in.ConsumeRemainingBytesAsString();
  size_t a = base.find('.'), b = base.rfind('.');
  std::string t;
  const std::string enc = (sel & 8) ? b64(piece) : piece;
  switch ((sel >> 4) & 3) {
    case 0: t = enc + base.substr(a); break;
    case 1: t = base.substr(0, a + 1) + enc + base.substr(b); break;
    case 2: t = base.substr(0, b + 1) + enc; break;
    default: {
      std::string json = (sel & 64) ? c : h;
      json.pop_back();
      json += ',' + piece + '}';
      t = (sel & 64) ? base.substr(0, a + 1) + b64(json) + base.substr(b)
                     : b64(json) + base.substr(a);
    }
  }
  DpopProof p = oauth2::dpop_check(t, x.e);
  if (p.status == DpopStatus::kOk) {
    require(t == base, "a spliced proof was accepted");
    check_accepted(t, x, p, &k);
  }
  check_proof(t, x, t == base ? &k : nullptr);
}

// jwt_key_from_jwk: a key accepted is the JWK's own, its kid the RFC 7638
// thumbprint of its required members as given
void check_jwk(std::string_view text) {
  Json j(json_loadb(text.data(), text.size(), 0, nullptr));
  if (!j) return;
  std::string why;
  std::shared_ptr<oauth2::JwtKey> key = oauth2::jwt_key_from_jwk(j.get(), &why);
  if (g_stats) g_stats[3][key ? 0 : 1]++;
  if (!key) {
    require(!why.empty(), "a jwk refused without a reason");
    return;
  }
  require(json_is_object(j.get()), "a jwk that is not an object was accepted");
  for (const char* priv : {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}) {
    require(!json_object_get(j.get(), priv), "a jwk with private members was accepted");
  }
  require(!key->can_sign(), "a client's jwk became a signing key");
  const json_t* kty = str_member(j.get(), "kty");
  require(kty != nullptr, "a jwk without a kty was accepted");
  auto m = [&](const char* name) {
    const json_t* v = str_member(j.get(), name);
    require(v != nullptr, "an accepted jwk lacks a required member");
    return '"' + std::string(name) + "\":\"" + sv(v) + '"';
  };
  std::string canonical;
  const std::string t = sv(kty);
  if (t == "EC") {
    canonical = '{' + m("crv") + ',' + m("kty") + ',' + m("x") + ',' + m("y") + '}';
    require(key->alg() == oauth2::JwtAlg::kES256, "an EC jwk is not ES256");
  } else if (t == "RSA") {
    canonical = '{' + m("e") + ',' + m("kty") + ',' + m("n") + '}';
    require(key->alg() == oauth2::JwtAlg::kRS256, "an RSA jwk is not RS256");
  } else if (t == "OKP") {
    canonical = '{' + m("crv") + ',' + m("kty") + ',' + m("x") + '}';
    require(key->alg() == oauth2::JwtAlg::kEdDSA, "an OKP jwk is not EdDSA");
  } else {
    require(false, "a jwk of another kty was accepted");
  }
  require(key->kid() == thumbprint_of(canonical),
          "an accepted jwk's kid is not the RFC 7638 thumbprint of its members");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_keys[0] = new ClientKey(ClientKey::kEs);
  g_keys[1] = new ClientKey(ClientKey::kEd);
  g_keys[2] = new ClientKey(ClientKey::kRs);
  for (size_t i = 0; i < g_nonce_key.size(); i++)
    g_nonce_key[i] = static_cast<unsigned char>(i * 7);
  // the keys' own JWKs go through jwt_key_from_jwk as a client's would
  for (const ClientKey* k : g_keys) {
    check_jwk(k->jwk);
    std::string why;
    Json j(json_loads(k->jwk.c_str(), 0, nullptr));
    auto key = oauth2::jwt_key_from_jwk(j.get(), &why);
    require(key && key->kid() == k->thumbprint, "a client key of the harness was refused");
  }
  if (std::getenv("FUZZ_STATS")) {
    g_stats = new unsigned long[4][3]();
    std::atexit(print_stats);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const unsigned mode = in.ConsumeIntegralInRange<unsigned>(0, 3);
  g_mode = mode;
  Expect x = pick_expect(in);
  check_htu(x);
  {
    const int64_t w = std::max<int64_t>(1, x.e.window);
    require(oauth2::dpop_nonce_ok(g_nonce_key, oauth2::dpop_nonce(g_nonce_key, x.e.now, w), x.e.now,
                                  x.e.window),
            "dpop_nonce_ok refused the current nonce");
  }
  switch (mode) {
    case 0: check_proof(in.ConsumeRemainingBytesAsString(), x, nullptr); break;
    case 1: structured(in, x); break;
    case 2: spliced(in, x); break;
    default: check_jwk(in.ConsumeRemainingBytesAsString());
  }
  return 0;
}
