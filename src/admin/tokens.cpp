// oauth2-admin cleartokens: deletes expired tokens, as django-oauth-toolkit's
// management command of the same name does (SECURITY.md R82).  Write
// transactions are kept short (a batch each) so that nginx workers issuing
// tokens never wait long for the store's writer lock.

#include <ctime>

#include "cli.hpp"
#include "json.hpp"
#include "store.hpp"

namespace oauth2::admin {
namespace {

constexpr size_t kBatch = 5000;

int cleartokens(const Invocation& inv) {
  size_t total = 0;
  if (auto store = open_store(inv, false)) {
    const int64_t now = static_cast<int64_t>(time(nullptr));
    for (;;) {
      Txn txn = store->write();
      size_t n = txn.purge_expired(inv.realm, now, kBatch);
      txn.commit();
      total += n;
      if (n < kBatch) break;
    }
  }
  Json obj(checked(json_object()));
  set_member(obj.get(), "deleted", checked(json_integer(static_cast<json_int_t>(total))));
  print_json(obj.get());
  return 0;
}

const char kClearTokensUsage[] =
    "usage: oauth2-admin cleartokens\n"
    "\n"
    "Deletes the expired tokens of the realm, in batches of 5000 per\n"
    "transaction, and prints {\"deleted\": <count>}.  Run it from cron:\n"
    "expired tokens are already refused, this only bounds the store's\n"
    "size.\n";

const Command kTokenCommands[] = {
    {"cleartokens", "", "delete expired tokens", kClearTokensUsage, nullptr,
     0, 0, 0, cleartokens},
};

}  // namespace

void add_token_commands(Commands& out) {
  for (const Command& c : kTokenCommands) out.push_back(&c);
}

}  // namespace oauth2::admin
