// QEMU is a process ferryd does not control: it may die at any time or refuse to start. The VM
// must end up failed with QEMU's own last words, never hung, never half-registered.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "harness/ferryd_fixture.h"
#include "harness/qemu_scratch.h"

namespace ferry::testing {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;

class QemuFailureTest : public FerrydFixture {};

TEST_F(QemuFailureTest, QemuTerminatedBehindTheAgentsBackIsFailedWithItsLastWords) {
  StartFerryd();
  CreateRedisVm("web-1");
  json before = FerryJson({"vm", "show", "web-1"});
  ASSERT_EQ(::kill(before["pid"].get<pid_t>(), SIGTERM), 0);

  json vm = WaitForState("web-1", "failed", std::chrono::seconds(30));
  ASSERT_EQ(vm["state"], "failed") << vm.dump();
  EXPECT_THAT(std::string(vm["failure"]), HasSubstr("QEMU"));
  EXPECT_THAT(std::string(vm["failure"]), HasSubstr("exited"));
  // QEMU says why it went: "terminating on signal 15 from pid ...".
  EXPECT_THAT(std::string(vm["last_words"]), HasSubstr("terminating on signal 15"));
  EXPECT_FALSE(std::filesystem::exists(std::string(before["paths"]["ram_file"])));

  CommandResult stop = Ferry({"vm", "stop", "web-1"});
  EXPECT_EQ(stop.exit_code, 1);
  EXPECT_THAT(stop.err, HasSubstr("has failed"));
}

TEST_F(QemuFailureTest, QemuKilledIsFailedWithTheSignal) {
  StartFerryd();
  CreateRedisVm("web-1");
  ASSERT_EQ(::kill(FerryJson({"vm", "show", "web-1"})["pid"].get<pid_t>(), SIGKILL), 0);
  json vm = WaitForState("web-1", "failed", std::chrono::seconds(30));
  ASSERT_EQ(vm["state"], "failed") << vm.dump();
  EXPECT_THAT(std::string(vm["failure"]), HasSubstr("killed by signal 9"));
  // A failed VM can be booted again.
  CommandResult start = Ferry({"vm", "start", "web-1", "--wait-ready"});
  EXPECT_EQ(start.exit_code, 0) << start.err;
}

TEST_F(QemuFailureTest, QemuThatRefusesToStartLeavesNothingRegistered) {
  // The real QEMU, given an option it rejects: it prints why and exits 1.
  QemuScratch scratch;
  const std::string wrapper = scratch.Script(
      "qemu-bad-option", "#!/bin/sh\nexec qemu-system-x86_64 \"$@\" -no-such-option\n");
  StartFerryd({"--qemu", wrapper});

  CommandResult r = Ferry({"vm", "create", "web-1", "--wait-ready"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("QEMU did not start"));
  EXPECT_THAT(r.err, HasSubstr("no-such-option"));  // QEMU's own words
  EXPECT_EQ(ErrorLines(r), 1) << r.err;
  EXPECT_TRUE(VmNames().empty());
  EXPECT_TRUE(std::filesystem::is_empty(ram_dir_));
  EXPECT_FALSE(std::filesystem::exists(state_dir_ + "/vms/web-1"));
}

}  // namespace
}  // namespace ferry::testing
