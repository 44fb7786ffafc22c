#include "core/interface_name.h"

#include <gtest/gtest.h>

namespace ferry {
namespace {

TEST(InterfaceName, AcceptsKernelStyleNames) {
  for (const char* text : {"ferrybr0", "br-lan.10", "a", "fy_0123456789ab", "VLAN.7"}) {
    auto name = InterfaceName::Parse(text);
    ASSERT_TRUE(name.ok()) << text << ": " << name.status().message();
    EXPECT_EQ(name->str(), text);
  }
}

TEST(InterfaceName, RefusesWhatCouldEscapeOrIsTooLong) {
  for (const char* text : {"", ".", "..", "-br", "fy_0123456789abc" /* 16 */, "br0,script=/x",
                           "br 0", "br/0", "br:0", "br0\n", "bré"}) {
    auto name = InterfaceName::Parse(text, "network.bridge");
    EXPECT_FALSE(name.ok()) << text;
    if (!name.ok()) {
      EXPECT_NE(name.status().message().find("network.bridge"), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace ferry
