#include "password_policy.hpp"

#include <cstdlib>
#include <map>
#include <string_view>
#include <unordered_set>

namespace oauth2 {

// data/common-passwords.txt, one per line (build/core/common_passwords.cpp)
extern const char kCommonPasswords[];

namespace {

// the code points of s (UTF-8; a stray byte counts as one)
std::u32string code_points(std::string_view s) {
  std::u32string out;
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    if (i + n > s.size()) n = 1;
    char32_t cp = n == 1 ? c : c & (0x7F >> n);
    for (size_t k = 1; k < n; k++) cp = (cp << 6) | (s[i + k] & 0x3F);
    out.push_back(cp);
    i += n;
  }
  return out;
}

std::u32string lower(std::u32string s) {
  for (char32_t& c : s) {
    if (c >= 'A' && c <= 'Z') c += 32;
  }
  return s;
}

// difflib.SequenceMatcher(a=a, b=b).quick_ratio(), as Django calls it
double quick_ratio(const std::u32string& a, const std::u32string& b) {
  if (a.empty() && b.empty()) return 1.0;
  std::map<char32_t, long> avail;
  for (char32_t c : b) avail[c]++;
  long matches = 0;
  for (char32_t c : a) {
    auto it = avail.find(c);
    if (it != avail.end() && it->second > 0) {
      it->second--;
      matches++;
    }
  }
  return 2.0 * static_cast<double>(matches) / static_cast<double>(a.size() + b.size());
}

bool word_char(char32_t c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c >= 0x80;
}

// re.split(r"\W+", value) + [value]
std::vector<std::u32string> parts(const std::u32string& value) {
  std::vector<std::u32string> out(1);
  for (char32_t c : value) {
    if (word_char(c)) {
      out.back().push_back(c);
    } else if (!out.back().empty()) {
      out.emplace_back();
    }
  }
  out.push_back(value);
  return out;
}

bool too_similar(const std::u32string& password, std::string_view attribute,
                 double max_similarity) {
  if (attribute.empty()) return false;
  const std::u32string value = lower(code_points(attribute));
  for (const std::u32string& part : parts(value)) {
    // Django's exceeds_maximum_length_ratio(): a long password is not
    // "similar" to a much shorter part
    const double pwd_len = static_cast<double>(password.size());
    if (pwd_len >= 10.0 * static_cast<double>(part.size()) &&
        static_cast<double>(part.size()) < max_similarity / 2 * pwd_len) {
      continue;
    }
    if (quick_ratio(password, part) >= max_similarity) return true;
  }
  return false;
}

const std::unordered_set<std::string_view>& common_passwords() {
  // built once, never destroyed (the module may be unloaded on reload)
  static const auto* set = [] {
    auto* s = new std::unordered_set<std::string_view>();
    std::string_view all(kCommonPasswords);
    size_t pos = 0;
    while (pos < all.size()) {
      size_t nl = all.find('\n', pos);
      if (nl == std::string_view::npos) nl = all.size();
      if (nl > pos) s->insert(all.substr(pos, nl - pos));
      pos = nl + 1;
    }
    return s;
  }();
  return *set;
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

std::optional<bool> on_off(std::string_view v) {
  if (v == "on") return true;
  if (v == "off") return false;
  return std::nullopt;
}

}  // namespace

std::optional<PasswordPolicy> PasswordPolicy::parse(std::string_view spec, std::string* why) {
  PasswordPolicy p;
  auto fail = [&](std::string_view word) {
    *why = "invalid password policy \"" + std::string(word) +
           "\": use off, or min_length=<n> similarity=<0.1-1.0>|off "
           "common=on|off numeric=on|off";
    return std::nullopt;
  };
  size_t pos = 0;
  while (pos < spec.size()) {
    while (pos < spec.size() && is_space(spec[pos])) pos++;
    size_t end = pos;
    while (end < spec.size() && !is_space(spec[end])) end++;
    std::string_view word = spec.substr(pos, end - pos);
    pos = end;
    if (word.empty()) break;
    if (word == "off") {
      p.enabled = false;
      continue;
    }
    size_t eq = word.find('=');
    if (eq == std::string_view::npos) return fail(word);
    std::string_view key = word.substr(0, eq), value = word.substr(eq + 1);
    std::string v(value);
    char* stop = nullptr;
    if (key == "min_length") {
      unsigned long n = std::strtoul(v.c_str(), &stop, 10);
      if (v.empty() || *stop || n > 4096) return fail(word);
      p.min_length = n;
    } else if (key == "similarity") {
      if (value == "off") {
        p.max_similarity = 0;
        continue;
      }
      double d = std::strtod(v.c_str(), &stop);
      if (v.empty() || *stop || !(d >= 0.1 && d <= 1.0)) return fail(word);
      p.max_similarity = d;
    } else if (key == "common" || key == "numeric") {
      auto b = on_off(value);
      if (!b) return fail(word);
      (key == "common" ? p.common : p.numeric) = *b;
    } else {
      return fail(word);
    }
  }
  return p;
}

std::vector<std::string> password_problems(const PasswordPolicy& policy, std::string_view password,
                                           const PasswordOwner& owner) {
  std::vector<std::string> out;
  if (!policy.enabled) return out;
  const std::u32string pw = lower(code_points(password));
  if (policy.max_similarity > 0) {
    const std::pair<std::string_view, const char*> attrs[] = {{owner.username, "username"},
                                                              {owner.first_name, "first name"},
                                                              {owner.last_name, "last name"},
                                                              {owner.email, "email address"}};
    for (const auto& [value, name] : attrs) {
      if (too_similar(pw, value, policy.max_similarity)) {
        out.push_back(std::string("The password is too similar to the ") + name + ".");
        break;
      }
    }
  }
  if (policy.min_length && code_points(password).size() < policy.min_length) {
    out.push_back("This password is too short. It must contain at least " +
                  std::to_string(policy.min_length) +
                  (policy.min_length == 1 ? " character." : " characters."));
  }
  if (policy.common) {
    std::string_view t = password;
    while (!t.empty() && is_space(t.front())) t.remove_prefix(1);
    while (!t.empty() && is_space(t.back())) t.remove_suffix(1);
    std::string key(t);
    for (char& c : key) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    }
    if (common_passwords().count(key)) out.push_back("This password is too common.");
  }
  if (policy.numeric && !password.empty() &&
      password.find_first_not_of("0123456789") == std::string_view::npos) {
    out.push_back("This password is entirely numeric.");
  }
  return out;
}

}  // namespace oauth2
