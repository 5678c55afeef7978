// What the CLI, the daemon's JSON API and its web pages share about
// applications and users: their JSON shapes and the rules of their fields.

#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "json.hpp"
#include "store.hpp"

namespace oauth2::admin {

constexpr size_t kMaxName = 255;             // characters, as in DOT
constexpr size_t kMaxRedirectUri = 2048;     // bytes
constexpr int64_t kMaxTtl = 315360000;       // ten years, in seconds
constexpr size_t kClientIdLength = 40;       // as DOT generates them
constexpr size_t kClientSecretLength = 128;  // as DOT generates them
constexpr size_t kMaxEmail = 254;            // bytes: the store's limit
constexpr size_t kMaxPersonName = 150;       // bytes: the store's limit

constexpr const char* kGrants[] = {"client_credentials", "authorization_code", "password",
                                   "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"};
constexpr const char* kAuthMethods[] = {"client_secret_basic", "client_secret_post"};

// The application as `app add` prints it; client_secret only when
// secret_json is given (a string, or null for a public client).
Json client_json(const Client& c, json_t* secret_json = nullptr);

bool one_of(std::string_view s, const char* const* set, size_t n);
size_t utf8_chars(std::string_view s);
bool has_c1_control(std::string_view s);

// 1 to 255 characters of UTF-8, no C0 or C1 control character
bool valid_app_name(std::string_view name);
bool valid_grant(std::string_view grant);
bool valid_auth_method(std::string_view method);

// docs/security.md R22: https, http to a loopback IP literal, or a private-use
// scheme with a '.'; no fragment, userinfo, wildcard or control character.
bool valid_redirect_uri(std::string_view u);

// seconds, 1 to kMaxTtl
std::optional<int64_t> parse_ttl(std::string_view s);

// Appends s unless v holds it already: grants and redirect URIs keep the
// order they were given in, each once.
void push_unique(std::vector<std::string>& v, std::string s);

// django-oauth-toolkit's authorization_grant_type as our grant types:
// DOT issues refresh tokens to authorization-code and password
// applications, never for client credentials (RFC 6749 4.4.3).  nullopt
// for any other value (DOT's "implicit" and "openid-hybrid" included).
std::optional<std::vector<std::string>> dot_grant_types(std::string_view dot);

// Registers c: a fresh client_id (40 alphanumerics) and, for a
// confidential client, a fresh secret (128), stored hashed, returned in
// clear into *secret (wiped by the caller after showing it once).  One
// change, durable on return.
void create_client(Store& store, Client& c, std::string* secret);

// A new secret for c (hash set in c), in clear.
std::string new_client_secret(Client& c);

// A user as the users API shows it (docs/compat.md, seed 003): never the
// password.
Json user_json(const User& u);

// A user id as DRF's router matches it and the CLI takes it as an operand:
// decimal digits, no sign, no leading zero, at most 2^63 - 1.
std::optional<uint64_t> parse_user_id(std::string_view s);

// R39, R70: after u was written in txn, ends in the same transaction the
// sessions the change ends: every one on a new password (new_password),
// and a disabled user's, whose tokens are deleted rather than merely
// refused so that enabling the user again does not bring them back.  A
// new password also ends the account lock's trust in the browsers and
// addresses that signed in before (account_password_changed).  A user
// who lost staff (lost_staff) loses its sessions of the daemon's pages
// (kPageSession), so that giving staff back brings none back; its
// tokens and its sign-ins at the authorization server's pages, which
// staff never gave it, stay.  Returns the number of tokens deleted.
size_t end_sessions_after_change(Txn& txn, std::string_view realm, const User& u, bool new_password,
                                 bool lost_staff = false);

}  // namespace oauth2::admin
