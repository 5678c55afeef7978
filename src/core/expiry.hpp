// Removing what has expired (access and refresh tokens, codes, sessions,
// handshakes) without cron: bounded rounds through the one write path,
// resuming where the last round stopped, so that no round holds the
// writer long and a full pass over ten million records costs no more per
// round than a pass over a thousand.

#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "store.hpp"

namespace oauth2 {

struct SweepRound {
  size_t removed = 0;
  size_t scanned = 0;
  bool finished = false;  // it reached the last record
  std::string last;       // the last key it looked at: where the next
                          // round starts
};

// One round in txn (a change): looks at up to scan_limit token records
// after the key `after` (empty: from the first), in realm if not empty,
// and deletes up to batch of those expired at now, with their index
// entries.  Records made after pass_start (the time the pass over the
// store began; a day ahead of now at most) are passed over, left to the
// next pass.  The caller commits.
SweepRound sweep_expired(Txn& txn, std::string_view realm, std::string_view after, int64_t now,
                         size_t batch, size_t scan_limit, int64_t pass_start);

// The background expiry of one process (oauth2_expiry_cleanup).  One
// process at a time holds a lease in the store; it renews it on each round,
// and another takes it over once it has lapsed for lease_ttl seconds (a
// worker that died, or the old workers of a reload).  A round by the
// holder removes up to batch expired records where the last round
// stopped.
struct ExpiryRound {
  bool held = false;  // this process holds the lease (and swept)
  size_t removed = 0;
  size_t scanned = 0;
  bool more = false;  // the pass over the store is not finished
};
ExpiryRound expiry_round(Store& store, std::string_view owner, int64_t now, int64_t lease_ttl,
                         size_t batch);

// Gives the lease up (a worker that exits), if owner holds it.
void expiry_release(Store& store, std::string_view owner);

// meta keys of the lease and of where the sweep stands
constexpr const char* kExpiryLeaseMeta = "expiry_lease";
constexpr const char* kExpiryCursorMeta = "expiry_cursor";
constexpr const char* kExpiryPassMeta = "expiry_pass";  // when the pass began

}  // namespace oauth2
