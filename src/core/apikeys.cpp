#include "apikeys.hpp"

#include <algorithm>
#include <ctime>
#include <limits>
#include <stdexcept>

#include "codec.hpp"
#include "json.hpp"

namespace oauth2 {

namespace {

bool printable(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) >= 0x20 && c != 0x7f; });
}

std::optional<ApiKeyInfo> info_of(const Token& t) {
  if (t.type != TokenType::kApiKey) return std::nullopt;
  Json j(json_loadb(t.data.data(), t.data.size(), 0, nullptr));
  const char* id = json_string_value(json_object_get(j.get(), "id"));
  const char* name = json_string_value(json_object_get(j.get(), "name"));
  if (!id || !name) return std::nullopt;
  ApiKeyInfo k;
  k.id = id;
  k.name = name;
  k.client_id = t.client_id;
  k.created_at = t.issued_at;
  k.family = t.family;
  return k;
}

}  // namespace

std::string rfc3339(int64_t t) {
  time_t tt = static_cast<time_t>(t);
  struct tm tm;
  char buf[32];
  if (!gmtime_r(&tt, &tm) || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
    return "1970-01-01T00:00:00Z";
  }
  return buf;
}

std::optional<NewApiKey> create_api_key(Txn& txn, std::string_view realm,
                                        std::string_view client_id, std::string_view name,
                                        int64_t now) {
  if (name.size() > kMaxApiKeyName || !printable(name) ||
      !json_string_value(Json(json_stringn(name.data(), name.size())).get())) {
    throw std::invalid_argument("name must be printable UTF-8 of at most 100 bytes");
  }
  if (!txn.get_client(realm, client_id)) return std::nullopt;
  NewApiKey nk;
  unsigned char idb[8];
  random_bytes(idb, sizeof(idb));
  nk.info.id = hex_encode(idb, sizeof(idb));
  nk.info.client_id = std::string(client_id);
  nk.info.name = std::string(name);
  nk.info.created_at = now;
  random_bytes(nk.info.family.data(), nk.info.family.size());
  nk.key = random_token();

  Token t;
  t.type = TokenType::kApiKey;
  t.issued_at = now;
  t.expires_at = std::numeric_limits<int64_t>::max();
  t.client_id = nk.info.client_id;
  t.family = nk.info.family;
  Json data(json_object());
  json_object_set_new(data.get(), "id", json_string(nk.info.id.c_str()));
  json_object_set_new(data.get(), "name", json_stringn(nk.info.name.data(), nk.info.name.size()));
  t.data = json_text(data.get(), JSON_COMPACT);
  if (!txn.put_token(realm, token_id(nk.key), t)) {
    throw std::runtime_error("API key collision");  // 2^-256
  }
  return nk;
}

std::vector<ApiKeyInfo> list_api_keys(Txn& txn, std::string_view realm,
                                      std::string_view client_id) {
  std::vector<ApiKeyInfo> out;
  for (auto& [hash, t] : txn.client_tokens_of_type(realm, client_id, TokenType::kApiKey)) {
    if (auto k = info_of(t)) out.push_back(std::move(*k));
  }
  std::stable_sort(out.begin(), out.end(), [](const ApiKeyInfo& a, const ApiKeyInfo& b) {
    return a.created_at < b.created_at;
  });
  return out;
}

bool revoke_api_key(Txn& txn, std::string_view realm, std::string_view client_id,
                    std::string_view id) {
  for (auto& [hash, t] : txn.client_tokens_of_type(realm, client_id, TokenType::kApiKey)) {
    auto k = info_of(t);
    if (k && k->id == id) {
      txn.revoke_family(realm, t.family);  // the key and its handshakes
      txn.delete_token(realm, hash);       // in case the index missed it
      return true;
    }
  }
  return false;
}

std::optional<ApiKeyInfo> find_api_key(Txn& txn, std::string_view realm, std::string_view key) {
  auto t = txn.get_token(realm, token_id(key));
  if (!t) return std::nullopt;
  return info_of(*t);
}

std::string api_key_json(const ApiKeyInfo& k, const std::string* key) {
  Json j(json_object());
  json_object_set_new(j.get(), "id", json_string(k.id.c_str()));
  json_object_set_new(j.get(), "name", json_stringn(k.name.data(), k.name.size()));
  json_object_set_new(j.get(), "client_id", json_string(k.client_id.c_str()));
  json_object_set_new(j.get(), "created_at", json_string(rfc3339(k.created_at).c_str()));
  if (key) json_object_set_new(j.get(), "api_key", json_string(key->c_str()));
  return json_text(j.get());
}

}  // namespace oauth2
