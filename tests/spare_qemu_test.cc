// Spare QEMUs (snapshot/spare_qemus.h): a plain clone (no template) takes a QEMU started before
// anyone knew which snapshot it would run, gives it the snapshot's RAM and runs as any clone; a
// spare that dies is replaced; a restarted ferryd leaves no spare of the old one behind.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "harness/ferryd_fixture.h"

namespace ferry::testing {
namespace {

using nlohmann::json;

class SpareQemuTest : public FerrydFixture {
 protected:
  // The pid of the spare QEMU waiting under this ferryd's state directory (its .spare-ID/pid)
  // that is not `other`; -1 if none waits now.
  pid_t SpareWaiting(pid_t other = -1) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(state_dir_ + "/vms", ec)) {
      if (e.path().filename().string().rfind(".spare-", 0) != 0) continue;
      std::ifstream in(e.path() / "pid");
      pid_t pid = -1;
      if (in >> pid && pid != other && ProcessAlive(pid) && !OwnedByVm(e.path())) return pid;
    }
    return -1;
  }
  // The same, once one waits; -1 if none within a minute.
  pid_t WaitForSpare(pid_t other = -1) {
    for (int i = 0; i < 600; ++i) {
      if (pid_t pid = SpareWaiting(other); pid > 0) return pid;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return -1;
  }
  bool OwnedByVm(const std::filesystem::path& dir) {
    for (const std::string& vm : VmNames()) {
      if (FerryJson({"vm", "show", vm})["dir"] == dir.string()) return true;
    }
    return false;
  }
  json Clone(const std::string& name) {
    CommandResult r = Ferry({"clone", "s", "--name", name, "--forward", "0:6379"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return FerryJson({"vm", "show", name});
  }
  static uint16_t Port(const json& vm) { return vm["spec"]["network"]["forwards"][0]["host_port"]; }
};

TEST_F(SpareQemuTest, PlainClonesComeFromSparesWhichAreReplacedAndDoNotOutliveFerryd) {
  StartFerryd();
  uint16_t port = CreateRedisVm("web-1");
  ASSERT_EQ(Redis(port, {"set", "greeting", "hello"}).out, "OK");
  ASSERT_EQ(Ferry({"snapshot", "create", "web-1", "--name", "s"}).exit_code, 0);

  // The first clone of its shape starts its own QEMU, and leaves a spare for the next.
  json c1 = Clone("c1");
  EXPECT_FALSE(c1["timings"].value("spare_qemu", false));
  EXPECT_EQ(Redis(Port(c1), {"get", "greeting"}).out, "hello");
  const pid_t spare = WaitForSpare();
  ASSERT_GT(spare, 0) << "no spare QEMU was started";

  json c2 = Clone("c2");
  EXPECT_TRUE(c2["timings"].value("spare_qemu", false)) << c2["timings"].dump();
  EXPECT_EQ(c2["pid"].get<pid_t>(), spare) << "the clone did not take the spare";
  EXPECT_EQ(c2["guest"]["hostname"], "c2");
  EXPECT_EQ(Redis(Port(c2), {"get", "greeting"}).out, "hello");
  EXPECT_EQ(Redis(Port(c2), {"set", "mine", "c2"}).out, "OK");
  EXPECT_EQ(Redis(Port(c1), {"get", "mine"}).out, "") << "clones share their writes";

  // A spare that dies while waiting is replaced, and the next clone takes the new one.
  const pid_t next = WaitForSpare(spare);
  ASSERT_GT(next, 0);
  ASSERT_EQ(::kill(next, SIGKILL), 0);
  const pid_t replaced = WaitForSpare(next);
  ASSERT_GT(replaced, 0) << "the dead spare was not replaced";
  json c3 = Clone("c3");
  EXPECT_EQ(c3["pid"].get<pid_t>(), replaced);
  EXPECT_EQ(Redis(Port(c3), {"get", "greeting"}).out, "hello");

  // A restarted ferryd kills the spare the old one left; the clones it made run on.
  const pid_t left = WaitForSpare(replaced);
  ASSERT_GT(left, 0);
  KillFerryd();
  StartFerryd();
  for (int i = 0; i < 100 && ProcessAlive(left); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_FALSE(ProcessAlive(left)) << "orphan spare QEMU " << left;
  EXPECT_EQ(FerryJson({"vm", "show", "c2"})["state"], "running");
  EXPECT_EQ(Redis(Port(c2), {"get", "mine"}).out, "c2");
}

TEST_F(SpareQemuTest, ASpareIsListedFromItsSpawnOnNotOnlyOnceItWaits) {
  // Each QEMU launch lingers 100 ms after its spawn (":slow"), before it answers QMP: a spare
  // spends that long started but not yet waiting, and must be listed all along (tests and
  // operators tell spares from leaked QEMUs by `host show`).
  StartFerryd({}, "vm.launch.after_spawn:slow");
  CreateRedisVm("web-1");
  const pid_t parent = FerryJson({"vm", "show", "web-1"})["pid"];
  ASSERT_EQ(Ferry({"snapshot", "create", "web-1", "--name", "s"}).exit_code, 0);
  const std::vector<pid_t> owned = {parent, Clone("c1")["pid"]};  // c1 leaves a spare to start

  // A QEMU that is neither a VM's nor listed, seen so in two looks in a row (a spare is listed
  // microseconds after its exec; a look can fall between the two).
  std::vector<pid_t> unlisted_before;
  bool saw_it_start = false;
  for (int look = 0; look < 500 && SpareWaiting() < 0; ++look) {
    std::vector<pid_t> qemus = QemusHoldingFilesUnder(state_dir_);  // before host show: see above
    json listed = FerryJson({"host", "show"})["spare_qemu_pids"];
    std::vector<pid_t> unlisted;
    for (pid_t pid : qemus) {
      if (std::find(owned.begin(), owned.end(), pid) != owned.end()) continue;
      saw_it_start = true;
      if (std::find(listed.begin(), listed.end(), pid) == listed.end()) unlisted.push_back(pid);
    }
    for (pid_t pid : unlisted) {
      EXPECT_EQ(std::count(unlisted_before.begin(), unlisted_before.end(), pid), 0)
          << "QEMU " << pid << " runs, belongs to no VM, and `host show` does not list it";
    }
    unlisted_before = unlisted;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(saw_it_start) << "no look fell while the spare was starting";
  EXPECT_GT(WaitForSpare(), 0) << "no spare QEMU was started";
}

}  // namespace
}  // namespace ferry::testing
