// RFC 8707 resource indicators: see audience.hpp.

#include "audience.hpp"

#include <algorithm>

#include "codec.hpp"
#include "location.hpp"
#include "store.hpp"

namespace oauth2 {

namespace {

bool scheme_char(char ch, bool first) {
  bool alpha = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
  if (first) return alpha;
  return alpha || (ch >= '0' && ch <= '9') || ch == '+' || ch == '-' || ch == '.';
}

bool contains(const std::vector<std::string_view>& items, std::string_view s) {
  return std::find(items.begin(), items.end(), s) != items.end();
}

Target refused(const char* error, const char* description) {
  Target t;
  t.error = error;
  t.description = description;
  return t;
}

}  // namespace

bool valid_resource(std::string_view uri) {
  if (uri.empty() || uri.size() > kMaxResourceLen) return false;
  size_t colon = uri.find(':');
  if (colon == 0 || colon == std::string_view::npos || colon + 1 == uri.size()) return false;
  for (size_t i = 0; i < colon; i++) {
    if (!scheme_char(uri[i], i == 0)) return false;
  }
  for (char ch : uri) {
    // visible ASCII, and none of the characters RFC 3986 never allows
    if (ch <= 0x20 || ch >= 0x7F || ch == '"' || ch == '<' || ch == '>' || ch == '\\' ||
        ch == '^' || ch == '`' || ch == '{' || ch == '|' || ch == '}' || ch == '#') {
      return false;
    }
  }
  return true;
}

std::vector<std::string_view> audience_items(std::string_view audience) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < audience.size()) {
    size_t sp = audience.find(' ', pos);
    if (sp == std::string_view::npos) sp = audience.size();
    if (sp > pos) out.push_back(audience.substr(pos, sp - pos));
    pos = sp + 1;
  }
  return out;
}

Target requested_target(const Form& form, const Client& client) {
  std::vector<std::string_view> asked;
  for (std::string_view r : form.all("resource")) {
    if (r.empty() || contains(asked, r)) continue;  // R5: empty is absent
    if (asked.size() == kMaxResources) {
      return refused("invalid_request", "Too many resource parameters");
    }
    if (!valid_resource(r)) {
      return refused("invalid_target", "A resource must be an absolute URI without a fragment");
    }
    const auto& reg = client.resources;
    if (std::find(reg.begin(), reg.end(), r) == reg.end()) {
      return refused("invalid_target", "The client is not registered for that resource");
    }
    asked.push_back(r);
  }
  Target t;
  for (std::string_view r : asked) {
    if (!t.audience.empty()) t.audience += ' ';
    t.audience += r;
  }
  return t;
}

std::optional<std::string> narrow_target(const std::string& asked, const std::string& held) {
  if (asked.empty()) return held;
  const std::vector<std::string_view> have = audience_items(held);
  for (std::string_view r : audience_items(asked)) {
    if (!contains(have, r)) return std::nullopt;
  }
  return asked;
}

bool audience_accepts(std::string_view audience, const Location& loc) {
  const std::string& accepted = loc.accepted_audience();
  if (audience.empty()) return accepted == loc.jwt_audience();
  return !accepted.empty() && contains(audience_items(audience), accepted);
}

json_t* audience_json(std::string_view audience, std::string_view fallback) {
  std::vector<std::string_view> items = audience_items(audience);
  if (items.empty() && !fallback.empty()) items.push_back(fallback);
  if (items.empty()) return nullptr;
  if (items.size() == 1) return json_stringn(items[0].data(), items[0].size());
  json_t* a = json_array();
  for (std::string_view i : items) json_array_append_new(a, json_stringn(i.data(), i.size()));
  return a;
}

}  // namespace oauth2
