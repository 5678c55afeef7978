#include "jwt.hpp"

#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>

#include "codec.hpp"
#include "crypto.hpp"

namespace oauth2 {

namespace {

template <typename T, void (*Free)(T*)>
struct Freer {
  void operator()(T* p) const { Free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Freer<EVP_PKEY, EVP_PKEY_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Freer<EVP_MD_CTX, EVP_MD_CTX_free>>;
using MacPtr = std::unique_ptr<EVP_MAC, Freer<EVP_MAC, EVP_MAC_free>>;
using MacCtxPtr = std::unique_ptr<EVP_MAC_CTX, Freer<EVP_MAC_CTX, EVP_MAC_CTX_free>>;
using BioPtr = std::unique_ptr<BIO, Freer<BIO, BIO_free_all>>;
using BnPtr = std::unique_ptr<BIGNUM, Freer<BIGNUM, BN_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, Freer<ECDSA_SIG, ECDSA_SIG_free>>;

constexpr size_t kMinHmacBytes = 32;
constexpr size_t kMaxKeyFile = 64 * 1024;
constexpr size_t kMaxJsonDepth = 16;
constexpr size_t kEs256Half = 32;
// Any fixed message will do: the MAC of it names an HS256 key without
// telling anything about the secret.
constexpr std::string_view kHmacKidLabel = "oauth2 jwt kid";

constexpr std::array<signed char, 256> make_b64url_table() {
  std::array<signed char, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 26; i++) {
    t['A' + i] = static_cast<signed char>(i);
    t['a' + i] = static_cast<signed char>(26 + i);
  }
  for (int i = 0; i < 10; i++) t['0' + i] = static_cast<signed char>(52 + i);
  t['-'] = 62;
  t['_'] = 63;
  return t;
}
constexpr std::array<signed char, 256> kB64url = make_b64url_table();

const unsigned char* uc(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

std::string_view json_sv(const json_t* s) {
  return {json_string_value(s), json_string_length(s)};
}

// Unlike b64url_decode this allocates nothing: the payload is checked
// before the signature and decoded only once that holds.
bool b64url_valid(std::string_view in) {
  if (in.size() % 4 == 1) return false;
  for (char c : in) {
    if (kB64url[static_cast<unsigned char>(c)] < 0) return false;
  }
  if (in.empty()) return true;
  // 2 or 3 characters in the last group leave 4 or 2 bits unused
  int unused = in.size() % 4 == 2 ? 4 : in.size() % 4 == 3 ? 2 : 0;
  int last = kB64url[static_cast<unsigned char>(in.back())];
  return (last & ((1 << unused) - 1)) == 0;
}

struct Segments {
  std::string_view header, payload, signature, signing_input;
};

bool split(std::string_view token, Segments& s) {
  if (token.empty() || token.size() > kJwtMaxBytes) return false;
  size_t a = token.find('.');
  if (a == std::string_view::npos) return false;
  size_t b = token.find('.', a + 1);
  if (b == std::string_view::npos) return false;
  if (token.find('.', b + 1) != std::string_view::npos) return false;
  s.header = token.substr(0, a);
  s.payload = token.substr(a + 1, b - a - 1);
  s.signature = token.substr(b + 1);
  s.signing_input = token.substr(0, b);
  // RFC 7515 allows an empty payload; a JWT's is a JSON object
  return !s.header.empty() && !s.payload.empty();
}

// docs/security.md 2.4: depth is bounded before jansson recurses, duplicate
// names are refused (two parsers could keep different copies).
Json parse_object(std::string_view text) {
  if (json_too_deep(text, kMaxJsonDepth)) return nullptr;
  Json j(json_loadb(text.data(), text.size(), JSON_REJECT_DUPLICATES, nullptr));
  if (!json_is_object(j.get())) return nullptr;
  return j;
}

void put_string(json_t* obj, const char* name, std::string_view value) {
  json_t* v = json_stringn(value.data(), value.size());
  if (!v || json_object_set_new(obj, name, v) != 0) {
    throw std::runtime_error(std::string("cannot encode JSON member ") + name);
  }
}

int64_t saturating_add(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) {
    return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  }
  return r;
}

// A PEM passphrase callback that has none to give: without it OpenSSL
// would prompt on the terminal of `nginx -t`.
int no_passphrase(char*, int, int, void*) {
  return -1;
}

// The whole file into a buffer that is never reallocated, so the caller
// can wipe the one copy of the key.
std::string read_key_file(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(path + ": " + std::strerror(errno));
  std::string buf(kMaxKeyFile + 1, '\0');
  size_t n = 0;
  ssize_t r = 0;
  while (n < buf.size() &&
         ((r = read(fd, &buf[n], buf.size() - n)) > 0 || (r < 0 && errno == EINTR))) {
    if (r > 0) n += static_cast<size_t>(r);
  }
  int err = r < 0 ? errno : 0;
  close(fd);
  buf.resize(n);  // in place: still the one copy
  if (err != 0 || n > kMaxKeyFile) {
    wipe(buf);
    throw std::runtime_error(path + ": " + (err ? std::strerror(err) : "over 64 KiB"));
  }
  return buf;
}

std::string bn_bytes(const BIGNUM* bn, int pad) {
  int len = pad > 0 ? pad : BN_num_bytes(bn);
  std::string out(static_cast<size_t>(len), '\0');
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  if ((pad > 0 ? BN_bn2binpad(bn, p, pad) : BN_bn2bin(bn, p)) != len) {
    throw std::runtime_error("BIGNUM export failed");
  }
  return out;
}

std::string bn_param(const EVP_PKEY* pk, const char* name, int pad) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(pk, name, &raw) != 1) {
    throw std::runtime_error(std::string("cannot read key parameter ") + name);
  }
  BnPtr bn(raw);
  return b64url_encode(bn_bytes(bn.get(), pad));
}

}  // namespace

// Everything that touches JwtKey's members, kept out of the header so the
// public API stays what callers need.
struct JwtImpl {
  static std::shared_ptr<JwtKey> from_hmac(std::string_view secret, std::string kid);
  static std::shared_ptr<JwtKey> from_pem(const std::string& path, std::string_view pem);
  static void export_jwk(JwtKey& k);
  static std::shared_ptr<JwtKey> from_jwk(const json_t* jwk, std::string* why);
  static std::string sign(const JwtKey& k, std::string_view data);
  // any_s: an ES256 signature may have the high s too (see es256_high_s)
  static bool verify(const JwtKey& k, std::string_view data, std::string_view sig,
                     bool any_s = false);
  static bool mac(const JwtKey& k, std::string_view data, std::array<unsigned char, 32>& out);
  static const JwtKey* only_key(const JwtKeys& ks) {
    return ks.keys_.size() == 1 ? ks.keys_.front().get() : nullptr;
  }
  static const std::vector<std::pair<std::string, std::string>>& jwk(const JwtKey& k) {
    return k.jwk_;
  }
};

const char* jwt_alg_name(JwtAlg a) {
  static const char* const kNames[] = {"ES256", "EdDSA", "RS256", "HS256"};
  return kNames[static_cast<size_t>(a)];
}

// ----------------------------------------------------------------- keys

JwtKey::~JwtKey() {
  EVP_PKEY_free(pkey_);
  EVP_MAC_CTX_free(mac_);  // the provider cleanses the key and pad states
}

std::shared_ptr<JwtKey> JwtImpl::from_hmac(std::string_view secret, std::string kid) {
  std::shared_ptr<JwtKey> k(new JwtKey());
  k->alg_ = JwtAlg::kHS256;
  k->can_sign_ = true;
  k->kid_ = std::move(kid);
  // Keyed once here; each MAC starts from EVP_MAC_CTX_dup of this context,
  // which only reads it, so threads share it and skip the key schedule
  // and the digest fetch on every token.
  MacPtr hmac(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
  if (!hmac) throw std::runtime_error("HMAC unavailable");
  k->mac_ = EVP_MAC_CTX_new(hmac.get());
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  if (!k->mac_ || EVP_MAC_init(k->mac_, uc(secret), secret.size(), params) != 1) {
    throw std::runtime_error("HMAC key setup failed");
  }
  return k;
}

std::shared_ptr<JwtKey> JwtKey::hmac(std::string_view secret, std::string kid) {
  if (secret.size() < kMinHmacBytes) {
    throw std::invalid_argument("HS256 secret shorter than 32 bytes");
  }
  if (kid.empty()) throw std::invalid_argument("HS256 key without kid");
  return JwtImpl::from_hmac(secret, std::move(kid));
}

std::shared_ptr<JwtKey> JwtKey::load_file(const std::string& path, bool hmac) {
  if (hmac) return load_hmac_file(path, "", nullptr);
  std::string bytes = read_key_file(path);
  WipeOnExit wipe_bytes(bytes);
  return JwtImpl::from_pem(path, bytes);
}

namespace {

// A key file may end in a newline that is not part of the key: a text
// key's (`echo ... > file`, CRLF too), and the one `oauth2-admin
// handshake-key extract` writes after a 0.8 store's 32 random bytes.  A
// binary key keeps a last newline that it needs to be 32 bytes: those of
// `openssl rand -out file 32`, as conf.example says to make one, end in
// one once in 256 files.
std::string_view key_file_secret(std::string_view bytes) {
  if (bytes.empty() || bytes.back() != '\n') return bytes;
  std::string_view rest = bytes.substr(0, bytes.size() - 1);
  std::string_view text = rest;
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  bool printable = true;
  for (unsigned char c : text) printable = printable && c >= 0x20 && c <= 0x7e;
  if (printable) return text;
  return rest.size() >= kMinHmacBytes ? rest : bytes;
}

}  // namespace

std::shared_ptr<JwtKey> JwtKey::load_hmac_file(const std::string& path,
                                               const std::string& alias_kid,
                                               std::shared_ptr<JwtKey>* alias) {
  std::string bytes = read_key_file(path);
  WipeOnExit wipe_bytes(bytes);
  std::string_view secret = key_file_secret(bytes);
  // RFC 8725 3.1: an HMAC key made of a PEM key's text (a public key's,
  // which anyone may have) would let anyone sign
  if (secret.find("-----BEGIN ") != std::string_view::npos) {
    throw std::runtime_error(path +
                             ": a PEM key, not an HS256 secret (anyone with the public key "
                             "could sign): name it without \"hmac\", or make a secret with "
                             "openssl rand -out <file> 32");
  }
  if (secret.size() < kMinHmacBytes) {
    throw std::runtime_error(path + ": HS256 secret of " + std::to_string(secret.size()) +
                             " bytes, at least 32 needed");
  }
  std::shared_ptr<JwtKey> k = JwtImpl::from_hmac(secret, "");
  std::array<unsigned char, 32> id;
  if (!JwtImpl::mac(*k, kHmacKidLabel, id)) {
    throw std::runtime_error(path + ": HMAC failed");
  }
  k->kid_ = base64url_encode(id.data(), id.size());
  if (alias) *alias = JwtImpl::from_hmac(secret, alias_kid);
  return k;
}

std::shared_ptr<JwtKey> JwtImpl::from_pem(const std::string& path, std::string_view pem) {
  auto refuse = [&path](const std::string& why) {
    ERR_clear_error();
    return std::runtime_error(path + ": " + why);
  };
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) throw std::bad_alloc();
  PkeyPtr pk(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
  bool is_private = pk != nullptr;
  if (!pk) {
    if (pem.find("ENCRYPTED") != std::string_view::npos) {
      throw refuse("encrypted private key; store it without a passphrase");
    }
    ERR_clear_error();
    bio.reset(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (!bio) throw std::bad_alloc();
    pk.reset(PEM_read_bio_PUBKEY(bio.get(), nullptr, no_passphrase, nullptr));
    if (!pk) throw refuse("no PEM private key or public key found");
  }

  std::shared_ptr<JwtKey> k(new JwtKey());
  if (EVP_PKEY_is_a(pk.get(), "EC")) {
    char group[80] = "";
    size_t len = 0;
    if (EVP_PKEY_get_group_name(pk.get(), group, sizeof(group), &len) != 1 ||
        std::string_view(group) != "prime256v1") {
      throw refuse(std::string("EC key on curve ") + (group[0] ? group : "(explicit parameters)") +
                   ", only P-256 (ES256) is supported");
    }
    k->alg_ = JwtAlg::kES256;
  } else if (EVP_PKEY_is_a(pk.get(), "ED25519")) {
    k->alg_ = JwtAlg::kEdDSA;
  } else if (EVP_PKEY_is_a(pk.get(), "RSA")) {
    int bits = EVP_PKEY_get_bits(pk.get());
    if (bits < 2048) {
      throw refuse("RSA key of " + std::to_string(bits) + " bits, at least 2048 needed");
    }
    k->alg_ = JwtAlg::kRS256;
  } else {
    const char* type = EVP_PKEY_get0_type_name(pk.get());
    throw refuse(std::string("unsupported key type ") + (type ? type : "?") +
                 " (EC P-256, Ed25519 or RSA)");
  }
  k->pkey_ = pk.release();
  export_jwk(*k);

  // A signature made and checked at load time: a private key that cannot
  // sign, or whose public half does not match, fails `nginx -t` rather
  // than every token later.
  if (is_private) {
    k->can_sign_ = true;
    constexpr std::string_view kProbe = "oauth2 jwt key check";
    std::string sig;
    try {
      sig = sign(*k, kProbe);
    } catch (const std::runtime_error&) {
      throw refuse("the private key cannot sign");
    }
    if (!verify(*k, kProbe, sig)) {
      throw refuse("the private key does not match its public key");
    }
  }
  return k;
}

// The public members RFC 7518 6.2.1 / 6.3.1 and RFC 8037 2 define, with
// EC coordinates padded to the field size as 6.2.1.2 requires.
void JwtImpl::export_jwk(JwtKey& k) {
  const EVP_PKEY* pk = k.pkey_;
  switch (k.alg_) {
    case JwtAlg::kES256:
      k.jwk_ = {{"crv", "P-256"},
                {"kty", "EC"},
                {"x", bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_X, kEs256Half)},
                {"y", bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_Y, kEs256Half)}};
      break;
    case JwtAlg::kRS256:
      k.jwk_ = {{"e", bn_param(pk, OSSL_PKEY_PARAM_RSA_E, 0)},
                {"kty", "RSA"},
                {"n", bn_param(pk, OSSL_PKEY_PARAM_RSA_N, 0)}};
      break;
    case JwtAlg::kEdDSA: {
      unsigned char x[32];
      size_t len = 0;
      if (EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_PUB_KEY, x, sizeof(x), &len) != 1 ||
          len != sizeof(x)) {
        throw std::runtime_error("cannot read the Ed25519 public key");
      }
      k.jwk_ = {{"crv", "Ed25519"}, {"kty", "OKP"}, {"x", base64url_encode(x, sizeof(x))}};
      break;
    }
    case JwtAlg::kHS256: return;
  }
  // RFC 7638 3: the required members, sorted, no whitespace.  Every value
  // is base64url or a fixed name, so nothing needs escaping.
  std::string canonical = "{";
  for (const auto& [name, value] : k.jwk_) {
    if (canonical.size() > 1) canonical += ',';
    canonical += '"' + name + "\":\"" + value + '"';
  }
  canonical += '}';
  Digest d = sha256(canonical);
  k.kid_ = base64url_encode(d.data(), d.size());
}

// ------------------------------------------------------ sign and verify

bool JwtImpl::mac(const JwtKey& k, std::string_view data, std::array<unsigned char, 32>& out) {
  MacCtxPtr c(EVP_MAC_CTX_dup(k.mac_));
  if (!c) throw std::bad_alloc();
  size_t len = 0;
  return EVP_MAC_update(c.get(), uc(data), data.size()) == 1 &&
         EVP_MAC_final(c.get(), out.data(), &len, out.size()) == 1 && len == out.size();
}

namespace {

// ECDSA is malleable: (r, s) and (r, n - s) both verify.  Signing with the
// low s and refusing a high one gives every ES256 token one encoding, so
// nothing keyed on a token's bytes (the workers' cache of verified
// signatures, a log, a deny list) can be sidestepped by flipping s.  That
// holds for the JWTs this server signs, which are its own; a client's
// signature (a DPoP proof's) is taken with either s, since RFC 7518 3.4
// asks for neither and most libraries (WebCrypto, Node, Java, Go,
// python-cryptography) send whichever they computed: nothing is keyed on
// a proof's bytes (its replay record is its key's and jti's).
const unsigned char kP256Order[32] = {
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
};
const unsigned char kP256HalfOrder[32] = {
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
};

bool es256_high_s(const unsigned char* s) {
  return std::memcmp(s, kP256HalfOrder, 32) > 0;
}

}  // namespace

std::string JwtImpl::sign(const JwtKey& k, std::string_view data) {
  if (!k.can_sign_) {
    throw std::logic_error("JWT key " + k.kid_ + " cannot sign");
  }
  if (k.alg_ == JwtAlg::kHS256) {
    std::array<unsigned char, 32> m;
    if (!mac(k, data, m)) throw std::runtime_error("HMAC failed");
    return std::string(reinterpret_cast<const char*>(m.data()), m.size());
  }
  // A fresh context per call: EVP_MD_CTX is not shareable, the key is.
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) throw std::bad_alloc();
  const char* md = k.alg_ == JwtAlg::kEdDSA ? nullptr : "SHA256";
  std::string sig(static_cast<size_t>(EVP_PKEY_get_size(k.pkey_)), '\0');
  size_t len = sig.size();
  ERR_set_mark();
  bool ok =
      EVP_DigestSignInit_ex(ctx.get(), nullptr, md, nullptr, nullptr, k.pkey_, nullptr) == 1 &&
      EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, uc(data),
                     data.size()) == 1;
  ERR_pop_to_mark();
  if (!ok) throw std::runtime_error("JWT signing failed");
  sig.resize(len);
  if (k.alg_ != JwtAlg::kES256) return sig;

  // RFC 7518 3.4: JWS carries R||S, each 32 bytes; OpenSSL makes DER.
  const unsigned char* p = uc(sig);
  EcdsaSigPtr es(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size())));
  if (!es) throw std::runtime_error("ECDSA signature not DER");
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(es.get(), &r, &s);
  std::string rs = bn_bytes(r, kEs256Half) + bn_bytes(s, kEs256Half);
  auto* sb = reinterpret_cast<unsigned char*>(rs.data()) + kEs256Half;
  if (es256_high_s(sb)) {  // s := n - s, big-endian, 32 bytes
    int borrow = 0;
    for (int i = 31; i >= 0; i--) {
      int d = kP256Order[i] - sb[i] - borrow;
      borrow = d < 0;
      sb[i] = static_cast<unsigned char>(d + (borrow ? 256 : 0));
    }
  }
  return rs;
}

bool JwtImpl::verify(const JwtKey& k, std::string_view data, std::string_view sig, bool any_s) {
  if (k.alg_ == JwtAlg::kHS256) {
    std::array<unsigned char, 32> m;
    if (sig.size() != m.size()) return false;
    bool ok = mac(k, data, m) && CRYPTO_memcmp(m.data(), sig.data(), m.size()) == 0;
    OPENSSL_cleanse(m.data(), m.size());
    return ok;
  }

  unsigned char der[80];
  if (k.alg_ == JwtAlg::kES256) {
    if (sig.size() != 2 * kEs256Half) return false;
    if (!any_s && es256_high_s(uc(sig) + kEs256Half)) return false;
    EcdsaSigPtr es(ECDSA_SIG_new());
    BnPtr r(BN_bin2bn(uc(sig), kEs256Half, nullptr));
    BnPtr s(BN_bin2bn(uc(sig) + kEs256Half, kEs256Half, nullptr));
    if (!es || !r || !s) throw std::bad_alloc();
    ECDSA_SIG_set0(es.get(), r.release(), s.release());
    int len = i2d_ECDSA_SIG(es.get(), nullptr);
    if (len <= 0 || static_cast<size_t>(len) > sizeof(der)) return false;
    unsigned char* q = der;
    i2d_ECDSA_SIG(es.get(), &q);
    sig = std::string_view(reinterpret_cast<const char*>(der), static_cast<size_t>(len));
  } else if (k.alg_ == JwtAlg::kEdDSA && sig.size() != 64) {
    return false;
  } else if (k.alg_ == JwtAlg::kRS256 &&
             sig.size() != static_cast<size_t>(EVP_PKEY_get_size(k.pkey_))) {
    return false;  // RFC 7518 3.3 / RFC 8017 8.2.2: exactly k bytes
  }

  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) throw std::bad_alloc();
  const char* md = k.alg_ == JwtAlg::kEdDSA ? nullptr : "SHA256";
  // A forged token must not leave errors in the worker's OpenSSL queue,
  // where nginx's next TLS call on this thread would find them.
  ERR_set_mark();
  bool ok =
      EVP_DigestVerifyInit_ex(ctx.get(), nullptr, md, nullptr, nullptr, k.pkey_, nullptr) == 1 &&
      EVP_DigestVerify(ctx.get(), uc(sig), sig.size(), uc(data), data.size()) == 1;
  ERR_pop_to_mark();
  return ok;
}

std::string jwt_sign(const JwtKey& key, const json_t* claims, std::string_view typ) {
  if (!key.can_sign()) {
    throw std::logic_error("JWT key " + key.kid() + " cannot sign");
  }
  if (!json_is_object(claims)) {
    throw std::logic_error("JWT claims must be a JSON object");
  }
  Json header(json_object());
  if (!header) throw std::bad_alloc();
  put_string(header.get(), "alg", jwt_alg_name(key.alg()));
  if (!typ.empty()) put_string(header.get(), "typ", typ);
  put_string(header.get(), "kid", key.kid());

  std::string out = b64url_encode(json_text(header.get(), JSON_COMPACT));
  out += '.';
  out += b64url_encode(json_text(claims, JSON_COMPACT));
  std::string sig = JwtImpl::sign(key, out);
  out += '.';
  out += b64url_encode(sig);
  // The verifier refuses longer tokens; better to fail here, loudly, than
  // to hand out a token that nothing accepts.
  if (out.size() > kJwtMaxBytes) {
    throw std::length_error("JWT longer than 8192 bytes");
  }
  return out;
}

// ---------------------------------------------------------------- sets

void JwtKeys::add(std::shared_ptr<JwtKey> k) {
  if (!k) throw std::invalid_argument("null JWT key");
  if (find(k->kid())) {
    throw std::runtime_error("two JWT keys with kid " + k->kid());
  }
  keys_.push_back(std::move(k));
}

const JwtKey* JwtKeys::signer() const {
  for (const auto& k : keys_) {
    if (k->can_sign()) return k.get();
  }
  return nullptr;
}

const JwtKey* JwtKeys::signer(JwtAlg alg) const {
  for (const auto& k : keys_) {
    if (k->can_sign() && k->alg() == alg) return k.get();
  }
  return nullptr;
}

std::vector<JwtAlg> JwtKeys::signing_algs() const {
  std::vector<JwtAlg> out;
  for (const auto& k : keys_) {
    if (k->can_sign() && std::find(out.begin(), out.end(), k->alg()) == out.end()) {
      out.push_back(k->alg());
    }
  }
  return out;
}

const JwtKey* JwtKeys::find(std::string_view kid) const {
  for (const auto& k : keys_) {
    if (k->kid() == kid) return k.get();
  }
  return nullptr;
}

std::string JwtKeys::jwks_json() const {
  Json root(json_object());
  json_t* arr = json_array();
  if (!root || !arr || json_object_set_new(root.get(), "keys", arr) != 0) {
    throw std::bad_alloc();
  }
  for (const auto& k : keys_) {
    if (k->alg() == JwtAlg::kHS256) continue;
    json_t* jwk = json_object();
    if (!jwk || json_array_append_new(arr, jwk) != 0) throw std::bad_alloc();
    for (const auto& [name, value] : JwtImpl::jwk(*k)) {
      put_string(jwk, name.c_str(), value);
    }
    put_string(jwk, "kid", k->kid());
    put_string(jwk, "alg", jwt_alg_name(k->alg()));
    put_string(jwk, "use", "sig");
  }
  return json_text(root.get(), JSON_COMPACT);
}

// ------------------------------------------------------------- verify

namespace {

bool typ_matches(const json_t* header, std::string_view want) {
  const json_t* t = json_object_get(header, "typ");
  if (!json_is_string(t)) return false;
  std::string_view got = json_sv(t);
  // RFC 7515 4.1.9: "application/" may be left out, and MIME types are
  // case-insensitive.
  constexpr std::string_view kPrefix = "application/";
  if (got.size() > kPrefix.size() && iequals(got.substr(0, kPrefix.size()), kPrefix)) {
    got.remove_prefix(kPrefix.size());
  }
  return iequals(got, want);
}

bool audience_matches(const json_t* aud, std::string_view want) {
  if (json_is_string(aud)) return json_sv(aud) == want;
  if (!json_is_array(aud)) return false;
  for (size_t i = 0; i < json_array_size(aud); i++) {
    const json_t* a = json_array_get(aud, i);
    if (json_is_string(a) && json_sv(a) == want) return true;
  }
  return false;
}

JwtStatus check_claims(const json_t* claims, const JwtCheck& check) {
  const json_t* exp = json_object_get(claims, "exp");
  const json_t* nbf = json_object_get(claims, "nbf");
  const json_t* iat = json_object_get(claims, "iat");
  if ((exp && !json_is_integer(exp)) || (nbf && !json_is_integer(nbf)) ||
      (iat && !json_is_integer(iat)) || (check.check_exp && !exp)) {
    return JwtStatus::kMalformed;
  }
  int64_t leeway = check.leeway > 0 ? check.leeway : 0;
  int64_t latest = saturating_add(check.now, leeway);
  int64_t earliest = saturating_add(check.now, -leeway);
  if (check.check_exp && json_integer_value(exp) <= earliest) {
    return JwtStatus::kExpired;
  }
  if (nbf && json_integer_value(nbf) > latest) return JwtStatus::kNotYetValid;
  if (iat && json_integer_value(iat) > latest) return JwtStatus::kNotYetValid;
  if (!check.issuer.empty()) {
    const json_t* iss = json_object_get(claims, "iss");
    if (!json_is_string(iss) || json_sv(iss) != check.issuer) {
      return JwtStatus::kWrongIssuer;
    }
  }
  if (!check.audience.empty() &&
      !audience_matches(json_object_get(claims, "aud"), check.audience)) {
    return JwtStatus::kWrongAudience;
  }
  return JwtStatus::kOk;
}

}  // namespace

JwtResult jwt_verify(const JwtKeys& keys, std::string_view token, const JwtCheck& check) {
  JwtResult res;
  Segments seg;
  std::string header_text, sig;
  if (!split(token, seg) || !b64url_valid(seg.payload) || !b64url_decode(seg.header, header_text) ||
      !b64url_decode(seg.signature, sig)) {
    return res;
  }
  Json header = parse_object(header_text);
  if (!header) return res;
  const json_t* alg = json_object_get(header.get(), "alg");
  const json_t* kid = json_object_get(header.get(), "kid");
  // RFC 7515 4.1.11: an extension we do not implement must not be ignored.
  if (!json_is_string(alg) || (kid && !json_is_string(kid)) ||
      json_object_get(header.get(), "crit")) {
    return res;
  }

  // Without a kid, trying every key would let one token probe them all;
  // only a one-key set has an unambiguous answer.
  const JwtKey* key = kid ? keys.find(json_sv(kid)) : JwtImpl::only_key(keys);
  if (!key) {
    res.status = JwtStatus::kUnknownKey;
    return res;
  }
  // The key's algorithm, never the token's: "none", or HS256 against an
  // RSA key whose public PEM an attacker used as the HMAC secret, end here.
  if (json_sv(alg) != jwt_alg_name(key->alg()) || !JwtImpl::verify(*key, seg.signing_input, sig)) {
    res.status = JwtStatus::kBadSignature;
    return res;
  }
  res.key = key;

  std::string payload_text;
  (void)b64url_decode(seg.payload, payload_text);  // checked above
  res.claims = parse_object(payload_text);
  if (!res.claims) return res;
  if (!check.typ.empty() && !typ_matches(header.get(), check.typ)) {
    res.status = JwtStatus::kWrongType;
    return res;
  }
  res.status = check_claims(res.claims.get(), check);
  return res;
}

Json jwt_peek_claims(std::string_view token) {
  Segments seg;
  std::string payload_text;
  if (!split(token, seg) || !b64url_valid(seg.header) || !b64url_valid(seg.signature) ||
      !b64url_decode(seg.payload, payload_text)) {
    return nullptr;
  }
  return parse_object(payload_text);
}

// ------------------------------------------------------------ base64url

std::string b64url_encode(std::string_view data) {
  return base64url_encode(uc(data), data.size());
}

bool b64url_decode(std::string_view in, std::string& out) {
  out.clear();
  if (!b64url_valid(in)) return false;
  out.reserve(in.size() / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    acc = (acc << 6) | static_cast<uint32_t>(kB64url[static_cast<unsigned char>(c)]);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return true;
}

// ------------------------------------------------- keys a client sends

namespace {

// A JWK member that must be base64url of exactly want bytes (0: any
// nonzero length without a leading zero byte, as RFC 7518 6.3.1 says of
// RSA's n and e).
bool jwk_bytes(const json_t* jwk, const char* name, size_t want, std::string* out) {
  const json_t* v = json_object_get(jwk, name);
  if (!json_is_string(v) || !b64url_decode(json_sv(v), *out) || out->empty()) return false;
  if (want) return out->size() == want;
  return (*out)[0] != '\0';
}

PkeyPtr pkey_from_params(const char* type, OSSL_PARAM_BLD* bld) {
  std::unique_ptr<OSSL_PARAM, Freer<OSSL_PARAM, OSSL_PARAM_free>> params(
      OSSL_PARAM_BLD_to_param(bld));
  std::unique_ptr<EVP_PKEY_CTX, Freer<EVP_PKEY_CTX, EVP_PKEY_CTX_free>> ctx(
      EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* pk = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &pk, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return nullptr;
  }
  return PkeyPtr(pk);
}

PkeyPtr ec_from_jwk(const json_t* jwk, std::string* why) {
  std::string x, y;
  const json_t* crv = json_object_get(jwk, "crv");
  if (!json_is_string(crv) || json_sv(crv) != "P-256") {
    *why = "only the EC curve P-256 is accepted";
    return nullptr;
  }
  if (!jwk_bytes(jwk, "x", kEs256Half, &x) || !jwk_bytes(jwk, "y", kEs256Half, &y)) {
    *why = "the EC key's x and y must be 32 bytes each";
    return nullptr;
  }
  std::string point = "\x04" + x + y;
  std::unique_ptr<OSSL_PARAM_BLD, Freer<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>> bld(
      OSSL_PARAM_BLD_new());
  if (!bld ||
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) !=
          1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1) {
    throw std::bad_alloc();
  }
  PkeyPtr pk = pkey_from_params("EC", bld.get());
  if (pk) {
    // a point off the curve is refused (invalid-curve attacks)
    std::unique_ptr<EVP_PKEY_CTX, Freer<EVP_PKEY_CTX, EVP_PKEY_CTX_free>> c(
        EVP_PKEY_CTX_new_from_pkey(nullptr, pk.get(), nullptr));
    if (!c || EVP_PKEY_public_check(c.get()) != 1) pk.reset();
  }
  if (!pk) *why = "the EC public key is not a point of P-256";
  return pk;
}

PkeyPtr rsa_from_jwk(const json_t* jwk, std::string* why) {
  std::string n, e;
  // a key from a request (a DPoP proof's jwk): its verification's cost
  // grows with n and e, so both are bounded, as clients make them (n of
  // 2048 to 4096 bits, e of 65537), not as RSA allows (16384 bits, an e of
  // 8 bytes: some 100 times the cost of an ES256 proof, on the event loop)
  if (!jwk_bytes(jwk, "n", 0, &n) || !jwk_bytes(jwk, "e", 0, &e) || e.empty() || e.size() > 4 ||
      (static_cast<unsigned char>(e.back()) & 1) == 0 ||
      (e.size() == 1 && static_cast<unsigned char>(e[0]) < 3) || n.size() > 513) {
    *why = "the RSA key's n and e are malformed";
    return nullptr;
  }
  BnPtr bn(BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()), static_cast<int>(n.size()),
                     nullptr));
  BnPtr be(BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()), static_cast<int>(e.size()),
                     nullptr));
  std::unique_ptr<OSSL_PARAM_BLD, Freer<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>> bld(
      OSSL_PARAM_BLD_new());
  if (!bn || !be || !bld ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, be.get()) != 1) {
    throw std::bad_alloc();
  }
  PkeyPtr pk = pkey_from_params("RSA", bld.get());
  if (!pk || EVP_PKEY_get_bits(pk.get()) < 2048 || EVP_PKEY_get_bits(pk.get()) > 4096) {
    *why = "the RSA key must have 2048 to 4096 bits";
    return nullptr;
  }
  return pk;
}

// An Ed25519 point of small order (libsodium's list; the top bit, x's
// sign, aside).  Under the identity a signature whose R is the identity
// and S 0 verifies for every message, under the others for one in a few,
// and OpenSSL 3.0 refuses none of them: a DPoP proof's key among them
// would bind its token to no key at all.
bool small_order(const std::string& x) {
  static const unsigned char kSmall[][32] = {
      {0},
      {1},
      {0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4,
       0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6,
       0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05},
      {0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b,
       0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39,
       0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a},
      {0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
       0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
       0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
      {0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
       0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
       0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
      {0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
       0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
       0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}};
  const auto* p = reinterpret_cast<const unsigned char*>(x.data());
  for (const auto& s : kSmall) {
    if (std::memcmp(p, s, 31) == 0 && (p[31] & 0x7f) == s[31]) return true;
  }
  return false;
}

PkeyPtr okp_from_jwk(const json_t* jwk, std::string* why) {
  std::string x;
  const json_t* crv = json_object_get(jwk, "crv");
  if (!json_is_string(crv) || json_sv(crv) != "Ed25519" || !jwk_bytes(jwk, "x", 32, &x)) {
    *why = "only Ed25519 OKP keys of 32 bytes are accepted";
    return nullptr;
  }
  if (small_order(x)) {
    *why = "the Ed25519 key is a point of small order";
    return nullptr;
  }
  PkeyPtr pk(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                         reinterpret_cast<const unsigned char*>(x.data()), 32));
  if (!pk) *why = "the Ed25519 key is malformed";
  return pk;
}

}  // namespace

std::shared_ptr<JwtKey> JwtImpl::from_jwk(const json_t* jwk, std::string* why) {
  // RFC 9449 4.3: the key must be public; RFC 7518 6.2.2, 6.3.2, RFC
  // 8037 2: "d" and the RSA primes are private, "k" a symmetric secret
  for (const char* priv : {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}) {
    if (json_object_get(jwk, priv)) {
      *why = "the jwk holds private key material";
      return nullptr;
    }
  }
  const json_t* kty = json_object_get(jwk, "kty");
  if (!json_is_string(kty)) {
    *why = "the jwk has no kty";
    return nullptr;
  }
  std::string_view type = json_sv(kty);
  std::shared_ptr<JwtKey> k(new JwtKey());
  PkeyPtr pk;
  ERR_set_mark();
  if (type == "EC") {
    k->alg_ = JwtAlg::kES256;
    pk = ec_from_jwk(jwk, why);
  } else if (type == "RSA") {
    k->alg_ = JwtAlg::kRS256;
    pk = rsa_from_jwk(jwk, why);
  } else if (type == "OKP") {
    k->alg_ = JwtAlg::kEdDSA;
    pk = okp_from_jwk(jwk, why);
  } else {
    *why = "the jwk's kty is not EC, RSA or OKP";
  }
  ERR_pop_to_mark();
  if (!pk) return nullptr;
  k->pkey_ = pk.release();
  export_jwk(*k);  // the RFC 7638 thumbprint becomes its kid
  return k;
}

std::shared_ptr<JwtKey> jwt_key_from_jwk(const json_t* jwk, std::string* why) {
  if (!json_is_object(jwk)) {
    *why = "jwk is not an object";
    return nullptr;
  }
  return JwtImpl::from_jwk(jwk, why);
}

bool jwt_signature_ok(const JwtKey& key, std::string_view signing_input, std::string_view sig) {
  return JwtImpl::verify(key, signing_input, sig, true);
}

}  // namespace oauth2
