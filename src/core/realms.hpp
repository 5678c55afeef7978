// The realms of a store.  Every record's key starts with its realm
// (store_records.hpp), so a realm is a namespace: nginx's oauth2_realm
// names the one a server{} uses.  "default" always exists; any other is
// registered by oauth2-admin realm add (meta "realm:<name>", its creation
// time), so that the CLI and the admin daemon refuse a misspelt name
// instead of filling a realm nobody serves.

#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "store.hpp"

namespace oauth2 {

// "default", or registered
bool realm_known(Txn& txn, std::string_view realm);
// "default" first, then the registered realms in byte order
std::vector<std::string> list_realms(Txn& txn);
// Whether any record of realm is in the store (its user id sequence is
// not a record: it outlives the realm).  Once the realm is unregistered:
// a delete that stopped part way, or what nginx wrote meanwhile.
bool realm_has_records(Txn& txn, std::string_view realm);
// Registers realm.  kExists: it is registered ("default" always is);
// kDeleting: a delete of the realm was begun and not finished (finish it:
// begin_realm_delete, delete_realm_records, finish_realm_delete);
// kHasRecords: records of the realm are in the store and no delete of it
// was begun (nginx served the name before it was registered, or after its
// delete finished): registered with them only if adopt.  Throws
// std::invalid_argument for an invalid name.
enum class AddRealm { kAdded, kExists, kDeleting, kHasRecords };
AddRealm add_realm(Store& store, std::string_view realm, int64_t now, bool adopt = false);
// Begins realm's delete: unregisters it and marks it as being deleted
// (meta "realm-deleting:<name>"), so that add_realm refuses it until
// finish_realm_delete, whatever stops the delete part way.  false if it
// was neither registered, nor being deleted, nor has records.
bool begin_realm_delete(Store& store, std::string_view realm);
// Ends the mark of begin_realm_delete, once delete_realm_records found
// nothing more to delete.
void finish_realm_delete(Store& store, std::string_view realm);
// Deletes at most batch records of realm, in every database, in one
// change: how many.  0 once none is left.  Other realms are untouched and
// never wait for more than one such batch.  Cluster mode: a batch etcd
// refuses as too large has its tokens revoked first (Store::change: not
// in the count, Store::revoked_in_rounds has them); still too large, it
// throws (is_too_large).
size_t delete_realm_records(Store& store, std::string_view realm, size_t batch);

}  // namespace oauth2
