// Authenticated encryption of a small secret under a high-entropy key
// string (a refresh token): a rotated refresh token keeps its successors
// sealed under itself for the grace period, so that a racer presenting the
// same token receives the same pair, while a dump of the store (which
// never holds the refresh token) reveals nothing.

#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace oauth2 {

// AES-256-GCM, key SHA-256("oauth2-seal-v1" || key_material), random
// 96-bit nonce: nonce || ciphertext || tag.
std::string seal(std::string_view key_material, std::string_view plaintext);
std::optional<std::string> unseal(std::string_view key_material, std::string_view sealed);

}  // namespace oauth2
