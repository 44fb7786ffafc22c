#include "vm/adoption_plan.h"

#include <gtest/gtest.h>

#include <vector>

#include "vm/vm_origin.h"

namespace ferry::vm {
namespace {

const CloneOrigin kClone{"s1", "0123abcd", "src", false, false};
const MigrationOrigin kMigration{"h1", "m-1"};
const HoldOrigin kHold{"hold-1", 1700000000, "h1"};

VmRecord Record(VmState state, pid_t pid, const VmOrigin& origin = BootedOrigin{}) {
  VmRecord r;
  r.spec.name = "web";
  r.state = state;
  r.pid = pid;
  r.origin = OriginToJson(origin);
  return r;
}

TEST(AdoptionPlanTest, ACreateLeftBeforeQemuStartedNeverHappened) {
  EXPECT_EQ(PlanAdoption(Record(VmState::kCreating, 0)), AdoptionPlan::kDiscard);
  EXPECT_EQ(PlanAdoption(Record(VmState::kCreating, 0, kMigration)), AdoptionPlan::kDiscard);
}

TEST(AdoptionPlanTest, ARestoreLeftHalfDoneIsKeptOnlyIfItsGuestRuns) {
  for (const VmOrigin& origin : std::vector<VmOrigin>{kClone, kMigration, kHold}) {
    EXPECT_EQ(PlanAdoption(Record(VmState::kCreating, 4242, origin)), AdoptionPlan::kKeepIfResumed)
        << OriginToJson(origin).dump();
  }
}

TEST(AdoptionPlanTest, AQemuWhoseLaunchDidNotFinishIsEnded) {
  EXPECT_EQ(PlanAdoption(Record(VmState::kCreating, 4242)), AdoptionPlan::kEndInterruptedLaunch);
  // A record that says no QEMU runs but still names one: the launch died between spawn and QMP.
  EXPECT_EQ(PlanAdoption(Record(VmState::kStopped, 4242)), AdoptionPlan::kEndInterruptedLaunch);
  EXPECT_EQ(PlanAdoption(Record(VmState::kFailed, 4242)), AdoptionPlan::kEndInterruptedLaunch);
}

TEST(AdoptionPlanTest, AVmWithoutAQemuOnlyLosesItsTapAndOneWithAQemuIsReattached) {
  EXPECT_EQ(PlanAdoption(Record(VmState::kStopped, 0)), AdoptionPlan::kNothingRuns);
  EXPECT_EQ(PlanAdoption(Record(VmState::kFailed, 0)), AdoptionPlan::kNothingRuns);
  for (VmState s : {VmState::kBooting, VmState::kRunning, VmState::kPaused, VmState::kStopping}) {
    EXPECT_EQ(PlanAdoption(Record(s, 4242)), AdoptionPlan::kReattach) << VmStateName(s);
    EXPECT_EQ(PlanAdoption(Record(s, 4242, kClone)), AdoptionPlan::kReattach);
  }
}

}  // namespace
}  // namespace ferry::vm
