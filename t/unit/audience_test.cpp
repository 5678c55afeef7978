// Unit tests of RFC 8707 resource indicators (src/core/audience): what a
// resource may be, what a request asks for against what the client is
// registered for, narrowing at the token endpoint, which locations accept
// a token, "aud" as JSON; and the audience in the token record (flag 512:
// a token without one costs no byte) and the client record.

#include <gtest/gtest.h>

#include <string>

#include "audience.hpp"
#include "codec.hpp"
#include "json.hpp"
#include "location.hpp"
#include "store.hpp"
#include "store_records.hpp"

using namespace oauth2;

namespace {

const char kA[] = "https://a.example/api";
const char kB[] = "https://b.example/";

Client client_for(std::vector<std::string> resources) {
  Client c;
  c.client_id = "c1";
  c.resources = std::move(resources);
  return c;
}

Target ask(const std::string& body, const Client& c) {
  Form f;
  EXPECT_EQ(f.parse(body), Form::Status::kOk) << body;
  return requested_target(f, c);
}

std::string text(json_t* j) {
  Json owned(j);
  return j ? json_text(j, JSON_COMPACT) : "null";
}

TEST(Resource, AbsoluteUriWithoutFragment) {
  EXPECT_TRUE(valid_resource(kA));
  EXPECT_TRUE(valid_resource("urn:example:api"));
  EXPECT_TRUE(valid_resource("https://a.example/api?x=1"));
  EXPECT_FALSE(valid_resource(""));
  EXPECT_FALSE(valid_resource("/relative/path"));
  EXPECT_FALSE(valid_resource("a.example/api"));
  EXPECT_FALSE(valid_resource("https://a.example/api#frag"));
  EXPECT_FALSE(valid_resource("https:"));
  EXPECT_FALSE(valid_resource(":x"));
  EXPECT_FALSE(valid_resource("1http://a.example/"));
  EXPECT_FALSE(valid_resource("https://a.example/a b"));
  EXPECT_FALSE(valid_resource("https://a.example/\"x"));
  EXPECT_FALSE(valid_resource("https://a.example/\x7f"));
  EXPECT_FALSE(valid_resource(std::string("https://a.example/\0", 19)));
  std::string longest = "https://a.example/" + std::string(kMaxResourceLen - 18, 'x');
  EXPECT_TRUE(valid_resource(longest));
  EXPECT_FALSE(valid_resource(longest + "x"));
}

TEST(Resource, FormLetsResourceRepeatOnly) {
  Form f;
  EXPECT_EQ(f.parse("resource=a%3Ab&resource=c%3Ad"), Form::Status::kOk);
  EXPECT_EQ(f.all("resource").size(), 2u);
  EXPECT_EQ(f.parse("scope=a&scope=b"), Form::Status::kDuplicate);
}

TEST(Resource, RequestedMustBeRegistered) {
  const Client c = client_for({kA, kB});
  EXPECT_EQ(ask("grant_type=x", c).audience, "");
  EXPECT_EQ(ask("resource=", c).error, nullptr);  // R5: empty is absent
  Target t = ask("resource=https%3A%2F%2Fa.example%2Fapi", c);
  EXPECT_EQ(t.error, nullptr);
  EXPECT_EQ(t.audience, kA);
  t = ask("resource=https%3A%2F%2Fb.example%2F&resource=https%3A%2F%2Fa.example%2Fapi"
          "&resource=https%3A%2F%2Fb.example%2F",
          c);
  EXPECT_EQ(t.audience, std::string(kB) + " " + kA);  // deduplicated
  EXPECT_STREQ(ask("resource=https%3A%2F%2Fc.example%2F", c).error, "invalid_target");
  EXPECT_STREQ(ask("resource=%2Fapi", c).error, "invalid_target");
  EXPECT_STREQ(ask("resource=https%3A%2F%2Fa.example%2Fapi%23f", c).error, "invalid_target");
  EXPECT_STREQ(ask("resource=https%3A%2F%2Fa.example%2Fapi", client_for({})).error,
               "invalid_target");
}

TEST(Resource, TooManyIsInvalidRequest) {
  std::vector<std::string> reg;
  std::string body;
  for (size_t i = 0; i <= kMaxResources; i++) {
    reg.push_back("urn:r:" + std::to_string(i));
    body += (i ? "&" : "") + std::string("resource=urn%3Ar%3A") + std::to_string(i);
  }
  EXPECT_STREQ(ask(body, client_for(reg)).error, "invalid_request");
}

TEST(Resource, NarrowToASubsetOnly) {
  const std::string held = std::string(kA) + " " + kB;
  EXPECT_EQ(narrow_target("", held), held);
  EXPECT_EQ(narrow_target(kB, held), std::string(kB));
  EXPECT_FALSE(narrow_target("urn:other", held).has_value());
  EXPECT_FALSE(narrow_target(kA, "").has_value());  // the grant holds none
  EXPECT_EQ(narrow_target("", ""), "");
}

TEST(Resource, LocationAcceptsItsAudienceOnly) {
  Location plain;
  plain.issuer = "https://as.example";
  Location at_a = plain;
  at_a.auth_audience = kA;
  Location same = plain;
  same.auth_audience = plain.issuer;  // the default, named
  const std::string both = std::string(kA) + " " + kB;
  EXPECT_TRUE(audience_accepts("", plain));
  EXPECT_TRUE(audience_accepts("", same));
  EXPECT_FALSE(audience_accepts("", at_a));
  EXPECT_TRUE(audience_accepts(kA, at_a));
  EXPECT_TRUE(audience_accepts(both, at_a));
  EXPECT_FALSE(audience_accepts(kB, at_a));
  EXPECT_FALSE(audience_accepts(kA, plain));
  Location jwt_aud = plain;
  jwt_aud.audience = kB;  // oauth2_jwt_audience
  EXPECT_EQ(jwt_aud.accepted_audience(), kB);
  EXPECT_TRUE(audience_accepts(kB, jwt_aud));
  EXPECT_TRUE(audience_accepts("", jwt_aud));
}

TEST(Resource, AudJson) {
  EXPECT_EQ(text(audience_json("", "")), "null");
  EXPECT_EQ(text(audience_json("", "https://as.example")), "\"https://as.example\"");
  EXPECT_EQ(text(audience_json(kA, "https://as.example")), "\"https://a.example/api\"");
  EXPECT_EQ(text(audience_json(std::string(kA) + " " + kB, "")),
            "[\"https://a.example/api\",\"https://b.example/\"]");
}

TEST(Resource, TokenRecordCarriesAudienceAndCostsNothingWithout) {
  Token t;
  t.client_id = "c1";
  t.scope = "read";
  const size_t plain = records::encode_token(t).size();
  t.audience = std::string(kA) + " " + kB;
  const std::string rec = records::encode_token(t);
  EXPECT_EQ(rec.size(), plain + 2 + t.audience.size());
  EXPECT_EQ(static_cast<unsigned char>(rec[3]) & 2, 2);  // flag 512
  auto back = records::decode_token(rec);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->audience, t.audience);
  for (size_t n = 0; n < rec.size(); n++) {
    EXPECT_FALSE(records::decode_token(rec.substr(0, n)).has_value()) << n;
  }
  t.data = "{}";  // with the field before it
  back = records::decode_token(records::encode_token(t));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->data, "{}");
  EXPECT_EQ(back->audience, t.audience);
}

TEST(Resource, ClientRecordKeepsResources) {
  Client c = client_for({kA, kB});
  auto back = records::decode_client("default", records::encode_client(c));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->resources, c.resources);
  Client none = client_for({});
  EXPECT_EQ(records::encode_client(none).find("resources"), std::string::npos);
  back = records::decode_client("default", records::encode_client(none));
  ASSERT_TRUE(back.has_value());
  EXPECT_TRUE(back->resources.empty());
}

}  // namespace
