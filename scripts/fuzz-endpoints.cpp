// libFuzzer harness for every endpoint of the core and for bearer
// validation (docs/security.md section 2, R81), through the C API the
// nginx shim calls (include/oauth2.h), against a real LMDB store that
// scripts/fuzz-endpoints seeds with oauth2-admin: an application of every
// grant, a public one, a user, an access token and an API key.
//
// Each input is one request: the endpoint, the method, Content-Type,
// Authorization, query, Cookie, DPoP, the path under the location and the
// body, each either picked from what a real client sends (the seeded
// credentials, a well-formed grant) or taken from the input.  It runs as
// the shim runs it: oauth2_endpoint_begin(), then oauth2_op_run() and
// oauth2_op_finish() while the core asks, one more pass when it answers
// OAUTH2_AGAIN.  Beyond "no crash" (ASan, UBSan), it aborts when the core
// breaks a promise that holds whatever the request:
//   - no 500 and no status outside 200-599: bad input gets its 4xx (2.x),
//     and the store on tmpfs never fails;
//   - no CR, LF or NUL in a header value the core returns (Location,
//     Set-Cookie, WWW-Authenticate, DPoP-Nonce, X-RateLimit's): no header
//     injection from the request (R65);
//   - a body that is not a page is JSON, and a JSON error has a string
//     "error" or is one of the seeds' envelopes;
//   - a response that refused the caller issues nothing (issued_client is
//     set only with a 200).
// The store persists across inputs (tokens issued, codes redeemed), as it
// would under a real client: an input may not replay to the same answer,
// but a crash or a broken promise replays on its own.

#include <fuzzer/FuzzedDataProvider.h>
#include <jansson.h>

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "api.hpp"
#include "counters.hpp"
#include "http.hpp"
#include "oauth2.h"
#include "store.hpp"
#include "test_helpers.hpp"

namespace {

[[noreturn]] void broken(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz-endpoints: %s: %s\n", what, detail.c_str());
  std::abort();
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) broken("missing environment (run scripts/fuzz-endpoints)", name);
  return v;
}

using oauth2_test::cstr;

std::string sstr(const oauth2_str_t& s) {
  return s.data ? std::string(reinterpret_cast<const char*>(s.data), s.len) : std::string();
}

// What scripts/fuzz-endpoints seeded: credentials a real client would hold.
struct Seeds {
  std::string client_id, secret;  // a confidential application, every grant
  std::string public_id;          // a public application, authorization_code
  std::string username, password;
  std::string token;        // an access token of the confidential application
  std::string staff_token;  // the same, of a staff user: the admin API's
  std::string api_key;      // seed 002's credential, of the confidential one
  std::string status_token;
  std::string redirect_uri = "http://127.0.0.1:9/cb";
};

Seeds* seeds;
int64_t start_time;  // every request's now: the seeded tokens' time
oauth2_store_t* store;
oauth2_conf_t* conf;
// by endpoint id, [0]: auth_oauth2; kept for the process's life, as the
// harness's other state, where LeakSanitizer sees it
std::vector<oauth2_location_t*>* locations;
std::string* last_cookie;  // the last session the core set, offered back

// What the core handed out lately (a refresh token, a code, a device
// code, a handshake token, seed 003's refresh JWT), by its field's name,
// offered back as a client would use it: the fuzzer cannot forge them.
std::map<std::string, std::string>* handed;

std::string handed_out(const char* name) {
  auto it = handed->find(name);
  return it == handed->end() ? std::string() : it->second;
}

void keep_handed_out(const unsigned char* body, size_t len, const oauth2_str_t& location) {
  static const char* const kFields[] = {"refresh_token", "access_token", "refresh",        "access",
                                        "device_code",   "user_code",    "handshake_token"};
  if (json_t* j = json_loadb(reinterpret_cast<const char*>(body), len, 0, nullptr)) {
    json_t* data = json_object_get(j, "handshake");  // seed 002's envelope
    for (const char* f : kFields) {
      json_t* v = json_object_get(j, f);
      if (!v && data) v = json_object_get(data, f);
      if (json_is_string(v)) (*handed)[f] = json_string_value(v);
    }
    json_decref(j);
  }
  std::string loc = sstr(location);
  size_t at = loc.find("code=");
  if (at != std::string::npos && (at == 0 || loc[at - 1] == '?' || loc[at - 1] == '&')) {
    (*handed)["code"] = loc.substr(at + 5, loc.find('&', at) - at - 5);
  }
}

// the admin daemon's (oauth2-admin serve) context, on its own copy of the
// seeded store: LMDB opens an environment once a process
oauth2::admin::ServeContext* admin;
std::string* admin_cookie;  // the last session the web pages set

// DPoP proofs' jti are remembered; the other limits never refuse, so that
// an input's path does not depend on the inputs before it
std::set<std::string>* seen_keys;

unsigned take(void*, const unsigned char*, size_t, const oauth2_rate_window_t* w, size_t nw,
              oauth2_rate_state_t* st) {
  if (nw) {
    st->limit = w[0].limit;
    st->remaining = w[0].limit;
    st->reset = 0;
    st->set = 1;
  }
  return 0;
}
unsigned check(void*, const unsigned char*, size_t, unsigned, unsigned) {
  return 0;
}
void failed(void*, const unsigned char*, size_t, unsigned) {}
unsigned seen(void*, const unsigned char* key, size_t len, unsigned) {
  if (seen_keys->size() > 100000) seen_keys->clear();
  return seen_keys->insert(std::string(reinterpret_cast<const char*>(key), len)).second ? 0 : 1;
}
const oauth2_counters_t kCounters{nullptr, take, check, failed, seen};

// the allocator of one request (nginx's pool), freed after it
std::vector<void*>* pool;
void* alloc(void*, size_t size) {
  void* p = std::malloc(size ? size : 1);
  pool->push_back(p);
  return p;
}
void free_pool() {
  for (void* p : *pool) std::free(p);
  pool->clear();
}

void make_locations() {
  const std::string dir = env("FUZZ_ENDPOINTS_DIR");
  static const std::string es256 = dir + "/es256.pem";
  static const std::string hs_key = dir + "/handshake.key";
  static const std::string status_file = dir + "/status.token";
  static const std::string issuer = "https://as.example.com";
  static const oauth2_key_file_t keys[] = {{cstr(es256), 0}};
  static const std::string sol_name = "rental", sol_db = "fbs=fbs_rental_db";
  static const oauth2_str_t sol[] = {cstr(sol_name), cstr(sol_db)};
  static const oauth2_str_t* const sols[] = {sol};
  static const size_t sol_sizes[] = {2};
  static const std::string scope_read = "read", default_scope = "read write";
  static const oauth2_str_t scopes[] = {cstr(scope_read)};
  static const std::string realm = "default", auth_realm = "api", service = "pyauthservice",
                           header = "x-service-token";

  conf = oauth2_conf_create();
  if (!conf) broken("oauth2_conf_create", "NULL");
  locations = new std::vector<oauth2_location_t*>(OAUTH2_ENDPOINT_MAX);
  for (int e = 0; e < OAUTH2_ENDPOINT_MAX; e++) {
    oauth2_location_conf_t lc{};
    lc.endpoint = e;
    lc.realm = cstr(realm);
    lc.access_token_ttl = 36000;
    lc.refresh_token_ttl = 30 * 86400;
    lc.refresh_grace = 10;
    lc.code_ttl = 60;
    lc.device_code_ttl = 600;
    lc.default_scope = cstr(default_scope);
    lc.pbkdf2_iterations = 1000;  // the seeded user's hash has 1000 too
    lc.login_client_id = cstr(seeds->client_id);
    lc.issuer = cstr(issuer);
    lc.jwt_keys = keys;
    lc.njwt_keys = 1;
    lc.jwt_access_tokens = e == OAUTH2_ENDPOINT_JWT_TOKEN;
    lc.handshake_key = cstr(hs_key);
    lc.handshake_max_ttl = 30 * 86400;
    lc.solutions = sols;
    lc.solution_sizes = sol_sizes;
    lc.nsolutions = 1;
    lc.auth_limit = 10;
    lc.auth_window = 60;
    lc.account_limit = 100;
    lc.account_window = 3600;
    lc.rates[0] = {100, 60};
    lc.nrates = 1;
    lc.dpop = 1;
    lc.dpop_nonce = e == OAUTH2_ENDPOINT_TOKEN;
    if (e == OAUTH2_ENDPOINT_STATUS) {
      lc.status_service = cstr(service);
      lc.status_header = cstr(header);
      lc.status_token_file = cstr(status_file);
    }
    if (e == OAUTH2_ENDPOINT_NONE) {
      lc.auth = 1;
      lc.auth_realm = cstr(auth_realm);
      lc.scopes = scopes;
      lc.nscopes = 1;
      lc.valid_cache = 64;
    }
    if (e != OAUTH2_ENDPOINT_NONE) {
      static auto* paths = new std::vector<std::string>(OAUTH2_ENDPOINT_MAX);
      (*paths)[e] = "/ep" + std::to_string(e) + "/";
      lc.path = cstr((*paths)[e]);
    }
    char err[512] = "";
    (*locations)[e] = oauth2_location_create(conf, &lc, err, sizeof(err));
    if (!(*locations)[e]) broken("oauth2_location_create", std::to_string(e) + ": " + err);
  }
}

std::string basic(const std::string& id, const std::string& secret) {
  return oauth2_test::basic(id + ":" + secret);
}

// the method and Content-Type a client sends, most of the time
std::string pick_method(FuzzedDataProvider& in) {
  static const char* const m[] = {"POST", "POST",   "POST", "GET",    "GET",
                                  "PUT",  "DELETE", "HEAD", "OPTIONS"};
  size_t i = in.ConsumeIntegralInRange<size_t>(0, 9);
  return i < 9 ? m[i] : in.ConsumeRandomLengthString(16);
}

std::string pick_content_type(FuzzedDataProvider& in) {
  static const char* const t[] = {"application/x-www-form-urlencoded",
                                  "application/x-www-form-urlencoded",
                                  "application/json",
                                  "application/json",
                                  "application/x-www-form-urlencoded; charset=UTF-8",
                                  "application/json; charset=utf-8",
                                  "multipart/form-data",
                                  ""};
  size_t i = in.ConsumeIntegralInRange<size_t>(0, 8);
  return i < 8 ? t[i] : in.ConsumeRandomLengthString(64);
}

std::string pick_authorization(FuzzedDataProvider& in, bool* has) {
  *has = true;
  switch (in.ConsumeIntegralInRange(0, 6)) {
    case 0: *has = false; return "";
    case 1: return basic(seeds->client_id, seeds->secret);
    case 2: return basic(seeds->client_id, in.ConsumeRandomLengthString(64));
    case 3: return basic(seeds->public_id, "");
    case 4: return "Bearer " + seeds->token;
    case 5: return "Bearer " + in.ConsumeRandomLengthString(256);
    default: return in.ConsumeRandomLengthString(512);
  }
}

std::string pick_subpath(FuzzedDataProvider& in) {
  static const char* const s[] = {"", "create/", "validate/", "revoke/", "create", "/"};
  size_t i = in.ConsumeIntegralInRange<size_t>(0, 7);
  if (i < 6) return s[i];
  if (i == 6) return seeds->client_id + "/";
  return in.ConsumeRandomLengthString(128);
}

// A body: the input's own bytes, or a well-formed request with the
// input's bytes appended (a form field, or the rest of a JSON object), so
// that the fuzzer starts deep in every grant.
std::string pick_body(FuzzedDataProvider& in) {
  const Seeds& s = *seeds;
  const std::string cred = "client_id=" + s.client_id + "&client_secret=" + s.secret;
  const std::string user = "username=" + s.username + "&password=" + s.password;
  // a value the core handed out (or the input's bytes) where the grant
  // takes one
  auto given = [&in](const char* name) {
    return in.ConsumeBool() ? handed_out(name) : in.ConsumeRandomLengthString(256);
  };
  std::string head, tail;
  switch (in.ConsumeIntegralInRange(0, 13)) {
    case 0: break;
    case 1: head = "grant_type=client_credentials&"; break;
    case 2: head = "grant_type=password&" + user + "&"; break;
    case 3:
      head = "grant_type=refresh_token&" + cred + "&refresh_token=" + given("refresh_token");
      break;
    case 4:
      head = "grant_type=authorization_code&" + cred + "&redirect_uri=" + s.redirect_uri +
             "&code=" + given("code");
      break;
    case 5:
      head = "grant_type=urn:ietf:params:oauth:grant-type:device_code&" + cred +
             "&device_code=" + given("device_code");
      break;
    case 6: head = "token=" + s.token + "&" + cred + "&"; break;
    case 7: head = cred + "&" + user + "&user_code=" + given("user_code") + "&"; break;
    // the seeds' JSON bodies, closed after the input's members
    case 8:
      head = "{\"username\": \"" + s.username + "\", \"password\": \"" + s.password + "\"";
      tail = "}";
      break;
    case 9:
      head =
          "{\"api_key\": \"" + s.api_key +
          "\", \"system_name\": \"s\", \"solution_name\": \"rental\", \"permissions\": [\"read\"]";
      tail = "}";
      break;
    case 10:
      head = "{\"api_key\": \"" + s.api_key + "\", \"handshake_token\": \"" +
             given("handshake_token") + "\"";
      tail = "}";
      break;
    case 11:
      head = "{\"refresh\": \"" + given("refresh") + "\"";
      tail = "}";
      break;
    case 12: head = "password=Fuzz-pass-9q&confirm_password=Fuzz-pass-9q&username="; break;
    default:
      head = "response_type=code&client_id=" + s.client_id + "&redirect_uri=" + s.redirect_uri +
             "&scope=read&state=x&csrf_token=";
  }
  return head + in.ConsumeRandomLengthString(4096) + tail;
}

// what any header value the core or the daemon returns must never hold
// (R65), whatever the request
void check_header(const std::string& name, std::string_view value, const std::string& what) {
  if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) {
    broken("CR, LF or NUL in a header", what + ": " + name + ": " + std::string(value));
  }
}

void check_header(const char* name, const oauth2_str_t& s, const std::string& what) {
  check_header(name, sstr(s), what);
}

// bad input gets its 4xx, never a 500 or a status outside HTTP's
void check_status(int status, const std::string& what) {
  if (status < 200 || status > 599 || status == 500) {
    broken("a status that bad input must never get", what);
  }
}

void check_json_body(const unsigned char* body, size_t len, int status, const std::string& what) {
  json_error_t e;
  json_t* j = json_loadb(reinterpret_cast<const char*>(body), len, 0, &e);
  if (!j) broken("a body that is neither a page nor JSON", what + ": " + e.text);
  // an error's JSON names it: RFC 6749's "error", the seeds' envelopes
  // ("success": false, "detail", "errors" or field lists)
  if (status >= 400 && json_is_object(j) && json_object_get(j, "error") &&
      !json_is_string(json_object_get(j, "error")) &&
      !json_is_object(json_object_get(j, "error"))) {
    broken("an error that is not a string or an object", what);
  }
  json_decref(j);
}

// FUZZ_STATS=1: how often each endpoint answered each status, printed at
// exit, to see how deep the inputs reach
std::map<std::pair<int, int>, unsigned long>* stats;

void print_stats() {
  for (const auto& [k, n] : *stats)
    std::fprintf(stderr, "endpoint %2d status %3d: %lu\n", k.first, k.second, n);
}

void check_response(int endpoint, const oauth2_response_t& r) {
  if (stats) (*stats)[{endpoint, r.status}]++;
  const std::string what =
      "endpoint " + std::to_string(endpoint) + " status " + std::to_string(r.status);
  check_status(r.status, what + " reason " + sstr(r.reason));
  check_header("Location", r.location, what);
  for (const auto& c : r.set_cookie) check_header("Set-Cookie", c, what);
  check_header("WWW-Authenticate", r.www_authenticate, what);
  check_header("DPoP-Nonce", r.dpop_nonce, what);
  if (r.body_len && !r.html) check_json_body(r.body, r.body_len, r.status, what);
  if (r.issued_client.len && r.status != 200) broken("issued with a refusal", what);
}

void run_endpoint(int endpoint, FuzzedDataProvider& in) {
  std::string method = pick_method(in), content_type = pick_content_type(in);
  bool has_auth = false;
  std::string authorization = pick_authorization(in, &has_auth);
  const bool has_query = in.ConsumeIntegralInRange(0, 3) == 0;
  std::string query = in.ConsumeBool() ? "response_type=code&client_id=" + seeds->client_id +
                                             "&redirect_uri=" + seeds->redirect_uri + "&"
                                       : "";
  query += in.ConsumeRandomLengthString(512);
  std::string cookie = in.ConsumeBool() ? *last_cookie : in.ConsumeRandomLengthString(256);
  std::string header = in.ConsumeBool() ? seeds->status_token : in.ConsumeRandomLengthString(64);
  std::string dpop = in.ConsumeBool() ? "" : in.ConsumeRandomLengthString(512);
  std::string subpath = pick_subpath(in);
  std::string body = pick_body(in);
  const std::string address = "192.0.2.7", path = "/ep" + std::to_string(endpoint) + "/";

  oauth2_request_t req{};
  req.method = cstr(method);
  req.content_type = cstr(content_type);
  // now and then two Content-Types, which the endpoints refuse (R2)
  req.content_type_count = content_type.empty() ? 0 : in.ConsumeIntegralInRange(0, 7) ? 1 : 2;
  req.has_query = has_query;
  if (has_query) req.query = cstr(query);
  req.has_authorization = has_auth;
  req.authorization = cstr(authorization);
  req.cookie = cstr(cookie);
  req.header_count = header.empty() ? 0 : 1;
  req.header = cstr(header);
  req.body = cstr(body);
  req.subpath = cstr(subpath);
  req.address = cstr(address);
  req.now = start_time;
  req.counters = kCounters;
  req.dpop_count = dpop.empty() ? 0 : 1;
  req.dpop = cstr(dpop);
  req.path = cstr(path);

  std::string resume;
  for (int pass = 0; pass < 4; pass++) {
    req.resume = cstr(resume);
    oauth2_op_t* op = nullptr;
    oauth2_response_t resp{};
    int rc = oauth2_endpoint_begin(store, (*locations)[endpoint], &req, &op, alloc, nullptr, &resp);
    if (rc == OAUTH2_PENDING) {
      oauth2_op_run(op);
      rc = oauth2_op_finish(op, alloc, nullptr, &resp);
    }
    if (rc == OAUTH2_AGAIN) {
      resume = sstr(resp.resume);
      continue;
    }
    if (rc != OAUTH2_OK) broken("the core said neither OK nor AGAIN", std::to_string(rc));
    check_response(endpoint, resp);
    if (resp.status < 400) keep_handed_out(resp.body, resp.body_len, resp.location);
    for (const auto& c : resp.set_cookie) {
      if (c.len) {
        std::string v = sstr(c);
        *last_cookie = v.substr(0, v.find(';'));
      }
    }
    return;
  }
  broken("more than 4 passes", std::to_string(endpoint));
}

void run_validate(FuzzedDataProvider& in) {
  bool has_auth = false;
  std::string authorization = pick_authorization(in, &has_auth);
  std::string api_key = in.ConsumeBool() ? seeds->api_key : in.ConsumeRandomLengthString(64);
  std::string method = pick_method(in), path = "/api/" + in.ConsumeRandomLengthString(64);
  std::string dpop = in.ConsumeBool() ? "" : in.ConsumeRandomLengthString(1024);
  oauth2_validate_req_t req{};
  req.has_authorization = has_auth;
  req.authorization = cstr(authorization);
  req.api_key_count = in.ConsumeIntegralInRange(0, 2);
  req.api_key = cstr(api_key);
  req.now = start_time;
  req.counters = kCounters;
  req.method = cstr(method);
  req.path = cstr(path);
  req.dpop_count = dpop.empty() ? 0 : 1;
  req.dpop = cstr(dpop);
  oauth2_validate_res_t res{};
  int rc = oauth2_validate(store, (*locations)[0], &req, alloc, nullptr, &res);
  if (rc != OAUTH2_OK) broken("oauth2_validate failed", std::to_string(rc));
  const std::string what = "auth_oauth2 result " + std::to_string(res.result);
  if (stats) (*stats)[{0, res.result}]++;
  if (res.result == OAUTH2_UNAVAILABLE) broken("503 from a store that is there", sstr(res.reason));
  if (res.result == OAUTH2_VALID && (res.client_id.len == 0 || res.why != OAUTH2_WHY_OK)) {
    broken("valid without a client", what);
  }
  if (res.result != OAUTH2_VALID && res.why == OAUTH2_WHY_OK) broken("refused as ok", what);
  check_header("WWW-Authenticate", res.challenge, what);
  check_header("DPoP-Nonce", res.dpop_nonce, what);
}

// ------------------------------------------------------- the admin daemon

std::string pick_admin_path(FuzzedDataProvider& in) {
  const std::string& id = seeds->client_id;
  switch (in.ConsumeIntegralInRange(0, 14)) {
    case 0: return "/api/users/";
    case 1: return "/api/users/1/";
    case 2: return "/api/users/2/";
    case 3: return "/api/users/1/consents/";
    case 4: return "/api/users/1/consents/" + id + "/";
    case 5: return "/auth/me/";
    case 6: return "/api/applications/";
    case 7: return "/api/applications/" + id + "/";
    case 8: return "/api/applications/" + id + "/rotate-secret/";
    case 9: return "/api/applications/" + id + "/api-keys/";
    case 10: return "/o/applications/";
    case 11: return "/o/applications/login/";
    case 12: return "/o/applications/register/";
    case 13: return "/o/applications/" + id + "/update/";
    default: return in.ConsumeRandomLengthString(128);
  }
}

void run_admin(FuzzedDataProvider& in) {
  oauth2::admin::HttpRequest req;
  req.method = pick_method(in);
  req.path = pick_admin_path(in);
  if (in.ConsumeIntegralInRange(0, 3) == 0) req.query = in.ConsumeRandomLengthString(256);
  req.remote = "192.0.2.9";
  switch (in.ConsumeIntegralInRange(0, 5)) {
    case 0: break;
    case 1: req.headers.emplace_back("authorization", "Bearer " + seeds->staff_token); break;
    case 2: req.headers.emplace_back("authorization", "Bearer " + seeds->token); break;
    case 3: req.headers.emplace_back("x-api-key", seeds->api_key); break;
    case 4: req.headers.emplace_back("cookie", *admin_cookie); break;
    default: req.headers.emplace_back("authorization", in.ConsumeRandomLengthString(256));
  }
  req.headers.emplace_back("content-type", pick_content_type(in));
  // (an input that has run out reads as 0s: bounded)
  for (int i = 0; i < 8 && in.ConsumeIntegralInRange(0, 3) == 0; i++) {
    std::string name = in.ConsumeRandomLengthString(32);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    req.headers.emplace_back(name, in.ConsumeRandomLengthString(128));
  }
  if (in.ConsumeIntegralInRange(0, 7) == 0) {
    req.headers.emplace_back("x-oauth2-realm",
                             in.ConsumeBool() ? "default" : in.ConsumeRandomLengthString(80));
  }
  std::string head, tail;
  switch (in.ConsumeIntegralInRange(0, 4)) {
    case 0: break;
    case 1:
      // a new user: the name is the input's (a taken one is refused)
      head = "{\"email\": \"u@example.com\", \"password\": \"Fuzz-pass-9q\", \"username\": \"";
      tail = "\"}";
      break;
    case 2:
      head =
          "{\"name\": \"n\", \"client_type\": \"confidential\", \"authorization_grant_type\": "
          "\"client-credentials\", \"redirect_uris\": \"\"";
      tail = "}";
      break;
    case 3:
      head =
          "username=" + seeds->username + "&password=" + seeds->password + "&csrfmiddlewaretoken=";
      break;
    default: head = "{\"is_active\": "; tail = "}";
  }
  req.body = head + in.ConsumeRandomLengthString(4096) + tail;

  oauth2::admin::HttpResponse r;
  try {
    r = oauth2::admin::route(*admin, req);
  } catch (const oauth2::StoreError& e) {
    broken("the daemon: a StoreError from a store that is there", e.what());
  } catch (const std::exception& e) {
    broken("the daemon: an exception (a 500)", req.method + " " + req.path + ": " + e.what());
  }
  if (stats) (*stats)[{100, r.status}]++;
  const std::string what =
      "daemon " + req.method + " " + req.path + " status " + std::to_string(r.status);
  check_status(r.status, what);
  bool json = false;
  for (const auto& [name, value] : r.headers) {
    check_header(name, name + value, what);
    if (name == "Content-Type" && value.rfind("application/json", 0) == 0) json = true;
    if (name == "Set-Cookie") *admin_cookie = value.substr(0, value.find(';'));
  }
  if (json && !r.body.empty()) {
    check_json_body(reinterpret_cast<const unsigned char*>(r.body.data()), r.body.size(), r.status,
                    what);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  start_time = static_cast<int64_t>(std::time(nullptr));
  seeds = new Seeds;
  seeds->client_id = env("FUZZ_CLIENT_ID");
  seeds->secret = env("FUZZ_CLIENT_SECRET");
  seeds->public_id = env("FUZZ_PUBLIC_ID");
  seeds->username = env("FUZZ_USERNAME");
  seeds->password = env("FUZZ_PASSWORD");
  seeds->token = env("FUZZ_TOKEN");
  seeds->staff_token = env("FUZZ_STAFF_TOKEN");
  seeds->api_key = env("FUZZ_API_KEY");
  seeds->status_token = env("FUZZ_STATUS_TOKEN");
  seen_keys = new std::set<std::string>;
  pool = new std::vector<void*>;
  last_cookie = new std::string;
  handed = new std::map<std::string, std::string>;
  if (std::getenv("FUZZ_STATS")) {
    stats = new std::map<std::pair<int, int>, unsigned long>;
    std::atexit(print_stats);
  }

  const std::string path = env("FUZZ_ENDPOINTS_STORE");
  store = oauth2_store_create(path.c_str(), size_t(1) << 30);
  char err[512] = "";
  if (!store || oauth2_store_open(store, err, sizeof(err)) != OAUTH2_OK) {
    broken("cannot open the store", path + ": " + err);
  }
  make_locations();

  admin_cookie = new std::string;
  admin = new oauth2::admin::ServeContext;
  admin->store = new oauth2::Store(env("FUZZ_ADMIN_STORE"), size_t(1) << 30);
  admin->pbkdf2_iterations = 1000;
  admin->open_registration = true;
  admin->counters = new oauth2::admin::MemoryCounters;
  admin->hash_slots = new oauth2::admin::HashSlots(2, 64);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  // the module's endpoints, auth_oauth2 (0) and the daemon (one in four)
  const int endpoint = in.ConsumeIntegralInRange(0, OAUTH2_ENDPOINT_MAX + 5);
  if (endpoint >= OAUTH2_ENDPOINT_MAX) {
    run_admin(in);
  } else if (endpoint == OAUTH2_ENDPOINT_NONE) {
    run_validate(in);
  } else {
    run_endpoint(endpoint, in);
  }
  free_pool();
  return 0;
}
