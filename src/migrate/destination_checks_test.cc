#include "migrate/destination_checks.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>

#include "crypto/owner_policy.h"
#include "crypto/temp_dir_for_test.h"

namespace ferry::migrate {
namespace {

using ::testing::HasSubstr;

class DestinationChecks : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* who : {"alice", "mallory"}) {
      ASSERT_TRUE(crypto::OwnerKey::Generate(tmp_ / who).ok());
    }
    alice_.emplace(*crypto::OwnerKey::Load(tmp_ / "alice"));
    mallory_.emplace(*crypto::OwnerKey::Load(tmp_ / "mallory"));
    alice_policy_ = Sign(*alice_);
    mallory_policy_ = Sign(*mallory_);
    alice_fp_ = crypto::ParsePolicy(alice_policy_, "t")->owner_fingerprint;
    mallory_fp_ = crypto::ParsePolicy(mallory_policy_, "t")->owner_fingerprint;
    config_.allow_bridges = {"ferrybr0"};
  }
  static std::string Sign(const crypto::OwnerKey& key) {
    crypto::PolicyRules rules;
    rules.vm = "web";
    rules.allow_labels = {{"zone", "b"}};
    auto text = crypto::SignPolicy(rules, key);
    EXPECT_TRUE(text.ok());
    return text.ok() ? *text : "";
  }
  // A prepare this host accepts: a tap VM on ferrybr0 with alice's policy.
  PrepareRequest Valid() const {
    PrepareRequest p{"m1",         {},        *MacAddress::Parse("52:54:00:00:00:01"),
                     std::nullopt, alice_fp_, std::nullopt};
    p.spec.name = "web";
    p.spec.network.mode = vm::NetworkMode::kTap;
    p.spec.network.bridge = "ferrybr0";
    p.spec.network.ip = "10.77.0.10/24";
    p.spec.policy = alice_policy_;
    return p;
  }
  std::string Refusal(const PrepareRequest& p) const {
    auto spec = CheckIncoming(p, self_, config_);
    EXPECT_FALSE(spec.ok());
    return spec.ok() ? "" : spec.status().message();
  }

  crypto::TempDirForTest tmp_;
  std::optional<crypto::OwnerKey> alice_, mallory_;
  std::string alice_policy_, mallory_policy_, alice_fp_, mallory_fp_;
  crypto::HostIdentity self_{"h2", {{"zone", "b"}}};
  MigrationConfig config_;
};

TEST_F(DestinationChecks, AValidRequestIsAccepted) {
  auto spec = CheckIncoming(Valid(), self_, config_);
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  EXPECT_EQ(spec->name, "web");
}

TEST_F(DestinationChecks, OnlyAllowedBridges) {
  PrepareRequest p = Valid();
  p.spec.network.bridge = "br-mgmt";
  EXPECT_THAT(Refusal(p), HasSubstr("--allow-bridge br-mgmt"));
  config_.allow_bridges.clear();
  EXPECT_THAT(Refusal(Valid()), HasSubstr("no bridge is allowed"));
}

TEST_F(DestinationChecks, ADiskIsTakenWhenThereIsRoomForIt) {
  PrepareRequest p = Valid();
  p.spec.disk_mib = 1024;
  p.disk_bytes = 512u << 20;
  EXPECT_TRUE(CheckIncoming(p, self_, config_).ok());
  EXPECT_TRUE(CheckRoomForDisk("web-1", 512u << 20, uint64_t{2} << 30, self_).ok());
  Status tight = CheckRoomForDisk("web-1", 512u << 20, 600u << 20, self_);
  EXPECT_EQ(tight.code(), Status::Code::kResourceExhausted);
  EXPECT_THAT(tight.message(), HasSubstr("has 600 MiB free"));
  EXPECT_THAT(tight.message(), HasSubstr("vm web-1's disk takes 512 MiB"));
  EXPECT_FALSE(CheckRoomForDisk("web-1", 512u << 20, 100u << 20, self_).ok());
}

TEST_F(DestinationChecks, OnlyTheSameQemuReleaseIsTaken) {
  PrepareRequest p = Valid();
  EXPECT_TRUE(CheckIncomingMachine(p, {10, 0, 2}, self_).ok()) << "an older source sends none";
  p.machine_type = "pc-q35-10.0";
  EXPECT_TRUE(CheckIncomingMachine(p, {10, 0, 2}, self_).ok());
  p.machine_type = "pc-q35-7.2";
  Status refused = CheckIncomingMachine(p, {10, 0, 2}, self_);
  EXPECT_EQ(refused.code(), Status::Code::kFailedPrecondition);
  EXPECT_THAT(refused.message(), HasSubstr("vm web cannot move to host"));
  EXPECT_THAT(refused.message(), HasSubstr("pc-q35-7.2"));
  EXPECT_THAT(refused.message(), HasSubstr("QEMU 10.0.2 runs pc-q35-10.0"));
  EXPECT_THAT(refused.message(), HasSubstr("same QEMU release on both hosts"));
}

TEST_F(DestinationChecks, PolicyRequiredWhenConfigured) {
  PrepareRequest p = Valid();
  p.spec.policy.clear();
  p.owner.clear();
  EXPECT_TRUE(CheckIncoming(p, self_, config_).ok());
  config_.require_policy = true;
  EXPECT_THAT(Refusal(p), HasSubstr("requires one (--require-policy)"));
}

TEST_F(DestinationChecks, PolicyMustBeSignedByThePinnedOwner) {
  PrepareRequest p = Valid();
  p.spec.policy = mallory_policy_;
  EXPECT_THAT(Refusal(p), HasSubstr("replaced on the way"));
}

TEST_F(DestinationChecks, OnlyAcceptedOwnersWhenConfigured) {
  PrepareRequest p = Valid();
  p.spec.policy = mallory_policy_;
  p.owner = mallory_fp_;
  EXPECT_TRUE(CheckIncoming(p, self_, config_).ok());
  config_.accept_owners = {alice_fp_.substr(0, crypto::kShortFingerprintChars)};
  EXPECT_THAT(Refusal(p), HasSubstr("does not accept"));
  EXPECT_TRUE(CheckIncoming(Valid(), self_, config_).ok());
  config_.accept_owners = {alice_fp_};
  EXPECT_TRUE(CheckIncoming(Valid(), self_, config_).ok());
}

TEST_F(DestinationChecks, PolicyRulesAreCheckedHere) {
  crypto::HostIdentity elsewhere{"h3", {{"zone", "c"}}};
  auto spec = CheckIncoming(Valid(), elsewhere, config_);
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(spec.status().message(), HasSubstr("not an allowed destination"));
}

TEST_F(DestinationChecks, HostPortsArePickedHereNotByThePeer) {
  PrepareRequest p = Valid();
  p.spec.network = vm::NetworkSpec{};
  p.spec.network.forwards = {{22, 2222}, {6379, 16379}};
  auto spec = CheckIncoming(p, self_, config_);
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  ASSERT_EQ(spec->network.forwards.size(), 2u);
  EXPECT_EQ(spec->network.forwards[0].host_port, 0);
  EXPECT_EQ(spec->network.forwards[0].guest_port, 2222);
  EXPECT_EQ(spec->network.forwards[1].host_port, 0);
  EXPECT_EQ(spec->network.forwards[1].guest_port, 16379);
}

TEST_F(DestinationChecks, ConfigIsChecked) {
  EXPECT_TRUE(CheckDestinationConfig(config_).ok());
  MigrationConfig bad;
  bad.allow_bridges = {"br,x"};
  EXPECT_FALSE(CheckDestinationConfig(bad).ok());
  bad = {};
  bad.accept_owners = {"ABCDEF"};
  EXPECT_THAT(CheckDestinationConfig(bad).message(), HasSubstr("--accept-owner"));
}

TEST_F(DestinationChecks, ASentHoldIsCheckedAsAMigrationIsButKeepsItsDisk) {
  PrepareRequest p = Valid();
  p.spec.disk_mib = 1024;
  EXPECT_TRUE(CheckIncomingHold(p.spec, p.owner, self_, config_).ok());
  // The owner's migration rule, for this host's certificate.
  const crypto::HostIdentity zone_c{"h3", {{"zone", "c"}}};
  EXPECT_THAT(CheckIncomingHold(p.spec, p.owner, zone_c, config_).message(),
              HasSubstr("not an allowed destination"));
  // A swapped policy, a stripped one, an owner this host does not accept, a bridge it does not.
  EXPECT_THAT(CheckIncomingHold(p.spec, mallory_fp_, self_, config_).message(),
              HasSubstr("replaced on the way"));
  vm::VmSpec stripped = p.spec;
  stripped.policy.clear();
  EXPECT_THAT(CheckIncomingHold(stripped, alice_fp_, self_, config_).message(),
              HasSubstr("carries no policy"));
  MigrationConfig picky = config_;
  picky.accept_owners = {mallory_fp_};
  EXPECT_THAT(CheckIncomingHold(p.spec, p.owner, self_, picky).message(),
              HasSubstr("does not accept"));
  picky = config_;
  picky.allow_bridges.clear();
  EXPECT_THAT(CheckIncomingHold(p.spec, p.owner, self_, picky).message(),
              HasSubstr("no bridge is allowed"));
  picky = config_;
  picky.require_policy = true;
  EXPECT_THAT(CheckIncomingHold(stripped, "", self_, picky).message(),
              HasSubstr("--require-policy"));
}

}  // namespace
}  // namespace ferry::migrate
