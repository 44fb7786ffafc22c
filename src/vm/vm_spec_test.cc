#include "vm/vm_spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ferry::vm {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;

TEST(ParseMemoryTest, AcceptsWholeMiBWithOrWithoutUnits) {
  EXPECT_EQ(*ParseMemoryMiB("256"), 256u);
  EXPECT_EQ(*ParseMemoryMiB("512M"), 512u);
  EXPECT_EQ(*ParseMemoryMiB("512MiB"), 512u);
  EXPECT_EQ(*ParseMemoryMiB("1G"), 1024u);
  EXPECT_EQ(*ParseMemoryMiB("2GiB"), 2048u);
}

TEST(ParseMemoryTest, RefusesWhatIsNotAWholeNumberOfMiB) {
  for (const char* bad : {"256.5", "1.5G", "", "-256", "256K", "12KB", "abc", "256 ", " 256", "0x100"}) {
    auto r = ParseMemoryMiB(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr("whole number of MiB")) << bad;
  }
}

TEST(ParseMemoryTest, RefusesZeroTinyAndAbsurd) {
  EXPECT_THAT(ParseMemoryMiB("0").status().message(), HasSubstr("is zero"));
  EXPECT_THAT(ParseMemoryMiB("32").status().message(), HasSubstr("below the minimum"));
  EXPECT_THAT(ParseMemoryMiB("99999999999999999999").status().message(),
              HasSubstr("not a whole number"));
  EXPECT_THAT(ParseMemoryMiB("2000000G").status().message(), HasSubstr("too large"));
}

TEST(ParseForwardTest, HostColonGuest) {
  auto f = ParseForward("16379:6379");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->host_port, 16379);
  EXPECT_EQ(f->guest_port, 6379);
  EXPECT_FALSE(ParseForward("16379").ok());
  EXPECT_FALSE(ParseForward("1:2:3").ok());
  EXPECT_EQ(ParseForward("0:6379")->host_port, 0) << "0 asks for any free host port";
  EXPECT_FALSE(ParseForward("6379:0").ok());
  EXPECT_FALSE(ParseForward("70000:6379").ok());
  EXPECT_FALSE(ParseForward("a:b").ok());
}

TEST(VmSpecTest, DefaultsAndRoundTrip) {
  auto spec = VmSpec::FromJson({{"name", "web-1"}});
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  EXPECT_EQ(spec->image, "default");
  EXPECT_EQ(spec->memory_mib, 256u);
  EXPECT_EQ(spec->cpus, 1);
  EXPECT_EQ(spec->network.mode, NetworkMode::kUser);

  json full = {{"name", "web-1"},
               {"image", "default"},
               {"memory", "1G"},
               {"cpus", 2},
               {"network", {{"mode", "user"}, {"forwards", {"16379:6379", "8080:80"}}}}};
  auto parsed = VmSpec::FromJson(full);
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(parsed->memory_mib, 1024u);
  ASSERT_EQ(parsed->network.forwards.size(), 2u);
  auto again = VmSpec::FromJson(parsed->ToJson());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *parsed);

  // A clone's binding travels with its spec (in snapshots and migrations).
  full["cloned_from"] = "web";
  auto clone = VmSpec::FromJson(full);
  ASSERT_TRUE(clone.ok()) << clone.status().message();
  EXPECT_EQ(clone->cloned_from, "web");
  EXPECT_EQ(VmSpec::FromJson(clone->ToJson())->cloned_from, "web");
}

TEST(VmSpecTest, DataDiskSizeRoundTripsAndIsBounded) {
  auto none = VmSpec::FromJson({{"name", "db"}});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->disk_mib, 0u);
  EXPECT_FALSE(none->ToJson().contains("disk"));
  for (const json& size : {json("1G"), json(1024), json("1024M")}) {
    auto spec = VmSpec::FromJson({{"name", "db"}, {"disk", size}});
    ASSERT_TRUE(spec.ok()) << size.dump() << ": " << spec.status().message();
    EXPECT_EQ(spec->disk_mib, 1024u);
    auto again = VmSpec::FromJson(spec->ToJson());
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, *spec);
  }
  for (const json& bad : {json("8M"), json("0"), json("1.5G"), json(true), json("17T")}) {
    auto spec = VmSpec::FromJson({{"name", "db"}, {"disk", bad}});
    ASSERT_FALSE(spec.ok()) << bad.dump();
    EXPECT_NE(spec.status().message().find("vm db: disk"), std::string::npos)
        << spec.status().message();
  }
}

TEST(VmSpecTest, RefusalsNameTheVmAndTheField) {
  struct Case {
    json spec;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {json::array(), "JSON object"},
      {{{"image", "default"}}, "needs a \"name\""},
      {{{"name", "Bad Name"}}, "vm name 'Bad Name'"},
      {{{"name", "web-1"}, {"memory_mib", 256.5}}, "vm web-1: memory_mib 256.5 is not a whole number"},
      {{{"name", "web-1"}, {"memory_mib", -1}}, "not a whole number"},
      {{{"name", "web-1"}, {"memory", 256}}, "memory must be a string"},
      {{{"name", "web-1"}, {"memory", "1G"}, {"memory_mib", 1024}}, "either memory or memory_mib"},
      {{{"name", "web-1"}, {"cpus", 0}}, "cpus 0"},
      {{{"name", "web-1"}, {"cpus", 1000}}, "cpus 1000"},
      {{{"name", "web-1"}, {"colour", "blue"}}, "unknown field 'colour'"},
      {{{"name", "web-1"}, {"network", {{"mode", "bridge"}}}},
       "network mode 'bridge' is not supported"},
      {{{"name", "web-1"}, {"network", {{"forwards", {"1:2", "1:3"}}}}}, "forwarded twice"},
      {{{"name", "web-1"}, {"network", {{"forwards", {42}}}}}, "HOST:GUEST"},
      {{{"name", "web-1"}, {"image", "../etc"}}, "image name"},
      {{{"name", "web-1"}, {"cloned_from", "../p"}}, "cloned_from"},
      {{{"name", "web-1"}, {"cloned_from", 7}}, "cloned_from must be a VM name"},
  };
  for (const auto& c : cases) {
    auto r = VmSpec::FromJson(c.spec);
    ASSERT_FALSE(r.ok()) << c.spec.dump();
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << c.spec.dump();
    EXPECT_THAT(r.status().message(), HasSubstr(c.expected)) << c.spec.dump();
  }
}

TEST(VmSpecTest, TapNetworkRoundTripsWithItsDefaults) {
  auto spec = VmSpec::FromJson(
      {{"name", "db-1"}, {"network", {{"mode", "tap"}, {"ip", "10.77.0.10/24"}}}});
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  EXPECT_EQ(spec->network.mode, NetworkMode::kTap);
  EXPECT_EQ(spec->network.bridge, "ferrybr0");
  EXPECT_EQ(spec->network.ip, "10.77.0.10/24");
  EXPECT_EQ(spec->network.gateway, "");
  EXPECT_TRUE(spec->network.forwards.empty());
  json j = spec->ToJson();
  EXPECT_EQ(j["network"]["bridge"], "ferrybr0");
  EXPECT_FALSE(j["network"].contains("gateway"));
  EXPECT_EQ(*VmSpec::FromJson(j), *spec);

  auto full = VmSpec::FromJson({{"name", "db-1"},
                                {"network",
                                 {{"mode", "tap"},
                                  {"bridge", "br-dc1"},
                                  {"ip", "192.168.5.7/16"},
                                  {"gateway", "192.168.0.1"}}}});
  ASSERT_TRUE(full.ok()) << full.status().message();
  EXPECT_EQ(full->network.bridge, "br-dc1");
  EXPECT_EQ(full->network.gateway, "192.168.0.1");
  auto again = VmSpec::FromJson(full->ToJson());
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(*again, *full);
  EXPECT_NE(*again, *spec);
}

TEST(VmSpecTest, UserNetworkJsonIsUnchanged) {
  auto spec = VmSpec::FromJson({{"name", "web-1"}, {"network", {{"forwards", {"16379:6379"}}}}});
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->ToJson()["network"],
            json({{"mode", "user"}, {"forwards", {{{"host_port", 16379}, {"guest_port", 6379}}}}}));
}

TEST(VmSpecTest, TapRefusalsNameTheVmAndTheField) {
  struct Case {
    json network;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{{"mode", "tap"}}, "vm db-1: network.ip is required for tap networking"},
      {{{"mode", "tap"}, {"ip", "10.77.0.10"}}, "network.ip '10.77.0.10' has no prefix length"},
      {{{"mode", "tap"}, {"ip", "10.77.0.300/24"}}, "network.ip '10.77.0.300/24' is not an IPv4"},
      {{{"mode", "tap"}, {"ip", "10.77.0/24"}}, "is not an IPv4 address"},
      {{{"mode", "tap"}, {"ip", "10.77.0.1.2/24"}}, "is not an IPv4 address"},
      {{{"mode", "tap"}, {"ip", "10.077.0.1/24"}}, "is not an IPv4 address"},
      {{{"mode", "tap"}, {"ip", "fe80::1/64"}}, "is not an IPv4 address"},
      {{{"mode", "tap"}, {"ip", "10.77.0.10/33"}}, "prefix length out of 1-32"},
      {{{"mode", "tap"}, {"ip", "10.77.0.10/0"}}, "prefix length out of 1-32"},
      {{{"mode", "tap"}, {"ip", "10.77.0.10/"}}, "prefix length out of 1-32"},
      {{{"mode", "tap"}, {"ip", "10.77.0.0/24"}}, "network or broadcast address"},
      {{{"mode", "tap"}, {"ip", "10.77.0.255/24"}}, "network or broadcast address"},
      {{{"mode", "tap"}, {"ip", "127.0.0.2/8"}}, "not a unicast address"},
      {{{"mode", "tap"}, {"ip", "224.0.0.5/24"}}, "not a unicast address"},
      {{{"mode", "tap"}, {"ip", 42}}, "network.ip must be a string"},
      {{{"mode", "tap"}, {"ip", "10.77.0.10/24"}, {"gateway", "10.78.0.1"}},
       "network.gateway 10.78.0.1 is not another address in 10.77.0.0/24"},
      {{{"mode", "tap"}, {"ip", "10.77.0.10/24"}, {"gateway", "10.77.0.10"}},
       "network.gateway 10.77.0.10 is not another address"},
      {{{"mode", "tap"}, {"ip", "10.77.0.10/24"}, {"gateway", "10.77.0.1/24"}},
       "network.gateway '10.77.0.1/24' is not an IPv4 address"},
      {{{"mode", "tap"}, {"ip", "10.77.0.10/24"}, {"bridge", ""}}, "network.bridge '' is not"},
      {{{"mode", "tap"}, {"ip", "10.77.0.10/24"}, {"bridge", "a-bridge-name-too-long"}},
       "network.bridge 'a-bridge-name-too-long' is not an interface name"},
      {{{"mode", "tap"}, {"ip", "10.77.0.10/24"}, {"bridge", "../x"}}, "network.bridge '../x'"},
      {{{"mode", "tap"}, {"ip", "10.77.0.10/24"}, {"forwards", {"16379:6379"}}},
       "network.forwards: port forwards are for user networking; a VM on tap networking is "
       "reached at its own address 10.77.0.10 on bridge ferrybr0"},
      {{{"mode", "user"}, {"ip", "10.77.0.10/24"}}, "network.ip is only for tap networking"},
      {{{"bridge", "ferrybr0"}}, "network.bridge is only for tap networking"},
      {{{"mode", "tap"}, {"ip", "10.77.0.10/24"}, {"netmask", "255.0.0.0"}},
       "unknown field 'netmask'"},
  };
  for (const auto& c : cases) {
    json spec = {{"name", "db-1"}, {"network", c.network}};
    auto r = VmSpec::FromJson(spec);
    ASSERT_FALSE(r.ok()) << spec.dump();
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << spec.dump();
    EXPECT_THAT(r.status().message(), HasSubstr(c.expected)) << spec.dump();
    EXPECT_THAT(r.status().message(), HasSubstr("vm db-1")) << spec.dump();
  }
}

TEST(ParseIpv4PrefixTest, AddressAndPrefix) {
  auto p = ParseIpv4Prefix("10.77.0.10/24");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->address, 0x0a4d000au);
  EXPECT_EQ(p->prefix, 24);
  EXPECT_TRUE(ParseIpv4Prefix("10.77.0.10/32").ok());
  EXPECT_TRUE(ParseIpv4Prefix("10.77.0.0/31").ok()) << "RFC 3021 point-to-point";
  EXPECT_FALSE(ParseIpv4Prefix("10.77.0.3/30").ok()) << "broadcast of 10.77.0.0/30";
  EXPECT_TRUE(ParseIpv4Prefix("10.77.0.2/30").ok());
}

HostCapacity Roomy() {
  HostCapacity cap;
  cap.mem_available_bytes = uint64_t{8} << 30;
  cap.ram_dir_free_bytes = uint64_t{8} << 30;
  cap.tcp_port_free = [](uint16_t) { return true; };
  return cap;
}

TEST(CheckFitsHostTest, MemoryMustFitBothRamAndTheRamDirectory) {
  VmSpec spec = *VmSpec::FromJson({{"name", "big"}, {"memory", "4G"}});
  EXPECT_TRUE(CheckFitsHost(spec, Roomy()).ok());

  HostCapacity low_mem = Roomy();
  low_mem.mem_available_bytes = uint64_t{2} << 30;
  Status st = CheckFitsHost(spec, low_mem);
  EXPECT_EQ(st.code(), Status::Code::kResourceExhausted);
  EXPECT_THAT(st.message(), HasSubstr("vm big: 4096 MiB of memory requested"));
  EXPECT_THAT(st.message(), HasSubstr("at most 2048 MiB"));

  HostCapacity small_tmpfs = Roomy();
  small_tmpfs.ram_dir_free_bytes = uint64_t{1} << 30;
  EXPECT_THAT(CheckFitsHost(spec, small_tmpfs).message(), HasSubstr("at most 1024 MiB"));
}

TEST(CheckFitsHostTest, ForwardedPortsMustBeFree) {
  VmSpec spec = *VmSpec::FromJson({{"name", "web-1"}, {"network", {{"forwards", {"16379:6379"}}}}});
  HostCapacity busy = Roomy();
  busy.tcp_port_free = [](uint16_t port) { return port != 16379; };
  Status st = CheckFitsHost(spec, busy);
  EXPECT_EQ(st.code(), Status::Code::kResourceExhausted);
  EXPECT_THAT(st.message(), HasSubstr("host port 16379 is already in use"));
}

TEST(CheckFitsHostTest, TapBridgeMustBeUsable) {
  VmSpec spec = *VmSpec::FromJson(
      {{"name", "db-1"}, {"network", {{"mode", "tap"}, {"ip", "10.77.0.10/24"}}}});
  HostCapacity no_bridge = Roomy();
  std::string asked;
  no_bridge.bridge_usable = [&](const std::string& bridge) {
    asked = bridge;
    return Status::FailedPrecondition("bridge " + bridge + " does not exist on this host");
  };
  Status st = CheckFitsHost(spec, no_bridge);
  EXPECT_EQ(st.code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ(st.message(), "vm db-1: bridge ferrybr0 does not exist on this host");
  EXPECT_EQ(asked, "ferrybr0");

  HostCapacity with_bridge = Roomy();
  with_bridge.bridge_usable = [](const std::string&) { return Status::Ok(); };
  EXPECT_TRUE(CheckFitsHost(spec, with_bridge).ok());
  // User networking never asks about bridges.
  VmSpec user = *VmSpec::FromJson({{"name", "web-1"}});
  EXPECT_TRUE(CheckFitsHost(user, no_bridge).ok());
}

}  // namespace
TEST(NetworkModeTest, NamesRoundTripAndOtherNamesAreRefused) {
  for (NetworkMode mode : {NetworkMode::kUser, NetworkMode::kTap}) {
    EXPECT_EQ(NetworkModeFromName(NetworkModeName(mode)), mode);
  }
  EXPECT_STREQ(NetworkModeName(NetworkMode::kTap), "tap");
  EXPECT_EQ(NetworkModeFromName("bridge"), std::nullopt);
  EXPECT_EQ(NetworkModeFromName("TAP"), std::nullopt);
  EXPECT_EQ(NetworkModeFromName(""), std::nullopt);
}

}  // namespace ferry::vm
