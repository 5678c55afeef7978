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
  switch (add_realm(*store, name, now, inv.has("adopt"))) {
    case AddRealm::kAdded: break;
    case AddRealm::kExists: return fail("realm " + quoted(name) + " exists");
    case AddRealm::kDeleting:
      return fail("realm " + quoted(name) +
                  " is being deleted (its delete stopped part way): run `oauth2-admin realm "
                  "delete " +
                  name + "` to finish it first");
    case AddRealm::kHasRecords:
      return fail("records of the unregistered realm " + quoted(name) +
                  " are in the store (an nginx server{} named it with oauth2_realm before it "
                  "was added): `oauth2-admin realm add " +
                  name + " --adopt` registers the realm with them; `oauth2-admin realm delete " +
                  name + "` deletes them");
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

// The realm is unregistered and marked as being deleted first, so that
// the CLI and the daemon refuse it, and realm add refuses the name, from
// then on; then its records go, a batch per commit (halved while etcd
// refuses one as too large, in cluster mode), and the mark last.  A delete
// that stopped part way (interrupted, a store error) is finished by
// running it again.
int realm_delete(const Invocation& inv) {
  const std::string& name = realm_operand(inv);
  if (name == kDefaultRealm) return fail("the default realm cannot be deleted");
  auto store = open_store(inv, false);
  if (!store) return fail("no realm " + quoted(name));
  if (!begin_realm_delete(*store, name)) return fail("no realm " + quoted(name));
  size_t deleted = 0, batch = kDeleteBatch;
  const uint64_t revoked_before = store->revoked_in_rounds();
  while (size_t n = halving_while_too_large(
             batch, [&] { return delete_realm_records(*store, name, batch); })) {
    deleted += n;
  }
  finish_realm_delete(*store, name);
  deleted += store->revoked_in_rounds() - revoked_before;  // one each
  Json obj(checked(json_object()));
  set_member(obj.get(), "name", string_json(name));
  set_member(obj.get(), "deleted_records", checked(json_integer(static_cast<json_int_t>(deleted))));
  print_json(obj.get());
  return 0;
}

const char kRealmAddUsage[] =
    "usage: oauth2-admin realm add <name> [--adopt]\n\n"
    "Registers a realm: a site's own users, applications, tokens and keys\n"
    "in the shared store, served by the nginx server{} that names it with\n"
    "oauth2_realm <name>, and by the admin daemon to requests that carry\n"
    "X-OAuth2-Realm: <name>.  A name is 1 to 64 letters, digits, \".\", \"-\"\n"
    "or \"_\".  Prints {\"name\": <name>, \"created\": <unix time>}; exit 1 when\n"
    "it exists (the realm \"default\" always does), when a delete of a realm\n"
    "of that name stopped part way (realm delete finishes it), or when\n"
    "records of the name are in the store while it was never registered\n"
    "(nginx served it first): --adopt registers it with them.  User ids go\n"
    "on from an old realm's of the name: never one again.\n"
    "\n"
    "  --adopt    register a realm that nginx wrote records into before it\n"
    "             was added, keeping them\n";

const OptionSpec kRealmAddOptions[] = {{"adopt", false, false}};

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
    {"realm add", "<name> [--adopt]", "register a realm (a site)", kRealmAddUsage, kRealmAddOptions,
     std::size(kRealmAddOptions), 1, 1, realm_add},
    {"realm list", "", "list the realms", kRealmListUsage, nullptr, 0, 0, 0, realm_list},
    {"realm delete", "<name>", "delete a realm and all its records", kRealmDeleteUsage, nullptr, 0,
     1, 1, realm_delete},
};

}  // namespace

void add_realm_commands(Commands& out) {
  for (const Command& c : kRealmCommands) out.push_back(&c);
}

}  // namespace oauth2::admin
