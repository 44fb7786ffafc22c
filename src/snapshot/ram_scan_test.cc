#include "snapshot/ram_scan.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <string>

namespace ferry::snapshot {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;

uint32_t Crc(const std::string& s) {
  return static_cast<uint32_t>(crc32_z(0, reinterpret_cast<const Bytef*>(s.data()), s.size()));
}

TEST(Crc32AppendZerosTest, MatchesCrcOverRealZeros) {
  for (const std::string& prefix :
       {std::string(), std::string("ferry"), std::string(5000, '\x7f')}) {
    for (uint64_t n :
         {uint64_t{1}, uint64_t{7}, uint64_t{4096}, uint64_t{1} << 20, (uint64_t{1} << 20) + 13}) {
      EXPECT_EQ(Crc32AppendZeros(Crc(prefix), n), Crc(prefix + std::string(n, '\0')))
          << "prefix " << prefix.size() << " zeros " << n;
    }
  }
  EXPECT_EQ(Crc32AppendZeros(Crc("x"), 0), Crc("x"));
}

// The point of the scanner: a mostly-hole RAM file costs reads of its data only.
TEST(RamScannerTest, ReadsOnlyDataExtents) {
  std::string path;
  int fd = -1;
  for (const char* base : {"/dev/shm", "/tmp"}) {  // tmpfs first: where RAM files live
    path = std::string(base) + "/ferry-scan-XXXXXX";
    if ((fd = ::mkstemp(path.data())) >= 0) break;
  }
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(16 * kMiB)), 0);
  const std::string page(4096, 'r');
  ASSERT_EQ(::pwrite(fd, page.data(), page.size(), static_cast<off_t>(9 * kMiB + 8192)), 4096);
  RamScanner scanner(fd, path, 16 * kMiB, kMiB);
  for (uint64_t i = 0; i < scanner.chunk_count(); ++i) {
    auto digest = scanner.ScanChunk(i);
    ASSERT_TRUE(digest.ok()) << digest.status().message();
    EXPECT_EQ(digest->zero, i != 9) << "chunk " << i;
  }
  EXPECT_EQ(scanner.bytes_read(), 4096u);
  ::close(fd);
  ::unlink(path.c_str());
}

}  // namespace
}  // namespace ferry::snapshot
