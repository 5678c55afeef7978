// The forms of the web pages: reading a POST body, and the application
// form with the rules of `oauth2-admin app add` (model.hpp).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "codec.hpp"
#include "crypto.hpp"
#include "model.hpp"
#include "web_internal.hpp"

namespace oauth2::admin::web {
namespace {

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& ch : out) {
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
  }
  return out;
}

// Appends one name=value pair of a body to *body.  A <textarea>'s line
// breaks (%0D%0A) in redirect_uris become spaces, since the strict
// decoder rejects control characters and the URIs are space-separated
// anyway.
void append_pair(std::string_view pair, std::string* body) {
  if (pair.substr(0, 14) != "redirect_uris=") {
    body->append(pair);
    return;
  }
  for (size_t i = 0; i < pair.size(); i++) {
    if (pair[i] == '%' && i + 2 < pair.size()) {
      std::string e = ascii_lower(pair.substr(i + 1, 2));
      if (e == "0d" || e == "0a" || e == "09") {
        body->push_back('+');
      } else {
        body->append(pair.substr(i, 3));
      }
      i += 2;
    } else {
      body->push_back(pair[i]);
    }
  }
}

HttpResponse unsupported_form(int status, const Auth* auth) {
  return message(status, "Unsupported form", "Send the form as application/x-www-form-urlencoded.",
                 auth);
}

void read_name(const Form& f, AppForm& v, Errors& e) {
  v.name = std::string(trim_ows(field_value(f, "name")));
  if (v.name.empty()) {
    e.add("name", "Enter a name.");
  } else if (!valid_app_name(v.name)) {
    e.add("name",
          "The name must be 1 to 255 characters, without control "
          "characters.");
  }
}

std::string read_client_type(const Form& f, Errors& e) {
  std::string type = field_value(f, "client_type");
  if (type != "confidential" && type != "public") {
    e.add("client_type", "Choose confidential or public.");
  }
  return type;
}

void read_grants(const Form& f, bool confidential, AppForm& v, Errors& e) {
  v.grants.clear();
  for (const char* g : kGrants) {
    if (f.has("grant_" + std::string(g))) v.grants.emplace_back(g);
  }
  if (v.grants.empty()) {
    e.add("grants", "Choose at least one authorization grant type.");
  } else if (!confidential && v.has_grant("client_credentials")) {
    e.add("grants",
          "A public client cannot use the client credentials grant "
          "(RFC 6749 4.4): choose a confidential client or another "
          "grant.");
  }
}

// The valid URIs, each once; the grants must be read first.
std::vector<std::string> read_redirect_uris(const Form& f, AppForm& v, Errors& e) {
  v.redirect_uris = field_value(f, "redirect_uris");
  std::vector<std::string> uris;
  for (auto& u : split_spaces(v.redirect_uris)) {
    if (!valid_redirect_uri(u)) {
      e.add("redirect_uris", "\"" + u +
                                 "\" is not an https URI, an http URI to 127.0.0.1 or "
                                 "[::1], or a private-use scheme like com.example.app:/cb "
                                 "(no fragment, userinfo or wildcard).");
      continue;
    }
    push_unique(uris, std::move(u));
  }
  if (uris.empty() && v.has_grant("authorization_code") && e.of("redirect_uris").empty()) {
    e.add("redirect_uris", "The authorization code grant needs at least one redirect URI.");
  }
  return uris;
}

void read_scope(const Form& f, AppForm& v, Errors& e) {
  v.scope = join(split_spaces(field_value(f, "scope")), " ");
  if (!v.scope.empty() && !parse_scope(v.scope, nullptr)) {
    e.add("scope",
          "Enter scope names separated by spaces, each once, without "
          "quotes or backslashes (RFC 6749 3.3).");
  }
}

// nullopt when empty: the server's default
std::optional<int64_t> read_ttl(const Form& f, AppForm& v, Errors& e) {
  v.ttl = std::string(trim_ows(field_value(f, "access_token_ttl")));
  if (v.ttl.empty()) return std::nullopt;
  std::optional<int64_t> ttl = parse_ttl(v.ttl);
  if (!ttl) {
    e.add("access_token_ttl",
          "Enter a number of seconds from 1 to 315360000, or leave it "
          "empty.");
  }
  return ttl;
}

void read_auth_method(const Form& f, bool confidential, AppForm& v, Errors& e) {
  v.auth_method = field_value(f, "auth_method");
  if (v.auth_method.empty()) return;
  if (!valid_auth_method(v.auth_method)) {
    e.add("auth_method", "Choose a client authentication method.");
  } else if (!confidential) {
    e.add("auth_method",
          "A public client has no secret: leave the authentication "
          "method on \"either\".");
  }
}

}  // namespace

bool unreserved(char ch) {
  return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
         ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

std::vector<std::string> split_spaces(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') i++;
    size_t j = i;
    while (j < s.size() && s[j] != ' ') j++;
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

std::string join(const std::vector<std::string>& v, std::string_view sep) {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

std::optional<HttpResponse> read_form(const HttpRequest& req, Form& form, const Auth* auth) {
  size_t types = req.header_count("content-type");
  if (types != 1) return unsupported_form(types == 0 ? 415 : 400, auth);
  if (!iequals(media_type(*req.header("content-type")), "application/x-www-form-urlencoded")) {
    return unsupported_form(415, auth);
  }
  std::string body;  // may hold a password: wiped on the way out
  WipeOnExit wipe_body(body);
  body.reserve(req.body.size());
  std::string_view rest = req.body;
  while (true) {
    size_t amp = rest.find('&');
    append_pair(rest.substr(0, amp), &body);
    if (amp == std::string_view::npos) break;
    body.push_back('&');
    rest.remove_prefix(amp + 1);
  }
  if (form.parse(body) != Form::Status::kOk) {
    return message(400, "Bad request",
                   "The form could not be read: it is malformed, repeats a "
                   "field or holds control characters.",
                   auth);
  }
  return std::nullopt;
}

std::optional<HttpResponse> read_post(const HttpRequest& req, Form& form, const Auth& auth) {
  if (auto bad = read_form(req, form, &auth)) return bad;
  if (!csrf_ok(req, form, auth)) return forbidden_csrf(&auth);
  return std::nullopt;
}

std::string field_value(const Form& f, std::string_view name) {
  auto v = f.get(name);
  return v ? std::string(*v) : std::string();
}

AppForm form_of(const Client& c) {
  AppForm v;
  v.name = c.name;
  v.client_type = c.confidential ? "confidential" : "public";
  v.grants = c.grant_types;
  v.redirect_uris = join(c.redirect_uris, "\n");
  v.scope = c.scope;
  if (c.access_token_ttl > 0) v.ttl = std::to_string(c.access_token_ttl);
  v.auth_method = c.auth_method;
  return v;
}

bool read_app(const Form& f, bool create, AppForm& v, Errors& e, Client& c) {
  read_name(f, v, e);
  if (create) {
    v.client_type = read_client_type(f, e);
  } else {
    v.client_type = c.confidential ? "confidential" : "public";
  }
  const bool confidential = v.client_type != "public";
  read_grants(f, confidential, v, e);
  std::vector<std::string> uris = read_redirect_uris(f, v, e);
  read_scope(f, v, e);
  std::optional<int64_t> ttl = read_ttl(f, v, e);
  read_auth_method(f, confidential, v, e);

  if (e.any()) return false;
  c.name = v.name;
  if (create) c.confidential = confidential;
  c.grant_types = v.grants;
  c.redirect_uris = std::move(uris);
  c.scope = v.scope;
  c.access_token_ttl = ttl.value_or(0);
  c.auth_method = v.auth_method;
  return true;
}

}  // namespace oauth2::admin::web
