// The applications API, for staff users and application tokens holding
// the "admin" scope:
//
//   GET    /api/applications/                        paginated list
//   POST   /api/applications/                        register; 201 with the
//                                                    secret, shown once
//   GET    /api/applications/<client_id>/
//   PUT    /api/applications/<client_id>/            name and grants required
//   PATCH  /api/applications/<client_id>/
//   DELETE /api/applications/<client_id>/            with every token of it
//   POST   /api/applications/<client_id>/rotate-secret/   a new secret, once
//
// The fields are those of `oauth2-admin app add` (model.hpp) with the same
// rules.  Grants come either as our `grant_types` array or as DOT's single
// `authorization_grant_type` ("authorization-code", "password",
// "client-credentials"; DOT's "implicit" is refused); redirect_uris as an
// array or as DOT's space-separated string.

#include <ctime>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "api.hpp"
#include "audience.hpp"
#include "cli.hpp"
#include "codec.hpp"
#include "crypto.hpp"
#include "model.hpp"
#include "store.hpp"

namespace oauth2::admin {
namespace {

constexpr const char* kRequired = "This field is required.";
constexpr const char* kNotNull = "This field may not be null.";

std::string not_a_choice(std::string_view v) {
  std::string s;
  for (char ch : v.substr(0, 80)) {
    unsigned char c = static_cast<unsigned char>(ch);
    s.push_back(c >= 0x20 && c < 0x7F && c != '"' ? ch : '?');
  }
  return "\"" + s + "\" is not a valid choice.";
}

// Calls take(s) with each string s of the array j, in order; false, with
// DRF's message under key, at the first member that is not a string, or
// as soon as take returns false.
template <typename Take>
bool for_each_string(json_t* j, const char* key, FieldErrors& errors, Take take) {
  size_t i;
  json_t* v;
  json_array_foreach(j, i, v) {
    if (!json_is_string(v)) {
      errors.add(key, "Not a valid string.");
      return false;
    }
    if (!take(std::string(json_string_value(v), json_string_length(v)))) {
      return false;
    }
  }
  return true;
}

struct AppInput {
  std::optional<std::string> name;
  std::optional<bool> confidential;
  std::optional<std::vector<std::string>> grants;
  std::optional<std::vector<std::string>> redirect_uris;
  std::optional<std::vector<std::string>> resources;  // RFC 8707
  std::optional<std::string> scope;                   // "": the server's default
  std::optional<int64_t> ttl;                         // 0: the server's default
  std::optional<std::string> auth_method;             // "": either
  std::optional<std::string> token_format;            // "": the server's
  std::optional<bool> first_party;
  std::optional<bool> dpop_bound;  // RFC 9449 5.2 dpop_bound_access_tokens
  // OpenID Connect: RP-initiated logout's URIs, the id_token's algorithm
  std::optional<std::vector<std::string>> post_logout_uris;
  std::optional<std::string> id_token_alg;  // "": the server's choice
};

enum class Mode { kCreate, kPut, kPatch };

void read_grants(json_t* body, FieldErrors& errors, AppInput& in) {
  json_t* dot = json_object_get(body, "authorization_grant_type");
  json_t* ours = json_object_get(body, "grant_types");
  if (dot && ours) {
    errors.add("non_field_errors",
               "Give either grant_types or authorization_grant_type, not "
               "both.");
    return;
  }
  if (dot) {
    std::string s;
    if (get_string(body, "authorization_grant_type", errors, &s) != Got::kOk) {
      return;
    }
    if (auto grants = dot_grant_types(s)) {
      in.grants = std::move(*grants);
      return;
    }
    errors.add("authorization_grant_type",
               s == "implicit" ? "\"implicit\" is not a valid choice: the implicit grant "
                                 "is not supported (OAuth 2.1)."
                               : not_a_choice(s));
    return;
  }
  if (!ours) return;
  if (json_is_null(ours)) {
    errors.add("grant_types", kNotNull);
    return;
  }
  if (!json_is_array(ours)) {
    errors.add("grant_types", "Expected a list of items.");
    return;
  }
  std::vector<std::string> grants;
  bool ok = for_each_string(ours, "grant_types", errors, [&](std::string g) {
    if (!valid_grant(g)) {
      errors.add("grant_types", not_a_choice(g));
      return false;
    }
    push_unique(grants, std::move(g));
    return true;
  });
  if (!ok) return;
  if (grants.empty()) {
    errors.add("grant_types", "This list may not be empty.");
    return;
  }
  in.grants = std::move(grants);
}

// redirect_uris, post_logout_redirect_uris: a list, or (DOT) a string
// of URIs separated by whitespace
void read_redirect_uris(json_t* body, const char* key, FieldErrors& errors,
                        std::optional<std::vector<std::string>>* out) {
  json_t* j = json_object_get(body, key);
  if (!j) return;
  std::vector<std::string> given;
  if (json_is_string(j)) {  // DOT: separated by whitespace
    std::string_view s(json_string_value(j), json_string_length(j));
    size_t pos = 0;
    while (pos < s.size()) {
      size_t end = s.find_first_of(" \t\r\n", pos);
      if (end == std::string_view::npos) end = s.size();
      if (end > pos) given.emplace_back(s.substr(pos, end - pos));
      pos = end + 1;
    }
  } else if (json_is_array(j)) {
    bool ok = for_each_string(j, key, errors, [&](std::string u) {
      given.push_back(std::move(u));
      return true;
    });
    if (!ok) return;
  } else {
    errors.add(key, json_is_null(j) ? kNotNull
                                    : "Expected a list of URIs or a string "
                                      "of URIs separated by spaces.");
    return;
  }
  std::vector<std::string> uris;
  for (auto& u : given) {
    if (!valid_redirect_uri(u)) {
      errors.add(key,
                 "Enter a valid URI: https, http to 127.0.0.1 or [::1], or "
                 "a private-use scheme like com.example.app:/cb; no "
                 "fragment, userinfo or wildcard.");
      return;
    }
    push_unique(uris, std::move(u));
  }
  *out = std::move(uris);
}

// "resources": a list of absolute URIs without fragment (RFC 8707)
void read_resources(json_t* body, FieldErrors& errors, AppInput& in) {
  json_t* j = json_object_get(body, "resources");
  if (!j) return;
  if (!json_is_array(j)) {
    errors.add("resources", json_is_null(j) ? kNotNull : "Expected a list of URIs.");
    return;
  }
  std::vector<std::string> given;
  bool ok = for_each_string(j, "resources", errors, [&](std::string u) {
    given.push_back(std::move(u));
    return true;
  });
  if (!ok) return;
  std::vector<std::string> uris;
  for (auto& u : given) {
    if (!valid_resource(u)) {
      errors.add("resources", "Enter an absolute URI without a fragment.");
      return;
    }
    push_unique(uris, std::move(u));
  }
  if (uris.size() > kMaxResources) {
    errors.add("resources", "At most " + std::to_string(kMaxResources) + " resources.");
    return;
  }
  in.resources = std::move(uris);
}

void read_name(json_t* body, FieldErrors& errors, AppInput& in) {
  std::string s;
  if (get_string(body, "name", errors, &s) != Got::kOk) return;
  if (s.empty()) {
    errors.add("name", "This field may not be blank.");
  } else if (check_max_chars(s, kMaxName, "name", errors)) {
    if (!valid_app_name(s)) {
      errors.add("name", "Control characters are not allowed.");
    } else {
      in.name = std::move(s);
    }
  }
}

void read_client_type(json_t* body, FieldErrors& errors, AppInput& in) {
  std::string s;
  if (get_string(body, "client_type", errors, &s) != Got::kOk) return;
  if (s == "confidential" || s == "public") {
    in.confidential = s == "confidential";
  } else {
    errors.add("client_type", not_a_choice(s));
  }
}

void read_scope(json_t* body, FieldErrors& errors, AppInput& in) {
  std::string s;
  if (get_string(body, "scope", errors, &s) != Got::kOk) return;
  if (!s.empty() && !parse_scope(s, nullptr)) {
    errors.add("scope",
               "Enter scope tokens separated by single spaces, each at "
               "most once (RFC 6749 3.3).");
  } else {
    in.scope = std::move(s);
  }
}

// access_token_ttl: seconds, 1 to kMaxTtl; null for the server's default
void read_ttl(json_t* body, FieldErrors& errors, AppInput& in) {
  json_t* j = json_object_get(body, "access_token_ttl");
  if (!j) return;
  if (json_is_null(j)) {
    in.ttl = 0;
  } else if (!json_is_integer(j)) {
    errors.add("access_token_ttl", "A valid integer is required.");
  } else if (json_integer_value(j) < 1) {
    errors.add("access_token_ttl", "Ensure this value is greater than or equal to 1.");
  } else if (json_integer_value(j) > kMaxTtl) {
    errors.add("access_token_ttl",
               "Ensure this value is less than or equal to " + std::to_string(kMaxTtl) + ".");
  } else {
    in.ttl = json_integer_value(j);
  }
}

// A member that is one of valid's choices, or null for the default ("").
void read_choice(json_t* body, const char* key, bool (*valid)(std::string_view),
                 FieldErrors& errors, std::optional<std::string>* out) {
  json_t* j = json_object_get(body, key);
  if (!j) return;
  std::string s;
  if (json_is_null(j)) {
    *out = "";
  } else if (get_string(body, key, errors, &s) == Got::kOk) {
    if (valid(s)) {
      *out = std::move(s);
    } else {
      errors.add(key, not_a_choice(s));
    }
  }
}

bool valid_token_format(std::string_view f) {
  return f == "jwt" || f == "opaque";
}

bool valid_id_token_alg(std::string_view a) {
  return a == "RS256" || a == "ES256" || a == "EdDSA";
}

AppInput read_app(json_t* body, Mode mode, FieldErrors& errors) {
  AppInput in;
  read_name(body, errors, in);
  read_client_type(body, errors, in);
  read_grants(body, errors, in);
  read_redirect_uris(body, "redirect_uris", errors, &in.redirect_uris);
  read_redirect_uris(body, "post_logout_redirect_uris", errors, &in.post_logout_uris);
  read_choice(body, "id_token_signed_response_alg", valid_id_token_alg, errors, &in.id_token_alg);
  read_resources(body, errors, in);
  read_scope(body, errors, in);
  read_ttl(body, errors, in);
  read_choice(body, "access_token_format", valid_token_format, errors, &in.token_format);
  bool b;
  if (get_bool(body, "first_party", errors, &b) == Got::kOk) in.first_party = b;
  if (get_bool(body, "dpop_bound_access_tokens", errors, &b) == Got::kOk) in.dpop_bound = b;
  read_choice(body, "auth_method", valid_auth_method, errors, &in.auth_method);
  if (mode != Mode::kPatch) {
    if (!json_object_get(body, "name")) errors.add("name", kRequired);
    if (!json_object_get(body, "grant_types") &&
        !json_object_get(body, "authorization_grant_type")) {
      errors.add("grant_types", kRequired);
    }
  }
  return in;
}

// The rules that tie fields together, on the record as it would be.
void check_client(const Client& c, FieldErrors& errors) {
  if (!c.confidential && !c.auth_method.empty()) {
    errors.add("auth_method", "A public client has no secret: auth_method must be null.");
  }
  if (!c.confidential && c.allows_grant("client_credentials")) {
    errors.add("client_type",
               "A public client cannot use the client_credentials grant "
               "(RFC 6749 4.4).");
  }
}

void apply(const AppInput& in, Client& c) {
  if (in.name) c.name = *in.name;
  if (in.confidential) c.confidential = *in.confidential;
  if (in.grants) c.grant_types = *in.grants;
  if (in.redirect_uris) c.redirect_uris = *in.redirect_uris;
  if (in.resources) c.resources = *in.resources;
  if (in.scope) c.scope = *in.scope;
  if (in.ttl) c.access_token_ttl = *in.ttl;
  if (in.auth_method) c.auth_method = *in.auth_method;
  if (in.token_format) c.access_token_format = *in.token_format;
  if (in.first_party) c.first_party = *in.first_party;
  if (in.dpop_bound) c.dpop_bound_access_tokens = *in.dpop_bound;
  if (in.post_logout_uris) c.post_logout_redirect_uris = *in.post_logout_uris;
  if (in.id_token_alg) c.id_token_alg = *in.id_token_alg;
}

// The application as JSON; with a new secret, that secret, once: its
// copies are overwritten before they are freed.
HttpResponse client_response(int status, const Client& c, std::string* secret) {
  if (!secret) return HttpResponse::json(status, client_json(c).get());
  Json secret_json(secret->empty() ? json_null()
                                   : checked(json_stringn(secret->data(), secret->size())));
  wipe(*secret);
  WipeJsonOnExit json_wiper{secret_json.get()};
  Json obj = client_json(c, secret_json.get());
  HttpResponse r = HttpResponse::json(status, obj.get());
  // the dump of obj is in r.body only; http.cpp wipes it once sent
  return r;
}

HttpResponse list_apps(ServeContext& ctx, const HttpRequest& req) {
  Pager pager(req, ctx.page_size);
  if (!pager.valid()) return invalid_page();
  std::vector<Client> all;
  {
    Txn txn = ctx.store->read();
    all = txn.list_clients(ctx.realm);
  }
  size_t offset = 0, limit = 0;
  if (!pager.window(all.size(), &offset, &limit)) return invalid_page();
  Json results(checked(json_array()));
  for (size_t i = offset; i < all.size() && i < offset + limit; i++) {
    append_item(results.get(), client_json(all[i]).release());
  }
  return pager.response(results.release());
}

HttpResponse create_app(ServeContext& ctx, const HttpRequest& req) {
  HttpResponse error;
  Json body = parse_json_object(req, &error);
  if (!body) return error;
  FieldErrors errors;
  AppInput in = read_app(body.get(), Mode::kCreate, errors);
  Client c;
  c.realm = ctx.realm;
  apply(in, c);
  if (errors.empty()) check_client(c, errors);
  if (!errors.empty()) return errors.response();

  std::string secret;
  WipeOnExit wiper{secret};
  create_client(*ctx.store, c, &secret);
  return client_response(201, c, &secret);
}

HttpResponse update_app(ServeContext& ctx, const HttpRequest& req, const std::string& id,
                        Mode mode) {
  {
    Txn txn = ctx.store->read();  // DRF looks the object up first
    if (!txn.get_client(ctx.realm, id)) return not_found();
  }
  HttpResponse error;
  Json body = parse_json_object(req, &error);
  if (!body) return error;
  FieldErrors errors;
  AppInput in = read_app(body.get(), mode, errors);
  if (!errors.empty()) return errors.response();

  std::string secret;
  WipeOnExit wiper{secret};
  bool secret_shown = false;
  Client c;
  Refusal refused = ctx.store->change([&](Txn& txn) -> Refusal {
    secret_shown = false;  // each run decides afresh
    auto old = txn.get_client(ctx.realm, id);
    if (!old) return not_found();
    c = std::move(*old);
    const bool was_confidential = c.confidential;
    apply(in, c);
    FieldErrors invalid;
    check_client(c, invalid);
    if (!invalid.empty()) return invalid.response();
    if (!c.confidential) {
      c.secret_hash.clear();
      if (was_confidential) {
        // R35: what was bound to its secret is redeemed with it only:
        // its refresh tokens, codes and device codes (and their user
        // codes) go, or its client_id alone, which a public client's is,
        // would redeem them; every one of them, one added while this
        // change reads (another grant's commit, another edge's) too
        for (TokenType type :
             {TokenType::kRefresh, TokenType::kCode, TokenType::kDevice, TokenType::kDeviceUser}) {
          for (auto& [hash, t] : txn.client_tokens_of_type(ctx.realm, id, type, true)) {
            txn.delete_token(ctx.realm, hash);
          }
        }
      }
    } else if (!was_confidential) {  // public -> confidential
      secret = new_client_secret(c);
      secret_shown = true;
    }
    if (!txn.put_client(c, false)) return not_found();
    txn.commit();
    return std::nullopt;
  });
  if (refused) return std::move(*refused);
  return client_response(200, c, secret_shown ? &secret : nullptr);
}

HttpResponse rotate_secret(ServeContext& ctx, const std::string& id) {
  std::string secret;
  WipeOnExit wiper{secret};
  Client c;
  Refusal refused = ctx.store->change([&](Txn& txn) -> Refusal {
    auto old = txn.get_client(ctx.realm, id);
    if (!old) return not_found();
    c = std::move(*old);
    if (!c.confidential) {
      return HttpResponse::error(400, "A public client has no secret to rotate.");
    }
    secret = new_client_secret(c);
    if (!txn.put_client(c, false)) return not_found();
    txn.commit();
    return std::nullopt;
  });
  if (refused) return std::move(*refused);
  return client_response(200, c, &secret);
}

const ApiView kAppList = {"Application List", "List the applications, or register one.",
                          "GET, POST, HEAD, OPTIONS"};
const ApiView kAppInstance = {"Application Instance", "Read, change or delete an application.",
                              "GET, PUT, PATCH, DELETE, HEAD, OPTIONS"};
const ApiView kRotateSecret = {"Rotate Secret",
                               "A new client secret for the application; the old one stops "
                               "working at once.",
                               "POST, OPTIONS"};

}  // namespace

HttpResponse apps_api(ServeContext& ctx, const HttpRequest& req, const Caller& caller,
                      const std::optional<std::string>& client_id, bool rotate) {
  if (!caller.acts_as_staff()) return denied(caller);
  const std::string& m = req.method;
  if (!client_id) {
    if (m == "GET" || m == "HEAD") return list_apps(ctx, req);
    if (m == "POST") return create_app(ctx, req);
    if (m == "OPTIONS") return options_response(kAppList);
    return method_not_allowed(req, kAppList);
  }
  const std::string& id = *client_id;
  if (!valid_client_id(id)) return not_found();
  if (rotate) {
    if (m == "OPTIONS") return options_response(kRotateSecret);
    if (m != "POST") return method_not_allowed(req, kRotateSecret);
    return rotate_secret(ctx, id);
  }
  if (m == "OPTIONS") return options_response(kAppInstance);
  if (m == "GET" || m == "HEAD") {
    std::optional<Client> c;
    {
      Txn txn = ctx.store->read();
      c = txn.get_client(ctx.realm, id);
    }
    if (!c) return not_found();
    return client_response(200, *c, nullptr);
  }
  if (m == "PUT" || m == "PATCH") {
    return update_app(ctx, req, id, m == "PUT" ? Mode::kPut : Mode::kPatch);
  }
  if (m == "DELETE") {
    Refusal refused = ctx.store->change([&](Txn& txn) -> Refusal {
      if (!txn.delete_client(ctx.realm, id)) return not_found();
      txn.commit();
      return std::nullopt;
    });
    if (refused) return std::move(*refused);
    return no_content();
  }
  return method_not_allowed(req, kAppInstance);
}

}  // namespace oauth2::admin
