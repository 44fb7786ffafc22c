// `ferry snapshot send` between two hosts, as a user and the VM's owner check it: the snapshot
// is copied (h1 keeps it, h2 lists it), a clone of it on h2 runs with the parent's data; a
// sibling snapshot sent next carries only what changed, and a template made of it on h2 clones;
// a second send of the same name, a host the owner's policy forbids, a host whose own settings
// refuse the VM, and a snapshot whose owner now forbids clones are refused, and nothing of them
// is left on h2, whichever end refused.
//
// Hosts are network namespaces on one L2 segment (harness/netns_hosts.h), each with its own
// ferryd, fleet certificate and store; redis-cli runs in the client namespace. Needs root.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <optional>

#include "harness/ferryd_fixture.h"
#include "harness/fleet.h"
#include "harness/migration_fleet.h"
#include "harness/netns_hosts.h"

namespace ferry::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

constexpr const char* kCloneAddress = "10.77.0.31";

class SnapshotSendTest : public MigrationFleetFixture {
 protected:
  void Snapshot(const std::string& name) {
    CommandResult r = Ferryd(1).Ferry({"snapshot", "create", "web", "--name", name});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  // The names `ferry snapshot list` shows on `host`.
  std::vector<std::string> SnapshotNames(int host) {
    std::vector<std::string> names;
    for (const json& s : Ferryd(host).FerryJson({"snapshot", "list"})) names.push_back(s["name"]);
    return names;
  }
  json Store(int host) { return Ferryd(host).FerryJson({"store", "show"}); }
  // `snapshot send NAME --to h2` on h1, as JSON (null when it failed; `out` has what it said).
  json Send(const std::string& name, CommandResult* out) {
    *out = Ferryd(1).Ferry({"snapshot", "send", name, "--to", "h2", "--json"});
    if (out->exit_code != 0) return nullptr;
    return json::parse(out->out, nullptr, false);
  }
};

TEST_F(SnapshotSendTest, ASentSnapshotClonesOnTheOtherHostAndASiblingCarriesLittle) {
  CreateWeb();
  Snapshot("s1");
  CommandResult out;
  json first = Send("s1", &out);
  ASSERT_TRUE(first.is_object()) << out.err << out.out;
  const uint64_t first_bytes = first.value("chunk_bytes_sent", uint64_t{0});
  EXPECT_GT(first_bytes, uint64_t{1} << 20) << first.dump();
  EXPECT_EQ(first.value("chunks_sent", 0), first.value("chunks", -1)) << "h2 had nothing";
  EXPECT_GE(first.value("wire_bytes_sent", uint64_t{0}), first_bytes);
  // Copied: both hosts list it; h2 says where it came from.
  EXPECT_EQ(SnapshotNames(1), std::vector<std::string>{"s1"});
  json there = Ferryd(2).FerryJson({"snapshot", "list"});
  ASSERT_EQ(there.size(), 1u) << there.dump();
  EXPECT_EQ(there[0].value("name", ""), "s1");
  EXPECT_EQ(there[0].value("vm", ""), "web");
  EXPECT_EQ(there[0].value("received_from", ""), "h1");
  EXPECT_FALSE(there[0].contains("error")) << there.dump();
  json verify = Ferryd(2).FerryJson({"store", "verify"});
  EXPECT_TRUE(verify.value("ok", false)) << verify.dump();

  // A clone on h2 runs and answers with the parent's data as of the snapshot.
  CommandResult cloned = Ferryd(2).Ferry({"clone", "s1", "--name", "twin", "--net", "tap", "--ip",
                                          std::string(kCloneAddress) + "/24"});
  ASSERT_EQ(cloned.exit_code, 0) << cloned.err;
  ExpectWebKeysAt(kCloneAddress);

  // The same name again is refused, naming it; h2 keeps the one it has.
  CommandResult again;
  EXPECT_TRUE(Send("s1", &again).is_null());
  EXPECT_THAT(again.err, HasSubstr("snapshot s1 exists on host h2 already"));
  EXPECT_EQ(SnapshotNames(2), std::vector<std::string>{"s1"});

  // A sibling snapshot of the same VM: h2 has most of its chunks (and alice's dedup secret).
  ASSERT_EQ(RedisFromClient(kVmAddress, {"set", "later", "yes"}).out, "OK");
  Snapshot("s2");
  json second = Send("s2", &out);
  ASSERT_TRUE(second.is_object()) << out.err;
  const uint64_t second_bytes = second.value("chunk_bytes_sent", uint64_t{0});
  RecordProperty("first_send_bytes", std::to_string(first_bytes));
  RecordProperty("second_send_bytes", std::to_string(second_bytes));
  std::printf(
      "snapshot send: first %llu bytes of chunks (%d of %d chunks), sibling %llu (%d of "
      "%d)\n",
      static_cast<unsigned long long>(first_bytes), first.value("chunks_sent", 0),
      first.value("chunks", 0), static_cast<unsigned long long>(second_bytes),
      second.value("chunks_sent", 0), second.value("chunks", 0));
  EXPECT_LT(second_bytes, first_bytes / 2) << second.dump();
  EXPECT_LT(second.value("chunks_sent", 0), second.value("chunks", 0));
  EXPECT_EQ(SnapshotNames(2).size(), 2u);
  CommandResult sibling =
      Ferryd(2).Ferry({"clone", "s2", "--name", "twin-2", "--net", "tap", "--ip", "10.77.0.32/24"});
  ASSERT_EQ(sibling.exit_code, 0) << sibling.err;
  EXPECT_EQ(RedisFromClient("10.77.0.32", {"get", "later"}).out, "yes");

  // A template on h2 from the snapshot it received, and a VM from the template.
  CommandResult made = Ferryd(2).Ferry({"template", "create", "warm", "--from-snapshot", "s2"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  CommandResult from_template = Ferryd(2).Ferry(
      {"vm", "create", "api-1", "--template", "warm", "--net", "tap", "--ip", "10.77.0.33/24"});
  ASSERT_EQ(from_template.exit_code, 0) << from_template.err;
  EXPECT_EQ(RedisFromClient("10.77.0.33", {"get", "later"}).out, "yes");
  ExpectWebKeysAt("10.77.0.33");
}

TEST_F(SnapshotSendTest, AHostThePolicyForbidsGetsNothing) {
  CreateWeb({"--allow-label", "zone=a"});
  Snapshot("s1");
  CommandResult out;
  EXPECT_TRUE(Send("s1", &out).is_null());
  EXPECT_THAT(out.err, HasSubstr("host h2 (zone=b) is not an allowed destination"));
  EXPECT_THAT(out.err, HasSubstr("snapshot s1 is not sent"));
  EXPECT_TRUE(SnapshotNames(2).empty());
  json store = Store(2);
  EXPECT_EQ(store.value("holds", -1), 0);
  EXPECT_EQ(store.value("chunks", -1), 0) << "not a chunk may reach a forbidden host";
  EXPECT_EQ(SnapshotNames(1), std::vector<std::string>{"s1"});
}

TEST_F(SnapshotSendTest, TheReceiverChecksWhatItAcceptsItself) {
  // h2 takes no VM on its bridge now: the sender's checks pass, h2's own refuse the snapshot.
  Ferryd(2).Stop();
  Ferryd(2).Start({"--listen", NetnsHosts::HostAddress(2) + ":" + kPeerPort, "--tls-dir",
                   fleet_->TlsDir("h2")});
  ASSERT_FALSE(HasFatalFailure());
  CreateWeb();
  Snapshot("s1");
  CommandResult out;
  EXPECT_TRUE(Send("s1", &out).is_null());
  EXPECT_THAT(out.err, HasSubstr("host h2: snapshot s1 from h1"));
  EXPECT_THAT(out.err, HasSubstr("wants bridge ferrybr0"));
  EXPECT_THAT(out.err, HasSubstr("snapshot s1 stays on this host as it was"));
  EXPECT_TRUE(SnapshotNames(2).empty());
  json store = Store(2);
  EXPECT_EQ(store.value("holds", -1), 0);
  EXPECT_EQ(store.value("chunks", -1), 0) << "refused before any chunk was asked for";
}

TEST_F(SnapshotSendTest, ASnapshotWhoseOwnerNowForbidsClonesIsNotSent) {
  CreateWeb();
  Snapshot("s1");
  CommandResult replaced = Ferryd(1).Ferry(
      {"vm", "set-policy", "web", fleet_->SignPolicy("alice.key", "web", {"--no-clone"})});
  ASSERT_EQ(replaced.exit_code, 0) << replaced.err;
  CommandResult out;
  EXPECT_TRUE(Send("s1", &out).is_null());
  EXPECT_THAT(out.err, HasSubstr("snapshot s1"));
  EXPECT_THAT(out.err, HasSubstr("cannot be sent"));
  EXPECT_TRUE(SnapshotNames(2).empty());
  EXPECT_EQ(Store(2).value("chunks", -1), 0);
}

}  // namespace
}  // namespace ferry::testing
