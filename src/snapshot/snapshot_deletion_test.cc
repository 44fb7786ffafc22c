#include "snapshot/snapshot_deletion.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ferry::snapshot {
namespace {

using ::testing::HasSubstr;

TEST(SnapshotDeletionTest, ASnapshotNoOneUsesMayGo) {
  EXPECT_TRUE(CheckUnmapped("s1", {}, {}).ok());
  EXPECT_TRUE(CheckFrozenDiskUnused("s1", "/state/disks/a.qcow2", {}).ok());
}

TEST(SnapshotDeletionTest, ClonesMappingItsRamKeepIt) {
  Status st = CheckUnmapped("s1", {"web-c1", "web-c2"}, {});
  EXPECT_EQ(st.code(), Status::Code::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("mapped by 2 clone(s) (web-c1, web-c2)"));
  // The clones are named before the template: deleting them is the first thing to do.
  EXPECT_THAT(CheckUnmapped("s1", {"web-c1"}, {"t1"}).message(), HasSubstr("clone(s)"));
}

TEST(SnapshotDeletionTest, ATemplateBasedOnItKeepsIt) {
  Status st = CheckUnmapped("s1", {}, {"t1"});
  EXPECT_EQ(st.code(), Status::Code::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("base of template t1; delete the template first"));
}

TEST(SnapshotDeletionTest, DisksOnItsFrozenDiskKeepIt) {
  Status st = CheckFrozenDiskUnused("s1", "/state/disks/a.qcow2", {"web", "snapshot s2"});
  EXPECT_EQ(st.code(), Status::Code::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("/state/disks/a.qcow2 is the base of the disks of web, "
                                      "snapshot s2"));
}

}  // namespace
}  // namespace ferry::snapshot
