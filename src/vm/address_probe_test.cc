#include "vm/address_probe.h"

#include <gtest/gtest.h>

namespace ferry::vm {
namespace {

VmSpec Clone(const std::string& name, NetworkMode mode, const std::string& bridge) {
  VmSpec spec;
  spec.name = name;
  spec.network.mode = mode;
  spec.network.bridge = bridge;
  spec.network.ip = "10.77.0.21/24";
  return spec;
}

TEST(AddressProbeTest, ClonesOnUserNetworkingHaveNothingToProbe) {
  auto probe = AddressProbe::Start({Clone("u1", NetworkMode::kUser, "")});
  EXPECT_TRUE(probe->Wait().ok());
  EXPECT_TRUE(probe->WaitFor("u1").ok());
}

// A probe that cannot be made fails every clone of the request, each waiter alike, with the
// probe's own words (no clone's name to take off).
TEST(AddressProbeTest, AProbeThatCannotBeMadeFailsTheRequest) {
  auto probe = AddressProbe::Start(
      {Clone("t1", NetworkMode::kTap, "ferry-nobr0"), Clone("u1", NetworkMode::kUser, "")});
  const Status st = probe->Wait();
  EXPECT_EQ(st.code(), Status::Code::kUnavailable);
  EXPECT_EQ(st.message().rfind("probing bridge ferry-nobr0 for addresses in use (ARP)", 0), 0u)
      << st.message();
  EXPECT_EQ(probe->WaitFor("t1").message(), st.message());
}

}  // namespace
}  // namespace ferry::vm
