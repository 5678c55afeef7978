#include "expiry.hpp"

#include <vector>

#include "store_records.hpp"

namespace oauth2 {

namespace {

// The lease record: "<owner> <until>".
struct Lease {
  std::string owner;
  int64_t until = 0;
};

std::optional<Lease> read_lease(Txn& txn) {
  auto v = txn.get_meta(kExpiryLeaseMeta);
  if (!v) return std::nullopt;
  size_t sp = v->find(' ');
  if (sp == std::string::npos) return std::nullopt;
  Lease l;
  l.owner = v->substr(0, sp);
  l.until = std::strtoll(v->c_str() + sp + 1, nullptr, 10);
  return l;
}

}  // namespace

SweepRound sweep_expired(Txn& txn, std::string_view realm, std::string_view after, int64_t now,
                         size_t batch, size_t scan_limit) {
  SweepRound round;
  struct Doomed {
    std::string realm;
    TokenId id;
  };
  std::vector<Doomed> doomed;
  round.finished = true;
  const std::string prefix = realm.empty() ? std::string() : records::realm_prefix(realm);
  txn.scan_after(Db::kTokens, prefix, after, [&](std::string_view key, std::string_view rec) {
    if (round.scanned == scan_limit || doomed.size() == batch) {
      round.finished = false;
      return false;
    }
    round.scanned++;
    round.last = std::string(key);
    std::string_view key_realm;
    TokenId id;
    auto t = records::decode_token(rec);
    if (t && now >= t->expires_at && records::split_token_key(key, &key_realm, &id)) {
      doomed.push_back({std::string(key_realm), id});
    }
    return true;
  });
  for (const Doomed& d : doomed) {
    // read again in the change: a record rewritten meanwhile conflicts
    auto t = txn.get_token(d.realm, d.id);
    if (t && now >= t->expires_at && txn.delete_token(d.realm, d.id)) round.removed++;
  }
  return round;
}

ExpiryRound expiry_round(Store& store, std::string_view owner, int64_t now, int64_t lease_ttl,
                         size_t batch) {
  return store.change([&](Txn& txn) {
    ExpiryRound out;
    auto lease = read_lease(txn);
    // another's, unless it ends further off than a lease runs: dated by a
    // clock that was ahead (stepped back since, its holder killed) or
    // written by hand, it would stop expiry until that date
    if (lease && lease->owner != owner && lease->until > now && lease->until <= now + lease_ttl) {
      return out;
    }
    out.held = true;
    txn.put_meta(kExpiryLeaseMeta, std::string(owner) + " " + std::to_string(now + lease_ttl));
    std::string cursor = txn.get_meta(kExpiryCursorMeta).value_or("");
    SweepRound r = sweep_expired(txn, "", cursor, now, batch, batch * 10);
    txn.put_meta(kExpiryCursorMeta, r.finished ? std::string() : r.last);
    out.removed = r.removed + txn.revoked_first();
    out.scanned = r.scanned;
    out.more = !r.finished;
    txn.commit();
    return out;
  });
}

void expiry_release(Store& store, std::string_view owner) {
  store.change([&](Txn& txn) {
    auto lease = read_lease(txn);
    if (!lease || lease->owner != owner) return;
    txn.delete_meta(kExpiryLeaseMeta);
    txn.commit();
  });
}

}  // namespace oauth2
