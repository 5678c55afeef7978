// One change to the store, as the committer applies it: the keys it read
// and what it saw there, the key ranges whose contents it relied on, and
// the records it writes or deletes.  Built by Txn (store.hpp) while
// ordinary core code runs against a snapshot; applied by the Committer
// (committer.hpp) only if every read still holds, so that a decision is
// never applied on stale reads.  Nothing here is LMDB-specific: the same
// change is a compare-and-swap transaction for a distributed store.

#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto.hpp"

namespace oauth2 {

// The store's databases.  Every key starts with its realm (store_records).
enum class Db : uint8_t {
  kMeta,
  kClients,
  kTokens,
  kClientTokens,
  kUsers,
  kUsernames,
  kUserTokens,
  kFamilyTokens,
  kEmails,
  kAccountLocks,
};
constexpr size_t kDbCount = 10;
// its LMDB database's name, and its part of an etcd key (etcd.hpp)
const char* db_name(Db db);

struct Change {
  // a key read, and the value it had (nullopt: absent)
  struct Read {
    Db db;
    std::string key;
    std::optional<std::string> seen;
  };
  // a range read whole: the SHA-256 of every (key, value) under prefix
  struct Scan {
    Db db;
    std::string prefix;
    size_t suffix_len;  // the keys' length after prefix; 0: any
    Digest seen;
  };
  // a record written, or deleted (value nullopt)
  struct Write {
    Db db;
    std::string key;
    std::optional<std::string> value;
  };

  std::vector<Read> reads;
  std::vector<Scan> scans;
  std::vector<Write> writes;
  // cluster mode: the mirror's etcd revision the snapshot had (cluster.hpp)
  int64_t base_revision = 0;

  bool empty() const { return writes.empty(); }
};

// The digest a Scan records, fed one (key, value) at a time.
class ScanDigest {
 public:
  void add(std::string_view key, std::string_view value) {
    for (std::string_view s : {key, value}) {
      uint64_t n = s.size();
      buf_.append(reinterpret_cast<const char*>(&n), sizeof(n));
      buf_.append(s);
    }
  }
  Digest done() const { return sha256(buf_); }

 private:
  std::string buf_;
};

}  // namespace oauth2
