#include "location.hpp"

#include <stdexcept>

#include "audience.hpp"
#include "codec.hpp"
#include "endpoint_table.hpp"
#include "oidc.hpp"
#include "store.hpp"

namespace oauth2 {

namespace {

std::string str(const oauth2_str_t& s) {
  return std::string(reinterpret_cast<const char*>(s.data), s.len);
}

Solution make_solution(const oauth2_str_t* args, size_t nargs, const Location& loc) {
  if (nargs < 2) {
    throw std::runtime_error("a solution needs a name and at least one role=database");
  }
  Solution sol;
  sol.name = str(args[0]);
  if (sol.name.empty() || sol.name.size() > 150 || has_control(sol.name) || !valid_utf8(sol.name) ||
      loc.solution(sol.name)) {
    throw std::runtime_error("invalid or duplicate solution name");
  }
  for (size_t i = 1; i < nargs; i++) {
    std::string a = str(args[i]);
    size_t eq = a.find('=');
    if (eq == 0 || eq == std::string::npos || eq + 1 == a.size() || has_control(a) ||
        !valid_utf8(a)) {
      throw std::runtime_error("\"" + a + "\" is not role=database");
    }
    std::string role = a.substr(0, eq);
    for (const auto& d : sol.databases) {
      if (d.first == role) {
        throw std::runtime_error("role \"" + role + "\" is given twice");
      }
    }
    sol.databases.emplace_back(role, a.substr(eq + 1));
  }
  return sol;
}

void set_status(Location& loc, const oauth2_location_conf_t& lc) {
  std::string token;
  WipeOnExit wipe_token(token);
  char err[512] = "";
  std::string path = str(lc.status_token_file);
  if (!read_secret_file(path.c_str(), &token, err, sizeof(err))) {
    throw std::runtime_error(err);
  }
  if (token.size() < 16) {
    throw std::runtime_error("the service token must have at least 16 characters");
  }
  loc.status_token_hash = sha256(token);
  loc.has_status_token = true;
  loc.service = str(lc.status_service);
  loc.status_header = str(lc.status_header);
}

// Runs f; an error it throws is said as nginx -t says it, naming the
// directive it came from.
template <typename F>
void for_directive(const char* directive, F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    throw std::runtime_error("\"" + std::string(directive) + "\": " + e.what());
  }
}

void set_keys(Config& config, Location& loc, const oauth2_location_conf_t& lc) {
  for_directive("oauth2_jwt_key", [&] {
    for (size_t i = 0; i < lc.njwt_keys; i++) {
      loc.jwt_keys.add(config.jwt_key(str(lc.jwt_keys[i].path), lc.jwt_keys[i].hmac != 0));
    }
  });
  if (lc.handshake_key.len) {
    for_directive("oauth2_handshake_key", [&] {
      auto [key, alias] = config.handshake_key(str(lc.handshake_key));
      loc.handshake_key = key;
      loc.handshake_keys.add(key);
      loc.handshake_keys.add(alias);
    });
  }
}

// What an endpoint needs of its settings, said as nginx -t says it.
void check_location(const Location& l) {
  const char* directive = l.endpoint == OAUTH2_ENDPOINT_NONE
                              ? "auth_oauth2"
                              : oauth2_endpoint_info(l.endpoint)->directive;
  auto fail = [&](const std::string& why) {
    throw std::runtime_error("\"" + std::string(directive) + "\" " + why);
  };
  const bool simplejwt =
      l.endpoint == OAUTH2_ENDPOINT_JWT_TOKEN || l.endpoint == OAUTH2_ENDPOINT_JWT_REFRESH;
  if ((simplejwt || (l.jwt_access && l.endpoint != OAUTH2_ENDPOINT_NONE)) && !l.jwt_keys.signer()) {
    throw std::runtime_error(std::string("\"") +
                             (simplejwt ? directive : "oauth2_access_token_format jwt") +
                             "\" issues JWTs: it requires \"oauth2_jwt_key\" with a "
                             "private or HMAC key");
  }
  if (l.endpoint == OAUTH2_ENDPOINT_HANDSHAKE) {
    if (l.solutions.empty()) fail("requires at least one \"oauth2_handshake_solution\"");
    // R86: the key signing handshake tokens is a file, never the store
    if (!l.handshake_key) {
      fail(
          "requires \"oauth2_handshake_key <file>\" (32 random bytes or more: "
          "openssl rand -out <file> 32)");
    }
  }
  // R87: the issuer is configuration, never the request's Host
  if (l.issuer.empty()) {
    // the metadata names it; the pages that sign a browser in take from
    // it whether their cookies are Secure (__Host-) behind a proxy that
    // ends TLS; the device flow's verification_uri is built on it
    switch (l.endpoint) {
      case OAUTH2_ENDPOINT_METADATA:
      case OAUTH2_ENDPOINT_AUTHORIZE:
      case OAUTH2_ENDPOINT_DEVICE_AUTHORIZATION:
      case OAUTH2_ENDPOINT_DEVICE:
      case OAUTH2_ENDPOINT_AUTHORIZED_GRANTS:
      case OAUTH2_ENDPOINT_END_SESSION:
        fail("requires \"oauth2_issuer <url>\", which is never taken from the request");
        break;
      default: break;
    }
    if (!l.jwt_keys.empty()) {
      throw std::runtime_error(
          "\"oauth2_jwt_key\" requires \"oauth2_issuer <url>\", "
          "which is never taken from the request");
    }
  }
}

// A location the server names by URL (in its metadata, as a device
// flow's verification_uri) is under its issuer's path: that URL is the
// issuer's origin and the location's path (issuer_url), and a client of a
// path issuer finds its endpoints under it (RFC 8414 3).  A location of
// /o/token/ for https://h/tenant would be named https://h/o/token/.
void check_under_issuer(const Location& l, const std::string& path) {
  const EndpointKind* k = endpoint_kind(l.endpoint);
  if (!k || (!k->metadata_name && l.endpoint != OAUTH2_ENDPOINT_DEVICE)) return;
  const size_t scheme = l.issuer.find("://");
  const size_t slash = scheme == std::string::npos ? scheme : l.issuer.find('/', scheme + 3);
  if (slash == std::string::npos) return;
  std::string base = l.issuer.substr(slash);
  while (!base.empty() && base.back() == '/') base.pop_back();
  if (base.empty() || path == base || path.rfind(base + "/", 0) == 0) return;
  throw std::runtime_error("the location \"" + path +
                           "\" is not under the path of \"oauth2_issuer " + l.issuer +
                           "\": the URLs the server names of itself are the " +
                           "issuer's host and the location's path (put it under " + base + "/)");
}

}  // namespace

std::string issuer_url(std::string_view issuer, std::string_view path) {
  size_t scheme = issuer.find("://");
  if (scheme == std::string_view::npos ||
      (!iequals(issuer.substr(0, scheme), "https") && !iequals(issuer.substr(0, scheme), "http")) ||
      scheme + 3 >= issuer.size()) {
    return {};
  }
  size_t end = issuer.find_first_of("/?#", scheme + 3);
  std::string out(issuer.substr(0, end));
  out.append(path);
  return out;
}

std::shared_ptr<JwtKey> Config::jwt_key(const std::string& path, bool hmac) {
  auto& k = keys_[{path, hmac}];
  if (!k) k = JwtKey::load_file(path, hmac);
  return k;
}

std::pair<std::shared_ptr<JwtKey>, std::shared_ptr<JwtKey>> Config::handshake_key(
    const std::string& path) {
  auto& k = handshake_keys_[path];
  if (!k.first) {
    // a key that `oauth2-admin handshake-key extract` moved out of the
    // store still verifies the tokens it signed there, under their kid
    k.first = JwtKey::load_hmac_file(path, kLegacyHandshakeKid, &k.second);
  }
  return k;
}

const Digest* Config::dpop_key() {
  if (!dpop_key_set_) {
    random_bytes(dpop_key_.data(), dpop_key_.size());
    dpop_key_set_ = true;
  }
  return &dpop_key_;
}

void Config::add_location(const std::string& realm, int endpoint, const std::string& path) {
  if (endpoint <= 0 || endpoint >= OAUTH2_ENDPOINT_MAX) return;
  RealmEndpoints& r = realms_[realm];
  r.located |= 1u << endpoint;
  if (r.paths[endpoint].empty()) r.paths[endpoint] = path;
}

const std::string* Config::issuer_taken(const std::string& issuer, const std::string& realm) {
  const std::string& owner = issuers_.emplace(issuer, realm).first->second;
  return owner == realm ? nullptr : &owner;
}

std::shared_ptr<const int64_t> Config::dpop_window(const std::string& realm, int64_t window) {
  RealmEndpoints& r = realms_[realm];
  *r.dpop_window = std::max(*r.dpop_window, window);
  return r.dpop_window;
}

void Config::add_handshake_solution(const std::string& realm, const Solution& s) {
  realms_[realm].handshake_solutions.emplace(s.name, s);
}

const Solution* Config::handshake_solution(std::string_view realm, std::string_view name) const {
  auto it = realms_.find(realm);
  if (it == realms_.end()) return nullptr;
  auto s = it->second.handshake_solutions.find(name);
  return s == it->second.handshake_solutions.end() ? nullptr : &s->second;
}

const std::string& Config::path(std::string_view realm, int endpoint) const {
  static const std::string* const kNone = new std::string;
  auto r = realms_.find(realm);
  if (r == realms_.end() || endpoint <= 0 || endpoint >= OAUTH2_ENDPOINT_MAX) return *kNone;
  return r->second.paths[endpoint];
}

const std::string* Config::realm_without(int has, int needs) const {
  for (const auto& [realm, r] : realms_) {
    if ((r.located & (1u << has)) && r.paths[needs].empty()) return &realm;
  }
  return nullptr;
}

void Config::signs_id_tokens(const std::string& realm) {
  realms_[realm].signs_id_tokens = true;
}

const std::string* Config::id_tokens_without_jwks() const {
  for (const auto& [realm, r] : realms_) {
    if ((r.located & (1u << OAUTH2_ENDPOINT_AUTHORIZE)) && r.signs_id_tokens &&
        r.paths[OAUTH2_ENDPOINT_JWKS].empty()) {
      return &realm;
    }
  }
  return nullptr;
}

std::unique_ptr<Location> make_location(Config& config, const oauth2_location_conf_t& lc) {
  auto loc = std::make_unique<Location>();
  Location& l = *loc;
  l.endpoint = lc.endpoint;
  l.config = &config;
  l.realm = lc.realm.len ? str(lc.realm) : std::string(kDefaultRealm);
  if (!valid_realm(l.realm)) throw std::runtime_error("invalid realm");
  l.auth = lc.auth != 0;
  l.auth_realm = str(lc.auth_realm);
  for (size_t i = 0; i < lc.nscopes; i++) l.scopes.push_back(str(lc.scopes[i]));
  l.access_token_ttl = lc.access_token_ttl;
  l.refresh_token_ttl = lc.refresh_token_ttl;
  l.refresh_grace = lc.refresh_grace;
  l.code_ttl = lc.code_ttl;
  if (lc.device_code_ttl > 0) l.device_code_ttl = lc.device_code_ttl;
  l.default_scope = str(lc.default_scope);
  l.pbkdf2_iterations = lc.pbkdf2_iterations;
  l.login_client_id = str(lc.login_client_id);
  l.issuer = str(lc.issuer);
  l.audience = str(lc.audience);
  l.auth_audience = str(lc.auth_audience);
  if (!l.auth_audience.empty() && !valid_resource(l.auth_audience)) {
    throw std::runtime_error("\"auth_oauth2_audience\": not an absolute URI without a fragment");
  }
  l.jwt_access = lc.jwt_access_tokens != 0;
  l.login_template = str(lc.login_template);
  l.consent_template = str(lc.consent_template);
  l.error_template = str(lc.error_template);
  l.handshake_max_ttl = lc.handshake_max_ttl;
  set_keys(config, l, lc);
  for_directive("oauth2_handshake_solution", [&] {
    for (size_t i = 0; i < lc.nsolutions; i++) {
      l.solutions.push_back(make_solution(lc.solutions[i], lc.solution_sizes[i], l));
    }
  });
  if (lc.status_token_file.len) {
    for_directive("oauth2_status", [&] { set_status(l, lc); });
  }
  if (lc.password_policy.len) {
    for_directive("oauth2_password_policy", [&] {
      std::string why;
      auto p = PasswordPolicy::parse(str(lc.password_policy), &why);
      if (!p) throw std::runtime_error(why);
      l.password_policy = *p;
    });
  }
  l.auth_limit = lc.auth_limit;
  l.auth_window = lc.auth_window;
  l.account_limit = AccountLimit{lc.account_limit, lc.account_window};
  for (size_t i = 0; i < lc.nrates && i < OAUTH2_MAX_RATES; i++) {
    l.rates.push_back(lc.rates[i]);
  }
  l.valid.set_capacity(lc.valid_cache);
  l.dpop = lc.dpop != 0;
  l.dpop_nonce = lc.dpop_nonce != 0;
  if (lc.dpop_window) l.dpop_window = lc.dpop_window;
  l.dpop_realm_window = config.dpop_window(l.realm, l.dpop_window);
  if (l.dpop_nonce) l.dpop_key = config.dpop_key();
  check_location(l);
  check_under_issuer(l, str(lc.path));
  if (const std::string* other =
          l.issuer.empty() ? nullptr : config.issuer_taken(l.issuer, l.realm)) {
    throw std::runtime_error("\"oauth2_issuer " + l.issuer + "\" is realm \"" + *other +
                             "\"'s issuer too: each realm needs an issuer of its own (its "
                             "id_tokens and JWTs are told apart by it)");
  }
  config.add_location(l.realm, l.endpoint, str(lc.path));
  if (l.endpoint == OAUTH2_ENDPOINT_HANDSHAKE) {
    for (const Solution& s : l.solutions) config.add_handshake_solution(l.realm, s);
  }
  // the token endpoint signs id_tokens with the key id_token_key picks;
  // the metadata offers OpenID when it has one
  if ((l.endpoint == OAUTH2_ENDPOINT_TOKEN || l.endpoint == OAUTH2_ENDPOINT_METADATA) &&
      detail::id_token_key(l, "")) {
    config.signs_id_tokens(l.realm);
  }
  return loc;
}

}  // namespace oauth2
