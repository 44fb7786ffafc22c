// The owner's policy on one host, as a user meets it: a VM whose owner forbids clones is not
// snapshotted, cloned or made into a template, by any path; a clone carries its parent's owner
// and policy; only the owner can replace a policy; a snapshot whose policy was edited or taken
// out is not cloned. Real ferryd, real QEMU, real redis, keys and policies made by the real CLI.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "harness/ferryd_fixture.h"
#include "harness/fleet.h"
#include "harness/test_files.h"

namespace ferry::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

class OwnerPolicyTest : public FerrydFixture {
 protected:
  void SetUp() override {
    FerrydFixture::SetUp();
    fleet_.AddOwner("alice.key");
    fleet_.AddOwner("mallory.key");
    StartFerryd();
  }

  // A policy for VM web signed with `key` (alice.key, mallory.key); returns its file.
  std::string SignPolicy(const std::string& key, const std::vector<std::string>& rules) {
    return fleet_.SignPolicy(key, "web", rules);
  }
  // Boots VM web with `policy` and a redis key set; returns its forwarded port.
  uint16_t CreateWeb(const std::string& policy) {
    uint16_t port = FreePort();
    CommandResult r = Ferry({"vm", "create", "web", "--policy", policy, "--forward",
                             std::to_string(port) + ":6379", "--wait-ready"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(Redis(port, {"set", "owned", "by-alice"}).out, "OK");
    return port;
  }
  std::string ShortOwner(const std::string& key) {
    CommandResult r = FerryLocal({"policy", "show", SignPolicy(key, {}), "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    json j = json::parse(r.out, nullptr, false);
    return j.is_object() ? j.value("owner_fingerprint", "").substr(0, 16) : "";
  }
  // Rewrites snapshot `name`'s manifest through `edit` and gives it a valid checksum again, as
  // someone who can write the file would.
  void RewriteManifest(const std::string& name, const std::function<void(json&)>& edit) {
    const std::string path = state_dir_ + "/snapshots/" + name + "/manifest.json";
    json m = json::parse(ReadFile(path));
    edit(m);
    m.erase("manifest_sha256");
    const std::string canonical = state_dir_ + "/canonical.json";
    std::ofstream(canonical) << m.dump();
    CommandResult sum = RunCommand({"sha256sum", canonical});
    ASSERT_EQ(sum.exit_code, 0) << sum.err;
    m["manifest_sha256"] = sum.out.substr(0, 64);
    ::chmod(path.c_str(), 0600);
    std::ofstream(path, std::ios::trunc) << m.dump(1) << "\n";
  }
  // The one-line refusal of a clone-like request, and that it left nothing behind.
  void ExpectRefusedNamingWebAndOwner(const CommandResult& r, const std::string& owner) {
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_THAT(r.err, HasSubstr("vm web"));
    EXPECT_THAT(r.err, HasSubstr(owner));
    EXPECT_EQ(ErrorLines(r), 1) << r.err;
  }

  Fleet fleet_;  // the owners' keys and policies
};

TEST_F(OwnerPolicyTest, ANoCloneVmIsNotSnapshottedClonedOrTemplatedAndOnlyItsOwnerReplacesIt) {
  const std::string alice = ShortOwner("alice.key");
  const std::string mallory = ShortOwner("mallory.key");
  ASSERT_FALSE(alice.empty());
  ASSERT_NE(alice, mallory);
  const uint16_t port = CreateWeb(SignPolicy("alice.key", {}));
  // Taken while the owner allowed clones.
  CommandResult snap = Ferry({"snapshot", "create", "web", "--name", "before"});
  ASSERT_EQ(snap.exit_code, 0) << snap.err;

  // A snapshot whose policy was edited, or taken out, is not cloned (checksum made valid again).
  const std::string manifest = state_dir_ + "/snapshots/before/manifest.json";
  const std::string original = ReadFile(manifest);
  RewriteManifest("before", [](json& m) {
    json& spec = m["source_vm"]["spec"]["spec"];
    json policy = json::parse(spec["policy"].get<std::string>());
    policy["policy"]["allow_hosts"] = {"anywhere"};
    spec["policy"] = policy.dump(2);
  });
  CommandResult edited = Ferry({"clone", "before", "--name", "c-edited"});
  EXPECT_EQ(edited.exit_code, 1);
  EXPECT_THAT(edited.err, HasSubstr("signature does not verify"));
  RewriteManifest("before", [](json& m) { m["source_vm"]["spec"]["spec"].erase("policy"); });
  CommandResult stripped = Ferry({"clone", "before", "--name", "c-stripped"});
  EXPECT_EQ(stripped.exit_code, 1);
  EXPECT_THAT(stripped.err, HasSubstr("is not the one vm web had when the snapshot was taken"));
  std::ofstream(manifest, std::ios::trunc) << original;
  EXPECT_EQ(VmNames(), std::vector<std::string>{"web"});

  // Another owner cannot replace the policy; the owner can, and now forbids clones.
  CommandResult foreign =
      Ferry({"vm", "set-policy", "web", SignPolicy("mallory.key", {"--allow-host", "h9"})});
  EXPECT_EQ(foreign.exit_code, 1);
  EXPECT_THAT(foreign.err, HasSubstr("signed by another owner (" + mallory));
  EXPECT_EQ(FerryJson({"vm", "show", "web"})["policy"]["destinations"], "any enrolled host");
  CommandResult replaced =
      Ferry({"vm", "set-policy", "web", SignPolicy("alice.key", {"--no-clone"})});
  ASSERT_EQ(replaced.exit_code, 0) << replaced.err;
  json shown = FerryJson({"vm", "show", "web"});
  EXPECT_EQ(shown["owner"], alice);
  EXPECT_EQ(shown["policy"]["clone"], false);

  ExpectRefusedNamingWebAndOwner(Ferry({"snapshot", "create", "web", "--name", "after"}), alice);
  ExpectRefusedNamingWebAndOwner(Ferry({"clone", "before", "--name", "c1"}), alice);
  ExpectRefusedNamingWebAndOwner(Ferry({"template", "create", "t", "--from-snapshot", "before"}),
                                 alice);
  json snapshots = FerryJson({"snapshot", "list"});
  EXPECT_EQ(snapshots.size(), 1u) << snapshots.dump();
  EXPECT_EQ(snapshots.at(0)["name"], "before");
  EXPECT_TRUE(FerryJson({"template", "list"}).empty());
  EXPECT_EQ(VmNames(), std::vector<std::string>{"web"});

  // The VM runs on, untouched.
  EXPECT_EQ(FerryJson({"vm", "show", "web"})["state"], "running");
  EXPECT_EQ(Redis(port, {"get", "owned"}).out, "by-alice");
}

TEST_F(OwnerPolicyTest, ACloneCarriesItsParentsOwnerAndPolicy) {
  const std::string alice = ShortOwner("alice.key");
  CreateWeb(SignPolicy("alice.key", {"--allow-host", "h2", "--hold-max", "60"}));
  ASSERT_EQ(Ferry({"snapshot", "create", "web", "--name", "warm"}).exit_code, 0);
  CommandResult clone = Ferry({"clone", "warm", "--name", "c1", "--forward", "0:6379"});
  ASSERT_EQ(clone.exit_code, 0) << clone.err;

  json parent = FerryJson({"vm", "show", "web"});
  json c1 = FerryJson({"vm", "show", "c1"});
  EXPECT_EQ(c1["owner"], alice);
  EXPECT_EQ(c1["spec"]["policy"], parent["spec"]["policy"]) << "the parent's document, unchanged";
  EXPECT_EQ(c1["spec"]["cloned_from"], "web");
  const json& p = c1["policy"];
  EXPECT_EQ(p["bound_to"], "web");
  EXPECT_EQ(p["inherited_from"], json({{"vm", "web"}, {"snapshot", "warm"}}));
  EXPECT_EQ(p["destinations"], "hosts [h2]");
  EXPECT_EQ(p["hold"], json({{"allowed", true}, {"max_seconds", 60}}));
  EXPECT_EQ(p["clone"], true);
  EXPECT_FALSE(parent["policy"].contains("inherited_from"));

  CommandResult table = Ferry({"vm", "show", "c1"});
  EXPECT_THAT(table.out, HasSubstr("inherited from vm web (snapshot warm)"));
  EXPECT_THAT(table.out, HasSubstr(alice));
}

}  // namespace
}  // namespace ferry::testing
