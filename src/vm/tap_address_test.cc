#include "vm/tap_address.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ferry::vm {
namespace {

using ::testing::HasSubstr;

TEST(TapAddressTest, ClonesCountUpFromTheFirstAddress) {
  EXPECT_EQ(*NthCloneAddress("10.77.0.21/24", 0), "10.77.0.21/24");
  EXPECT_EQ(*NthCloneAddress("10.77.0.21/24", 2), "10.77.0.23/24");
  // Across an octet, inside a wider subnet.
  EXPECT_EQ(*NthCloneAddress("10.77.0.254/16", 3), "10.77.1.1/16");
}

TEST(TapAddressTest, CountingUpNeverLeavesTheSubnetOrTakesItsBroadcast) {
  EXPECT_EQ(*NthCloneAddress("10.77.0.253/24", 1), "10.77.0.254/24");
  auto broadcast = NthCloneAddress("10.77.0.253/24", 2);
  ASSERT_FALSE(broadcast.ok());
  EXPECT_EQ(broadcast.status().message(),
            "clone 3 counting up from 10.77.0.253/24 would leave the subnet 10.77.0.0/24 (2 clones "
            "fit); give a lower --ip or fewer clones");
  EXPECT_FALSE(NthCloneAddress("255.255.255.254/32", 1).ok());  // no wrap-around past 2^32
  EXPECT_FALSE(NthCloneAddress("10.77.0.21/24", -1).ok());
  // /31 has no broadcast address (RFC 3021): both are hosts.
  EXPECT_EQ(*NthCloneAddress("10.77.0.0/31", 1), "10.77.0.1/31");
  EXPECT_FALSE(NthCloneAddress("10.77.0.0/31", 2).ok());
  EXPECT_THAT(NthCloneAddress("10.77.0/24", 0).status().message(),
              HasSubstr("is not an IPv4 address"));
}

TEST(TapAddressTest, OutsideTheBridgesSubnetIsRefused) {
  const std::vector<Ipv4Prefix> bridge = {{0x0a4d0001, 24}};
  EXPECT_TRUE(CheckAddressOnBridge("c", "10.77.0.254/24", "br", bridge).ok());
  EXPECT_THAT(CheckAddressOnBridge("c", "10.77.1.2/24", "br", bridge).message(),
              HasSubstr("outside the subnet of bridge br (10.77.0.0/24)"));
}

TEST(TapAddressTest, FormatsDottedQuads) {
  EXPECT_EQ(FormatIpv4Address(0x0a4d0015), "10.77.0.21");
  EXPECT_EQ(FormatIpv4Address(0xffffffff), "255.255.255.255");
}

}  // namespace
}  // namespace ferry::vm
