// The OAuth decisions of the token and revocation endpoints and of bearer
// validation.  Inputs are views of what the shim parsed out of HTTP;
// outputs are plain values the C API copies out.

#pragma once

#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "../../include/oauth2.h"
#include "store.hpp"

namespace oauth2 {

struct Response {
  int status = 200;
  bool basic_challenge = false;
  bool bearer_challenge = false;  // WWW-Authenticate: Bearer realm="api"
  bool auth_failed = false;
  unsigned retry_after = 0;
  std::string body;
  int store_rc = 0;  // the LMDB (or errno) code of a store failure
  // a 503 that the endpoint's API answers with another status (seed
  // 002's 500): still counted in oauth2_unavailable_total
  bool unavailable = false;
  std::string reason;  // why a 5xx, for the log (never a secret)
  bool html = false;
  std::string location;              // percent-encoded by its builder
  std::vector<std::string> cookies;  // Set-Cookie values, at most 2
  std::string www_authenticate;      // a challenge of fixed text, or empty
  // not empty: run the request again with this (include/oauth2.h
  // OAUTH2_AGAIN); the body and the rest are unused
  std::string resume;
  // a refusal the shim logs at oauth2_refusal_log_level (static text),
  // or at info when it is the protocol's own course (use_dpop_nonce)
  const char* refused = nullptr;
  bool refused_info = false;
  unsigned limited = OAUTH2_LIMITED_NONE;  // a 429 of a limit: which
  // for the logs and the metrics: the token request's grant_type, and
  // the client and short id (short_token_id) of an access token issued
  std::string grant;
  std::string issued_client;
  std::string token_id;
  std::string dpop_nonce;  // a DPoP-Nonce header (RFC 9449 8)
};

// A store write left to run off the event loop.
class PendingWrite {
 public:
  virtual ~PendingWrite() = default;
  virtual void run() noexcept = 0;  // any thread
  virtual Response finish() = 0;    // the event loop, after run()
  // A change decided already (on the event loop) that only needs its
  // commit: the shim may commit several in one batch
  // (Committer::commit_prepared) and call committed() with each outcome
  // instead of run().  nullptr: run() does the work.
  virtual const Change* prepared() const { return nullptr; }
  // applied: durable; !applied: a read no longer held (nothing of it was
  // applied), or error; on any thread, then finish()
  virtual void committed(bool applied, std::exception_ptr error) noexcept {
    (void)applied;
    (void)error;
  }
};

struct EndpointResult {
  Response response;  // when pending is null
  std::unique_ptr<PendingWrite> pending;
  bool slow = false;  // pending hashes a password
};

struct Request;
struct Location;

// The handlers of the endpoint table (endpoint_table.cpp).
EndpointResult token_endpoint(Store& store, const Request& req);
// The grants token_endpoint knows (include/oauth2.h oauth2_grant_index):
// the index of grant_type in their list, or -1; a grant's label in the
// metrics, or nullptr out of range.
int grant_index(std::string_view grant_type);
const char* grant_label(int index);
EndpointResult revoke_endpoint(Store& store, const Request& req);
EndpointResult authorize_endpoint(Store& store, const Request& req);
EndpointResult introspect_endpoint(Store& store, const Request& req);
EndpointResult metadata_endpoint(const Request& req);
EndpointResult register_endpoint(Store& store, const Request& req);
EndpointResult login_endpoint(Store& store, const Request& req);
EndpointResult handshake_endpoint(Store& store, const Request& req);
EndpointResult jwks_endpoint(const Request& req);
EndpointResult jwt_token_endpoint(Store& store, const Request& req);
EndpointResult jwt_refresh_endpoint(Store& store, const Request& req);
EndpointResult status_endpoint(const Request& req);
EndpointResult userinfo_endpoint(Store& store, const Request& req);
EndpointResult end_session_endpoint(Store& store, const Request& req);
EndpointResult device_authorization_endpoint(Store& store, const Request& req);  // device.cpp
EndpointResult device_endpoint(Store& store, const Request& req);                // device_page.cpp
EndpointResult authorized_grants_endpoint(Store& store, const Request& req);     // grants_page.cpp

// A bearer credential, as auth_oauth2 or the admin daemon received it.
struct BearerRequest {
  bool has_authorization = false;
  std::string_view authorization;
  unsigned api_key_count = 0;  // X-API-KEY headers
  std::string_view api_key;
  int64_t now = 0;
  // DPoP (RFC 9449 7): the request's method and path, its proof
  std::string_view method;
  std::string_view path;
  unsigned dpop_count = 0;
  std::string_view dpop;
  oauth2_counters_t counters{};  // records the proofs' jti
  bool dpop_recorded = false;    // this request's proof was, on a pass
                                 // before an internal redirect
  bool rate_counted = false;     // ... and its oauth2_rate_limit
  std::string_view address;      // the client's (rate_key_of_bearer)
};

struct Validation {
  int result = OAUTH2_INVALID_TOKEN;
  int why = OAUTH2_WHY_UNKNOWN;  // OAUTH2_WHY_*
  ShortTokenId token_id;         // short_token_id of what was presented
  // the store key of the record it was found valid by (not set on a hit
  // of the validation cache, which only a location has)
  std::optional<TokenId> record;
  // no record of it in the store, and not expired: in cluster mode it may
  // have been issued on another edge a moment ago (may_catch_up)
  bool unseen = false;
  std::string client_id;
  std::string scope;
  std::string user;  // the username; empty for client tokens
  uint64_t user_id = 0;
  int64_t expires = 0;
  // a DPoP refusal: its challenge is DPoP's, with this error, and a
  // DPoP-Nonce when the error is use_dpop_nonce
  bool dpop = false;
  const char* dpop_error = nullptr;
  std::string dpop_nonce;
  bool dpop_recorded = false;  // the proof's jti is recorded now
  bool cached = false;         // answered by the location's ValidCache
  // the location's oauth2_rate_limit, when it was counted before a DPoP
  // proof was recorded (rate.set): its answer (a wait: refused)
  oauth2_rate_state_t rate{};
  unsigned retry_after = 0;
};

// RFC 6750 validation of a bearer token at loc (its realm, JWT keys,
// issuer, audience and required scopes).  Without a location (the admin
// daemon holds no keys) in realm, with no scope required, a JWT is
// accepted on its jti's record alone, and a token bound to resources
// (RFC 8707) is refused: the admin API is none of them.
Validation validate(Store& store, const Location& loc, const BearerRequest& req);
// oauth2_rate_limit's caller at an auth_oauth2 location, for a token of
// client_id (and of user_id, 0 for none) that req shows: the client, as
// at the token endpoint (rate_client).  A public client's tokens are its
// users', and nothing proves the client: they count per client and
// address, so that one user spending its budget refuses no other (R83).
std::string rate_key_of_bearer(Txn& txn, std::string_view realm, const std::string& client_id,
                               uint64_t user_id, const BearerRequest& req);
Validation validate(Store& store, std::string_view realm, const BearerRequest& req);

// The WWW-Authenticate value of a refused bearer token at loc (RFC 6750
// 3): only the configured realm and scopes and fixed error codes, never
// request input; its HTTP status and error (nullptr: none).
// v: a DPoP refusal's (v->dpop) challenge is DPoP's (RFC 9449 7.1).
std::string bearer_challenge(const Location& loc, int result, int* status, const char** error,
                             const Validation* v = nullptr);

// An RFC 6749 5.2 error response.
Response oauth_error(int status, std::string_view error, std::string_view description);

}  // namespace oauth2
