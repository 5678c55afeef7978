// Seed 001's two form endpoints: oauth2_register (username, password,
// confirm_password, is_active, email) and oauth2_login (email or username
// and password -> the token response of the configured application).

#include <memory>

#include "codec.hpp"
#include "crypto.hpp"
#include "endpoint_table.hpp"
#include "endpoint_util.hpp"
#include "json.hpp"
#include "password.hpp"
#include "password_policy.hpp"

namespace oauth2 {

using namespace detail;

namespace {

// DRF's shape of field errors: {"field": ["message", ...]}
Response field_errors(const char* field, const std::vector<std::string>& messages) {
  Json j(json_object());
  json_t* a = json_array();
  for (const std::string& m : messages) json_array_append_new(a, json_string(m.c_str()));
  json_object_set_new(j.get(), field, a);
  Response r;
  r.status = 400;
  r.body = json_text(j.get());
  return r;
}

Response field_error(const char* field, const char* message) {
  return field_errors(field, {message});
}

std::optional<bool> parse_bool(std::string_view v) {
  if (v == "true" || v == "True" || v == "1" || v == "on") return true;
  if (v == "false" || v == "False" || v == "0" || v == "off") return false;
  return std::nullopt;
}

// The registration form, checked field by field in Django's order.
struct Registration {
  User user;
  std::string password;
  ~Registration() { wipe(password); }
};

std::optional<Response> read_registration(const Form& form, Registration& reg) {
  auto username = form.get("username");
  auto password = form.get("password");
  auto confirm = form.get("confirm_password");
  if (!username) return field_error("username", "This field is required.");
  if (!valid_username(*username)) {
    return field_error("username",
                       "Enter a valid username. This value may contain only letters, "
                       "numbers, and @/./+/-/_ characters.");
  }
  if (!password) return field_error("password", "This field is required.");
  if (password->size() > kMaxPasswordLen) {
    return field_error("password", "The password is too long.");
  }
  if (!confirm || *confirm != *password) {
    return field_error("confirm_password", "Passwords do not match.");
  }
  if (auto e = form.get("email")) {
    // the users API's rule (Django's EmailValidator, ASCII only): the
    // form decoder lets C1 controls through, which `user list` would print
    if (e->size() > 254 || !valid_email(*e)) {
      return field_error("email", "Enter a valid email address.");
    }
    reg.user.email = std::string(*e);
  }
  reg.user.is_active = true;
  if (auto a = form.get("is_active")) {
    auto v = parse_bool(*a);
    if (!v) return field_error("is_active", "Must be a valid boolean.");
    reg.user.is_active = *v;
  }
  reg.user.username = std::string(*username);
  reg.password = std::string(*password);
  return std::nullopt;
}

std::string user_json(const User& u) {
  Json j(json_object());
  json_object_set_new(j.get(), "id", json_integer(static_cast<json_int_t>(u.id)));
  json_object_set_new(j.get(), "username", json_string(u.username.c_str()));
  json_object_set_new(j.get(), "email", json_stringn(u.email.data(), u.email.size()));
  json_object_set_new(j.get(), "is_active", json_boolean(u.is_active));
  return json_text(j.get());
}

}  // namespace

EndpointResult register_endpoint(Store& store, const Request& req) {
  Form form;
  if (auto err = check_http(req, form)) return done(std::move(*err));
  Registration reg;
  if (auto err = read_registration(form, reg)) return done(std::move(*err));
  User& u = reg.user;

  // Django's validators (R88: what is cheap first, before any hash)
  auto problems =
      password_problems(req.loc.password_policy, reg.password, {u.username, "", "", u.email});
  if (!problems.empty()) return done(field_errors("password", problems));

  // a taken name costs no hash either
  {
    Txn txn = store.read();
    if (txn.get_user_by_username(req.loc.realm, u.username)) {
      return done(field_error("username", "A user with that username already exists."));
    }
  }

  u.realm = req.loc.realm;
  u.date_joined = req.c.now;
  auto secret = std::make_shared<std::string>(reg.password);
  const unsigned iterations = req.loc.pbkdf2_iterations;
  auto write = [&store, secret, u, iterations]() mutable {
    WipeOnExit wiper(*secret);
    u.password = hash_password(*secret, iterations);  // the slow hash, in the pool
    return store.change([&u](Txn& txn) {
      User created = u;  // put_user assigns the id: a fresh copy on each run
      PutUser put = txn.put_user(created, true);
      if (put == PutUser::kUsernameTaken) {
        return field_error("username", "A user with that username already exists.");
      }
      if (put != PutUser::kOk) return field_error("username", "Invalid user.");
      txn.commit();
      Response r;
      r.status = 201;
      r.body = user_json(created);
      return r;
    });
  };
  // a write that failed: DRF's 503, as when the store is not open
  return pending_response(
      std::move(write), [] { return failure_response(OAUTH2_ENDPOINT_REGISTER, 503); }, true);
}

EndpointResult login_endpoint(Store& store, const Request& req) {
  Form form;
  if (auto err = check_http(req, form)) return done(std::move(*err));

  std::optional<Client> client;
  {
    Txn txn = store.read();
    client = txn.get_client(req.loc.realm, req.loc.login_client_id);
  }
  if (!client || client->disabled) {
    return done(oauth_error(500, "server_error",
                            client ? "The application of oauth2_login is disabled"
                                   : "The application of oauth2_login does not exist"));
  }
  // its tokens are Bearer: an application registered for DPoP-bound
  // tokens only gets none here (RFC 9449 5.2)
  if (client->dpop_bound_access_tokens) {
    Response r = oauth_error(400, "invalid_dpop_proof",
                             "The application of oauth2_login requires DPoP-bound tokens, "
                             "which this endpoint does not issue");
    r.refused = "DPoP required";
    return done(std::move(r));
  }
  auto password = form.get("password");
  auto username = form.get("username");
  auto email = form.get("email");
  if (!password || (!username && !email)) {
    return done(invalid_request("email or username, and password, are required"));
  }
  if (password->size() > kMaxPasswordLen) {
    return done(invalid_grant("Invalid credentials given."));
  }
  std::string login(username ? *username : *email);
  auto scope = grant_scope(*client, form.get("scope").value_or(""), req.loc.default_scope);
  if (!scope) {
    return done(oauth_error(400, "invalid_scope", "The requested scope is invalid or not allowed"));
  }
  return password_flow(
      store, IssueSettings(req), *client,
      oauth_error(500, "server_error", "The application of oauth2_login is disabled"),
      resolve_login(store, req.loc.realm, login, !username),
      std::make_shared<std::string>(*password), *scope);
}

}  // namespace oauth2
