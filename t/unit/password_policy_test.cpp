// Django's default password validators (src/core/password_policy.hpp):
// the same verdicts and messages as Django 4.2's
// UserAttributeSimilarityValidator, MinimumLengthValidator,
// CommonPasswordValidator and NumericPasswordValidator.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "password_policy.hpp"
#include "unicode.hpp"

namespace {

using oauth2::PasswordPolicy;
using oauth2::py_strip;
using Problems = std::vector<std::string>;

const oauth2::PasswordOwner kUser{"testclient", "Test", "Client", "testclient@example.com"};

Problems check(const std::string& pw, const PasswordPolicy& p = {}) {
  return oauth2::password_problems(p, pw, kUser);
}

const char kShort[] = "This password is too short. It must contain at least 8 characters.";
const char kCommon[] = "This password is too common.";
const char kNumeric[] = "This password is entirely numeric.";

TEST(PasswordPolicy, DjangosOrderAndWords) {
  EXPECT_EQ(check("1"), (Problems{kShort, kCommon, kNumeric}));
  EXPECT_EQ(check("12345678"), (Problems{kCommon, kNumeric}));
  EXPECT_EQ(check("52938671"), (Problems{kNumeric}));
  EXPECT_EQ(check("Quaint-Harbor-59"), Problems{});
}

TEST(PasswordPolicy, CommonIgnoresCaseAndSurroundingSpace) {
  EXPECT_EQ(check("password1"), Problems{kCommon});
  EXPECT_EQ(check("  PaSsWoRd1\t"), Problems{kCommon});
  EXPECT_EQ(check("qwertyuiop"), Problems{kCommon});
}

TEST(PasswordPolicy, SimilarityAsDjangoComputesIt) {
  EXPECT_EQ(check("testclient"), Problems{"The password is too similar to the username."});
  // quick_ratio counts letters, not their order
  EXPECT_EQ(check("tneilctset"), Problems{"The password is too similar to the username."});
  EXPECT_EQ(check("example.com"), Problems{"The password is too similar to the email address."});
  // a part of a value counts: the email's "testclient" and "example"
  EXPECT_EQ(check("exampleXY"), Problems{"The password is too similar to the email address."});
  // a long password is not "similar" to a much shorter part (Django's
  // exceeds_maximum_length_ratio)
  EXPECT_EQ(check("testclient-with-a-long-passphrase-after-it-1234567890x", PasswordPolicy{}),
            Problems{});
  // Django refuses a ratio equal to the limit: "testclixyz" shares 7 of
  // its 10 letters with "testclient", 2 * 7 / 20 = 0.7
  EXPECT_EQ(check("testclixyz"), Problems{"The password is too similar to the username."});
  PasswordPolicy loose;
  loose.max_similarity = 0;
  EXPECT_EQ(check("testclient", loose), Problems{});
}

TEST(PasswordPolicy, ParsesItsSpec) {
  std::string why;
  auto p = PasswordPolicy::parse("min_length=12 common=off numeric=off similarity=0.5", &why);
  ASSERT_TRUE(p) << why;
  EXPECT_EQ(p->min_length, 12u);
  EXPECT_FALSE(p->common);
  EXPECT_FALSE(p->numeric);
  EXPECT_DOUBLE_EQ(p->max_similarity, 0.5);
  EXPECT_EQ(check("short-pass1", *p),
            Problems{"This password is too short. It must contain at least 12 characters."});
  auto off = PasswordPolicy::parse("off", &why);
  ASSERT_TRUE(off);
  EXPECT_EQ(check("1", *off), Problems{});
  for (const char* bad : {"min_length=", "min_length=-1", "similarity=0.05", "similarity=2",
                          "common=yes", "colour=blue", "junk"}) {
    EXPECT_FALSE(PasswordPolicy::parse(bad, &why)) << bad;
    EXPECT_NE(why.find("invalid password policy"), std::string::npos);
  }
}

// Django lowers the password and the attribute before comparing them:
// the case of either changes nothing
TEST(PasswordPolicy, SimilarityIgnoresCase) {
  const oauth2::PasswordOwner alice{"alice", "", "", ""};
  const oauth2::PasswordOwner upper{"ALICE", "", "", ""};
  const Problems similar{"The password is too similar to the username."};
  EXPECT_EQ(oauth2::password_problems(PasswordPolicy{}, "ALICE2024", alice), similar);
  EXPECT_EQ(oauth2::password_problems(PasswordPolicy{}, "alice2024", upper), similar);
  EXPECT_EQ(oauth2::password_problems(PasswordPolicy{}, "alice2024", alice), similar);
}

// "similarity=off" turns the check off, "common=off" and "numeric=off"
// each turn off their own check only
TEST(PasswordPolicy, EachOffTurnsOffItsOwnCheck) {
  std::string why;
  auto p = PasswordPolicy::parse("similarity=off", &why);
  ASSERT_TRUE(p) << why;
  EXPECT_EQ(p->max_similarity, 0.0);
  EXPECT_EQ(check("testclient", *p), Problems{});
  p = PasswordPolicy::parse("common=off", &why);
  ASSERT_TRUE(p) << why;
  EXPECT_FALSE(p->common);
  EXPECT_TRUE(p->numeric);
  EXPECT_EQ(check("12345678", *p), Problems{kNumeric});
  p = PasswordPolicy::parse("numeric=off", &why);
  ASSERT_TRUE(p) << why;
  EXPECT_TRUE(p->common);
  EXPECT_FALSE(p->numeric);
  EXPECT_EQ(check("12345678", *p), Problems{kCommon});
}

TEST(PasswordPolicy, LengthCountsCharactersNotBytes) {
  PasswordPolicy p;
  p.common = p.numeric = false;
  p.max_similarity = 0;
  EXPECT_EQ(check("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", p).size(), 1u) << "4 of 8";
  EXPECT_TRUE(check("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", p).empty());
}

}  // namespace

namespace {

// Python's str methods, as Django's validators use them: strip() removes
// U+001C-U+001F and U+0085 too (which the users API refuses before the
// policy, as no form carries them: t/password_django.t compares the rest
// with Django), U+00A0 and U+3000; lower() makes a Kelvin sign a "k";
// isdigit() is true of full-width digits
TEST(PasswordPolicy, PythonsUnicodeRules) {
  EXPECT_EQ(check("\x1cpassword1\xc2\x85"), Problems{kCommon});
  EXPECT_EQ(check("\xc2\xa0password1\xe3\x80\x80"), Problems{kCommon});
  EXPECT_EQ(check("MON\xe2\x84\xaa"
                  "EY"),
            (Problems{kShort, kCommon}));
  EXPECT_EQ(check("\xef\xbc\x95\xef\xbc\x92\xef\xbc\x99\xef\xbc\x93"
                  "\xef\xbc\x98\xef\xbc\x96\xef\xbc\x97\xef\xbc\x91"),
            Problems{kNumeric});
}

// DRF's CharField trims as Python's str.strip(): every str.isspace()
// code point at either end, none inside, stray bytes kept
TEST(PyStrip, StripsPythonsSpacesAtTheEndsOnly) {
  EXPECT_EQ(py_strip("  a b\t\n"), "a b");
  EXPECT_EQ(py_strip("\xe3\x80\x80x\xc2\x85"), "x");       // U+3000, U+0085
  EXPECT_EQ(py_strip("\xc2\xa0\x1cy\x1f"), "y");           // U+00A0, FS, US
  EXPECT_EQ(py_strip(" \xe2\x80\x8bz"), "\xe2\x80\x8bz");  // U+200B is no space
  EXPECT_EQ(py_strip(" \xff "), "\xff");
  EXPECT_EQ(py_strip("   "), "");
  EXPECT_EQ(py_strip(""), "");
  EXPECT_EQ(py_strip("a"), "a");
}

}  // namespace
