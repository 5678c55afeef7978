// libFuzzer harness for src/core/jwt (docs/security.md R81 and 2.4): jwt_verify,
// jwt_peek_claims and strict base64url.  Beyond "no crash", it checks what
// each promises and aborts when a promise is broken; above all, that no
// signature verifies on a token the harness did not sign itself.  Each input
// is read as a token, then spliced into a segment of a signed token.  Build
// and run with scripts/fuzz-jwt, which makes the keys this harness reads
// from the directory named by FUZZ_JWT_KEYS.
//
// ES256 signatures are randomized and the corpus outlives a run, so every
// token the harness signs goes into a ledger in that directory ("signed"),
// and a verified signature is checked against all of them.

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "json.hpp"
#include "jwt.hpp"

namespace {

using oauth2::b64url_decode;
using oauth2::b64url_encode;
using oauth2::Json;
using oauth2::JwtAlg;
using oauth2::JwtCheck;
using oauth2::JwtKey;
using oauth2::JwtKeys;
using oauth2::JwtResult;
using oauth2::JwtStatus;

void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz-jwt: broken promise: %s\n", what);
    std::abort();
  }
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "fuzz-jwt: %s\n", what.c_str());
  std::exit(1);
}

constexpr int64_t kNow = 1700000000;
constexpr std::string_view kHmacSecret = "fuzz-jwt: 32 fixed HS256 bytes!!";
static_assert(kHmacSecret.size() == 32);
constexpr const char* kHmacKid = "fuzz-hs256";

enum Which { kHs, kEs, kEd, kRs, kKeys };
constexpr const char* kPemFile[kKeys] = {nullptr, "es256", "eddsa", "rs256"};
constexpr JwtAlg kAlg[kKeys] = {JwtAlg::kHS256, JwtAlg::kES256,
                                JwtAlg::kEdDSA, JwtAlg::kRS256};

// A token the harness signed: by jwt_sign (issued: may verify kOk) or by
// hand over a header or payload that must be refused (crafted: never kOk).
struct Signed {
  std::string kid;
  bool issued = false;
};

struct Entry {
  bool issued;
  std::string kid;
  std::string token;
};

struct State {
  std::shared_ptr<JwtKey> key[kKeys];
  std::shared_ptr<JwtKey> pub[kKeys];  // public halves; none for HS256
  EVP_PKEY* raw[kKeys] = {};           // EdDSA and RS256, for crafted tokens
  JwtKeys all;                         // the four keys
  JwtKeys one[kKeys];                  // each key alone
  JwtKeys pubs;                        // the three public halves
  std::unordered_map<std::string, Signed> known;
  std::vector<std::string> bases;  // the ledger's issued tokens, for splicing
  std::vector<Which> base_key;
  JwtCheck strict, lax;
};

State* g = nullptr;  // made once at start-up, never freed

std::string b64(std::string_view s) { return b64url_encode(s); }

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) die("cannot read " + path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void write_file(const std::string& path, std::string_view data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
  if (!f.flush()) die("cannot write " + path);
}

Json parse(std::string_view text, size_t flags = 0) {
  return Json(json_loadb(text.data(), text.size(), flags, nullptr));
}

// Nesting of a parsed value, counted on the value, not on its text.
size_t depth(const json_t* j) {
  size_t d = 0;
  if (json_is_object(j)) {
    const char* k;
    json_t* v;
    json_object_foreach(const_cast<json_t*>(j), k, v) {
      d = std::max(d, depth(v));
    }
    return d + 1;
  }
  if (json_is_array(j)) {
    for (size_t i = 0; i < json_array_size(j); i++) {
      d = std::max(d, depth(json_array_get(j, i)));
    }
    return d + 1;
  }
  return 0;
}

// ------------------------------------------------------------ promises

// (1) Whatever jwt_verify says about a token.  base: the signed token a
// spliced one came from, the only one it may verify as.
void check_verify(const JwtKeys& keys, std::string_view token,
                  const JwtCheck& check, const std::string* base) {
  JwtResult r = oauth2::jwt_verify(keys, token, check);
  switch (r.status) {
    case JwtStatus::kMalformed:
      break;
    case JwtStatus::kUnknownKey:
    case JwtStatus::kBadSignature:
      require(!r.key, "a key named on a refused signature");
      break;
    default:
      require(r.key && r.claims, "a claim status without verified claims");
  }
  if (!r.key) {
    require(!r.claims, "claims without a verified signature");
    return;
  }
  auto it = g->known.find(std::string(token));
  require(it != g->known.end(),
          "a signature verified on a token the harness never signed");
  require(r.key->kid() == it->second.kid,
          "a token verified under a key that did not sign it");
  require(keys.find(r.key->kid()) == r.key, "a key from outside the set");
  require(!base || token == *base, "a spliced token verified");
  if (r.status == JwtStatus::kOk) {
    require(it->second.issued, "kOk for a token jwt_sign did not make");
  }
  if (r.claims) {
    Json peek = oauth2::jwt_peek_claims(token);
    require(peek && json_equal(peek.get(), r.claims.get()),
            "jwt_verify and jwt_peek_claims read different claims");
  }
}

void check_all_sets(std::string_view token, const std::string* base) {
  check_verify(g->all, token, g->strict, base);
  check_verify(g->all, token, g->lax, base);
  for (const JwtKeys& one : g->one) check_verify(one, token, g->lax, base);
  check_verify(g->pubs, token, g->lax, base);
}

// (2) jwt_peek_claims: an object exactly when the token has three segments
// of strict base64url and the middle one is a JSON object without duplicate
// names nested at most 16 deep; then it is what jansson reads there.
void check_peek(std::string_view in) {
  Json got = oauth2::jwt_peek_claims(in);
  Json want;
  std::string text;
  size_t a = in.find('.');
  size_t b = a == std::string_view::npos ? a : in.find('.', a + 1);
  std::string h, s;
  if (in.size() <= oauth2::kJwtMaxBytes && b != std::string_view::npos &&
      in.find('.', b + 1) == std::string_view::npos && a > 0 && b > a + 1 &&
      b64url_decode(in.substr(0, a), h) &&
      b64url_decode(in.substr(b + 1), s) &&
      b64url_decode(in.substr(a + 1, b - a - 1), text)) {
    want = parse(text, JSON_REJECT_DUPLICATES);
    if (!json_is_object(want.get()) || depth(want.get()) > 16) want.reset();
  }
  require(!got == !want, "jwt_peek_claims disagrees on a token's form");
  if (!got) return;
  require(json_equal(got.get(), want.get()),
          "jwt_peek_claims is not what jansson reads");
  Json loose = parse(text);
  require(json_equal(got.get(), loose.get()),
          "jwt_peek_claims is not what jansson reads without flags");
}

// (3) strict base64url: one encoding per value, and a round trip
void check_b64(std::string_view in) {
  std::string out;
  if (b64url_decode(in, out)) {
    require(b64(out) == in, "b64url_decode accepted a non-canonical encoding");
  }
  std::string enc = b64(in);
  require(enc.size() == (in.size() * 4 + 2) / 3, "b64url_encode length");
  require(b64url_decode(enc, out) && out == in, "b64url round trip");
}

// (4) The input spliced into a signed token.  Selector byte: bits 0-1 the
// segment (header, payload, signature, or 3: members appended inside the
// header's (bit 2 clear) or payload's (bit 2 set) JSON object); bit 2 for
// segments 0-2: base64url-encode the input first; bits 3-7 which token.
std::string splice(const std::string& base, uint8_t sel,
                   std::string_view piece) {
  size_t a = base.find('.');
  size_t b = base.rfind('.');
  std::string enc;
  if ((sel & 3) != 3 && (sel & 4)) {
    enc = b64(piece);
    piece = enc;
  }
  std::string t;
  switch (sel & 3) {
    case 0:
      t.append(piece).append(base, a, std::string::npos);
      break;
    case 1:
      t.append(base, 0, a + 1).append(piece).append(base, b,
                                                     std::string::npos);
      break;
    case 2:
      t.append(base, 0, b + 1).append(piece);
      break;
    default: {
      bool payload = sel & 4;
      std::string_view seg = payload ? std::string_view(base).substr(
                                           a + 1, b - a - 1)
                                     : std::string_view(base).substr(0, a);
      std::string json;
      require(b64url_decode(seg, json) && json.size() >= 2 &&
                  json.back() == '}',
              "a signed token's segment is not a JSON object");
      json.pop_back();
      if (json.size() > 1) json += ',';
      json.append(piece).push_back('}');
      if (payload) {
        t.append(base, 0, a + 1).append(b64(json)).append(base, b,
                                                          std::string::npos);
      } else {
        t.append(b64(json)).append(base, a, std::string::npos);
      }
    }
  }
  return t;
}

void check_spliced(const uint8_t* data, size_t size) {
  if (size == 0) return;
  uint8_t sel = data[0];
  size_t i = (sel >> 3) % g->bases.size();
  const std::string& base = g->bases[i];
  std::string t =
      splice(base, sel,
             std::string_view(reinterpret_cast<const char*>(data) + 1,
                              size - 1));
  check_verify(g->all, t, g->strict, &base);
  check_verify(g->all, t, g->lax, &base);
  check_verify(g->one[g->base_key[i]], t, g->lax, &base);
  check_verify(g->pubs, t, g->lax, &base);
  check_peek(t);
}

// ------------------------------------------------------- signed tokens

std::string hmac(std::string_view key, std::string_view data) {
  unsigned char out[32];
  size_t len = 0;
  const auto* in = reinterpret_cast<const unsigned char*>(data.data());
  if (!EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(),
                 key.size(), in, data.size(), out, sizeof(out), &len) ||
      len != sizeof(out)) {
    die("HMAC failed");
  }
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string pkey_sign(EVP_PKEY* pk, const char* md, std::string_view data) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(
      EVP_MD_CTX_new(), EVP_MD_CTX_free);
  std::string sig(static_cast<size_t>(EVP_PKEY_get_size(pk)), '\0');
  size_t len = sig.size();
  if (!ctx ||
      EVP_DigestSignInit_ex(ctx.get(), nullptr, md, nullptr, nullptr, pk,
                            nullptr) != 1 ||
      EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(&sig[0]),
                     &len, reinterpret_cast<const unsigned char*>(data.data()),
                     data.size()) != 1) {
    die("signing a crafted token failed");
  }
  sig.resize(len);
  return sig;
}

// A token over any header and payload text, signed with HS256, EdDSA or
// RS256 (deterministic, unlike ES256, which the crafted tokens leave out).
std::string craft(Which w, std::string_view header, std::string_view payload) {
  std::string t = b64(header) + '.' + b64(payload);
  std::string sig = w == kHs   ? hmac(kHmacSecret, t)
                    : w == kEd ? pkey_sign(g->raw[kEd], nullptr, t)
                               : pkey_sign(g->raw[kRs], "SHA256", t);
  return t + '.' + b64(sig);
}

std::string header(Which w, std::string_view extra = {}) {
  return std::string("{\"alg\":\"") + oauth2::jwt_alg_name(kAlg[w]) +
         "\",\"kid\":\"" + g->key[w]->kid() + '"' + std::string(extra) + '}';
}

struct ClaimSet {
  const char* claims;
  const char* typ;
  JwtStatus strict, lax;  // what jwt_verify says with g->strict, g->lax
};

// strict: now, iss https://as.example, aud api, typ at+jwt; lax: now only,
// exp not required.
const ClaimSet kClaimSets[] = {
    {R"({"iss":"https://as.example","sub":"alice","aud":"api",)"
     R"("exp":4102444800,"iat":1700000000,"jti":"a1","scope":"read write"})",
     "at+jwt", JwtStatus::kOk, JwtStatus::kOk},
    {R"({"iss":"https://as.example","aud":["other","api"],)"
     R"("exp":1700000100,"nbf":1699999990,"client_id":"c1"})",
     "JWT", JwtStatus::kWrongType, JwtStatus::kOk},
    {R"({"sub":"\u00e9\u4e2d","exp":1,"x":{"y":[1,2.5,null,true,{"z":"w"}]},)"
     R"("n":[[[[[[[[[[[[[[["[{}]"]]]]]]]]]]]]]]]})",  // 16 deep: the limit
     "application/AT+JWT", JwtStatus::kExpired, JwtStatus::kOk},
    {R"({})", "", JwtStatus::kWrongType, JwtStatus::kOk},
    {R"({"iss":"https://as.example","aud":"other","exp":4102444800})",
     "at+jwt", JwtStatus::kWrongAudience, JwtStatus::kOk},
    {R"({"iss":"https://evil.example","aud":"api","exp":4102444800})",
     "at+jwt", JwtStatus::kWrongIssuer, JwtStatus::kOk},
    {R"({"iss":"https://as.example","aud":"api","exp":4102444800,)"
     R"("nbf":1700000031})",
     "at+jwt", JwtStatus::kNotYetValid, JwtStatus::kNotYetValid},
};

std::string sign(Which w, const char* claims_text, std::string_view typ) {
  Json claims = parse(claims_text);
  require(json_is_object(claims.get()), "a harness claim set is not JSON");
  std::string t = oauth2::jwt_sign(*g->key[w], claims.get(), typ);
  Json peek = oauth2::jwt_peek_claims(t);
  require(peek && json_equal(peek.get(), claims.get()),
          "jwt_sign's payload is not its claims");
  return t;
}

// The longest token jwt_sign makes for w with claims {"exp":..,"pad":".."},
// and the length_error just past it.
std::string sign_longest(Which w) {
  auto with_pad = [w](size_t n) {
    std::string c = R"({"exp":4102444800,"pad":")" + std::string(n, 'p') +
                    "\"}";
    return sign(w, c.c_str(), "");
  };
  size_t n = (oauth2::kJwtMaxBytes - with_pad(0).size()) * 3 / 4 - 4;
  std::string last = with_pad(n);
  for (;;) {
    try {
      std::string t = with_pad(++n);
      last = t;
    } catch (const std::length_error&) {
      break;
    }
  }
  require(last.size() <= oauth2::kJwtMaxBytes &&
              last.size() + 3 >= oauth2::kJwtMaxBytes,
          "jwt_sign refused a token under 8192 bytes");
  return last;
}

// A crafted HS256 token of exactly 8193 bytes that would otherwise verify.
std::string craft_8193() {
  for (size_t ws = 0; ws < 4; ws++) {
    std::string h = "{" + std::string(ws, ' ') +
                    header(kHs).substr(1);
    for (size_t n = 6000; n < 6200; n++) {
      std::string t = craft(kHs, h,
                            R"({"exp":4102444800,"pad":")" +
                                std::string(n, 'p') + "\"}");
      if (t.size() == oauth2::kJwtMaxBytes + 1) return t;
    }
  }
  die("no 8193-byte token");
}

// Crafted tokens whose signature is real: refused for their form or
// header (the signature never checked), or verified and refused as
// malformed for their payload.
struct Crafted {
  Entry e;
  Which w;
  bool verifies;  // the signature, in the set of w alone
};

std::vector<Crafted> crafted() {
  std::vector<Crafted> out;
  bool verifies = false;
  auto add = [&](Which w, const std::string& h, std::string_view p) {
    out.push_back({{false, g->key[w]->kid(), craft(w, h, p)}, w, verifies});
  };
  const char* ok = R"({"exp":4102444800})";
  std::string deep = std::string(16, '[') + "0" + std::string(16, ']');
  // header refusals
  add(kHs, header(kHs, R"(,"crit":["exp"])"), ok);
  add(kRs, header(kRs, R"(,"crit":["exp"])"), ok);
  add(kHs, header(kHs, R"(,"alg":"HS256")"), ok);
  add(kEd, header(kEd, R"(,"kid":")" + g->key[kEd]->kid() + '"'), ok);
  add(kHs, header(kHs, ",\"x\":" + deep), ok);
  add(kHs, R"({"alg":"HS256","kid":1})", ok);
  add(kHs, R"(["HS256"])", ok);
  add(kHs, R"({"alg":"hs256","kid":")" + std::string(kHmacKid) + "\"}", ok);
  add(kHs, R"({"alg":"ES256","kid":")" + std::string(kHmacKid) + "\"}", ok);
  add(kHs, header(kHs), "");
  out.push_back({{false, kHmacKid, craft_8193()}, kHs, false});
  verifies = true;
  // no kid: refused in a set of several; alone, verified, then its payload
  add(kHs, R"({"alg":"HS256"})", R"({"exp":"4102444800"})");
  // payload refusals, after the signature verified
  const char* const bad_payloads[] = {
      R"({"exp":4102444800,"exp":1})",
      R"({"exp":"4102444800"})",
      R"({"exp":4102444800.0})",
      R"({"exp":4102444800,"nbf":true})",
      R"({"exp":4102444800,"iat":"1"})",
      R"([{"exp":4102444800}])",
      R"("exp")",
      R"({"exp":4102444800,"sub":"a\u0000b"})",
      R"({"exp":4102444800}x)",
      R"({"exp":4102444800}{})",
      R"({"exp":123456789012345678901234567890123456789})",
      R"({"exp":1e999})",
      R"({"exp":NaN})",
      R"({'exp':4102444800})",
      R"({"exp":4102444800,})",
      R"({"exp":4102444800/**/})",
      "{\"exp\":4102444800,\"sub\":\"\xff\"}",
      "{\"exp\":4102444800,\"sub\":\"\xc0\xaf\"}",
      R"({"exp":4102444800,"sub":"\ud800"})",
      "\xef\xbb\xbf{\"exp\":4102444800}",
  };
  for (const char* p : bad_payloads) add(kHs, header(kHs), p);
  add(kHs, header(kHs), R"({"exp":4102444800,"a":)" + deep + "}");
  add(kEd, header(kEd), bad_payloads[0]);
  add(kRs, header(kRs), bad_payloads[1]);
  return out;
}

bool deterministic(const std::string& kid) {
  return kid != g->key[kEs]->kid();
}

std::string signing_input(const std::string& t) {
  return t.substr(0, t.rfind('.'));
}

// The ledger: "issued|crafted <kid> <token>" per line, only ever appended.
std::vector<Entry> read_ledger(const std::string& path) {
  std::vector<Entry> out;
  std::ifstream f(path);
  std::string kind, kid, token;
  while (f >> kind >> kid >> token) {
    out.push_back({kind == "issued", kid, token});
  }
  return out;
}

void write_ledger(const std::string& path, const std::vector<Entry>& ledger) {
  std::string text;
  for (const Entry& e : ledger) {
    text += (e.issued ? "issued " : "crafted ") + e.kid + ' ' + e.token + '\n';
  }
  write_file(path + ".tmp", text);
  if (std::rename((path + ".tmp").c_str(), path.c_str()) != 0) {
    die("cannot write " + path);
  }
}

// ------------------------------------------------------------- seeds

// Tokens nobody signed: alg none, HS256 keyed by a public key, padding,
// nesting, odd splits, and selectors for the spliced form.
std::vector<std::pair<std::string, std::string>> unsigned_seeds(
    const std::string& dir) {
  std::vector<std::pair<std::string, std::string>> s;
  std::string claims = b64(kClaimSets[0].claims);
  for (int w = kHs; w < kKeys; w++) {
    std::string kid = g->key[w]->kid();
    s.push_back({"none-" + kid.substr(0, 8),
                 b64(R"({"alg":"none","kid":")" + kid + "\"}") + '.' +
                     claims + '.'});
  }
  for (const char* alg : {"none", "None", "NONE", ""}) {
    s.push_back({std::string("none-nokid-") + alg,
                 b64(std::string(R"({"alg":")") + alg + "\"}") + '.' +
                     claims + '.'});
  }
  // RS256/ES256/EdDSA public keys as HMAC secrets (the key confusion)
  Json jwks = parse(g->all.jwks_json());
  json_t* arr = json_object_get(jwks.get(), "keys");
  for (int w = kEs; w < kKeys; w++) {
    std::string kid = g->key[w]->kid();
    std::string pem = read_file(dir + "/" + kPemFile[w] + ".pub.pem");
    std::string jwk;
    for (size_t i = 0; i < json_array_size(arr); i++) {
      json_t* k = json_array_get(arr, i);
      if (kid == json_string_value(json_object_get(k, "kid"))) {
        jwk = oauth2::json_text(k, JSON_COMPACT);
      }
    }
    std::string trimmed = pem.substr(0, pem.size() - 1);
    std::string head = R"({"alg":"HS256","kid":")" + kid + "\"}";
    std::string in = b64(head) + '.' + claims;
    std::string bare = b64(R"({"alg":"HS256"})") + '.' + claims;
    std::string name = std::string("confusion-") + kPemFile[w];
    s.push_back({name + "-pem", in + '.' + b64(hmac(pem, in))});
    s.push_back({name + "-pem-nonl", in + '.' + b64(hmac(trimmed, in))});
    s.push_back({name + "-jwk", in + '.' + b64(hmac(jwk, in))});
    s.push_back({name + "-nokid", bare + '.' + b64(hmac(pem, bare))});
  }
  // another key's algorithm and signature under a key's kid
  {
    std::string head = R"({"alg":"RS256","kid":")" + g->key[kEs]->kid() + "\"}";
    std::string in = b64(head) + '.' + claims;
    s.push_back({"rs256-under-es256-kid",
                 in + '.' + b64(pkey_sign(g->raw[kRs], "SHA256", in))});
  }
  // padding and the standard alphabet on a signed token
  const std::string& t = g->bases[0];
  size_t a = t.find('.'), b = t.rfind('.');
  s.push_back({"pad-header", t.substr(0, a) + "=" + t.substr(a)});
  s.push_back({"pad-payload", t.substr(0, b) + "==" + t.substr(b)});
  s.push_back({"pad-signature", t + "="});
  std::string std64 = t;
  for (char& c : std64) c = c == '-' ? '+' : c == '_' ? '/' : c;
  s.push_back({"standard-alphabet", std64});
  s.push_back({"four-segments", t + ".e30"});
  s.push_back({"two-segments", t.substr(0, b)});
  s.push_back({"dots", ".."});
  s.push_back({"8193-plus", g->bases.back() + "AAAA"});
  // nesting far past 16, unsigned
  s.push_back({"deep-header", b64(std::string(5000, '[')) + '.' + claims +
                                  ".AAAA"});
  s.push_back({"deep-payload", b64(header(kHs)) + '.' +
                                   b64(std::string(3000, '[')) + ".AAAA"});
  s.push_back({"deep-objects", b64(header(kHs)) + '.' + [] {
                 std::string p;
                 for (int i = 0; i < 1000; i++) p += R"({"a":)";
                 return b64(p + "1" + std::string(1000, '}'));
               }() + '.'});
  // the spliced form: a selector byte, then the piece
  auto base_of = [](Which w) {
    for (size_t i = 0; i < g->bases.size(); i++) {
      if (g->base_key[i] == w) return static_cast<uint8_t>(i << 3);
    }
    return uint8_t{0};
  };
  auto sel = [](uint8_t base, int mode) {
    return std::string(1, static_cast<char>(base | mode));
  };
  s.push_back({"splice-none", sel(base_of(kHs), 4) +
                                  R"({"alg":"none","kid":"fuzz-hs256"})"});
  s.push_back({"splice-dup", sel(base_of(kHs), 5) +
                                 R"({"exp":4102444800,"exp":1})"});
  s.push_back({"splice-crit", sel(base_of(kEd), 3) + R"("crit":["exp"])"});
  s.push_back({"splice-claim", sel(base_of(kRs), 7) + R"("scope":"admin")"});
  s.push_back({"splice-es-zero", sel(base_of(kEs), 6) + std::string(64, '\0')});
  s.push_back({"splice-es-ff", sel(base_of(kEs), 6) + std::string(64, '\xff')});
  s.push_back({"splice-ed-ff", sel(base_of(kEd), 6) + std::string(64, '\xff')});
  s.push_back({"splice-rs-ff",
               sel(base_of(kRs), 6) + std::string(256, '\xff')});
  s.push_back({"splice-rs-short", sel(base_of(kRs), 2) + "AAAA"});
  return s;
}

void start(const char* dir_env, const char* seeds) {
  if (!dir_env || !*dir_env) die("FUZZ_JWT_KEYS names no key directory");
  std::string dir = dir_env;
  g = new State();
  g->key[kHs] = JwtKey::hmac(kHmacSecret, kHmacKid);
  for (int w = kEs; w < kKeys; w++) {
    std::string base = dir + "/" + kPemFile[w];
    g->key[w] = JwtKey::load_file(base + ".pem", false);
    g->pub[w] = JwtKey::load_file(base + ".pub.pem", false);
    require(g->key[w]->alg() == kAlg[w] && g->key[w]->can_sign(),
            "a private key loaded as another algorithm");
    require(g->pub[w]->alg() == kAlg[w] && !g->pub[w]->can_sign(),
            "a public key loaded as another algorithm or as a signer");
    require(g->pub[w]->kid() == g->key[w]->kid(),
            "a public key's kid is not its private key's");
    g->pubs.add(g->pub[w]);
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(
        BIO_new_file((base + ".pem").c_str(), "r"), BIO_free);
    g->raw[w] =
        bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr)
            : nullptr;
    if (!g->raw[w]) die("cannot read " + base + ".pem");
  }
  for (int w = kHs; w < kKeys; w++) {
    g->all.add(g->key[w]);
    g->one[w].add(g->key[w]);
  }
  g->strict.now = kNow;
  g->strict.issuer = "https://as.example";
  g->strict.audience = "api";
  g->strict.typ = "at+jwt";
  g->lax.now = kNow;
  g->lax.check_exp = false;

  // What the harness signs now, with what jwt_verify must say of it.
  struct Fresh {
    Entry e;
    Which w;
    JwtStatus strict, lax;
  };
  std::vector<Fresh> fresh;
  for (int w = kHs; w < kKeys; w++) {
    Which k = static_cast<Which>(w);
    for (const ClaimSet& c : kClaimSets) {
      fresh.push_back({{true, g->key[w]->kid(), sign(k, c.claims, c.typ)},
                       k, c.strict, c.lax});
    }
    fresh.push_back({{true, g->key[w]->kid(), sign_longest(k)}, k,
                     JwtStatus::kWrongType, JwtStatus::kOk});
  }
  std::vector<Crafted> craft_list = crafted();
  for (const Crafted& c : craft_list) {
    // jwt_verify's answer depends on the set; checked below
    fresh.push_back({c.e, c.w, JwtStatus::kMalformed, JwtStatus::kMalformed});
  }

  // Merged into the ledger: HS256, RS256 and EdDSA must sign the same
  // input to the same bytes; ES256 keeps the signature first recorded,
  // unless jwt_verify no longer accepts it (then the new one is recorded).
  // The splice bases: today's claim sets first (a selector reaches 32),
  // then whatever older runs signed.
  std::string path = dir + "/signed";
  std::vector<Entry> ledger = read_ledger(path);
  size_t recorded = ledger.size();
  std::vector<size_t> order;
  for (const Fresh& f : fresh) {
    size_t at = ledger.size();
    for (size_t i = 0; i < ledger.size(); i++) {
      const Entry& e = ledger[i];
      if (e.issued == f.e.issued && e.kid == f.e.kid &&
          signing_input(e.token) == signing_input(f.e.token)) {
        require(!deterministic(e.kid) || e.token == f.e.token,
                "HS256, RS256 or EdDSA signed one input two ways");
        if (deterministic(e.kid) ||
            oauth2::jwt_verify(g->one[f.w], e.token, g->lax).key) {
          at = i;
        }
      }
    }
    if (at == ledger.size()) ledger.push_back(f.e);
    if (f.e.issued) order.push_back(at);
  }
  if (ledger.size() != recorded) write_ledger(path, ledger);
  for (size_t i = 0; i < ledger.size(); i++) {
    g->known[ledger[i].token] = Signed{ledger[i].kid, ledger[i].issued};
    if (ledger[i].issued &&
        std::find(order.begin(), order.end(), i) == order.end()) {
      order.push_back(i);
    }
  }
  for (size_t i : order) {
    for (int w = kHs; w < kKeys; w++) {
      if (g->key[w]->kid() == ledger[i].kid) {
        g->bases.push_back(ledger[i].token);
        g->base_key.push_back(static_cast<Which>(w));
      }
    }
  }
  for (const Fresh& f : fresh) {
    g->known[f.e.token] = Signed{f.e.kid, f.e.issued};
  }
  require(!g->bases.empty(), "no signed token to splice into");

  // Each fresh token as jwt_verify must see it.
  for (const Fresh& f : fresh) {
    const std::string& t = f.e.token;
    check_all_sets(t, nullptr);
    if (!f.e.issued) continue;
    require(oauth2::jwt_verify(g->one[f.w], t, g->lax).key,
            "a signed token did not verify under its key alone");
    require(oauth2::jwt_verify(g->all, t, g->strict).status == f.strict,
            "a signed token's status with the strict check");
    require(oauth2::jwt_verify(g->all, t, g->lax).status == f.lax,
            "a signed token's status with the lax check");
    if (f.w != kHs) {
      require(oauth2::jwt_verify(g->pubs, t, g->lax).status == f.lax,
              "a signed token's status under the public key");
    }
  }
  for (const Crafted& c : craft_list) {
    JwtResult r = oauth2::jwt_verify(g->one[c.w], c.e.token, g->lax);
    require(!r.key == !c.verifies,
            c.verifies ? "a crafted token's signature did not verify"
                       : "a crafted header or form was not refused");
    require(!c.verifies || r.status == JwtStatus::kMalformed,
            "a crafted payload was not refused as malformed");
  }

  if (seeds && *seeds) {
    std::string sd = seeds;
    for (size_t i = 0; i < ledger.size(); i++) {
      char name[32];
      std::snprintf(name, sizeof(name), "/seed-signed-%03zu", i);
      write_file(sd + name, ledger[i].token);
    }
    for (const auto& [name, data] : unsigned_seeds(dir)) {
      write_file(sd + "/seed-" + name, data);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  try {
    start(std::getenv("FUZZ_JWT_KEYS"), std::getenv("FUZZ_JWT_SEEDS"));
  } catch (const std::exception& e) {
    die(std::string("start-up failed: ") + e.what());
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  check_all_sets(in, nullptr);
  check_peek(in);
  check_b64(in);
  check_spliced(data, size);
  return 0;
}
