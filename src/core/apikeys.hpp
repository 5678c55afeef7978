// Handshake API keys (seed 002): a credential of an application, of which
// it may hold any number.  Each is stored as a token record of type
// kApiKey under the TokenId of its value, indexed by its application (so
// deleting the application deletes its keys), with a family that the
// handshakes made with it share (so revoking the key ends them).

#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store.hpp"

namespace oauth2 {

struct ApiKeyInfo {
  std::string id;  // public: 16 hex digits, names the key in lists
  std::string client_id;
  std::string name;  // a label for people, may be empty
  int64_t created_at = 0;
  Family family{};
};

struct NewApiKey {
  ApiKeyInfo info;
  std::string key;  // shown once, never stored
  NewApiKey() = default;
  NewApiKey(NewApiKey&&) = default;  // moved, never copied: one clear copy
  NewApiKey& operator=(NewApiKey&&) = default;
  NewApiKey(const NewApiKey&) = delete;
  NewApiKey& operator=(const NewApiKey&) = delete;
  ~NewApiKey() { wipe(key); }
};

constexpr size_t kMaxApiKeyName = 100;

// nullopt if the application does not exist; throws std::invalid_argument
// for a name that is too long or not printable text.
std::optional<NewApiKey> create_api_key(Txn& txn, std::string_view realm,
                                        std::string_view client_id, std::string_view name,
                                        int64_t now);
// the application's keys, oldest first
std::vector<ApiKeyInfo> list_api_keys(Txn& txn, std::string_view realm, std::string_view client_id);
// deletes the key and every handshake made with it; false if no such key
bool revoke_api_key(Txn& txn, std::string_view realm, std::string_view client_id,
                    std::string_view id);
// the key whose value this is (the caller checks its application)
std::optional<ApiKeyInfo> find_api_key(Txn& txn, std::string_view realm, std::string_view key);

// {"id","name","client_id","created_at"} (created_at RFC 3339)
std::string api_key_json(const ApiKeyInfo& k, const std::string* key);

// RFC 3339 in UTC with a Z, to the second: 2025-01-02T10:00:00Z
std::string rfc3339(int64_t t);

}  // namespace oauth2
