#include "guest/ballast.h"

#include <gtest/gtest.h>

#include <set>

namespace ferry::guest {
namespace {

TEST(BallastTest, HoldsExactlyWhatIsAskedFilledWithBytesThatDoNotRepeat) {
  Ballast b;
  EXPECT_EQ(b.Resize(3, 100, 42), "");
  EXPECT_EQ(b.mib(), 3u);
  // Every MiB differs from the others (no chunk of it deduplicates against another).
  std::set<std::string> heads;
  for (uint64_t i = 0; i < 3; ++i) {
    std::string head;
    for (size_t o = 0; o < 64; ++o) head.push_back(static_cast<char>(b.At(i, o)));
    heads.insert(head);
  }
  EXPECT_EQ(heads.size(), 3u);
  EXPECT_EQ(b.Resize(1, 100, 7), "");
  EXPECT_EQ(b.mib(), 1u);
  EXPECT_EQ(b.Resize(0, 100, 7), "");
  EXPECT_EQ(b.mib(), 0u);
}

TEST(BallastTest, GrowthBeyondWhatTheGuestCanSpareIsRefused) {
  Ballast b;
  ASSERT_EQ(b.Resize(2, 100, 1), "");
  const std::string refused = b.Resize(10, 5, 1);
  EXPECT_NE(refused.find("can spare only 5 MiB"), std::string::npos) << refused;
  EXPECT_EQ(b.mib(), 2u);
  EXPECT_NE(b.Resize(Ballast::kMaxMiB + 1, UINT64_MAX, 1), "");
}

TEST(BallastTest, MemAvailableIsReadFromMeminfo) {
  EXPECT_EQ(MemAvailableMiB("MemTotal: 1000 kB\nMemAvailable:  204800 kB\n"), 200u);
  EXPECT_EQ(MemAvailableMiB("MemTotal: 1000 kB\n"), 0u);
}

}  // namespace
}  // namespace ferry::guest
