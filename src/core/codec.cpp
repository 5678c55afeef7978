#include "codec.hpp"

#include <algorithm>
#include <array>

namespace oauth2 {

namespace {

int hex_value(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int b64_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

bool is_nqchar(unsigned char c) {
  // NQCHAR = %x21 / %x23-5B / %x5D-7E
  return c == 0x21 || (c >= 0x23 && c <= 0x5B) || (c >= 0x5D && c <= 0x7E);
}

}  // namespace

bool valid_utf8(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;  // continuation byte, overlong lead (C0/C1) or > F4
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; k++) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;  // overlong, out of range or a surrogate
    }
    i += len;
  }
  return true;
}

bool has_control(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char ch) {
    unsigned char c = static_cast<unsigned char>(ch);
    return c < 0x20 || c == 0x7F;
  });
}

namespace {

// The %XX escape at s[*i] onto out, *i left on its last digit; false if
// it is not one.
bool unescape(std::string_view s, size_t* i, std::string* out) {
  if (*i + 2 >= s.size()) return false;
  int hi = hex_value(static_cast<unsigned char>(s[*i + 1]));
  int lo = hex_value(static_cast<unsigned char>(s[*i + 2]));
  if (hi < 0 || lo < 0) return false;
  out->push_back(static_cast<char>(hi * 16 + lo));
  *i += 2;
  return true;
}

}  // namespace

std::optional<std::string> form_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); i++) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%') {
      if (!unescape(s, &i, &out)) return std::nullopt;
    } else if (c < 0x21 || c > 0x7E) {
      return std::nullopt;  // raw space, control or non-ASCII byte
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  if (!valid_utf8(out) || has_control(out)) return std::nullopt;
  return out;
}

std::optional<std::string> percent_decode_segment(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] != '%') {
      out.push_back(s[i]);
    } else if (!unescape(s, &i, &out)) {
      return std::nullopt;
    }
  }
  if (has_control(out)) return std::nullopt;
  return out;
}

Form::Status Form::parse(std::string_view body) {
  Status st = parse_all(body);
  if (st != Status::kOk) params_.clear();  // never a partial parse
  return st;
}

Form::Status Form::parse_all(std::string_view body) {
  params_.clear();
  if (body.empty()) return Status::kOk;
  size_t pos = 0;
  while (pos <= body.size()) {
    size_t amp = body.find('&', pos);
    if (amp == std::string_view::npos) amp = body.size();
    std::string_view pair = body.substr(pos, amp - pos);
    if (pair.empty()) return Status::kMalformed;
    size_t eq = pair.find('=');
    std::string_view raw_name = pair.substr(0, eq);
    std::string_view raw_value =
        eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    if (raw_name.empty()) return Status::kMalformed;
    auto name = form_decode(raw_name);
    auto value = form_decode(raw_value);
    if (!name || !value || name->empty()) return Status::kMalformed;
    if (*name != "resource") {  // RFC 8707 2: resource may repeat
      for (const auto& p : params_) {
        if (p.first == *name) return Status::kDuplicate;
      }
    }
    if (params_.size() == kMaxParams) return Status::kTooMany;
    params_.emplace_back(std::move(*name), std::move(*value));
    pos = amp + 1;
    if (amp == body.size()) break;
  }
  return Status::kOk;
}

std::vector<std::string_view> Form::all(std::string_view name) const {
  std::vector<std::string_view> out;
  for (const auto& p : params_) {
    if (p.first == name) out.emplace_back(p.second);
  }
  return out;
}

std::optional<std::string_view> Form::get(std::string_view name) const {
  for (const auto& p : params_) {
    if (p.first == name) {
      if (p.second.empty()) return std::nullopt;
      return std::string_view(p.second);
    }
  }
  return std::nullopt;
}

std::optional<std::string> base64_decode_strict(std::string_view s) {
  if (s.empty() || s.size() % 4 != 0) return std::nullopt;
  size_t pad = 0;
  if (s.back() == '=') pad++;
  if (s.size() >= 2 && s[s.size() - 2] == '=') pad++;
  std::string out;
  out.reserve(s.size() / 4 * 3);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < s.size() - pad; i++) {
    int v = b64_value(static_cast<unsigned char>(s[i]));
    if (v < 0) return std::nullopt;  // '=' in the middle lands here too
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  // the unused low bits of the last symbol must be zero (canonical form)
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

std::string base64url_encode(const unsigned char* p, size_t n) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < n; i += 3) {
    uint32_t v = (uint32_t(p[i]) << 16) | (uint32_t(p[i + 1]) << 8) | p[i + 2];
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  if (n - i == 1) {
    uint32_t v = uint32_t(p[i]) << 16;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
  } else if (n - i == 2) {
    uint32_t v = (uint32_t(p[i]) << 16) | (uint32_t(p[i + 1]) << 8);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
  }
  return out;
}

std::string hex_encode(const unsigned char* p, size_t n) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; i++) {
    out.push_back(kHex[p[i] >> 4]);
    out.push_back(kHex[p[i] & 15]);
  }
  return out;
}

std::string percent_encode(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 16);
  for (char ch : s) {
    switch (ch) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(ch);
    }
  }
  return out;
}

std::string_view media_type(std::string_view ct) {
  std::string_view type = ct.substr(0, ct.find(';'));
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) {
    type.remove_suffix(1);
  }
  while (!type.empty() && (type.front() == ' ' || type.front() == '\t')) {
    type.remove_prefix(1);
  }
  return type;
}

std::optional<std::string> hex_decode(std::string_view s) {
  if (s.size() % 2 != 0) return std::nullopt;
  std::string out;
  out.reserve(s.size() / 2);
  for (size_t i = 0; i < s.size(); i += 2) {
    int hi = hex_value(static_cast<unsigned char>(s[i]));
    int lo = hex_value(static_cast<unsigned char>(s[i + 1]));
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); i++) {
    unsigned char x = static_cast<unsigned char>(a[i]);
    unsigned char y = static_cast<unsigned char>(b[i]);
    if (x >= 'A' && x <= 'Z') x = static_cast<unsigned char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<unsigned char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

std::string_view auth_scheme(std::string_view header) {
  size_t sp = header.find(' ');
  return sp == std::string_view::npos ? header : header.substr(0, sp);
}

std::optional<BasicCredentials> parse_basic(std::string_view header, bool* scheme_is_basic) {
  *scheme_is_basic = iequals(auth_scheme(header), "Basic");
  if (!*scheme_is_basic) return std::nullopt;
  if (header.size() <= 6 || header[5] != ' ') return std::nullopt;
  auto decoded = base64_decode_strict(header.substr(6));
  if (!decoded) return std::nullopt;
  size_t colon = decoded->find(':');
  if (colon == std::string::npos || colon == 0) return std::nullopt;
  auto id = form_decode(std::string_view(*decoded).substr(0, colon));
  auto secret = form_decode(std::string_view(*decoded).substr(colon + 1));
  if (!id || !secret || id->empty()) return std::nullopt;
  return BasicCredentials{std::move(*id), std::move(*secret)};
}

namespace chars {

namespace {

constexpr std::array<unsigned char, 256> make_classes() {
  std::array<unsigned char, 256> t{};
  for (int c = 0; c < 256; c++) {
    const bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (alnum || c == '-' || c == '_') t[c] |= kB64Url;
    if (alnum || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/') {
      t[c] |= kToken68;
    }
    if (alnum || c == '.' || c == '-' || c == '_') t[c] |= kRealm;
  }
  return t;
}

}  // namespace

const std::array<unsigned char, 256> kClass = make_classes();

}  // namespace chars

bool is_token68(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && chars::is(s[i], chars::kToken68)) i++;
  if (i == 0) return false;
  while (i < s.size() && s[i] == '=') i++;
  return i == s.size();
}

bool is_vschar(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char ch) {
    unsigned char c = static_cast<unsigned char>(ch);
    return c >= 0x20 && c <= 0x7E;
  });
}

bool parse_scope(std::string_view s, std::vector<std::string_view>* tokens) {
  std::vector<std::string_view> local;
  std::vector<std::string_view>& out = tokens ? *tokens : local;
  out.clear();
  if (s.empty()) return false;
  size_t pos = 0;
  while (true) {
    size_t sp = s.find(' ', pos);
    std::string_view tok = s.substr(pos, sp == std::string_view::npos ? s.size() - pos : sp - pos);
    if (tok.empty()) return false;
    for (char ch : tok) {
      if (!is_nqchar(static_cast<unsigned char>(ch))) return false;
    }
    out.push_back(tok);
    if (sp == std::string_view::npos) break;
    pos = sp + 1;
  }
  // a token twice is malformed: sorted, in n log n (thousands of tokens
  // fit a body, and a check of each against all would be quadratic)
  std::vector<std::string_view> sorted(out);
  std::sort(sorted.begin(), sorted.end());
  return std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end();
}

}  // namespace oauth2
