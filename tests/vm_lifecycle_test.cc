// A VM's life as a user lives it: create, reach redis through the forward, pause, resume, stop,
// start, delete. Real ferryd, real QEMU, real redis in the guest.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "harness/ferryd_fixture.h"

namespace ferry::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

class VmLifecycleTest : public FerrydFixture {};

bool MapsFile(pid_t pid, const std::string& path) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::string line;
  while (std::getline(maps, line)) {
    if (line.find(path) != std::string::npos) return true;
  }
  return false;
}

TEST_F(VmLifecycleTest, BootsToReadyAndServesRedisFromAnAgentOwnedRamFile) {
  StartFerryd();
  uint16_t port = CreateRedisVm("web-1");
  json vm = FerryJson({"vm", "show", "web-1"});
  EXPECT_EQ(vm["state"], "running");
  EXPECT_TRUE(vm["guest_ready"].get<bool>());
  EXPECT_GT(vm["boot_to_ready_ms"].get<int64_t>(), 0);
  EXPECT_THAT(std::string(vm["accelerator"]), ::testing::AnyOf("tcg", "kvm"));
  EXPECT_EQ(vm["guest"]["hostname"], "ferry") << vm.dump();
  EXPECT_EQ(std::string(vm["guest"]["machine_id"]).size(), 32u);

  EXPECT_EQ(Redis(port, {"set", "k", "v"}).out, "OK");
  EXPECT_EQ(Redis(port, {"get", "k"}).out, "v");

  // Guest RAM is the agent's file on tmpfs, sized to the VM, and QEMU maps that very file.
  const std::string ram = vm["paths"]["ram_file"];
  EXPECT_EQ(ram.rfind(ram_dir_, 0), 0u) << ram;
  struct stat st;
  ASSERT_EQ(::stat(ram.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 256LL << 20);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  EXPECT_TRUE(MapsFile(vm["pid"].get<pid_t>(), ram));

  CommandResult list = Ferry({"vm", "list"});
  EXPECT_EQ(list.exit_code, 0);
  EXPECT_THAT(list.out, HasSubstr("NAME"));
  EXPECT_THAT(list.out, HasSubstr("web-1"));
  EXPECT_THAT(list.out, HasSubstr("running"));
  EXPECT_THAT(list.out, HasSubstr("256 MiB"));

  CommandResult console = Ferry({"vm", "console", "web-1"});
  EXPECT_THAT(console.out, HasSubstr("ferry-guest: ready"));
}

TEST_F(VmLifecycleTest, PauseFreezesTheGuestAndResumeContinuesIt) {
  StartFerryd();
  uint16_t port = CreateRedisVm("web-1");
  ASSERT_EQ(Redis(port, {"set", "k", "before-pause"}).out, "OK");

  CommandResult pause = Ferry({"vm", "pause", "web-1"});
  ASSERT_EQ(pause.exit_code, 0) << pause.err;
  EXPECT_EQ(FerryJson({"vm", "show", "web-1"})["state"], "paused");
  // A paused guest does not answer: the request times out.
  CommandResult frozen =
      RunCommand({"timeout", "3", "redis-cli", "-p", std::to_string(port), "ping"});
  EXPECT_NE(frozen.exit_code, 0) << frozen.out;

  CommandResult again = Ferry({"vm", "pause", "web-1"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_THAT(again.err, HasSubstr("paused"));

  ASSERT_EQ(Ferry({"vm", "resume", "web-1"}).exit_code, 0);
  EXPECT_EQ(FerryJson({"vm", "show", "web-1"})["state"], "running");
  EXPECT_EQ(Redis(port, {"get", "k"}).out, "before-pause");
}

TEST_F(VmLifecycleTest, StopIsGracefulThenStartAndDeleteWork) {
  StartFerryd();
  uint16_t port = CreateRedisVm("web-1");
  json before = FerryJson({"vm", "show", "web-1"});
  const pid_t pid = before["pid"];
  const std::string ram = before["paths"]["ram_file"];

  CommandResult stop = Ferry({"vm", "stop", "web-1"});
  ASSERT_EQ(stop.exit_code, 0) << stop.err;
  EXPECT_THAT(stop.out, HasSubstr("graceful"));
  json after = FerryJson({"vm", "show", "web-1"});
  EXPECT_EQ(after["state"], "stopped");
  EXPECT_EQ(after["stop_mode"], "graceful");
  EXPECT_FALSE(ProcessAlive(pid));
  EXPECT_FALSE(std::filesystem::exists(ram)) << "the RAM file outlived its VM";

  // Stopping a stopped VM is refused with one clear line, and changes nothing.
  CommandResult twice = Ferry({"vm", "stop", "web-1"});
  EXPECT_EQ(twice.exit_code, 1);
  EXPECT_EQ(twice.err, "ferry: vm web-1 is already stopped; nothing to do\n");
  EXPECT_EQ(FerryJson({"vm", "show", "web-1"})["state"], "stopped");

  CommandResult start = Ferry({"vm", "start", "web-1", "--wait-ready"});
  ASSERT_EQ(start.exit_code, 0) << start.err;
  EXPECT_EQ(Redis(port, {"ping"}).out, "PONG");

  CommandResult del = Ferry({"vm", "delete", "web-1"});
  EXPECT_EQ(del.exit_code, 1) << "a running VM must not be deleted without --force";
  EXPECT_THAT(del.err, HasSubstr("stop it first"));
  ASSERT_EQ(Ferry({"vm", "delete", "web-1", "--force"}).exit_code, 0);
  EXPECT_TRUE(VmNames().empty());
  EXPECT_FALSE(std::filesystem::exists(state_dir_ + "/vms/web-1"));
  EXPECT_TRUE(std::filesystem::is_empty(ram_dir_));
}

// Another process holding SQLite's write lock on a database until Release(): ferryd's writes to
// it then fail (after SQLite's busy timeout), as on a disk that refuses them.
class RegistryWriteLock {
 public:
  explicit RegistryWriteLock(const std::string& db) {
    int in[2], out[2];
    EXPECT_EQ(::pipe(in), 0);
    EXPECT_EQ(::pipe(out), 0);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      ::close(in[1]);
      ::close(out[0]);
      const std::string script =
          "import sqlite3, sys\n"
          "c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)\n"
          "c.execute('BEGIN EXCLUSIVE')\n"
          "print('locked', flush=True)\n"
          "sys.stdin.read()\n";
      ::execlp("python3", "python3", "-c", script.c_str(), db.c_str(), nullptr);
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    stdin_ = in[1];
    // Up to the newline: an unbuffered python (PYTHONUNBUFFERED) writes "locked" and "\n"
    // apart, and one read may see only the first.
    std::string got;
    char c = 0;
    while (got.size() < 16 && ::read(out[0], &c, 1) == 1 && c != '\n') got.push_back(c);
    ::close(out[0]);
    locked_ = got == "locked";
  }
  ~RegistryWriteLock() { Release(); }
  bool locked() const { return locked_; }
  void Release() {
    if (pid_ <= 0) return;
    ::close(stdin_);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1;
  bool locked_ = false;
};

TEST_F(VmLifecycleTest, DeleteWhoseRegistryWriteFailsLeavesTheVmDeletable) {
  StartFerryd();
  // Booted first: ferryd writes the record when the guest becomes ready, and the lock must not
  // wait behind that write on a loaded host.
  ASSERT_EQ(Ferry({"vm", "create", "web-1", "--memory", "256", "--wait-ready"}).exit_code, 0);
  const pid_t pid = FerryJson({"vm", "show", "web-1"})["pid"];
  {
    RegistryWriteLock lock(state_dir_ + "/registry.db");
    ASSERT_TRUE(lock.locked());
    CommandResult del = Ferry({"vm", "delete", "web-1", "--force"});
    EXPECT_EQ(del.exit_code, 1);
    EXPECT_THAT(del.err, HasSubstr("vm web-1: its QEMU is stopped but its record could not be "
                                   "removed"));
    EXPECT_THAT(del.err, HasSubstr("run the delete again"));
    EXPECT_FALSE(ProcessAlive(pid));
  }
  // The failed delete did not leave the VM busy forever: the next one goes through.
  CommandResult again = Ferry({"vm", "delete", "web-1", "--force"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_TRUE(VmNames().empty());
}

TEST_F(VmLifecycleTest, StartWithItsDataDiskMissingFailsInsteadOfMakingAnEmptyOne) {
  StartFerryd();
  ASSERT_EQ(Ferry({"vm", "create", "web-1", "--memory", "256", "--disk", "64M"}).exit_code, 0);
  const std::string disk = FerryJson({"vm", "show", "web-1"})["paths"]["disk"];
  ASSERT_TRUE(std::filesystem::exists(disk));
  ASSERT_EQ(Ferry({"vm", "stop", "web-1", "--force"}).exit_code, 0);
  ASSERT_TRUE(std::filesystem::remove(disk));

  CommandResult start = Ferry({"vm", "start", "web-1"});
  EXPECT_EQ(start.exit_code, 1);
  EXPECT_THAT(start.err, HasSubstr("vm web-1: its data disk " + disk + " is missing"));
  EXPECT_FALSE(std::filesystem::exists(disk)) << "an empty disk replaced the lost one";
  EXPECT_NE(FerryJson({"vm", "show", "web-1"})["state"], "running");
}

}  // namespace
}  // namespace ferry::testing
