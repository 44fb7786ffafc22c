#include "core/mac_address.h"

#include <gtest/gtest.h>

namespace ferry {
namespace {

TEST(MacAddress, ParsesAndPrintsCanonically) {
  auto mac = MacAddress::Parse("52:54:00:AB:cd:0f");
  ASSERT_TRUE(mac.ok()) << mac.status().message();
  EXPECT_EQ(mac->ToString(), "52:54:00:ab:cd:0f");
  auto dashed = MacAddress::Parse("52-54-00-ab-cd-0f");
  ASSERT_TRUE(dashed.ok());
  EXPECT_EQ(*dashed, *mac);
}

TEST(MacAddress, RefusesWhatIsNotSixUnicastOctets) {
  for (const char* text :
       {"", "52:54:00:00:00:01,romfile=/etc/ferry/tls/host.key", "52:54:00:00:00:1",
        "52:54:00:00:00:001", "52:54:00:00:00:0g", "52:54:00-00:00:01", "52,54,00,00,00,01",
        "01:00:5e:00:00:01" /* multicast */, "ff:ff:ff:ff:ff:ff", "00:00:00:00:00:00",
        "52:54:00:00:00:01\n"}) {
    auto mac = MacAddress::Parse(text, "the MAC of vm a");
    EXPECT_FALSE(mac.ok()) << text;
    if (!mac.ok()) {
      EXPECT_NE(mac.status().message().find("the MAC of vm a"), std::string::npos);
    }
  }
}

TEST(MacAddress, ErrorShowsOnlyPrintableStart) {
  auto mac = MacAddress::Parse(std::string(100, 'x') + "\x1b[2J");
  ASSERT_FALSE(mac.ok());
  EXPECT_EQ(mac.status().message().find('\x1b'), std::string::npos);
  EXPECT_LT(mac.status().message().size(), 200u);
}

TEST(MacAddress, RandomIsUnicastInQemuPrefix) {
  MacAddress a = MacAddress::Random(), b = MacAddress::Random();
  EXPECT_EQ(a.ToString().substr(0, 9), "52:54:00:");
  EXPECT_TRUE(MacAddress::Parse(a.ToString()).ok());
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace ferry
