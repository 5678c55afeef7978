// What the application pages do to the store: list, register, update,
// rotate a secret, delete.  A staff user is logged in and a POST has
// passed its CSRF check (web.cpp).  A new secret is shown once
// (secret_page()) and wiped.

#include <optional>
#include <string>
#include <vector>

#include "crypto.hpp"
#include "model.hpp"
#include "store.hpp"
#include "web_internal.hpp"

namespace oauth2::admin::web {

HttpResponse list_get(ServeContext& ctx, const Auth& auth) {
  std::vector<Client> apps;
  {
    Txn txn = ctx.store->read();
    apps = txn.list_clients(ctx.realm);
  }
  return list_page(apps, auth);
}

HttpResponse register_post(ServeContext& ctx, const Form& f, const Auth& auth) {
  AppForm v;
  Errors e;
  Client c;
  c.realm = ctx.realm;
  if (!read_app(f, true, v, e, c)) return register_page(400, v, e, auth);
  std::string secret;
  WipeOnExit wipe_secret(secret);
  create_client(*ctx.store, c, &secret);
  return secret_page(c, secret, true, auth);
}

std::optional<Client> load_app(ServeContext& ctx, const std::string& id) {
  if (!valid_client_id(id)) return std::nullopt;
  Txn txn = ctx.store->read();
  return txn.get_client(ctx.realm, id);
}

HttpResponse update_post(ServeContext& ctx, const std::string& id, const Form& f,
                         const Auth& auth) {
  // read, check and write in one change: no lost update
  Client c;
  Refusal refused = ctx.store->change([&](Txn& txn) -> Refusal {
    auto before = txn.get_client(ctx.realm, id);
    if (!before) return not_found(&auth);
    c = *before;
    AppForm v;
    Errors e;
    if (!read_app(f, false, v, e, c)) {
      return update_page(400, *before, v, e, auth);
    }
    if (!txn.put_client(c, false)) return not_found(&auth);
    txn.commit();
    return std::nullopt;
  });
  if (refused) return std::move(*refused);
  set_flash(auth, "The changes to \"" + c.name + "\" were saved.");
  return see_other(app_path(c, ""));
}

HttpResponse rotate_post(ServeContext& ctx, const std::string& id, const Auth& auth) {
  std::string secret;
  WipeOnExit wipe_secret(secret);
  Client c;
  Refusal refused = ctx.store->change([&](Txn& txn) -> Refusal {
    auto old = txn.get_client(ctx.realm, id);
    if (!old) return not_found(&auth);
    c = std::move(*old);
    if (!c.confidential) {
      return message(400, "No secret", "A public client has no secret to rotate.", &auth);
    }
    secret = new_client_secret(c);
    if (!txn.put_client(c, false)) return not_found(&auth);
    txn.commit();
    return std::nullopt;
  });
  if (refused) return std::move(*refused);
  return secret_page(c, secret, false, auth);
}

HttpResponse delete_post(ServeContext& ctx, const std::string& id, const Auth& auth) {
  std::string name;
  Refusal refused = ctx.store->change([&](Txn& txn) -> Refusal {
    auto c = txn.get_client(ctx.realm, id);
    if (!c) return not_found(&auth);
    name = c->name;
    if (!txn.delete_client(ctx.realm, id)) return not_found(&auth);
    txn.commit();
    return std::nullopt;
  });
  if (refused) return std::move(*refused);
  set_flash(auth, "The application \"" + name + "\" was deleted.");
  return see_other(std::string(kBase));
}

}  // namespace oauth2::admin::web
