// `oauth2-admin app ...`: the applications (OAuth 2 clients) of a realm.

#include <openssl/crypto.h>

#include <cstdio>
#include <ctime>
#include <iterator>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli.hpp"
#include "codec.hpp"
#include "crypto.hpp"
#include "json.hpp"
#include "store.hpp"

namespace oauth2::admin {
namespace {

constexpr size_t kMaxName = 255;             // characters, as in DOT
constexpr size_t kMaxRedirectUri = 2048;     // bytes
constexpr int64_t kMaxTtl = 315360000;       // ten years, in seconds
constexpr size_t kClientIdLength = 40;       // as DOT generates them
constexpr size_t kClientSecretLength = 128;  // as DOT generates them

constexpr const char* kGrants[] = {"client_credentials", "authorization_code",
                                   "password", "refresh_token"};
constexpr const char* kAuthMethods[] = {"client_secret_basic",
                                        "client_secret_post"};

// The application as `app add` prints it; client_secret only when
// secret_json is given (a string, or null for a public client).
Json client_json(const Client& c, json_t* secret_json = nullptr) {
  Json obj(checked(json_object()));
  json_t* o = obj.get();
  set_member(o, "client_id", string_json(c.client_id));
  if (secret_json) set_member(o, "client_secret", json_incref(secret_json));
  set_member(o, "name", string_json(c.name));
  set_member(o, "client_type",
             json_string(c.confidential ? "confidential" : "public"));
  set_member(o, "grant_types", strings_json(c.grant_types));
  set_member(o, "scope", string_json(c.scope));
  set_member(o, "redirect_uris", strings_json(c.redirect_uris));
  set_member(o, "auth_method",
             c.auth_method.empty() ? json_null() : string_json(c.auth_method));
  set_member(
      o, "access_token_ttl",
      c.access_token_ttl == 0 ? json_null() : json_integer(c.access_token_ttl));
  set_member(o, "created_at", json_integer(c.created_at));
  return obj;
}

// The id echoed only when it is plain printable ASCII.
std::string no_such_app(std::string_view id) {
  bool plain = !id.empty() && id.size() <= kMaxClientId;
  for (char ch : id) {
    if (ch < 0x21 || ch > 0x7E) plain = false;
  }
  return plain ? "no application with client_id " + std::string(id)
               : std::string("no such application");
}

int not_found(std::string_view id) {
  fprintf(stderr, "%s: %s\n", kProg, no_such_app(id).c_str());
  return kExitFailure;
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
    if (static_cast<unsigned char>(s[i]) == 0xC2 &&
        static_cast<unsigned char>(s[i + 1]) <= 0x9F) {
      return true;
    }
  }
  return false;
}

bool is_alpha(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}
bool is_digit(char ch) { return ch >= '0' && ch <= '9'; }
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
    if (!is_alpha(ch) && !is_digit(ch) &&
        kAllowed.find(ch) == std::string_view::npos) {
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

// SECURITY.md R22: an absolute URI without fragment (RFC 6749 3.1.2) in
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

// Every check of `app add`, before the store is opened.
Client client_from_options(const Invocation& inv) {
  Client c;
  c.realm = inv.realm;

  auto name = inv.value("name");
  if (!name) throw UsageError("app add needs --name");
  if (name->empty() || utf8_chars(*name) > kMaxName || !valid_utf8(*name)) {
    throw UsageError("--name: must be 1 to 255 characters of UTF-8");
  }
  if (has_control(*name) || has_c1_control(*name)) {
    throw UsageError("--name: control characters are not allowed");
  }
  c.name = *name;

  auto grants = inv.values("grant");
  if (grants.empty()) throw UsageError("app add needs at least one --grant");
  for (auto& g : grants) {
    if (!one_of(g, kGrants, std::size(kGrants))) {
      throw UsageError("--grant: unknown grant type " + quoted(g) +
                       " (client_credentials, authorization_code, password, "
                       "refresh_token)");
    }
    push_unique(c.grant_types, std::move(g));
  }

  if (auto scope = inv.value("scope")) {
    if (!parse_scope(*scope, nullptr)) {
      throw UsageError("--scope: " + quoted(*scope) +
                       " is not a list of distinct scope tokens separated "
                       "by single spaces (RFC 6749 3.3)");
    }
    c.scope = *scope;
  }

  for (auto& uri : inv.values("redirect-uri")) {
    if (!valid_redirect_uri(uri)) {
      throw UsageError("--redirect-uri: " + quoted(uri) +
                       " is not an https URI, an http URI to 127.0.0.1 or "
                       "[::1], or a private-use scheme like "
                       "com.example.app:/cb, without fragment or userinfo");
    }
    push_unique(c.redirect_uris, std::move(uri));
  }

  c.confidential = !inv.has("public");
  if (auto method = inv.value("auth-method")) {
    if (!c.confidential) {
      throw UsageError(
          "--public and --auth-method exclude each other: a "
          "public client has no secret");
    }
    if (!one_of(*method, kAuthMethods, std::size(kAuthMethods))) {
      throw UsageError("--auth-method: " + quoted(*method) +
                       " is neither client_secret_basic nor "
                       "client_secret_post");
    }
    c.auth_method = *method;
  }
  if (!c.confidential && c.allows_grant("client_credentials")) {
    throw UsageError(
        "--public: a public client cannot use the "
        "client_credentials grant (RFC 6749 4.4)");
  }

  if (auto ttl = inv.value("access-token-ttl")) {
    auto v = parse_ttl(*ttl);
    if (!v) {
      throw UsageError("--access-token-ttl: " + quoted(*ttl) +
                       " is not a number of seconds from 1 to 315360000");
    }
    c.access_token_ttl = *v;
  }
  return c;
}

int app_add(const Invocation& inv) {
  Client c = client_from_options(inv);

  auto store = open_store(inv, true);
  std::string secret;
  struct Wiper {
    std::string& s;
    ~Wiper() { wipe(s); }
  } wiper{secret};
  if (c.confidential) {
    secret = random_alnum(kClientSecretLength);
    c.secret_hash = hash_secret(secret);
  }
  c.created_at = static_cast<int64_t>(time(nullptr));
  {
    Txn txn = store->write();
    for (int tries = 0;; tries++) {
      if (tries == 3) throw std::runtime_error("no free client_id found");
      c.client_id = random_alnum(kClientIdLength);
      if (txn.put_client(c, true)) break;
    }
    txn.commit();
  }

  // jansson copies the secret: wipe that copy too before it is freed.
  Json secret_json(c.confidential
                       ? checked(json_stringn(secret.data(), secret.size()))
                       : json_null());
  struct JsonWiper {
    json_t* j;
    ~JsonWiper() {
      if (json_is_string(j)) {
        OPENSSL_cleanse(const_cast<char*>(json_string_value(j)),
                        json_string_length(j));
      }
    }
  } json_wiper{secret_json.get()};
  try {
    Json obj = client_json(c, secret_json.get());
    print_json(obj.get());
  } catch (const std::exception& e) {
    const std::string& id = c.client_id;
    throw std::runtime_error(std::string(e.what()) + "; application " + id +
                             " was created but its secret is lost: delete "
                             "it with 'oauth2-admin app delete " +
                             id + "'");
  }
  return 0;
}

int app_list(const Invocation& inv) {
  Json arr(checked(json_array()));
  if (auto store = open_store(inv, false)) {
    Txn txn = store->read();
    for (const Client& c : txn.list_clients(inv.realm)) {
      if (json_array_append_new(arr.get(), client_json(c).release()) != 0) {
        throw std::bad_alloc();
      }
    }
  }
  print_json(arr.get());
  return 0;
}

int app_show(const Invocation& inv) {
  const std::string& id = inv.operands[0];
  std::optional<Client> c;
  if (valid_client_id(id)) {
    if (auto store = open_store(inv, false)) {
      Txn txn = store->read();
      c = txn.get_client(inv.realm, id);
    }
  }
  if (!c) return not_found(id);
  print_json(client_json(*c).get());
  return 0;
}

int app_delete(const Invocation& inv) {
  const std::string& id = inv.operands[0];
  bool deleted = false;
  if (valid_client_id(id)) {
    if (auto store = open_store(inv, false)) {
      Txn txn = store->write();
      deleted = txn.delete_client(inv.realm, id);
      if (deleted) txn.commit();
    }
  }
  if (!deleted) return not_found(id);
  Json obj(checked(json_object()));
  set_member(obj.get(), "deleted", string_json(id));
  print_json(obj.get());
  return 0;
}

const OptionSpec kAppAddOptions[] = {
    {"name", true, false},
    {"grant", true, true},
    {"scope", true, false},
    {"redirect-uri", true, true},
    {"public", false, false},
    {"auth-method", true, false},
    {"access-token-ttl", true, false},
};

const char kAppAddUsage[] =
    "usage: oauth2-admin app add --name <name> --grant <grant> "
    "[--grant <grant> ...]\n"
    "           [--scope \"read write\"] [--redirect-uri <uri> ...] "
    "[--public]\n"
    "           [--auth-method client_secret_basic|client_secret_post]\n"
    "           [--access-token-ttl <seconds>]\n"
    "\n"
    "Registers an application and prints it as one JSON object:\n"
    "client_id, client_secret, name, client_type, grant_types, scope,\n"
    "redirect_uris, auth_method, access_token_ttl, created_at.  The secret\n"
    "is shown only here, once: the store keeps only a hash of it.\n"
    "\n"
    "  --name <name>              a label, 1 to 255 characters\n"
    "  --grant <grant>            a grant type the application may use:\n"
    "                             client_credentials, authorization_code,\n"
    "                             password or refresh_token; repeatable\n"
    "  --scope \"<scope> ...\"      the scopes it may obtain, space-separated\n"
    "                             (default: the server's "
    "oauth2_default_scope)\n"
    "  --redirect-uri <uri>       where the authorization endpoint may send\n"
    "                             the user back; repeatable.  https, http\n"
    "                             to 127.0.0.1 or [::1] (any port), or a\n"
    "                             private-use scheme like "
    "com.example.app:/cb;\n"
    "                             no fragment, userinfo or wildcard\n"
    "  --public                   a public client: no secret, and no\n"
    "                             client_credentials grant\n"
    "  --auth-method <method>     accept only this client authentication\n"
    "                             (default: either)\n"
    "  --access-token-ttl <s>     lifetime of its access tokens, 1 to\n"
    "                             315360000 seconds (default: the server's\n"
    "                             oauth2_access_token_ttl)\n";

const char kAppListUsage[] =
    "usage: oauth2-admin app list\n"
    "\n"
    "Prints the applications of the realm as a JSON array of the objects\n"
    "'app add' prints, without client_secret.\n";

const char kAppShowUsage[] =
    "usage: oauth2-admin app show <client_id>\n"
    "\n"
    "Prints one application as JSON, without its secret; exit 1 if there\n"
    "is none with this client_id.\n";

const char kAppDeleteUsage[] =
    "usage: oauth2-admin app delete <client_id>\n"
    "\n"
    "Deletes an application and every token issued to it, in one\n"
    "transaction: its tokens fail on the very next request.  Prints\n"
    "{\"deleted\": \"<client_id>\"}; exit 1 if there is no such "
    "application.\n";

const Command kAppCommands[] = {
    {"app add", "--name <n> --grant <g> ...", "register an application",
     kAppAddUsage, kAppAddOptions, std::size(kAppAddOptions), 0, 0, app_add},
    {"app list", "", "list the applications", kAppListUsage, nullptr, 0, 0, 0,
     app_list},
    {"app show", "<client_id>", "show one application", kAppShowUsage, nullptr,
     0, 1, 1, app_show},
    {"app delete", "<client_id>", "delete an application and its tokens",
     kAppDeleteUsage, nullptr, 0, 1, 1, app_delete},
};

}  // namespace

void add_app_commands(Commands& out) {
  for (const Command& c : kAppCommands) out.push_back(&c);
}

}  // namespace oauth2::admin
