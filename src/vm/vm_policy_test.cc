#include "vm/vm_policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "crypto/temp_dir_for_test.h"

namespace ferry::vm {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

class VmPolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::OwnerKey::Generate(tmp_ / "alice.key").ok());
    auto key = crypto::OwnerKey::Load(tmp_ / "alice.key");
    ASSERT_TRUE(key.ok()) << key.status().message();
    alice_.emplace(*key);
  }
  // A spec for VM `name` carrying a policy for VM `policy_vm`.
  VmSpec Spec(const std::string& name, const std::string& policy_vm, bool clone,
              const std::string& cloned_from = "") {
    crypto::PolicyRules rules;
    rules.vm = policy_vm;
    rules.allow_hosts = {"h2"};
    rules.hold_max_seconds = 60;
    rules.clone = clone;
    VmSpec spec;
    spec.name = name;
    spec.cloned_from = cloned_from;
    spec.policy = *crypto::SignPolicy(rules, *alice_);
    return spec;
  }

  crypto::TempDirForTest tmp_;
  std::optional<crypto::OwnerKey> alice_;
};

TEST_F(VmPolicyTest, AClonesPolicyIsBoundToTheVmItWasClonedFrom) {
  auto own = PolicyOf(Spec("web", "web", true));
  ASSERT_TRUE(own.ok()) << own.status().message();
  ASSERT_TRUE(own->has_value());
  EXPECT_EQ((*own)->vm, "web");

  EXPECT_TRUE(PolicyOf(Spec("web-c1", "web", true, "web")).ok());
  auto stolen = PolicyOf(Spec("db", "web", true));
  EXPECT_EQ(stolen.status().code(), Status::Code::kPermissionDenied);
  EXPECT_THAT(stolen.status().message(), HasSubstr("vm db"));
  EXPECT_FALSE(PolicyOf(Spec("db-c1", "web", true, "db")).ok());

  VmSpec none;
  none.name = "plain";
  auto nothing = PolicyOf(none);
  ASSERT_TRUE(nothing.ok());
  EXPECT_FALSE(nothing->has_value());
}

TEST_F(VmPolicyTest, CloneCheckNamesTheVmAndItsOwner) {
  VmSpec spec = Spec("web", "web", false);
  Status st = CheckSpecCloneAllowed(spec, "clone c1 of snapshot s");
  EXPECT_EQ(st.code(), Status::Code::kPermissionDenied);
  const std::string owner = (*PolicyOf(spec))->ShortOwner();
  EXPECT_THAT(st.message(), HasSubstr("clone c1 of snapshot s: the owner (" + owner));
  EXPECT_THAT(st.message(), HasSubstr("of vm web does not allow clones"));
  EXPECT_TRUE(CheckSpecCloneAllowed(Spec("web", "web", true), "x").ok());
  VmSpec none;
  none.name = "plain";
  EXPECT_TRUE(CheckSpecCloneAllowed(none, "x").ok());

  // An edited policy is not a policy: refused, not read as allowing.
  VmSpec edited = spec;
  edited.policy.replace(edited.policy.find("\"clone\": false"), 14, "\"clone\": true");
  EXPECT_EQ(CheckSpecCloneAllowed(edited, "x").code(), Status::Code::kCorruption);
}

TEST_F(VmPolicyTest, DescribeShowsOwnerRulesAndWhereAClonesPolicyComesFrom) {
  VmSpec clone = Spec("web-c1", "web", true, "web");
  json d = DescribePolicy(clone, {{"snapshot", "warm"}});
  EXPECT_EQ(d["owner"], (*PolicyOf(clone))->ShortOwner());
  EXPECT_EQ(d["bound_to"], "web");
  EXPECT_EQ(d["inherited_from"], json({{"vm", "web"}, {"snapshot", "warm"}}));
  EXPECT_EQ(d["destinations"], "hosts [h2]");
  EXPECT_EQ(d["hold"], json({{"allowed", true}, {"max_seconds", 60}}));
  EXPECT_EQ(d["clone"], true);
  EXPECT_FALSE(DescribePolicy(Spec("web", "web", true), json::object()).contains("inherited_from"));
  VmSpec none;
  none.name = "plain";
  EXPECT_TRUE(DescribePolicy(none, json::object())["owner"].is_null());
}

}  // namespace
}  // namespace ferry::vm
