// JWT access tokens (RFC 9068), simplejwt's token pair (seed 003) and
// handshake tokens (seed 002): how the core signs them and finds their
// records.  A JWT's record lives under the SHA-256 of its jti, a 256-bit
// random value for access and refresh tokens, marked Token::jwt, so that
// revocation, introspection and deletion treat it like any other token.

#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "endpoint_util.hpp"
#include "location.hpp"

namespace oauth2::detail {

constexpr int64_t kJwtLeeway = 30;

// three base64url segments: worth verifying as a JWT
bool looks_like_jwt(std::string_view token);

// The record of a token presented to revocation or introspection, in two
// steps: the key it is looked up by, an opaque token's SHA-256 or a JWT's
// SHA-256 of its jti (nullopt: no record can be the token's, a malformed
// one, a JWT without a jti or, with verify, one that fails).  With verify (introspection,
// whose answer a resource server acts on) only once the JWT's signature
// verifies under the location's keys, expired or not; without
// (revocation) the jti is enough, as it is 256 random bits only the real
// token carries, and a revocation must not fail silently because the
// location lacks a key.
std::optional<TokenId> presented_id(const Request& req, std::string_view token, bool verify);
// Then the record under that key that can be the token's: a JWT's
// (jwt: looks_like_jwt of the token) must be a JWT's, an opaque one's not.
std::optional<Token> presented_record(Txn& txn, std::string_view realm, bool jwt,
                                      const TokenId& id);

// Signs the access token whose record is at; jti is its record's key's
// preimage.  RFC 9068 claims, or simplejwt's when s.simplejwt.
std::string sign_access_token(const IssueSettings& s, const Token& at, const std::string& jti);
// simplejwt's refresh token
std::string sign_refresh_token(const IssueSettings& s, const Token& rt, const std::string& jti);

// The key handshake tokens are signed with: oauth2_handshake_key's file
// (nullptr if the location has none).  Never the store: a dump of the
// store must not let anyone forge one (R86).
std::shared_ptr<JwtKey> handshake_key(const Location& loc);

}  // namespace oauth2::detail
