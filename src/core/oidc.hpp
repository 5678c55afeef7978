// OpenID Connect Core 1.0 for the authorization code flow: what a code
// granted with the "openid" scope carries to the token request (the nonce,
// when the user signed in), the id_token of the grant, the userinfo and
// end-session endpoints (RP-Initiated Logout 1.0) and the members the
// discovery document adds to the server's metadata.

#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "endpoint_util.hpp"
#include "json.hpp"

namespace oauth2::detail {

constexpr size_t kMaxNonce = 512;
constexpr int64_t kIdTokenTtl = 3600;

bool scope_has(std::string_view scope, std::string_view item);

// What the authorization request asked of OpenID Connect.
struct OidcCode {
  std::string nonce;      // echoed in the id_token; empty: none sent
  int64_t auth_time = 0;  // when the user last signed in (the session's start)
};

// A code's Token::data, and back (nullopt: not an OpenID Connect code).
std::string encode_oidc_code(const OidcCode& oc);
std::optional<OidcCode> decode_oidc_code(const Token& code);

// The key id_tokens are signed with: the location's first signing key of
// the client's registered algorithm, else its first RS256 key, else its
// first asymmetric signing key; nullptr if it has none (HS256 keys are the
// server's secret, which no client can verify with).
const JwtKey* id_token_key(const Location& loc, std::string_view alg);

// The signed id_token of a grant made by user (its id in decimal).
std::string sign_id_token(const IssueSettings& s, const Client& c, const std::string& user,
                          const OidcCode& oc, std::string_view access_token);

// An id_token_hint (OpenID Connect Core 3.1.2.1, RP-Initiated Logout 2):
// an id_token this server signed, expired or not; nullopt if it is none
// (another issuer's, forged, an access JWT, HS256).
struct IdTokenHint {
  std::string sub;        // the user's id in decimal
  std::string aud;        // the client it was issued to
  int64_t auth_time = 0;  // the sign-in (session) it was issued in
};
std::optional<IdTokenHint> read_id_token_hint(const Request& req, std::string_view hint);

// The OpenID Provider Metadata members the discovery document adds.
void add_oidc_metadata(json_t* doc, const Request& req);

}  // namespace oauth2::detail
