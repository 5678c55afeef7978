// RFC 8707 resource indicators: the resources a token may be used at (its
// audience), what a request asks for, and whether a location accepts a
// token.  A token's audience is stored as a space-separated list of
// absolute URIs (a URI holds no space); empty: the default audience (the
// location's oauth2_jwt_audience, else the issuer), as before resource
// indicators existed.

#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <jansson.h>

namespace oauth2 {

class Form;
struct Client;
struct Location;

constexpr size_t kMaxResources = 8;       // per request, per application
constexpr size_t kMaxResourceLen = 1024;  // bytes, per URI

// RFC 8707 2: an absolute URI (RFC 3986 4.3: a scheme, then ':', then
// something) without a fragment; printable ASCII without spaces or
// quotes, at most kMaxResourceLen bytes.
bool valid_resource(std::string_view uri);

// The items of a stored audience.
std::vector<std::string_view> audience_items(std::string_view audience);

// What a request's resource parameters ask for.
struct Target {
  const char* error = nullptr;  // "invalid_target", "invalid_request"; null: good
  const char* description = nullptr;
  std::string audience;  // the resources asked for, deduplicated; empty: none
};

// The resource parameters of form (an empty value counts as absent),
// each valid and registered for client (Client::resources).
Target requested_target(const Form& form, const Client& client);

// At the token endpoint, for a grant that holds the audience held: what
// the new access token is for.  Nothing asked: all the grant holds; else
// a subset of it, or nullopt (invalid_target).
std::optional<std::string> narrow_target(const std::string& asked, const std::string& held);

// Whether a token whose stored audience is audience opens loc: loc's
// accepted audience (Location::accepted_audience) is one of its items;
// for a token without one, loc accepts the default audience.
bool audience_accepts(std::string_view audience, const Location& loc);

// "aud" for introspection and JWTs: a string for one item, an array for
// several; fallback when audience is empty; nullptr if both are empty.
json_t* audience_json(std::string_view audience, std::string_view fallback);

}  // namespace oauth2
