// The endpoint table: every id from 1 to OAUTH2_ENDPOINT_MAX - 1 has its
// directive and handler, the pages read cookies, and ids outside the range
// have none.

#include "endpoint_table.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

TEST(EndpointTable, EveryIdHasItsDirectiveAndHandler) {
  for (int id = 1; id < OAUTH2_ENDPOINT_MAX; id++) {
    const oauth2_endpoint_info_t* info = oauth2_endpoint_info(id);
    ASSERT_NE(info, nullptr) << id;
    EXPECT_EQ(std::string(info->directive).rfind("oauth2_", 0), 0u) << id;
    const oauth2::EndpointKind* k = oauth2::endpoint_kind(id);
    ASSERT_NE(k, nullptr) << id;
    EXPECT_NE(k->handler, nullptr) << id;
  }
  EXPECT_EQ(oauth2_endpoint_info(0), nullptr);
  EXPECT_EQ(oauth2_endpoint_info(OAUTH2_ENDPOINT_MAX), nullptr);
  EXPECT_EQ(oauth2::endpoint_kind(OAUTH2_ENDPOINT_MAX), nullptr);
}

TEST(EndpointTable, TheDeviceFlowAndTheGrantsPage) {
  struct Row {
    int id;
    const char* directive;
    const char* allow;
    bool cookies;
    oauth2::Shape shape;
  };
  const Row rows[] = {
      {OAUTH2_ENDPOINT_DEVICE_AUTHORIZATION, "oauth2_device_authorization", "POST", false,
       oauth2::Shape::kOAuth},
      {OAUTH2_ENDPOINT_DEVICE, "oauth2_device", "GET, POST", true, oauth2::Shape::kPage},
      {OAUTH2_ENDPOINT_AUTHORIZED_GRANTS, "oauth2_authorized_grants", "GET, POST", true,
       oauth2::Shape::kPage},
  };
  for (const Row& row : rows) {
    const oauth2_endpoint_info_t* info = oauth2_endpoint_info(row.id);
    ASSERT_NE(info, nullptr) << row.id;
    EXPECT_EQ(std::string(info->directive), row.directive);
    EXPECT_EQ(std::string(info->allow), row.allow);
    EXPECT_EQ(static_cast<bool>(info->cookies), row.cookies) << row.directive;
    EXPECT_FALSE(info->prefix) << row.directive;
    EXPECT_EQ(oauth2::endpoint_kind(row.id)->shape, row.shape) << row.directive;
    EXPECT_TRUE(oauth2::endpoint_kind(row.id)->needs_store) << row.directive;
  }
}

}  // namespace
