#include "core/guid.h"

#include <gtest/gtest.h>

namespace ferry {
namespace {

TEST(Guid, ParsesAndPrintsLowerCase) {
  auto g = Guid::Parse("6F1A7C1E-1111-2222-3333-444455556666");
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_EQ(g->ToString(), "6f1a7c1e-1111-2222-3333-444455556666");
}

TEST(Guid, RefusesJunk) {
  for (const char* text :
       {"", "auto", "6f1a7c1e-1111-2222-3333-44445555666", "6f1a7c1e-1111-2222-3333-4444555566667",
        "6f1a7c1e11112222333344445555666677", "6f1a7c1e-1111-2222-3333-44445555666g",
        "6f1a7c1e-1111-2222-3333-444455556666,x", "6f1a7c1e_1111-2222-3333-444455556666",
        "6f1a7c1e-1111-2222-3333,444455556666"}) {
    auto g = Guid::Parse(text, "vmgenid");
    EXPECT_FALSE(g.ok()) << text;
    if (!g.ok()) {
      EXPECT_NE(g.status().message().find("vmgenid"), std::string::npos);
    }
  }
}

TEST(Guid, RandomIsVersion4AndRoundTrips) {
  Guid a = Guid::Random();
  const std::string text = a.ToString();
  EXPECT_EQ(text[14], '4');
  auto back = Guid::Parse(text);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, a);
  EXPECT_NE(Guid::Random(), a);
}

}  // namespace
}  // namespace ferry
