// `oauth2-admin user ...`: the users of a realm, with the fields of
// Django's auth.User that the users API shows (docs/compat.md, seed 003),
// in the store the daemon's /api/users/ and the module's user tokens
// read.  Passwords are hashed in Django's pbkdf2_sha256 format before the
// change (Store::change) begins, so that a change, which may run more than
// once, never waits for a slow hash.

#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <ctime>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>

#include "cli.hpp"
#include "codec.hpp"
#include "crypto.hpp"
#include "json.hpp"
#include "model.hpp"
#include "password.hpp"
#include "password_policy.hpp"
#include "store.hpp"

namespace oauth2::admin {
namespace {

constexpr size_t kMaxPassword = 4096;  // bytes

// The user an operand names: by id when it is a canonical decimal number
// (parse_user_id), else by username.  A number that is the id of one user
// and the username of another is refused rather than guessed: every user
// is reachable by id.  nullopt with *error set when there is none (or it
// is ambiguous).
std::optional<User> find_user(Txn& txn, const Invocation& inv, const std::string& operand,
                              std::string* error) {
  std::optional<User> by_id, by_name;
  if (auto id = parse_user_id(operand)) by_id = txn.get_user(inv.realm, *id);
  if (valid_username(operand)) {
    by_name = txn.get_user_by_username(inv.realm, operand);
  }
  if (by_id && by_name && by_id->id != by_name->id) {
    *error = quoted(operand) + " is both the id of user " + by_id->username +
             " and the username of user " + std::to_string(by_name->id) +
             ": name that one by its id";
    return std::nullopt;
  }
  if (by_id) return by_id;
  if (by_name) return by_name;
  *error = "no user " + quoted(operand);
  return std::nullopt;
}

std::string no_user(const Invocation& inv) {
  return "no user " + quoted(inv.operands[0]);
}

// What a change of one user came to: the JSON to print once it is
// durable, or (print null) why it was refused.
struct UserChange {
  Json print;
  std::string error;
};

// Runs edit(txn, user) with the user the operand names as a change of
// store, which edit commits, then prints what it returned; exit 1 when
// there is no such user or edit refused.  Like any change, edit may run
// more than once, each time on a fresh copy of the user.
template <typename Edit>
int change_user(Store& store, const Invocation& inv, Edit edit) {
  UserChange done = store.change([&](Txn& txn) -> UserChange {
    UserChange refused;
    auto u = find_user(txn, inv, inv.operands[0], &refused.error);
    if (!u) return refused;
    return edit(txn, *u);
  });
  if (!done.print) return fail(done.error);
  print_json(done.print.get());
  return 0;
}

// The same on the store of the invocation, if there is one.
template <typename Edit>
int change_user(const Invocation& inv, Edit edit) {
  auto store = open_store(inv, false);
  if (!store) return fail(no_user(inv));
  return change_user(*store, inv, edit);
}

bool email_ok(std::string_view e) {
  if (e.empty() || e.size() > kMaxEmail || !valid_utf8(e) || has_control(e) || has_c1_control(e)) {
    return false;
  }
  size_t at = e.find('@');
  if (at == 0 || at == std::string_view::npos || at + 1 == e.size() ||
      e.find('@', at + 1) != std::string_view::npos) {
    return false;
  }
  return e.find(' ') == std::string_view::npos;
}

bool person_name_ok(std::string_view n) {
  return valid_utf8(n) && n.size() <= kMaxPersonName && !has_control(n) && !has_c1_control(n);
}

std::string checked_email(const std::string& e) {
  if (!email_ok(e)) {
    throw UsageError("--email: " + quoted(e) +
                     " is not an address like name@example.com (at most "
                     "254 bytes)");
  }
  return e;
}

std::string checked_person_name(const char* option, const std::string& n) {
  if (!person_name_ok(n)) {
    throw UsageError(std::string(option) + ": at most 150 bytes of UTF-8, " +
                     "no control characters");
  }
  return n;
}

// One line of stdin, without its line end; at most kMaxPassword bytes.
// Read a byte at a time so that nothing after the line is consumed.
void read_password_line(std::string* out) {
  for (;;) {
    char ch;
    ssize_t n = read(STDIN_FILENO, &ch, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::runtime_error(errno_text("cannot read stdin"));
    if (n == 0 || ch == '\n') break;
    if (out->size() > kMaxPassword) {
      throw UsageError(
          "--password-stdin: the password is longer than 4096 "
          "bytes");
    }
    out->push_back(ch);
  }
  if (!out->empty() && out->back() == '\r') out->pop_back();
}

// From a terminal: a prompt on stderr, and the password not echoed (to
// the screen, its scrollback, a session's log), as passwd asks.
void read_password_tty(std::string* out) {
  struct termios before;
  const bool tty = tcgetattr(STDIN_FILENO, &before) == 0;
  if (tty) {
    fputs("Password: ", stderr);
    fflush(stderr);
    struct termios quiet = before;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    quiet.c_lflag |= ECHONL;
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  struct Restore {
    bool tty;
    const struct termios& before;
    ~Restore() {
      if (tty) tcsetattr(STDIN_FILENO, TCSAFLUSH, &before);
    }
  } restore{tty, before};
  read_password_line(out);
}

// The new password of `user add` or `user set-password`, from exactly
// one of --password and --password-stdin.  It must be something the
// login form can carry: UTF-8 without control characters.
void read_password(const Invocation& inv, std::string* out) {
  auto given = inv.value("password");
  bool from_stdin = inv.has("password-stdin");
  if (given && from_stdin) {
    throw UsageError("--password and --password-stdin exclude each other");
  }
  if (!given && !from_stdin) {
    throw UsageError(joined_words(inv).substr(1) +
                     " needs --password-stdin (or --password <password>)");
  }
  const char* opt = from_stdin ? "--password-stdin" : "--password";
  if (from_stdin) {
    read_password_tty(out);
  } else {
    *out = *given;
  }
  if (out->empty()) throw UsageError(std::string(opt) + ": empty password");
  if (out->size() > kMaxPassword) {
    throw UsageError(std::string(opt) + ": longer than 4096 bytes");
  }
  if (!valid_utf8(*out) || has_control(*out) || has_c1_control(*out)) {
    throw UsageError(std::string(opt) +
                     ": the password must be UTF-8 without control "
                     "characters");
  }
}

// --password-policy, else Django's default validators
PasswordPolicy policy_option(const Invocation& inv) {
  auto v = inv.value("password-policy");
  if (!v) return PasswordPolicy{};
  std::string why;
  auto p = PasswordPolicy::parse(*v, &why);
  if (!p) throw UsageError("--password-policy: " + why);
  return *p;
}

// "" if password is acceptable for u, else why not (Django's words)
std::string policy_problems(const PasswordPolicy& policy, const std::string& password,
                            const User& u) {
  std::string out;
  for (const std::string& p :
       password_problems(policy, password, {u.username, u.first_name, u.last_name, u.email})) {
    out += (out.empty() ? "" : " ") + p;
  }
  return out;
}

std::optional<bool> bool_option(const Invocation& inv, const char* name) {
  auto v = inv.value(name);
  if (!v) return std::nullopt;
  if (*v == "true") return true;
  if (*v == "false") return false;
  throw UsageError(std::string("--") + name + ": " + quoted(*v) + " is neither true nor false");
}

Json id_result(const char* key, uint64_t id) {
  Json obj(checked(json_object()));
  set_member(obj.get(), key, json_integer(static_cast<json_int_t>(id)));
  return obj;
}

// ------------------------------------------------------------ commands

int user_add(const Invocation& inv) {
  User u;
  u.realm = inv.realm;
  auto username = inv.value("username");
  if (!username) throw UsageError("user add needs --username");
  if (!valid_username(*username)) {
    throw UsageError("--username: " + quoted(*username) +
                     " is not 1 to 150 of letters, digits and @.+-_ (Django's rule)");
  }
  if (!username_nfkc_stable(*username)) {
    // Django's create_user would store it NFKC-normalized, as the users
    // API refuses it
    throw UsageError("--username: " + quoted(*username) +
                     " is not in Unicode's NFKC form (a ligature, a fullwidth or "
                     "compatibility character): give it as Django would store it");
  }
  u.username = *username;
  auto email = inv.value("email");
  if (!email) throw UsageError("user add needs --email");
  u.email = checked_email(*email);
  if (auto v = inv.value("first-name")) {
    u.first_name = checked_person_name("--first-name", *v);
  }
  if (auto v = inv.value("last-name")) {
    u.last_name = checked_person_name("--last-name", *v);
  }
  u.is_staff = inv.has("staff");
  u.is_active = !inv.has("inactive");
  const unsigned iterations = pbkdf2_iterations_option(inv);
  const PasswordPolicy policy = policy_option(inv);
  {
    std::string password;
    WipeOnExit wipe_password(password);
    read_password(inv, &password);
    std::string why = policy_problems(policy, password, u);
    if (!why.empty()) {
      throw UsageError("the password is refused: " + why + " (--password-policy off accepts it)");
    }
    u.password = hash_password(password, iterations);
  }
  u.date_joined = static_cast<int64_t>(time(nullptr));

  auto store = open_store(inv, true);
  User created;
  std::optional<std::string> refused = store->change([&](Txn& txn) -> std::optional<std::string> {
    created = u;  // put_user assigns the id: each run from the same user
    switch (txn.put_user(created, true)) {
      case PutUser::kOk: break;
      case PutUser::kUsernameTaken: return "a user with that username already exists";
      default: return "the store refused the user";
    }
    txn.commit();
    return std::nullopt;
  });
  if (refused) return fail(*refused);
  print_json(user_json(created).get());
  return 0;
}

int user_list(const Invocation& inv) {
  Json arr(checked(json_array()));
  if (auto store = open_store(inv, false)) {
    Txn txn = store->read();
    size_t total = 0;
    for (const User& u : txn.list_users(inv.realm, 0, SIZE_MAX, &total)) {
      append_item(arr.get(), user_json(u).release());
    }
  }
  print_json(arr.get());
  return 0;
}

int user_show(const Invocation& inv) {
  std::string error = no_user(inv);
  std::optional<User> u;
  if (auto store = open_store(inv, false)) {
    Txn txn = store->read();
    u = find_user(txn, inv, inv.operands[0], &error);
  }
  if (!u) return fail(error);
  print_json(user_json(*u).get());
  return 0;
}

int user_set_password(const Invocation& inv) {
  const unsigned iterations = pbkdf2_iterations_option(inv);
  const PasswordPolicy policy = policy_option(inv);
  std::string password;
  WipeOnExit wipe_password(password);
  read_password(inv, &password);
  auto store = open_store(inv, false);
  if (!store) return fail(no_user(inv));
  {
    std::string error;
    Txn txn = store->read();
    auto u = find_user(txn, inv, inv.operands[0], &error);
    if (!u) return fail(error);
    std::string why = policy_problems(policy, password, *u);
    if (!why.empty()) {
      return fail("the password is refused: " + why + " (--password-policy off accepts it)");
    }
  }
  std::string hash = hash_password(password, iterations);
  return change_user(*store, inv, [&](Txn& txn, User& u) {
    u.password = hash;  // copied: the change may run again
    if (txn.put_user(u, false) != PutUser::kOk) {
      return UserChange{nullptr, "the store refused the user"};
    }
    size_t revoked = end_sessions_after_change(txn, inv.realm, u, true) + txn.revoked_first();
    txn.commit();
    Json obj = id_result("id", u.id);
    set_member(obj.get(), "tokens_revoked", json_integer(static_cast<json_int_t>(revoked)));
    return UserChange{std::move(obj), ""};
  });
}

int user_delete(const Invocation& inv) {
  return change_user(inv, [&](Txn& txn, User& u) {
    if (!txn.delete_user(inv.realm, u.id)) return UserChange{nullptr, no_user(inv)};  // R70
    txn.commit();
    return UserChange{id_result("deleted", u.id), ""};
  });
}

int user_set(const Invocation& inv) {
  auto active = bool_option(inv, "active");
  auto staff = bool_option(inv, "staff");
  auto email = inv.value("email");
  if (email) checked_email(*email);
  auto first = inv.value("first-name");
  if (first) checked_person_name("--first-name", *first);
  auto last = inv.value("last-name");
  if (last) checked_person_name("--last-name", *last);
  if (!active && !staff && !email && !first && !last) {
    throw UsageError(
        "user set needs --active, --staff, --email, "
        "--first-name or --last-name");
  }

  return change_user(inv, [&](Txn& txn, User& u) {
    const bool was_staff = u.is_staff;
    if (active) u.is_active = *active;
    if (staff) u.is_staff = *staff;
    if (email) u.email = *email;
    if (first) u.first_name = *first;
    if (last) u.last_name = *last;
    if (txn.put_user(u, false) != PutUser::kOk) {
      return UserChange{nullptr, "the store refused the user"};
    }
    // --active false ends their sessions and tokens, --staff false their
    // sessions of the daemon's pages, so that neither comes back with it
    if (active || (was_staff && !u.is_staff)) {
      end_sessions_after_change(txn, inv.realm, u, false, was_staff && !u.is_staff);
    }
    txn.commit();
    return UserChange{user_json(u), ""};
  });
}

// ------------------------------------------------------------- tables

const OptionSpec kUserAddOptions[] = {
    {"username", true, false},
    {"email", true, false},
    {"first-name", true, false},
    {"last-name", true, false},
    {"staff", false, false},
    {"inactive", false, false},
    {"password", true, false},
    {"password-stdin", false, false},
    {"pbkdf2-iterations", true, false},
    {"password-policy", true, false},
};

const OptionSpec kSetPasswordOptions[] = {
    {"password", true, false},
    {"password-stdin", false, false},
    {"pbkdf2-iterations", true, false},
    {"password-policy", true, false},
};

const OptionSpec kUserSetOptions[] = {
    {"active", true, false},     {"staff", true, false},     {"email", true, false},
    {"first-name", true, false}, {"last-name", true, false},
};

// The password options, in the --help of user add and user set-password.
#define PASSWORD_HELP                                                      \
  "  --password-stdin           read the password from the first line\n"   \
  "                             of stdin (without its line end)\n"         \
  "  --password <password>      the password on the command line\n"        \
  "                             (other users can see it in ps)\n"          \
  "  --pbkdf2-iterations <n>    PBKDF2-SHA256 iterations, 1 to\n"          \
  "                             100000000 (default 600000, Django 4.2)\n"  \
  "  --password-policy <spec>   Django's password validators (default):\n" \
  "                             at least 8 characters, not entirely\n"     \
  "                             numeric, not too similar to the user's\n"  \
  "                             names or email, not a common password;\n"  \
  "                             \"off\", or \"min_length=<n>\n"            \
  "                             similarity=<0.1-1>|off common=on|off\n"    \
  "                             numeric=on|off\"\n"

const char kUserAddUsage[] =
    "usage: oauth2-admin user add --username <name> --email <address>\n"
    "           [--first-name <name>] [--last-name <name>] [--staff] "
    "[--inactive]\n"
    "           (--password-stdin | --password <password>)\n"
    "           [--pbkdf2-iterations <n>] [--password-policy <spec>]\n"
    "\n"
    "Creates a user and prints it as one JSON object: id, username, email,\n"
    "first_name, last_name, is_staff, is_active.  The password is stored as\n"
    "a Django pbkdf2_sha256 hash, never in clear.  Exit 1 if a user with\n"
    "that username exists.\n"
    "\n"
    "  --username <name>          1 to 150 of letters, digits and @.+-_\n"
    "                             (Unicode's: josé, 用户_1), in NFKC form\n"
    "  --email <address>          name@domain, at most 254 bytes\n"
    "  --first-name, --last-name  at most 150 bytes of UTF-8 each\n"
    "  --staff                    a staff user (may manage users and apps)\n"
    "  --inactive                 a disabled user: no token validates\n" PASSWORD_HELP;

const char kUserListUsage[] =
    "usage: oauth2-admin user list\n"
    "\n"
    "Prints the users of the realm, in id order, as a JSON array of the\n"
    "objects 'user add' prints.  Never a password.\n";

const char kUserShowUsage[] =
    "usage: oauth2-admin user show <id|username>\n"
    "\n"
    "Prints one user as JSON; exit 1 if there is none.  A number is an id\n"
    "or a username; when it is the id of one user and the username of\n"
    "another, name that other one by its id.\n";

const char kUserSetPasswordUsage[] =
    "usage: oauth2-admin user set-password <id|username>\n"
    "           (--password-stdin | --password <password>) "
    "[--pbkdf2-iterations <n>]\n"
    "           [--password-policy <spec>]\n"
    "\n"
    "Sets a new password and deletes every token of the user in the same\n"
    "transaction: they fail on the very next request.  Prints\n"
    "{\"id\": <id>, \"tokens_revoked\": <count>}.\n"
    "\n" PASSWORD_HELP;

const char kUserSetUsage[] =
    "usage: oauth2-admin user set <id|username> [--active true|false]\n"
    "           [--staff true|false] [--email <address>]\n"
    "           [--first-name <name>] [--last-name <name>]\n"
    "\n"
    "Changes a user and prints it as 'user show' does.  --active false\n"
    "disables the user and deletes every token of theirs in the same\n"
    "transaction; enabling the user again does not bring them back.\n";

const char kUserDeleteUsage[] =
    "usage: oauth2-admin user delete <id|username>\n"
    "\n"
    "Deletes a user and every token issued to them, in one transaction.\n"
    "Prints {\"deleted\": <id>}; exit 1 if there is no such user.\n";

#undef PASSWORD_HELP

const Command kUserCommands[] = {
    {"user add", "--username <u> ...", "create a user", kUserAddUsage, kUserAddOptions,
     std::size(kUserAddOptions), 0, 0, user_add},
    {"user list", "", "list the users", kUserListUsage, nullptr, 0, 0, 0, user_list},
    {"user show", "<id|username>", "show one user", kUserShowUsage, nullptr, 0, 1, 1, user_show},
    {"user set", "<id|username> ...", "enable, disable or change a user", kUserSetUsage,
     kUserSetOptions, std::size(kUserSetOptions), 1, 1, user_set},
    {"user set-password", "<id|username>", "set a password and revoke the user's tokens",
     kUserSetPasswordUsage, kSetPasswordOptions, std::size(kSetPasswordOptions), 1, 1,
     user_set_password},
    {"user delete", "<id|username>", "delete a user and their tokens", kUserDeleteUsage, nullptr, 0,
     1, 1, user_delete},
};

}  // namespace

void add_user_commands(Commands& out) {
  for (const Command& c : kUserCommands) out.push_back(&c);
}

}  // namespace oauth2::admin
