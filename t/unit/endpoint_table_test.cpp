// The endpoint table with reserved ids: ids 15 and 16 (the device flow, on
// another branch) have no endpoint, and the ids after them still find
// theirs.

#include "endpoint_table.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

TEST(EndpointTable, ReservedIdsHaveNoEndpoint) {
  for (int id : {15, 16}) {
    EXPECT_EQ(oauth2::endpoint_kind(id), nullptr) << id;
    EXPECT_EQ(oauth2_endpoint_info(id), nullptr) << id;
  }
}

TEST(EndpointTable, AuthorizedGrantsAfterTheGap) {
  const oauth2_endpoint_info_t* info = oauth2_endpoint_info(OAUTH2_ENDPOINT_AUTHORIZED_GRANTS);
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(std::string(info->directive), "oauth2_authorized_grants");
  EXPECT_EQ(std::string(info->allow), "GET, POST");
  EXPECT_TRUE(info->cookies);
  EXPECT_FALSE(info->prefix);
  const oauth2::EndpointKind* k = oauth2::endpoint_kind(OAUTH2_ENDPOINT_AUTHORIZED_GRANTS);
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->shape, oauth2::Shape::kPage);
  EXPECT_TRUE(k->needs_store);
}

TEST(EndpointTable, EveryOtherIdHasItsDirective) {
  for (int id = 1; id < OAUTH2_ENDPOINT_MAX; id++) {
    if (id == 15 || id == 16) continue;
    const oauth2_endpoint_info_t* info = oauth2_endpoint_info(id);
    ASSERT_NE(info, nullptr) << id;
    EXPECT_EQ(std::string(info->directive).rfind("oauth2_", 0), 0u) << id;
  }
  EXPECT_EQ(oauth2_endpoint_info(0), nullptr);
  EXPECT_EQ(oauth2_endpoint_info(OAUTH2_ENDPOINT_MAX), nullptr);
}

}  // namespace
