#include "snapshot/disk_recovery.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ferry::snapshot {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using Qemu = VmDiskState::Qemu;

constexpr const char* kDisks = "/s/disks";
constexpr const char* kDir = "/s/vms/db";

std::string Frozen(const std::string& id) { return std::string(kDisks) + "/" + id + ".qcow2"; }
std::string Overlay(const std::string& id) { return std::string(kDir) + "/disk-" + id + ".qcow2"; }
const std::string kLaunch = std::string(kDir) + "/disk.qcow2";

// VM db booted on disk.qcow2, its QEMU running on the image it was launched with.
VmDiskState Db() {
  VmDiskState v;
  v.vm = "db";
  v.dir = kDir;
  v.top = kLaunch;
  v.top_exists = true;
  v.qemu = Qemu::kNode;
  v.qemu_node = "#block142";
  v.files = {kLaunch};
  return v;
}

DiskStartState With(const VmDiskState& v, std::vector<std::string> frozen = {}) {
  DiskStartState s;
  s.frozen_dir = kDisks;
  s.frozen_files = std::move(frozen);
  s.vms = {v};
  return s;
}

std::vector<std::string> Removed(const DiskRecoveryPlan& plan) {
  std::vector<std::string> paths;
  for (const auto& r : plan.remove) paths.push_back(r.path);
  return paths;
}

TEST(DiskRecoveryTest, NothingLeftOverNothingDone) {
  DiskRecoveryPlan plan = PlanDiskRecovery(With(Db()));
  EXPECT_THAT(plan.roll_forward, IsEmpty());
  EXPECT_THAT(plan.remove, IsEmpty());
  EXPECT_THAT(plan.kept, IsEmpty());

  // After a snapshot that finished: QEMU writes the overlay the record names, on F.
  VmDiskState v = Db();
  v.top = Overlay("a1");
  v.chain = {Frozen("a1")};
  v.qemu_node = "top-disk-a1";
  v.files = {Overlay("a1")};
  plan = PlanDiskRecovery(With(v, {Frozen("a1")}));
  EXPECT_THAT(plan.roll_forward, IsEmpty());
  EXPECT_THAT(plan.remove, IsEmpty());
}

TEST(DiskRecoveryTest, DiedBeforeTheSwitchTheOverlayItsLogAndTheFrozenLinkGo) {
  for (Qemu qemu : {Qemu::kNode, Qemu::kNotRunning}) {
    SCOPED_TRACE(qemu == Qemu::kNode ? "QEMU runs" : "QEMU is gone");
    VmDiskState v = Db();
    v.qemu = qemu;
    v.files = {kLaunch, Overlay("b2"), Overlay("b2") + ".qemu-img.log"};
    v.backing[Overlay("b2")] = Frozen("b2");
    DiskRecoveryPlan plan = PlanDiskRecovery(With(v, {Frozen("b2")}));
    EXPECT_THAT(plan.roll_forward, IsEmpty());
    EXPECT_THAT(Removed(plan),
                ElementsAre(Overlay("b2"), Overlay("b2") + ".qemu-img.log", Frozen("b2")));
    EXPECT_THAT(plan.remove[0].why, HasSubstr("vm db writes " + kLaunch));
    EXPECT_THAT(plan.remove[2].why, HasSubstr("no VM's disk lies on it"));
  }
}

TEST(DiskRecoveryTest, SwitchedButNotRecordedIsRolledForwardAndItsFilesKept) {
  // QEMU runs on the new overlay; the old top is still there (died before unlinking it) or gone.
  for (bool old_top_left : {true, false}) {
    SCOPED_TRACE(old_top_left ? "old top left" : "old top unlinked");
    VmDiskState v = Db();
    v.qemu_node = "top-disk-c3";
    v.top_exists = old_top_left;
    v.files = {Overlay("c3")};
    if (old_top_left) v.files.push_back(kLaunch);
    DiskRecoveryPlan plan = PlanDiskRecovery(With(v, {Frozen("c3")}));
    ASSERT_EQ(plan.roll_forward.size(), 1u);
    const DiskRollForward& r = plan.roll_forward[0];
    EXPECT_EQ(r.vm, "db");
    EXPECT_EQ(r.top, Overlay("c3"));
    EXPECT_THAT(r.chain, ElementsAre(Frozen("c3")));
    EXPECT_EQ(r.frozen, Frozen("c3"));
    EXPECT_THAT(r.why, HasSubstr("node top-disk-c3"));
    // T and F are the VM's disk now; only the old top's name goes (F keeps its image).
    if (old_top_left) {
      EXPECT_THAT(Removed(plan), ElementsAre(kLaunch));
      EXPECT_THAT(plan.remove[0].why, HasSubstr("lives on as " + Frozen("c3")));
    } else {
      EXPECT_THAT(plan.remove, IsEmpty());
    }
  }
}

TEST(DiskRecoveryTest, ASecondSnapshotRollsForwardOntoTheWholeChain) {
  VmDiskState v = Db();
  v.top = Overlay("a1");
  v.chain = {Frozen("a1")};
  v.qemu_node = "top-disk-d4";
  v.files = {Overlay("a1"), Overlay("d4")};
  DiskRecoveryPlan plan = PlanDiskRecovery(With(v, {Frozen("a1"), Frozen("d4")}));
  ASSERT_EQ(plan.roll_forward.size(), 1u);
  EXPECT_THAT(plan.roll_forward[0].chain, ElementsAre(Frozen("d4"), Frozen("a1")));
  EXPECT_THAT(Removed(plan), ElementsAre(Overlay("a1")));
}

TEST(DiskRecoveryTest, WithoutItsQemuTheOneOverlayOnAFrozenImageOfItsIdIsTheDisk) {
  VmDiskState v = Db();
  v.qemu = Qemu::kNotRunning;
  v.top_exists = false;  // unlinked by the snapshot, which then died
  v.files = {Overlay("e5")};
  v.backing[Overlay("e5")] = Frozen("e5");
  DiskRecoveryPlan plan = PlanDiskRecovery(With(v, {Frozen("e5")}));
  ASSERT_EQ(plan.roll_forward.size(), 1u);
  EXPECT_EQ(plan.roll_forward[0].top, Overlay("e5"));
  EXPECT_THAT(plan.roll_forward[0].why, HasSubstr("which is gone"));
  EXPECT_THAT(plan.remove, IsEmpty());

  // An overlay that lies on something else is not taken for the disk: all is kept.
  v.backing[Overlay("e5")] = "/elsewhere.qcow2";
  plan = PlanDiskRecovery(With(v, {Frozen("e5"), Frozen("orphan")}));
  EXPECT_THAT(plan.roll_forward, IsEmpty());
  EXPECT_THAT(plan.remove, IsEmpty());
  ASSERT_EQ(plan.kept.size(), 1u);
  EXPECT_THAT(plan.kept[0], HasSubstr("is missing and no overlay here finishes a snapshot"));

  // Two that could be: neither is chosen.
  v.backing[Overlay("e5")] = Frozen("e5");
  v.files.push_back(Overlay("f6"));
  v.backing[Overlay("f6")] = Frozen("f6");
  plan = PlanDiskRecovery(With(v, {Frozen("e5"), Frozen("f6")}));
  EXPECT_THAT(plan.roll_forward, IsEmpty());
  EXPECT_THAT(plan.remove, IsEmpty());
  EXPECT_THAT(plan.kept.at(0), HasSubstr("2 overlays here could be its disk"));
}

TEST(DiskRecoveryTest, AQemuThatCannotBeAskedKeepsEverything) {
  VmDiskState v = Db();
  v.qemu = Qemu::kUnknown;
  v.files = {kLaunch, Overlay("b2")};
  DiskRecoveryPlan plan = PlanDiskRecovery(With(v, {Frozen("b2")}));
  EXPECT_THAT(plan.roll_forward, IsEmpty());
  EXPECT_THAT(plan.remove, IsEmpty());
  EXPECT_THAT(plan.kept.at(0), HasSubstr("did not say which image its disk writes"));

  // QEMU names an overlay that is not there: not rolled forward, nothing removed.
  v.qemu = Qemu::kNode;
  v.qemu_node = "top-disk-zz";
  plan = PlanDiskRecovery(With(v, {Frozen("b2")}));
  EXPECT_THAT(plan.roll_forward, IsEmpty());
  EXPECT_THAT(plan.remove, IsEmpty());
}

TEST(DiskRecoveryTest, FrozenImagesThatAnyVmOrSnapshotKeepsStay) {
  VmDiskState clone;  // a clone of snapshot s1: its disk lies on s1's frozen image
  clone.vm = "db-c1";
  clone.dir = "/s/vms/db-c1";
  clone.top = "/s/vms/db-c1/disk.qcow2";
  clone.chain = {Frozen("s1")};
  clone.top_exists = true;
  clone.qemu = Qemu::kNotRunning;
  clone.files = {clone.top};
  DiskStartState s = With(Db(), {Frozen("s1"), Frozen("s2"), Frozen("s3"), Frozen("gone")});
  s.vms.push_back(clone);
  s.kept_by_snapshots = {Frozen("s2"), Frozen("s3")};
  DiskRecoveryPlan plan = PlanDiskRecovery(s);
  EXPECT_THAT(Removed(plan), ElementsAre(Frozen("gone")));

  // A snapshot that could not be read may lie on any of them: none goes.
  s.snapshots_known = false;
  plan = PlanDiskRecovery(s);
  EXPECT_THAT(plan.remove, IsEmpty());
  EXPECT_THAT(plan.kept.at(0), HasSubstr("a registered snapshot could not be read"));
}

TEST(DiskRecoveryTest, TheOverlayNodeIsNamedAfterItsFile) {
  EXPECT_EQ(OverlayNodeName("/s/vms/db/disk-0123456789abcdef.qcow2"), "top-disk-0123456789abcdef");
}

}  // namespace
}  // namespace ferry::snapshot
