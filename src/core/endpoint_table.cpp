#include "endpoint_table.hpp"

#include <algorithm>

#include "endpoint_util.hpp"

namespace oauth2 {

using namespace detail;

namespace {

// ------------------------------------------------------------- shapes

// An HTML page of the authorization endpoint's refusals.
Response refusal_page(int status, const char* title, const char* text) {
  Response r;
  r.status = status;
  r.html = true;
  r.body = std::string(
               "<!DOCTYPE html>\n<html lang=\"en\"><head><meta "
               "charset=\"utf-8\"><title>") +
           title + "</title></head><body><main><h1>" + title + "</h1><p>" + text +
           "</p></main></body></html>\n";
  return r;
}

constexpr const char* kBusy = "Too many password checks at once: try again in a moment.";

// What each shape answers for the refusals an endpoint does not decide.
struct ShapeRow {
  Response (*rate_limited)(unsigned wait);
  Response (*locked_out)(unsigned wait);
  Response (*too_large)();
  Response (*busy)();
  Response (*failure)(int status);
};

Response oauth_rate_limited(unsigned wait) {
  Response r =
      oauth_error(429, "temporarily_unavailable", "Too many requests: the rate limit is reached");
  r.retry_after = wait;
  return r;
}

Response oauth_locked_out(unsigned wait) {
  Response r =
      oauth_error(429, "temporarily_unavailable", "Too many failed client authentications");
  r.retry_after = wait;
  return r;
}

Response oauth_too_large() {
  Response r = invalid_request("The request body is too large");
  r.status = 413;
  return r;
}

Response oauth_failure(int status) {
  if (status == 503) return unavailable();
  return oauth_error(500, "server_error", "Internal error");
}

Response drf_failure(int status) {
  Response r = status == 503 ? drf_detail(503, "The store is unavailable.", "unavailable")
                             : drf_detail(500, "A server error occurred.", "error");
  if (status == 503) r.retry_after = 1;
  return r;
}

// kPage: what a browser shows (the authorization endpoint's pages are
// read by people, not parsed by clients)
Response page_rate_limited(unsigned wait) {
  Response r = refusal_page(429, "Too many requests",
                            "Too many requests from this address: try again in a moment.");
  r.retry_after = wait;
  return r;
}

Response page_locked_out(unsigned wait) {
  Response r = refusal_page(429, "Too many attempts",
                            "Too many failed attempts from this address: try again later.");
  r.retry_after = wait;
  return r;
}

Response page_failure(int status) {
  if (status != 503) return refusal_page(500, "Error", "Something went wrong on our side.");
  return page_unavailable();
}

const ShapeRow kShapes[] = {
    // kOAuth: RFC 6749 5.2
    {oauth_rate_limited, oauth_locked_out, oauth_too_large,
     [] { return oauth_error(503, "temporarily_unavailable", kBusy); }, oauth_failure},
    // kDrf: Django REST framework's {"detail"}
    {drf_throttled, drf_throttled, [] { return drf_detail(413, "The request body is too large."); },
     [] { return drf_detail(503, kBusy, "unavailable"); }, drf_failure},
    // kEnvelope: seed 002's {"success": false, ...}
    {handshake_rate_limited, handshake_rate_limited, handshake_too_large,
     [] { return handshake_failure(503); }, handshake_failure},
    // kPage: the authorization endpoint's pages
    {page_rate_limited, page_locked_out,
     [] {
       return refusal_page(413, "Authorization error",
                           "<strong>invalid_request</strong>: the form is too large.");
     },
     [] {
       return refusal_page(503, "Busy",
                           "Too many sign-ins at once: try again "
                           "in a moment.");
     },
     page_failure},
};

const ShapeRow& shape_of(int endpoint) {
  const EndpointKind* k = endpoint_kind(endpoint);
  return kShapes[static_cast<int>(k ? k->shape : Shape::kOAuth)];
}

// -------------------------------------------------------------- table

// id order: kEndpoints[id - 1] is endpoint id
const EndpointKind kEndpoints[] = {
    {{"oauth2_token", "POST", 0, 0},
     Shape::kOAuth,
     RateKey::kCaller,
     true,
     "token_endpoint",
     [](Store* s, const Request& r) { return token_endpoint(*s, r); }},
    {{"oauth2_revoke", "POST", 0, 0},
     Shape::kOAuth,
     RateKey::kCaller,
     true,
     "revocation_endpoint",
     [](Store* s, const Request& r) { return revoke_endpoint(*s, r); }},
    {{"oauth2_authorize", "GET, POST", 0, 1},
     Shape::kPage,
     RateKey::kAddress,
     true,
     "authorization_endpoint",
     [](Store* s, const Request& r) { return authorize_endpoint(*s, r); }},
    {{"oauth2_introspect", "POST", 0, 0},
     Shape::kOAuth,
     RateKey::kCaller,
     true,
     "introspection_endpoint",
     [](Store* s, const Request& r) { return introspect_endpoint(*s, r); }},
    {{"oauth2_register", "POST", 0, 0},
     Shape::kDrf,
     RateKey::kAddress,
     true,
     nullptr,
     [](Store* s, const Request& r) { return register_endpoint(*s, r); }},
    {{"oauth2_login", "POST", 0, 0},
     Shape::kOAuth,
     RateKey::kAddress,
     true,
     nullptr,
     [](Store* s, const Request& r) { return login_endpoint(*s, r); }},
    {{"oauth2_metadata", "GET, HEAD", 0, 0},
     Shape::kOAuth,
     RateKey::kAddress,
     false,
     nullptr,
     [](Store*, const Request& r) { return metadata_endpoint(r); }},
    {{"oauth2_handshake", "POST", 1, 0},
     Shape::kEnvelope,
     RateKey::kCaller,
     true,
     nullptr,
     [](Store* s, const Request& r) { return handshake_endpoint(*s, r); }},
    {{"oauth2_jwks", "GET, HEAD", 0, 0},
     Shape::kOAuth,
     RateKey::kAddress,
     false,
     "jwks_uri",
     [](Store*, const Request& r) { return jwks_endpoint(r); }},
    {{"oauth2_jwt_token", "POST", 0, 0},
     Shape::kDrf,
     RateKey::kAddress,
     true,
     nullptr,
     [](Store* s, const Request& r) { return jwt_token_endpoint(*s, r); }},
    {{"oauth2_jwt_refresh", "POST", 0, 0},
     Shape::kDrf,
     RateKey::kAddress,
     true,
     nullptr,
     [](Store* s, const Request& r) { return jwt_refresh_endpoint(*s, r); }},
    {{"oauth2_status", "GET, HEAD", 0, 0},
     Shape::kDrf,
     RateKey::kAddress,
     false,
     nullptr,
     [](Store*, const Request& r) { return status_endpoint(r); }},
    {{"oauth2_userinfo", "GET, POST", 0, 0},
     Shape::kOAuth,
     RateKey::kAddress,
     true,
     "userinfo_endpoint",
     [](Store* s, const Request& r) { return userinfo_endpoint(*s, r); }},
    {{"oauth2_end_session", "GET, POST", 0, 1},
     Shape::kPage,
     RateKey::kAddress,
     true,
     "end_session_endpoint",
     [](Store* s, const Request& r) { return end_session_endpoint(*s, r); }},
    {{"oauth2_device_authorization", "POST", 0, 0},
     Shape::kOAuth,
     RateKey::kCaller,
     true,
     "device_authorization_endpoint",
     [](Store* s, const Request& r) { return device_authorization_endpoint(*s, r); }},
    {{"oauth2_device", "GET, POST", 0, 1},
     Shape::kPage,
     RateKey::kAddress,
     true,
     nullptr,
     [](Store* s, const Request& r) { return device_endpoint(*s, r); }},
    {{"oauth2_authorized_grants", "GET, POST", 0, 1},
     Shape::kPage,
     RateKey::kAddress,
     true,
     nullptr,
     [](Store* s, const Request& r) { return authorized_grants_endpoint(*s, r); }},
};

static_assert(std::size(kEndpoints) == OAUTH2_ENDPOINT_MAX - 1, "one row per endpoint id");

}  // namespace

const EndpointKind* endpoint_kind(int endpoint) {
  if (endpoint <= OAUTH2_ENDPOINT_NONE || endpoint >= OAUTH2_ENDPOINT_MAX) {
    return nullptr;
  }
  return &kEndpoints[endpoint - 1];
}

Response rate_limited_response(int endpoint, unsigned wait) {
  Response r = shape_of(endpoint).rate_limited(wait);
  r.refused = "the rate limit is reached";
  r.limited = OAUTH2_LIMITED_RATE;
  return r;
}

Response locked_out_response(int endpoint, unsigned wait) {
  Response r = shape_of(endpoint).locked_out(wait);
  r.refused = "too many failed authentications from the address";
  r.limited = OAUTH2_LIMITED_THROTTLE;
  return r;
}

Response too_large_response(int endpoint) {
  return shape_of(endpoint).too_large();
}

Response busy_response(int endpoint, unsigned wait) {
  Response r = shape_of(endpoint).busy();
  r.retry_after = std::max(1u, wait);  // the shim logs why
  return r;
}

Response failure_response(int endpoint, int status) {
  return shape_of(endpoint).failure(status);
}

Response page_unavailable() {
  Response r = refusal_page(503, "Unavailable",
                            "This service is unavailable just now: try again "
                            "in a moment.");
  r.retry_after = 1;
  return r;
}

std::string counted_address(const oauth2_request_t& req, const std::string& address) {
  const std::string_view site(reinterpret_cast<const char*>(req.fetch_site.data),
                              req.fetch_site.len);
  if (req.fetch_site_count && (site == "cross-site" || site == "same-site")) {
    return "xs:" + address;  // "xs" is no address: never another's count
  }
  return address;
}

unsigned RateLimit::take(std::string_view name) {
  if (!on() || counted()) return 0;
  const std::string key = counter_key(loc_.realm, name);
  return c_.take(c_.ctx, reinterpret_cast<const unsigned char*>(key.data()), key.size(),
                 loc_.rates.data(), loc_.rates.size(), &state_);
}

EndpointResult run_endpoint(Store* store, const Request& req) {
  const int endpoint = req.loc.endpoint;
  const EndpointKind* kind = endpoint_kind(endpoint);
  if (!kind) return done(failure_response(endpoint, 500));
  if (kind->needs_store) {
    // too many failed authentications from this address (R17)
    if (unsigned wait = req.throttle().address_wait()) {
      return done(locked_out_response(endpoint, wait));
    }
    if (!store) {
      Response r = failure_response(endpoint, 503);
      r.reason = "the store is not open in this worker";
      return done(std::move(r));
    }
    // cluster mode: a mirror staler than max_staleness answers nothing
    // (R77): a revocation made on another edge may be missing from what
    // it reads, and a write would reach etcd but not come back through
    // it within the mirror wait (an answer lost, a thread held)
    if (auto stale = stale_mirror(*store, endpoint)) return done(std::move(*stale));
  }
  // the pass after a mirror caught up (catch_up_and_again) was counted
  // on the first, once
  if (auto before = caught_up_rate(req)) req.rate.counted_before(*before);
  if (kind->rate_key == RateKey::kAddress) {
    if (unsigned wait = req.rate.take_address()) {
      return done(rate_limited_response(endpoint, wait));
    }
  }
  EndpointResult e = kind->handler(store, req);
  if (!e.pending && !req.rate.counted()) {
    // refused before its caller was known (malformed, unauthenticated):
    // it did no work, and counts against the address, so that a flood of
    // bad requests meets the limit too
    if (unsigned wait = req.rate.take_address()) {
      e.response = rate_limited_response(endpoint, wait);
    }
  }
  if (!e.pending && e.response.auth_failed) req.throttle().address_failed();
  return e;
}

}  // namespace oauth2

extern "C" const oauth2_endpoint_info_t* oauth2_endpoint_info(int endpoint) noexcept {
  const oauth2::EndpointKind* k = oauth2::endpoint_kind(endpoint);
  return k ? &k->info : nullptr;
}
