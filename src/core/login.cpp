#include "login.hpp"

#include <algorithm>

#include "password.hpp"

namespace oauth2 {

LoginTarget resolve_login(Txn& txn, std::string_view realm, std::string_view login, bool by_email) {
  LoginTarget t;
  if (!by_email) {
    if (auto u = txn.get_user_by_username(realm, login)) t.candidates.push_back(u->id);
  } else {
    // Django does not make emails unique: each user with it is tried
    t.candidates = txn.users_by_email(realm, login, kMaxEmailMatches);
  }
  // one key per account, whichever name reached it; an unknown name is
  // counted the same way, so that counting tells nothing.  Each kind in a
  // space of its own: an unknown name, as sent ("?"), never fills the
  // bucket of an account ("#<id>": "ALICE" would otherwise fill alice's
  // or not, telling whether "alice" exists) nor of several accounts'
  // email ("@", lowercased as emails are looked up).  An unknown email
  // is lowercased too: "Alice@x" and "alice@x" share a count whether or
  // not an account has that email, else sharing it would tell
  if (t.candidates.size() == 1) {
    t.throttle_key = "#" + std::to_string(t.candidates[0]);
    return t;
  }
  t.throttle_key = (t.candidates.empty() ? "?" : "@") + std::string(login.substr(0, 254));
  if (by_email || !t.candidates.empty()) {
    for (char& ch : t.throttle_key) {
      if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch + 32);
    }
  }
  return t;
}

unsigned login_gate(Txn& txn, const Throttle& throttle, std::string_view realm, LoginTarget& target,
                    const LoginOrigin& origin, int64_t now) {
  if (unsigned wait = throttle.password_wait(target.throttle_key)) return wait;
  std::vector<uint64_t> open;
  unsigned locked = 0;
  for (uint64_t id : target.candidates) {
    unsigned wait = account_wait(txn, realm, id, origin, now);
    if (wait) {
      locked = std::max(locked, wait);
    } else {
      open.push_back(id);
    }
  }
  if (open.empty() && locked) return locked;
  target.candidates = std::move(open);
  return 0;
}

LoginCheck check_login(Store& store, std::string_view realm, const LoginTarget& target,
                       std::string_view password, unsigned iterations, const AccountLimit& limit,
                       const LoginOrigin& origin, int64_t now) {
  std::vector<User> users;
  LoginCheck out;
  {
    // login_gate read the locks when the request came; the guesses queued
    // for the hash with it may have locked the account since: each is
    // looked at again now, or the ceiling per account (R89) grows by the
    // length of the queue
    Txn txn = store.read();
    for (uint64_t id : target.candidates) {
      if (unsigned wait = account_wait(txn, realm, id, origin, now)) {
        out.locked = std::max(out.locked, wait);
        continue;
      }
      if (auto u = txn.get_user(realm, id)) users.push_back(std::move(*u));
    }
  }
  if (users.empty() && out.locked) return out;
  out.locked = 0;
  // the slow hash: the same work whether or not the user exists
  if (users.empty()) verify_password_dummy(password, iterations);
  for (User& u : users) {
    PasswordCheck c = verify_password(password, u.password, iterations);
    if (c.ok && u.is_active) {
      out.needs_rehash = c.needs_rehash;
      out.user = std::move(u);
      return out;
    }
  }
  out.failed = true;
  if (!users.empty() && limit.limit) {
    store.change([&](Txn& txn) {
      for (const User& u : users) account_failed(txn, realm, u.id, limit, now);
      txn.commit();
    });
  }
  return out;
}

}  // namespace oauth2
