// Python's own Unicode classes, from the tables scripts/gen-unicode-tables
// writes (src/core/unicode_tables.inc): Django's validators and a resource
// server's int() judge text by them.

#pragma once

#include <string>
#include <string_view>

namespace oauth2 {

// the code points of s (UTF-8; a stray byte counts as one)
std::u32string code_points(std::string_view s);
// the code point at s[*i], *i moved past it (a stray byte is one)
char32_t next_code_point(std::string_view s, size_t* i);
// str.isspace(): what str.strip() and int() strip
bool unicode_space(char32_t c);
// str.strip(): s without the spaces around it (DRF's CharField trims so)
std::string_view py_strip(std::string_view s);
// str.isdigit(): Django's "entirely numeric"
bool unicode_digit(char32_t c);
// str.isdecimal(): the digits int() reads
bool unicode_decimal(char32_t c);
// re's \w on str: str.isalnum() or "_" (Django's username validator)
bool unicode_word(char32_t c);
// NFKC_Quick_Check No or Maybe: NFKC may change text that holds c (alone,
// or with the code point before it); text without one is NFKC already
bool unicode_nfkc_unsure(char32_t c);

}  // namespace oauth2
