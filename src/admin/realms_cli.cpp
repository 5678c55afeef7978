// `oauth2-admin realm ...`: the realms of a store (realms.hpp), one per
// site that nginx's oauth2_realm serves.

#include <ctime>
#include <iterator>
#include <string>

#include "cli.hpp"
#include "realms.hpp"
#include "store.hpp"

namespace oauth2::admin {
namespace {

// records deleted per commit by realm delete: small enough that the
// issuance of the other realms never waits long for the write lock
constexpr size_t kDeleteBatch = 1000;

const std::string& realm_operand(const Invocation& inv) {
  const std::string& name = inv.operands[0];
  if (!valid_realm(name)) {
    throw UsageError("invalid realm " + quoted(name) +
                     ": 1 to 64 letters, digits, \".\", \"-\" or \"_\"");
  }
  return name;
}

int realm_add(const Invocation& inv) {
  const std::string& name = realm_operand(inv);
  const int64_t now = static_cast<int64_t>(time(nullptr));
  auto store = open_store(inv, true);
  switch (add_realm(*store, name, now)) {
    case AddRealm::kAdded: break;
    case AddRealm::kExists: return fail("realm " + quoted(name) + " exists");
    case AddRealm::kLeftovers:
      return fail("records of a deleted realm " + quoted(name) +
                  " remain (its delete stopped part way): run `oauth2-admin realm delete " + name +
                  "` to finish it first");
  }
  Json obj(checked(json_object()));
  set_member(obj.get(), "name", string_json(name));
  set_member(obj.get(), "created", checked(json_integer(now)));
  print_json(obj.get());
  return 0;
}

int realm_list(const Invocation& inv) {
  std::vector<std::string> names{kDefaultRealm};
  if (auto store = open_store(inv, false)) {
    Txn txn = store->read();
    names = list_realms(txn);
  }
  print_json(Json(checked(strings_json(names))).get());
  return 0;
}

// The realm is unregistered first, so that the CLI and the daemon refuse
// it from then on; then its records go, a batch per commit (halved while
// etcd refuses one as too large, in cluster mode).  A delete that stopped
// part way (interrupted, a store error) is finished by running it again:
// the realm is no longer registered, but records of it remain.
int realm_delete(const Invocation& inv) {
  const std::string& name = realm_operand(inv);
  if (name == kDefaultRealm) return fail("the default realm cannot be deleted");
  auto store = open_store(inv, false);
  if (!store) return fail("no realm " + quoted(name));
  if (!forget_realm(*store, name)) {
    Txn txn = store->read();
    if (!realm_has_records(txn, name)) return fail("no realm " + quoted(name));
  }
  size_t deleted = 0, batch = kDeleteBatch;
  const uint64_t revoked_before = store->revoked_in_rounds();
  while (size_t n = halving_while_too_large(
             batch, [&] { return delete_realm_records(*store, name, batch); })) {
    deleted += n;
  }
  deleted += store->revoked_in_rounds() - revoked_before;  // one each
  Json obj(checked(json_object()));
  set_member(obj.get(), "name", string_json(name));
  set_member(obj.get(), "deleted_records", checked(json_integer(static_cast<json_int_t>(deleted))));
  print_json(obj.get());
  return 0;
}

const char kRealmAddUsage[] =
    "usage: oauth2-admin realm add <name>\n\n"
    "Registers a realm: a site's own users, applications, tokens and keys\n"
    "in the shared store, served by the nginx server{} that names it with\n"
    "oauth2_realm <name>, and by the admin daemon to requests that carry\n"
    "X-OAuth2-Realm: <name>.  A name is 1 to 64 letters, digits, \".\", \"-\"\n"
    "or \"_\".  Prints {\"name\": <name>, \"created\": <unix time>}; exit 1 when\n"
    "it exists (the realm \"default\" always does), or when records of a\n"
    "realm of that name whose delete stopped part way remain (realm delete\n"
    "finishes it).  User ids go on from the old realm's: never one again.\n";

const char kRealmListUsage[] =
    "usage: oauth2-admin realm list\n\n"
    "Prints the realms as a JSON array of names: \"default\" first, then\n"
    "those realm add registered.\n";

const char kRealmDeleteUsage[] =
    "usage: oauth2-admin realm delete <name>\n\n"
    "Deletes a realm and every record in it (users, applications, API\n"
    "keys, tokens, codes, sessions, handshakes, account locks), 1000 records\n"
    "per commit, while nginx and the daemon go on serving the other realms.\n"
    "The realm is unknown to oauth2-admin from the first step; remove its\n"
    "server{} from nginx.conf first, or what nginx writes meanwhile stays.\n"
    "A delete that stopped part way is finished by running it again.\n"
    "Prints {\"name\": <name>, \"deleted_records\": <n>}; exit 1 for\n"
    "\"default\" or a realm that is neither registered nor has records.\n";

const Command kRealmCommands[] = {
    {"realm add", "<name>", "register a realm (a site)", kRealmAddUsage, nullptr, 0, 1, 1,
     realm_add},
    {"realm list", "", "list the realms", kRealmListUsage, nullptr, 0, 0, 0, realm_list},
    {"realm delete", "<name>", "delete a realm and all its records", kRealmDeleteUsage, nullptr, 0,
     1, 1, realm_delete},
};

}  // namespace

void add_realm_commands(Commands& out) {
  for (const Command& c : kRealmCommands) out.push_back(&c);
}

}  // namespace oauth2::admin
