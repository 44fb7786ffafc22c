#include "vm/vm_state_machine.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ferry::vm {
namespace {

using ::testing::HasSubstr;

class VmStateMachineTest : public ::testing::Test {
 protected:
  VmStateMachineTest() {
    vm_.rec.spec.name = "web";
    vm_.rec.id = "0123456789abcdef";
    vm_.rec.pid = 1234;
    vm_.paths = VmPaths::ForDir("/nonexistent/ferry/vms/web");
  }
  void In(VmState s) { vm_.rec.state = s; }
  static ProcessExit Exited(int code) {
    ProcessExit ex;
    ex.known = true;
    ex.code = code;
    return ex;
  }
  static ProcessExit Killed() {
    ProcessExit ex;
    ex.known = true;
    ex.signaled = true;
    ex.code = 9;
    return ex;
  }

  Vm vm_;
};

TEST_F(VmStateMachineTest, OneOperationHoldsAVmAtATime) {
  EXPECT_TRUE(vm_.holder.free());
  Claim(vm_, "op-1");
  EXPECT_FALSE(vm_.holder.free());
  EXPECT_EQ(vm_.holder.Describe(), "op-1");
  EXPECT_TRUE(CheckFree(vm_, "op-1").ok()) << "the holder may act again";
  Status other = CheckFree(vm_, "op-2");
  EXPECT_EQ(other.code(), Status::Code::kFailedPrecondition);
  EXPECT_THAT(other.message(), HasSubstr("vm web is busy with operation op-1"));
  EXPECT_THAT(RefuseBusy(vm_, "paused").message(),
              HasSubstr("cannot be paused now; wait for it to finish (ferry operation show op-1)"));
  Release(vm_);
  EXPECT_TRUE(CheckFree(vm_).ok());
}

TEST_F(VmStateMachineTest, ADeleteHoldsTheVmUntilItsRecordIsGoneOrTheDeleteFails) {
  In(VmState::kRunning);
  EXPECT_THAT(CheckDeletable(vm_, false, "").message(), HasSubstr("stop it first"));
  Claim(vm_, "migration-1");
  EXPECT_THAT(CheckDeletable(vm_, true, "").message(), HasSubstr("busy with operation"));
  ASSERT_TRUE(CheckDeletable(vm_, true, "migration-1").ok()) << "the lease holder may delete";
  DeleteBegun(vm_);
  EXPECT_EQ(vm_.holder.Describe(), "delete");
  EXPECT_EQ(vm_.exit_handling, ExitHandling::kStops);
  EXPECT_FALSE(CheckFree(vm_, "delete").ok());
  DeleteFailed(vm_);  // e.g. the registry refused: a later delete must be able to try again
  EXPECT_TRUE(vm_.holder.free());
}

TEST_F(VmStateMachineTest, OnlyAStoppedOrFailedVmStarts) {
  for (VmState s : {VmState::kCreating, VmState::kBooting, VmState::kRunning, VmState::kPaused,
                    VmState::kStopping}) {
    In(s);
    EXPECT_FALSE(CheckStartable(vm_).ok()) << VmStateName(s);
  }
  In(VmState::kFailed);
  EXPECT_TRUE(CheckStartable(vm_).ok());
  In(VmState::kStopped);
  ASSERT_TRUE(CheckStartable(vm_).ok());
  Claim(vm_, "op-1");
  EXPECT_THAT(CheckStartable(vm_).message(), HasSubstr("busy with operation op-1"));
}

TEST_F(VmStateMachineTest, AnExitDuringALaunchWaitsForTheLauncher) {
  In(VmState::kStopped);
  LaunchBegun(vm_);
  EXPECT_FALSE(QemuExited(vm_, Killed())) << "deferred while launching";
  EXPECT_EQ(vm_.rec.state, VmState::kStopped);
  // The launcher registers the QEMU; the exit it missed is applied then.
  vm_.rec.state = VmState::kBooting;
  vm_.exit_handling = ExitHandling::kFails;
  ApplyExit(vm_);
  EXPECT_EQ(vm_.rec.state, VmState::kFailed);
  EXPECT_THAT(vm_.rec.failure, HasSubstr("QEMU (pid 1234)"));
  EXPECT_EQ(vm_.rec.pid, 0);
}

TEST_F(VmStateMachineTest, AnAbandonedLaunchsQemuEndsAsAStop) {
  LaunchBegun(vm_);
  LaunchAbandoned(vm_);
  EXPECT_FALSE(QemuExited(vm_, Killed()));
  StopDeferringExits(vm_);
  EXPECT_EQ(vm_.exit_handling, ExitHandling::kStops);
  LaunchBegun(vm_);
  StopDeferringExits(vm_);  // a launch that failed before it started QEMU
  EXPECT_EQ(vm_.exit_handling, ExitHandling::kFails);
}

TEST_F(VmStateMachineTest, TheGuestBecomesReadyOnlyWhileAQemuRuns) {
  In(VmState::kBooting);
  EXPECT_TRUE(GuestReady(vm_));
  EXPECT_EQ(vm_.rec.state, VmState::kRunning);
  EXPECT_GT(vm_.rec.ready_at_ms, 0);
  EXPECT_FALSE(GuestReady(vm_)) << "once";
  vm_.rec.guest_ready = false;
  In(VmState::kStopped);
  EXPECT_FALSE(GuestReady(vm_));
  In(VmState::kPaused);
  EXPECT_TRUE(GuestReady(vm_));
  EXPECT_EQ(vm_.rec.state, VmState::kPaused) << "ready, but still paused";
}

TEST_F(VmStateMachineTest, PauseAndResumeGoBackToWhereTheGuestWas) {
  In(VmState::kBooting);
  ASSERT_TRUE(Paused(vm_));
  EXPECT_EQ(vm_.rec.state, VmState::kPaused);
  EXPECT_FALSE(Paused(vm_));
  ASSERT_TRUE(Resumed(vm_));
  EXPECT_EQ(vm_.rec.state, VmState::kBooting);
  vm_.rec.guest_ready = true;
  In(VmState::kRunning);
  ASSERT_TRUE(Paused(vm_));
  ASSERT_TRUE(Resumed(vm_));
  EXPECT_EQ(vm_.rec.state, VmState::kRunning);
  EXPECT_FALSE(Resumed(vm_));
  In(VmState::kStopping);
  EXPECT_FALSE(Paused(vm_)) << "a stopping VM stays stopping";
}

TEST_F(VmStateMachineTest, AnUnexpectedExitFailsTheVmAndSaysWhy) {
  In(VmState::kRunning);
  vm_.shutdown_reason = "guest-panic";
  ASSERT_TRUE(QemuExited(vm_, Exited(0)));
  ApplyExit(vm_);
  EXPECT_EQ(vm_.rec.state, VmState::kFailed);
  EXPECT_THAT(vm_.rec.failure, HasSubstr("after the guest panicked; see `ferry vm console web`"));
  EXPECT_FALSE(vm_.rec.guest_ready);
}

TEST_F(VmStateMachineTest, AGuestPowerOffIsAStopNotAFailure) {
  In(VmState::kRunning);
  vm_.shutdown_reason = "guest-shutdown";
  ASSERT_TRUE(QemuExited(vm_, Exited(0)));
  ApplyExit(vm_);
  EXPECT_EQ(vm_.rec.state, VmState::kStopped);
  EXPECT_EQ(vm_.rec.stop_mode, "guest");
  // ...unless QEMU was killed after it.
  In(VmState::kRunning);
  ASSERT_TRUE(QemuExited(vm_, Killed()));
  ApplyExit(vm_);
  EXPECT_EQ(vm_.rec.state, VmState::kFailed);
}

TEST_F(VmStateMachineTest, AStopExpectsTheExitAndEndsStopped) {
  In(VmState::kRunning);
  ASSERT_TRUE(CheckStoppable(vm_).ok());
  StopBegun(vm_);
  EXPECT_EQ(vm_.rec.state, VmState::kStopping);
  ASSERT_TRUE(QemuExited(vm_, Killed()));
  ApplyExit(vm_);
  EXPECT_EQ(vm_.rec.state, VmState::kStopped) << "killed by the stop: expected";
  EXPECT_TRUE(vm_.rec.failure.empty());
  Stopped(vm_, "forced", /*qemu_gone=*/true);
  EXPECT_EQ(vm_.rec.stop_mode, "forced");
  EXPECT_THAT(CheckStoppable(vm_).message(), HasSubstr("already stopped"));
  In(VmState::kFailed);
  EXPECT_THAT(CheckStoppable(vm_).message(), HasSubstr("nothing runs to stop"));
}

TEST_F(VmStateMachineTest, AStopWhoseQemuCouldNotBeSeenEndingStillStops) {
  In(VmState::kStopping);
  vm_.exit_handling = ExitHandling::kStops;
  Stopped(vm_, "forced", /*qemu_gone=*/false);
  EXPECT_EQ(vm_.rec.state, VmState::kStopped);
  EXPECT_EQ(vm_.rec.pid, 0);
}

TEST_F(VmStateMachineTest, ReadoptionKeepsAStopInProgress) {
  In(VmState::kStopping);
  ReadoptBegun(vm_);
  EXPECT_EQ(vm_.exit_handling, ExitHandling::kDeferredStops);
  Readopted(vm_, nullptr, /*paused=*/false);
  EXPECT_EQ(vm_.rec.state, VmState::kBooting);
  EXPECT_EQ(vm_.exit_handling, ExitHandling::kStops);
  In(VmState::kRunning);
  ReadoptBegun(vm_);
  vm_.rec.guest_ready = true;
  Readopted(vm_, nullptr, /*paused=*/true);
  EXPECT_EQ(vm_.rec.state, VmState::kPaused);
  EXPECT_EQ(vm_.exit_handling, ExitHandling::kFails);
}

TEST_F(VmStateMachineTest, AnInterruptedLaunchFailsSayingWhatHappened) {
  In(VmState::kCreating);
  LaunchInterrupted(vm_, /*killed=*/true);
  EXPECT_EQ(vm_.rec.state, VmState::kFailed);
  EXPECT_THAT(vm_.rec.failure, HasSubstr("launched this VM's QEMU (pid 1234)"));
  EXPECT_THAT(vm_.rec.failure, HasSubstr("the restarted ferryd killed that QEMU"));
  EXPECT_EQ(vm_.rec.pid, 0);
}

}  // namespace
}  // namespace ferry::vm
