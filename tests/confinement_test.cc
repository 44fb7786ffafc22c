// What a local user or a hostile guest can no longer do: plant ferryd's directories, find QEMU
// running as root or unfiltered, reach the host's loopback from the guest, fill the state disk
// through the console, or starve running guests of their tmpfs RAM.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "harness/ferryd_fixture.h"

namespace ferry::testing {
namespace {

using nlohmann::json;
using std::chrono::seconds;
using ::testing::HasSubstr;

class ConfinementTest : public FerrydFixture {
 protected:
  // ferryd run to its end (it must refuse to start); its stderr.
  CommandResult FerrydRefuses(const std::string& ram_dir) {
    return RunCommand({std::string(FERRY_BUILD_DIR) + "/ferryd", "--state-dir", state_dir_,
                       "--ram-dir", ram_dir, "--socket", socket_});
  }
};

std::string StatusField(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      std::string v = line.substr(field.size() + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
  }
  return "";
}

int ListenOnLoopback(uint16_t* port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 4) != 0) {
    ::close(fd);
    return -1;
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  *port = ntohs(addr.sin_port);
  return fd;
}

bool ConnectionArrives(int listen_fd, seconds within) {
  struct pollfd p = {listen_fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(within.count() * 1000)) == 1;
}

void ExpectOneLine(const CommandResult& r, const std::string& says) {
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr(says));
  EXPECT_EQ(ErrorLines(r), 1) << r.err;
}

TEST_F(ConfinementTest, RefusesARamDirectoryItDoesNotOwnOrThatOthersCanUse) {
  const std::string theirs = ram_dir_ + "/theirs";
  ASSERT_EQ(::mkdir(theirs.c_str(), 0700), 0);
  ASSERT_EQ(::chown(theirs.c_str(), 65534, 65534), 0);
  ExpectOneLine(FerrydRefuses(theirs), "RAM directory " + theirs + " is owned by uid 65534");

  const std::string link = ram_dir_ + "/link";
  ASSERT_EQ(::symlink(theirs.c_str(), link.c_str()), 0);
  ExpectOneLine(FerrydRefuses(link), "RAM directory " + link + " is a symlink");

  const std::string wide = ram_dir_ + "/wide";
  ASSERT_EQ(::mkdir(wide.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(wide.c_str(), 0755), 0);
  ExpectOneLine(FerrydRefuses(wide), "RAM directory " + wide + " has mode 0755");

  // A directory ferryd makes itself is its own, 0700.
  const std::string fresh = ram_dir_ + "/fresh";
  const std::string outer = ram_dir_;
  ram_dir_ = fresh;  // the fixture's --ram-dir
  StartFerryd();
  ram_dir_ = outer;  // removed with everything in it
  struct stat st;
  ASSERT_EQ(::lstat(fresh.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_EQ(st.st_uid, ::geteuid());
}

TEST_F(ConfinementTest, QemuIsUnprivilegedFilteredAndCutOffFromTheHost) {
  StartFerryd();
  const uint16_t port = CreateRedisVm("jail");
  json vm = FerryJson({"vm", "show", "jail"});
  const pid_t pid = vm["pid"].get<pid_t>();

  // QEMU runs as the unprivileged ferry-qemu user, under seccomp filtering.
  const std::string uids = StatusField(pid, "Uid");
  EXPECT_THAT(uids, ::testing::Not(::testing::StartsWith("0"))) << uids;
  EXPECT_THAT(uids, ::testing::Not(HasSubstr("\t0"))) << uids;  // no saved or fs root either
  EXPECT_EQ(StatusField(pid, "Seccomp"), "2");
  EXPECT_EQ(Redis(port, {"set", "k", "v"}).out, "OK");

  // The guest cannot reach a service on the host's loopback through slirp's 10.0.2.2: redis in
  // the guest is told to replicate from it, and the host listener never sees a connection.
  uint16_t host_port = 0;
  const int listener = ListenOnLoopback(&host_port);
  ASSERT_GE(listener, 0);
  EXPECT_EQ(Redis(port, {"replicaof", "10.0.2.2", std::to_string(host_port)}).out, "OK");
  // redis retries its master every second: 20 s are many attempts.
  EXPECT_FALSE(ConnectionArrives(listener, seconds(20)))
      << "the guest reached 127.0.0.1:" << host_port << " on the host";
  ::close(listener);
  EXPECT_EQ(Redis(port, {"replicaof", "no", "one"}).out, "OK");
  EXPECT_EQ(Redis(port, {"get", "k"}).out, "v");  // the forward still works

  // The image boots `quiet` (a few dozen console bytes), so no rotation happens here; the ring
  // itself is tested in src/vm/console_ring_test.cc. The console still reads through it.
  CommandResult shown = Ferry({"vm", "console", "jail"});
  EXPECT_EQ(shown.exit_code, 0);
  EXPECT_THAT(shown.out, HasSubstr("ferry-guest: ready"));
}

std::vector<std::string> CommandLine(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
  std::vector<std::string> argv;
  std::string arg;
  while (std::getline(in, arg, '\0')) argv.push_back(arg);
  return argv;
}

TEST_F(ConfinementTest, EachQemuRunsAsAUidOfItsOwnAndGetsEveryFileAsADescriptor) {
  StartFerryd();
  // One VM with a data disk (its chain is handed over as fd sets), one without.
  ASSERT_EQ(Ferry({"vm", "create", "a", "--memory", "256", "--disk", "64M", "--wait-ready"})
                .exit_code,
            0);
  CreateRedisVm("b");
  const pid_t a = FerryJson({"vm", "show", "a"})["pid"].get<pid_t>();
  const pid_t b = FerryJson({"vm", "show", "b"})["pid"].get<pid_t>();

  // Each QEMU started unprivileged, as a uid of its own (real, effective, saved and fs alike),
  // with no capabilities, no way to gain any, and a filter that forbids setuid and friends.
  const std::string uid_a = StatusField(a, "Uid");
  const std::string uid_b = StatusField(b, "Uid");
  const std::string first_a = uid_a.substr(0, uid_a.find('\t'));
  const std::string first_b = uid_b.substr(0, uid_b.find('\t'));
  EXPECT_NE(first_a, first_b);
  EXPECT_EQ(uid_a, first_a + "\t" + first_a + "\t" + first_a + "\t" + first_a);
  for (pid_t pid : {a, b}) {
    EXPECT_NE(StatusField(pid, "Uid").rfind("0\t", 0), 0u);
    EXPECT_EQ(StatusField(pid, "CapEff"), "0000000000000000");
    EXPECT_EQ(StatusField(pid, "NoNewPrivs"), "1");
    EXPECT_EQ(StatusField(pid, "Seccomp"), "2");
    const std::vector<std::string> argv = CommandLine(pid);
    EXPECT_THAT(argv, ::testing::Contains(
                          "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"));
    EXPECT_THAT(argv, ::testing::Not(::testing::Contains("-runas")));
    // No file by path: nothing in ferryd's directories is opened by QEMU itself.
    for (const std::string& arg : argv) {
      EXPECT_THAT(arg, ::testing::Not(HasSubstr(state_dir_))) << arg;
      EXPECT_THAT(arg, ::testing::Not(HasSubstr(ram_dir_))) << arg;
    }
  }
  // One QEMU cannot look into another: as a's uid, b's memory and environment are closed (with
  // one uid for all, /proc/PID/mem of a sibling QEMU would be open to it).
  CommandResult peek = RunCommand({"setpriv", "--reuid=" + first_a, "--regid=" + first_a,
                                   "--clear-groups", "cat",
                                   "/proc/" + std::to_string(b) + "/environ"});
  EXPECT_NE(peek.exit_code, 0);
  EXPECT_THAT(peek.err, HasSubstr("Permission denied"));
  // The VM's own RAM file belongs to its QEMU's uid; nobody else may touch it.
  struct stat ram;
  const std::string ram_file = FerryJson({"vm", "show", "b"})["paths"]["ram_file"];
  ASSERT_EQ(::stat(ram_file.c_str(), &ram), 0);
  EXPECT_EQ(std::to_string(ram.st_uid), first_b);
  EXPECT_EQ(ram.st_mode & 0777, 0600u);

  // The disk works through its descriptors, across a snapshot (QEMU reopens the image
  // read-only at its end, and switches to a new overlay handed over as an fd set).
  CommandResult first = Ferry({"snapshot", "create", "a", "--name", "s"});
  EXPECT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(FerryJson({"vm", "show", "a"})["state"], "running");
  CommandResult second = Ferry({"snapshot", "create", "a", "--name", "s2"});
  EXPECT_EQ(second.exit_code, 0) << second.err;
}

// On a tmpfs the test mounts, sized so that two 256 MiB VMs fit but leave less room than one
// VM's RAM image: ferryd refuses a third VM and the snapshot, and the two go on with their data.
class SmallTmpfsTest : public FerrydFixture {
 protected:
  void SetUp() override {
    FerrydFixture::SetUp();
    outer_ = ram_dir_;
    mount_ = ram_dir_ + "/small";
    ram_dir_ = mount_ + "/ram";  // the fixture's --ram-dir; ferryd creates it
    ASSERT_EQ(::mkdir(mount_.c_str(), 0700), 0);
    ASSERT_EQ(
        ::mount("tmpfs", mount_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=600m,mode=0700"), 0)
        << std::strerror(errno);
  }
  void TearDown() override {
    FerrydFixture::TearDown();  // the VMs go first, then their RAM's filesystem
    ::umount2(mount_.c_str(), MNT_DETACH);
    std::error_code ec;
    std::filesystem::remove_all(outer_, ec);
  }
  std::string outer_;
  std::string mount_;
};

TEST_F(SmallTmpfsTest, RefusesWhatWouldNotFitAndRunningGuestsKeepTheirData) {
  StartFerryd();
  const uint16_t a = CreateRedisVm("a");
  const uint16_t b = CreateRedisVm("b");
  // A 100 MiB value in a's RAM (redis zero-fills it, so the guest writes every page): a's RAM
  // image would need more than the 88 MiB left.
  constexpr uint64_t kBig = uint64_t{100} << 20;
  ASSERT_EQ(Redis(a, {"setrange", "big", std::to_string(kBig - 1), "x"}).out, std::to_string(kBig));
  ASSERT_EQ(Redis(b, {"set", "kb", "vb"}).out, "OK");

  CommandResult c = Ferry({"vm", "create", "c", "--memory", "256", "--wait-ready"});
  EXPECT_EQ(c.exit_code, 1);
  EXPECT_THAT(c.err, HasSubstr("vm c: 256 MiB of memory requested"));
  EXPECT_EQ(ErrorLines(c), 1) << c.err;
  EXPECT_THAT(VmNames(), ::testing::Not(::testing::Contains("c")));

  CommandResult snap = Ferry({"snapshot", "create", "a", "--name", "s"});
  EXPECT_EQ(snap.exit_code, 1);
  EXPECT_THAT(snap.err, HasSubstr("snapshot a@s: the RAM image needs up to"));
  EXPECT_EQ(Ferry({"snapshot", "show", "s"}).exit_code, 1);

  EXPECT_EQ(FerryJson({"vm", "show", "a"})["state"], "running");
  EXPECT_EQ(FerryJson({"vm", "show", "b"})["state"], "running");
  EXPECT_EQ(Redis(a, {"strlen", "big"}).out, std::to_string(kBig));
  EXPECT_EQ(Redis(b, {"get", "kb"}).out, "vb");
}

}  // namespace
}  // namespace ferry::testing
