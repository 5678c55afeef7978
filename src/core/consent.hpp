// Remembered consent: a user's grant of scopes to an application, kept so
// that the next authorization for the same or fewer scopes skips the
// consent page and prompt=none succeeds (OpenID Connect Core 3.1.2.4).
// A consent is a token record of type kConsent under the user and the
// client, so that deleting either deletes it; revoking it revokes every
// token the user holds from that client.

#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store.hpp"

namespace oauth2::detail {

constexpr int64_t kConsentTtl = 365 * 86400;

// the consent of user to client_id, if live at now
std::optional<Token> find_consent(Txn& txn, std::string_view realm, uint64_t user,
                                  std::string_view client_id, int64_t now);
// every scope of scope is in the consent's
bool consent_covers(const Token& consent, std::string_view scope);
// records the consent (the union with what was granted before) in txn
void remember_consent(Txn& txn, std::string_view realm, uint64_t user, std::string_view client_id,
                      std::string_view scope, int64_t now);
// the applications the user has authorized, by client_id: its live
// consents, and every application it still holds live tokens from
// without one (a consent that ran out after a code, the device flow, the
// password grant), as the token's scope and time
std::vector<Token> user_consents(Txn& txn, std::string_view realm, uint64_t user, int64_t now);
// deletes the consent and every token the user holds from client_id
// (codes, approved device codes, access and refresh tokens); false if
// there was nothing to delete
bool revoke_consent(Txn& txn, std::string_view realm, uint64_t user, std::string_view client_id);

}  // namespace oauth2::detail
