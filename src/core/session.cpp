#include "session.hpp"

#include "codec.hpp"
#include "crypto.hpp"

namespace oauth2::detail {

std::optional<std::string> cookie_value(std::string_view header, std::string_view name) {
  size_t pos = 0;
  while (pos < header.size()) {
    size_t end = header.find(';', pos);
    if (end == std::string_view::npos) end = header.size();
    std::string_view part = header.substr(pos, end - pos);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    size_t eq = part.find('=');
    if (eq != std::string_view::npos && part.substr(0, eq) == name) {
      return std::string(part.substr(eq + 1));
    }
    pos = end + 1;
  }
  return std::nullopt;
}

std::string cookie_name(std::string_view name, bool secure) {
  std::string n = secure ? "__Host-" : "";
  n += name;
  return n;
}

std::string cookie_text(std::string_view name, std::string_view value, int64_t max_age,
                        bool secure) {
  std::string c = cookie_name(name, secure);
  c += "=";
  c += value;
  c += "; Path=/; HttpOnly; SameSite=Lax; Max-Age=" + std::to_string(max_age);
  if (secure) c += "; Secure";
  return c;
}

// (oauth2_issuer is http:// or https://, lowercase: nginx -t checks it)
bool secure_cookies(const Request& req) {
  return req.c.secure || req.loc.issuer.rfind("https://", 0) == 0;
}

std::string cookie(const Request& req, std::string_view name, std::string_view value,
                   int64_t max_age) {
  return cookie_text(name, value, max_age, secure_cookies(req));
}

std::optional<std::string> request_cookie(const Request& req, std::string_view cookies,
                                          std::string_view name) {
  return cookie_value(cookies, cookie_name(name, secure_cookies(req)));
}

bool same_ct(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         equal_ct(reinterpret_cast<const unsigned char*>(a.data()),
                  reinterpret_cast<const unsigned char*>(b.data()), a.size());
}

std::string session_csrf(std::string_view session) {
  std::string in = "consent-csrf:";
  in.append(session);
  Digest d = sha256(in);
  wipe(in);
  return base64url_encode(d.data(), d.size());
}

bool is_session_value(std::string_view value) {
  if (value.size() != kSessionValueLen) return false;
  for (char ch : value) {
    if (!chars::is(ch, chars::kB64Url)) return false;
  }
  return true;
}

namespace {

// the user of a session, in txn, if it is live and the user active
std::optional<SessionUser> read_session(Txn& txn, std::string_view realm, std::string session,
                                        int64_t now) {
  auto t = txn.get_token(realm, token_id(session));
  if (!t || t->type != TokenType::kSession || now >= t->expires_at) return std::nullopt;
  auto name = txn.active_username(realm, token_user_id(*t));
  if (!name) return std::nullopt;
  return SessionUser{token_user_id(*t), std::move(*name), std::move(session), t->issued_at};
}

}  // namespace

std::optional<SessionUser> session_user(Store& store, const Request& req, std::string_view cookies,
                                        bool* unseen) {
  *unseen = false;
  std::optional<std::string> session = request_cookie(req, cookies, kSessionCookie);
  if (!session || !is_session_value(*session)) return std::nullopt;
  Txn txn = store.read();
  if (may_catch_up(store, req) && !txn.get_token(req.loc.realm, token_id(*session))) {
    *unseen = true;
    return std::nullopt;
  }
  return read_session(txn, req.loc.realm, std::move(*session), req.c.now);
}

bool session_holds(Txn& txn, std::string_view realm, const SessionUser& su, int64_t now) {
  auto again = read_session(txn, realm, su.session, now);
  return again && again->id == su.id;
}

Response see_other(std::string location) {
  Response r;
  r.status = 303;
  r.location = std::move(location);
  return r;
}

std::optional<Response> form_post_as_get(const Request& req, const Form& body) {
  if (sv(req.c.method) != "POST" || !sv(req.c.query).empty() || body.params().empty() ||
      body.has("action")) {
    return std::nullopt;
  }
  std::string query;
  for (const auto& [name, value] : body.params()) {
    query += query.empty() ? "?" : "&";
    query += percent_encode(name) + "=" + percent_encode(value);
  }
  return see_other(std::move(query));
}

std::string render(std::string_view tpl,
                   const std::vector<std::pair<std::string, std::string>>& vars) {
  std::string out;
  size_t pos = 0;
  while (pos < tpl.size()) {
    size_t open = tpl.find("{{", pos);
    if (open == std::string_view::npos) break;
    size_t close = tpl.find("}}", open + 2);
    if (close == std::string_view::npos) break;
    out.append(tpl.substr(pos, open - pos));
    std::string_view name = tpl.substr(open + 2, close - open - 2);
    for (const auto& [k, v] : vars) {
      if (name == k) {
        out += v;
        break;
      }
    }
    pos = close + 2;
  }
  out.append(tpl.substr(pos));
  return out;
}

Response page(int status, std::string body) {
  Response r;
  r.status = status;
  r.html = true;
  r.body = std::move(body);
  return r;
}

}  // namespace oauth2::detail
