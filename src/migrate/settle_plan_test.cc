#include "migrate/settle_plan.h"

#include <gtest/gtest.h>

namespace ferry::migrate {
namespace {

JournalRow Journalled(JournalPhase phase) { return JournalRow{"web-1", "h2", phase}; }

TEST(SettlePlanTest, AJournalledMigrationWhoseVmIsGoneIsForgotten) {
  EXPECT_EQ(PlanRecovery(Journalled(JournalPhase::kPerform), false), RecoveryPlan::kForget);
  EXPECT_EQ(PlanRecovery(Journalled(JournalPhase::kFinish), false), RecoveryPlan::kForget);
}

TEST(SettlePlanTest, AMigrationCutWhileSendingRollsBackAndOneAtItsFinishAsksTheDestination) {
  EXPECT_EQ(PlanRecovery(Journalled(JournalPhase::kPerform), true), RecoveryPlan::kRollBack);
  EXPECT_EQ(PlanRecovery(Journalled(JournalPhase::kFinish), true), RecoveryPlan::kSettle)
      << "the destination may have resumed the guest: rolling back could run it twice";
}

TEST(SettlePlanTest, OnlyAClearAnswerEndsTheSettling) {
  EXPECT_EQ(StepOnAnswer(SettledState::kRunning), SettleStep::kDropCopyHere);
  EXPECT_EQ(StepOnAnswer(SettledState::kAbsent), SettleStep::kResumeHere);
  EXPECT_EQ(StepOnAnswer(SettledState::kUnsettled), SettleStep::kAskAgain);
  EXPECT_EQ(StepOnAnswer(SettledState::kHeld), SettleStep::kAskAgain);
  EXPECT_EQ(StepOnAnswer(Status::Unavailable("host h2 did not answer")), SettleStep::kAskAgain)
      << "no answer is never taken for absent: the copy here stays paused";
}

TEST(SettlePlanTest, TheDestinationSaysRunningOnlyForAVmThatCameByThatMigration) {
  const vm::VmOrigin by_m1 = vm::MigrationOrigin{"h1", "m1"};
  EXPECT_EQ(AnswerForQuery("m1", "running", by_m1), SettledState::kRunning);
  EXPECT_EQ(AnswerForQuery("m1", "stopped", by_m1), SettledState::kRunning)
      << "once resumed here, the copy here is the VM whatever became of it";
  EXPECT_EQ(AnswerForQuery("m1", "creating", by_m1), SettledState::kUnsettled);
  EXPECT_EQ(AnswerForQuery("m2", "running", by_m1), SettledState::kAbsent) << "another migration";
  EXPECT_EQ(AnswerForQuery("m1", "running", vm::BootedOrigin{}), SettledState::kAbsent)
      << "a VM of that name created here";
  EXPECT_EQ(AnswerForQuery("m1", "", vm::VmOrigin{}), SettledState::kAbsent) << "no VM";
}

}  // namespace
}  // namespace ferry::migrate
