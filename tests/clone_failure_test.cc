// A clone that cannot be made leaves nothing behind: a damaged snapshot is refused before any
// QEMU starts, and a QEMU that dies mid-restore leaves no half-registered VM. Either way the
// user gets one clear line, and the parent VM runs on untouched.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

#include "harness/ferryd_fixture.h"
#include "harness/qemu_scratch.h"
#include "harness/test_files.h"
#include "testbed/processes.h"

namespace ferry::testing {
namespace {

using nlohmann::json;
using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// Flips every bit of the byte at `offset` (the files are mode 0400; the test runs as root).
void FlipByte(const std::string& path, off_t offset) {
  int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << path << ": " << std::strerror(errno);
  unsigned char b = 0;
  ASSERT_EQ(::pread(fd, &b, 1, offset), 1);
  b ^= 0xff;
  ASSERT_EQ(::pwrite(fd, &b, 1, offset), 1);
  ::close(fd);
}

// The offset of a non-zero byte in the second half of a sparse file (a data chunk, so its CRC
// and not a zero check covers it).
off_t NonZeroByteIn(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  EXPECT_GE(fd, 0) << path;
  struct stat st {};
  ::fstat(fd, &st);
  for (off_t from : {st.st_size / 2, off_t{0}}) {
    off_t pos = ::lseek(fd, from, SEEK_DATA);
    while (pos >= 0 && pos < st.st_size) {
      char buf[4096];
      ssize_t n = ::pread(fd, buf, sizeof buf, pos);
      if (n <= 0) break;
      for (ssize_t i = 0; i < n; ++i) {
        if (buf[i] != 0) {
          ::close(fd);
          return pos + i;
        }
      }
      pos = ::lseek(fd, pos + n, SEEK_DATA);
    }
  }
  ::close(fd);
  ADD_FAILURE() << path << " holds no data";
  return 0;
}

class CloneFailureTest : public FerrydFixture {
 protected:
  // Boots web-1 with a key in redis and snapshots it as "warm". Without spare QEMUs: these tests
  // are about the QEMU a failed clone started itself (spare_qemu_test covers spares).
  void BootAndSnapshot(std::vector<std::string> ferryd_args = {},
                       const std::string& fault_point = "") {
    ferryd_args.push_back("--no-spare-qemus");
    StartFerryd(ferryd_args, fault_point);
    port_ = CreateRedisVm("web-1");
    ASSERT_EQ(Redis(port_, {"set", "k", "parent-data"}).out, "OK");
    CommandResult snap = Ferry({"snapshot", "create", "web-1", "--name", "warm"});
    ASSERT_EQ(snap.exit_code, 0) << snap.err;
    json show = FerryJson({"snapshot", "show", "warm"});
    snapshot_dir_ = show["dir"];
    snapshot_ram_ = show["ram_path"];
    parent_pid_ = FerryJson({"vm", "show", "web-1"})["pid"];
  }

  // The refused clone left nothing: no VM, no QEMU, no directory, no RAM file; the parent runs.
  void ExpectNothingLeftAndParentRuns(const std::string& clone_name) {
    EXPECT_EQ(VmNames(), std::vector<std::string>{"web-1"});
    // (A spare QEMU may wait for the next plain clone: it is no clone's.)
    EXPECT_EQ(QemusUnderExceptSpares(state_dir_).size(), 1u)
        << "a QEMU other than the parent's is running";
    EXPECT_FALSE(std::filesystem::exists(state_dir_ + "/vms/" + clone_name));
    // (`snapshot list`, not `show`: show refuses a snapshot whose manifest is damaged.)
    for (const auto& snap : FerryJson({"snapshot", "list"})) {
      EXPECT_EQ(snap["clones"], json::array()) << snap.dump();
    }
    json parent = FerryJson({"vm", "show", "web-1"});
    EXPECT_EQ(parent["state"], "running");
    EXPECT_EQ(parent["pid"], parent_pid_);
    EXPECT_EQ(Redis(port_, {"get", "k"}).out, "parent-data");
  }

  // A clone that must work: it answers with the parent's data.
  void ExpectCloneWorks(const std::string& name) {
    CommandResult r = Ferry({"clone", "warm", "--name", name, "--forward", "0:6379"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    json vm = FerryJson({"vm", "show", name});
    EXPECT_EQ(vm["state"], "running");
    const uint16_t port = vm["spec"]["network"]["forwards"][0]["host_port"];
    EXPECT_EQ(Redis(port, {"get", "k"}).out, "parent-data");
  }

  uint16_t port_ = 0;
  pid_t parent_pid_ = 0;
  std::string snapshot_dir_;
  std::string snapshot_ram_;
};

// One way to damage a snapshot, and the file the refusal must name.
struct Damage {
  std::string name;
  std::function<std::string(const std::string& dir, const std::string& ram)> apply;
};
void PrintTo(const Damage& d, std::ostream* os) { *os << d.name; }

class DamagedSnapshotTest : public CloneFailureTest,
                            public ::testing::WithParamInterface<Damage> {};

TEST_P(DamagedSnapshotTest, IsRefusedInOneLineAndLeavesNothing) {
  ASSERT_NO_FATAL_FAILURE(BootAndSnapshot());
  // Clones made before the damage have verified the snapshot (ferryd remembers a RAM file that
  // verified once it has not changed for a while; the second clone comes well after the first): the
  // damage must be found all the same.
  ASSERT_NO_FATAL_FAILURE(ExpectCloneWorks("before-1"));
  ASSERT_NO_FATAL_FAILURE(ExpectCloneWorks("before-2"));
  ASSERT_EQ(Ferry({"vm", "delete", "before-1", "--force"}).exit_code, 0);
  ASSERT_EQ(Ferry({"vm", "delete", "before-2", "--force"}).exit_code, 0);

  // Keep the good bytes, to show afterwards that the damage was the reason.
  const std::string backup = state_dir_ + "/backup";
  std::filesystem::create_directory(backup);
  for (const std::string f : {"manifest.json", "device.state"}) {
    std::filesystem::copy_file(snapshot_dir_ + "/" + f, backup + "/" + f);
  }
  ASSERT_EQ(RunCommand({"cp", "--sparse=always", snapshot_ram_, backup + "/ram"}).exit_code, 0);

  const std::string damaged = GetParam().apply(snapshot_dir_, snapshot_ram_);
  if (HasFatalFailure()) return;
  std::vector<std::string> ram_files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(ram_dir_)) {
    ram_files.push_back(e.path());
  }

  CommandResult r = Ferry({"clone", "warm", "--forward", "0:6379"});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(ErrorText(r), StartsWith("ferry: "));
  // It names the file: the RAM image by its place in the snapshot directory or on tmpfs.
  if (damaged == snapshot_ram_) {
    EXPECT_THAT(r.err, AnyOf(HasSubstr(snapshot_dir_ + "/ram"), HasSubstr(snapshot_ram_)));
  } else {
    EXPECT_THAT(r.err, HasSubstr(damaged));
  }
  EXPECT_THAT(r.err, HasSubstr("damaged"));
  EXPECT_EQ(ErrorLines(r), 1) << "not one line: " << r.err;
  ExpectNothingLeftAndParentRuns("web-1-c1");
  std::vector<std::string> ram_files_after;
  for (const auto& e : std::filesystem::recursive_directory_iterator(ram_dir_)) {
    ram_files_after.push_back(e.path());
  }
  EXPECT_EQ(ram_files_after, ram_files);

  // Refused every time, not only the first.
  EXPECT_EQ(Ferry({"clone", "warm"}).exit_code, 1);

  // With the good bytes back, the same snapshot clones again.
  for (const std::string f : {"manifest.json", "device.state"}) {
    std::filesystem::copy_file(backup + "/" + f, snapshot_dir_ + "/" + f,
                               std::filesystem::copy_options::overwrite_existing);
  }
  ASSERT_EQ(RunCommand({"cp", "--sparse=always", backup + "/ram", snapshot_ram_}).exit_code, 0);
  ExpectCloneWorks("after");
}

INSTANTIATE_TEST_SUITE_P(
    Snapshot, DamagedSnapshotTest,
    ::testing::Values(
        Damage{"RamByteFlipped",
               [](const std::string&, const std::string& ram) {
                 FlipByte(ram, NonZeroByteIn(ram));
                 return ram;
               }},
        Damage{"RamZeroChunkWritten",
               [](const std::string& dir, const std::string& ram) {
                 // A chunk the manifest records as all zero (a hole) gets a byte of data.
                 json table = json::parse(ReadFile(dir + "/manifest.json"))["ram"];
                 const uint64_t chunk = table["chunk_bytes"];
                 const json& chunks = table["chunks"];
                 for (size_t i = chunks.size() / 2; i < chunks.size(); ++i) {
                   if (chunks[i] == "zero") {
                     int fd = ::open(ram.c_str(), O_WRONLY);
                     EXPECT_GE(fd, 0);
                     EXPECT_EQ(::pwrite(fd, "x", 1, static_cast<off_t>(i * chunk + chunk / 2)), 1);
                     ::close(fd);
                     return ram;
                   }
                 }
                 ADD_FAILURE() << "no zero chunk in the second half of the RAM image";
                 return ram;
               }},
        Damage{"RamTruncated",
               [](const std::string&, const std::string& ram) {
                 struct stat st {};
                 ::stat(ram.c_str(), &st);
                 EXPECT_EQ(::truncate(ram.c_str(), st.st_size / 2), 0);
                 return ram;
               }},
        Damage{"DeviceStateByteFlipped",
               [](const std::string& dir, const std::string&) {
                 const std::string f = dir + "/device.state";
                 FlipByte(f, static_cast<off_t>(std::filesystem::file_size(f) / 2));
                 return f;
               }},
        Damage{"DeviceStateTruncated",
               [](const std::string& dir, const std::string&) {
                 const std::string f = dir + "/device.state";
                 EXPECT_EQ(::truncate(f.c_str(), std::filesystem::file_size(f) - 1), 0);
                 return f;
               }},
        Damage{"ManifestValueEdited",
               [](const std::string& dir, const std::string&) {
                 const std::string f = dir + "/manifest.json";
                 json m = json::parse(ReadFile(f));
                 m["pause_ms"] = m.value("pause_ms", 0) + 1;
                 std::ofstream(f, std::ios::trunc) << m.dump(2) << "\n";
                 return f;
               }},
        Damage{"ManifestCutShort",
               [](const std::string& dir, const std::string&) {
                 const std::string f = dir + "/manifest.json";
                 EXPECT_EQ(::truncate(f.c_str(), std::filesystem::file_size(f) / 2), 0);
                 return f;
               }}),
    [](const ::testing::TestParamInfo<Damage>& info) { return info.param.name; });

TEST_F(CloneFailureTest, QemuDyingMidRestoreLeavesNoHalfRegisteredVm) {
  // The real QEMU, except that a restoring one (started with -incoming) is killed by SIGKILL the
  // moment it holds the snapshot's device state file open (ferryd hands it over with getfd), while
  // the flag file names that file. No timing is guessed: QEMU is mid-restore by then.
  // The wrapper runs as QEMU's unprivileged uid, which cannot reach the device state file in the
  // state directory: the flag names a hard link of it where that uid can.
  QemuScratch scratch;
  const std::string flag = scratch.File("kill-next-restore");
  const std::string wrapper = scratch.Script(
      "qemu-dies-restoring",
      "#!/bin/bash\n"
      "if printf '%s\\n' \"$@\" | grep -qx -- -incoming && [ -s '" + flag + "' ]; then\n"
      "  ds=$(< '" + flag + "')\n"
      "  (while kill -0 $$ 2>/dev/null; do\n"
      "     for f in /proc/$$/fd/*; do [[ $f -ef $ds ]] && { kill -9 $$; exit 0; }; done\n"
      "   done) &\n"
      // The watcher must see the file open however busy the host is: QEMU runs at the lowest
      // priority, so its restore never finishes in a moment the watcher did not get to run.
      "  exec nice -n 19 qemu-system-x86_64 \"$@\"\n"
      "fi\n"
      "exec qemu-system-x86_64 \"$@\"\n");
  // ferryd waits 100 ms at the point after it handed QEMU the file (":slow"), so the watcher,
  // however busy the host, sees it open before the restore can end (CI once missed it).
  ASSERT_NO_FATAL_FAILURE(
      BootAndSnapshot({"--qemu", wrapper}, "snapshot.restore.device_state_passed:slow"));

  const std::string device_state = scratch.dir() + "/device.state";
  std::filesystem::create_hard_link(snapshot_dir_ + "/device.state", device_state);
  std::ofstream(flag) << device_state;
  CommandResult r = Ferry({"clone", "warm", "--forward", "0:6379"});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(ErrorText(r), StartsWith("ferry: "));
  EXPECT_THAT(r.err, HasSubstr("web-1-c1"));
  // It says what happened, as ferry says it of any VM whose QEMU was killed, and gives no advice
  // that cannot help (the QEMU is gone for good).
  EXPECT_THAT(r.err, HasSubstr("QEMU"));
  EXPECT_THAT(r.err, HasSubstr("killed by signal 9"));
  EXPECT_THAT(r.err, Not(HasSubstr("reconnect")));
  EXPECT_EQ(ErrorLines(r), 1) << "not one line: " << r.err;
  ExpectNothingLeftAndParentRuns("web-1-c1");

  // The name is free again and the snapshot intact: the next clone works.
  std::filesystem::remove(flag);
  CommandResult again = Ferry({"clone", "warm", "--forward", "0:6379"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  json vm = FerryJson({"vm", "show", "web-1-c1"});
  EXPECT_EQ(vm["state"], "running");
  EXPECT_EQ(
      Redis(vm["spec"]["network"]["forwards"][0]["host_port"].get<uint16_t>(), {"get", "k"}).out,
      "parent-data");
}

TEST_F(CloneFailureTest, ASnapshotOfAnotherQemuReleaseIsRefusedBeforeAnyQemuStarts) {
  // The snapshot is taken with the real QEMU; then ferryd restarts with a QEMU that says it is
  // 6.2 (a wrapper: `--version` lies, everything else runs the real one and is written down).
  // Its q35 is pc-q35-6.2, which loads no stream of the real QEMU's machine type.
  ASSERT_NO_FATAL_FAILURE(BootAndSnapshot());
  QemuScratch scratch;
  const std::string log = scratch.File("qemu.log");
  const std::string wrapper = scratch.Script(
      "qemu-6.2",
      "#!/bin/sh\n"
      "if [ \"$1\" = --version ]; then echo 'QEMU emulator version 6.2.0'; exit 0; fi\n"
      "echo \"$*\" >> " +
          log + "\nexec qemu-system-x86_64 \"$@\"\n");
  StopFerryd();
  StartFerryd({"--no-spare-qemus", "--qemu", wrapper});
  CommandResult r = Ferry({"clone", "warm", "--forward", "0:6379"});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.err, HasSubstr("snapshot warm cannot be restored here"));
  EXPECT_THAT(r.err, HasSubstr("QEMU 6.2.0 runs pc-q35-6.2"));
  EXPECT_THAT(r.err, HasSubstr("--qemu"));
  EXPECT_EQ(ErrorLines(r), 1) << "not one line: " << r.err;
  EXPECT_THAT(ReadFile(log), Not(HasSubstr("-incoming"))) << "a QEMU was started for the clone";
  ExpectNothingLeftAndParentRuns("web-1-c1");

  // The snapshot is untouched: ferryd with the QEMU that took it clones it.
  StopFerryd();
  StartFerryd({"--no-spare-qemus"});
  ExpectCloneWorks("web-1-c1");
}

TEST_F(CloneFailureTest, FerrydDyingBeforeTheIdentityResetDropsTheCloneOnRestart) {
  // The worst moment: the clone's guest runs, still with its parent's identity, and ferryd dies
  // (at a fault point, src/core/fault_point.h). On restart it must not adopt that clone.
  ASSERT_NO_FATAL_FAILURE(BootAndSnapshot());
  StopFerryd();
  StartFerryd({"--no-spare-qemus"}, "snapshot.clone.before_identity");
  CommandResult r = Ferry({"clone", "warm", "--forward", "0:6379"});
  EXPECT_EQ(r.exit_code, 1) << "the CLI lost its ferryd: " << r.out;
  ASSERT_NO_FATAL_FAILURE(ReapFerrydKilledAtItsFaultPoint());

  StartFerryd({"--no-spare-qemus"});
  ExpectNothingLeftAndParentRuns("web-1-c1");
  ExpectCloneWorks("web-1-c1");
}

}  // namespace
}  // namespace ferry::testing
