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
#include "unicode.hpp"

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

// Every field's errors at once, in the form's order, as a DRF serializer
// reports them: {"username": [...], "email": [...]}
class FieldErrors {
 public:
  FieldErrors() : j_(json_object()) {}
  void add(const char* field, const char* message) {
    json_t* a = json_object_get(j_.get(), field);
    if (!a) {
      a = json_array();
      json_object_set_new(j_.get(), field, a);
    }
    json_array_append_new(a, json_string(message));
  }
  std::optional<Response> response() const {
    if (json_object_size(j_.get()) == 0) return std::nullopt;
    Response r;
    r.status = 400;
    r.body = json_text(j_.get());
    return r;
  }

 private:
  Json j_;
};

// DRF's BooleanField: its TRUE_VALUES and FALSE_VALUES, as a form sends
// them (strings), and nothing else
std::optional<bool> parse_bool(std::string_view v) {
  for (std::string_view t :
       {"t", "T", "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", "1"}) {
    if (v == t) return true;
  }
  for (std::string_view f : {"f", "F", "n", "N", "no", "No", "NO", "false", "False", "FALSE", "off",
                             "Off", "OFF", "0"}) {
    if (v == f) return false;
  }
  return std::nullopt;
}

// The request as Django REST framework reads seed 001's form (README):
// its refusals are DRF's {"detail"}, 405 naming the method and 415 the
// media type.  The seed posts application/x-www-form-urlencoded only.  A
// query string is ignored, as DRF ignores it on a POST: R3 (RFC 6749
// 2.3.1, 3.2) is the token endpoint's, and nothing here reads the query.
std::optional<Response> read_form(const Request& req, Form& form) {
  if (sv(req.c.method) != "POST") return drf_method_not_allowed(req);
  if (req.c.content_type_count != 1 ||
      !iequals(media_type(sv(req.c.content_type)), "application/x-www-form-urlencoded")) {
    return drf_unsupported_media_type(req);
  }
  if (req.c.body.len > kMaxBody) return too_large_response(req.loc.endpoint);
  switch (form.parse(sv(req.c.body))) {
    case Form::Status::kOk: return std::nullopt;
    case Form::Status::kDuplicate: return drf_detail(400, "A parameter is repeated.");
    case Form::Status::kTooMany: return drf_detail(400, "Too many parameters.");
    case Form::Status::kMalformed: break;
  }
  return drf_detail(400, "The request body is not valid form encoding.");
}

// The registration form, checked field by field in Django's order.
struct Registration {
  User user;
  std::string password;
  ~Registration() { wipe(password); }
};

// A form value without the spaces around it (Python's str.strip()), or
// nullopt when nothing is left
std::optional<std::string_view> stripped(std::optional<std::string_view> v) {
  if (v) v = py_strip(*v);
  if (v && v->empty()) return std::nullopt;
  return v;
}

// A field as DRF's CharField reads it (trim_whitespace=True,
// allow_blank=False): absent, "This field is required."; empty once
// stripped (Form::get() takes an empty value for an absent one), "This
// field may not be blank."; else the value stripped.
std::optional<std::string_view> char_field(const Form& form, const char* name,
                                           FieldErrors& errors) {
  const std::vector<std::string_view> sent = form.all(name);  // a repeat is refused
  if (sent.empty()) {
    errors.add(name, "This field is required.");
    return std::nullopt;
  }
  std::string_view v = py_strip(sent.front());
  if (v.empty()) {
    errors.add(name, "This field may not be blank.");
    return std::nullopt;
  }
  return v;
}

// The username's own errors: DRF's max_length (code points; checked
// before the validator, as the users API does), Django's validator, and
// a taken name (UniqueValidator).
void check_username(Store& store, std::string_view realm, std::string_view name,
                    FieldErrors& errors) {
  if (code_points(name).size() > kMaxUsername) {
    errors.add("username", "Ensure this field has no more than 150 characters.");
  } else if (!valid_username(name) || !username_nfkc_stable(name)) {
    // Django would store a name NFKC changes normalized ("ﬁx" as "fix"):
    // without NFKC tables it is refused, with the validator's message
    errors.add("username",
               "Enter a valid username. This value may contain only letters, "
               "numbers, and @/./+/-/_ characters.");
  } else {
    // looked up before any hash (R88); the change checks again
    Txn txn = store.read();
    if (txn.get_user_by_username(realm, name)) {
      errors.add("username", "A user with that username already exists.");
    }
  }
}

// Every field's own errors in one answer, as DRF's serializer gives
// them, a taken username among them (UniqueValidator is the field's, as
// in the users API); then, once each field is valid, whether the two
// passwords match (a check of two fields, DRF's validate()).
std::optional<Response> read_registration(Store& store, std::string_view realm, const Form& form,
                                          Registration& reg) {
  FieldErrors errors;
  // the username and the password as DRF's CharField reads them:
  // stripped (str.strip(); /api/token/ strips the password it checks
  // too, so the hash stored is of that), not blank
  if (auto username = char_field(form, "username", errors)) {
    check_username(store, realm, *username, errors);
    reg.user.username = std::string(*username);
  }
  auto password = char_field(form, "password", errors);
  auto confirm = stripped(form.get("confirm_password"));
  if (password && password->size() > kMaxPasswordLen) {
    errors.add("password", "The password is too long.");
  }
  if (!confirm) errors.add("confirm_password", "Passwords do not match.");
  auto email = form.get("email");
  // the users API's rule (Django's EmailValidator, ASCII only): the
  // form decoder lets C1 controls through, which `user list` would print
  if (email && (email->size() > 254 || !valid_email(*email))) {
    errors.add("email", "Enter a valid email address.");
  }
  std::optional<bool> active = true;
  if (auto a = form.get("is_active")) {
    active = parse_bool(*a);
    if (!active) errors.add("is_active", "Must be a valid boolean.");
  }
  if (auto err = errors.response()) return err;
  if (*confirm != *password) return field_error("confirm_password", "Passwords do not match.");
  if (email) reg.user.email = std::string(*email);
  reg.user.is_active = *active;
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
  if (auto err = read_form(req, form)) return done(std::move(*err));
  Registration reg;
  if (auto err = read_registration(store, req.loc.realm, form, reg)) return done(std::move(*err));
  User& u = reg.user;

  // Django's validators (R88: what is cheap first, before any hash)
  auto problems =
      password_problems(req.loc.password_policy, reg.password, {u.username, "", "", u.email});
  if (!problems.empty()) return done(field_errors("password", problems));

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
