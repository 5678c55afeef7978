// libFuzzer harness for src/core/codec (docs/security.md R7, R11, R14, R81):
// the form decoder, strict base64, the Basic parser, token68, VSCHAR and
// scope lists.  Beyond "no crash", it checks what each decoder promises and
// aborts when a promise is broken.  Build and run with scripts/fuzz-codec.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "codec.hpp"

namespace {

void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz-codec: broken promise: %s\n", what);
    std::abort();
  }
}

// What a decoded OAuth parameter may hold (R7).
void check_clean(std::string_view s, const char* what) {
  require(oauth2::valid_utf8(s), what);
  require(!oauth2::has_control(s), what);
}

std::string std_base64(const std::string& raw) {
  std::string s = oauth2::base64url_encode(
      reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
  for (char& c : s) {
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  while (s.size() % 4) s += '=';
  return s;
}

const char* const kNames[] = {"grant_type", "client_id", "client_secret",
                              "scope",      "token",     "a",
                              "",           "Client_Id"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);

  // form bodies: a parse is all or nothing, and every value is clean
  oauth2::Form form;
  oauth2::Form::Status st = form.parse(in);
  if (st == oauth2::Form::Status::kOk) {
    for (const char* name : kNames) {
      auto v = form.get(name);
      if (v) {
        require(!v->empty(), "Form::get returned an empty value");
        check_clean(*v, "Form value");
      }
    }
    oauth2::Form again;
    require(again.parse(in) == st, "Form::parse is not deterministic");
  }

  if (auto d = oauth2::form_decode(in)) {
    check_clean(*d, "form_decode output");
    require(d->size() <= in.size(), "form_decode grew its input");
  }

  // strict base64 is canonical: decoding then encoding gives the input
  if (auto d = oauth2::base64_decode_strict(in)) {
    require(std_base64(*d) == in,
            "base64_decode_strict accepted a "
            "non-canonical encoding");
  }

  // Basic: a non-empty, clean id; a clean secret
  bool is_basic = false;
  if (auto c = oauth2::parse_basic(in, &is_basic)) {
    require(is_basic, "credentials without the Basic scheme");
    require(!c->id.empty(), "empty client id");
    check_clean(c->id, "Basic id");
    check_clean(c->secret, "Basic secret");
  }

  if (oauth2::is_token68(in)) {
    require(!in.empty() && in.front() != '=', "token68 starts with '='");
    require(oauth2::is_vschar(in), "token68 that is not VSCHAR");
  }

  // scope lists: tokens joined by single spaces give the input back
  std::vector<std::string_view> tokens;
  if (oauth2::parse_scope(in, &tokens)) {
    std::string joined;
    for (size_t i = 0; i < tokens.size(); i++) {
      require(!tokens[i].empty(), "empty scope token");
      for (size_t k = 0; k < i; k++) {
        require(tokens[k] != tokens[i], "repeated scope token");
      }
      if (i) joined += ' ';
      joined.append(tokens[i]);
    }
    require(joined == in, "scope tokens do not rebuild the input");
    require(oauth2::is_vschar(in), "scope list that is not VSCHAR");
  }

  if (auto h = oauth2::hex_decode(in)) {
    std::string back = oauth2::hex_encode(
        reinterpret_cast<const unsigned char*>(h->data()), h->size());
    require(back.size() == in.size(), "hex round trip changed the length");
    for (size_t i = 0; i < in.size(); i++) {
      char c = in[i] >= 'A' && in[i] <= 'F' ? char(in[i] + 32) : in[i];
      require(back[i] == c, "hex round trip changed a digit");
    }
  }
  return 0;
}
