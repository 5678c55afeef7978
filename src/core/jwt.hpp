// JSON Web Signatures in compact form (RFC 7515), with the algorithms of
// RFC 7518 (ES256, RS256, HS256) and RFC 8037 (EdDSA over Ed25519), and
// the key set a server publishes as a JWKS (RFC 7517, kid per RFC 7638).
//
// The algorithm always comes from the key, never from a token: a token's
// "alg" is only compared with it.  Keys and key sets are built once (at
// configuration time) and then used read-only from several threads.

#pragma once

#include <openssl/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "json.hpp"

namespace oauth2 {

enum class JwtAlg { kES256, kEdDSA, kRS256, kHS256 };
const char* jwt_alg_name(JwtAlg a);  // "ES256", "EdDSA", "RS256", "HS256"

// One key.  Immutable once made; safe to sign and verify with from several
// threads at once.
class JwtKey {
 public:
  // A PEM file: a private key (EC P-256 -> ES256, Ed25519 -> EdDSA,
  // RSA >= 2048 bits -> RS256) signs and verifies; a PEM public key
  // (SubjectPublicKeyInfo) only verifies.  Any other key type, curve or
  // size is refused, and so is an encrypted private key (nothing can type
  // its passphrase).  hmac=true: the file's bytes are an HS256 secret of at
  // least 32 bytes (one trailing "\n" is stripped), never published in a
  // JWKS.  Throws std::runtime_error naming the file and the reason.
  static std::shared_ptr<JwtKey> load_file(const std::string& path, bool hmac);

  // An HS256 key from bytes, under the given kid.  Throws
  // std::invalid_argument if secret is under 32 bytes or kid empty.
  static std::shared_ptr<JwtKey> hmac(std::string_view secret, std::string kid);

  // load_file(path, true), and the same secret under alias_kid as well
  // (*alias), for tokens signed under that kid before the key was a file.
  static std::shared_ptr<JwtKey> load_hmac_file(const std::string& path,
                                                const std::string& alias_kid,
                                                std::shared_ptr<JwtKey>* alias);

  ~JwtKey();  // frees the EVP_PKEY; OpenSSL wipes the HMAC key state
  JwtKey(const JwtKey&) = delete;
  JwtKey& operator=(const JwtKey&) = delete;

  JwtAlg alg() const { return alg_; }
  // The RFC 7638 thumbprint (base64url SHA-256) for an asymmetric key; for
  // HS256 the given kid, or for load_file an HMAC of a fixed label under
  // the secret, which reveals nothing about it.
  const std::string& kid() const { return kid_; }
  bool can_sign() const { return can_sign_; }

 private:
  friend struct JwtImpl;  // jwt.cpp: loading, signing, verifying, JWK
  JwtKey() = default;

  JwtAlg alg_ = JwtAlg::kHS256;
  std::string kid_;
  bool can_sign_ = false;
  EVP_PKEY* pkey_ = nullptr;    // asymmetric keys
  EVP_MAC_CTX* mac_ = nullptr;  // HS256: keyed once, duplicated per call
  // The public JWK members in RFC 7638 order (lexicographic, the form
  // the thumbprint hashes); empty for HS256.
  std::vector<std::pair<std::string, std::string>> jwk_;
};

// A set of keys: the first key that can sign is the signing key; every key
// verifies (key rotation: add the new one first, keep the old one for as
// long as tokens signed by it live).  add() is for configuration time; the
// const methods are safe from several threads.
class JwtKeys {
 public:
  // Throws std::invalid_argument on a null key, std::runtime_error on a kid
  // already in the set (a token's kid must name exactly one key).
  void add(std::shared_ptr<JwtKey> k);
  bool empty() const { return keys_.empty(); }
  const JwtKey* signer() const;              // nullptr if none can sign
  const JwtKey* signer(JwtAlg alg) const;    // the first that signs with alg
  std::vector<JwtAlg> signing_algs() const;  // of the keys that sign, once each
  const JwtKey* find(std::string_view kid) const;
  // {"keys":[...]}: the public JWK of every asymmetric key with "kid",
  // "alg" and "use":"sig".  HS256 keys are never included.
  std::string jwks_json() const;

 private:
  friend struct JwtImpl;
  std::vector<std::shared_ptr<JwtKey>> keys_;
};

// Header {"alg":<from key>,"typ":typ,"kid":kid} (typ omitted when empty),
// payload the compact JSON text of claims (an object, keys in insertion
// order).  Throws std::logic_error if the key cannot sign or claims is not
// an object, std::length_error (a logic_error too) if the token would be
// longer than jwt_verify accepts.
std::string jwt_sign(const JwtKey& key, const json_t* claims, std::string_view typ);

enum class JwtStatus {
  kOk,
  kMalformed,
  kUnknownKey,
  kBadSignature,
  kExpired,
  kNotYetValid,
  kWrongIssuer,
  kWrongAudience,
  kWrongType
};

constexpr size_t kJwtMaxBytes = 8192;

struct JwtCheck {
  int64_t now = 0;
  int64_t leeway = 30;        // seconds, for exp, nbf and iat
  bool check_exp = true;      // false: the caller checks expiry itself
  std::string_view issuer;    // empty: not checked; else "iss" must equal
  std::string_view audience;  // empty: not checked; else "aud" must equal
                              // it or be an array containing it
  std::string_view typ;       // empty: not checked; else header "typ" must
                              // equal it case-insensitively, or
                              // "application/" + typ
};

struct JwtResult {
  JwtStatus status = JwtStatus::kMalformed;
  Json claims;                  // set whenever the signature verified, even if a claim
                                // check then failed (kExpired ...), for logging
  const JwtKey* key = nullptr;  // the key that verified it
};

// Verifies a compact JWS: exactly three base64url segments without
// padding, at most kJwtMaxBytes; a JSON object header whose "alg" equals
// the key's; "kid" selects the key (a token without kid is tried against
// the only key of a one-key set); "crit" is refused.  Then the payload
// must be a JSON object with integer exp (required when check_exp), nbf
// and iat.  The status is the first failure in this order: the token's
// form (kMalformed), its key, its alg and signature, the payload's form
// (kMalformed), typ, exp, nbf and iat, iss, aud.  Throws only
// std::bad_alloc.
JwtResult jwt_verify(const JwtKeys& keys, std::string_view token, const JwtCheck& check);

// The payload of a compact JWS WITHOUT verifying it (for callers that
// then look the token up by a claim); nullptr if malformed.
Json jwt_peek_claims(std::string_view token);

// base64url without padding.  Decoding is strict: false on a character
// outside the alphabet, on '=', on an impossible length, or on nonzero
// unused bits in the last character (so every value has one encoding and
// a signature cannot be altered without changing its bytes).
std::string b64url_encode(std::string_view data);

// A public key a client sends as a JWK (a DPoP proof's "jwk", RFC 9449
// 4.2): EC P-256 (a point of the curve), OKP Ed25519 or RSA of 2048 to
// 4096 bits with an odd e of at most 4 bytes (what a verification costs
// stays bounded); its kid() is the RFC 7638 thumbprint.  nullptr, with why, for
// anything else, and for a JWK that holds private members.
std::shared_ptr<JwtKey> jwt_key_from_jwk(const json_t* jwk, std::string* why);
// The signature of a JWS's signing input under key, with key's algorithm:
// a client's (a DPoP proof's), so an ES256 one may have the high s, which
// jwt_verify refuses in the server's own tokens.
bool jwt_signature_ok(const JwtKey& key, std::string_view signing_input, std::string_view sig);
bool b64url_decode(std::string_view in, std::string& out);

}  // namespace oauth2
