// RAII for jansson values.

#pragma once

#include <jansson.h>

#include <memory>
#include <string>

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
  std::unique_ptr<char, FreeChars> s(
      json_dumps(j, flags | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY));
  if (!s) throw std::bad_alloc();
  return std::string(s.get());
}

}  // namespace oauth2
