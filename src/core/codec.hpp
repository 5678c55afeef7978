// Strict decoders for everything that arrives from the network: form
// bodies, HTTP Basic credentials, bearer tokens, scope lists.  Nothing here
// allocates more than the input it is given, nothing is lenient.

#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace oauth2 {

constexpr size_t kMaxParams = 64;

// A decoded application/x-www-form-urlencoded body.
class Form {
 public:
  enum class Status { kOk, kMalformed, kDuplicate, kTooMany };

  // Parses body.  kMalformed: empty pair or name, a bad or NUL/control
  // escape, invalid UTF-8, a raw byte outside %x21-7E.  kDuplicate: a name
  // given twice (names are case-sensitive), except a repeatable one
  // (RFC 8707's resource).  kTooMany: over kMaxParams.
  Status parse(std::string_view body);

  // The value of name; an empty value counts as absent (RFC 6749 3.1).
  std::optional<std::string_view> get(std::string_view name) const;
  bool has(std::string_view name) const { return get(name).has_value(); }
  // every value of a repeatable name, in order (empty values included)
  std::vector<std::string_view> all(std::string_view name) const;
  const std::vector<std::pair<std::string, std::string>>& params() const { return params_; }

 private:
  Status parse_all(std::string_view body);

  std::vector<std::pair<std::string, std::string>> params_;
};

// Percent-decodes s with '+' as space.  Fails on a bad escape, invalid
// UTF-8, NUL or any other control character.
std::optional<std::string> form_decode(std::string_view s);

// A URL path segment percent-decoded ('+' stays '+'); nullopt on a bad
// escape, NUL or another control character.
std::optional<std::string> percent_decode_segment(std::string_view s);

bool valid_utf8(std::string_view s);
bool has_control(std::string_view s);  // C0 controls and DEL

// Standard base64 with padding, nothing lenient: no whitespace, no data
// after '=', length a multiple of 4.
std::optional<std::string> base64_decode_strict(std::string_view s);
std::string base64url_encode(const unsigned char* p, size_t n);
std::string hex_encode(const unsigned char* p, size_t n);
std::optional<std::string> hex_decode(std::string_view s);

// Percent-encodes all but RFC 3986's unreserved characters (upper-case
// hex): safe in a query, a path segment and a Location header.
std::string percent_encode(std::string_view s);
// Escapes & < > " ' for HTML text and attribute values.
std::string html_escape(std::string_view s);
// The media type of a Content-Type value: before any ';', without the
// surrounding spaces and tabs (compare it with iequals()).
std::string_view media_type(std::string_view content_type);

struct BasicCredentials {
  std::string id;
  std::string secret;
};

// Parses an Authorization header value "Basic <b64>".  nullopt when the
// scheme is not Basic (scheme_is_basic=false) or the credentials are
// malformed (scheme_is_basic=true).
std::optional<BasicCredentials> parse_basic(std::string_view header, bool* scheme_is_basic);

// The scheme of an Authorization value, up to the first space.
std::string_view auth_scheme(std::string_view header);
bool iequals(std::string_view a, std::string_view b);

// Character classes of the validation path, one table lookup a byte:
// base64url (ALPHA / DIGIT / "-_"), token68's other characters ("._~+/"),
// a realm's (ALPHA / DIGIT / "._-").
namespace chars {
enum : unsigned char { kB64Url = 1, kToken68 = 2, kRealm = 4 };
extern const std::array<unsigned char, 256> kClass;
inline bool is(char c, unsigned char cls) {
  return (kClass[static_cast<unsigned char>(c)] & cls) != 0;
}
}  // namespace chars

// token68 (RFC 7235 2.1): 1*( ALPHA / DIGIT / "-._~+/" ) *"="
bool is_token68(std::string_view s);

// VSCHAR (%x20-7E), 1 or more
bool is_vschar(std::string_view s);

// scope = scope-token *( SP scope-token ), scope-token = 1*NQCHAR, no
// repeated token.  Fills tokens in order when given.
bool parse_scope(std::string_view s, std::vector<std::string_view>* tokens);

}  // namespace oauth2
