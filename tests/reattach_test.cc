// ferryd is a process like any other: it can crash. Its VMs must not notice, and a restarted
// ferryd must find them again from its registry.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <thread>

#include "harness/ferryd_fixture.h"

namespace ferry::testing {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;

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

}  // namespace
}  // namespace ferry::testing
