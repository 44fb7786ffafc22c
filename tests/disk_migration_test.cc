// A VM with a data disk migrates live between two hosts, its disk with it: redis keeps its
// append-only file on the disk and takes writes on one TCP connection while it moves; on the
// destination every acknowledged write is in memory and, after a stop and a start there, in the
// file redis reloads. Whatever fails before the destination confirms, the VM runs on exactly one
// host -- the source -- with its disk and every acknowledged write.
//
// Hosts are network namespaces on one L2 segment (harness/migration_fleet.h). Needs root.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <sstream>
#include <thread>

#include "harness/background.h"
#include "harness/command.h"
#include "harness/migration_fleet.h"
#include "harness/netns_hosts.h"

namespace ferry::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

class DiskMigrationTest : public MigrationFleetFixture {
 protected:
  void CreateDb() {
    CommandResult r =
        Ferryd(1).Ferry({"vm", "create", "db", "--disk", "256M", "--net", "tap", "--bridge",
                         "ferrybr0", "--ip", std::string(kVmAddress) + "/24", "--wait-ready"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  CommandResult Redis(const std::vector<std::string>& args) {
    return RedisFromClient(kVmAddress, args);
  }
  // redis-cli repeating INCR on one connection, printing every acknowledged value.
  std::unique_ptr<Background> StartWriter(const std::string& counter) {
    auto writer = std::make_unique<Background>(
        NetnsHosts::InNamespace(net_.Client(), {"redis-cli", "-h", kVmAddress, "-r", "-1", "-i",
                                                "0.01", "incr", counter}),
        fleet_->Path(counter + ".out"), SIGINT);
    WaitForLines(*writer, 20);
    return writer;
  }
  static void WaitForLines(const Background& writer, size_t lines) {
    const auto until = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < until && writer.Lines() < lines) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  // The last value the writer printed, after checking that every line is the next integer: no
  // error, no reconnect, no lost write.
  static long LastAcknowledged(const Background& writer) {
    std::istringstream lines(writer.Output());
    std::string line;
    long expected = 1, last = 0;
    while (std::getline(lines, line)) {
      if (line.empty()) continue;
      EXPECT_EQ(line, std::to_string(expected)) << "the write stream broke at line " << expected;
      if (line != std::to_string(expected)) break;
      last = expected++;
    }
    return last;
  }
  // Waits until h1's migration of db reports a phase starting with `phase`.
  bool WaitForPhase(const std::string& phase, std::chrono::seconds deadline) {
    const auto until = Clock::now() + deadline;
    while (Clock::now() < until) {
      for (const json& m : Ferryd(1).FerryJson({"migration", "list"})) {
        if (m.value("state", "") == "running" && m.value("phase", "").rfind(phase, 0) == 0) {
          return true;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  // The migration failed; db runs on h1 only, answers with `counter` at least `at_least` and
  // takes writes; h2 is clean, no QEMU, no VM.
  void ExpectOnSourceOnly(const CommandResult& migrate, const std::string& counter, long at_least) {
    EXPECT_NE(migrate.exit_code, 0) << migrate.out;
    EXPECT_EQ(Vms(1), std::vector<std::string>{"db"});
    EXPECT_EQ(Ferryd(1).FerryJson({"vm", "show", "db"})["state"], "running");
    CommandResult value = Redis({"get", counter});
    EXPECT_GE(std::atol(value.out.c_str()), at_least) << value.out << value.err;
    EXPECT_EQ(Redis({"set", "after", "yes"}).out, "OK");
    ExpectNothingOn(2);
  }
};

TEST_F(DiskMigrationTest, RedisMovesWithItsAppendOnlyFileAndKeepsEveryAcknowledgedWrite) {
  CreateDb();
  // Data on the disk before the move: 2000 keys of 512 bytes in the append-only file.
  ASSERT_EQ(Redis({"eval",
                   "for i=1,2000 do redis.call('set','pre:'..i,string.rep('x',512)) end "
                   "return 'OK'",
                   "0"})
                .out,
            "OK");
  // A live snapshot freezes the disk under a new overlay: the disk that moves is a chain, and
  // lands on h2 as one image.
  CommandResult snapshot = Ferryd(1).Ferry({"snapshot", "create", "db", "--name", "s1"});
  ASSERT_EQ(snapshot.exit_code, 0) << snapshot.err;
  ASSERT_EQ(Redis({"set", "after-snapshot", "yes"}).out, "OK");
  auto writer = StartWriter("counter");
  CommandResult moved = Ferryd(1).Ferry({"migrate", "db", "--to", "h2", "--json"});
  ASSERT_EQ(moved.exit_code, 0) << moved.err;
  json result = json::parse(moved.out, nullptr, false);
  EXPECT_GT(result.value("disk_bytes_copied", uint64_t{0}), uint64_t{1} << 20) << moved.out;
  const size_t lines_at_move = writer->Lines();
  WaitForLines(*writer, lines_at_move + 20);
  writer->Stop();
  const long last = LastAcknowledged(*writer);
  ASSERT_GT(last, static_cast<long>(lines_at_move));

  EXPECT_TRUE(Vms(1).empty()) << "the source copy is gone once h2 confirmed";
  ASSERT_EQ(Vms(2), std::vector<std::string>{"db"});
  // The copy's TLS key (nbd_tls.h) lived only while the copy did.
  for (int host : {1, 2}) {
    const std::string keys = Ferryd(host).state_dir() + "/vms/db/nbd-tls";
    EXPECT_FALSE(std::filesystem::exists(keys)) << keys << " outlived the migration";
  }
  const long in_memory = std::stol(Redis({"get", "counter"}).out);
  EXPECT_GE(in_memory, last) << "an acknowledged write was lost";
  // The disk arrived consistent: redis on h2, started afresh, reloads every write from it.
  CommandResult stop = Ferryd(2).Ferry({"vm", "stop", "db"});
  ASSERT_EQ(stop.exit_code, 0) << stop.err;
  CommandResult start = Ferryd(2).Ferry({"vm", "start", "db", "--wait-ready"});
  ASSERT_EQ(start.exit_code, 0) << start.err;
  EXPECT_EQ(std::stol(Redis({"get", "counter"}).out), in_memory);
  EXPECT_EQ(Redis({"dbsize"}).out, "2002");
  EXPECT_EQ(Redis({"get", "after-snapshot"}).out, "yes");
  EXPECT_EQ(Ferryd(2).FerryJson({"vm", "show", "db"})["origin"]["migrated_from"], "h1");
}

TEST_F(DiskMigrationTest, DestinationDiesBeforeResumingAndTheSourceGoesOnWritingItsOwnDisk) {
  Ferryd(2).Stop();
  StartHost(2, "migrate.destination.before_resume");
  std::atomic<bool> restarted{false};
  std::thread restarter = RestartWhenDead(2, restarted);
  CreateDb();
  ASSERT_EQ(Redis({"set", "k", "before"}).out, "OK");
  // h2 had the disk and the whole guest, and died after "finish", before resuming: h1 asks the
  // restarted h2, which dropped the copy it never ran, disk and all, and resumes its own.
  CommandResult r = Ferryd(1).Ferry({"migrate", "db", "--to", "h2"});
  restarter.join();
  ASSERT_TRUE(restarted) << "h2 did not reach its fault point";
  const auto until = Clock::now() + std::chrono::seconds(90);
  while (Clock::now() < until &&
         Ferryd(1).FerryJson({"vm", "show", "db"}).value("state", "") != "running") {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ExpectOnSourceOnly(r, "k", 0);
  EXPECT_EQ(Redis({"get", "k"}).out, "before");
  // The source's disk is writable again after QEMU let go of it at the end of the precopy:
  // redis's append-only file takes writes (a disk that refused them fails redis's writes).
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Redis({"set", "k", "after-" + std::to_string(i)}).out, "OK");
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  }
  CommandResult stop = Ferryd(1).Ferry({"vm", "stop", "db"});
  ASSERT_EQ(stop.exit_code, 0) << stop.err;
  CommandResult start = Ferryd(1).Ferry({"vm", "start", "db", "--wait-ready"});
  ASSERT_EQ(start.exit_code, 0) << start.err;
  EXPECT_EQ(Redis({"get", "k"}).out, "after-2");
}

TEST_F(DiskMigrationTest, DestinationFerrydKilledAtPrepareLeavesNothingThere) {
  Ferryd(2).Stop();
  StartHost(2, "migrate.destination.disk_exported");
  CreateDb();
  ASSERT_EQ(Redis({"set", "k", "before"}).out, "OK");
  // h2 made the blank disk, started QEMU on it and exported it, then died before "prepared".
  CommandResult r = Ferryd(1).Ferry({"migrate", "db", "--to", "h2"});
  ASSERT_TRUE(Ferryd(2).WaitExit(std::chrono::seconds(60))) << "h2 did not reach its fault point";
  StartHost(2);  // it drops the VM that had not arrived, its QEMU and its disk
  ExpectOnSourceOnly(r, "k", 0);
  EXPECT_EQ(Redis({"get", "k"}).out, "before");
}

// The copy slowed down on h2 (each block its relay hands QEMU's NBD server 100 ms late), so each
// fault lands mid-copy.
enum class Fault { kDestinationQemuKilled, kLinkCut, kDestinationFerrydKilled };

class DiskMigrationFaultTest : public DiskMigrationTest,
                               public ::testing::WithParamInterface<Fault> {};

TEST_P(DiskMigrationFaultTest, AFaultMidCopyLeavesTheVmAndItsDiskOnTheSource) {
  Ferryd(2).Stop();
  StartHost(2, "migrate.disk.relaying:slow");
  CreateDb();
  auto writer = StartWriter("counter");
  CommandResult r;
  std::thread migrate([&] { r = Ferryd(1).Ferry({"migrate", "db", "--to", "h2"}); });
  const bool copying = WaitForPhase("perform: disk", std::chrono::seconds(120));
  if (copying) {
    switch (GetParam()) {
      case Fault::kDestinationQemuKilled:
        ::kill(WaitForQemuIn(2, std::chrono::seconds(5)), SIGKILL);
        break;
      case Fault::kLinkCut:
        // Every TCP connection between h1 and h2's peer port, reset as a broken wire would.
        NetnsHosts::RunIn(net_.Host(1), {"ss", "-K", "dst", NetnsHosts::HostAddress(2)});
        break;
      case Fault::kDestinationFerrydKilled:
        Ferryd(2).Kill();
        break;
    }
  }
  migrate.join();
  ASSERT_TRUE(copying) << "the disk copy was never seen running";
  // One line, naming the VM; the copy stopped, nothing else was touched.
  EXPECT_EQ(ErrorLines(r), 1) << r.err;
  EXPECT_THAT(ErrorText(r), HasSubstr("migration of vm db to h2")) << r.err;
  if (GetParam() == Fault::kDestinationFerrydKilled) {
    StartHost(2);  // it drops the VM that had not arrived, disk and all
  }
  const long last = LastAcknowledged(*writer);
  writer->Stop();
  ExpectOnSourceOnly(r, "counter", last);
}

INSTANTIATE_TEST_SUITE_P(Faults, DiskMigrationFaultTest,
                         ::testing::Values(Fault::kDestinationQemuKilled, Fault::kLinkCut,
                                           Fault::kDestinationFerrydKilled),
                         [](const ::testing::TestParamInfo<Fault>& info) {
                           switch (info.param) {
                             case Fault::kDestinationQemuKilled:
                               return "DestinationQemuKilled";
                             case Fault::kLinkCut:
                               return "LinkCut";
                             case Fault::kDestinationFerrydKilled:
                               return "DestinationFerrydKilled";
                           }
                           return "";
                         });

}  // namespace
}  // namespace ferry::testing
