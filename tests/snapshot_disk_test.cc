// VMs with a data disk, as a user checks them: redis's append-only file on the disk outlives a
// stop and start; a snapshot freezes the disk (the VM goes on in a new overlay), every clone
// writes an overlay of its own, and nobody writes the frozen image. Real ferryd, QEMU, redis.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "harness/ferryd_fixture.h"
#include "harness/test_files.h"

namespace ferry::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

// The image a qcow2 file lies on, as qemu-img reads it from the file's own header.
std::string BackingOf(const std::string& path) {
  std::string out;
  FILE* p = popen(("qemu-img info -U --output=json " + path).c_str(), "r");
  char buf[4096];
  size_t n;
  while (p && (n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  if (p) pclose(p);
  json info = json::parse(out, nullptr, false);
  return info.is_object() ? info.value("backing-filename", "") : "";
}

class SnapshotDiskTest : public FerrydFixture {
 protected:
  uint16_t CreateDiskVm(const std::string& name) {
    uint16_t port = FreePort();
    CommandResult r = Ferry({"vm", "create", name, "--disk", "64M", "--forward",
                             std::to_string(port) + ":6379", "--wait-ready"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return port;
  }
  uint16_t PortOf(const std::string& vm) {
    json j = FerryJson({"vm", "show", vm});
    return j["spec"]["network"]["forwards"][0].value("host_port", 0);
  }
  // Graceful stop (redis writes its file out, the guest syncs) and a cold boot from the disk.
  void Restart(const std::string& vm) {
    CommandResult stop = Ferry({"vm", "stop", vm});
    ASSERT_EQ(stop.exit_code, 0) << stop.err;
    CommandResult start = Ferry({"vm", "start", vm, "--wait-ready"});
    ASSERT_EQ(start.exit_code, 0) << start.err;
  }
  std::string Get(uint16_t port, const std::string& key) { return Redis(port, {"get", key}).out; }
  // The data-disk files on the state disk: frozen images and the images in `vm`'s directory.
  std::vector<std::string> DiskFiles(const std::string& vm) {
    std::vector<std::string> files;
    for (const std::string dir : {state_dir_ + "/disks", state_dir_ + "/vms/" + vm}) {
      std::error_code ec;
      for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
        const std::string name = e.path().filename();
        if (name.find(".qcow2") != std::string::npos) files.push_back(e.path());
      }
    }
    std::sort(files.begin(), files.end());
    return files;
  }
  // Boots VM db with a disk and key "kept" on it, and snapshots it with ferryd armed to die at
  // `fault_point`; `port` and `disk` are db's forwarded port and its disk before the snapshot.
  void SnapshotDbKilledAt(const std::string& fault_point, uint16_t* port, std::string* disk) {
    StartFerryd({}, fault_point);
    *port = CreateDiskVm("db");
    ASSERT_EQ(Redis(*port, {"set", "kept", "on-disk"}).out, "OK");
    *disk = FerryJson({"vm", "show", "db"})["paths"]["disk"];
    EXPECT_NE(Ferry({"snapshot", "create", "db", "--name", "s1"}).exit_code, 0);
    ASSERT_NO_FATAL_FAILURE(ReapFerrydKilledAtItsFaultPoint());
  }
  bool LogSays(const std::string& text) {
    return ReadFile(state_dir_ + "/ferryd.log").find(text) != std::string::npos;
  }
};

TEST_F(SnapshotDiskTest, DataOnTheDiskOutlivesAStopAndStart) {
  StartFerryd();
  const uint16_t port = CreateDiskVm("db");
  ASSERT_EQ(Redis(port, {"set", "kept", "on-disk"}).out, "OK");
  json vm = FerryJson({"vm", "show", "db"});
  EXPECT_EQ(vm["spec"]["disk"], "64M");
  const std::string disk = vm["paths"]["disk"];
  EXPECT_EQ(BackingOf(disk), "") << "a new VM's disk is a blank image of its own";

  Restart("db");
  EXPECT_EQ(Get(port, "kept"), "on-disk");

  // Without a disk the same restart loses the data: the test above is not passing by accident.
  const uint16_t plain = CreateRedisVm("plain");
  ASSERT_EQ(Redis(plain, {"set", "kept", "in-ram"}).out, "OK");
  Restart("plain");
  EXPECT_EQ(Get(plain, "kept"), "");
}

TEST_F(SnapshotDiskTest, SnapshotFreezesTheDiskAndEachCloneWritesItsOwnOverlay) {
  StartFerryd();
  const uint16_t parent = CreateDiskVm("web-1");
  ASSERT_EQ(Redis(parent, {"set", "before", "snapshot"}).out, "OK");
  const std::string first_disk = FerryJson({"vm", "show", "web-1"})["paths"]["disk"];
  FerryJson({"snapshot", "create", "web-1", "--name", "warm"});

  json snap = FerryJson({"snapshot", "show", "warm"});
  ASSERT_TRUE(snap.contains("disk")) << snap.dump();
  // Taken live: RAM copied while the guest ran, the disk frozen at the instant QEMU stopped it
  // (the device state then holds no RAM pages: "stripped"; a paused copy "skipped" them).
  const json manifest = json::parse(ReadFile(snap["dir"].get<std::string>() + "/manifest.json"));
  EXPECT_EQ(manifest["device_state"]["guest_ram"], "stripped");
  char target[4096];
  const std::string link = snap["dir"].get<std::string>() + "/disk.qcow2";
  ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
  ASSERT_GT(n, 0) << link;
  const std::string frozen(target, static_cast<size_t>(n));
  struct stat st;
  ASSERT_EQ(::stat(frozen.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0400u);
  const std::string frozen_bytes = ReadFile(frozen);

  // The parent goes on in a new overlay on the frozen image.
  json parent_vm = FerryJson({"vm", "show", "web-1"});
  const std::string parent_top = parent_vm["paths"]["disk"];
  EXPECT_NE(parent_top, first_disk);
  EXPECT_EQ(parent_vm["paths"]["disk_chain"], json::array({frozen}));
  EXPECT_EQ(BackingOf(parent_top), frozen);
  ASSERT_EQ(Redis(parent, {"set", "after", "snapshot"}).out, "OK");

  for (const char* clone : {"web-2", "web-3"}) {
    CommandResult r = Ferry({"clone", "warm", "--name", clone, "--forward", "0:6379"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    json c = FerryJson({"vm", "show", clone});
    EXPECT_EQ(BackingOf(c["paths"]["disk"]), frozen) << clone;
    EXPECT_NE(c["paths"]["disk"], parent_top);
  }
  const uint16_t c2 = PortOf("web-2"), c3 = PortOf("web-3");
  ASSERT_EQ(Redis(c2, {"set", "mine", "web-2"}).out, "OK");
  ASSERT_EQ(Redis(c3, {"set", "mine", "web-3"}).out, "OK");

  // A cold boot of each reads back only what its own disk holds.
  Restart("web-2");
  Restart("web-3");
  Restart("web-1");
  EXPECT_EQ(Get(c2, "before"), "snapshot");
  EXPECT_EQ(Get(c2, "mine"), "web-2");
  EXPECT_EQ(Get(c2, "after"), "");
  EXPECT_EQ(Get(c3, "mine"), "web-3");
  EXPECT_EQ(Get(parent, "before"), "snapshot");
  EXPECT_EQ(Get(parent, "after"), "snapshot");
  EXPECT_EQ(Get(parent, "mine"), "");
  EXPECT_EQ(ReadFile(frozen), frozen_bytes) << "nobody may write the frozen image";

  // The parent's and the clones' disks lie on it: deleting the snapshot is refused, naming them.
  CommandResult del = Ferry({"snapshot", "delete", "warm"});
  EXPECT_NE(del.exit_code, 0);
  EXPECT_THAT(del.err, HasSubstr("web-1"));
  EXPECT_EQ(::stat(frozen.c_str(), &st), 0);
}

TEST_F(SnapshotDiskTest, FerrydKilledBeforeTheDiskSwitchLeavesFilesTheRestartRemoves) {
  // ferryd dies in the snapshot after it linked the frozen image and made the new overlay, before
  // QEMU switched to it: both are leftovers, and the VM's disk is the one it had.
  uint16_t port = 0;
  std::string disk;
  ASSERT_NO_FATAL_FAILURE(SnapshotDbKilledAt("snapshot.disk.before_switch", &port, &disk));
  const std::vector<std::string> left = DiskFiles("db");
  ASSERT_EQ(left.size(), 3u) << "not the frozen link, the launch disk and the new overlay: "
                             << ::testing::PrintToString(left);
  const std::string frozen = left[0], overlay = left[1];  // "disk-ID" sorts before "disk."
  ASSERT_EQ(left[2], disk);
  ASSERT_EQ(frozen.rfind(state_dir_ + "/disks/", 0), 0u) << frozen;
  ASSERT_EQ(overlay.rfind(state_dir_ + "/vms/db/disk-", 0), 0u) << overlay;

  StartFerryd();
  EXPECT_EQ(DiskFiles("db"), std::vector<std::string>{disk});
  EXPECT_TRUE(LogSays("start-up sweep: removed " + overlay + ": vm db writes " + disk));
  EXPECT_TRUE(LogSays("start-up sweep: removed " + frozen + ": frozen disk image"));
  json vm = FerryJson({"vm", "show", "db"});
  EXPECT_EQ(vm["paths"]["disk"], disk);
  EXPECT_EQ(vm["paths"]["disk_chain"], json::array());
  // The live copy had stopped the guest at its instant; the restarted ferryd cancelled that copy
  // and the guest runs on (vm_adoption.cc) with its data, and snapshots work again.
  EXPECT_EQ(vm["state"], "running");
  EXPECT_EQ(Get(port, "kept"), "on-disk");
  CommandResult again = Ferry({"snapshot", "create", "db", "--name", "s2"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  Restart("db");
  EXPECT_EQ(Get(port, "kept"), "on-disk");
}

TEST_F(SnapshotDiskTest, FerrydKilledAfterTheDiskSwitchKeepsTheDiskAndFinishesItsRecord) {
  // ferryd dies after QEMU switched to the new overlay (and the old top's name was unlinked),
  // before the VM's record said so: the overlay and the frozen image under it are the VM's disk.
  uint16_t port = 0;
  std::string launch_disk;
  ASSERT_NO_FATAL_FAILURE(SnapshotDbKilledAt("snapshot.disk.before_record", &port, &launch_disk));
  const std::vector<std::string> left = DiskFiles("db");
  ASSERT_EQ(left.size(), 2u) << ::testing::PrintToString(left);
  const std::string frozen = left[0], overlay = left[1];
  ASSERT_EQ(overlay.rfind(state_dir_ + "/vms/db/disk-", 0), 0u) << overlay;

  StartFerryd();
  EXPECT_EQ(DiskFiles("db"), left) << "the files the VM's disk is made of must stay";
  json vm = FerryJson({"vm", "show", "db"});
  EXPECT_EQ(vm["paths"]["disk"], overlay);
  EXPECT_EQ(vm["paths"]["disk_chain"], json::array({frozen}));
  EXPECT_TRUE(
      LogSays("start-up sweep: vm db: its disk is now " + overlay + " on frozen image " + frozen));
  struct stat st;
  ASSERT_EQ(::stat(frozen.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0400u);
  // The guest runs on (as above); what it writes now lands in the overlay, and a cold boot reads
  // both back.
  EXPECT_EQ(vm["state"], "running");
  ASSERT_EQ(Redis(port, {"set", "after", "the-crash"}).out, "OK");
  Restart("db");
  EXPECT_EQ(Get(port, "kept"), "on-disk");
  EXPECT_EQ(Get(port, "after"), "the-crash");
  EXPECT_EQ(FerryJson({"vm", "show", "db"})["paths"]["disk"], overlay);
  EXPECT_FALSE(std::filesystem::exists(launch_disk));

  // A ferryd given its state directory another way than the records name it ("DIR/.") still
  // finds the frozen image under the VM's disk in use.
  StopFerryd();
  const std::string state_dir = state_dir_;
  state_dir_ = state_dir + "/.";
  StartFerryd();
  state_dir_ = state_dir;
  EXPECT_EQ(DiskFiles("db"), left);
  EXPECT_EQ(Get(port, "after"), "the-crash");
}

TEST_F(SnapshotDiskTest, ADamagedFrozenDiskIsRefusedBeforeAnyQemuStarts) {
  StartFerryd();
  CreateDiskVm("web-1");
  FerryJson({"snapshot", "create", "web-1", "--name", "warm"});
  json snap = FerryJson({"snapshot", "show", "warm"});
  const std::string link = snap["dir"].get<std::string>() + "/disk.qcow2";
  std::string bytes = ReadFile(link);
  ASSERT_GT(bytes.size(), 70000u);
  bytes[65536 + 100] ^= 0x01;
  ASSERT_EQ(::chmod(link.c_str(), 0600), 0);
  std::ofstream(link, std::ios::binary | std::ios::trunc) << bytes;

  CommandResult r = Ferry({"clone", "warm", "--name", "web-2"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("snapshot disk image"));
  EXPECT_THAT(r.err, HasSubstr("checksum mismatch"));
  EXPECT_EQ(Ferry({"vm", "show", "web-2"}).exit_code, 1) << "nothing may be registered";
}

}  // namespace
}  // namespace ferry::testing
