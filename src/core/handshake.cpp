// Seed 002's handshake API under an oauth2_handshake location: create/
// (an API key buys a handshake: a token, a secret and the solution's
// databases), validate/ (token and secret -> still valid?) and revoke/.
//
// The handshake token is an HS256 JWT under the server's own key (a key
// file, or the one the store generated), never under the handshake
// secret; its jti is the handshake_id, whose TokenId keys the record.  The
// secret is stored as a salted hash and checked in constant time.
// Responses use the seed's envelope: {"success": true, "handshake"|"data":
// ..., "message"} and {"success": false, "error", "error_code", "details"}.

#include <memory>

#include "apikeys.hpp"
#include "codec.hpp"
#include "crypto.hpp"
#include "endpoint_util.hpp"
#include "json.hpp"
#include "jwt_tokens.hpp"

namespace oauth2 {

using namespace detail;

namespace {

constexpr int64_t kDefaultHandshakeTtl = 86400;
constexpr int64_t kMinHandshakeTtl = 60;
constexpr size_t kMaxNameLen = 150;
constexpr size_t kMaxPermissions = 32;

Response envelope_error(int status, std::string_view error, const char* code,
                        Json details = Json(json_object())) {
  Json j(json_object());
  json_object_set_new(j.get(), "success", json_false());
  json_object_set_new(j.get(), "error", json_stringn(error.data(), error.size()));
  json_object_set_new(j.get(), "error_code", json_string(code));
  json_object_set(j.get(), "details", details.get());
  Response r;
  r.status = status;
  r.body = json_text(j.get());
  return r;
}

Response field_error(const char* field, std::string_view message) {
  Json d(json_object());
  json_object_set_new(d.get(), field, json_stringn(message.data(), message.size()));
  return envelope_error(400, "Invalid request", "VALIDATION_ERROR", std::move(d));
}

Response envelope_ok(int status, const char* field, Json payload, const char* message) {
  Json j(json_object());
  json_object_set_new(j.get(), "success", json_true());
  json_object_set(j.get(), field, payload.get());
  if (message) json_object_set_new(j.get(), "message", json_string(message));
  Response r;
  r.status = status;
  r.body = json_text(j.get());
  return r;
}

Response server_error() {
  return envelope_error(500, "Internal server error", "SERVER_ERROR");
}

// a write that failed (the store's error, or a thread's): the seed's 500,
// with Retry-After and counted as the other endpoints' 503s
Response write_failed() {
  return handshake_failure(503);
}

Response body_error(JsonBody b) {
  switch (b) {
    case JsonBody::kMethod: {
      Response r = envelope_error(405, "Method not allowed", "METHOD_NOT_ALLOWED");
      return r;
    }
    case JsonBody::kContentType:
      return envelope_error(400, "Content-Type must be application/json", "INVALID_CONTENT_TYPE");
    case JsonBody::kTooLarge:
      return envelope_error(413, "The request body is too large", "REQUEST_TOO_LARGE");
    default: return envelope_error(400, "The request body is not a JSON object", "INVALID_JSON");
  }
}

Response rate_limited(unsigned wait) {
  Json d(json_object());
  json_object_set_new(d.get(), "retry_after", json_integer(wait));
  Response r = envelope_error(429, "Rate limit exceeded", "RATE_LIMITED", std::move(d));
  r.retry_after = wait;
  r.refused = "the rate limit is reached";
  r.limited = OAUTH2_LIMITED_RATE;
  return r;
}

// validate/ and revoke/ are called with a handshake token, not the API
// key: their rate is the caller's address, so that only the key's own
// requests (create/) spend its budget.
bool rate_take_address(const Request& req, unsigned* wait) {
  return rate_take(req, "a:" + req.counted, wait);
}

// A required string field: its value, or the field error in *err.
std::optional<std::string> required_string(json_t* body, const char* field, size_t max,
                                           Response* err) {
  json_t* v = json_object_get(body, field);
  if (!v || json_is_null(v)) {
    *err = field_error(field, "This field is required.");
    return std::nullopt;
  }
  if (!json_is_string(v)) {
    *err = field_error(field, "Must be a string.");
    return std::nullopt;
  }
  std::string s(json_string_value(v), json_string_length(v));
  // DRF trims a CharField before it calls it blank
  if (s.find_first_not_of(" \t\r\n") == std::string::npos) {
    *err = field_error(field, "This field may not be blank.");
    return std::nullopt;
  }
  if (s.size() > max || has_control(s)) {
    *err = field_error(field, "Must be at most " + std::to_string(max) + " printable characters.");
    return std::nullopt;
  }
  return s;
}

std::string new_uuid() {
  unsigned char b[16];
  random_bytes(b, sizeof(b));
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  std::string out = hex_encode(b, sizeof(b));
  for (size_t at : {20, 16, 12, 8}) out.insert(at, 1, '-');  // 8-4-4-4-12
  return out;
}

json_t* permissions_array(std::string_view scope) {
  json_t* a = json_array();
  std::vector<std::string_view> items;
  parse_scope(scope, &items);
  for (std::string_view p : items) {
    json_array_append_new(a, json_stringn(p.data(), p.size()));
  }
  return a;
}

// What a handshake record's data holds.
struct HandshakeData {
  std::string secret_hash;
  std::string system_name;
  std::string solution_name;
  std::string api_key_id;
};

std::optional<HandshakeData> handshake_data(const Token& t) {
  Json j(json_loadb(t.data.data(), t.data.size(), 0, nullptr));
  HandshakeData d;
  for (auto [field, out] :
       {std::pair{"secret", &d.secret_hash}, std::pair{"system_name", &d.system_name},
        std::pair{"solution_name", &d.solution_name}, std::pair{"api_key", &d.api_key_id}}) {
    const char* v = json_string_value(json_object_get(j.get(), field));
    if (!v) return std::nullopt;
    *out = v;
  }
  return d;
}

// A presented handshake token: its record, or the envelope error.
struct Presented {
  std::optional<Response> error;
  // the token verifies but this store has no record of it: in cluster
  // mode it may have been created on another edge a moment ago, and is
  // looked for again once the mirror has caught up (may_catch_up)
  bool unseen = false;
  TokenId hash{};
  Token token;
  HandshakeData data;
};

Presented find_handshake(Store& store, const Request& req, const std::string& token) {
  Presented p;
  if (!handshake_key(req.loc)) {
    p.error = server_error();
    return p;
  }
  JwtCheck check;
  check.now = req.c.now;
  check.check_exp = false;  // an expired handshake validates false, not 401
  JwtResult r = jwt_verify(req.loc.handshake_keys, token, check);
  const char* jti = r.status == JwtStatus::kOk
                        ? json_string_value(json_object_get(r.claims.get(), "jti"))
                        : nullptr;
  if (!jti) {
    p.error = envelope_error(401, "Invalid handshake token", "INVALID_TOKEN");
    p.error->auth_failed = true;
    return p;
  }
  p.hash = token_id(jti);
  Txn txn = store.read();
  auto t = txn.get_token(req.loc.realm, p.hash);
  std::optional<HandshakeData> d;
  if (t && t->type == TokenType::kHandshake) d = handshake_data(*t);
  if (!d) {
    p.unseen = !t;
    p.error = envelope_error(404, "Handshake not found", "HANDSHAKE_NOT_FOUND");
    return p;
  }
  p.token = std::move(*t);
  p.data = std::move(*d);
  return p;
}

// ------------------------------------------------------------- create/

// permissions: a list of scope tokens, duplicates counted once; absent or
// null: *asked stays false (what the app may have).
std::optional<Response> read_permissions(json_t* body, std::string* permissions, bool* asked) {
  json_t* p = json_object_get(body, "permissions");
  if (!p || json_is_null(p)) return std::nullopt;
  if (!json_is_array(p) || json_array_size(p) == 0 || json_array_size(p) > kMaxPermissions) {
    return field_error("permissions", "Must be a non-empty list of at most 32 names.");
  }
  size_t i;
  json_t* item;
  json_array_foreach(p, i, item) {
    std::string_view name =
        json_is_string(item) ? std::string_view(json_string_value(item), json_string_length(item))
                             : std::string_view();
    if (name.empty() || !parse_scope(name, nullptr) || name.find(' ') != std::string_view::npos) {
      return field_error("permissions", "Each permission must be a scope name.");
    }
    if (!scope_within(name, *permissions)) {
      if (!permissions->empty()) permissions->push_back(' ');
      permissions->append(name);
    }
  }
  *asked = true;
  return std::nullopt;
}

// expires_in: from kMinHandshakeTtl to the location's maximum.
std::optional<Response> read_ttl(const Location& loc, json_t* body, int64_t* ttl) {
  int64_t max_ttl = loc.handshake_max_ttl > 0 ? loc.handshake_max_ttl : kDefaultHandshakeTtl;
  *ttl = std::min(kDefaultHandshakeTtl, max_ttl);
  json_t* e = json_object_get(body, "expires_in");
  if (!e || json_is_null(e)) return std::nullopt;
  if (!json_is_integer(e) || json_integer_value(e) < kMinHandshakeTtl ||
      json_integer_value(e) > max_ttl) {
    return field_error("expires_in", "Must be an integer from " + std::to_string(kMinHandshakeTtl) +
                                         " to " + std::to_string(max_ttl) + " seconds.");
  }
  *ttl = json_integer_value(e);
  return std::nullopt;
}

// What a create/ request asks for, once checked.
struct HandshakeAsk {
  Solution solution;
  std::string system;
  std::string permissions;
  int64_t ttl = 0;
  ApiKeyInfo key;
  TokenId key_hash{};
};

Response invalid_api_key() {
  Response r = envelope_error(401, "Invalid API key", "INVALID_API_KEY");
  r.auth_failed = true;
  return r;
}

// The API key's record, its app's, and the permissions that app allows.
// *unseen: this store has no such key, but in cluster mode it may have
// been made on another edge a moment ago (may_catch_up): the caller looks
// again once the mirror has caught up, and only then refuses it (counted
// as a failed authentication).
std::optional<Response> authorize_ask(Store& store, const Request& req, std::string& api_key,
                                      bool asked, HandshakeAsk& ask, bool* unseen) {
  std::optional<ApiKeyInfo> key;
  std::optional<Client> client;
  ask.key_hash = token_id(api_key);
  {
    Txn txn = store.read();
    key = find_api_key(txn, req.loc.realm, api_key);
    if (key) client = txn.get_client(req.loc.realm, key->client_id);
  }
  wipe(api_key);
  *unseen = !key && may_catch_up(store, req);
  if (*unseen) return std::nullopt;
  if (!key || !client || client->disabled) return invalid_api_key();
  unsigned wait;
  if (!rate_take(req, "k:" + key->id, &wait)) return rate_limited(wait);
  ask.key = std::move(*key);

  // the app's registration bounds what its keys may ask for
  const std::string allowed = allowed_scope(*client, req.loc.default_scope);
  if (!asked) {
    ask.permissions = allowed;
  } else if (!scope_within(ask.permissions, allowed)) {
    Json d(json_object());
    json_object_set_new(d.get(), "permissions",
                        json_string("The application may not ask for these."));
    return envelope_error(403, "Insufficient permissions", "PERMISSION_DENIED", std::move(d));
  }
  return std::nullopt;
}

// The store's record of handshake id: its secret as a hash, the key it
// came from (revoking the key ends its handshakes).
Token handshake_record(const IssueSettings& s, const HandshakeAsk& ask, const std::string& secret) {
  Token t;
  t.type = TokenType::kHandshake;
  t.issued_at = s.now;
  t.expires_at = add_ttl(s.now, ask.ttl);
  t.client_id = ask.key.client_id;
  t.scope = ask.permissions;
  t.family = ask.key.family;
  Json data(json_object());
  json_object_set_new(data.get(), "secret", json_string(hash_secret(secret).c_str()));
  json_object_set_new(data.get(), "system_name", json_string(ask.system.c_str()));
  json_object_set_new(data.get(), "solution_name", json_string(ask.solution.name.c_str()));
  json_object_set_new(data.get(), "api_key", json_string(ask.key.id.c_str()));
  t.data = json_text(data.get(), JSON_COMPACT);
  return t;
}

// the handshake token; permissions: ask's, or others to see what they
// weigh (token_too_long)
std::string handshake_jwt(const JwtKey& signing, const IssueSettings& s, const HandshakeAsk& ask,
                          std::string_view permissions, const std::string& id, int64_t expires_at) {
  Json claims(json_object());
  if (!s.loc->issuer.empty()) {
    json_object_set_new(claims.get(), "iss", json_string(s.loc->issuer.c_str()));
  }
  json_object_set_new(claims.get(), "sub", json_string(ask.key.client_id.c_str()));
  json_object_set_new(claims.get(), "jti", json_string(id.c_str()));
  json_object_set_new(claims.get(), "iat", json_integer(s.now));
  json_object_set_new(claims.get(), "exp", json_integer(expires_at));
  json_object_set_new(claims.get(), "token_type", json_string("handshake"));
  json_object_set_new(claims.get(), "system_name", json_string(ask.system.c_str()));
  json_object_set_new(claims.get(), "solution_name", json_string(ask.solution.name.c_str()));
  json_object_set_new(claims.get(), "permissions", permissions_array(permissions));
  return jwt_sign(signing, claims.get(), "JWT");
}

// A handshake token longer than kMaxTokenLen, which validate/, revoke/
// and auth_oauth2 never read back, is never issued (as a JWT access
// token is not: TokenTooLong): 400 naming permissions when it would fit
// without them (the caller may ask for fewer: an application registered
// with hundreds of scopes, which create/ grants all when asked for none),
// else the 500 an operator must see (logged at crit: the issuer or the
// names are too long; nothing else takes so many bytes).
Response token_too_long(const JwtKey& signing, const IssueSettings& s, const HandshakeAsk& ask,
                        const std::string& id, int64_t expires_at) {
  if (handshake_jwt(signing, s, ask, "", id, expires_at).size() <= kMaxTokenLen) {
    const std::string why = "Too many permissions: the handshake token would be longer than " +
                            std::to_string(kMaxTokenLen) + " bytes. Ask for fewer.";
    return field_error("permissions", why);
  }
  Response r = server_error();
  r.reason = "the handshake token would be longer than " + std::to_string(kMaxTokenLen) +
             " bytes, which no endpoint reads back, even without permissions: the issuer, "
             "system_name or solution_name is too long";
  return r;
}

Json handshake_json(const HandshakeAsk& ask, const std::string& id, const std::string& token,
                    const std::string& secret, int64_t expires_at) {
  Json dbs(json_object());
  for (const auto& [role, db] : ask.solution.databases) {
    json_object_set_new(dbs.get(), role.c_str(), json_string(db.c_str()));
  }
  Json h(json_object());
  json_object_set_new(h.get(), "handshake_id", json_string(id.c_str()));
  json_object_set_new(h.get(), "handshake_token", json_string(token.c_str()));
  json_object_set_new(h.get(), "handshake_secret", json_string(secret.c_str()));
  json_object_set_new(h.get(), "expires_at", json_string(rfc3339(expires_at).c_str()));
  json_object_set_new(h.get(), "system_name", json_string(ask.system.c_str()));
  json_object_set_new(h.get(), "solution_name", json_string(ask.solution.name.c_str()));
  json_object_set(h.get(), "database_names", dbs.get());
  json_object_set_new(h.get(), "permissions", permissions_array(ask.permissions));
  return h;
}

EndpointResult create(Store& store, const Request& req, json_t* body) {
  Response err;
  auto api_key = required_string(body, "api_key", kMaxTokenLen, &err);
  if (!api_key) return done(std::move(err));
  auto system_name = required_string(body, "system_name", kMaxNameLen, &err);
  if (!system_name) return done(std::move(err));
  auto solution_name = required_string(body, "solution_name", kMaxNameLen, &err);
  if (!solution_name) return done(std::move(err));
  const Solution* solution = req.loc.solution(*solution_name);
  if (!solution) {
    return done(field_error("solution_name", "Unknown solution: " + *solution_name));
  }
  HandshakeAsk ask;
  bool asked = false;
  if (auto e = read_permissions(body, &ask.permissions, &asked)) return done(std::move(*e));
  if (auto e = read_ttl(req.loc, body, &ask.ttl)) return done(std::move(*e));
  bool unseen = false;
  if (auto e = authorize_ask(store, req, *api_key, asked, ask, &unseen)) return done(std::move(*e));
  if (unseen) return catch_up_and_again(store, req);
  auto signing = handshake_key(req.loc);
  if (!signing) return done(server_error());
  ask.solution = *solution;
  ask.system = std::move(*system_name);

  IssueSettings s(req);
  auto write = [&store, s, ask = std::move(ask), signing] {
    std::string id = new_uuid();
    std::string secret = random_token();
    WipeOnExit wipe_secret(secret);
    Token t = handshake_record(s, ask, secret);
    std::string token = handshake_jwt(*signing, s, ask, ask.permissions, id, t.expires_at);
    WipeOnExit wipe_token(token);
    // refused before anything is written
    if (token.size() > kMaxTokenLen) return token_too_long(*signing, s, ask, id, t.expires_at);
    const bool stored = store.change([&](Txn& txn) {
      // the key may have been revoked since the read above
      if (!txn.get_token(s.realm, ask.key_hash)) return false;
      txn.put_token(s.realm, token_id(id), t);
      txn.commit();
      return true;
    });
    if (!stored) return invalid_api_key();
    return envelope_ok(201, "handshake", handshake_json(ask, id, token, secret, t.expires_at),
                       "Handshake created successfully");
  };
  return pending_response(std::move(write), write_failed);
}

// ----------------------------------------------------------- validate/

EndpointResult validate_handshake(Store& store, const Request& req, json_t* body) {
  Response err;
  auto token = required_string(body, "handshake_token", kMaxTokenLen, &err);
  if (!token) return done(std::move(err));
  auto secret = required_string(body, "handshake_secret", kMaxSecretLen, &err);
  if (!secret) return done(std::move(err));

  Presented p = find_handshake(store, req, *token);
  if (p.unseen && may_catch_up(store, req)) return catch_up_and_again(store, req);
  if (p.error) return done(std::move(*p.error));
  bool ok = verify_secret(*secret, p.data.secret_hash);
  wipe(*secret);
  if (!ok) {
    Response r = envelope_error(401, "Invalid handshake secret", "INVALID_SECRET");
    r.auth_failed = true;
    return done(std::move(r));
  }
  unsigned wait;
  if (!rate_take_address(req, &wait)) return done(rate_limited(wait));
  bool enabled = false;
  {
    Txn txn = store.read();
    auto e = txn.client_enabled(req.loc.realm, p.token.client_id);
    enabled = e && *e;
  }
  // and of a solution a handshake location of the realm still has, as at
  // auth_oauth2: one the configuration no longer has is valid nowhere.
  // Its database_name is this location's, if it has the solution too
  const Solution* sol = req.loc.solution(p.data.solution_name);
  if (!sol && req.loc.config) {
    sol = req.loc.config->handshake_solution(req.loc.realm, p.data.solution_name);
  }
  const bool valid = enabled && sol && p.token.used_at == 0 && req.c.now < p.token.expires_at;

  Json d(json_object());
  json_object_set_new(d.get(), "valid", json_boolean(valid));
  json_object_set_new(d.get(), "expires_at", json_string(rfc3339(p.token.expires_at).c_str()));
  json_object_set_new(d.get(), "permissions", permissions_array(p.token.scope));
  json_object_set_new(d.get(), "database_name",
                      sol && !sol->databases.empty()
                          ? json_string(sol->databases.front().second.c_str())
                          : json_null());
  return done(envelope_ok(200, "data", std::move(d), nullptr));
}

// ------------------------------------------------------------- revoke/

Response revoked(int64_t at) {
  Json d(json_object());
  json_object_set_new(d.get(), "revoked", json_true());
  json_object_set_new(d.get(), "revoked_at", json_string(rfc3339(at).c_str()));
  return envelope_ok(200, "data", std::move(d), "Handshake revoked successfully");
}

EndpointResult revoke_handshake(Store& store, const Request& req, json_t* body) {
  Response err;
  auto token = required_string(body, "handshake_token", kMaxTokenLen, &err);
  if (!token) return done(std::move(err));
  Presented p = find_handshake(store, req, *token);
  // cluster mode: a 404 that revoked nothing would leave a handshake made
  // on another edge a moment ago live everywhere (R53)
  if (p.unseen && may_catch_up(store, req)) return catch_up_and_again(store, req);
  if (p.error) return done(std::move(*p.error));
  unsigned wait;
  if (!rate_take_address(req, &wait)) return done(rate_limited(wait));
  if (p.token.used_at != 0) return done(revoked(p.token.used_at));

  IssueSettings s(req);
  TokenId hash = p.hash;
  return pending_response(
      [&store, s, hash]() {
        return store.change([&](Txn& txn) {
          auto t = txn.get_token(s.realm, hash);
          if (!t || t->type != TokenType::kHandshake) {
            return envelope_error(404, "Handshake not found", "HANDSHAKE_NOT_FOUND");
          }
          if (t->used_at == 0) {  // a racing revoke keeps the first time
            t->used_at = s.now;
            txn.update_token(s.realm, hash, *t);
            txn.commit();
          }
          return revoked(t->used_at);
        });
      },
      write_failed);
}

}  // namespace

EndpointResult handshake_endpoint(Store& store, const Request& req) {
  std::string_view call = sv(req.c.subpath);
  if (!call.empty() && call.back() == '/') call.remove_suffix(1);
  if (call != "create" && call != "validate" && call != "revoke") {
    return done(envelope_error(404, "Not found", "NOT_FOUND"));
  }
  Json body;
  JsonBody b = parse_json_body(req, false, &body);
  if (b != JsonBody::kOk) return done(body_error(b));
  if (call == "create") return create(store, req, body.get());
  if (call == "validate") return validate_handshake(store, req, body.get());
  return revoke_handshake(store, req, body.get());
}

namespace detail {

Response handshake_rate_limited(unsigned wait) {
  return rate_limited(wait);
}

Response handshake_too_large() {
  return body_error(JsonBody::kTooLarge);
}

Response handshake_failure(int status) {
  Response r = server_error();
  if (status == 503) {
    r.retry_after = 1;
    r.unavailable = true;
  }
  return r;
}

}  // namespace detail

}  // namespace oauth2
