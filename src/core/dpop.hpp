// Sender-constrained tokens (DPoP, RFC 9449): the proof a client signs
// with its own key for each request, checked at the token endpoint (the
// token issued is then bound to the key's thumbprint, "jkt") and at every
// auth_oauth2 location that a bound token is shown to.
//
// The URL a proof must name ("htu") is built from the configured issuer's
// origin and the request's path, never from Host (R87).  A proof's jti is
// recorded in the counters' shared memory (oauth2_limit_zone) for as long
// as its iat keeps it acceptable, so that no worker accepts it twice;
// when there is no room to record it, the proof is refused.

#pragma once

#include <cstdint>
#include <optional>
#include <functional>
#include <string>
#include <string_view>

#include "../../include/oauth2.h"
#include "crypto.hpp"
#include "endpoints.hpp"
#include "request.hpp"

namespace oauth2 {

// RFC 9449 5.1 dpop_signing_alg_values_supported, and the challenge's algs
inline constexpr std::string_view kDpopAlgs = "ES256 RS256 EdDSA";
inline constexpr size_t kDpopMaxJti = 256;

enum class DpopStatus { kOk, kInvalid, kUseNonce };

// What a proof must say.
struct DpopExpect {
  std::string_view method;  // htm
  std::string_view htu;     // issuer_url(): the origin and the path
  int64_t now = 0;
  int64_t window = 60;                // |iat - now| at most this
  std::string_view access_token;      // not empty: "ath" must be its hash
  const Digest* nonce_key = nullptr;  // set: "nonce" must be current
  // not empty: the proof's key must be the one of this RFC 7638
  // thumbprint (a bound token's), checked before its signature
  std::string_view jkt;
};

struct DpopProof {
  DpopStatus status = DpopStatus::kInvalid;
  const char* why = "";  // fixed text, for error_description
  std::string jkt;       // the key's RFC 7638 thumbprint
  std::string jti;
};

// Checks one proof (RFC 9449 4.3): a compact JWS, typ dpop+jwt, an
// asymmetric alg (ES256, RS256, EdDSA) matching its public "jwk" (no
// private members), its signature, then htm, htu (query and fragment
// left out), iat within the window, jti, ath and nonce.  The jti is not
// recorded here: dpop_record() does.
DpopProof dpop_check(std::string_view proof, const DpopExpect& e);

// The server's nonce for now (RFC 9449 8): a MAC of the time slot (one
// window long) under key; one of the slot before is accepted as well.
std::string dpop_nonce(const Digest& key, int64_t now, int64_t window);
bool dpop_nonce_ok(const Digest& key, std::string_view nonce, int64_t now, int64_t window);

// The counters' key of a proof: its key's thumbprint and jti, hashed.
std::string dpop_replay_key(std::string_view jkt, std::string_view jti);

// Records the proof's jti in the counters for as long as it can be
// accepted: kOk if new, kInvalid (with why) if seen before, or if the
// counters cannot record it (no zone, or full).
DpopStatus dpop_record(const oauth2_counters_t& c, const DpopProof& p, int64_t window,
                       const char** why);

// base64url(SHA-256(token)): a proof's "ath"
std::string dpop_ath(std::string_view token);

}  // namespace oauth2

// ------------------------------------------------- the endpoints' hooks

namespace oauth2 {

// At the token endpoint, once the client is known: the DPoP header's proof
// checked and recorded (jkt set), or none sent (jkt empty), or the
// refusal: 400 invalid_dpop_proof, use_dpop_nonce with a DPoP-Nonce, or
// invalid_dpop_proof when the client must send one (RFC 9449 5.2).
struct DpopGrant {
  std::optional<Response> refused;
  std::string jkt;
};
DpopGrant dpop_token_request(const Request& req, const Client& client);

// At an auth_oauth2 location: the token of client_id (the location's rate
// limit counts it as rate_key, rate_key_of_bearer) was presented with
// the DPoP scheme (dpop_scheme) or is bound to a key (jkt not empty).
// OAUTH2_WHY_OK if the request's proof holds for that token and key; else
// fills v's refusal (its DPoP challenge, and a nonce to use) and returns
// the why.  The location's oauth2_rate_limit is counted before the proof
// is recorded (v->rate): a client over its rate is refused
// (OAUTH2_WHY_RATE_LIMITED) and fills no more of the proofs' zone.
int dpop_resource_check(const Location* loc, const BearerRequest& req, bool dpop_scheme,
                        std::string_view token, const std::string& jkt, std::string_view client_id,
                        const std::function<std::string()>& rate_key, Validation* v);

// The WWW-Authenticate value of a refusal that v says is DPoP's.
std::string dpop_challenge(const Location& loc, const Validation& v);

}  // namespace oauth2
