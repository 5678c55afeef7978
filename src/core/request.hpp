// A request as the core's endpoints see it: the shim's view of the HTTP
// request (oauth2_request_t), the location it came to, and its limits.
//
// One owner for the limits of a request: the rate limit of its location
// is counted once, against its caller once an endpoint knows it ("c:" an
// authenticated client, "k:" an API key), else against its address; the
// throttles of failed authentications are decided in throttle.hpp.  The
// shim only keeps the counters.

#pragma once

#include <string>
#include <string_view>

#include "../../include/oauth2.h"
#include "location.hpp"
#include "throttle.hpp"

namespace oauth2 {

class RateLimit {
 public:
  RateLimit(const Location& loc, const oauth2_counters_t& counters, std::string address)
      : loc_(loc), c_(counters), address_(std::move(address)) {}

  bool on() const { return c_.take != nullptr && !loc_.rates.empty(); }
  // Counts the request against key; 0 if allowed, else the seconds until
  // it would be.  At most once per request: a second call is free.
  unsigned take(std::string_view key);
  unsigned take_address() { return take("a:" + address_); }
  bool counted() const { return state_.set != 0; }
  const oauth2_rate_state_t& state() const { return state_; }
  // what a pass before this one of the same request counted (set: this
  // one counts nothing)
  void counted_before(const oauth2_rate_state_t& st) { state_ = st; }

 private:
  const Location& loc_;
  oauth2_counters_t c_;
  std::string address_;
  oauth2_rate_state_t state_{};
};

// What a request's failures and rate count against: its address, or for
// a browser's request that another site's page made (Fetch Metadata's
// Sec-Fetch-Site: cross-site or same-site) that address's cross-site
// requests, apart.  A page on any site can make its visitors' browsers
// send bad requests here: counted with the rest, they would refuse the
// visitors' own sign-ins from that address (R83).  A client that sends
// the header itself gets one more count, never fewer checks: the
// account's lock counts every guess.
std::string counted_address(const oauth2_request_t& req, const std::string& address);

struct Request {
  Request(const oauth2_request_t& req, const Location& location)
      : c(req),
        loc(location),
        address(throttle_address(
            std::string_view(reinterpret_cast<const char*>(req.address.data), req.address.len))),
        counted(counted_address(req, address)),
        rate(location, req.counters, counted) {}
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  const oauth2_request_t& c;
  const Location& loc;
  const std::string address;  // throttle_address(): an account's known address
  const std::string counted;  // counted_address(): the throttles' and rates'
  mutable RateLimit rate;
  // the token endpoint's DPoP proof checked: its key's thumbprint
  mutable std::string dpop_jkt;

  Throttle throttle() const {
    return Throttle(c.counters, loc.realm, loc.auth_limit, loc.auth_window, counted);
  }
};

}  // namespace oauth2
