// `ferry hold send` between two hosts, as a user and the VM's owner check it: the hold moves (h1
// no longer holds it), comes back on h2 as the same machine with its data; a second send carries
// only the chunks the receiver lacks; a host the owner's policy forbids gets nothing; a ferryd
// killed at any step of the send, on either side, leaves exactly one durable hold across both.
//
// Hosts are network namespaces on one L2 segment (harness/netns_hosts.h), each with its own
// ferryd, fleet certificate and store; redis-cli runs in the client namespace. Needs root.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <thread>

#include "harness/ferryd_fixture.h"
#include "harness/fleet.h"
#include "harness/migration_fleet.h"
#include "harness/guest_identity.h"
#include "harness/netns_hosts.h"

namespace ferry::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

// The second of two sibling clones' sends carries at most this share of the first's bytes on the
// wire (the goal is 10 %; measured 4.3 %, 1.25 MB against 28.9 MB, on a 2-core TCG host).
constexpr uint64_t kSiblingSendPercent = 10;

class HoldSendTest : public MigrationFleetFixture {
 protected:
  void ExpectEveryKey() { ExpectWebKeysAt(kVmAddress); }
  json Holds(int host) { return Ferryd(host).FerryJson({"hold", "list"}); }
  json Store(int host) { return Ferryd(host).FerryJson({"store", "show"}); }
  // `hold send web` from `from` to the other host, as JSON (null when it failed).
  json Send(int from, CommandResult* out = nullptr) {
    CommandResult r =
        Ferryd(from).Ferry({"hold", "send", "web", "--to", "h" + std::to_string(3 - from),
                            "--json"});
    if (out) *out = r;
    if (r.exit_code != 0) return nullptr;
    return json::parse(r.out, nullptr, false);
  }
  // Waits until, across both hosts, exactly one hold of web exists and it is durable, and no
  // VM runs; returns the host holding it (0 when that did not happen in time).
  int WaitForOneDurableHold(std::chrono::seconds deadline) {
    const auto until = Clock::now() + deadline;
    std::string seen;
    while (Clock::now() < until) {
      json h1 = Holds(1), h2 = Holds(2);
      seen = h1.dump() + " / " + h2.dump() + "; stores " + Store(1).dump() + " / " +
             Store(2).dump();
      const bool one = h1.size() + h2.size() == 1;
      if (one) {
        const json& row = h1.empty() ? h2[0] : h1[0];
        // The stores agree: one manifest across both, no copy left without its row.
        const int manifests = Store(1).value("holds", -1) + Store(2).value("holds", -1);
        if (row.value("step", "") == "durable" && !row.contains("problem") && manifests == 1) {
          EXPECT_TRUE(Ferryd(1).VmNames().empty());
          EXPECT_TRUE(Ferryd(2).VmNames().empty());
          return h1.empty() ? 2 : 1;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    ADD_FAILURE() << "not exactly one durable hold: " << seen;
    return 0;
  }
};

TEST_F(HoldSendTest, TheHoldMovesAndComesBackOnTheOtherHostAsTheSameMachine) {
  CreateWeb();
  const GuestIdentity before = ReadGuestIdentity(Ferryd(1).socket(), "web");
  CommandResult held = Ferryd(1).Ferry({"hold", "web"});
  ASSERT_EQ(held.exit_code, 0) << held.err;

  CommandResult out;
  json first = Send(1, &out);
  ASSERT_TRUE(first.is_object()) << out.err;
  const uint64_t first_bytes = first.value("chunk_bytes_sent", uint64_t{0});
  EXPECT_GT(first_bytes, uint64_t{1} << 20) << first.dump();
  EXPECT_EQ(first.value("chunks_sent", 0), first.value("chunks", -1)) << "h2 had nothing";
  EXPECT_GE(first.value("wire_bytes_sent", uint64_t{0}), first_bytes);
  // Moved: h2 holds it (under its own signature), h1 does not.
  EXPECT_TRUE(Holds(1).empty());
  EXPECT_EQ(Store(1).value("holds", -1), 0);
  json there = Holds(2);
  ASSERT_EQ(there.size(), 1u) << there.dump();
  EXPECT_EQ(there[0].value("step", ""), "durable");
  EXPECT_EQ(there[0].value("held_on", ""), "h2");
  EXPECT_TRUE(Ferryd(1).VmNames().empty());
  EXPECT_TRUE(Ferryd(2).VmNames().empty());
  json verify = Ferryd(2).FerryJson({"store", "verify"});
  EXPECT_TRUE(verify.value("ok", false)) << verify.dump();

  CommandResult restored = Ferryd(2).Ferry({"hold", "restore", "web", "--wait-ready"});
  ASSERT_EQ(restored.exit_code, 0) << restored.err;
  ExpectEveryKey();
  const GuestIdentity after = ReadGuestIdentity(Ferryd(2).socket(), "web");
  EXPECT_EQ(after.hostname, before.hostname);
  EXPECT_EQ(after.machine_id, before.machine_id);
  EXPECT_EQ(after.macs, before.macs);
  EXPECT_EQ(after.ssh_fingerprints, before.ssh_fingerprints);
  EXPECT_TRUE(Holds(2).empty());
  EXPECT_EQ(Ferryd(2).VmNames(), std::vector<std::string>{"web"});

  // Held again on h2 and sent back: h1 still has the chunks of the first hold (not collected),
  // and h2 adopted alice's dedup secret, so only what changed travels.
  ASSERT_EQ(Ferryd(2).Ferry({"hold", "web"}).exit_code, 0);
  json second = Send(2, &out);
  ASSERT_TRUE(second.is_object()) << out.err;
  const uint64_t second_bytes = second.value("chunk_bytes_sent", uint64_t{0});
  RecordProperty("first_send_bytes", std::to_string(first_bytes));
  RecordProperty("second_send_bytes", std::to_string(second_bytes));
  std::printf("hold send: first %llu bytes of chunks, second (same content, back) %llu\n",
              static_cast<unsigned long long>(first_bytes),
              static_cast<unsigned long long>(second_bytes));
  EXPECT_LT(second_bytes, first_bytes / 4) << second.dump();
  EXPECT_LT(second.value("chunks_sent", 0), second.value("chunks", 0));
  EXPECT_EQ(Holds(1).size(), 1u);
  EXPECT_TRUE(Holds(2).empty());
  ASSERT_EQ(Ferryd(1).Ferry({"hold", "restore", "web", "--wait-ready"}).exit_code, 0);
  ExpectEveryKey();

  // h2 keeps its record of the first transfer (what answers a late hold-query from h1) across
  // a restart, and prunes it once it is older than kTransferRecordKeepSeconds (30 days).
  const std::string db = Ferryd(2).state_dir() + "/registry.db";
  auto records = [&] {
    CommandResult r = RunCommand(
        {"sqlite3", db, "select count(*) from objects where kind = 'hold-in'"});
    return r.out;
  };
  Ferryd(2).Stop();
  EXPECT_EQ(records(), "1\n");
  StartHost(2);
  Ferryd(2).Stop();
  EXPECT_EQ(records(), "1\n") << "a young record was pruned";
  CommandResult aged = RunCommand(
      {"sqlite3", db,
       "update objects set record = json_set(record, '$.at', strftime('%s', 'now') - 31 * 86400) "
       "where kind = 'hold-in'"});
  ASSERT_EQ(aged.exit_code, 0) << aged.err;
  StartHost(2);
  for (int i = 0; i < 100 && records() != "0\n"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(records(), "0\n") << "the reaper kept a 31-day-old transfer record";
}

// Two clones of one snapshot, held and sent one after the other: the second send carries only
// what the sibling changed, since h2 already has the snapshot's chunks from the first.
TEST_F(HoldSendTest, SiblingClonesSentOneAfterTheOtherCarryLittleTheSecondTime) {
  CreateWeb();
  ASSERT_EQ(Ferryd(1).Ferry({"snapshot", "create", "web", "--name", "base"}).exit_code, 0);
  CommandResult cloned = Ferryd(1).Ferry({"clone", "base", "--name", "c1", "--name", "c2", "--net", "tap",
                                          "--ip", "10.77.0.21/24", "--json"});
  ASSERT_EQ(cloned.exit_code, 0) << cloned.err;
  ASSERT_EQ(RedisFromClient("10.77.0.22", {"set", "own", "c2"}).out, "OK");
  for (const char* clone : {"c1", "c2"}) {
    CommandResult held = Ferryd(1).Ferry({"hold", clone});
    ASSERT_EQ(held.exit_code, 0) << held.err;
  }
  json sent[2];
  for (int i = 0; i < 2; ++i) {
    const std::string clone = i == 0 ? "c1" : "c2";
    CommandResult r = Ferryd(1).Ferry({"hold", "send", clone, "--to", "h2", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    sent[i] = json::parse(r.out);
  }
  const uint64_t first = sent[0].value("wire_bytes_sent", uint64_t{0});
  const uint64_t second = sent[1].value("wire_bytes_sent", uint64_t{0});
  std::printf("hold send of sibling clones: first %llu bytes on the wire, second %llu\n",
              static_cast<unsigned long long>(first), static_cast<unsigned long long>(second));
  EXPECT_GT(first, uint64_t{1} << 20) << sent[0].dump();
  EXPECT_LT(second * 100, first * kSiblingSendPercent) << sent[1].dump();
  EXPECT_EQ(Holds(2).size(), 2u);
  EXPECT_TRUE(Holds(1).empty());

  // The sibling is whole on h2: restored there, it serves its own data and its parent's.
  CommandResult restored = Ferryd(2).Ferry({"hold", "restore", "c2", "--wait-ready"});
  ASSERT_EQ(restored.exit_code, 0) << restored.err;
  EXPECT_EQ(RedisFromClient("10.77.0.22", {"get", "own"}).out, "c2");
  EXPECT_EQ(RedisFromClient("10.77.0.22", {"get", "key:7"}).out, WebValue(7));
}

TEST_F(HoldSendTest, AHostThePolicyForbidsGetsNothingAndTheSenderKeepsTheHold) {
  CreateWeb({"--allow-label", "zone=a"});
  ASSERT_EQ(Ferryd(1).Ferry({"hold", "web"}).exit_code, 0);
  CommandResult out;
  EXPECT_TRUE(Send(1, &out).is_null());
  EXPECT_THAT(out.err, HasSubstr("host h2 (zone=b) is not an allowed destination"));
  json here = Holds(1);
  ASSERT_EQ(here.size(), 1u);
  EXPECT_EQ(here[0].value("step", ""), "durable");
  EXPECT_TRUE(Holds(2).empty());
  json store = Store(2);
  EXPECT_EQ(store.value("holds", -1), 0);
  EXPECT_EQ(store.value("chunks", -1), 0) << "not a chunk may reach a forbidden host";
  ASSERT_EQ(Ferryd(1).Ferry({"hold", "restore", "web", "--wait-ready"}).exit_code, 0);
  ExpectEveryKey();
}

// Each point: which side dies there (the sender or the receiver of that send).
struct Fault {
  const char* point;
  bool sender;
};

TEST_F(HoldSendTest, AFerrydKilledAtAnyStepOfASendLeavesExactlyOneDurableHold) {
  CreateWeb();
  ASSERT_EQ(Ferryd(1).Ferry({"hold", "web"}).exit_code, 0);
  int holder = 1;
  const Fault faults[] = {
      {"hold.send.after_journal", true},     {"hold.receive.after_journal", false},
      {"hold.send.sending", true},           {"hold.receive.before_commit", false},
      {"hold.receive.after_commit", false},  {"hold.send.before_finish", true},
      {"hold.send.after_finish", true},      {"hold.receive.after_record", false},
      {"hold.receive.before_finished", false}, {"hold.send.before_confirm", true},
  };
  for (const Fault& f : faults) {
    SCOPED_TRACE(f.point);
    const int receiver = 3 - holder;
    const int dying = f.sender ? holder : receiver;
    // The receiver starts with no chunks, so every send carries the whole hold.
    ASSERT_EQ(Ferryd(receiver).Ferry({"store", "gc"}).exit_code, 0);
    Ferryd(dying).Stop();
    StartHost(dying, f.point);
    std::atomic<bool> restarted{false};
    std::thread restarter([&] {
      if (!Ferryd(dying).WaitExit(std::chrono::seconds(300))) return;
      StartHost(dying);
      restarted = true;
    });
    Send(holder);
    restarter.join();
    ASSERT_TRUE(restarted) << "ferryd did not reach " << f.point;
    holder = WaitForOneDurableHold(std::chrono::seconds(180));
    ASSERT_NE(holder, 0);
    std::printf("%s: the hold is on h%d\n", f.point, holder);
  }
  // Whichever host holds it brings it back with its data.
  ASSERT_EQ(Ferryd(holder).Ferry({"hold", "restore", "web", "--wait-ready"}).exit_code, 0);
  ExpectEveryKey();
}

}  // namespace
}  // namespace ferry::testing
