// Unit tests of Store::copy_compact, the hot backup under oauth2-admin
// backup (README "Backup and restore"): the copy is a store of its own,
// holding what was committed before it was made and nothing after.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "crypto.hpp"
#include "store.hpp"
#include "test_helpers.hpp"

using oauth2::Store;
using oauth2::Token;
using oauth2::TokenType;
using oauth2::Txn;

namespace {

constexpr size_t kMapSize = size_t(64) << 20;

Token access_token() {
  Token t;
  t.type = TokenType::kAccess;
  t.issued_at = 1000;
  t.expires_at = 4102444800;  // 2100
  t.client_id = "backup-client";
  t.scope = "read";
  return t;
}

std::vector<std::string> put_tokens(Store& store, size_t n) {
  std::vector<std::string> values;
  store.change([&](Txn& txn) {
    values.clear();
    for (size_t i = 0; i < n; i++) {
      values.push_back(oauth2::new_token());
      txn.put_token("default", oauth2::token_id(values.back()), access_token());
    }
    txn.commit();
  });
  return values;
}

bool has_token(Store& store, const std::string& value) {
  Txn txn = store.read();
  return txn.get_token("default", oauth2::token_id(value)).has_value();
}

TEST(BackupTest, CopyHoldsWhatWasCommittedBeforeItAndNothingAfter) {
  oauth2_test::TempDir dir;
  const std::string live = dir.path() + "/live", copy = dir.path() + "/copy";
  std::vector<std::string> before, after;
  {
    Store store(live, kMapSize);
    before = put_tokens(store, 500);
    int fd = open((dir.path() + "/backup").c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
    ASSERT_GE(fd, 0);
    store.copy_compact(fd);
    ASSERT_EQ(close(fd), 0);
    after = put_tokens(store, 10);
  }
  struct stat live_st, copy_st;
  ASSERT_EQ(stat((live + "/data.mdb").c_str(), &live_st), 0);
  ASSERT_EQ(stat((dir.path() + "/backup").c_str(), &copy_st), 0);
  EXPECT_GT(copy_st.st_size, 0);
  EXPECT_LE(copy_st.st_size, live_st.st_size) << "compacted";

  // the copy, as the data.mdb of another store
  ASSERT_EQ(mkdir(copy.c_str(), 0750), 0);
  ASSERT_EQ(rename((dir.path() + "/backup").c_str(), (copy + "/data.mdb").c_str()), 0);
  Store restored(copy, kMapSize, false);
  for (const std::string& v : before) EXPECT_TRUE(has_token(restored, v));
  for (const std::string& v : after) EXPECT_FALSE(has_token(restored, v));
  EXPECT_EQ(restored.read().get_meta("schema_version"), std::to_string(oauth2::kSchemaVersion));
}

TEST(BackupTest, CopyToABadDescriptorThrows) {
  oauth2_test::TempDir dir;
  Store store(dir.path() + "/live", kMapSize);
  put_tokens(store, 1);
  EXPECT_THROW(store.copy_compact(-1), oauth2::StoreError);
}

}  // namespace
