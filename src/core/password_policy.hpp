// Django's default password validators, applied wherever a password is
// set (registration, the users API, the CLI): at least min_length
// characters, not entirely numeric, not too similar to the username,
// first and last name or email, not one of Django's 20,000 common
// passwords (data/common-passwords.txt).  Messages are Django's own, so a
// DRF client shows them as it did.

#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace oauth2 {

struct PasswordPolicy {
  bool enabled = true;
  size_t min_length = 8;        // 0: no minimum
  double max_similarity = 0.7;  // 0: not checked
  bool common = true;
  bool numeric = true;

  // "off", or "key=value" words: min_length=<n>, similarity=<0.1-1.0>|off,
  // common=on|off, numeric=on|off (unnamed ones keep their default).
  // nullopt with *why when the text is not one.
  static std::optional<PasswordPolicy> parse(std::string_view spec, std::string* why);
};

// What the similarity check compares the password with.
struct PasswordOwner {
  std::string_view username, first_name, last_name, email;
};

// Every rule the password breaks, in Django's order and words; empty if
// it is acceptable.
std::vector<std::string> password_problems(const PasswordPolicy& policy, std::string_view password,
                                           const PasswordOwner& owner);

}  // namespace oauth2
