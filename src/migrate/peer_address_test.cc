#include "migrate/peer_address.h"

#include <gtest/gtest.h>

namespace ferry::migrate {
namespace {

TEST(PeerAddressTest, ParsesHostPortAndBracketedIpv6) {
  auto v4 = ParsePeerAddress("10.0.0.2:7700");
  ASSERT_TRUE(v4.ok()) << v4.status().message();
  EXPECT_EQ(v4->host, "10.0.0.2");
  EXPECT_EQ(v4->port, 7700);
  EXPECT_EQ(v4->ToString(), "10.0.0.2:7700");

  auto name = ParsePeerAddress("host-b.example:0");
  ASSERT_TRUE(name.ok());
  EXPECT_EQ(name->host, "host-b.example");
  EXPECT_EQ(name->port, 0);

  auto v6 = ParsePeerAddress("[::1]:65535");
  ASSERT_TRUE(v6.ok()) << v6.status().message();
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 65535);
  EXPECT_EQ(v6->ToString(), "[::1]:65535");
}

TEST(PeerAddressTest, RefusesMalformedAddresses) {
  for (const char* bad : {"", "host", ":7700", "host:", "host:65536", "host:-1", "host:77x",
                          "::1:7700", "[::1]7700", "[::1", "[]:7700"}) {
    auto parsed = ParsePeerAddress(bad);
    EXPECT_FALSE(parsed.ok()) << bad;
    if (!parsed.ok()) {
      EXPECT_EQ(parsed.status().code(), Status::Code::kInvalidArgument);
      EXPECT_NE(parsed.status().message().find("host:port"), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace ferry::migrate
