// Unit tests of src/core/codec: the strict form, base64, Basic, token68,
// VSCHAR, scope and UTF-8 decoders.  Requirement numbers refer to
// docs/security.md; "cat. 2.1" is its bad-input catalogue.

#include "codec.hpp"
#include "store.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "crypto.hpp"
#include "test_helpers.hpp"

using oauth2::Form;
using oauth2_test::b64;
using oauth2_test::basic;
using oauth2_test::bytes;

namespace {

// ------------------------------------------------------------------ Form

TEST(FormParse, SimpleBodyIsOk) {
  Form f;
  ASSERT_EQ(f.parse("grant_type=client_credentials&scope=read"), Form::Status::kOk);
  EXPECT_EQ(f.get("grant_type"), "client_credentials");
  EXPECT_EQ(f.get("scope"), "read");
  EXPECT_TRUE(f.has("scope"));
  EXPECT_FALSE(f.has("client_id"));
}

TEST(FormParse, EmptyBodyIsOkAndHoldsNothing) {
  Form f;
  EXPECT_EQ(f.parse(""), Form::Status::kOk);
  EXPECT_FALSE(f.get("grant_type").has_value());
}

TEST(FormParse, PlusIsSpaceR7) {
  Form f;
  ASSERT_EQ(f.parse("scope=read+write"), Form::Status::kOk);
  EXPECT_EQ(f.get("scope"), "read write");
}

TEST(FormParse, Percent2BIsPlusAnd20IsSpaceR7) {
  Form f;
  ASSERT_EQ(f.parse("a=x%2By&b=x%20y&c=x%2by"), Form::Status::kOk);
  EXPECT_EQ(f.get("a"), "x+y");
  EXPECT_EQ(f.get("b"), "x y");
  EXPECT_EQ(f.get("c"), "x+y");  // lower-case hex digits are fine
}

TEST(FormParse, NamesArePercentDecodedToo) {
  Form f;
  ASSERT_EQ(f.parse("client%5Fid=app"), Form::Status::kOk);
  EXPECT_EQ(f.get("client_id"), "app");
}

TEST(FormParse, ValidUtf8EscapesAreAccepted) {
  Form f;
  ASSERT_EQ(f.parse("a=%C3%A9&b=%F0%9F%98%80&c=%E2%80%AE"), Form::Status::kOk);
  EXPECT_EQ(f.get("a"), "\xC3\xA9");
  EXPECT_EQ(f.get("b"), "\xF0\x9F\x98\x80");
  EXPECT_EQ(f.get("c"), "\xE2\x80\xAE");  // RTL override: kept byte-exact
}

TEST(FormParse, UnknownParametersAreKeptNotErrorsR6) {
  Form f;
  ASSERT_EQ(f.parse("grant_type=x&extra=foobar&x%5B%5D=1"), Form::Status::kOk);
  EXPECT_EQ(f.get("extra"), "foobar");
  EXPECT_EQ(f.get("x[]"), "1");
}

TEST(FormParse, DuplicateNameIsRejectedR4) {
  Form f;
  EXPECT_EQ(f.parse("a=1&a=2"), Form::Status::kDuplicate);
  EXPECT_EQ(f.parse("client_id=nope&client_id=nope"), Form::Status::kDuplicate);
  EXPECT_EQ(f.parse("grant_type=x&scope=a&grant_type=x"), Form::Status::kDuplicate);
  EXPECT_EQ(f.parse("scope=&scope="), Form::Status::kDuplicate);
}

TEST(FormParse, DuplicateAfterDecodingIsRejectedR4) {
  Form f;
  // %61 is "a": the same parameter name once decoded
  EXPECT_EQ(f.parse("a=1&%61=2"), Form::Status::kDuplicate);
}

TEST(FormParse, NamesAreCaseSensitiveR4) {
  Form f;
  ASSERT_EQ(f.parse("client_id=a&Client_Id=b"), Form::Status::kOk);
  EXPECT_EQ(f.get("client_id"), "a");
  EXPECT_EQ(f.get("Client_Id"), "b");
  EXPECT_FALSE(f.get("CLIENT_ID").has_value());
}

TEST(FormParse, EmptyValueCountsAsAbsentR5) {
  Form f;
  ASSERT_EQ(f.parse("scope=&client_secret=&grant_type=x"), Form::Status::kOk);
  EXPECT_FALSE(f.get("scope").has_value());
  EXPECT_FALSE(f.has("scope"));
  EXPECT_FALSE(f.has("client_secret"));
  EXPECT_EQ(f.get("grant_type"), "x");
}

// cat. 2.1 "Body shape" and "Percent-encoding": each must be kMalformed
TEST(FormParse, MalformedBodiesR7) {
  const std::vector<std::string> bad = {
      "&&&",
      "=v",
      "=",
      "&",
      "&a=1",
      "a=1&",
      "a=1&&b=2",
      // bad escapes
      "a=%",
      "a=%4",
      "a=%G0",
      "a=%%41",
      "a=%4G",
      "a=x%",
      "%=1",
      "%G0=1",
      // NUL and control characters, encoded
      "a=%00",
      "a=%0d%0a",
      "a=%0D%0A",
      "a=%09",
      "a=%1F",
      "a=%7F",
      "%00=1",
      // invalid UTF-8 once decoded
      "a=%C0%AF",
      "a=%ED%A0%80",
      "a=%FF",
      "a=%80",
      "a=%C3",
      "a=%F4%90%80%80",
      // raw bytes outside %x21-7E
      "a=b c",
      "a b=c",
      "a=\x80",
      "a=\xC3\xA9",
      "a=b\tc",
      "a=b\r\nc",
      "a=\x7F",
      bytes("a=b\0c"),
  };
  for (const auto& body : bad) {
    Form f;
    EXPECT_EQ(f.parse(body), Form::Status::kMalformed) << "body: \"" << body << "\"";
  }
}

TEST(FormParse, NulInClientIdIsMalformedNotTruncatedR7) {
  Form f;
  EXPECT_EQ(f.parse("client_id=victim%00junk"), Form::Status::kMalformed);
  EXPECT_FALSE(f.get("client_id").has_value());
  EXPECT_EQ(f.parse("grant_type=client_credentials&client_id=victim%00junk"),
            Form::Status::kMalformed);
}

// cat. 2.1 "Body shape": never a partial parse.  A rejected body must not
// leave the pairs before the bad one readable.
TEST(FormParse, RejectedBodyLeavesNothingReadableR7) {
  Form f;
  ASSERT_EQ(f.parse("client_id=victim&x=%00"), Form::Status::kMalformed);
  EXPECT_FALSE(f.get("client_id").has_value());
  ASSERT_EQ(f.parse("client_id=victim&client_id=other"), Form::Status::kDuplicate);
  EXPECT_FALSE(f.get("client_id").has_value());
}

TEST(FormParse, ReparseForgetsThePreviousBody) {
  Form f;
  ASSERT_EQ(f.parse("a=1"), Form::Status::kOk);
  ASSERT_EQ(f.parse("b=2"), Form::Status::kOk);
  EXPECT_FALSE(f.has("a"));
  EXPECT_EQ(f.get("b"), "2");
}

std::string n_params(size_t n) {
  std::string body;
  for (size_t i = 0; i < n; i++) {
    if (i) body += '&';
    body += "p" + std::to_string(i) + "=v";
  }
  return body;
}

TEST(FormParse, SixtyFourParamsAreOkR8) {
  Form f;
  ASSERT_EQ(oauth2::kMaxParams, 64u);
  EXPECT_EQ(f.parse(n_params(64)), Form::Status::kOk);
  EXPECT_EQ(f.get("p0"), "v");
  EXPECT_EQ(f.get("p63"), "v");
}

TEST(FormParse, SixtyFiveParamsAreTooManyR8) {
  Form f;
  EXPECT_EQ(f.parse(n_params(65)), Form::Status::kTooMany);
  EXPECT_EQ(f.parse(n_params(100000)), Form::Status::kTooMany);
}

TEST(FormParse, LongValueIsDecodedWhole) {
  std::string v(64 * 1024, 'x');
  Form f;
  ASSERT_EQ(f.parse("a=" + v), Form::Status::kOk);
  EXPECT_EQ(f.get("a"), v);
}

// ------------------------------------------------------------ form_decode

TEST(FormDecode, DecodesEscapesAndPlus) {
  EXPECT_EQ(oauth2::form_decode("%41%42c+d%2B"), "ABc d+");
  EXPECT_EQ(oauth2::form_decode(""), "");
  EXPECT_EQ(oauth2::form_decode("%25"), "%");
  EXPECT_EQ(oauth2::form_decode("%3A%3a"), "::");
}

TEST(FormDecode, RejectsBadEscapesControlsAndNonUtf8R7) {
  for (std::string_view s : {"%", "%4", "a%", "%G0", "%%41", "%00", "%0A", "%7F", "%C0%AF",
                             "%ED%A0%80", "%FF", " ", "\x80", "\t"}) {
    EXPECT_FALSE(oauth2::form_decode(s).has_value()) << "input: " << s;
  }
}

// ------------------------------------------------------------ valid_utf8

TEST(ValidUtf8, AcceptsWellFormedSequences) {
  for (std::string_view s :
       {"", "plain ascii", "\xC2\x80", "\xC3\xA9", "\xDF\xBF", "\xE0\xA0\x80", "\xED\x9F\xBF",
        "\xEE\x80\x80", "\xEF\xBF\xBF", "\xF0\x90\x80\x80", "\xF4\x8F\xBF\xBF", "a\xE2\x80\xAE!"}) {
    EXPECT_TRUE(oauth2::valid_utf8(s)) << "input: " << s;
  }
  // NUL is well-formed UTF-8; has_control is what rejects it
  EXPECT_TRUE(oauth2::valid_utf8(bytes("a\0b")));
}

TEST(ValidUtf8, RejectsMalformedSequences) {
  for (std::string_view s : {
           "\x80",              // lone continuation byte
           "\xBF",              //
           "\xC0\xAF",          // overlong '/'
           "\xC1\xBF",          // overlong
           "\xE0\x80\xAF",      // overlong 3-byte
           "\xE0\x9F\xBF",      // overlong 3-byte, the largest
           "\xF0\x8F\xBF\xBF",  // overlong 4-byte
           "\xED\xA0\x80",      // high surrogate U+D800
           "\xED\xBF\xBF",      // low surrogate U+DFFF
           "\xF4\x90\x80\x80",  // U+110000
           "\xF5\x80\x80\x80",  // lead byte > F4
           "\xF8\x88\x80\x80\x80",
           "\xFE",
           "\xFF",
           "\xC3",          // truncated
           "\xE2\x82",      // truncated
           "\xF0\x9F\x98",  // truncated
           "\xC3\x28",      // bad continuation
           "\xE2\x28\xA1",  // bad continuation
           "a\xC3",         // truncated at the end
       }) {
    EXPECT_FALSE(oauth2::valid_utf8(s)) << "input: " << testing::PrintToString(std::string(s));
  }
}

TEST(HasControl, C0AndDelOnly) {
  EXPECT_TRUE(oauth2::has_control(bytes("\0")));
  EXPECT_TRUE(oauth2::has_control("a\tb"));
  EXPECT_TRUE(oauth2::has_control("\r\n"));
  EXPECT_TRUE(oauth2::has_control("\x1F"));
  EXPECT_TRUE(oauth2::has_control("\x7F"));
  EXPECT_FALSE(oauth2::has_control(""));
  EXPECT_FALSE(oauth2::has_control(" ~"));
  EXPECT_FALSE(oauth2::has_control("\xC3\xA9"));
}

// -------------------------------------------------------- base64 (strict)

TEST(Base64Strict, DecodesValidInput) {
  EXPECT_EQ(oauth2::base64_decode_strict("Zm9vOmJhcg=="), "foo:bar");
  EXPECT_EQ(oauth2::base64_decode_strict("Zm9v"), "foo");
  EXPECT_EQ(oauth2::base64_decode_strict("Zm8="), "fo");
  EXPECT_EQ(oauth2::base64_decode_strict("Zg=="), "f");
  EXPECT_EQ(oauth2::base64_decode_strict("Zm9vYmFy"), "foobar");
  EXPECT_EQ(oauth2::base64_decode_strict("+/+/"), "\xFB\xFF\xBF");
  EXPECT_EQ(oauth2::base64_decode_strict("AAAA"), bytes("\0\0\0"));
}

TEST(Base64Strict, RoundTripsEveryLength) {
  for (size_t n = 1; n < 80; n++) {
    std::string raw(n, '\0');
    oauth2::random_bytes(reinterpret_cast<unsigned char*>(raw.data()), n);
    auto back = oauth2::base64_decode_strict(b64(raw));
    ASSERT_TRUE(back.has_value()) << "length " << n;
    EXPECT_EQ(*back, raw);
  }
}

TEST(Base64Strict, RejectsMissingPaddingR14) {
  for (std::string_view s : {"Zm9vOmJhcg", "Zm9vOmJhcg=", "Zm8", "Zg", "Z", "Zg="}) {
    EXPECT_FALSE(oauth2::base64_decode_strict(s).has_value()) << s;
  }
}

TEST(Base64Strict, RejectsDataAfterPaddingR14) {
  for (std::string_view s :
       {"Zm9vOmJhcg==AAAA", "Zg==Zg==", "Zg=A", "Z===", "====", "Zm9=vYmFy", "Zm8=Zm8=", "=Zm9"}) {
    EXPECT_FALSE(oauth2::base64_decode_strict(s).has_value()) << s;
  }
}

TEST(Base64Strict, RejectsWhitespaceAndNewlineR14) {
  for (std::string_view s : {"Zm9v Zm9v", "Zm9vOmJhcg==\n", "\nZm9vOmJh", "Zm9v\tZm9v",
                             "Zm9v\r\nZm9v", " Zm9v", "Zm9v ", "ZHVtbXk=:ZHVtbXk=\n"}) {
    EXPECT_FALSE(oauth2::base64_decode_strict(s).has_value())
        << testing::PrintToString(std::string(s));
  }
}

TEST(Base64Strict, RejectsUrlSafeAlphabetR14) {
  EXPECT_TRUE(oauth2::base64_decode_strict("+/8=").has_value());
  for (std::string_view s : {"-_8=", "-/8=", "+_8=", "Zm9v-A==", "Zm9v_A=="}) {
    EXPECT_FALSE(oauth2::base64_decode_strict(s).has_value()) << s;
  }
}

TEST(Base64Strict, RejectsOtherBytes) {
  EXPECT_FALSE(oauth2::base64_decode_strict("").has_value());
  EXPECT_FALSE(oauth2::base64_decode_strict("!!!!").has_value());
  EXPECT_FALSE(oauth2::base64_decode_strict(bytes("Zm9\0")).has_value());
  EXPECT_FALSE(oauth2::base64_decode_strict("Zm9\x80").has_value());
  EXPECT_FALSE(oauth2::base64_decode_strict("Zm9v.A==").has_value());
}

TEST(Base64Strict, RejectsNonCanonicalTrailingBits) {
  // "Zg==" is canonical for "f"; Zh/Zi/Zv set bits that padding discards
  EXPECT_TRUE(oauth2::base64_decode_strict("Zg==").has_value());
  EXPECT_FALSE(oauth2::base64_decode_strict("Zh==").has_value());
  EXPECT_FALSE(oauth2::base64_decode_strict("Zv==").has_value());
  // "Zm8=" is canonical for "fo"; "Zm9=" sets a discarded bit
  EXPECT_TRUE(oauth2::base64_decode_strict("Zm8=").has_value());
  EXPECT_FALSE(oauth2::base64_decode_strict("Zm9=").has_value());
  EXPECT_FALSE(oauth2::base64_decode_strict("Zm9vOmJhch==").has_value());
}

// ------------------------------------------------------------ parse_basic

struct BasicResult {
  bool is_basic = false;
  std::optional<oauth2::BasicCredentials> creds;
};

BasicResult basic_of(std::string_view header) {
  BasicResult r;
  r.creds = oauth2::parse_basic(header, &r.is_basic);
  return r;
}

TEST(ParseBasic, DecodesIdAndSecretR14) {
  auto r = basic_of("Basic Zm9vOmJhcg==");
  EXPECT_TRUE(r.is_basic);
  ASSERT_TRUE(r.creds.has_value());
  EXPECT_EQ(r.creds->id, "foo");
  EXPECT_EQ(r.creds->secret, "bar");
}

TEST(ParseBasic, SchemeIsCaseInsensitiveR14) {
  for (std::string_view h : {"basic Zm9vOmJhcg==", "BASIC Zm9vOmJhcg==", "bAsIc Zm9vOmJhcg=="}) {
    auto r = basic_of(h);
    EXPECT_TRUE(r.is_basic) << h;
    ASSERT_TRUE(r.creds.has_value()) << h;
    EXPECT_EQ(r.creds->id, "foo");
    EXPECT_EQ(r.creds->secret, "bar");
  }
}

// cat. 2.1 "Basic header": all of these are Basic but malformed
TEST(ParseBasic, CatalogueRowsAreRejectedR14) {
  const std::vector<std::string> bad = {
      "Basic",                      // no credentials
      "Basic ",                     // empty
      "Basic  x",                   // two spaces
      "Basic  Zm9vOmJhcg==",        // two spaces before valid credentials
      "Basic !!!",                  // not base64
      "Basic not_base64",           // DOT
      "Basic Zm9v",                 // "foo": no colon
      "Basic OmZvbw==",             // ":foo": empty id
      "Basic Zm9vAGJhcjpz",         // "foo\0bar:s": NUL
      "Basic ZHVtbXk=:ZHVtbXk=\n",  // newline inside, DOT
      "Basic Zm9vOmJhcg==AAAA",     // data after '='
      "Basic Zm9vOmJhcg",           // no padding
      "Basic test",                 // decodes to non-UTF-8, DOT
      "Basic Zm9vOmJhcg== ",        // trailing space
      "Basic Zm9vOmJh\ncg==",       // newline inside
  };
  for (const auto& h : bad) {
    auto r = basic_of(h);
    EXPECT_TRUE(r.is_basic) << testing::PrintToString(h);
    EXPECT_FALSE(r.creds.has_value()) << testing::PrintToString(h);
  }
}

TEST(ParseBasic, EmptySecretIsAllowedR14) {
  auto r = basic_of("Basic Zm9vOg==");  // "foo:"
  ASSERT_TRUE(r.creds.has_value());
  EXPECT_EQ(r.creds->id, "foo");
  EXPECT_EQ(r.creds->secret, "");
}

TEST(ParseBasic, UrlSafeAlphabetIsRejectedR14) {
  std::string std_b64 = b64("id:~~~");  // "aWQ6fn5+"
  ASSERT_NE(std_b64.find('+'), std::string::npos);
  auto ok = basic_of("Basic " + std_b64);
  ASSERT_TRUE(ok.creds.has_value());
  EXPECT_EQ(ok.creds->secret, "~~~");

  std::string url = std_b64;
  for (char& c : url) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  EXPECT_FALSE(basic_of("Basic " + url).creds.has_value());
}

TEST(ParseBasic, SplitsAtTheFirstColonR14) {
  auto r = basic_of(basic("a:b:c"));
  ASSERT_TRUE(r.creds.has_value());
  EXPECT_EQ(r.creds->id, "a");
  EXPECT_EQ(r.creds->secret, "b:c");
}

TEST(ParseBasic, IdAndSecretAreFormDecodedR14) {
  auto r = basic_of(basic("a%3Ab:s"));
  ASSERT_TRUE(r.creds.has_value());
  EXPECT_EQ(r.creds->id, "a:b");
  EXPECT_EQ(r.creds->secret, "s");

  // a secret holding + % & = : space, sent form-encoded
  r = basic_of(basic("id:a%2Bb+c%26%3D%25%3A%20"));
  ASSERT_TRUE(r.creds.has_value());
  EXPECT_EQ(r.creds->secret, "a+b c&=%: ");

  // the same characters sent raw: '+' is a space, '%' must start an escape
  r = basic_of(basic("id:a+b&=:"));
  ASSERT_TRUE(r.creds.has_value());
  EXPECT_EQ(r.creds->secret, "a b&=:");
}

TEST(ParseBasic, InvalidEscapesAreRejectedR14) {
  for (std::string_view s : {"a%G0:s", "a%:s", "a%4:s", "id:%", "id:50%", "id:%%41", "id:a%00b",
                             "a%00:s", "id:%0d%0a"}) {
    auto r = basic_of(basic(s));
    EXPECT_TRUE(r.is_basic);
    EXPECT_FALSE(r.creds.has_value()) << s;
  }
}

TEST(ParseBasic, NonUtf8IsRejectedR14) {
  for (std::string_view s :
       {"\xFF:s", "id:\xC3\x28", "a%FF:s", "id:%C0%AF", "id:%ED%A0%80", "id:\x80"}) {
    EXPECT_FALSE(basic_of(basic(s)).creds.has_value()) << testing::PrintToString(std::string(s));
  }
}

// RFC 6749 2.3.1: id and secret are form-encoded before base64, so a raw
// non-ASCII byte is not valid input even when it is well-formed UTF-8.
TEST(ParseBasic, RawNonAsciiIsNotFormEncodingR14) {
  EXPECT_FALSE(basic_of(basic("\xC3\xA9:s")).creds.has_value());
  auto r = basic_of(basic("%C3%A9:s"));
  ASSERT_TRUE(r.creds.has_value());
  EXPECT_EQ(r.creds->id, "\xC3\xA9");
}

TEST(ParseBasic, ControlCharactersAreRejectedR14) {
  EXPECT_FALSE(basic_of(basic(bytes("foo\0bar:s"))).creds.has_value());
  EXPECT_FALSE(basic_of(basic("id:a\tb")).creds.has_value());
  EXPECT_FALSE(basic_of(basic("id:a\r\nb")).creds.has_value());
  EXPECT_FALSE(basic_of(basic("id:a b")).creds.has_value());  // raw space
}

TEST(ParseBasic, OtherSchemesAreNotBasic) {
  for (std::string_view h : {"Bearer Zm9vOmJhcg==", "Digest username=x", "",
                             "Basicx Zm9vOmJhcg==", "Basi Zm9vOmJhcg==", "Basic\tZm9vOmJhcg=="}) {
    auto r = basic_of(h);
    EXPECT_FALSE(r.is_basic) << testing::PrintToString(std::string(h));
    EXPECT_FALSE(r.creds.has_value());
  }
}

TEST(ParseBasic, LargeHeaderIsHandled) {
  // 7 KiB of credentials reach the module (cat. 2.1)
  std::string secret(5 * 1024, 's');
  auto r = basic_of(basic("id:" + secret));
  ASSERT_TRUE(r.creds.has_value());
  EXPECT_EQ(r.creds->secret, secret);
}

// ----------------------------------------------------- auth_scheme, iequals

TEST(AuthScheme, UpToTheFirstSpace) {
  EXPECT_EQ(oauth2::auth_scheme("Bearer abc"), "Bearer");
  EXPECT_EQ(oauth2::auth_scheme("Bearer"), "Bearer");
  EXPECT_EQ(oauth2::auth_scheme(""), "");
  EXPECT_EQ(oauth2::auth_scheme(" x"), "");
}

TEST(IEquals, AsciiCaseOnly) {
  EXPECT_TRUE(oauth2::iequals("Bearer", "bEARER"));
  EXPECT_TRUE(oauth2::iequals("", ""));
  EXPECT_FALSE(oauth2::iequals("Bearer", "Bearer "));
  EXPECT_FALSE(oauth2::iequals("[", "{"));  // 0x5B vs 0x7B: not letters
  EXPECT_FALSE(oauth2::iequals("@", "`"));
  EXPECT_FALSE(oauth2::iequals("\xC3\xA9", "\xC3\x89"));
}

// -------------------------------------------------------------- token68

TEST(Token68, AcceptsTheRfc7235Alphabet) {
  for (std::string_view s :
       {"a", "abc", "A-._~+/z09", "abc=", "abc==", "abc===", "Zm9vOmJhcg==", "-", "~~", "/"}) {
    EXPECT_TRUE(oauth2::is_token68(s)) << s;
  }
}

TEST(Token68, RejectsEverythingElseR61) {
  for (std::string_view s : {"", "=", "==", "a=b", "ab=c=", "a b", " a", "a ", "tok,", "tok<>",
                             "tok%20", "a\tb", "a\"", "a\\", "a;b", "\xC3\xA9", "a\x7F"}) {
    EXPECT_FALSE(oauth2::is_token68(s)) << testing::PrintToString(std::string(s));
  }
  EXPECT_FALSE(oauth2::is_token68(bytes("ab\0c")));
}

// --------------------------------------------------------------- VSCHAR

TEST(Vschar, PrintableAsciiAndSpaceR7) {
  EXPECT_TRUE(oauth2::is_vschar(" "));
  EXPECT_TRUE(oauth2::is_vschar("~"));
  EXPECT_TRUE(oauth2::is_vschar("a b\"\\{}"));
  EXPECT_FALSE(oauth2::is_vschar(""));
  EXPECT_FALSE(oauth2::is_vschar("\x7F"));
  EXPECT_FALSE(oauth2::is_vschar("\x1F"));
  EXPECT_FALSE(oauth2::is_vschar("a\tb"));
  EXPECT_FALSE(oauth2::is_vschar("\x80"));
  EXPECT_FALSE(oauth2::is_vschar("\xC3\xA9"));
  EXPECT_FALSE(oauth2::is_vschar(bytes("a\0")));
}

// ----------------------------------------------------------------- scope

TEST(ParseScope, SplitsOnSingleSpaces) {
  std::vector<std::string_view> t;
  ASSERT_TRUE(oauth2::parse_scope("read write", &t));
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0], "read");
  EXPECT_EQ(t[1], "write");
  ASSERT_TRUE(oauth2::parse_scope("read", &t));
  ASSERT_EQ(t.size(), 1u);  // the vector is refilled, not appended to
  EXPECT_TRUE(oauth2::parse_scope("read write", nullptr));
}

TEST(ParseScope, NqcharBoundaries) {
  // NQCHAR = %x21 / %x23-5B / %x5D-7E
  EXPECT_TRUE(oauth2::parse_scope("! # [ ] ~ urn:x:y https://api/x", nullptr));
  EXPECT_TRUE(oauth2::parse_scope("read READ", nullptr));  // case matters
}

TEST(ParseScope, RejectsBadListsR7) {
  for (std::string_view s : {"", " ", "read  write", " read", "read ", "read\twrite", "read\nwrite",
                             "a\"b", "a\\b", "\"", "\\", "a\x7F", "\xC3\xA9", "a\x01"}) {
    EXPECT_FALSE(oauth2::parse_scope(s, nullptr)) << testing::PrintToString(std::string(s));
  }
  EXPECT_FALSE(oauth2::parse_scope(bytes("a\0b"), nullptr));
}

TEST(ParseScope, RejectsDuplicates) {
  EXPECT_FALSE(oauth2::parse_scope("openid openid", nullptr));
  EXPECT_FALSE(oauth2::parse_scope("a b a", nullptr));
}

// a body holds thousands of tokens: a repeat is found wherever it is, and
// the tokens keep their order (the check sorts a copy, in n log n: R8)
TEST(ParseScope, FindsARepeatAmongThousandsR8) {
  std::string many;
  for (int i = 0; i < 5000; i++) many += (i ? " s" : "s") + std::to_string(i);
  std::vector<std::string_view> t;
  ASSERT_TRUE(oauth2::parse_scope(many, &t));
  ASSERT_EQ(t.size(), 5000u);
  EXPECT_EQ(t.front(), "s0");
  EXPECT_EQ(t[4321], "s4321");
  EXPECT_EQ(t.back(), "s4999");
  EXPECT_FALSE(oauth2::parse_scope("s4999 " + many, nullptr));
  EXPECT_FALSE(oauth2::parse_scope(many + " s0", nullptr));
  EXPECT_FALSE(oauth2::parse_scope(many + " s2500", nullptr));
}

TEST(ParseScope, ManyScopesAreLinearEnough) {
  std::string s;
  for (int i = 0; i < 2000; i++) {
    if (i) s += ' ';
    s += "s" + std::to_string(i);
  }
  std::vector<std::string_view> t;
  EXPECT_TRUE(oauth2::parse_scope(s, &t));
  EXPECT_EQ(t.size(), 2000u);
}

// ------------------------------------------------------ base64url, hex

std::string url_enc(std::string_view s) {
  return oauth2::base64url_encode(reinterpret_cast<const unsigned char*>(s.data()), s.size());
}

TEST(Base64Url, Rfc4648VectorsWithoutPadding) {
  EXPECT_EQ(url_enc(""), "");
  EXPECT_EQ(url_enc("f"), "Zg");
  EXPECT_EQ(url_enc("fo"), "Zm8");
  EXPECT_EQ(url_enc("foo"), "Zm9v");
  EXPECT_EQ(url_enc("foob"), "Zm9vYg");
  EXPECT_EQ(url_enc("fooba"), "Zm9vYmE");
  EXPECT_EQ(url_enc("foobar"), "Zm9vYmFy");
  EXPECT_EQ(url_enc("\xFB\xEF\xFF"), "--__");
  EXPECT_EQ(url_enc("\xFB\xFF"), "-_8");
}

TEST(Base64Url, RoundTripsThroughTheStrictDecoder) {
  for (size_t n = 0; n < 70; n++) {
    std::string raw(n, '\0');
    if (n) oauth2::random_bytes(reinterpret_cast<unsigned char*>(raw.data()), n);
    std::string enc = url_enc(raw);
    EXPECT_EQ(enc.size(), (n * 4 + 2) / 3);
    EXPECT_TRUE(enc.empty() || oauth2::is_token68(enc));
    EXPECT_EQ(enc.find('='), std::string::npos);
    std::string std_form = enc;
    for (char& c : std_form) {
      if (c == '-') c = '+';
      if (c == '_') c = '/';
    }
    while (std_form.size() % 4) std_form += '=';
    if (n == 0) continue;
    auto back = oauth2::base64_decode_strict(std_form);
    ASSERT_TRUE(back.has_value()) << "length " << n;
    EXPECT_EQ(*back, raw);
  }
}

TEST(Hex, EncodeDecode) {
  const unsigned char raw[] = {0x00, 0x01, 0xAB, 0xFF, 0x7F};
  EXPECT_EQ(oauth2::hex_encode(raw, sizeof(raw)), "0001abff7f");
  EXPECT_EQ(oauth2::hex_encode(raw, 0), "");
  EXPECT_EQ(oauth2::hex_decode("0001abff7f"), bytes("\x00\x01\xAB\xFF\x7F"));
  EXPECT_EQ(oauth2::hex_decode("0001ABFF7F"), bytes("\x00\x01\xAB\xFF\x7F"));
  EXPECT_EQ(oauth2::hex_decode(""), "");
  EXPECT_FALSE(oauth2::hex_decode("abc").has_value());
  EXPECT_FALSE(oauth2::hex_decode("zz").has_value());
  EXPECT_FALSE(oauth2::hex_decode("0g").has_value());
  EXPECT_FALSE(oauth2::hex_decode(" 0").has_value());
  EXPECT_FALSE(oauth2::hex_decode("+1").has_value());
}

TEST(Hex, RoundTrip) {
  std::string raw(256, '\0');
  for (int i = 0; i < 256; i++) raw[i] = static_cast<char>(i);
  std::string enc =
      oauth2::hex_encode(reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
  EXPECT_EQ(enc.size(), 512u);
  EXPECT_EQ(oauth2::hex_decode(enc), raw);
}

}  // namespace

// The lookup table of the validation path against the grammars it
// stands for, byte by byte.
TEST(CharClasses, EveryByteAsTheGrammarsSay) {
  for (int c = 0; c < 256; c++) {
    const char ch = static_cast<char>(c);
    const bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    const std::string one(1, ch);
    EXPECT_EQ(oauth2::is_token68(one),
              alnum || std::string_view("-._~+/").find(ch) != std::string_view::npos)
        << c;
    EXPECT_EQ(oauth2::is_token68("a" + one), oauth2::is_token68(one) || c == '=') << c;
    EXPECT_EQ(oauth2::chars::is(ch, oauth2::chars::kB64Url), alnum || c == '-' || c == '_') << c;
    EXPECT_EQ(oauth2::valid_realm(one), alnum || c == '.' || c == '-' || c == '_') << c;
  }
}
