// Holds on one host, as a user meets them: a held VM runs nowhere and comes back as the same
// machine with its data; the owner's policy decides whether and how long; a damaged hold is
// refused and kept; a ferryd killed at any step leaves exactly one copy. Real ferryd, real QEMU,
// real redis, a fleet certificate made by the real CLI (a hold is signed with the host's key).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "harness/ferryd_fixture.h"
#include "harness/fleet.h"
#include "harness/guest_identity.h"
#include "harness/qemu_processes.h"
#include "harness/test_files.h"

namespace ferry::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

constexpr int kKeys = 200;

class HoldTest : public FerrydFixture {
 protected:
  void SetUp() override {
    FerrydFixture::SetUp();
    fleet_.AddHost("h1");
    fleet_.AddOwner("alice.key");
    StartHere();
  }
  void StartHere(const std::string& fault_point = "") {
    StartFerryd({"--tls-dir", fleet_.TlsDir("h1")}, fault_point);
  }

  // VM web with alice's policy (`rules`), redis filled with kKeys keys; returns its port.
  uint16_t CreateWeb(const std::vector<std::string>& rules = {}) {
    const uint16_t port = FreePort();
    CommandResult r =
        Ferry({"vm", "create", "web", "--policy", fleet_.SignPolicy("alice.key", "web", rules),
               "--forward", std::to_string(port) + ":6379", "--wait-ready"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::string> mset = {"mset"};
    for (int i = 0; i < kKeys; ++i) {
      mset.push_back("key:" + std::to_string(i));
      mset.push_back(Value(i));
    }
    EXPECT_EQ(Redis(port, mset).out, "OK");
    return port;
  }
  static std::string Value(int i) { return "value-" + std::to_string(i * 7919) + "-held"; }
  // Every key redis on `port` serves, compared with what CreateWeb wrote.
  void ExpectEveryKey(uint16_t port) {
    std::vector<std::string> mget = {"mget"};
    std::string want;
    for (int i = 0; i < kKeys; ++i) {
      mget.push_back("key:" + std::to_string(i));
      want += (i ? "\n" : "") + Value(i);
    }
    EXPECT_EQ(Redis(port, mget).out, want);
  }
  json Holds() { return FerryJson({"hold", "list"}); }
  // The store's pack files (STATE/store/packs/<seq>.pack), where its chunks are.
  std::vector<std::string> ChunkFiles() {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : std::filesystem::recursive_directory_iterator(
             state_dir_ + "/store/packs", ec)) {
      if (e.is_regular_file()) out.push_back(e.path());
    }
    return out;
  }

  Fleet fleet_;
};

TEST_F(HoldTest, AHeldVmRunsNowhereAndComesBackAsTheSameMachineWithItsData) {
  const uint16_t port = CreateWeb();
  const GuestIdentity before = ReadGuestIdentity(socket_, "web");

  CommandResult held = Ferry({"hold", "web"});
  ASSERT_EQ(held.exit_code, 0) << held.err;
  EXPECT_THAT(held.out, HasSubstr("vm web held"));
  // The hold is the only copy: no VM, no QEMU, no RAM file, nothing answering on its port.
  EXPECT_TRUE(VmNames().empty());
  EXPECT_TRUE(QemusHoldingFilesUnder(ram_dir_).empty());
  EXPECT_TRUE(QemusHoldingFilesUnder(state_dir_).empty());
  EXPECT_NE(Redis(port, {"ping"}).out, "PONG");
  json holds = Holds();
  ASSERT_EQ(holds.size(), 1u) << holds.dump();
  EXPECT_EQ(holds[0].value("vm", ""), "web");
  EXPECT_EQ(holds[0].value("step", ""), "durable");
  EXPECT_EQ(holds[0].value("held_on", ""), "h1");
  EXPECT_GE(holds[0].value("size_bytes", uint64_t{0}), uint64_t{256} << 20);
  // Sealed: no chunk file holds the guest's data in the clear.
  const std::string marker = Value(17);
  for (const auto& f : ChunkFiles()) {
    ASSERT_EQ(ReadFile(f).find(marker), std::string::npos) << f << " holds guest data in clear";
  }

  CommandResult restored = Ferry({"hold", "restore", "web", "--wait-ready"});
  ASSERT_EQ(restored.exit_code, 0) << restored.err;
  ExpectEveryKey(port);
  const GuestIdentity after = ReadGuestIdentity(socket_, "web");
  EXPECT_EQ(after.hostname, before.hostname);
  EXPECT_EQ(after.machine_id, before.machine_id);
  EXPECT_EQ(after.macs, before.macs);
  EXPECT_EQ(after.ssh_fingerprints, before.ssh_fingerprints);
  json vm = FerryJson({"vm", "show", "web"});
  EXPECT_EQ(vm["origin"].value("hold", ""), holds[0].value("hold_id", "")) << vm["origin"];
  // Consumed: one copy again.
  EXPECT_TRUE(Holds().empty());
  EXPECT_EQ(Ferry({"hold", "restore", "web"}).exit_code, 1);
}

TEST_F(HoldTest, TheOwnersPolicyDecidesWhetherAndHowLong) {
  const uint16_t port = CreateWeb({"--no-hold"});
  CommandResult refused = Ferry({"hold", "web"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.err, HasSubstr("may not be held"));
  EXPECT_EQ(std::count(refused.err.begin(), refused.err.end(), '\n'), 1) << refused.err;
  ExpectEveryKey(port);  // the VM runs on, resumed
  EXPECT_EQ(FerryJson({"vm", "show", "web"}).value("state", ""), "running");
  EXPECT_TRUE(Holds().empty());
  ASSERT_EQ(Ferry({"vm", "delete", "web", "--force"}).exit_code, 0);

  // A limit of 2 s: past it, the hold cannot be restored and its key is gone.
  CreateWeb({"--hold-max", "2"});
  ASSERT_EQ(Ferry({"hold", "web"}).exit_code, 0);
  json shown = FerryJson({"hold", "show", "web"});
  EXPECT_GT(shown.value("expires_at", int64_t{0}), 0) << shown;
  std::this_thread::sleep_for(std::chrono::seconds(3));
  // Refused whether the reaper shredded it first or the restore finds it expired.
  CommandResult late = Ferry({"hold", "restore", "web"});
  EXPECT_EQ(late.exit_code, 1);
  EXPECT_THAT(late.err, HasSubstr("expired"));
  EXPECT_THAT(late.err, HasSubstr("shredded"));
  EXPECT_TRUE(VmNames().empty());
  json holds = Holds();
  ASSERT_EQ(holds.size(), 1u) << holds.dump();
  EXPECT_EQ(holds[0].value("step", ""), "expired");
  EXPECT_TRUE(holds[0].value("shredded", false));
  // Its key is gone: nothing is left for any restore.
  EXPECT_THAT(Ferry({"hold", "restore", "web"}).err, HasSubstr("expired"));
  ASSERT_EQ(Ferry({"hold", "delete", "web"}).exit_code, 0);
  EXPECT_TRUE(Holds().empty());
}

TEST_F(HoldTest, ADamagedHoldIsRefusedNamingWhatIsWrongAndKept) {
  CreateWeb();
  ASSERT_EQ(Ferry({"hold", "web"}).exit_code, 0);
  std::vector<std::string> chunks = ChunkFiles();
  ASSERT_FALSE(chunks.empty());
  // One byte flipped in the middle of the largest pack, as a failing disk would (in place: the
  // store keeps its packs open).
  std::string victim = chunks[0];
  for (const auto& c : chunks) {
    if (std::filesystem::file_size(c) > std::filesystem::file_size(victim)) victim = c;
  }
  std::string bytes = ReadFile(victim);
  bytes[bytes.size() / 2] ^= 0x40;
  std::filesystem::permissions(victim, std::filesystem::perms::owner_write,
                               std::filesystem::perm_options::add);
  std::ofstream(victim, std::ios::binary | std::ios::trunc) << bytes;

  CommandResult r = Ferry({"hold", "restore", "web", "--wait-ready"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("damaged"));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_TRUE(VmNames().empty()) << "nothing may start from a damaged hold";
  EXPECT_TRUE(QemusHoldingFilesUnder(state_dir_).empty());
  json holds = Holds();
  ASSERT_EQ(holds.size(), 1u);
  EXPECT_EQ(holds[0].value("step", ""), "durable");
  CommandResult verify = Ferry({"store", "verify"});
  EXPECT_EQ(verify.exit_code, 1);
  EXPECT_THAT(verify.out, HasSubstr("problem"));
}

TEST_F(HoldTest, AVmWithADataDiskIsHeldWithItsDiskAndTheImagesBelowIt) {
  const uint16_t port = FreePort();
  ASSERT_EQ(Ferry({"vm", "create", "db", "--disk", "64M", "--forward",
                   std::to_string(port) + ":6379", "--wait-ready"})
                .exit_code,
            0);
  ASSERT_EQ(Redis(port, {"set", "before-snapshot", "1"}).out, "OK");
  // A snapshot freezes the disk: db writes an overlay on a frozen image from then on.
  ASSERT_EQ(Ferry({"snapshot", "create", "db", "--name", "s"}).exit_code, 0);
  ASSERT_EQ(Redis(port, {"set", "after-snapshot", "2"}).out, "OK");
  CommandResult held = Ferry({"hold", "db"});
  ASSERT_EQ(held.exit_code, 0) << held.err;
  // With the snapshot gone, nothing keeps the frozen image: the hold must bring it back.
  ASSERT_EQ(Ferry({"snapshot", "delete", "s"}).exit_code, 0);
  CommandResult restored = Ferry({"hold", "restore", "db", "--wait-ready"});
  ASSERT_EQ(restored.exit_code, 0) << restored.err;
  EXPECT_EQ(Redis(port, {"mget", "before-snapshot", "after-snapshot"}).out, "1\n2");
  // A graceful stop and a cold boot: redis reads its data back from the disk that came back.
  ASSERT_EQ(Ferry({"vm", "stop", "db"}).exit_code, 0);
  ASSERT_EQ(Ferry({"vm", "start", "db", "--wait-ready"}).exit_code, 0);
  EXPECT_EQ(Redis(port, {"mget", "before-snapshot", "after-snapshot"}).out, "1\n2");
}

// The store on a filesystem too small for the VM's state: the hold fails, nothing is lost.
class FullStoreTest : public HoldTest {
 protected:
  void SetUp() override {
    FerrydFixture::SetUp();
    fleet_.AddHost("h1");
    fleet_.AddOwner("alice.key");
    store_ = state_dir_ + "-store";
    ASSERT_EQ(::mkdir(store_.c_str(), 0700), 0);
    ASSERT_EQ(::mount("tmpfs", store_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=0700"),
              0)
        << "cannot mount a small tmpfs (needs root)";
    mounted_ = true;
    StartFerryd({"--tls-dir", fleet_.TlsDir("h1"), "--store-dir", store_});
  }
  void TearDown() override {
    HoldTest::TearDown();
    if (mounted_) ::umount2(store_.c_str(), MNT_DETACH);
    ::rmdir(store_.c_str());
  }
  std::string store_;
  bool mounted_ = false;
};

TEST_F(FullStoreTest, AHoldThatDoesNotFitFailsAndTheVmRunsOnWithItsData) {
  const uint16_t port = CreateWeb();
  CommandResult r = Ferry({"hold", "web"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("hold of vm web"));
  EXPECT_THAT(r.err, HasSubstr("runs on"));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(FerryJson({"vm", "show", "web"}).value("state", ""), "running");
  ExpectEveryKey(port);
  EXPECT_TRUE(Holds().empty());
  EXPECT_EQ(Redis(port, {"set", "after", "yes"}).out, "OK");
}

// ferryd killed at each step of hold and restore: after a restart, exactly one copy.
class HoldCrashTest : public HoldTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(HoldCrashTest, FerrydKilledAtAStepLeavesExactlyOneCopy) {
  const std::string point = GetParam();
  const bool in_restore = point.find("restore") != std::string::npos;
  const uint16_t port = CreateWeb();
  if (in_restore) {
    ASSERT_EQ(Ferry({"hold", "web"}).exit_code, 0);
    StopFerryd();
    StartHere(point);
    Ferry({"hold", "restore", "web", "--wait-ready"});
  } else {
    StopFerryd();
    StartHere(point);
    Ferry({"hold", "web"});
  }
  ASSERT_NO_FATAL_FAILURE(ReapFerrydKilledAtItsFaultPoint());
  StartHere();
  const std::vector<std::string> vms = VmNames();
  const json holds = Holds();
  EXPECT_EQ(vms.size() + holds.size(), 1u) << "vms " << vms.size() << ", holds " << holds.dump();
  if (vms.size() == 1) {
    EXPECT_EQ(FerryJson({"vm", "show", "web"}).value("state", ""), "running");
    ExpectEveryKey(port);
  } else if (holds.size() == 1) {
    EXPECT_EQ(holds[0].value("step", ""), "durable");
    EXPECT_TRUE(QemusHoldingFilesUnder(state_dir_).empty());
    ASSERT_EQ(Ferry({"hold", "restore", "web", "--wait-ready"}).exit_code, 0);
    ExpectEveryKey(port);
  }
}

INSTANTIATE_TEST_SUITE_P(Steps, HoldCrashTest,
                         ::testing::Values("hold.before_seal", "hold.after_seal",
                                           "hold.before_vm_removed",
                                           "hold.restore.before_consume"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (c == '.') c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace ferry::testing
