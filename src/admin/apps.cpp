// `oauth2-admin app ...`: the applications (OAuth 2 clients) of a realm.

#include <ctime>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "audience.hpp"
#include "cli.hpp"
#include "codec.hpp"
#include "crypto.hpp"
#include "json.hpp"
#include "model.hpp"
#include "store.hpp"

namespace oauth2::admin {
namespace {

std::string name_option(const Invocation& inv) {
  auto name = inv.value("name");
  if (!name) throw UsageError("app add needs --name");
  if (name->empty() || utf8_chars(*name) > kMaxName || !valid_utf8(*name)) {
    throw UsageError("--name: must be 1 to 255 characters of UTF-8");
  }
  if (has_control(*name) || has_c1_control(*name)) {
    throw UsageError("--name: control characters are not allowed");
  }
  return *name;
}

std::vector<std::string> grants_option(const Invocation& inv) {
  auto grants = inv.values("grant");
  if (grants.empty()) throw UsageError("app add needs at least one --grant");
  std::vector<std::string> out;
  for (auto& g : grants) {
    if (!one_of(g, kGrants, std::size(kGrants))) {
      throw UsageError("--grant: unknown grant type " + quoted(g) +
                       " (client_credentials, authorization_code, password, "
                       "refresh_token, urn:ietf:params:oauth:grant-type:device_code)");
    }
    push_unique(out, std::move(g));
  }
  return out;
}

// --redirect-uri, --post-logout-redirect-uri
std::vector<std::string> redirect_uris_option(const Invocation& inv, const char* option) {
  std::vector<std::string> out;
  for (auto& uri : inv.values(option)) {
    if (!valid_redirect_uri(uri)) {
      throw UsageError(std::string("--") + option + ": " + quoted(uri) +
                       " is not an https URI, an http URI to 127.0.0.1 or "
                       "[::1], or a private-use scheme like "
                       "com.example.app:/cb, without fragment or userinfo");
    }
    push_unique(out, std::move(uri));
  }
  return out;
}

// --resource: RFC 8707 resources the application's tokens may be for
std::vector<std::string> resources_option(const Invocation& inv) {
  std::vector<std::string> out;
  for (auto& uri : inv.values("resource")) {
    if (!valid_resource(uri)) {
      throw UsageError("--resource: " + quoted(uri) +
                       " is not an absolute URI without a fragment (at most " +
                       std::to_string(kMaxResourceLen) + " printable characters)");
    }
    push_unique(out, std::move(uri));
  }
  if (out.size() > kMaxResources) {
    throw UsageError("--resource: at most " + std::to_string(kMaxResources) + " resources");
  }
  return out;
}

// --auth-method; "" (either) when absent.  A public client has no secret
// to authenticate with.
std::string auth_method_option(const Invocation& inv, bool confidential) {
  auto method = inv.value("auth-method");
  if (!method) return "";
  if (!confidential) {
    throw UsageError(
        "--public and --auth-method exclude each other: a "
        "public client has no secret");
  }
  if (!one_of(*method, kAuthMethods, std::size(kAuthMethods))) {
    throw UsageError("--auth-method: " + quoted(*method) +
                     " is neither client_secret_basic nor "
                     "client_secret_post");
  }
  return *method;
}

// Every check of `app add`, before the store is opened.
Client client_from_options(const Invocation& inv) {
  Client c;
  c.realm = inv.realm;
  c.name = name_option(inv);
  c.grant_types = grants_option(inv);
  if (auto scope = scope_option(inv)) c.scope = *scope;
  c.redirect_uris = redirect_uris_option(inv, "redirect-uri");
  c.post_logout_redirect_uris = redirect_uris_option(inv, "post-logout-redirect-uri");
  if (auto a = inv.value("id-token-alg")) {
    if (*a != "RS256" && *a != "ES256" && *a != "EdDSA") {
      throw UsageError("--id-token-alg: " + quoted(*a) + " is not RS256, ES256 or EdDSA");
    }
    c.id_token_alg = *a;
  }
  c.resources = resources_option(inv);
  c.confidential = !inv.has("public");
  c.auth_method = auth_method_option(inv, c.confidential);
  if (!c.confidential && c.allows_grant("client_credentials")) {
    throw UsageError(
        "--public: a public client cannot use the "
        "client_credentials grant (RFC 6749 4.4)");
  }
  if (auto ttl = ttl_option(inv, "access-token-ttl")) {
    c.access_token_ttl = *ttl;
  }
  if (auto f = inv.value("access-token-format")) {
    if (*f != "jwt" && *f != "opaque") {
      throw UsageError("--access-token-format: " + quoted(*f) + " is neither jwt nor opaque");
    }
    c.access_token_format = *f;
  }
  c.first_party = inv.has("first-party");
  c.dpop_bound_access_tokens = inv.has("require-dpop");
  return c;
}

int app_add(const Invocation& inv) {
  Client c = client_from_options(inv);

  auto store = open_store(inv, true);
  std::string secret;
  WipeOnExit wiper{secret};
  create_client(*store, c, &secret);

  // jansson copies the secret: wipe that copy too before it is freed.
  Json secret_json(c.confidential ? checked(json_stringn(secret.data(), secret.size()))
                                  : json_null());
  WipeJsonOnExit json_wiper{secret_json.get()};
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
      append_item(arr.get(), client_json(c).release());
    }
  }
  print_json(arr.get());
  return 0;
}

int app_show(const Invocation& inv) {
  const std::string& id = inv.operands[0];
  std::optional<Client> c;
  if (auto store = open_app_store(inv, id)) {
    Txn txn = store->read();
    c = txn.get_client(inv.realm, id);
  }
  if (!c) return fail(no_application(id));
  print_json(client_json(*c).get());
  return 0;
}

int app_delete(const Invocation& inv) {
  const std::string& id = inv.operands[0];
  bool deleted = false;
  if (auto store = open_app_store(inv, id)) {
    deleted = store->change([&](Txn& txn) {
      if (!txn.delete_client(inv.realm, id)) return false;
      txn.commit();
      return true;
    });
  }
  if (!deleted) return fail(no_application(id));
  Json obj(checked(json_object()));
  set_member(obj.get(), "deleted", string_json(id));
  print_json(obj.get());
  return 0;
}

// app disable / app enable: the application stays, with its tokens, API
// keys and handshakes, but none of them is honoured while it is disabled
// (the validation path reads the flag from the record's header).
int app_set_disabled(const Invocation& inv, bool disabled) {
  const std::string& id = inv.operands[0];
  bool done = false;
  if (auto store = open_app_store(inv, id)) {
    done = store->change([&](Txn& txn) {
      auto c = txn.get_client(inv.realm, id);
      if (!c) return false;
      c->disabled = disabled;
      if (!txn.put_client(*c, false)) return false;
      txn.commit();
      return true;
    });
  }
  if (!done) return fail(no_application(id));
  Json obj(checked(json_object()));
  set_member(obj.get(), disabled ? "disabled" : "enabled", string_json(id));
  print_json(obj.get());
  return 0;
}

int app_disable(const Invocation& inv) {
  return app_set_disabled(inv, true);
}

// app update <client_id> --resource <uri> ...: sets its resources (none
// given: it has none); prints the application
int app_update(const Invocation& inv) {
  const std::string& id = inv.operands[0];
  std::vector<std::string> resources = resources_option(inv);
  std::optional<Client> updated;
  if (auto store = open_app_store(inv, id)) {
    updated = store->change([&](Txn& txn) -> std::optional<Client> {
      auto c = txn.get_client(inv.realm, id);
      if (!c) return std::nullopt;
      c->resources = resources;
      if (!txn.put_client(*c, false)) return std::nullopt;
      txn.commit();
      return c;
    });
  }
  if (!updated) return fail(no_application(id));
  print_json(client_json(*updated).get());
  return 0;
}
int app_enable(const Invocation& inv) {
  return app_set_disabled(inv, false);
}

const OptionSpec kAppAddOptions[] = {
    {"name", true, false},
    {"grant", true, true},
    {"scope", true, false},
    {"redirect-uri", true, true},
    {"resource", true, true},
    {"public", false, false},
    {"auth-method", true, false},
    {"access-token-ttl", true, false},
    {"access-token-format", true, false},
    {"first-party", false, false},
    {"require-dpop", false, false},
    {"post-logout-redirect-uri", true, true},
    {"id-token-alg", true, false},
};

const char kAppAddUsage[] =
    "usage: oauth2-admin app add --name <name> --grant <grant> "
    "[--grant <grant> ...]\n"
    "           [--scope \"read write\"] [--redirect-uri <uri> ...] "
    "[--public]\n"
    "           [--auth-method client_secret_basic|client_secret_post]\n"
    "           [--access-token-ttl <seconds>] "
    "[--access-token-format jwt|opaque]\n"
    "           [--first-party] [--resource <uri> ...] [--require-dpop]\n"
    "           [--post-logout-redirect-uri <uri> ...] [--id-token-alg <alg>]\n"
    "\n"
    "Registers an application and prints it as one JSON object:\n"
    "client_id, client_secret, name, client_type, grant_types, scope,\n"
    "redirect_uris, resources, auth_method, access_token_ttl,\n"
    "access_token_format, first_party, dpop_bound_access_tokens,\n"
    "post_logout_redirect_uris, id_token_signed_response_alg,\n"
    "created_at.  The secret\n"
    "is shown only here, once: the store keeps only a hash of it.\n"
    "\n"
    "  --name <name>              a label, 1 to 255 characters\n"
    "  --grant <grant>            a grant type the application may use:\n"
    "                             client_credentials, authorization_code,\n"
    "                             password, refresh_token or\n"
    "                             urn:ietf:params:oauth:grant-type:device_code;\n"
    "                             repeatable\n"
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
    "                             oauth2_access_token_ttl)\n"
    "  --access-token-format <f>  jwt: its access tokens are JWTs (RFC 9068)\n"
    "                             wherever a signing oauth2_jwt_key is set;\n"
    "                             opaque: never (default: the location's\n"
    "                             oauth2_access_token_format)\n"
    "  --first-party              the operator's own application (seed\n"
    "                             003's oauth2_jwt_token client, say): its\n"
    "                             users' tokens act at the admin API with\n"
    "                             the user's full rights, whatever their\n"
    "                             scope.  Without it, a user's token does\n"
    "                             there only what its scope allows: read,\n"
    "                             write, and admin for staff operations\n"
    "  --resource <uri>           an RFC 8707 resource its tokens may be\n"
    "                             asked for (the resource parameter); an\n"
    "                             absolute URI without fragment; repeatable,\n"
    "                             at most 8\n"
    "  --require-dpop             its token requests must carry a DPoP\n"
    "                             proof (RFC 9449 5.2): its access tokens\n"
    "                             are all bound to the client's key\n"
    "  --post-logout-redirect-uri <uri>\n"
    "                             where OpenID Connect's end-session\n"
    "                             endpoint may send the browser back;\n"
    "                             repeatable, the rules of --redirect-uri\n"
    "  --id-token-alg <alg>       RS256, ES256 or EdDSA: the algorithm of its\n"
    "                             id_tokens, when oauth2_jwt_key has a key\n"
    "                             of it (default: RS256 if there is one)\n";

const OptionSpec kAppUpdateOptions[] = {
    {"resource", true, true},
};

const char kAppUpdateUsage[] =
    "usage: oauth2-admin app update <client_id> [--resource <uri> ...]\n"
    "\n"
    "Sets the RFC 8707 resources an application's tokens may be asked for\n"
    "(no --resource: none).  Tokens already issued keep their audience.\n"
    "Prints the application as 'app show' does; exit 1 if there is no\n"
    "such application.  Other fields change through the admin API.\n"
    "\n"
    "  --resource <uri>           an absolute URI without fragment;\n"
    "                             repeatable, at most 8\n";

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

const char kAppDisableUsage[] =
    "usage: oauth2-admin app disable <client_id>\n"
    "\n"
    "Disables an application: it can no longer authenticate, and its\n"
    "tokens, API keys and handshakes are refused from the very next\n"
    "request, but they are kept (app enable restores them).  Prints\n"
    "{\"disabled\": \"<client_id>\"}; exit 1 if there is no such "
    "application.\n";

const char kAppEnableUsage[] =
    "usage: oauth2-admin app enable <client_id>\n"
    "\n"
    "Enables a disabled application again.  Prints {\"enabled\": "
    "\"<client_id>\"};\n"
    "exit 1 if there is no such application.\n";

const Command kAppCommands[] = {
    {"app add", "--name <n> --grant <g> ...", "register an application", kAppAddUsage,
     kAppAddOptions, std::size(kAppAddOptions), 0, 0, app_add},
    {"app list", "", "list the applications", kAppListUsage, nullptr, 0, 0, 0, app_list},
    {"app update", "<client_id> --resource", "set an application's resources", kAppUpdateUsage,
     kAppUpdateOptions, std::size(kAppUpdateOptions), 1, 1, app_update},
    {"app show", "<client_id>", "show one application", kAppShowUsage, nullptr, 0, 1, 1, app_show},
    {"app delete", "<client_id>", "delete an application and its tokens", kAppDeleteUsage, nullptr,
     0, 1, 1, app_delete},
    {"app disable", "<client_id>", "refuse an application and its tokens", kAppDisableUsage,
     nullptr, 0, 1, 1, app_disable},
    {"app enable", "<client_id>", "honour a disabled application again", kAppEnableUsage, nullptr,
     0, 1, 1, app_enable},
};

}  // namespace

void add_app_commands(Commands& out) {
  for (const Command& c : kAppCommands) out.push_back(&c);
}

}  // namespace oauth2::admin
