// The endpoint table: one row per kind of endpoint, read by the shim
// (oauth2_endpoint_info: its directive, Allow header, what it reads) and by
// the core (its handler, the shape of its errors, how its rate limit is
// keyed).  Adding an endpoint is a row here, its handler and its
// directive in the shim's command table.

#pragma once

#include "../../include/oauth2.h"
#include "endpoints.hpp"
#include "request.hpp"

namespace oauth2 {

// The shapes errors come in: RFC 6749 JSON, Django REST framework's
// {"detail"}, seed 002's envelope, or an HTML page.
enum class Shape { kOAuth, kDrf, kEnvelope, kPage };

// How an endpoint's rate limit is keyed.
enum class RateKey {
  kAddress,  // the client's address, before the endpoint runs
  kCaller,   // the endpoint takes it once it knows the caller; a request
             // refused before that counts against the address
};

struct EndpointKind {
  oauth2_endpoint_info_t info;
  Shape shape;
  RateKey rate_key;
  bool needs_store;           // false: answered from the configuration alone
  const char* metadata_name;  // its URL in the metadata, or nullptr
  EndpointResult (*handler)(Store* store, const Request& req);
};

// nullptr for an unknown id (or OAUTH2_ENDPOINT_NONE)
const EndpointKind* endpoint_kind(int endpoint);

// The refusals and failures of an endpoint, in its shape.
Response rate_limited_response(int endpoint, unsigned retry_after);
Response locked_out_response(int endpoint, unsigned retry_after);
Response too_large_response(int endpoint);
Response busy_response(int endpoint, unsigned retry_after);
Response failure_response(int endpoint, int status);
// the pages' 503 (HTML, Retry-After): a write of a page's that failed
Response page_unavailable();

// Runs an endpoint: the address throttle, the rate limit when keyed by
// address, the handler, the rate limit of a request refused before its
// caller was known.  store is nullptr when it is not open.
EndpointResult run_endpoint(Store* store, const Request& req);

}  // namespace oauth2
