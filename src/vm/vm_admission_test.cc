#include "vm/vm_admission.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ferry::vm {
namespace {

using ::testing::HasSubstr;

VmSpec SpecWithForward(const std::string& name, uint16_t host_port) {
  VmSpec spec;
  spec.name = name;
  spec.network.forwards = {{host_port, 6379}};
  return spec;
}

VmSpec TapSpec(const std::string& name, const std::string& ip) {
  VmSpec spec;
  spec.name = name;
  spec.network.mode = NetworkMode::kTap;
  spec.network.bridge = "ferrybr0";
  spec.network.ip = ip;
  return spec;
}

HostCapacity Roomy() {
  HostCapacity c;
  c.mem_available_bytes = uint64_t{64} << 30;
  c.ram_dir_free_bytes = uint64_t{64} << 30;
  c.tcp_port_free = [](uint16_t) { return true; };
  return c;
}

TEST(VmAdmissionTest, AHostPortHeldByAnotherVmIsRefusedNamingIt) {
  const std::vector<NetworkClaim> claims = {{"db", SpecWithForward("db", 16379).network}};
  Status st = CheckPortsUnclaimed(SpecWithForward("web", 16379), claims);
  EXPECT_EQ(st.code(), Status::Code::kResourceExhausted);
  EXPECT_THAT(st.message(), HasSubstr("host port 16379 is used by vm db"));
  EXPECT_TRUE(CheckPortsUnclaimed(SpecWithForward("web", 16380), claims).ok());
  // A VM's own claim (a start of a stopped VM) is no conflict.
  EXPECT_TRUE(CheckPortsUnclaimed(SpecWithForward("db", 16379), claims).ok());
}

TEST(VmAdmissionTest, OneAddressOnOneBridgeIsOneVms) {
  const std::vector<NetworkClaim> claims = {{"a", TapSpec("a", "10.77.0.10/24").network}};
  EXPECT_THAT(CheckPortsUnclaimed(TapSpec("b", "10.77.0.10/16"), claims).message(),
              HasSubstr("address 10.77.0.10/16 on bridge ferrybr0 is used by vm a"));
  EXPECT_TRUE(CheckPortsUnclaimed(TapSpec("b", "10.77.0.11/24"), claims).ok());
}

TEST(VmAdmissionTest, APickedPortIsNeitherClaimedNorZero) {
  const std::vector<NetworkClaim> claims = {{"db", SpecWithForward("db", 40000).network}};
  std::vector<uint16_t> offered = {0, 40000, 40001};
  size_t next = 0;
  auto kernel = [&] { return offered[next++ % offered.size()]; };
  EXPECT_EQ(PickFreePort(SpecWithForward("web", 0), claims, kernel), 40001);
  EXPECT_EQ(PickFreePort(SpecWithForward("web", 0), claims, [] { return uint16_t{0}; }), 0);
}

TEST(VmAdmissionTest, ATapCloneNeedsAnAddressInItsBridgesSubnet) {
  const std::vector<Ipv4Prefix> bridge = {{0x0a4d0001, 24}};  // 10.77.0.1/24
  EXPECT_TRUE(AdmitTapClone(TapSpec("c", "10.77.0.21/24"), bridge).ok());
  EXPECT_TRUE(AdmitTapClone(SpecWithForward("c", 1), {}).ok());  // user networking: no rule
  EXPECT_EQ(AdmitTapClone(TapSpec("c", "10.78.0.21/24"), bridge).message(),
            "vm c: address 10.78.0.21/24 is outside the subnet of bridge ferrybr0 (10.77.0.0/24); "
            "choose an --ip in it");
  // The same network under another prefix is another subnet.
  EXPECT_FALSE(AdmitTapClone(TapSpec("c", "10.77.0.21/16"), bridge).ok());
  EXPECT_THAT(AdmitTapClone(TapSpec("c", "10.77.0.1/24"), bridge).message(),
              HasSubstr("is bridge ferrybr0's own address"));
  EXPECT_THAT(AdmitTapClone(TapSpec("c", "10.77.0.21/24"), {}).message(),
              HasSubstr("bridge ferrybr0 has no IPv4 address"));
  // Any of the bridge's subnets will do.
  EXPECT_TRUE(AdmitTapClone(TapSpec("c", "192.168.5.9/24"), {{0x0a4d0001, 24}, {0xc0a80501, 24}})
                  .ok());
}

TEST(VmAdmissionTest, AnAddressThatAnsweredAProbeIsRefusedInOneLine) {
  EXPECT_EQ(AddressInUse(TapSpec("c2", "10.77.0.200/24"), "02:00:00:00:00:c8").message(),
            "vm c2: address 10.77.0.200/24 is in use on bridge ferrybr0 (02:00:00:00:00:c8 "
            "answered a duplicate address probe); nothing was started; choose another --ip");
}

TEST(VmAdmissionTest, ANewVmGetsItsFreePortsAndMustFit) {
  VmSpec spec = SpecWithForward("web", 0);
  ASSERT_TRUE(AdmitNewVm(spec, VmPaths::ForDir("/tmp/vms/web"), false, {}, Roomy(), [] {
                return uint16_t{41000};
              }).ok());
  EXPECT_EQ(spec.network.forwards[0].host_port, 41000);

  HostCapacity full = Roomy();
  full.ram_dir_free_bytes = 0;
  VmSpec big = SpecWithForward("big", 1);
  EXPECT_FALSE(AdmitNewVm(big, VmPaths::ForDir("/tmp/vms/big"), false, {}, full, [] {
                 return uint16_t{1};
               }).ok());
  // A clone maps its snapshot's RAM image: no room on the RAM directory needed.
  EXPECT_TRUE(AdmitNewVm(big, VmPaths::ForDir("/tmp/vms/big"), true, {}, full, [] {
                return uint16_t{1};
              }).ok());

  VmSpec deep = SpecWithForward("deep", 1);
  Status st = AdmitNewVm(deep, VmPaths::ForDir("/tmp/" + std::string(120, 'd')), false, {}, Roomy(),
                         [] { return uint16_t{1}; });
  EXPECT_THAT(st.message(), HasSubstr("is too long for a UNIX socket"));
}

}  // namespace
}  // namespace ferry::vm
