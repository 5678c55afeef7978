// RAII for jansson values.

#pragma once

#include <jansson.h>
#include <openssl/crypto.h>

#include <memory>
#include <string>
#include <string_view>

namespace oauth2 {

struct JsonDecref {
  void operator()(json_t* j) const { json_decref(j); }
};
using Json = std::unique_ptr<json_t, JsonDecref>;

struct FreeChars {
  void operator()(char* p) const { free(p); }
};

// json_dumps into a std::string; order of keys as inserted.
inline std::string json_text(const json_t* j, size_t flags = 0) {
  std::unique_ptr<char, FreeChars> s(json_dumps(j, flags | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY));
  if (!s) throw std::bad_alloc();
  return std::string(s.get());
}

// Overwrites a JSON string's bytes (a secret jansson copied); anything
// else is left alone.
inline void wipe_json_string(json_t* j) noexcept {
  if (json_is_string(j)) {
    OPENSSL_cleanse(const_cast<char*>(json_string_value(j)), json_string_length(j));
  }
}

// Wipes a JSON string when the scope ends.
class WipeJsonOnExit {
 public:
  explicit WipeJsonOnExit(json_t* j) : j_(j) {}
  ~WipeJsonOnExit() { wipe_json_string(j_); }
  WipeJsonOnExit(const WipeJsonOnExit&) = delete;
  WipeJsonOnExit& operator=(const WipeJsonOnExit&) = delete;

 private:
  json_t* j_;
};

// What jansson says of the input it could not parse, without the input:
// its text ends with "near '<the text it was reading>'", and its "invalid
// Unicode" quotes the escape it could not take (a lone surrogate); either
// may be a password.  The line and column stay in err.
inline std::string json_error_text(const json_error_t& err) {
  std::string text(err.text);
  if (size_t near = text.find(" near "); near != std::string::npos) text.resize(near);
  if (text.rfind("invalid Unicode", 0) == 0) {
    if (size_t quote = text.find(" '"); quote != std::string::npos) text.resize(quote);
  }
  // jansson's flag name, which means nothing to a client
  if (size_t flag = text.find(" without JSON_ALLOW_NUL"); flag != std::string::npos) {
    text.resize(flag);
  }
  return text;
}

// docs/security.md 2.4: the nesting of raw JSON bytes, counted outside strings,
// before a parser (and a recursive destructor) sees them.
inline bool json_too_deep(std::string_view text, size_t max_depth) {
  size_t depth = 0;
  bool in_string = false, escaped = false;
  for (char ch : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (ch == '\\') {
        escaped = true;
      } else if (ch == '"') {
        in_string = false;
      }
    } else if (ch == '"') {
      in_string = true;
    } else if (ch == '[' || ch == '{') {
      if (++depth > max_depth) return true;
    } else if ((ch == ']' || ch == '}') && depth > 0) {
      depth--;
    }
  }
  return false;
}

}  // namespace oauth2
