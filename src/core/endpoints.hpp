// The OAuth decisions of the token and revocation endpoints and of bearer
// validation.  Inputs are views of what the shim parsed out of HTTP;
// outputs are plain values the C API copies out.

#pragma once

#include <cstdint>
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
  bool html = false;
  std::string location;              // percent-encoded by its builder
  std::vector<std::string> cookies;  // Set-Cookie values, at most 2
  // not empty: run the request again with this (include/oauth2.h
  // OAUTH2_AGAIN); the body and the rest are unused
  std::string resume;
  // a refusal the shim logs at oauth2_refusal_log_level (static text)
  const char* refused = nullptr;
};

// A store write left to run off the event loop.
class PendingWrite {
 public:
  virtual ~PendingWrite() = default;
  virtual void run() noexcept = 0;   // any thread
  virtual Response finish() = 0;     // the event loop, after run()
};

struct EndpointResult {
  Response response;                       // when pending is null
  std::unique_ptr<PendingWrite> pending;
  bool slow = false;                       // pending hashes a password
};

EndpointResult token_endpoint(Store& store, const oauth2_endpoint_req_t& req);
EndpointResult revoke_endpoint(Store& store, const oauth2_endpoint_req_t& req);
EndpointResult authorize_endpoint(Store& store,
                                  const oauth2_endpoint_req_t& req);
EndpointResult introspect_endpoint(Store& store,
                                   const oauth2_endpoint_req_t& req);
EndpointResult metadata_endpoint(Store& store,
                                 const oauth2_endpoint_req_t& req);
EndpointResult register_endpoint(Store& store,
                                 const oauth2_endpoint_req_t& req);
EndpointResult login_endpoint(Store& store, const oauth2_endpoint_req_t& req);
EndpointResult handshake_endpoint(Store& store,
                                  const oauth2_endpoint_req_t& req);
// answered from the configuration alone: no store
EndpointResult jwks_endpoint(const oauth2_endpoint_req_t& req);
EndpointResult jwt_token_endpoint(Store& store,
                                  const oauth2_endpoint_req_t& req);
EndpointResult jwt_refresh_endpoint(Store& store,
                                    const oauth2_endpoint_req_t& req);
EndpointResult status_endpoint(const oauth2_endpoint_req_t& req);

// The refusals of include/oauth2.h (OAUTH2_REFUSED_*) and the
// store-failure response of an endpoint, in its shape.
Response refusal_response(int endpoint, int why, unsigned retry_after);
Response rate_limited_response(int endpoint, unsigned retry_after);
Response failure_response(int endpoint, int status);

struct Validation {
  int result = OAUTH2_INVALID_TOKEN;
  std::string client_id;
  std::string scope;
  std::string user;      // the username; empty for client tokens
  uint64_t user_id = 0;
  int64_t expires = 0;
};

Validation validate(Store& store, const oauth2_validate_req_t& req);

// An RFC 6749 5.2 error response.
Response oauth_error(int status, std::string_view error,
                     std::string_view description);

}  // namespace oauth2
