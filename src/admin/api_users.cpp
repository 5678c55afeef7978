// The users API (docs/compat.md, seed 003), with DRF's shapes and
// Django's field rules:
//
//   GET    /api/users/        staff: the users, paginated
//   POST   /api/users/        staff; or anyone with --open-registration
//   GET    /api/users/<id>/   staff: anyone; a user: itself
//   PUT    /api/users/<id>/   the same; username and email required
//   PATCH  /api/users/<id>/   the same
//   DELETE /api/users/<id>/   staff
//   GET    /auth/me/          the user of the token
//
// Only staff set is_staff and is_active; from anyone else those fields are
// ignored, as unknown and read-only fields (id, date_joined) are.  Every
// write is checked in full first, then made in one transaction committed
// before the response (R70); a new password or a disabled user ends the
// user's tokens in that same transaction (R39).
//
// A token does what its scope allows (api_auth.hpp, R85): "read" to read
// oneself, "write" to change oneself (without "read" the change answers
// 204, not the record), "admin" for what only staff do.
// Changing one's own password needs the current one, checked like any
// sign-in (the account's lock, login.hpp); every new password meets the
// password policy (password_policy.hpp).

#include <algorithm>
#include <ctime>
#include <string>
#include <string_view>

#include "api.hpp"
#include "cli.hpp"
#include "codec.hpp"
#include "login.hpp"
#include "model.hpp"
#include "password.hpp"
#include "password_policy.hpp"
#include "store.hpp"

namespace oauth2::admin {
namespace {

constexpr size_t kMaxPassword = 4096;  // bytes hashed per attempt

constexpr const char* kUsernameTaken = "A user with that username already exists.";
constexpr const char* kUsernameInvalid =
    "Enter a valid username. This value may contain only letters, numbers, "
    "and @/./+/-/_ characters.";
constexpr const char* kRequired = "This field is required.";
constexpr const char* kBlank = "This field may not be blank.";
constexpr const char* kBadEmail = "Enter a valid email address.";
constexpr const char* kControl = "Control characters are not allowed.";

// The fields of a request body, each checked.
struct UserInput {
  std::optional<std::string> username, email, first_name, last_name, password, current_password;
  std::optional<bool> is_staff, is_active;

  ~UserInput() {
    if (password) wipe(*password);
    if (current_password) wipe(*current_password);
  }
};

enum class Mode { kCreate, kPut, kPatch };

bool no_control(std::string_view s) {
  return !has_control(s) && !has_c1_control(s);
}

// A text member into *out: not blank unless blank_ok, at most max
// characters, and valid (else the message invalid).
void read_text(json_t* body, const char* key, size_t max, bool blank_ok,
               bool (*valid)(std::string_view), const char* invalid, FieldErrors& errors,
               std::optional<std::string>* out) {
  std::string s;
  if (get_string(body, key, errors, &s) != Got::kOk) return;
  if (s.empty() && !blank_ok) {
    errors.add(key, kBlank);
    return;
  }
  if (!check_max_chars(s, max, key, errors)) return;
  if (!s.empty() && !valid(s)) {
    errors.add(key, invalid);
    return;
  }
  *out = std::move(s);
}

void too_many_bytes(const char* key, std::optional<std::string>* name, FieldErrors& errors) {
  if (!*name || (*name)->size() <= kMaxPersonName) return;
  errors.add(key, "Ensure this field has no more than " + std::to_string(kMaxPersonName) +
                      " bytes of UTF-8.");
  name->reset();
}

// Django stores a new name NFKC-normalized (create_user: "ﬁx" as "fix");
// without NFKC tables, a name NFKC may change is refused, with the
// validator's message, unless the user has it already (an imported one).
void check_nfkc(UserInput& in, const std::string* current, FieldErrors& errors) {
  if (!in.username || (current && *in.username == *current)) return;
  if (!username_nfkc_stable(*in.username)) {
    errors.add("username", kUsernameInvalid);
    in.username.reset();
  }
}

// The body's fields, checked; current: the user's name at an update
// (nullptr at a creation), kept even where NFKC may change it.
UserInput read_user(json_t* body, Mode mode, bool staff, const std::string* current,
                    FieldErrors& errors) {
  UserInput in;
  read_text(body, "username", kMaxUsername, false, valid_username, kUsernameInvalid, errors,
            &in.username);
  check_nfkc(in, current, errors);
  std::string s;
  // trimmed as DRF's CharField trims it, and as /api/token/ trims what it
  // checks: "pw " stored as sent could never get a simplejwt token
  if (get_string(body, "password", errors, &s) == Got::kOk) {
    if (s.empty()) {
      errors.add("password", kBlank);
    } else if (s.size() > kMaxPassword) {
      errors.add("password", "Ensure this field has no more than " + std::to_string(kMaxPassword) +
                                 " characters.");
    } else if (!no_control(s)) {
      // as the CLI: no form (the password grant, the sign-in pages) can
      // carry one, so the user could never sign in with it
      errors.add("password", "The password must not contain control characters.");
    } else {
      in.password = std::move(s);
    }
    wipe(s);
  }
  if (get_string(body, "current_password", errors, &s, false) == Got::kOk) {
    if (s.size() <= kMaxPassword) in.current_password = std::move(s);
    wipe(s);
  }
  // required at a creation (seed 003); a user made without one (seed
  // 001's registration, an import) may keep none at an update, as the
  // model's EmailField(blank=True) lets DRF
  read_text(body, "email", kMaxEmail, mode != Mode::kCreate, valid_email, kBadEmail, errors,
            &in.email);
  read_text(body, "first_name", kMaxPersonName, true, no_control, kControl, errors, &in.first_name);
  read_text(body, "last_name", kMaxPersonName, true, no_control, kControl, errors, &in.last_name);
  // the store's limit is bytes: 150 characters of two bytes each are
  // refused here, before the password's slow hash, not by the store after
  too_many_bytes("first_name", &in.first_name, errors);
  too_many_bytes("last_name", &in.last_name, errors);
  if (staff) {
    bool b;
    if (get_bool(body, "is_staff", errors, &b) == Got::kOk) in.is_staff = b;
    if (get_bool(body, "is_active", errors, &b) == Got::kOk) in.is_active = b;
  }

  if (mode != Mode::kPatch) {
    for (const char* key : {"username", "password", "email"}) {
      if (mode == Mode::kPut && std::string_view(key) == "password") continue;
      if (!json_object_get(body, key)) errors.add(key, kRequired);
    }
  }
  return in;
}

// A username another user already has (read before the slow hash; the
// change checks again).
bool username_taken(ServeContext& ctx, const std::string& name, uint64_t self) {
  Txn txn = ctx.store->read();
  auto other = txn.get_user_by_username(ctx.realm, name);
  return other && other->id != self;
}

void apply(const UserInput& in, User& u, const std::string& hashed) {
  if (in.username) u.username = *in.username;
  if (in.email) u.email = *in.email;
  if (in.first_name) u.first_name = *in.first_name;
  if (in.last_name) u.last_name = *in.last_name;
  if (in.password) u.password = hashed;
  if (in.is_staff) u.is_staff = *in.is_staff;
  if (in.is_active) u.is_active = *in.is_active;
}

HttpResponse stored(int status, const User& u) {
  return HttpResponse::json(status, user_json(u).get());
}

HttpResponse put_failed(PutUser r) {
  FieldErrors errors;
  switch (r) {
    case PutUser::kUsernameTaken: errors.add("username", kUsernameTaken); return errors.response();
    case PutUser::kMissing: return not_found();
    default: return HttpResponse::error(400, "The user record is not valid.");
  }
}

// The password policy's complaints about in.password for u, under
// "password".
void check_policy(const ServeContext& ctx, const UserInput& in, const User& u,
                  FieldErrors& errors) {
  if (!in.password || errors.has("password")) return;
  for (std::string& p : password_problems(ctx.password_policy, *in.password,
                                          {u.username, u.first_name, u.last_name, u.email})) {
    errors.add("password", std::move(p));
  }
}

HttpResponse busy() {
  HttpResponse r = HttpResponse::error(503,
                                       "Too many password changes at once: "
                                       "try again in a moment.");
  r.set("Retry-After", "1");
  return r;
}

// DRF's throttled answer
HttpResponse throttled(unsigned seconds) {
  HttpResponse r = HttpResponse::error(
      429, "Request was throttled. Expected available in " + std::to_string(seconds) + " seconds.");
  r.set("Retry-After", std::to_string(seconds));
  return r;
}

// The caller's current password: nullopt if it is right, else the answer
// (400 field error, or 429 when the account or the address is throttled).
HttpResponse wrong_current_password() {
  FieldErrors errors;
  errors.add("current_password",
             "Your old password was entered incorrectly. Please enter it again.");
  return errors.response();
}

// 0 when one's own current password may be checked now; else the seconds
// to wait (the address's or the account's throttle, or its lock): asked
// before a hash slot is taken, cheap checks first (R88), and again after
unsigned current_password_wait(ServeContext& ctx, const Throttle& throttle, uint64_t id,
                               int64_t now) {
  unsigned wait = throttle.address_wait();
  if (!wait) {
    Txn txn = ctx.store->read();
    LoginTarget target{{id}, "#" + std::to_string(id)};
    wait = login_gate(txn, throttle, ctx.realm, target, LoginOrigin{throttle.address(), ""}, now);
  }
  return wait;
}

std::optional<HttpResponse> check_current_password(ServeContext& ctx, const HttpRequest& req,
                                                   uint64_t id, const std::string& password,
                                                   std::string* checked) {
  const int64_t now = static_cast<int64_t>(time(nullptr));
  const Throttle throttle = ctx.throttle(req);
  const LoginOrigin origin{throttle.address(), ""};
  LoginTarget target{{id}, "#" + std::to_string(id)};
  if (unsigned wait = current_password_wait(ctx, throttle, id, now)) return throttled(wait);
  LoginCheck check = check_login(*ctx.store, ctx.realm, target, password, ctx.pbkdf2_iterations,
                                 ctx.account_limit, origin, now);
  if (check.locked) return throttled(check.locked);
  if (check.user) {
    *checked = check.user->password;
    return std::nullopt;
  }
  throttle.password_failed(target.throttle_key);
  throttle.address_failed();
  return wrong_current_password();
}

HttpResponse list_users(ServeContext& ctx, const HttpRequest& req) {
  Pager pager(req, ctx.page_size);
  if (!pager.valid()) return invalid_page();
  Json results(checked(json_array()));
  {
    Txn txn = ctx.store->read();
    size_t total = 0;
    txn.list_users(ctx.realm, 0, 0, &total);
    size_t offset = 0, limit = 0;
    if (!pager.window(total, &offset, &limit)) return invalid_page();
    for (const User& u : txn.list_users(ctx.realm, offset, limit, nullptr)) {
      append_item(results.get(), user_json(u).release());
    }
  }
  return pager.response(results.release());
}

// Counts one more attempt of `who` against 10 a minute and 100 an hour,
// as the module's oauth2_register is limited without oauth2_rate_limit.
// Seconds to wait, 0 if it may go on (and was counted).
unsigned attempt_wait(ServeContext& ctx, const std::string& who) {
  if (!ctx.counters) return 0;
  oauth2_counters_t c = ctx.counters->counters();
  const struct {
    const char* name;
    unsigned limit, window;
  } windows[] = {{"rm:", 10, 60}, {"rh:", 100, 3600}};
  std::string keys[2];
  for (size_t i = 0; i < 2; i++) {
    keys[i] = counter_key(ctx.realm, windows[i].name + who);
    const auto* k = reinterpret_cast<const unsigned char*>(keys[i].data());
    if (unsigned wait = c.check(c.ctx, k, keys[i].size(), windows[i].limit, windows[i].window)) {
      return wait == OAUTH2_COUNTER_FULL ? 1 : wait;  // no room: refused (R84)
    }
  }
  for (size_t i = 0; i < 2; i++) {
    c.failed(c.ctx, reinterpret_cast<const unsigned char*>(keys[i].data()), keys[i].size(),
             windows[i].window);
  }
  return 0;
}

}  // namespace

// the bare --open-registration: every realm; with realms: those (the
// request's realm, from X-OAuth2-Realm or --realm)
bool ServeContext::registration_open() const {
  if (open_registration) return true;
  return std::find(open_registration_realms.begin(), open_registration_realms.end(), realm) !=
         open_registration_realms.end();
}

namespace {

// A self-registration (--open-registration: no caller) is limited per
// address, counted before its password is hashed: a flood of them
// neither holds the queue of hashes that staff sign-ins need (R88) nor
// fills the store.
unsigned registration_wait(ServeContext& ctx, const HttpRequest& req) {
  return attempt_wait(ctx, throttle_address(client_address(req)));
}

// A user renaming itself learns whether the name is taken: that answer
// about other accounts is given at the registration's pace, per user
// (OWASP: enumeration).  Staff see the users anyway; a PUT that keeps
// the name asks nothing.
unsigned rename_wait(ServeContext& ctx, const Caller& caller, const UserInput& in,
                     const User& current) {
  if (!in.username || *in.username == current.username) return 0;
  if (caller.acts_as_staff() || !caller.user) return 0;
  return attempt_wait(ctx, "user:" + std::to_string(caller.user->id));
}

HttpResponse create_user(ServeContext& ctx, const HttpRequest& req, const Caller& caller) {
  // staff; or nobody at all when registration is open in this realm
  if (caller.anonymous() ? !ctx.registration_open() : !caller.acts_as_staff()) {
    return denied(caller);
  }
  // every anonymous registration counts, refused or not, before anything
  // is looked up: "that username is taken" answers at the limit's pace
  if (caller.anonymous()) {
    if (unsigned wait = registration_wait(ctx, req)) return throttled(wait);
  }
  HttpResponse error;
  Json body = parse_json_object(req, &error);
  if (!body) return error;
  FieldErrors errors;
  UserInput in = read_user(body.get(), Mode::kCreate, caller.acts_as_staff(), nullptr, errors);
  if (in.username && !errors.has("username") && username_taken(ctx, *in.username, 0)) {
    errors.add("username", kUsernameTaken);
  }
  User u;
  u.realm = ctx.realm;
  u.date_joined = static_cast<int64_t>(time(nullptr));
  apply(in, u, "");  // is_staff, is_active: only from staff
  check_policy(ctx, in, u, errors);
  if (!errors.empty()) return errors.response();

  HashSlots::Slot slot = ctx.hash_slot();
  if (ctx.hash_slots && !slot) return busy();
  u.password = hash_password(*in.password, ctx.pbkdf2_iterations);
  slot.reset();
  User created;
  Refusal refused = ctx.store->change([&](Txn& txn) -> Refusal {
    if (auto gone = caller_gone(txn, ctx.realm, caller)) return gone;
    created = u;  // put_user assigns the id: each run from the same user
    PutUser r = txn.put_user(created, true);
    if (r != PutUser::kOk) return put_failed(r);
    txn.commit();
    return std::nullopt;
  });
  if (refused) return std::move(*refused);
  return stored(201, created);
}

HttpResponse update_user(ServeContext& ctx, const HttpRequest& req, const Caller& caller,
                         uint64_t id, Mode mode) {
  std::optional<User> current;
  {
    Txn txn = ctx.store->read();  // DRF looks the object up first
    current = txn.get_user(ctx.realm, id);
    if (!current) return not_found();
  }
  HttpResponse error;
  Json body = parse_json_object(req, &error);
  if (!body) return error;
  FieldErrors errors;
  const bool staff = caller.acts_as_staff();
  UserInput in = read_user(body.get(), mode, staff, &current->username, errors);
  if (unsigned wait = rename_wait(ctx, caller, in, *current)) return throttled(wait);
  if (in.username && !errors.has("username") && username_taken(ctx, *in.username, id)) {
    errors.add("username", kUsernameTaken);
  }
  const bool self = caller.user && caller.user->id == id;
  if (in.password && !self && !staff) return denied(caller);
  // a caller that reads nothing of the user ("write" without "read")
  // hears of the policy only once its current password is right: "too
  // similar to the email address" would tell it the email (R85)
  const bool blind = self && !staff && !caller.can_read();
  FieldErrors policy;
  if (in.password) {
    User next = *current;
    apply(in, next, "");
    check_policy(ctx, in, next, blind ? policy : errors);
    if (self && !in.current_password && !errors.has("current_password")) {
      errors.add("current_password", kRequired);
    }
  }
  if (!errors.empty()) return errors.response();

  std::string hashed;
  std::string checked;  // the hash the current password was checked against
  if (in.password) {
    if (self) {
      const int64_t now = static_cast<int64_t>(time(nullptr));
      if (unsigned wait = current_password_wait(ctx, ctx.throttle(req), id, now)) {
        return throttled(wait);
      }
    }
    HashSlots::Slot slot = ctx.hash_slot();
    if (ctx.hash_slots && !slot) return busy();
    if (self) {
      // one's own password: the current one first, as a sign-in (R89)
      if (auto refused = check_current_password(ctx, req, id, *in.current_password, &checked)) {
        return std::move(*refused);
      }
      if (!policy.empty()) return policy.response();
    }
    hashed = hash_password(*in.password, ctx.pbkdf2_iterations);
  }
  User u;
  Refusal refused = ctx.store->change([&](Txn& txn) -> Refusal {
    auto old = txn.get_user(ctx.realm, id);
    if (!old) return not_found();
    // the current password checked is still the user's: a change of
    // password committed while the hashes ran (a reset by staff, after
    // a theft, say) ended every token, this caller's too, and must not
    // be overwritten by one authorised with the old password (R39, R85)
    if (!checked.empty() && old->password != checked) return wrong_current_password();
    if (auto gone = caller_gone(txn, ctx.realm, caller)) return gone;
    const bool was_staff = old->is_staff;
    u = std::move(*old);
    apply(in, u, hashed);
    PutUser r = txn.put_user(u, false);
    if (r != PutUser::kOk) return put_failed(r);
    end_sessions_after_change(txn, ctx.realm, u, in.password.has_value(), was_staff && !u.is_staff);
    txn.commit();
    return std::nullopt;
  });
  if (refused) return std::move(*refused);
  // a token without "read" reads nothing, not even through the answer
  // to its change (R85): DRF would return the record, the scope says no
  if (!staff && !caller.can_read()) return no_content();
  return stored(200, u);
}

const ApiView kUserList = {"User List", "List the users (staff), or create one.",
                           "GET, POST, HEAD, OPTIONS"};
const ApiView kUserInstance = {"User Instance", "Read, change or delete a user.",
                               "GET, PUT, PATCH, DELETE, HEAD, OPTIONS"};
const ApiView kMe = {"Me", "The user of the request's token.", "GET, HEAD, OPTIONS"};

}  // namespace

HttpResponse users_api(ServeContext& ctx, const HttpRequest& req, const Caller& caller,
                       std::optional<uint64_t> id) {
  const std::string& m = req.method;
  if (!id) {
    if (m == "GET" || m == "HEAD" || m == "OPTIONS") {
      if (!caller.acts_as_staff()) return denied(caller);
      if (m == "OPTIONS") return options_response(kUserList);
      return list_users(ctx, req);
    }
    if (m == "POST") return create_user(ctx, req, caller);
    if (caller.anonymous()) return denied(caller);
    return method_not_allowed(req, kUserList);
  }

  if (caller.anonymous()) return denied(caller);
  const bool self = caller.user && caller.user->id == *id;
  const bool staff = caller.acts_as_staff();
  if (m == "OPTIONS") {
    if (!staff && !(self && caller.can_read())) return denied(caller);
    return options_response(kUserInstance);
  }
  if (m == "GET" || m == "HEAD") {
    if (!staff && !(self && caller.can_read())) return denied(caller);
    std::optional<User> u;
    {
      Txn txn = ctx.store->read();
      u = txn.get_user(ctx.realm, *id);
    }
    if (!u) return not_found();
    return stored(200, *u);
  }
  if (m == "PUT" || m == "PATCH") {
    if (!staff && !(self && caller.can_write())) return denied(caller);
    return update_user(ctx, req, caller, *id, m == "PUT" ? Mode::kPut : Mode::kPatch);
  }
  if (m == "DELETE") {
    if (!staff) return denied(caller);
    Refusal refused = ctx.store->change([&](Txn& txn) -> Refusal {
      if (!txn.delete_user(ctx.realm, *id)) return not_found();
      txn.commit();
      return std::nullopt;
    });
    if (refused) return std::move(*refused);
    return no_content();
  }
  return method_not_allowed(req, kUserInstance);
}

HttpResponse me_api(ServeContext& ctx, const HttpRequest& req, const Caller& caller) {
  (void)ctx;
  if (caller.anonymous()) return denied(caller);
  const std::string& m = req.method;
  if (m != "GET" && m != "HEAD" && m != "OPTIONS") return method_not_allowed(req, kMe);
  if (caller.user && !caller.can_read()) return denied(caller);
  if (!caller.user) {
    return HttpResponse::error(403, "This token belongs to an application, not to a user.");
  }
  if (m == "OPTIONS") return options_response(kMe);
  return stored(200, *caller.user);
}

}  // namespace oauth2::admin
