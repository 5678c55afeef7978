// Python's own Unicode classes, from the tables scripts/gen-unicode-tables
// writes (src/core/unicode_tables.inc): Django's validators and a resource
// server's int() judge text by them.

#pragma once

#include <string>
#include <string_view>

namespace oauth2 {

// the code points of s (UTF-8; a stray byte counts as one)
std::u32string code_points(std::string_view s);
// str.isspace(): what str.strip() and int() strip
bool unicode_space(char32_t c);
// str.strip(): s without the spaces around it (DRF's CharField trims so)
std::string_view py_strip(std::string_view s);
// str.isdigit(): Django's "entirely numeric"
bool unicode_digit(char32_t c);
// str.isdecimal(): the digits int() reads
bool unicode_decimal(char32_t c);

}  // namespace oauth2
