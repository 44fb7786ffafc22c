#include "snapshot/ram_scan.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <string>

namespace ferry::snapshot {
namespace {

uint32_t Crc(const std::string& s) {
  return static_cast<uint32_t>(crc32_z(0, reinterpret_cast<const Bytef*>(s.data()), s.size()));
}

TEST(Crc32AppendZerosTest, MatchesCrcOverRealZeros) {
  for (const std::string& prefix : {std::string(), std::string("ferry"), std::string(5000, '\x7f')}) {
    for (uint64_t n : {uint64_t{1}, uint64_t{7}, uint64_t{4096}, uint64_t{1} << 20,
                       (uint64_t{1} << 20) + 13}) {
      EXPECT_EQ(Crc32AppendZeros(Crc(prefix), n), Crc(prefix + std::string(n, '\0')))
          << "prefix " << prefix.size() << " zeros " << n;
    }
  }
  EXPECT_EQ(Crc32AppendZeros(Crc("x"), 0), Crc("x"));
}

}  // namespace
}  // namespace ferry::snapshot
