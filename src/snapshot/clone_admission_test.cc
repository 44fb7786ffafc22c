#include "snapshot/clone_admission.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

namespace ferry::snapshot {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(CloneAdmissionTest, ARequestAsksForOneToAThousandClonesAndNamesAllOrNone) {
  EXPECT_TRUE(CheckCloneCount(1, 0).ok());
  EXPECT_TRUE(CheckCloneCount(1000, 0).ok());
  EXPECT_TRUE(CheckCloneCount(2, 2).ok());
  EXPECT_EQ(CheckCloneCount(0, 0).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(CheckCloneCount(1001, 0).code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(CheckCloneCount(3, 2).message(), HasSubstr("one --name per clone (3)"));
}

TEST(CloneAdmissionTest, UnnamedClonesTakeTheFirstFreeNamesOfTheirSource) {
  const std::set<std::string> taken = {"web", "web-c1", "web-c3"};
  auto exists = [&](const std::string& n) { return taken.count(n) > 0; };
  auto names = CloneNamesFor("web", 3, {}, exists);
  ASSERT_TRUE(names.ok()) << names.status().message();
  EXPECT_THAT(*names, ElementsAre("web-c2", "web-c4", "web-c5"));
}

TEST(CloneAdmissionTest, GivenNamesAreKeptButNotOneThatIsTakenOrInvalid) {
  const std::set<std::string> taken = {"web"};
  auto exists = [&](const std::string& n) { return taken.count(n) > 0; };
  auto names = CloneNamesFor("web", 2, {"a", "b"}, exists);
  ASSERT_TRUE(names.ok()) << names.status().message();
  EXPECT_THAT(*names, ElementsAre("a", "b"));
  auto clash = CloneNamesFor("web", 2, {"a", "web"}, exists);
  EXPECT_EQ(clash.status().code(), Status::Code::kAlreadyExists);
  EXPECT_THAT(clash.status().message(), HasSubstr("vm web already exists"));
  EXPECT_FALSE(CloneNamesFor("web", 1, {"no/slash"}, exists).ok());
}

vm::VmSpec Parent(vm::NetworkMode mode) {
  vm::VmSpec spec;
  spec.name = "c1";
  spec.network.mode = mode;
  if (mode == vm::NetworkMode::kTap) spec.network.ip = "10.77.0.10/24";
  return spec;
}

TEST(CloneAdmissionTest, AClonesOfATapVmNeedsAnAddressOfItsOwn) {
  vm::VmSpec tap = Parent(vm::NetworkMode::kTap);
  Status none = TakeCloneAddress(tap, "", "snapshot s");
  EXPECT_EQ(none.code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(none.message(), HasSubstr("needs an address of its own"));
  EXPECT_EQ(tap.network.ip, "10.77.0.10/24");
  EXPECT_FALSE(TakeCloneAddress(tap, "10.77.0.300/24", "snapshot s").ok());
  ASSERT_TRUE(TakeCloneAddress(tap, "10.77.0.21/24", "snapshot s").ok());
  EXPECT_EQ(tap.network.ip, "10.77.0.21/24");
}

TEST(CloneAdmissionTest, AClonesOfAVmOnUserNetworkingTakesNoAddress) {
  vm::VmSpec user = Parent(vm::NetworkMode::kUser);
  EXPECT_TRUE(TakeCloneAddress(user, "", "snapshot s").ok());
  Status given = TakeCloneAddress(user, "10.77.0.21/24", "snapshot s");
  EXPECT_THAT(given.message(), HasSubstr("--ip is for clones of VMs on tap networking"));
  EXPECT_EQ(user.network.ip, "");
}

TEST(CloneAdmissionTest, AClonesQemuIsItsPoolsThenASpareThenItsOwn) {
  EXPECT_EQ(CloneQemuFor(false, /*warm=*/true, true), CloneQemu::kWarmPool);
  EXPECT_EQ(CloneQemuFor(false, /*warm=*/true, false), CloneQemu::kWarmPool);
  EXPECT_EQ(CloneQemuFor(false, false, /*spares_kept=*/true), CloneQemu::kSpareIfReady);
  EXPECT_EQ(CloneQemuFor(false, false, /*spares_kept=*/false), CloneQemu::kOwn);
  // A pool QEMU being made is a QEMU of its own, never a spare.
  EXPECT_EQ(CloneQemuFor(/*for_pool=*/true, false, true), CloneQemu::kOwn);
}

}  // namespace
}  // namespace ferry::snapshot
