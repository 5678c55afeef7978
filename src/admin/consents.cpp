// A user's remembered consents (src/core/consent.hpp): the grants of scopes
// to applications that the authorized-grants page shows the user, for the
// operator.
//
//   oauth2-admin consent list --user <username>
//   oauth2-admin consent revoke --user <username> --client <client_id>
//
// and in the admin daemon's API, staff only as the other user endpoints:
//
//   GET    /api/users/<id>/consents/              the consents, by client_id
//   DELETE /api/users/<id>/consents/<client_id>/  the consent and every token
//                                                 the user holds from it
//
// A consent is listed as {client_id, name, scope, granted_at, expires_at}
// (name: the application's, empty if it has none).  Revoking goes through
// store.change, so that in cluster mode it is replicated like any write.

#include <ctime>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api.hpp"
#include "apikeys.hpp"
#include "cli.hpp"
#include "consent.hpp"
#include "json.hpp"
#include "model.hpp"
#include "store.hpp"

namespace oauth2::admin {

using detail::revoke_consent;
using detail::user_consents;

namespace {

int64_t now_s() {
  return static_cast<int64_t>(time(nullptr));
}

// The user's live consents as a JSON array.
Json consents_json(Txn& txn, const std::string& realm, uint64_t user) {
  Json arr(checked(json_array()));
  for (const Token& t : user_consents(txn, realm, user, now_s())) {
    auto c = txn.get_client(realm, t.client_id);
    Json obj(checked(json_object()));
    set_member(obj.get(), "client_id", string_json(t.client_id));
    set_member(obj.get(), "name", string_json(c ? c->name : std::string()));
    set_member(obj.get(), "scope", string_json(t.scope));
    set_member(obj.get(), "granted_at", string_json(rfc3339(t.issued_at)));
    set_member(obj.get(), "expires_at", string_json(rfc3339(t.expires_at)));
    append_item(arr.get(), obj.release());
  }
  return arr;
}

std::string no_user(const std::string& name) {
  return "no user " + quoted(name);
}

int consent_list(const Invocation& inv) {
  const std::string name = inv.value("user").value_or("");
  auto store = open_store(inv, false);
  if (!store) return fail(no_user(name));
  Json arr;
  {
    Txn txn = store->read();
    auto u = txn.get_user_by_username(inv.realm, name);
    if (!u) return fail(no_user(name));
    arr = consents_json(txn, inv.realm, u->id);
  }
  print_json(arr.get());
  return 0;
}

int consent_revoke(const Invocation& inv) {
  const std::string name = inv.value("user").value_or("");
  const std::string client = inv.value("client").value_or("");
  auto store = open_store(inv, false);
  if (!store) return fail(no_user(name));
  std::optional<std::string> refused = store->change([&](Txn& txn) -> std::optional<std::string> {
    auto u = txn.get_user_by_username(inv.realm, name);
    if (!u) return no_user(name);
    if (!revoke_consent(txn, inv.realm, u->id, client)) {
      return "user " + quoted(name) + " has no consent for " + quoted(client);
    }
    txn.commit();
    return std::nullopt;
  });
  if (refused) return fail(*refused);
  Json obj(checked(json_object()));
  set_member(obj.get(), "revoked", json_true());
  set_member(obj.get(), "client_id", string_json(client));
  print_json(obj.get());
  return 0;
}

// --user and --client are required, --client a possible client_id
int checked_run(const Invocation& inv, bool client, int (*run)(const Invocation&)) {
  if (!inv.has("user") || inv.value("user")->empty()) throw UsageError("--user is required");
  if (client && (!inv.has("client") || !valid_client_id(*inv.value("client")))) {
    throw UsageError("--client: a client_id is required");
  }
  return run(inv);
}

const OptionSpec kListOptions[] = {{"user", true, false}};
const OptionSpec kRevokeOptions[] = {{"user", true, false}, {"client", true, false}};

const char kListUsage[] =
    "usage: oauth2-admin consent list --user <username>\n"
    "\n"
    "Prints the user's remembered consents (the applications it authorized\n"
    "on the consent page, which then skip it) as one JSON array, by\n"
    "client_id: {client_id, name, scope, granted_at, expires_at}.  Exit 1\n"
    "if there is no such user.\n";

const char kRevokeUsage[] =
    "usage: oauth2-admin consent revoke --user <username> --client <client_id>\n"
    "\n"
    "Deletes the user's consent to the application and every token the user\n"
    "holds from it (codes, access and refresh tokens), in one transaction:\n"
    "the next authorization asks the user again.  Prints {\"revoked\": true,\n"
    "\"client_id\": ...}; exit 1, changing nothing, if the user or the\n"
    "consent does not exist.\n";

const Command kConsentCommands[] = {
    {"consent list", "--user", "list a user's remembered consents", kListUsage, kListOptions,
     std::size(kListOptions), 0, 0,
     [](const Invocation& inv) { return checked_run(inv, false, consent_list); }},
    {"consent revoke", "--user --client", "revoke a consent and its tokens", kRevokeUsage,
     kRevokeOptions, std::size(kRevokeOptions), 0, 0,
     [](const Invocation& inv) { return checked_run(inv, true, consent_revoke); }},
};

const ApiView kConsentList = {"Consent List", "The applications the user has consented to.",
                              "GET, HEAD, OPTIONS"};
const ApiView kConsentInstance = {"Consent Instance",
                                  "Revoke the user's consent to one application, and the "
                                  "tokens it granted.",
                                  "DELETE, OPTIONS"};

}  // namespace

void add_consent_commands(Commands& out) {
  for (const Command& c : kConsentCommands) out.push_back(&c);
}

HttpResponse consents_api(ServeContext& ctx, const HttpRequest& req, const Caller& caller,
                          uint64_t user, const std::optional<std::string>& client_id) {
  if (!caller.acts_as_staff()) return denied(caller);
  const std::string& m = req.method;
  if (!client_id) {
    if (m == "OPTIONS") return options_response(kConsentList);
    if (m != "GET" && m != "HEAD") return method_not_allowed(req, kConsentList);
    Json arr;
    {
      Txn txn = ctx.store->read();
      if (!txn.get_user(ctx.realm, user)) return not_found();
      arr = consents_json(txn, ctx.realm, user);
    }
    return HttpResponse::json(200, arr.get());
  }
  if (m == "OPTIONS") return options_response(kConsentInstance);
  if (m != "DELETE") return method_not_allowed(req, kConsentInstance);
  Refusal refused = ctx.store->change([&](Txn& txn) -> Refusal {
    if (!txn.get_user(ctx.realm, user) || !revoke_consent(txn, ctx.realm, user, *client_id)) {
      return not_found();
    }
    txn.commit();
    return std::nullopt;
  });
  if (refused) return std::move(*refused);
  return no_content();
}

}  // namespace oauth2::admin
