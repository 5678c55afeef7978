// The API keys of an application (the credential of the handshake API,
// docs/compat.md, seed 002; src/core/apikeys.hpp), under the applications
// API and with its rule:
// staff users and application tokens holding the "admin" scope.
//
//   GET    /api/applications/<client_id>/api-keys/            the keys,
//                                                             oldest first
//   POST   /api/applications/<client_id>/api-keys/            {"name"};
//                                                             201 with the
//                                                             key, once
//   DELETE /api/applications/<client_id>/api-keys/<key_id>/   the key and
//                                                             its handshakes
//
// The list is a plain JSON array (an application holds a handful of
// keys), never with a key's value: the store keeps only its SHA-256.

#include <ctime>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "api.hpp"
#include "apikeys.hpp"
#include "cli.hpp"
#include "codec.hpp"
#include "model.hpp"
#include "store.hpp"

namespace oauth2::admin {
namespace {

// The name of a new key, with DRF's messages; an absent one is empty.
std::string read_name(json_t* body, FieldErrors& errors) {
  std::string s;
  if (get_string(body, "name", errors, &s) != Got::kOk) return s;
  if (!check_max_chars(s, kMaxApiKeyName, "name", errors)) return s;
  if (s.size() > kMaxApiKeyName) {
    errors.add("name", "Ensure this field has no more than " + std::to_string(kMaxApiKeyName) +
                           " bytes of UTF-8.");
  } else if (has_control(s) || has_c1_control(s)) {
    errors.add("name", "Control characters are not allowed.");
  }
  return s;
}

HttpResponse list_keys(ServeContext& ctx, const std::string& id) {
  Json arr(checked(json_array()));
  {
    Txn txn = ctx.store->read();
    if (!txn.get_client(ctx.realm, id)) return not_found();
    for (const ApiKeyInfo& k : list_api_keys(txn, ctx.realm, id)) {
      append_item(arr.get(), api_key_object(k, nullptr).release());
    }
  }
  return HttpResponse::json(200, arr.get());
}

HttpResponse create_key(ServeContext& ctx, const HttpRequest& req, const std::string& id) {
  {
    Txn txn = ctx.store->read();  // DRF looks the parent up first
    if (!txn.get_client(ctx.realm, id)) return not_found();
  }
  // every field is optional: no body at all is an empty object
  Json body;
  if (!req.body.empty()) {
    HttpResponse error;
    body = parse_json_object(req, &error);
    if (!body) return error;
  }
  FieldErrors errors;
  std::string name = body ? read_name(body.get(), errors) : std::string();
  if (!errors.empty()) return errors.response();

  std::optional<NewApiKey> nk;
  Refusal refused = ctx.store->change([&](Txn& txn) -> Refusal {
    nk.reset();  // an earlier run's key, never stored: wiped
    try {
      nk = create_api_key(txn, ctx.realm, id, name, static_cast<int64_t>(time(nullptr)));
    } catch (const std::invalid_argument& e) {  // the core's own rule
      FieldErrors invalid;
      invalid.add("name", e.what());
      return invalid.response();
    }
    if (!nk) return not_found();
    txn.commit();
    return std::nullopt;
  });
  if (refused) return std::move(*refused);
  Json obj = api_key_object(nk->info, &nk->key);
  WipeJsonOnExit wipe_key(json_object_get(obj.get(), "api_key"));
  // the dump of obj is in r.body only; http.cpp wipes it once sent
  return HttpResponse::json(201, obj.get());
}

HttpResponse revoke_key(ServeContext& ctx, const std::string& id, const std::string& key_id) {
  Refusal refused = ctx.store->change([&](Txn& txn) -> Refusal {
    if (!txn.get_client(ctx.realm, id) || !revoke_api_key(txn, ctx.realm, id, key_id)) {
      return not_found();
    }
    txn.commit();
    return std::nullopt;
  });
  if (refused) return std::move(*refused);
  return no_content();
}

const ApiView kKeyList = {"Api Key List",
                          "List the application's API keys, or make one (shown once).",
                          "GET, POST, HEAD, OPTIONS"};
const ApiView kKeyInstance = {"Api Key Instance", "Revoke an API key.", "DELETE, OPTIONS"};

}  // namespace

HttpResponse api_keys_api(ServeContext& ctx, const HttpRequest& req, const Caller& caller,
                          const std::string& client_id, const std::optional<std::string>& key_id) {
  if (!caller.acts_as_staff()) return denied(caller);  // as apps_api
  const std::string& m = req.method;
  if (!valid_client_id(client_id)) return not_found();
  if (!key_id) {
    if (m == "GET" || m == "HEAD") return list_keys(ctx, client_id);
    if (m == "POST") return create_key(ctx, req, client_id);
    if (m == "OPTIONS") return options_response(kKeyList);
    return method_not_allowed(req, kKeyList);
  }
  if (m == "DELETE") return revoke_key(ctx, client_id, *key_id);
  if (m == "OPTIONS") return options_response(kKeyInstance);
  return method_not_allowed(req, kKeyInstance);
}

}  // namespace oauth2::admin
