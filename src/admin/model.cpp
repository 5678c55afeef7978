#include "model.hpp"

#include <cstdint>
#include <ctime>
#include <iterator>
#include <stdexcept>
#include <utility>

#include "cli.hpp"
#include "codec.hpp"
#include "crypto.hpp"
#include "lockout.hpp"

namespace oauth2::admin {
namespace {

bool is_alpha(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}
bool is_digit(char ch) {
  return ch >= '0' && ch <= '9';
}
bool is_hex(char ch) {
  return is_digit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

// RFC 3986 characters only, every '%' a full escape and none of a control
// character (%0D%0A); no fragment, no wildcard, nothing outside printable
// ASCII.
bool uri_chars_ok(std::string_view u) {
  constexpr std::string_view kAllowed =
      "-._~:/?[]@!$&'()+,;=%";  // unreserved, reserved but '#' '*', '%'
  for (size_t i = 0; i < u.size(); i++) {
    char ch = u[i];
    if (!is_alpha(ch) && !is_digit(ch) && kAllowed.find(ch) == std::string_view::npos) {
      return false;
    }
    if (ch == '%') {
      if (i + 2 >= u.size() || !is_hex(u[i + 1]) || !is_hex(u[i + 2])) {
        return false;
      }
      char hi = u[i + 1], lo = u[i + 2];
      if (hi == '0' || hi == '1' || (hi == '7' && (lo == 'f' || lo == 'F'))) {
        return false;
      }
    }
  }
  return true;
}

// The authority of an https URI: host[:port], no userinfo.
bool https_authority_ok(std::string_view a) {
  std::string_view host = a, port;
  if (!a.empty() && a[0] == '[') {
    size_t close = a.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    for (char ch : a.substr(1, close - 1)) {
      if (!is_hex(ch) && ch != ':' && ch != '.') return false;
    }
    host = a.substr(0, close + 1);
    std::string_view after = a.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return false;
      port = after.substr(1);
      if (port.empty()) return false;
    }
  } else {
    size_t colon = a.find(':');
    if (colon != std::string_view::npos) {
      host = a.substr(0, colon);
      port = a.substr(colon + 1);
      if (port.empty()) return false;
    }
    if (host.empty()) return false;
    for (char ch : host) {
      if (!is_alpha(ch) && !is_digit(ch) && ch != '-' && ch != '.') {
        return false;  // '@' (userinfo), '%', sub-delims
      }
    }
  }
  if (port.size() > 5) return false;
  for (char ch : port) {
    if (!is_digit(ch)) return false;
  }
  return true;
}

}  // namespace

Json client_json(const Client& c, json_t* secret_json) {
  Json obj(checked(json_object()));
  json_t* o = obj.get();
  set_member(o, "client_id", string_json(c.client_id));
  if (secret_json) set_member(o, "client_secret", json_incref(secret_json));
  set_member(o, "name", string_json(c.name));
  set_member(o, "client_type", json_string(c.confidential ? "confidential" : "public"));
  set_member(o, "grant_types", strings_json(c.grant_types));
  set_member(o, "scope", string_json(c.scope));
  set_member(o, "redirect_uris", strings_json(c.redirect_uris));
  set_member(o, "resources", strings_json(c.resources));
  set_member(o, "auth_method", c.auth_method.empty() ? json_null() : string_json(c.auth_method));
  set_member(o, "access_token_ttl",
             c.access_token_ttl == 0 ? json_null() : json_integer(c.access_token_ttl));
  set_member(o, "access_token_format",
             c.access_token_format.empty() ? json_null() : string_json(c.access_token_format));
  set_member(o, "first_party", json_boolean(c.first_party));
  set_member(o, "dpop_bound_access_tokens", json_boolean(c.dpop_bound_access_tokens));
  set_member(o, "post_logout_redirect_uris", strings_json(c.post_logout_redirect_uris));
  set_member(o, "id_token_signed_response_alg",
             c.id_token_alg.empty() ? json_null() : string_json(c.id_token_alg));
  set_member(o, "created_at", json_integer(c.created_at));
  return obj;
}

bool one_of(std::string_view s, const char* const* set, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (s == set[i]) return true;
  }
  return false;
}

size_t utf8_chars(std::string_view s) {
  size_t n = 0;
  for (char ch : s) {
    if ((static_cast<unsigned char>(ch) & 0xC0) != 0x80) n++;
  }
  return n;
}

bool has_c1_control(std::string_view s) {
  for (size_t i = 0; i + 1 < s.size(); i++) {
    if (static_cast<unsigned char>(s[i]) == 0xC2 && static_cast<unsigned char>(s[i + 1]) <= 0x9F) {
      return true;
    }
  }
  return false;
}

// docs/security.md R22: an absolute URI without fragment (RFC 6749 3.1.2) in
// https; http only to a loopback IP literal, any port (RFC 8252 7.3); or
// a private-use scheme with a '.' (RFC 8252 7.1: com.example.app:/cb).
// No userinfo, wildcard, whitespace or control character; javascript:,
// data:, file: and the like fall under none of the three.
bool valid_redirect_uri(std::string_view u) {
  if (u.empty() || u.size() > kMaxRedirectUri || !uri_chars_ok(u)) {
    return false;
  }
  size_t colon = u.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view scheme = u.substr(0, colon);
  std::string_view rest = u.substr(colon + 1);
  for (size_t i = 0; i < scheme.size(); i++) {
    char ch = scheme[i];
    if (!(ch >= 'a' && ch <= 'z') &&  // lower case only: HTTPS: is not https
        (i == 0 || (!is_digit(ch) && ch != '+' && ch != '-' && ch != '.'))) {
      return false;
    }
  }
  if (scheme == "https" || scheme == "http") {
    if (rest.substr(0, 2) != "//") return false;
    rest.remove_prefix(2);
    size_t end = rest.find_first_of("/?");
    std::string_view authority = rest.substr(0, end);
    if (scheme == "https") return https_authority_ok(authority);
    for (std::string_view loopback : {"127.0.0.1", "[::1]"}) {
      if (authority.substr(0, loopback.size()) != loopback) continue;
      std::string_view port = authority.substr(loopback.size());
      if (port.empty()) return true;
      if (port[0] != ':' || port.size() < 2 || port.size() > 6) return false;
      for (char ch : port.substr(1)) {
        if (!is_digit(ch)) return false;
      }
      return true;
    }
    return false;
  }
  if (scheme.find('.') == std::string_view::npos) return false;
  // an authority ("com.example.app://host/cb") has no userinfo either
  if (rest.substr(0, 2) == "//") {
    std::string_view authority = rest.substr(2, rest.find_first_of("/?#", 2) - 2);
    if (authority.find('@') != std::string_view::npos) return false;
  }
  return !rest.empty();
}

std::optional<int64_t> parse_ttl(std::string_view s) {
  if (s.empty() || s.size() > 10) return std::nullopt;
  int64_t v = 0;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return std::nullopt;
    v = v * 10 + (ch - '0');
  }
  if (v < 1 || v > kMaxTtl) return std::nullopt;
  return v;
}

void push_unique(std::vector<std::string>& v, std::string s) {
  for (const auto& x : v) {
    if (x == s) return;
  }
  v.push_back(std::move(s));
}

std::optional<std::vector<std::string>> dot_grant_types(std::string_view dot) {
  if (dot == "authorization-code") {
    return std::vector<std::string>{"authorization_code", "refresh_token"};
  }
  if (dot == "password") {
    return std::vector<std::string>{"password", "refresh_token"};
  }
  if (dot == "client-credentials") {
    return std::vector<std::string>{"client_credentials"};
  }
  return std::nullopt;
}

bool valid_app_name(std::string_view name) {
  return !name.empty() && valid_utf8(name) && utf8_chars(name) <= kMaxName && !has_control(name) &&
         !has_c1_control(name);
}

bool valid_grant(std::string_view grant) {
  return one_of(grant, kGrants, std::size(kGrants));
}

bool valid_auth_method(std::string_view method) {
  return one_of(method, kAuthMethods, std::size(kAuthMethods));
}

std::string new_client_secret(Client& c) {
  std::string secret = random_alnum(kClientSecretLength);
  c.secret_hash = hash_secret(secret);
  c.imported_secret = false;  // generated here: 128 alphanumerics
  return secret;
}

void create_client(Store& store, Client& c, std::string* secret) {
  if (c.confidential) *secret = new_client_secret(c);
  c.created_at = static_cast<int64_t>(time(nullptr));
  store.change([&](Txn& txn) {
    for (int tries = 0;; tries++) {
      if (tries == 3) throw std::runtime_error("no free client_id found");
      c.client_id = random_alnum(kClientIdLength);  // the last run's is stored
      if (txn.put_client(c, true)) break;
    }
    txn.commit();
  });
}

Json user_json(const User& u) {
  Json obj(checked(json_object()));
  json_t* o = obj.get();
  set_member(o, "id", json_integer(static_cast<json_int_t>(u.id)));
  set_member(o, "username", string_json(u.username));
  set_member(o, "email", string_json(u.email));
  set_member(o, "first_name", string_json(u.first_name));
  set_member(o, "last_name", string_json(u.last_name));
  set_member(o, "is_staff", json_boolean(u.is_staff));
  set_member(o, "is_active", json_boolean(u.is_active));
  return obj;
}

std::optional<uint64_t> parse_user_id(std::string_view s) {
  if (s.empty() || s.size() > 19 || s[0] == '0') return std::nullopt;
  uint64_t v = 0;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(ch - '0');
  }
  if (v > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
  return v;
}

size_t end_sessions_after_change(Txn& txn, std::string_view realm, const User& u, bool new_password,
                                 bool lost_staff) {
  if (new_password) account_password_changed(txn, realm, u.id);
  if (new_password || !u.is_active) return txn.delete_user_tokens(realm, u.id);
  if (!lost_staff) return 0;
  size_t n = 0;
  for (const auto& [id, t] : txn.user_tokens_of_type(realm, u.id, TokenType::kPageSession)) {
    n += txn.delete_token(realm, id) ? 1 : 0;
  }
  return n;
}

}  // namespace oauth2::admin
