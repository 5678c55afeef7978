// RFC 7662 introspection and RFC 8414 authorization server metadata.

#include <algorithm>

#include "audience.hpp"
#include "cluster.hpp"
#include "codec.hpp"
#include "crypto.hpp"
#include "endpoint_table.hpp"
#include "endpoint_util.hpp"
#include "jwt_tokens.hpp"
#include "json.hpp"
#include "oidc.hpp"

namespace oauth2 {

using namespace detail;

namespace {

Response inactive() {
  Response r;
  r.status = 200;
  r.body = "{\"active\": false}";
  return r;
}

// R56: a client may introspect its own tokens; one whose allowed scope
// holds "introspection" (a resource server) may introspect any.
bool may_introspect(const Client& caller, const Token& t) {
  if (caller.client_id == t.client_id) return true;
  std::vector<std::string_view> allowed;
  if (!parse_scope(caller.scope, &allowed)) return false;
  return std::find(allowed.begin(), allowed.end(), "introspection") != allowed.end();
}

// The answer to caller about t, the presented token's record (nullopt:
// none), at now in loc's realm
Response answer(Txn& txn, const Client& caller, const Location& loc, int64_t now,
                const std::optional<Token>& t) {
  if (!t || (t->type != TokenType::kAccess && t->type != TokenType::kRefresh) ||
      now >= t->expires_at || (t->type == TokenType::kRefresh && t->used_at)) {
    return inactive();
  }
  auto enabled = txn.client_enabled(loc.realm, t->client_id);
  if (!enabled || !*enabled || !may_introspect(caller, *t)) return inactive();
  std::optional<std::string> username;
  if (!t->user.empty()) {
    username = txn.active_username(loc.realm, token_user_id(*t));
    if (!username) return inactive();
  }

  Json j(json_object());
  json_object_set_new(j.get(), "active", json_true());
  json_object_set_new(j.get(), "scope", json_stringn(t->scope.data(), t->scope.size()));
  json_object_set_new(j.get(), "client_id", json_stringn(t->client_id.data(), t->client_id.size()));
  if (username) {
    json_object_set_new(j.get(), "username", json_stringn(username->data(), username->size()));
  }
  const char* type = t->type != TokenType::kAccess ? "refresh_token"
                     : t->jkt.empty()              ? "Bearer"
                                                   : "DPoP";
  json_object_set_new(j.get(), "token_type", json_string(type));
  if (!t->jkt.empty()) {
    // RFC 9449 6.2: the key it is bound to
    json_t* cnf = json_object();
    json_object_set_new(cnf, "jkt", json_stringn(t->jkt.data(), t->jkt.size()));
    json_object_set_new(j.get(), "cnf", cnf);
  }
  json_object_set_new(j.get(), "exp", json_integer(t->expires_at));
  json_object_set_new(j.get(), "iat", json_integer(t->issued_at));
  // the subject: the user's id, or the client for a client's own token
  const std::string& sub = username ? t->user : t->client_id;
  json_object_set_new(j.get(), "sub", json_stringn(sub.data(), sub.size()));
  // RFC 8707 resources, else the default audience
  if (json_t* aud = audience_json(t->audience, loc.jwt_audience())) {
    json_object_set_new(j.get(), "aud", aud);
  }
  Response r;
  r.status = 200;
  r.body = json_text(j.get());
  return r;
}

}  // namespace

EndpointResult introspect_endpoint(Store& store, const Request& req) {
  // R55: only authenticated clients
  TokenQuery q;
  if (auto refused = read_token_query(store, req, q)) return std::move(*refused);
  const std::string_view token = q.token;
  const ClientAuth& auth = q.auth;
  if (!auth.client->confidential) {
    return done(invalid_client(req.c.has_authorization));
  }
  const auto id = presented_id(req, token, true);
  if (!id) return done(inactive());

  const bool jwt = looks_like_jwt(token);
  {
    Txn txn = store.read();
    auto t = presented_record(txn, req.loc.realm, jwt, *id);
    if (t || !store.cluster()) return done(answer(txn, *auth.client, req.loc, req.c.now, t));
  }
  // cluster mode: a token this edge's mirror does not hold may have been
  // issued on another edge a few ms ago, and a resource server told
  // "active": false would refuse its client.  So off the event loop, once
  // the mirror has caught up with etcd, it looks again (503 without etcd;
  // a token that exists nowhere is still "active": false)
  const Location* loc = &req.loc;  // the configuration's, as IssueSettings holds it
  return pending_response([&store, caller = *auth.client, loc, now = req.c.now, id = *id, jwt] {
    store.cluster()->catch_up(store);
    Txn txn = store.read();
    return answer(txn, caller, *loc, now, presented_record(txn, loc->realm, jwt, id));
  });
}

EndpointResult metadata_endpoint(const Request& req) {
  std::string_view method = sv(req.c.method);
  if (method != "GET" && method != "HEAD") {
    Response r = invalid_request("This endpoint only accepts GET");
    r.status = 405;
    return done(std::move(r));
  }
  const std::string& issuer = req.loc.issuer;
  const std::string& realm = req.loc.realm;
  const Config& config = *req.loc.config;
  Json j(json_object());
  json_object_set_new(j.get(), "issuer", json_stringn(issuer.data(), issuer.size()));
  // the first location of each endpoint of the realm that metadata
  // names, under the issuer
  for (int e = 1; e < OAUTH2_ENDPOINT_MAX; e++) {
    const EndpointKind* k = endpoint_kind(e);
    if (!k || !k->metadata_name || config.path(realm, e).empty()) continue;
    std::string u = issuer_url(issuer, config.path(realm, e));
    json_object_set_new(j.get(), k->metadata_name, json_stringn(u.data(), u.size()));
  }
  const bool authorize = !config.path(realm, OAUTH2_ENDPOINT_AUTHORIZE).empty();
  json_t* rt = json_array();
  json_array_append_new(rt, json_string("code"));  // required (RFC 8414 2)
  json_object_set_new(j.get(), "response_types_supported", rt);
  json_t* modes = json_array();
  for (const char* m : {"query", "fragment", "form_post"}) {
    json_array_append_new(modes, json_string(m));
  }
  json_object_set_new(j.get(), "response_modes_supported", modes);
  json_t* gt = json_array();
  for (const char* g : {"authorization_code", "client_credentials", "refresh_token", "password"}) {
    // RFC 8414 2: no code grant without an authorization endpoint
    if (!authorize && std::string_view(g) == "authorization_code") {
      continue;
    }
    json_array_append_new(gt, json_string(g));
  }
  // RFC 8628 4: with a device authorization endpoint
  if (!config.path(realm, OAUTH2_ENDPOINT_DEVICE_AUTHORIZATION).empty()) {
    json_array_append_new(gt, json_string("urn:ietf:params:oauth:grant-type:device_code"));
  }
  json_object_set_new(j.get(), "grant_types_supported", gt);
  json_t* pk = json_array();
  json_array_append_new(pk, json_string("S256"));
  json_object_set_new(j.get(), "code_challenge_methods_supported", pk);
  for (const char* key :
       {"token_endpoint_auth_methods_supported", "revocation_endpoint_auth_methods_supported"}) {
    json_t* am = json_array();
    for (const char* m : {"client_secret_basic", "client_secret_post", "none"}) {
      json_array_append_new(am, json_string(m));
    }
    json_object_set_new(j.get(), key, am);
  }
  json_t* im = json_array();
  for (const char* m : {"client_secret_basic", "client_secret_post"}) {
    json_array_append_new(im, json_string(m));
  }
  json_object_set_new(j.get(), "introspection_endpoint_auth_methods_supported", im);
  std::vector<std::string_view> scopes;
  if (parse_scope(req.loc.default_scope, &scopes)) {
    json_t* sa = json_array();
    for (auto sc : scopes) json_array_append_new(sa, json_stringn(sc.data(), sc.size()));
    json_object_set_new(j.get(), "scopes_supported", sa);
  }
  json_object_set_new(j.get(), "authorization_response_iss_parameter_supported", json_true());
  add_oidc_metadata(j.get(), req);
  if (req.loc.dpop) {
    // RFC 9449 5.1
    json_t* da = json_array();
    for (const char* a : {"ES256", "RS256", "EdDSA"}) json_array_append_new(da, json_string(a));
    json_object_set_new(j.get(), "dpop_signing_alg_values_supported", da);
  }
  Response r;
  r.status = 200;
  r.body = json_text(j.get());
  return done(std::move(r));
}

}  // namespace oauth2
