#include "password_policy.hpp"

#include "unicode.hpp"

#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <map>
#include <string_view>
#include <unordered_set>

namespace oauth2 {

// data/common-passwords.txt, one per line (build/core/common_passwords.cpp)
extern const char kCommonPasswords[];

namespace {

struct CodeRange {
  char32_t first, last;
};
struct CaseMap {
  char32_t from, to;
};
#include "unicode_tables.inc"

template <size_t N>
bool in_ranges(const CodeRange (&table)[N], char32_t c) {
  const CodeRange* end = table + N;
  const CodeRange* r =
      std::upper_bound(table, end, c, [](char32_t v, const CodeRange& x) { return v < x.first; });
  return r != table && c <= (r - 1)->last;
}

bool is_space(char32_t c) {
  return in_ranges(kSpaceRanges, c);
}
bool is_digit(char32_t c) {
  return in_ranges(kDigitRanges, c);
}
// re's \w, which Django's similarity check splits on
bool word_char(char32_t c) {
  return in_ranges(kWordRanges, c);
}

// Python's str.lower(): Unicode's, not ASCII's alone (a "PASSWORD" with
// a Kelvin sign for its K is Django's common "password" too)
std::u32string lower(const std::u32string& s) {
  std::u32string out;
  out.reserve(s.size());
  for (char32_t c : s) {
    if (c < 0x80) {
      out.push_back(c >= 'A' && c <= 'Z' ? c + 32 : c);
    } else if (c == 0x130) {  // the one that lowers to two
      out += U"i\u0307";
    } else {
      const CaseMap* end = std::end(kLowerMap);
      const CaseMap* m = std::lower_bound(std::begin(kLowerMap), end, c,
                                          [](const CaseMap& x, char32_t v) { return x.from < v; });
      out.push_back(m != end && m->from == c ? m->to : c);
    }
  }
  return out;
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

// re.split(r"\W+", value) + [value]: the empty pieces too, where value
// starts or ends with a separator
std::vector<std::u32string> parts(const std::u32string& value) {
  std::vector<std::u32string> out(1);
  bool in_separator = false;
  for (char32_t c : value) {
    if (word_char(c)) {
      if (in_separator) out.emplace_back();
      in_separator = false;
      out.back().push_back(c);
    } else {
      in_separator = true;
    }
  }
  if (in_separator) out.emplace_back();
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

bool spec_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// password.lower().strip(), as CommonPasswordValidator looks it up (the
// list is UTF-8)
std::string common_key(const std::u32string& lowered) {
  size_t b = 0, e = lowered.size();
  while (b < e && is_space(lowered[b])) b++;
  while (e > b && is_space(lowered[e - 1])) e--;
  std::string out;
  for (size_t i = b; i < e; i++) {
    const char32_t c = lowered[i];
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else if (c < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (c >> 12)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (c >> 18)));
      out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
  }
  return out;
}

std::optional<bool> on_off(std::string_view v) {
  if (v == "on") return true;
  if (v == "off") return false;
  return std::nullopt;
}

}  // namespace

char32_t next_code_point(std::string_view s, size_t* i) {
  unsigned char c = static_cast<unsigned char>(s[*i]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
  if (*i + n > s.size()) n = 1;
  char32_t cp = n == 1 ? c : c & (0x7F >> n);
  for (size_t k = 1; k < n; k++) cp = (cp << 6) | (s[*i + k] & 0x3F);
  *i += n;
  return cp;
}

std::u32string code_points(std::string_view s) {
  std::u32string out;
  for (size_t i = 0; i < s.size();) out.push_back(next_code_point(s, &i));
  return out;
}

std::string_view py_strip(std::string_view s) {
  size_t begin = 0, end = 0;
  for (size_t i = 0; i < s.size();) {
    const size_t at = i;
    if (is_space(next_code_point(s, &i))) continue;
    if (end == 0) begin = at;
    end = i;
  }
  return s.substr(begin, end - begin);
}

bool unicode_space(char32_t c) {
  return is_space(c);
}
bool unicode_digit(char32_t c) {
  return is_digit(c);
}
bool unicode_decimal(char32_t c) {
  return in_ranges(kDecimalRanges, c);
}
bool unicode_word(char32_t c) {
  return word_char(c);
}
bool unicode_nfkc_unsure(char32_t c) {
  return in_ranges(kNfkcUnsureRanges, c);
}

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
    while (pos < spec.size() && spec_space(spec[pos])) pos++;
    size_t end = pos;
    while (end < spec.size() && !spec_space(spec[end])) end++;
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
  const std::u32string raw = code_points(password), pw = lower(raw);
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
  if (policy.min_length && raw.size() < policy.min_length) {
    out.push_back("This password is too short. It must contain at least " +
                  std::to_string(policy.min_length) +
                  (policy.min_length == 1 ? " character." : " characters."));
  }
  if (policy.common && common_passwords().count(common_key(pw))) {
    out.push_back("This password is too common.");
  }
  if (policy.numeric && !raw.empty() && std::all_of(raw.begin(), raw.end(), is_digit)) {
    out.push_back("This password is entirely numeric.");
  }
  return out;
}

}  // namespace oauth2
