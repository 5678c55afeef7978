#include "consent.hpp"

#include <algorithm>
#include <set>

#include "codec.hpp"
#include "crypto.hpp"
#include "endpoint_util.hpp"

namespace oauth2::detail {

namespace {

// The consent's key: a value of the user and the client, in the shape of
// a token (base64url), so that its TokenId is computed as any other's.
TokenId consent_id(uint64_t user, std::string_view client_id) {
  std::string in = "consent\n" + std::to_string(user) + "\n";
  in.append(client_id);
  Digest d = sha256(in);
  return token_id(base64url_encode(d.data(), d.size()));
}

std::vector<std::string_view> scopes_of(std::string_view scope) {
  std::vector<std::string_view> items;
  if (!parse_scope(scope, &items)) items.clear();
  return items;
}

}  // namespace

std::optional<Token> find_consent(Txn& txn, std::string_view realm, uint64_t user,
                                  std::string_view client_id, int64_t now) {
  auto t = txn.get_token(realm, consent_id(user, client_id));
  if (!t || t->type != TokenType::kConsent || now >= t->expires_at || t->client_id != client_id ||
      token_user_id(*t) != user) {
    return std::nullopt;
  }
  return t;
}

bool consent_covers(const Token& consent, std::string_view scope) {
  return scope_within(scope, consent.scope);
}

void remember_consent(Txn& txn, std::string_view realm, uint64_t user, std::string_view client_id,
                      std::string_view scope, int64_t now) {
  TokenId id = consent_id(user, client_id);
  std::string merged(scope);
  if (auto old = txn.get_token(realm, id); old && old->type == TokenType::kConsent) {
    // an expired consent (not yet swept) grants nothing: its scopes, which
    // the user no longer sees, are not carried into the new one
    std::vector<std::string_view> asked = scopes_of(scope);
    for (auto s : now < old->expires_at ? scopes_of(old->scope) : scopes_of("")) {
      if (std::find(asked.begin(), asked.end(), s) == asked.end()) {
        merged += merged.empty() ? "" : " ";
        merged.append(s);
      }
    }
    txn.delete_token(realm, id);
  }
  Token t;
  t.type = TokenType::kConsent;
  t.issued_at = now;
  t.expires_at = add_ttl(now, kConsentTtl);
  t.client_id = std::string(client_id);
  t.user = std::to_string(user);
  t.scope = std::move(merged);
  txn.put_token(realm, id, t);
}

std::vector<Token> user_consents(Txn& txn, std::string_view realm, uint64_t user, int64_t now) {
  std::vector<Token> out;
  std::set<std::string> listed;
  for (auto& [id, t] : txn.user_tokens_of_type(realm, user, TokenType::kConsent)) {
    if (now < t.expires_at && listed.insert(t.client_id).second) out.push_back(std::move(t));
  }
  for (TokenType type : {TokenType::kRefresh, TokenType::kAccess}) {
    for (auto& [id, t] : txn.user_tokens_of_type(realm, user, type)) {
      if (now >= t.expires_at || !listed.insert(t.client_id).second) continue;
      Token grant;
      grant.type = TokenType::kConsent;
      grant.client_id = std::move(t.client_id);
      grant.scope = std::move(t.scope);
      grant.issued_at = t.issued_at;
      grant.expires_at = t.expires_at;
      out.push_back(std::move(grant));
    }
  }
  std::sort(out.begin(), out.end(),
            [](const Token& a, const Token& b) { return a.client_id < b.client_id; });
  return out;
}

bool revoke_consent(Txn& txn, std::string_view realm, uint64_t user, std::string_view client_id) {
  // the tokens go whether or not the consent is still there: it may have
  // run out after a last code, whose refresh token lives on
  bool any = txn.delete_token(realm, consent_id(user, client_id));
  for (TokenType type :
       {TokenType::kCode, TokenType::kDevice, TokenType::kAccess, TokenType::kRefresh}) {
    for (auto& [id, t] : txn.user_tokens_of_type(realm, user, type)) {
      if (t.client_id == client_id) any = txn.delete_token(realm, id) || any;
    }
  }
  return any;
}

}  // namespace oauth2::detail
