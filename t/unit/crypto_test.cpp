// Unit tests of src/core/crypto: CSPRNG output, SHA-256, secret hashing.
// Requirement numbers refer to docs/security.md.

#include "crypto.hpp"

#include <gtest/gtest.h>

#include <functional>

#include <set>
#include <string>
#include <unordered_set>

#include "codec.hpp"
#include "password.hpp"
#include "seal.hpp"
#include "test_helpers.hpp"

using oauth2_test::bytes;

namespace {

bool is_b64url_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

bool is_alnum_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

std::string hex(const oauth2::Digest& d) {
  return oauth2::hex_encode(d.data(), d.size());
}

// ---------------------------------------------------------- random_token

TEST(RandomToken, Is43Base64UrlCharactersR44) {
  for (int i = 0; i < 100; i++) {
    std::string t = oauth2::random_token();
    ASSERT_EQ(t.size(), 43u) << t;
    for (char c : t) ASSERT_TRUE(is_b64url_char(c)) << t;
    EXPECT_TRUE(oauth2::is_token68(t)) << t;  // R44: usable as a bearer
    EXPECT_TRUE(oauth2::is_vschar(t)) << t;
  }
}

TEST(RandomToken, Carries256BitsR42) {
  // 43 base64url characters hold 258 bits; the last one must use only the
  // top 4 bits of its 6 (32 bytes = 256 bits exactly)
  std::string t = oauth2::random_token();
  std::string std_form = t;
  for (char& c : std_form) {
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  std_form += '=';
  auto raw = oauth2::base64_decode_strict(std_form);
  ASSERT_TRUE(raw.has_value()) << t;
  EXPECT_EQ(raw->size(), 32u);
}

TEST(RandomToken, TenThousandAreDistinctR42) {
  std::unordered_set<std::string> seen;
  for (int i = 0; i < 10000; i++) seen.insert(oauth2::random_token());
  EXPECT_EQ(seen.size(), 10000u);
}

TEST(RandomToken, EveryCharacterPositionVaries) {
  // a stuck byte in the generator or the encoder would show as a column
  // that never changes
  std::vector<std::set<char>> columns(43);
  for (int i = 0; i < 500; i++) {
    std::string t = oauth2::random_token();
    for (size_t k = 0; k < t.size(); k++) columns[k].insert(t[k]);
  }
  for (size_t k = 0; k < 42; k++) EXPECT_GT(columns[k].size(), 30u) << k;
  EXPECT_GE(columns[42].size(), 14u);  // 16 possible values
}

// ---------------------------------------------------------- random_alnum

TEST(RandomAlnum, LengthAndCharsetR42) {
  for (size_t n : {0u, 1u, 2u, 31u, 32u, 63u, 64u, 65u, 100u, 1000u}) {
    std::string s = oauth2::random_alnum(n);
    ASSERT_EQ(s.size(), n);
    for (char c : s) ASSERT_TRUE(is_alnum_char(c)) << s;
  }
}

TEST(RandomAlnum, UsesTheWholeAlphabet) {
  std::set<char> seen;
  std::string s = oauth2::random_alnum(20000);
  seen.insert(s.begin(), s.end());
  EXPECT_EQ(seen.size(), 62u);
}

TEST(RandomAlnum, ValuesAreDistinctR42) {
  std::unordered_set<std::string> seen;
  for (int i = 0; i < 2000; i++) seen.insert(oauth2::random_alnum(32));
  EXPECT_EQ(seen.size(), 2000u);
}

TEST(RandomBytes, FillsTheBuffer) {
  unsigned char a[64] = {0}, b[64] = {0};
  oauth2::random_bytes(a, sizeof(a));
  oauth2::random_bytes(b, sizeof(b));
  EXPECT_NE(std::string(reinterpret_cast<char*>(a), 64),
            std::string(reinterpret_cast<char*>(b), 64));
  oauth2::random_bytes(a, 0);  // a zero-length request is not an error
}

// ---------------------------------------------------------------- sha256

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(hex(oauth2::sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex(oauth2::sha256("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hex(oauth2::sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256, HashesEmbeddedNulR7) {
  EXPECT_NE(hex(oauth2::sha256(bytes("victim\0junk"))), hex(oauth2::sha256("victim")));
}

TEST(EqualCt, ComparesAllBytes) {
  const unsigned char a[4] = {1, 2, 3, 4};
  const unsigned char b[4] = {1, 2, 3, 5};
  const unsigned char c[4] = {0, 2, 3, 4};
  EXPECT_TRUE(oauth2::equal_ct(a, a, 4));
  EXPECT_FALSE(oauth2::equal_ct(a, b, 4));
  EXPECT_FALSE(oauth2::equal_ct(a, c, 4));
  EXPECT_TRUE(oauth2::equal_ct(a, b, 3));
}

TEST(Wipe, ClearsTheString) {
  std::string s = "secret";
  oauth2::wipe(s);
  EXPECT_TRUE(s.empty());
  std::string e;
  oauth2::wipe(e);
  EXPECT_TRUE(e.empty());
}

// -------------------------------------------------------- secret hashing

TEST(SecretHash, FormatIsSaltedSha256R16) {
  std::string h = oauth2::hash_secret("s3cret");
  ASSERT_EQ(h.size(), 7u + 32u + 1u + 64u) << h;
  EXPECT_EQ(h.substr(0, 7), "sha256$");
  EXPECT_EQ(h[39], '$');
  EXPECT_TRUE(oauth2::hex_decode(h.substr(7, 32)).has_value());
  EXPECT_TRUE(oauth2::hex_decode(h.substr(40)).has_value());
  EXPECT_EQ(h.find("s3cret"), std::string::npos);
  // not the plain, unsalted digest either
  EXPECT_EQ(h.find(hex(oauth2::sha256("s3cret"))), std::string::npos);
}

TEST(SecretHash, RoundTripR16) {
  for (std::string secret :
       {std::string("s3cret"), std::string(""), std::string("a+b c&=%:"), bytes("nul\0inside"),
        std::string(1024, 'x'), oauth2::random_token()}) {
    std::string h = oauth2::hash_secret(secret);
    EXPECT_TRUE(oauth2::verify_secret(secret, h)) << secret;
  }
}

TEST(SecretHash, WrongSecretIsFalseR16) {
  std::string h = oauth2::hash_secret("correct horse");
  EXPECT_FALSE(oauth2::verify_secret("wrong", h));
  EXPECT_FALSE(oauth2::verify_secret("", h));
  EXPECT_FALSE(oauth2::verify_secret("correct hors", h));    // prefix
  EXPECT_FALSE(oauth2::verify_secret("correct horse ", h));  // extension
  EXPECT_FALSE(oauth2::verify_secret("Correct horse", h));   // case
  EXPECT_FALSE(oauth2::verify_secret(bytes("correct horse\0"), h));
}

TEST(SecretHash, FirstOrLastByteDifferenceIsFalseR16) {
  std::string secret = oauth2::random_alnum(43);
  std::string h = oauth2::hash_secret(secret);
  std::string first = secret, last = secret;
  first.front() = first.front() == 'A' ? 'B' : 'A';
  last.back() = last.back() == 'A' ? 'B' : 'A';
  EXPECT_TRUE(oauth2::verify_secret(secret, h));
  EXPECT_FALSE(oauth2::verify_secret(first, h));
  EXPECT_FALSE(oauth2::verify_secret(last, h));
}

TEST(SecretHash, TwoHashesOfTheSameSecretDifferR16) {
  std::string a = oauth2::hash_secret("same");
  std::string b = oauth2::hash_secret("same");
  EXPECT_NE(a, b);
  EXPECT_NE(a.substr(7, 32), b.substr(7, 32));  // different salts
  EXPECT_TRUE(oauth2::verify_secret("same", a));
  EXPECT_TRUE(oauth2::verify_secret("same", b));
}

TEST(SecretHash, MalformedStoredHashIsFalseNeverThrows) {
  std::string good = oauth2::hash_secret("s");
  std::string flipped_digest = good;
  flipped_digest.back() = flipped_digest.back() == '0' ? '1' : '0';
  std::string flipped_salt = good;
  flipped_salt[7] = flipped_salt[7] == '0' ? '1' : '0';
  std::string bad_sep = good;
  bad_sep[39] = ':';
  std::string bad_scheme = good;
  bad_scheme.replace(0, 7, "sha512$");
  std::string non_hex = good;
  non_hex[50] = 'z';
  std::string odd = good;
  odd[103] = 'g';

  for (const std::string& stored :
       {flipped_digest, flipped_salt, bad_sep, bad_scheme, non_hex, odd,
        good.substr(0, good.size() - 1), good + "0", good + "$", std::string(""),
        std::string("sha256$"), std::string("s"), std::string("plaintext"), std::string("sha256$$"),
        std::string(104, '$'), std::string(104, '\0')}) {
    bool r = true;
    EXPECT_NO_THROW(r = oauth2::verify_secret("s", stored)) << stored;
    EXPECT_FALSE(r) << stored;
  }
}

TEST(SecretHash, StoredPlaintextNeverMatches) {
  // a record holding the secret itself must not authenticate (R16/R43)
  EXPECT_FALSE(oauth2::verify_secret("s3cret", "s3cret"));
}

TEST(SecretHash, DummyVerifyDoesNotThrowR15) {
  EXPECT_NO_THROW(oauth2::verify_secret_dummy("anything"));
  EXPECT_NO_THROW(oauth2::verify_secret_dummy(""));
}

// R38: a sealed pair opens under its own refresh token only, and a
// sealed value changed anywhere (nonce, ciphertext, tag) does not open:
// AES-GCM's tag is checked, never decrypted past
TEST(Seal, OpensOnlyUntouchedUnderItsKey) {
  const std::string key = oauth2::random_token();
  const std::string pair = "{\"access_token\": \"a\", \"refresh_token\": \"r\"}";
  const std::string sealed = oauth2::seal(key, pair);
  ASSERT_EQ(sealed.size(), 12 + pair.size() + 16);
  EXPECT_EQ(sealed.find(pair), std::string::npos);
  EXPECT_EQ(oauth2::unseal(key, sealed), pair);
  EXPECT_NE(oauth2::seal(key, pair), sealed);  // a fresh nonce each time
  EXPECT_FALSE(oauth2::unseal(oauth2::random_token(), sealed).has_value());
  for (size_t at : {size_t(0), size_t(12), size_t(12) + pair.size() - 1, sealed.size() - 1}) {
    std::string bad = sealed;
    bad[at] = static_cast<char>(bad[at] ^ 1);
    EXPECT_FALSE(oauth2::unseal(key, bad).has_value()) << "byte " << at;
  }
  EXPECT_FALSE(oauth2::unseal(key, sealed.substr(0, sealed.size() - 1)).has_value());
  EXPECT_FALSE(oauth2::unseal(key, sealed.substr(0, 27)).has_value());
}

// A Django hash is read with its own iteration count, up to 10^8: a
// stored hash that claims more (an import, a tampered record) is no
// hash, never hours of PBKDF2 on a worker thread
// Django's harden_runtime: a wrong password costs the iterations asked
// whatever the stored hash has fewer of, as a name that is no account does
// (which verify_password_dummy runs); a right one costs the stored count
// (the caller rehashes it); a stored count above the one asked cannot be
// shortened (README "Known limits")
TEST(PasswordHash, AWrongPasswordCostsTheIterationsAskedR88) {
  const std::string older = oauth2::hash_password("right horse", 1000);
  auto cost = [](const std::function<void()>& check) {
    const uint64_t before = oauth2::pbkdf2_iterations_run();
    check();
    return oauth2::pbkdf2_iterations_run() - before;
  };
  EXPECT_EQ(cost([&] { EXPECT_FALSE(oauth2::verify_password("wrong", older, 5000).ok); }), 5000u);
  EXPECT_EQ(cost([&] { oauth2::verify_password_dummy("wrong", 5000); }), 5000u);
  EXPECT_EQ(cost([&] { EXPECT_FALSE(oauth2::verify_password("wrong", "", 5000).ok); }), 5000u);
  EXPECT_EQ(cost([&] {
              auto c = oauth2::verify_password("right horse", older, 5000);
              EXPECT_TRUE(c.ok && c.needs_rehash);
            }),
            1000u);
  const std::string newer = oauth2::hash_password("right horse", 8000);
  EXPECT_EQ(cost([&] { EXPECT_FALSE(oauth2::verify_password("wrong", newer, 5000).ok); }), 8000u);
}

TEST(PasswordHash, IterationsAreBounded) {
  const std::string tail = "$salt$" + std::string(43, 'A') + "=";
  EXPECT_TRUE(oauth2::is_password_hash("pbkdf2_sha256$1" + tail));
  EXPECT_TRUE(oauth2::is_password_hash("pbkdf2_sha256$100000000" + tail));
  EXPECT_FALSE(oauth2::is_password_hash("pbkdf2_sha256$100000001" + tail));
  EXPECT_FALSE(oauth2::is_password_hash("pbkdf2_sha256$999999999" + tail));
  EXPECT_FALSE(oauth2::is_password_hash("pbkdf2_sha256$0" + tail));
}

}  // namespace
