// ferryd is a process like any other: it can crash. Its VMs must not notice, and a restarted
// ferryd must find them again from its registry.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <thread>
#include <vector>

#include "harness/ferryd_fixture.h"
#include "harness/test_files.h"
#include "testbed/processes.h"

namespace ferry::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

class ReattachTest : public FerrydFixture {};

TEST_F(ReattachTest, FerrydKilledAndRestartedReadoptsTheRunningVm) {
  StartFerryd();
  uint16_t port = CreateRedisVm("web-1");
  ASSERT_EQ(Redis(port, {"set", "survivor", "yes"}).out, "OK");
  const pid_t qemu = FerryJson({"vm", "show", "web-1"})["pid"];

  KillFerryd();
  ASSERT_TRUE(ProcessAlive(qemu)) << "QEMU died with ferryd";
  EXPECT_EQ(Redis(port, {"get", "survivor"}).out, "yes") << "the guest stopped serving";

  StartFerryd();
  json vm = FerryJson({"vm", "show", "web-1"});
  EXPECT_EQ(vm["state"], "running");
  EXPECT_EQ(vm["pid"].get<pid_t>(), qemu);
  EXPECT_EQ(Redis(port, {"get", "survivor"}).out, "yes");

  // The new ferryd really drives the old QEMU (QMP) and its guest (guest channel).
  ASSERT_EQ(Ferry({"vm", "pause", "web-1"}).exit_code, 0);
  ASSERT_EQ(Ferry({"vm", "resume", "web-1"}).exit_code, 0);
  EXPECT_EQ(Redis(port, {"get", "survivor"}).out, "yes");
  CommandResult stop = Ferry({"vm", "stop", "web-1"});
  ASSERT_EQ(stop.exit_code, 0) << stop.err;
  EXPECT_THAT(stop.out, HasSubstr("graceful"));
  EXPECT_FALSE(ProcessAlive(qemu));
}

TEST_F(ReattachTest, QemuThatDiedWhileFerrydWasDownIsShownFailedWithTheReason) {
  StartFerryd();
  CreateRedisVm("web-1");
  json before = FerryJson({"vm", "show", "web-1"});
  const pid_t qemu = before["pid"];

  KillFerryd();
  ASSERT_EQ(::kill(qemu, SIGKILL), 0);
  for (int i = 0; i < 200 && ProcessAlive(qemu); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  StartFerryd();
  json vm = FerryJson({"vm", "show", "web-1"});
  EXPECT_EQ(vm["state"], "failed");
  EXPECT_THAT(std::string(vm["failure"]), HasSubstr("ended while ferryd was not running"));
  EXPECT_THAT(std::string(vm["failure"]), HasSubstr(std::to_string(qemu)));
  EXPECT_FALSE(std::filesystem::exists(std::string(before["paths"]["ram_file"])));
  CommandResult list = Ferry({"vm", "list"});
  EXPECT_THAT(list.out, HasSubstr("failed"));
}

TEST_F(ReattachTest, FerrydKilledBetweenSpawnAndQmpLeavesNoUnownedQemu) {
  // ferryd kills itself right after recording the QEMU it spawned, before it connects QMP.
  StartFerryd({}, "vm.launch.after_spawn");
  EXPECT_NE(Ferry({"vm", "create", "web-1", "--memory", "256"}).exit_code, 0);
  ASSERT_NO_FATAL_FAILURE(ReapFerrydKilledAtItsFaultPoint());
  std::vector<pid_t> left = WaitForQemusHoldingFilesUnder(state_dir_);
  ASSERT_EQ(left.size(), 1u) << "the spawned QEMU is not running";
  const pid_t qemu = left[0];

  StartFerryd();
  // The restarted ferryd found that QEMU through its record, killed it, and says so.
  EXPECT_FALSE(ProcessAlive(qemu)) << "QEMU pid " << qemu << " was left running, unowned";
  EXPECT_TRUE(QemusHoldingFilesUnder(state_dir_).empty());
  json vm = FerryJson({"vm", "show", "web-1"});
  EXPECT_EQ(vm["state"], "failed");
  const std::string failure = vm.value("failure", "");
  EXPECT_THAT(failure,
              HasSubstr("ferryd stopped while it launched this VM's QEMU (pid " +
                        std::to_string(qemu) + "); the restarted ferryd killed that QEMU"));
  EXPECT_THAT(Ferry({"vm", "show", "web-1"}).out, HasSubstr("killed that QEMU"));
  EXPECT_THAT(ReadFile(state_dir_ + "/ferryd.log"), HasSubstr("the restarted ferryd killed"));
  EXPECT_FALSE(std::filesystem::exists(std::string(vm["paths"]["ram_file"])));
}

TEST_F(ReattachTest, QemuSpawnedButNeverRecordedIsKilledByTheStartUpSweep) {
  // ferryd dies after spawning QEMU and before its record names that QEMU.
  StartFerryd({}, "vm.launch.before_record");
  EXPECT_NE(Ferry({"vm", "create", "web-1", "--memory", "256"}).exit_code, 0);
  ASSERT_NO_FATAL_FAILURE(ReapFerrydKilledAtItsFaultPoint());
  std::vector<pid_t> left = WaitForQemusHoldingFilesUnder(state_dir_);
  ASSERT_EQ(left.size(), 1u) << "the spawned QEMU is not running";

  StartFerryd();
  EXPECT_FALSE(ProcessAlive(left[0])) << "QEMU pid " << left[0] << " was left running, unowned";
  EXPECT_THAT(ReadFile(state_dir_ + "/ferryd.log"),
              HasSubstr("start-up sweep: killed QEMU pid " + std::to_string(left[0])));
  EXPECT_TRUE(VmNames().empty()) << "a create that never ran must leave no VM";
}

TEST_F(ReattachTest, SnapshotLeftUnfinishedByACrashIsSweptAtStartUp) {
  StartFerryd({}, "snapshot.before_register");
  uint16_t port = CreateRedisVm("web-1");
  ASSERT_EQ(Redis(port, {"set", "kept", "yes"}).out, "OK");
  EXPECT_NE(Ferry({"snapshot", "create", "web-1", "--name", "s1"}).exit_code, 0);
  ASSERT_NO_FATAL_FAILURE(ReapFerrydKilledAtItsFaultPoint());
  // The crash left a finished snapshot directory and its RAM image that no registry row names.
  const std::string dir = state_dir_ + "/snapshots/s1";
  const std::string rams = ram_dir_ + "/snapshots";
  ASSERT_TRUE(std::filesystem::exists(dir));
  ASSERT_FALSE(std::filesystem::is_empty(rams));

  StartFerryd();
  EXPECT_FALSE(std::filesystem::exists(dir));
  EXPECT_TRUE(std::filesystem::is_empty(rams)) << "the RAM image outlived the crash";
  const std::string log = ReadFile(state_dir_ + "/ferryd.log");
  EXPECT_THAT(log, HasSubstr("start-up sweep: removed snapshot directory " + dir));
  EXPECT_THAT(log, HasSubstr("start-up sweep: removed RAM image " + rams + "/"));
  // The VM itself was re-adopted and serves on.
  EXPECT_EQ(FerryJson({"vm", "show", "web-1"})["state"], "running");
  EXPECT_EQ(Redis(port, {"get", "kept"}).out, "yes");
}

TEST_F(ReattachTest, SnapshotKilledMidCopyLeavesTheVmRunningAndNoCopy) {
  // ferryd dies while QEMU streams the running guest's RAM to it (the live copy, before the
  // snapshot's instant): the guest never stopped, QEMU's copy fails with ferryd's end of the
  // stream, and the restarted ferryd finds no snapshot and leaves no part of the copy on tmpfs.
  StartFerryd({}, "snapshot.precopy.copying");
  uint16_t port = CreateRedisVm("web-1");
  ASSERT_EQ(Redis(port, {"set", "kept", "yes"}).out, "OK");
  EXPECT_NE(Ferry({"snapshot", "create", "web-1", "--name", "s1"}).exit_code, 0);
  ASSERT_NO_FATAL_FAILURE(ReapFerrydKilledAtItsFaultPoint());
  EXPECT_THAT(ReadFile(state_dir_ + "/ferryd.log"), HasSubstr("snapshot.precopy.copying"));
  // The guest ran through the crash and still takes writes.
  EXPECT_EQ(Redis(port, {"set", "during", "crash"}).out, "OK");
  const std::string rams = ram_dir_ + "/snapshots";
  ASSERT_FALSE(std::filesystem::is_empty(rams)) << "the crash left no partial copy to sweep";

  StartFerryd();
  EXPECT_TRUE(std::filesystem::is_empty(rams)) << "part of the copy outlived the crash";
  EXPECT_EQ(FerryJson({"snapshot", "list"}), nlohmann::json::array());
  EXPECT_EQ(FerryJson({"vm", "show", "web-1"})["state"], "running");
  EXPECT_EQ(Redis(port, {"get", "kept"}).out, "yes");
  EXPECT_EQ(Redis(port, {"get", "during"}).out, "crash");
  // QEMU's failed copy left nothing in the way of the next one.
  CommandResult again = Ferry({"snapshot", "create", "web-1", "--name", "s2"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(FerryJson({"snapshot", "show", "s2"}).value("name", ""), "s2");
}

}  // namespace
}  // namespace ferry::testing
