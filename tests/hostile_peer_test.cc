// A hostile peer: a host holding a valid fleet certificate sends crafted migration requests to a
// real ferryd (its peer port, real mutual TLS). The destination is trusted by no peer for its own
// resources or QEMU's command line: every crafted prepare is refused with a "failed" message
// before any QEMU starts, ferryd stays up, and a real migration between two ferryds works right
// after. Hosts are network namespaces (harness/migration_fleet.h). Needs root.
#include "harness/hostile_peer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <functional>
#include <optional>
#include <sstream>

#include "crypto/owner_policy.h"
#include "harness/migration_fleet.h"
#include "harness/qemu_scratch.h"
#include "harness/test_files.h"

namespace ferry::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

size_t CountLines(const std::string& text, const std::string& needle) {
  size_t n = 0;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) n += line.find(needle) != std::string::npos;
  return n;
}

class HostilePeerTest : public MigrationFleetFixture {
 protected:
  void BeforeStartingHosts() override {
    fleet_->AddHost("h9", {"zone=b"});
    alice_policy_file_ = fleet_->SignPolicy("alice.key", "web", {"--allow-label", "zone=b"});
    alice_policy_ = ReadFile(alice_policy_file_);
    mallory_policy_ =
        ReadFile(fleet_->SignPolicy("mallory.key", "web", {"--allow-label", "zone=b"}));
    auto alice = crypto::ParsePolicy(alice_policy_, "alice's policy");
    auto mallory = crypto::ParsePolicy(mallory_policy_, "mallory's policy");
    ASSERT_TRUE(alice.ok() && mallory.ok());
    alice_ = alice->owner_fingerprint;
    mallory_ = mallory->owner_fingerprint;
    // h2's QEMU is a wrapper that writes down each command line before it runs the real one:
    // the test sees every QEMU h2 ever starts, however short-lived.
    // Both where QEMU's unprivileged uids may write and run them.
    qemu_log_ = qemu_scratch_.File("h2-qemu.log");
    h2_qemu_ = qemu_scratch_.Script(
        "h2-qemu", "#!/bin/sh\necho \"$*\" >> " + qemu_log_ + "\nexec qemu-system-x86_64 \"$@\"\n");
  }
  // h2 takes only VMs with a policy, of alice's only, and runs QEMU through the wrapper.
  std::vector<std::string> ExtraFerrydArgs(int i) const override {
    if (i != 2) return {};
    return {"--require-policy", "--accept-owner", alice_.substr(0, crypto::kShortFingerprintChars),
            "--qemu", h2_qemu_};
  }
  void SetUp() override {
    MigrationFleetFixture::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    auto mallory_host = HostilePeer::Load(fleet_->TlsDir("h9"), net_.Client());
    ASSERT_TRUE(mallory_host.ok()) << mallory_host.status().message();
    hostile_.emplace(std::move(mallory_host).value());
  }
  // A prepare h2 would accept from h9 (h2 allows ferrybr0, accepts alice's VMs, and alice's
  // policy allows zone=b): each case changes one thing.
  json ValidPrepare() const {
    return {{"type", "prepare"},
            {"migration", "0123456789abcdef"},
            {"spec",
             {{"name", "web"},
              {"memory_mib", 256},
              {"network", {{"mode", "tap"}, {"bridge", "ferrybr0"}, {"ip", "10.77.0.10/24"}}},
              {"policy", alice_policy_}}},
            {"mac", "52:54:00:00:00:01"},
            {"vmgenid", "6f1a7c1e-1111-2222-3333-444455556666"},
            {"owner", alice_}};
  }
  size_t IncomingQemus() { return CountLines(ReadFile(qemu_log_), "-incoming"); }
  std::string Address2() const { return NetnsHosts::HostAddress(2) + ":" + kPeerPort; }

  QemuScratch qemu_scratch_;
  std::string qemu_log_;
  std::string h2_qemu_;            // the wrapper
  std::string alice_policy_file_;  // alice's policy for web, allowing zone=b
  std::string alice_policy_, mallory_policy_, alice_, mallory_;
  std::optional<HostilePeer> hostile_;
};

struct HostileCase {
  std::string name;
  std::function<std::string(json)> bytes;  // from a valid prepare
  std::string refusal;                     // in the "failed" message
};

TEST_F(HostilePeerTest, CraftedPreparesAreRefusedBeforeQemuAndARealMigrationWorksAfter) {
  auto edit = [](std::function<void(json&)> f) {
    return [f](json m) {
      f(m);
      return m.dump();
    };
  };
  std::vector<HostileCase> cases = {
      {"MAC with an option appended",
       edit([](json& m) { m["mac"] = "52:54:00:00:00:01,romfile=/etc/ferry/tls/host.key"; }),
       "is not a MAC address"},
      {"multicast MAC", edit([](json& m) { m["mac"] = "01:00:5e:00:00:01"; }), "multicast"},
      {"junk GUID", edit([](json& m) { m["vmgenid"] = "auto,x-romfile=/etc/passwd"; }),
       "is not a GUID"},
      {"bridge not allowed here", edit([](json& m) { m["spec"]["network"]["bridge"] = "br-mgmt"; }),
       "does not allow"},
      {"bridge name that is an option",
       edit([](json& m) { m["spec"]["network"]["bridge"] = "b,script=/x"; }),
       "not an interface name"},
      {"a data disk without its size on the source",
       edit([](json& m) { m["spec"]["disk"] = "1G"; }), "has a disk but no \"disk_bytes\""},
      {"a data disk larger than the room here", edit([](json& m) {
         m["spec"]["disk"] = "8192G";
         m["disk_bytes"] = uint64_t{10} << 40;  // more than any test host has free
       }),
       "free for VMs"},
      {"policy stripped", edit([](json& m) {
         m["spec"].erase("policy");
         m.erase("owner");
       }),
       "requires one (--require-policy)"},
      {"policy without its pinned owner", edit([](json& m) { m.erase("owner"); }),
       "without the owner"},
      {"policy re-signed by another owner key",
       edit([this](json& m) { m["spec"]["policy"] = mallory_policy_; }), "replaced on the way"},
      {"policy and owner both replaced", edit([this](json& m) {
         m["spec"]["policy"] = mallory_policy_;
         m["owner"] = mallory_;
       }),
       "does not accept"},
      {"policy edited after signing", edit([this](json& m) {
         std::string text = alice_policy_;
         text.replace(text.find("zone"), 4, "zonf");
         m["spec"]["policy"] = text;
       }),
       "signature"},
      {"a VM of another QEMU release", edit([](json& m) { m["machine_type"] = "pc-q35-6.2"; }),
       "same QEMU release on both hosts"},
      {"a machine type that is an option",
       edit([](json& m) { m["machine_type"] = "pc-q35-10.0,accel=kvm"; }),
       "not a QEMU machine type name"},
      {"unknown member", edit([](json& m) { m["disk_path"] = "/etc/shadow"; }),
       "unknown member \"disk_path\""},
      {"unknown spec member", edit([](json& m) { m["spec"]["qemu_args"] = "-S"; }),
       "unknown field 'qemu_args'"},
      {"not prepare first", [](json) { return std::string(R"({"type":"finish"})"); },
       "must be \"prepare\""},
      {"not JSON", [](json) { return std::string(R"({"type":"prepare",)"); }, "not a JSON object"},
      {"100000 levels deep",
       [](json) {
         return R"({"type":"prepare","spec":)" + std::string(100000, '[') +
                std::string(100000, ']') + "}";
       },
       "deeper than"},
      {"100000 levels deep, unclosed",
       [](json) { return R"({"type":"prepare","spec":)" + std::string(100000, '{'); },
       "deeper than"},
  };
  // Wrong types, one member at a time: each would have thrown nlohmann's type_error.
  for (const char* key : {"type", "migration", "spec", "mac", "vmgenid", "owner"}) {
    cases.push_back({std::string("wrong type: ") + key, edit([key](json& m) {
                       m[key] = json::array({1, 2});
                     }),
                     ""});
  }
  for (const char* key : {"name", "memory_mib", "cpus", "network", "disk", "policy", "image"}) {
    cases.push_back({std::string("wrong type: spec.") + key, edit([key](json& m) {
                       m["spec"][key] = json::object({{"x", 1}});
                     }),
                     ""});
  }
  for (const char* key : {"mode", "bridge", "ip", "gateway", "forwards"}) {
    cases.push_back({std::string("wrong type: spec.network.") + key,
                     edit([key](json& m) { m["spec"]["network"][key] = 42; }), ""});
  }

  const pid_t ferryd = Ferryd(2).pid();
  const size_t qemus_before = IncomingQemus();
  for (const HostileCase& c : cases) {
    SCOPED_TRACE(c.name);
    auto reply = hostile_->SendOne(Address2(), "h2", c.bytes(ValidPrepare()));
    ASSERT_TRUE(reply.ok()) << reply.status().message();
    EXPECT_EQ(reply->value("type", ""), "failed") << reply->dump();
    const std::string error = reply->value("error", "");
    EXPECT_THAT(error, HasSubstr("host h2: "));
    EXPECT_THAT(error, HasSubstr(c.refusal));
    ASSERT_EQ(::kill(ferryd, 0), 0) << "ferryd on h2 died";
  }
  std::cout << "hostile peer: " << cases.size() << " crafted prepares refused\n";
  EXPECT_EQ(IncomingQemus(), qemus_before) << "a crafted prepare started a QEMU on h2";
  EXPECT_TRUE(Ferryd(2).VmNames().empty());
  // Each refusal is one line in h2's log, naming the VM's peer.
  EXPECT_GE(CountLines(ReadFile(Ferryd(2).state_dir() + "/ferryd.log"), "from host h9 refused: "),
            cases.size());

  // A real source: a VM whose policy another owner signed is refused by h2 and runs on at h1.
  const std::string rogue_policy =
      fleet_->SignPolicy("mallory.key", "rogue", {"--allow-label", "zone=b"});
  CommandResult made =
      Ferryd(1).Ferry({"vm", "create", "rogue", "--net", "tap", "--bridge", "ferrybr0", "--ip",
                       "10.77.0.11/24", "--policy", rogue_policy, "--wait-ready"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  ASSERT_EQ(RedisFromClient("10.77.0.11", {"set", "k", "stays"}).out, "OK");
  CommandResult refused = Ferryd(1).Ferry({"migrate", "rogue", "--to", "h2"});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_THAT(refused.err, HasSubstr("vm rogue belongs to owner"));
  EXPECT_THAT(refused.err, HasSubstr("--accept-owner"));
  EXPECT_EQ(Ferryd(1).FerryJson({"vm", "show", "rogue"})["state"], "running");
  EXPECT_EQ(RedisFromClient("10.77.0.11", {"get", "k"}).out, "stays");
  EXPECT_EQ(IncomingQemus(), qemus_before);

  // And a real migration right after: alice's VM moves to h2 with its data.
  made = Ferryd(1).Ferry({"vm", "create", "web", "--net", "tap", "--bridge", "ferrybr0", "--ip",
                          "10.77.0.10/24", "--policy", alice_policy_file_, "--wait-ready"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  ASSERT_EQ(RedisFromClient("10.77.0.10", {"set", "k", "moved"}).out, "OK");
  CommandResult moved = Ferryd(1).Ferry({"migrate", "web", "--to", "h2"});
  ASSERT_EQ(moved.exit_code, 0) << moved.err;
  EXPECT_EQ(Ferryd(2).VmNames(), std::vector<std::string>{"web"});
  EXPECT_EQ(RedisFromClient("10.77.0.10", {"get", "k"}).out, "moved");
  EXPECT_EQ(IncomingQemus(), qemus_before + 1);
  EXPECT_EQ(::kill(ferryd, 0), 0);
}

}  // namespace
}  // namespace ferry::testing
