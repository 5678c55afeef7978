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
// kLeftovers: records of a realm of that name deleted part way remain
// (delete_realm_records first).  Throws std::invalid_argument for an
// invalid name.
enum class AddRealm { kAdded, kExists, kLeftovers };
AddRealm add_realm(Store& store, std::string_view realm, int64_t now);
// Unregisters realm (its records stay until delete_realm_records);
// false if it was not registered.
bool forget_realm(Store& store, std::string_view realm);
// Deletes at most batch records of realm, in every database, in one
// change: how many.  0 once none is left.  Other realms are untouched and
// never wait for more than one such batch.  Cluster mode: a batch etcd
// refuses as too large has its tokens revoked first (Store::change: not
// in the count, Store::revoked_in_rounds has them); still too large, it
// throws (is_too_large).
size_t delete_realm_records(Store& store, std::string_view realm, size_t batch);

}  // namespace oauth2
