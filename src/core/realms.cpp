#include "realms.hpp"

#include <stdexcept>

#include "store_records.hpp"

namespace oauth2 {

namespace {

constexpr std::string_view kRealmMeta = "realm:";
constexpr std::string_view kDeletingMeta = "realm-deleting:";

std::string realm_meta(std::string_view realm) {
  return std::string(kRealmMeta) + std::string(realm);
}

std::string deleting_meta(std::string_view realm) {
  return std::string(kDeletingMeta) + std::string(realm);
}

}  // namespace

bool realm_known(Txn& txn, std::string_view realm) {
  if (!valid_realm(realm)) return false;
  return realm == kDefaultRealm || txn.get_meta(realm_meta(realm)).has_value();
}

std::vector<std::string> list_realms(Txn& txn) {
  std::vector<std::string> out{kDefaultRealm};
  txn.scan_after(Db::kMeta, kRealmMeta, "", [&](std::string_view key, std::string_view) {
    std::string_view name = key.substr(kRealmMeta.size());
    if (valid_realm(name) && name != kDefaultRealm) out.emplace_back(name);
    return true;
  });
  return out;
}

bool realm_has_records(Txn& txn, std::string_view realm) {
  const std::string prefix = records::realm_prefix(realm);
  bool found = false;
  for (size_t i = 0; i < kDbCount && !found; i++) {
    const Db db = static_cast<Db>(i);
    if (db == Db::kMeta) continue;
    txn.scan_after(db, prefix, "", [&](std::string_view, std::string_view) {
      found = true;
      return false;
    });
  }
  return found;
}

AddRealm add_realm(Store& store, std::string_view realm, int64_t now, bool adopt) {
  if (!valid_realm(realm)) throw std::invalid_argument("invalid realm");
  if (realm == kDefaultRealm) return AddRealm::kExists;
  return store.change([&](Txn& txn) {
    if (txn.get_meta(realm_meta(realm))) return AddRealm::kExists;
    // a delete that stopped part way left them: the new site would
    // inherit the old one's users, applications and tokens
    if (txn.get_meta(deleting_meta(realm))) return AddRealm::kDeleting;
    if (!adopt && realm_has_records(txn, realm)) return AddRealm::kHasRecords;
    txn.put_meta(realm_meta(realm), std::to_string(now));
    txn.commit();
    return AddRealm::kAdded;
  });
}

bool begin_realm_delete(Store& store, std::string_view realm) {
  if (!valid_realm(realm) || realm == kDefaultRealm) return false;
  return store.change([&](Txn& txn) {
    const bool registered = txn.delete_meta(realm_meta(realm));
    if (txn.get_meta(deleting_meta(realm))) {
      if (registered) txn.commit();
      return true;
    }
    if (!registered && !realm_has_records(txn, realm)) return false;
    txn.put_meta(deleting_meta(realm), "1");
    txn.commit();
    return true;
  });
}

void finish_realm_delete(Store& store, std::string_view realm) {
  store.change([&](Txn& txn) {
    if (txn.delete_meta(deleting_meta(realm))) txn.commit();
  });
}

size_t delete_realm_records(Store& store, std::string_view realm, size_t batch) {
  const std::string prefix = records::realm_prefix(realm);
  return store.change([&](Txn& txn) {
    std::vector<std::pair<Db, std::string>> doomed;
    // meta is server-wide: of the realm it holds the user id sequence,
    // which stays, so that a realm added again under the name never gives
    // an old user's id (an OpenID Connect `sub`, never reassigned) to a
    // new user, and the applications' version (random bytes), which the
    // realm's next application changes
    for (size_t i = 0; i < kDbCount && doomed.size() < batch; i++) {
      const Db db = static_cast<Db>(i);
      if (db == Db::kMeta) continue;
      txn.scan_after(db, prefix, "", [&](std::string_view key, std::string_view) {
        doomed.emplace_back(db, std::string(key));
        return doomed.size() < batch;
      });
    }
    for (const auto& [db, key] : doomed) txn.del(db, key);
    if (!doomed.empty()) txn.commit();
    return doomed.size();
  });
}

}  // namespace oauth2
