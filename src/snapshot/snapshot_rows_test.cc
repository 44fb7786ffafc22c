#include "snapshot/snapshot_rows.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ferry::snapshot {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

TEST(SnapshotRowTest, ReadsWhatItWritesAndTellsAnOldRowWithoutAPolicyDigest) {
  SnapshotRow row{"0123abcd", "web", "/s/snapshots/s1", "/r/snapshots/0123abcd.ram", "", "h1"};
  auto back = SnapshotRow::FromJson("s1", row.ToJson());
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->id, row.id);
  EXPECT_EQ(back->ram, row.ram);
  ASSERT_TRUE(back->policy_sha256.has_value());  // "": taken without a policy
  EXPECT_EQ(*back->policy_sha256, "");
  EXPECT_EQ(back->received_from, "h1");
  json old = row.ToJson();
  old.erase("policy_sha256");
  auto older = SnapshotRow::FromJson("s1", old);
  ASSERT_TRUE(older.ok());
  EXPECT_FALSE(older->policy_sha256.has_value());  // unknown: the manifest is all there is
}

TEST(SnapshotRowTest, ARowWithoutItsFilesOrWithTheWrongTypesIsRefusedByName) {
  auto no_ram = SnapshotRow::FromJson("s1", {{"id", "a"}, {"dir", "/d"}});
  ASSERT_FALSE(no_ram.ok());
  EXPECT_THAT(no_ram.status().message(), HasSubstr("snapshot s1"));
  EXPECT_FALSE(SnapshotRow::FromJson("s1", {{"id", "a"}, {"dir", "/d"}, {"ram", 7}}).ok());
  EXPECT_FALSE(SnapshotRow::FromJson("s1", {{"id", ""}, {"dir", "/d"}, {"ram", "/r"}}).ok());
  EXPECT_FALSE(SnapshotRow::FromJson("s1", json::array()).ok());
}

TEST(TemplateRowTest, ReadsWhatItWritesAndRefusesANegativePool) {
  auto back = TemplateRow::FromJson("t", TemplateRow{"s1", 3, true}.ToJson());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->snapshot, "s1");
  EXPECT_EQ(back->pool_size, 3);
  EXPECT_TRUE(back->owns_snapshot);
  auto negative = TemplateRow::FromJson("t", {{"snapshot", "s1"}, {"pool_size", -1}});
  ASSERT_FALSE(negative.ok());
  EXPECT_THAT(negative.status().message(), HasSubstr("template t"));
  EXPECT_FALSE(TemplateRow::FromJson("t", {{"pool_size", 1}}).ok());
}

}  // namespace
}  // namespace ferry::snapshot
