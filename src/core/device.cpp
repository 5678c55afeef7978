// The device authorization endpoint (RFC 8628 3.1, 3.2), the device
// records (device.hpp) and the token endpoint's device_code grant (3.4,
// 3.5).  Every check and mark of a device record happens in one change
// (Store::change): a poll, an approval and a redemption cannot race.

#include "device.hpp"

#include <cstdio>

#include "audience.hpp"
#include "codec.hpp"
#include "crypto.hpp"
#include "json.hpp"
#include "store_records.hpp"

namespace oauth2 {

namespace detail {

namespace {

const char* const kStatusNames[] = {"pending", "approved", "denied"};

// The user code record's id: a token-shaped value of its SHA-256, so that
// its TokenId is computed as any other's and never from the code itself.
TokenId user_code_id(std::string_view normalized) {
  std::string in = "device-user\n";
  in.append(normalized);
  Digest d = sha256(in);
  return token_id(base64url_encode(d.data(), d.size()));
}

std::string random_user_code() {
  unsigned char b[kUserCodeLen];
  std::string out;
  while (out.size() < kUserCodeLen) {
    random_bytes(b, sizeof(b));
    for (unsigned char c : b) {
      // 240 = 12 * 20: no modulo bias
      if (c < 240 && out.size() < kUserCodeLen) out.push_back(kUserCodeAlphabet[c % 20]);
    }
  }
  return out;
}

Response device_error(const char* error, const char* description) {
  return oauth_error(400, error, description);
}

}  // namespace

std::optional<std::string> normalize_user_code(std::string_view in) {
  if (in.size() > 64) return std::nullopt;
  std::string out;
  for (char ch : in) {
    if (ch == '-' || ch == ' ') continue;
    if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 'a' + 'A');
    if (kUserCodeAlphabet.find(ch) == std::string_view::npos) return std::nullopt;
    out.push_back(ch);
  }
  if (out.size() != kUserCodeLen) return std::nullopt;
  return out;
}

std::string format_user_code(std::string_view code) {
  std::string out(code.substr(0, 4));
  out += "-";
  out.append(code.substr(4));
  return out;
}

std::optional<DeviceState> parse_device_state(std::string_view data) {
  char status[16] = {0};
  long long interval = 0, last = 0, expires = 0;
  std::string text(data);
  if (std::sscanf(text.c_str(), "%15s %lld %lld %lld", status, &interval, &last, &expires) != 4) {
    return std::nullopt;
  }
  DeviceState s;
  s.interval = interval;
  s.last_poll = last;
  s.expires = expires;
  for (int i = 0; i < 3; i++) {
    if (std::string_view(status) == kStatusNames[i]) {
      s.status = static_cast<DeviceState::Status>(i);
      return s;
    }
  }
  return std::nullopt;
}

std::string encode_device_state(const DeviceState& s) {
  return std::string(kStatusNames[s.status]) + " " + std::to_string(s.interval) + " " +
         std::to_string(s.last_poll) + " " + std::to_string(s.expires);
}

std::optional<PendingDevice> find_user_code(Txn& txn, std::string_view realm,
                                            std::string_view normalized, int64_t now) {
  PendingDevice p;
  p.user_code_id = user_code_id(normalized);
  auto uc = txn.get_token(realm, p.user_code_id);
  if (!uc || uc->type != TokenType::kDeviceUser || now >= uc->expires_at) return std::nullopt;
  auto bytes = hex_decode(uc->data);
  auto id = bytes ? records::parse_token_id(*bytes) : std::nullopt;
  if (!id) return std::nullopt;
  auto dev = txn.get_token(realm, *id);
  if (!dev || dev->type != TokenType::kDevice || dev->client_id != uc->client_id) {
    return std::nullopt;
  }
  auto st = parse_device_state(dev->data);
  if (!st || st->status != DeviceState::kPending || now >= st->expires) return std::nullopt;
  p.device_id = *id;
  p.device = std::move(*dev);
  return p;
}

bool decide_device(Txn& txn, std::string_view realm, std::string_view normalized, uint64_t user,
                   bool approve, int64_t now) {
  auto p = find_user_code(txn, realm, normalized, now);
  if (!p) return false;
  auto enabled = txn.client_enabled(realm, p->device.client_id);
  if (!enabled || !*enabled) return false;
  DeviceState st = *parse_device_state(p->device.data);
  st.status = approve ? DeviceState::kApproved : DeviceState::kDenied;
  Token t = p->device;
  t.data = encode_device_state(st);
  t.user = std::to_string(user);  // the user index: deleting the user deletes it
  // the user changes, so the record is written anew (update_token keeps
  // the indexes as they are)
  txn.delete_token(realm, p->device_id);
  txn.put_token(realm, p->device_id, t);
  txn.delete_token(realm, p->user_code_id);  // a user code serves once
  txn.commit();
  return true;
}

namespace {

// The new request's records, in txn; the user code, or nullopt when the
// random user codes collided with live ones (retried by the caller).
std::optional<std::string> store_device_request(Txn& txn, const IssueSettings& s,
                                                const std::string& device_code,
                                                const Token& device) {
  std::string user_code = random_user_code();
  Token uc;
  uc.type = TokenType::kDeviceUser;
  uc.issued_at = device.issued_at;
  uc.expires_at = device.expires_at;
  uc.client_id = device.client_id;
  const TokenId dev_id = token_id(device_code);
  const std::string bytes = records::token_id_bytes(dev_id);
  uc.data = hex_encode(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  const TokenId uc_id = user_code_id(user_code);
  if (auto old = txn.get_token(s.realm, uc_id)) {
    if (s.now < old->expires_at) return std::nullopt;
    txn.delete_token(s.realm, uc_id);  // an expired one the sweep has not taken yet
  }
  if (!txn.put_token(s.realm, dev_id, device) || !txn.put_token(s.realm, uc_id, uc)) {
    return std::nullopt;
  }
  txn.commit();
  return user_code;
}

std::string device_response(const IssueSettings& s, const std::string& device_code,
                            const std::string& user_code, int64_t ttl) {
  const std::string uri =
      issuer_url(s.loc->issuer, s.loc->config->path(s.loc->realm, OAUTH2_ENDPOINT_DEVICE));
  const std::string shown = format_user_code(user_code);
  const std::string complete = uri + "?user_code=" + shown;
  Json j(json_object());
  json_object_set_new(j.get(), "device_code", json_stringn(device_code.data(), device_code.size()));
  json_object_set_new(j.get(), "user_code", json_stringn(shown.data(), shown.size()));
  json_object_set_new(j.get(), "verification_uri", json_stringn(uri.data(), uri.size()));
  json_object_set_new(j.get(), "verification_uri_complete",
                      json_stringn(complete.data(), complete.size()));
  json_object_set_new(j.get(), "expires_in", json_integer(ttl));
  json_object_set_new(j.get(), "interval", json_integer(kDeviceInterval));
  return json_text(j.get());
}

EndpointResult new_device_request(Store& store, const Request& req, const Client& client,
                                  std::string scope, std::string audience) {
  IssueSettings s(req);
  const int64_t ttl = std::max<int64_t>(1, req.loc.device_code_ttl);
  Token t;
  t.type = TokenType::kDevice;
  t.issued_at = s.now;
  t.client_id = client.client_id;
  t.scope = std::move(scope);
  t.audience = std::move(audience);
  t.family = new_family();
  DeviceState st;
  st.expires = add_ttl(s.now, ttl);
  t.data = encode_device_state(st);
  t.expires_at = add_ttl(st.expires, kDeviceLinger);
  const bool used_header = req.c.has_authorization != 0;
  return pending_response([&store, s, t, ttl, client, used_header] {
    std::string device_code = new_token();
    WipeOnExit wipe_code(device_code);
    for (int attempt = 0; attempt < 4; attempt++) {
      std::optional<Response> gone;
      auto user_code = store.change([&](Txn& txn) -> std::optional<std::string> {
        // the application as it authenticated, still (R35, R70)
        gone = refused_if_gone(txn, s.realm, client, used_header);
        if (gone) return std::nullopt;
        return store_device_request(txn, s, device_code, t);
      });
      if (gone) return std::move(*gone);
      if (user_code) return ok_json(device_response(s, device_code, *user_code, ttl));
      device_code = new_token();
    }
    return unavailable();
  });
}

}  // namespace

}  // namespace detail

using namespace detail;

// RFC 8628 3.1: the client authenticates as at the token endpoint (a
// public client names itself with client_id); scope and resource as there.
EndpointResult device_authorization_endpoint(Store& store, const Request& req) {
  Form form;
  if (auto err = check_http(req, form)) return done(std::move(*err));
  ClientAuth auth;
  if (auto refused = client_of(store, req, form, auth)) return std::move(*refused);
  const Client& client = *auth.client;
  if (!client.allows_grant(kDeviceGrant)) {
    return done(oauth_error(400, "unauthorized_client", "The client may not use the device grant"));
  }
  auto scope = grant_scope(client, form.get("scope").value_or(""), req.loc.default_scope);
  if (!scope) {
    return done(oauth_error(400, "invalid_scope", "The requested scope is invalid or not allowed"));
  }
  Target target = requested_target(form, client);
  if (target.error) return done(oauth_error(400, target.error, target.description));
  if (req.loc.config->path(req.loc.realm, OAUTH2_ENDPOINT_DEVICE).empty()) {
    Response r = oauth_error(500, "server_error", "No verification page is configured");
    r.reason = "no location has oauth2_device";
    return done(std::move(r));
  }
  return new_device_request(store, req, client, std::move(*scope), std::move(target.audience));
}

namespace detail {

namespace {

// Why the device record t may not be redeemed now, or nullopt.  A poll of
// a pending request at its interval is recorded in txn; one sooner is
// answered slow_down (RFC 8628 3.5: the device adds 5 s to its interval)
// and not written, so that polling flat out costs the store at most one
// write per device code per interval (R88).
std::optional<Response> device_refusal(Txn& txn, const IssueSettings& s, const TokenId& id,
                                       std::optional<Token>& t, const Client& client) {
  // bound to its client, like a code (R30)
  if (!t || t->type != TokenType::kDevice || t->client_id != client.client_id) {
    return invalid_grant("The device code is invalid");
  }
  auto st = parse_device_state(t->data);
  if (!st) return invalid_grant("The device code is invalid");
  if (t->used_at != 0) {
    // like a replayed code (R28): a second redemption revokes what the
    // first issued
    txn.revoke_family(s.realm, t->family);
    txn.commit();
    return invalid_grant("The device code was already used");
  }
  if (s.now >= st->expires) return device_error("expired_token", "The device code has expired");
  if (st->status == DeviceState::kDenied) {
    return device_error("access_denied", "The user denied the request");
  }
  if (st->status == DeviceState::kApproved) return std::nullopt;
  if (st->last_poll != 0 && s.now - st->last_poll < st->interval) {
    return device_error("slow_down", "Polled faster than the interval");
  }
  st->last_poll = s.now;
  t->data = encode_device_state(*st);
  txn.update_token(s.realm, id, *t);
  txn.commit();
  return device_error("authorization_pending", "The user has not yet decided");
}

}  // namespace

EndpointResult device_code_grant(Store& store, const Request& req, const Form& form,
                                 const Client& c, const std::string& asked) {
  if (!c.allows_grant(kDeviceGrant)) {
    return done(oauth_error(400, "unauthorized_client", "The client may not use this grant type"));
  }
  auto code = form.get("device_code");
  if (!code) return done(invalid_request("device_code is required"));
  if (code->size() > 512 || !is_vschar(*code)) {
    return done(invalid_grant("The device code is invalid"));
  }
  const TokenId id = token_id(*code);
  IssueSettings s(req);
  Client client = c;
  const bool used_header = req.c.has_authorization != 0;
  return run_change(store, s, [s, client, id, asked, used_header](Txn& txn, GrantState& st) {
    auto t = txn.get_token(s.realm, id);
    if (auto refused = device_refusal(txn, s, id, t, client)) {
      st.unseen = !t;
      st.response = std::move(*refused);
      return;
    }
    if (!txn.active_username(s.realm, token_user_id(*t))) {
      st.response = invalid_grant("The user is not active");
      return;
    }
    std::string aud;
    if (auto refused =
            stored_grant_refusal(txn, s.realm, client, used_header, asked, t->audience, &aud)) {
      st.response = std::move(*refused);
      return;
    }
    auto scope = redeemed_scope(st, client, s.loc->default_scope, t->scope);
    if (!scope) return;
    t->used_at = s.now;
    txn.update_token(s.realm, id, *t);
    IssuedPair pair =
        issue_pair(txn, s, client, *scope, t->user, t->family, client.allows_grant("refresh_token"),
                   nullptr, 0, aud, &t->audience);
    txn.commit();
    st.response = issued(pair, pair.json(), kDeviceGrant);
  });
}

}  // namespace detail

}  // namespace oauth2
