#include "dpop.hpp"

#include <openssl/hmac.h>

#include <cstring>
#include <limits>

#include "codec.hpp"
#include "endpoint_util.hpp"
#include "json.hpp"
#include "jwt.hpp"
#include "request.hpp"

namespace oauth2 {

namespace {

std::string_view jsv(const json_t* s) {
  return std::string_view(json_string_value(s), json_string_length(s));
}

const json_t* str_member(const json_t* o, const char* name) {
  const json_t* v = json_object_get(o, name);
  return json_is_string(v) ? v : nullptr;
}

// The three segments of a compact JWS, the header and claims decoded.
struct Jws {
  std::string_view signing_input;
  std::string sig;
  Json header;
  Json claims;
};

bool parse_jws(std::string_view t, Jws* out) {
  if (t.empty() || t.size() > kJwtMaxBytes) return false;
  size_t a = t.find('.');
  size_t b = a == std::string_view::npos ? a : t.find('.', a + 1);
  if (b == std::string_view::npos || t.find('.', b + 1) != std::string_view::npos) return false;
  std::string h, p;
  if (!b64url_decode(t.substr(0, a), h) || !b64url_decode(t.substr(a + 1, b - a - 1), p) ||
      !b64url_decode(t.substr(b + 1), out->sig)) {
    return false;
  }
  if (json_too_deep(h, 8) || json_too_deep(p, 8)) return false;
  out->header = Json(json_loadb(h.data(), h.size(), JSON_REJECT_DUPLICATES, nullptr));
  out->claims = Json(json_loadb(p.data(), p.size(), JSON_REJECT_DUPLICATES, nullptr));
  out->signing_input = t.substr(0, b);
  return out->header && json_is_object(out->header.get()) && out->claims &&
         json_is_object(out->claims.get());
}

DpopProof refuse(const char* why) {
  DpopProof p;
  p.why = why;
  return p;
}

// the header (RFC 9449 4.3 checks 4 to 7): the key it carries, or null
std::shared_ptr<JwtKey> header_key(const json_t* header, const char** why) {
  const json_t* typ = str_member(header, "typ");
  if (!typ || !iequals(jsv(typ), "dpop+jwt")) {
    *why = "The DPoP proof's typ must be dpop+jwt";
    return nullptr;
  }
  if (json_object_get(header, "crit")) {
    *why = "The DPoP proof has a crit header";
    return nullptr;
  }
  const json_t* alg = str_member(header, "alg");
  std::string_view a = alg ? jsv(alg) : "";
  if (a != "ES256" && a != "RS256" && a != "EdDSA") {
    *why = "The DPoP proof's alg must be ES256, RS256 or EdDSA";
    return nullptr;
  }
  std::string reason;
  auto key = jwt_key_from_jwk(json_object_get(header, "jwk"), &reason);
  if (!key) {
    *why = "The DPoP proof's jwk is not an accepted public key";
    return nullptr;
  }
  if (a != jwt_alg_name(key->alg())) {
    *why = "The DPoP proof's alg does not match its jwk";
    return nullptr;
  }
  return key;
}

// htu without its query and fragment (RFC 9449 4.3 check 9), scheme and
// host compared without case
bool htu_matches(std::string_view got, std::string_view want) {
  got = got.substr(0, std::min(got.find('?'), got.find('#')));
  size_t origin_end = want.find('/', want.find("://") + 3);
  if (origin_end == std::string_view::npos) origin_end = want.size();
  if (got.size() < origin_end) return false;
  return iequals(got.substr(0, origin_end), want.substr(0, origin_end)) &&
         got.substr(origin_end) == want.substr(origin_end);
}

// iat in seconds: a NumericDate (RFC 7519 2) may have a fraction, whose
// integer part counts.  A real beyond 2^62 seconds (or not finite, which
// JSON cannot carry) is a time far out of every window, never a cast that
// overflows.
int64_t numeric_date(const json_t* v) {
  if (json_is_integer(v)) return json_integer_value(v);
  const double d = json_real_value(v);
  constexpr double kFar = 4611686018427387904.0;  // 2^62
  if (!(d > -kFar && d < kFar)) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(d);
}

bool same_text(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         equal_ct(reinterpret_cast<const unsigned char*>(a.data()),
                  reinterpret_cast<const unsigned char*>(b.data()), a.size());
}

// the claims (checks 8 to 12); kOk, or why not
DpopStatus check_claims(const json_t* c, const DpopExpect& e, DpopProof* p) {
  const json_t* jti = str_member(c, "jti");
  const json_t* htm = str_member(c, "htm");
  const json_t* htu = str_member(c, "htu");
  const json_t* iat = json_object_get(c, "iat");
  if (!jti || !htm || !htu || !json_is_number(iat) || json_string_length(jti) == 0 ||
      json_string_length(jti) > kDpopMaxJti) {
    p->why = "The DPoP proof lacks jti, htm, htu or iat";
    return DpopStatus::kInvalid;
  }
  if (jsv(htm) != e.method) {
    p->why = "The DPoP proof is for another method";
    return DpopStatus::kInvalid;
  }
  if (e.htu.empty() || !htu_matches(jsv(htu), e.htu)) {
    p->why = "The DPoP proof is for another URL";
    return DpopStatus::kInvalid;
  }
  const int64_t t = numeric_date(iat);
  if (t < e.now - e.window || t > e.now + e.window) {
    p->why = "The DPoP proof's iat is out of the accepted window";
    return DpopStatus::kInvalid;
  }
  if (!e.access_token.empty()) {
    const json_t* ath = str_member(c, "ath");
    if (!ath || !same_text(jsv(ath), dpop_ath(e.access_token))) {
      p->why = "The DPoP proof's ath does not match the access token";
      return DpopStatus::kInvalid;
    }
  }
  if (e.nonce_key) {
    const json_t* nonce = str_member(c, "nonce");
    if (!nonce || !dpop_nonce_ok(*e.nonce_key, jsv(nonce), e.now, e.window)) {
      p->why = "A DPoP nonce from this server is required";
      return DpopStatus::kUseNonce;
    }
  }
  p->jti.assign(json_string_value(jti), json_string_length(jti));
  return DpopStatus::kOk;
}

std::string nonce_for_slot(const Digest& key, int64_t slot) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  const std::string msg = "dpop-nonce " + std::to_string(slot);
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
            reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), mac, &len)) {
    throw std::runtime_error("HMAC failed");
  }
  return base64url_encode(mac, 24);
}

}  // namespace

DpopProof dpop_check(std::string_view proof, const DpopExpect& e) {
  Jws jws;
  if (!parse_jws(proof, &jws)) return refuse("The DPoP proof is not a JWS");
  DpopProof p;
  auto key = header_key(jws.header.get(), &p.why);
  if (!key) return p;
  // another key than the token's is refused before the cost of its
  // signature
  if (!e.jkt.empty() && !same_text(key->kid(), e.jkt)) {
    return refuse("The DPoP proof's key is not the one the token is bound to");
  }
  if (!jwt_signature_ok(*key, jws.signing_input, jws.sig)) {
    return refuse("The DPoP proof's signature does not verify");
  }
  p.status = check_claims(jws.claims.get(), e, &p);
  if (p.status == DpopStatus::kOk) p.jkt = key->kid();
  return p;
}

std::string dpop_nonce(const Digest& key, int64_t now, int64_t window) {
  return nonce_for_slot(key, now / std::max<int64_t>(1, window));
}

bool dpop_nonce_ok(const Digest& key, std::string_view nonce, int64_t now, int64_t window) {
  const int64_t slot = now / std::max<int64_t>(1, window);
  return same_text(nonce, nonce_for_slot(key, slot)) ||
         same_text(nonce, nonce_for_slot(key, slot - 1));
}

std::string dpop_replay_key(std::string_view jkt, std::string_view jti) {
  std::string both(jkt);
  both.push_back(' ');
  both.append(jti);
  Digest d = sha256(both);
  return "P" + base64url_encode(d.data(), d.size());
}

std::string dpop_ath(std::string_view token) {
  Digest d = sha256(token);
  return base64url_encode(d.data(), d.size());
}

DpopStatus dpop_record(const oauth2_counters_t& c, const DpopProof& p, int64_t window,
                       const char** why) {
  if (!c.seen) {
    *why = "DPoP proofs cannot be checked for replay here";
    return DpopStatus::kInvalid;
  }
  const std::string key = dpop_replay_key(p.jkt, p.jti);
  // acceptable while its iat is within the window of now: at most two
  // windows from its first use
  const unsigned ttl = static_cast<unsigned>(2 * window + 1);
  const unsigned r =
      c.seen(c.ctx, reinterpret_cast<const unsigned char*>(key.data()), key.size(), ttl);
  if (r == 0) return DpopStatus::kOk;
  *why = r == OAUTH2_COUNTER_FULL ? "The server cannot record more DPoP proofs now"
                                  : "The DPoP proof was already used";
  return DpopStatus::kInvalid;
}

// ------------------------------------------------------------------ hooks

namespace {

using detail::sv;

Response dpop_error(const char* error, const char* why) {
  Response r = oauth_error(400, error, why);
  r.refused = "DPoP proof refused";
  return r;
}

}  // namespace

DpopGrant dpop_token_request(const Request& req, const Client& client) {
  DpopGrant g;
  const Location& loc = req.loc;
  const bool sent = req.c.dpop_count > 0;
  if (!sent || !loc.dpop) {
    if (client.dpop_bound_access_tokens) {
      g.refused = dpop_error("invalid_dpop_proof", "This client must send a DPoP proof");
    }
    return g;  // RFC 9449 5: a server that does not support DPoP ignores it
  }
  if (req.c.dpop_count > 1) {
    g.refused = dpop_error("invalid_dpop_proof", "Only one DPoP header is allowed");
    return g;
  }
  const std::string htu = issuer_url(loc.issuer, sv(req.c.path));
  DpopExpect e;
  e.method = sv(req.c.method);
  e.htu = htu;
  e.now = req.c.now;
  e.window = loc.dpop_window;
  e.nonce_key = loc.dpop_nonce ? loc.dpop_key : nullptr;
  DpopProof p = dpop_check(sv(req.c.dpop), e);
  if (p.status == DpopStatus::kUseNonce) {
    // RFC 9449 8: every client meets this once a nonce window; logged at
    // info, not as a refusal worth the operator's attention
    g.refused = dpop_error("use_dpop_nonce", p.why);
    g.refused->refused = "DPoP proof without the nonce of now: use_dpop_nonce";
    g.refused->refused_info = true;
    g.refused->dpop_nonce = dpop_nonce(*loc.dpop_key, req.c.now, loc.dpop_window);
    return g;
  }
  if (p.status == DpopStatus::kOk) {
    p.status = dpop_record(req.c.counters, p, loc.dpop_replay_window(), &p.why);
  }
  if (p.status != DpopStatus::kOk) {
    g.refused = dpop_error("invalid_dpop_proof", p.why);
    return g;
  }
  g.jkt = std::move(p.jkt);
  return g;
}

int dpop_resource_check(const Location* loc, const BearerRequest& req, bool dpop_scheme,
                        std::string_view token, const std::string& jkt, std::string_view client_id,
                        const std::function<std::string()>& rate_key, Validation* v) {
  v->dpop = true;
  v->dpop_error = "invalid_token";
  // the admin daemon (no location) cannot check proofs; a location with
  // DPoP off does not; an unbound token shown as DPoP, or a bound one as
  // Bearer, is refused (RFC 9449 7.1, 7.2)
  if (!loc || !loc->dpop || jkt.empty() || !dpop_scheme) return OAUTH2_WHY_UNKNOWN;
  v->dpop_error = "invalid_dpop_proof";
  if (req.dpop_count != 1) return OAUTH2_WHY_MALFORMED;
  const std::string htu = issuer_url(loc->issuer, req.path);
  DpopExpect e;
  e.method = req.method;
  e.htu = htu;
  e.now = req.now;
  e.window = loc->dpop_window;
  e.access_token = token;
  e.nonce_key = loc->dpop_nonce ? loc->dpop_key : nullptr;
  e.jkt = jkt;
  DpopProof p = dpop_check(req.dpop, e);
  if (p.status == DpopStatus::kUseNonce) {
    v->dpop_error = "use_dpop_nonce";
    v->dpop_nonce = dpop_nonce(*loc->dpop_key, req.now, loc->dpop_window);
    return OAUTH2_WHY_DPOP_NONCE;
  }
  if (p.status != DpopStatus::kOk) return OAUTH2_WHY_MALFORMED;
  if (!same_text(p.jkt, jkt)) return OAUTH2_WHY_MALFORMED;  // another key
  if (!req.rate_counted) {
    RateLimit rate(*loc, req.counters, "");
    if (rate.on()) {
      v->retry_after = rate.take(rate_key());
      v->rate = rate.state();
    }
    if (v->retry_after) {
      v->result = OAUTH2_RATE_LIMITED;
      v->client_id = client_id;
      return OAUTH2_WHY_RATE_LIMITED;
    }
  }
  // an internal redirect checks the same request again: its proof was
  // recorded on the first pass
  const char* why = "";
  if (!req.dpop_recorded &&
      dpop_record(req.counters, p, loc->dpop_replay_window(), &why) != DpopStatus::kOk) {
    return OAUTH2_WHY_MALFORMED;
  }
  v->dpop_recorded = true;
  v->dpop = false;
  v->dpop_error = nullptr;
  return OAUTH2_WHY_OK;
}

std::string dpop_challenge(const Location& loc, const Validation& v) {
  // fixed texts and the configured realm only, never request input (R65)
  // (an endpoint such as userinfo has no auth_oauth2 realm: none named)
  std::string h = "DPoP";
  const char* sep = " ";
  if (!loc.auth_realm.empty()) {
    h += " realm=\"" + loc.auth_realm + "\"";
    sep = ", ";
  }
  if (v.dpop_error) {
    h += std::string(sep) + "error=\"" + v.dpop_error + "\"";
    sep = ", ";
  }
  h += std::string(sep) + "algs=\"" + std::string(kDpopAlgs) + "\"";
  return h;
}

}  // namespace oauth2
