#include "expiry.hpp"

#include <algorithm>
#include <cstdlib>
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

// How far past now the order bytes of a record made after a pass began
// may run (a clock a little ahead): such records are left to the next
// pass too.
constexpr int64_t kAheadMs = 86400 * 1000;

int64_t order_ms(const TokenId& id) {
  int64_t ms = 0;
  for (unsigned char b : id.order) ms = (ms << 8) | b;
  return ms;
}

// the position after which a scan of realm's records resumes at those
// whose order bytes are past ms
std::string order_position(std::string_view realm, int64_t ms) {
  std::string pos = records::realm_prefix(realm);
  for (int i = 5; i >= 0; i--) pos.push_back(static_cast<char>((ms + 1) >> (8 * i)));
  return pos;
}

}  // namespace

SweepRound sweep_expired(Txn& txn, std::string_view realm, std::string_view after, int64_t now,
                         size_t batch, size_t scan_limit, int64_t pass_start) {
  SweepRound round;
  struct Doomed {
    std::string realm;
    TokenId id;
  };
  std::vector<Doomed> doomed;
  const std::string prefix = realm.empty() ? std::string() : records::realm_prefix(realm);
  const int64_t fresh_from = pass_start * 1000, fresh_to = now * 1000 + kAheadMs;
  std::string from(after);
  for (bool skipped = true; skipped;) {
    skipped = false;
    round.finished = true;
    txn.scan_after(Db::kTokens, prefix, from, [&](std::string_view key, std::string_view rec) {
      if (round.scanned == scan_limit || doomed.size() == batch) {
        round.finished = false;
        return false;
      }
      std::string_view key_realm;
      TokenId id;
      const bool token = records::split_token_key(key, &key_realm, &id);
      // Keys sort by the time their records were made: those made since
      // the pass began are passed over, to the next pass.  Scanned, they
      // would keep the pass from ever ending while records are made
      // faster than it scans (and never reach what sorts after them: the
      // hashed ids, the realms that follow).
      if (token && !id.legacy && order_ms(id) > fresh_from && order_ms(id) <= fresh_to) {
        from = order_position(key_realm, fresh_to);
        round.last = from;
        skipped = true;
        return false;
      }
      round.scanned++;
      round.last = std::string(key);
      auto t = records::decode_token(rec);
      if (t && now >= t->expires_at && token) doomed.push_back({std::string(key_realm), id});
      return true;
    });
  }
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
    // when the pass began (a cursor of a release that kept none: now)
    int64_t pass_start = now;
    if (auto v = txn.get_meta(kExpiryPassMeta); v && !cursor.empty()) {
      pass_start = std::min(now, static_cast<int64_t>(std::strtoll(v->c_str(), nullptr, 10)));
    } else if (cursor.empty()) {
      txn.put_meta(kExpiryPassMeta, std::to_string(now));
    }
    SweepRound r = sweep_expired(txn, "", cursor, now, batch, batch * 10, pass_start);
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
