// `oauth2-admin apikey ...`: the API keys of an application, the
// credential of the handshake API (docs/compat.md, seed 002;
// src/core/apikeys.hpp).  A key is printed once, by `apikey add`; the
// store keeps only its SHA-256.
// Deleting the application deletes its keys; revoking a key deletes it and
// every handshake made with it.

#include <ctime>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "apikeys.hpp"
#include "cli.hpp"
#include "codec.hpp"
#include "json.hpp"
#include "model.hpp"
#include "store.hpp"

namespace oauth2::admin {
namespace {

// The rules of create_api_key, checked before the store is opened, with
// app add's message for control characters (C1 ones included).
std::string name_from_options(const Invocation& inv) {
  std::string name = inv.value("name").value_or("");
  if (name.size() > kMaxApiKeyName || !valid_utf8(name)) {
    throw UsageError("--name: must be at most " + std::to_string(kMaxApiKeyName) +
                     " bytes of UTF-8");
  }
  if (has_control(name) || has_c1_control(name)) {
    throw UsageError("--name: control characters are not allowed");
  }
  return name;
}

int apikey_add(const Invocation& inv) {
  const std::string& id = inv.operands[0];
  const std::string name = name_from_options(inv);
  auto store = open_app_store(inv, id);
  if (!store) return fail(no_application(id));

  std::optional<NewApiKey> nk;
  // why the key was not created, or nullopt
  std::optional<std::string> refused = store->change([&](Txn& txn) -> std::optional<std::string> {
    nk.reset();  // an earlier run's key, never stored: wiped
    try {
      nk = create_api_key(txn, inv.realm, id, name, static_cast<int64_t>(time(nullptr)));
    } catch (const std::invalid_argument& e) {
      return std::string("--name: ") + e.what();
    }
    if (!nk) return no_application(id);
    txn.commit();
    return std::nullopt;
  });
  if (refused) return fail(*refused);
  try {
    Json obj = api_key_object(nk->info, &nk->key);
    WipeJsonOnExit wipe_key(json_object_get(obj.get(), "api_key"));
    print_json(obj.get());
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string(e.what()) + "; API key " + nk->info.id +
                             " was created but its value is "
                             "lost: revoke it with 'oauth2-admin apikey "
                             "revoke " +
                             id + " " + nk->info.id + "'");
  }
  return 0;
}

int apikey_list(const Invocation& inv) {
  const std::string& id = inv.operands[0];
  auto store = open_app_store(inv, id);
  if (!store) return fail(no_application(id));
  Json arr(checked(json_array()));
  {
    Txn txn = store->read();
    if (!txn.get_client(inv.realm, id)) return fail(no_application(id));
    for (const ApiKeyInfo& k : list_api_keys(txn, inv.realm, id)) {
      append_item(arr.get(), api_key_object(k, nullptr).release());
    }
  }
  print_json(arr.get());
  return 0;
}

int apikey_revoke(const Invocation& inv) {
  const std::string& id = inv.operands[0];
  const std::string& key_id = inv.operands[1];
  auto store = open_app_store(inv, id);
  if (!store) return fail(no_application(id));
  std::optional<std::string> refused = store->change([&](Txn& txn) -> std::optional<std::string> {
    if (!txn.get_client(inv.realm, id)) return no_application(id);
    if (!revoke_api_key(txn, inv.realm, id, key_id)) {
      return "application " + quoted(id) + " has no API key " + quoted(key_id);
    }
    txn.commit();
    return std::nullopt;
  });
  if (refused) return fail(*refused);
  Json obj(checked(json_object()));
  set_member(obj.get(), "revoked", json_true());
  set_member(obj.get(), "id", string_json(key_id));
  print_json(obj.get());
  return 0;
}

const OptionSpec kApiKeyAddOptions[] = {
    {"name", true, false},
};

const char kApiKeyAddUsage[] =
    "usage: oauth2-admin apikey add <client_id> [--name <name>]\n"
    "\n"
    "Creates an API key for the application, the credential of the\n"
    "handshake, and prints it as one JSON object: id, name, client_id,\n"
    "created_at, api_key.  The key is shown only here, once: the store\n"
    "keeps only its SHA-256.  An application may hold any number of keys.\n"
    "Exit 1 if there is no application with this client_id.\n"
    "\n"
    "  --name <name>    a label for people, at most 100 bytes of UTF-8\n"
    "                   without control characters (default: empty)\n";

const char kApiKeyListUsage[] =
    "usage: oauth2-admin apikey list <client_id>\n"
    "\n"
    "Prints the application's API keys, oldest first, as a JSON array of\n"
    "the objects 'apikey add' prints, without api_key.  Exit 1 if there is\n"
    "no application with this client_id.\n";

const char kApiKeyRevokeUsage[] =
    "usage: oauth2-admin apikey revoke <client_id> <key_id>\n"
    "\n"
    "Deletes the API key whose id 'apikey list' shows, and every handshake\n"
    "made with it, in one transaction.  Prints {\"revoked\": true, \"id\":\n"
    "\"<key_id>\"}; exit 1, changing nothing, if the application or its key\n"
    "does not exist.\n";

const Command kApiKeyCommands[] = {
    {"apikey add", "<client_id> [--name]", "create an API key (shown once)", kApiKeyAddUsage,
     kApiKeyAddOptions, std::size(kApiKeyAddOptions), 1, 1, apikey_add},
    {"apikey list", "<client_id>", "list an application's API keys", kApiKeyListUsage, nullptr, 0,
     1, 1, apikey_list},
    {"apikey revoke", "<client_id> <key_id>", "revoke an API key and its handshakes",
     kApiKeyRevokeUsage, nullptr, 0, 2, 2, apikey_revoke},
};

}  // namespace

void add_apikey_commands(Commands& out) {
  for (const Command& c : kApiKeyCommands) out.push_back(&c);
}

}  // namespace oauth2::admin
