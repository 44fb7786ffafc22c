#include "snapshot/crc32.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace ferry::snapshot {
namespace {

TEST(Crc32Test, MatchesTheStandardCheckValue) {
  EXPECT_EQ(Crc32(0, "123456789", 9), 0xCBF43926u);
  const std::vector<uint8_t> zeros(4096, 0);
  EXPECT_EQ(Crc32(0, zeros.data(), zeros.size()), internal::Crc32Zlib(0, zeros.data(), 4096));
}

// Every length around the folding's edges (64, multiples of 16, a tail), odd alignments and a
// running CRC: the chunk table written by one path is checked by the other.
TEST(Crc32Test, AgreesWithZlibAtEveryLengthAlignmentAndStart) {
  std::mt19937_64 rng(14);
  std::vector<uint8_t> data(8192 + 64);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  for (size_t size = 0; size <= 1100; ++size) {
    for (size_t align : {0, 1, 7, 13}) {
      for (uint32_t start : {0u, 0xdeadbeefu, 0xffffffffu}) {
        ASSERT_EQ(Crc32(start, data.data() + align, size),
                  internal::Crc32Zlib(start, data.data() + align, size))
            << "size " << size << " align " << align << " start " << start;
      }
    }
  }
  for (size_t size : {4095, 4096, 4097, 8192}) {
    EXPECT_EQ(Crc32(0, data.data() + 3, size), internal::Crc32Zlib(0, data.data() + 3, size));
  }
}

TEST(Crc32Test, ChainsLikeOneCall) {
  std::string s(10000, '\0');
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>(i * 31 + 7);
  const uint32_t whole = Crc32(0, s.data(), s.size());
  EXPECT_EQ(Crc32(Crc32(0, s.data(), 4096), s.data() + 4096, s.size() - 4096), whole);
  EXPECT_EQ(Crc32(Crc32(0, s.data(), 5), s.data() + 5, s.size() - 5), whole);
}

}  // namespace
}  // namespace ferry::snapshot
