#include "vm/tap_sweep.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ferry::vm {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr const char* kState = "/var/lib/ferry";

VmRecord Vm(const std::string& name, const std::string& id, VmState state,
            NetworkMode mode = NetworkMode::kTap) {
  VmRecord r;
  r.spec.name = name;
  r.spec.network.mode = mode;
  r.id = id;
  r.state = state;
  return r;
}

// The tap this ferryd would have made for VM `id`.
TunLink Ours(const std::string& id) { return {TapDevice::NameFor(id), TapAlias(kState, id)}; }

std::vector<std::string> Names(const std::vector<TapLeftover>& taps) {
  std::vector<std::string> names;
  for (const auto& t : taps) names.push_back(t.name);
  return names;
}

TEST(TapSweepTest, TheAliasNamesTheFerrydAndTheVm) {
  EXPECT_EQ(TapAlias(kState, "0123456789abcdef"), "ferryd /var/lib/ferry vm 0123456789abcdef");
  // Never longer than the kernel takes (255 bytes), however long the state directory.
  const std::string deep = "/" + std::string(300, 'd');
  const std::string alias = TapAlias(deep, "0123456789abcdef");
  EXPECT_LE(alias.size(), 255u);
  EXPECT_NE(alias, TapAlias(deep + "x", "0123456789abcdef"));
  EXPECT_EQ(alias, TapAlias(deep, "0123456789abcdef"));
}

TEST(TapSweepTest, OnlyThisFerrydsTapsOnWhichNoQemuRunsGo) {
  const std::vector<VmRecord> vms = {
      Vm("web", "1111111111111111", VmState::kRunning),
      Vm("paused", "2222222222222222", VmState::kPaused),
      Vm("off", "3333333333333333", VmState::kStopped),
      Vm("dead", "4444444444444444", VmState::kFailed),
      Vm("user", "5555555555555555", VmState::kRunning, NetworkMode::kUser),
  };
  // The last one's VM is gone from the registry.
  const std::vector<TunLink> links = {Ours("1111111111111111"), Ours("2222222222222222"),
                                      Ours("3333333333333333"), Ours("4444444444444444"),
                                      Ours("5555555555555555"), Ours("9999999999999999")};
  std::vector<TapLeftover> gone = FindTapLeftovers(links, vms, kState);
  EXPECT_EQ(Names(gone),
            (std::vector<std::string>{"fy33333333", "fy44444444", "fy55555555", "fy99999999"}));
  EXPECT_THAT(gone[0].why, HasSubstr("vm off is stopped"));
  EXPECT_THAT(gone[1].why, HasSubstr("vm dead is failed"));
  EXPECT_THAT(gone[2].why, HasSubstr("vm user is not on tap networking"));
  EXPECT_THAT(gone[3].why, HasSubstr("is in no record"));
}

TEST(TapSweepTest, TapsThisFerrydDidNotMakeStay) {
  const std::vector<VmRecord> none;
  const std::string id = "9999999999999999";
  const std::vector<TunLink> links = {
      // Made by hand, or by a ferryd from before taps had aliases.
      {TapDevice::NameFor(id), ""},
      // Another ferryd's, one whose state directory merely begins like this one's.
      {TapDevice::NameFor(id), TapAlias("/other/state", id)},
      {TapDevice::NameFor(id), TapAlias(kState + std::string("2"), id)},
      // This ferryd's alias on an interface of another name, and an alias without a VM id.
      {"fy12345678", TapAlias(kState, id)},
      {"tap0", "ferryd /var/lib/ferry vm "},
  };
  EXPECT_THAT(FindTapLeftovers(links, none, kState), IsEmpty());
  EXPECT_THAT(FindTapLeftovers({Ours(id)}, none, kState), SizeIs(1));
}

}  // namespace
}  // namespace ferry::vm
