#include "snapshot/ram_image.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace ferry::snapshot {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kPage = 4096;
constexpr uint64_t kMiB = uint64_t{1} << 20;

// RAM files live on tmpfs in production, so the tests run there when they can.
std::string MakeTempDir() {
  for (const char* base : {"/dev/shm", "/tmp"}) {
    std::string tmpl = std::string(base) + "/ferry-ram-XXXXXX";
    if (::mkdtemp(tmpl.data()) != nullptr) return tmpl;
  }
  return "";
}

// Plays the damaging writer: RAM images are 0400, so it first makes the file writable (as the
// owner may) rather than rely on the test running as root.
void WriteAt(const std::string& path, uint64_t offset, const std::string& bytes) {
  ::chmod(path.c_str(), 0600);
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset)),
            static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

std::string ReadAll(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  std::string out;
  char buf[1 << 16];
  ssize_t n;
  while (fd >= 0 && (n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  if (fd >= 0) ::close(fd);
  return out;
}

// Pages the file system holds as data (not holes), found the way the code under test does not
// rely on: walking SEEK_DATA/SEEK_HOLE over the whole file.
std::set<uint64_t> DataPages(const std::string& path) {
  std::set<uint64_t> pages;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st;
  ::fstat(fd, &st);
  off_t pos = 0;
  while (pos < st.st_size) {
    off_t data = ::lseek(fd, pos, SEEK_DATA);
    if (data < 0) break;
    off_t hole = ::lseek(fd, data, SEEK_HOLE);
    for (off_t p = data; p < hole; p += kPage) pages.insert(static_cast<uint64_t>(p) / kPage);
    pos = hole;
  }
  ::close(fd);
  return pages;
}

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() | 1);  // never zero, so no page is all zero
  return s;
}

class RamImageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    ASSERT_FALSE(dir_.empty());
    src_ = dir_ + "/src";
    dst_ = dir_ + "/ram";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void MakeSparse(uint64_t size) {
    int fd = ::open(src_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(size)), 0);
    ::close(fd);
  }

  // 64 MiB, mostly holes: data pages in chunks 0, 5 (two runs) and 63 (last page); an explicitly
  // written all-zero page alone in chunk 20 and one inside chunk 5's data.
  void MakeScatteredSource() {
    MakeSparse(64 * kMiB);
    WriteAt(src_, 0, RandomBytes(kPage, 1));
    WriteAt(src_, 5 * kMiB + 3 * kPage, RandomBytes(2 * kPage, 2));
    WriteAt(src_, 5 * kMiB + 5 * kPage, std::string(kPage, '\0'));
    WriteAt(src_, 5 * kMiB + 6 * kPage, RandomBytes(kPage, 3));
    WriteAt(src_, 20 * kMiB + 7 * kPage, std::string(kPage, '\0'));
    WriteAt(src_, 64 * kMiB - kPage, RandomBytes(kPage, 4));
  }

  std::string dir_, src_, dst_;
};

TEST_F(RamImageTest, CopiesAFullFileByteForByteAndVerifies) {
  MakeSparse(0);
  WriteAt(src_, 0, RandomBytes(3 * kMiB + 5 * kPage + 123, 9));  // last chunk and page partial
  auto image = CopyRamFile(src_, dst_);
  ASSERT_TRUE(image.ok()) << image.status().message();
  EXPECT_EQ(ReadAll(dst_), ReadAll(src_));
  EXPECT_EQ(image->size_bytes, 3 * kMiB + 5 * kPage + 123);
  EXPECT_EQ(image->data_bytes, image->size_bytes);
  ASSERT_EQ(image->chunks.size(), 4u);
  const std::string bytes = ReadAll(src_);
  for (size_t i = 0; i < 4; ++i) {
    const std::string chunk = bytes.substr(i * kMiB, kMiB);
    EXPECT_FALSE(image->chunks[i].zero);
    EXPECT_EQ(image->chunks[i].crc32,
              crc32_z(0, reinterpret_cast<const Bytef*>(chunk.data()), chunk.size()));
  }
  struct stat st;
  ASSERT_EQ(::stat(dst_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0400u);
  EXPECT_TRUE(VerifyRamFile(dst_, *image).ok());
}

TEST_F(RamImageTest, SparseSourceKeepsHolesAndDropsZeroPages) {
  MakeScatteredSource();
  auto image = CopyRamFile(src_, dst_);
  ASSERT_TRUE(image.ok()) << image.status().message();
  EXPECT_EQ(ReadAll(dst_), ReadAll(src_));

  const uint64_t c5 = 5 * kMiB / kPage;
  const std::set<uint64_t> nonzero = {0, c5 + 3, c5 + 4, c5 + 6, 64 * kMiB / kPage - 1};
  EXPECT_EQ(DataPages(dst_), nonzero);  // the two written zero pages became holes
  EXPECT_EQ(image->data_bytes, nonzero.size() * kPage);

  ASSERT_EQ(image->chunks.size(), 64u);
  const std::string bytes = ReadAll(src_);
  for (size_t i = 0; i < 64; ++i) {
    const bool has_data = i == 0 || i == 5 || i == 63;
    EXPECT_EQ(image->chunks[i].zero, !has_data) << "chunk " << i;
    if (has_data) {  // the CRC covers the chunk's zeros too, folded in without reading them
      const std::string chunk = bytes.substr(i * kMiB, kMiB);
      EXPECT_EQ(image->chunks[i].crc32,
                crc32_z(0, reinterpret_cast<const Bytef*>(chunk.data()), chunk.size()))
          << "chunk " << i;
    }
  }
  EXPECT_TRUE(VerifyRamFile(dst_, *image).ok());
}

TEST_F(RamImageTest, AFlippedByteIsReportedWithItsChunkAndOffset) {
  MakeScatteredSource();
  auto image = CopyRamFile(src_, dst_);
  ASSERT_TRUE(image.ok()) << image.status().message();
  std::string page = ReadAll(dst_).substr(5 * kMiB + 6 * kPage, kPage);
  page[100] ^= 0x01;
  WriteAt(dst_, 5 * kMiB + 6 * kPage, page);
  Status st = VerifyRamFile(dst_, *image);
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  EXPECT_THAT(st.message(), HasSubstr("snapshot RAM file " + dst_ +
                                      ": checksum mismatch at chunk 5 (offset 5242880)"));
  EXPECT_THAT(st.message(), HasSubstr("take a new one"));
}

TEST_F(RamImageTest, ATruncatedFileIsReportedWithBothSizes) {
  MakeScatteredSource();
  auto image = CopyRamFile(src_, dst_);
  ASSERT_TRUE(image.ok()) << image.status().message();
  ::chmod(dst_.c_str(), 0600);
  ASSERT_EQ(::truncate(dst_.c_str(), static_cast<off_t>(32 * kMiB)), 0);
  Status st = VerifyRamFile(dst_, *image);
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  EXPECT_THAT(st.message(), HasSubstr(dst_ + ": truncated: 33554432 bytes, expected 67108864"));
}

TEST_F(RamImageTest, AZeroChunkThatNowHoldsDataIsDamage) {
  MakeScatteredSource();
  auto image = CopyRamFile(src_, dst_);
  ASSERT_TRUE(image.ok()) << image.status().message();
  ASSERT_TRUE(image->chunks[40].zero);
  WriteAt(dst_, 40 * kMiB + 12345, "x");
  Status st = VerifyRamFile(dst_, *image);
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  EXPECT_THAT(st.message(), HasSubstr("chunk 40 (offset 41943040), recorded as all zero"));
}

TEST_F(RamImageTest, AZeroChunkWrittenWithZerosStillVerifies) {
  MakeScatteredSource();
  auto image = CopyRamFile(src_, dst_);
  ASSERT_TRUE(image.ok()) << image.status().message();
  WriteAt(dst_, 40 * kMiB, std::string(kMiB, '\0'));  // data on disk, but zero: not damage
  ASSERT_TRUE(DataPages(dst_).count(40 * kMiB / kPage));
  EXPECT_TRUE(VerifyRamFile(dst_, *image).ok());
}

TEST_F(RamImageTest, AnExistingDestinationIsNotTouched) {
  MakeScatteredSource();
  ::close(::open(dst_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  WriteAt(dst_, 0, "keep");
  auto image = CopyRamFile(src_, dst_);
  EXPECT_EQ(image.status().code(), Status::Code::kAlreadyExists);
  EXPECT_EQ(ReadAll(dst_), "keep");
}

TEST_F(RamImageTest, NoSpaceIsResourceExhaustedAndLeavesNothingBehind) {
  MakeScatteredSource();
  RamCopyOptions options;
  options.what = "snapshot web-1@warm";
  int writes = 0;
  options.pwrite = [&](int fd, const void* buf, size_t n, off_t off) -> ssize_t {
    if (++writes == 3) {
      errno = ENOSPC;
      return -1;
    }
    return ::pwrite(fd, buf, n, off);
  };
  auto image = CopyRamFile(src_, dst_, options);
  ASSERT_FALSE(image.ok());
  EXPECT_EQ(image.status().code(), Status::Code::kResourceExhausted);
  EXPECT_THAT(image.status().message(), HasSubstr("snapshot web-1@warm: no space left in " + dir_ +
                                                  " for the RAM image (needs up to "));
  EXPECT_THAT(image.status().message(), ::testing::StartsWith("snapshot web-1@warm: no space"));
  EXPECT_FALSE(std::filesystem::exists(dst_));
}

TEST_F(RamImageTest, AWriteErrorRemovesThePartialCopy) {
  MakeScatteredSource();
  RamCopyOptions options;
  options.pwrite = [](int, const void*, size_t, off_t) -> ssize_t {
    errno = EIO;
    return -1;
  };
  auto image = CopyRamFile(src_, dst_, options);
  EXPECT_EQ(image.status().code(), Status::Code::kInternal);
  EXPECT_EQ(image.status().message().rfind("RAM image copy: cannot write " + dst_, 0), 0u)
      << image.status().message();
  EXPECT_FALSE(std::filesystem::exists(dst_));
}

TEST_F(RamImageTest, AMissingSourceIsNotFound) {
  auto image = CopyRamFile(dir_ + "/nope", dst_);
  EXPECT_EQ(image.status().code(), Status::Code::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(dst_));
}

TEST(RamImageJsonTest, RoundTripsAndRefusesABadTable) {
  RamImage image;
  image.size_bytes = 3 * kMiB;
  image.data_bytes = 8192;
  image.chunks = {{true, 0}, {false, 0x0badf00d}, {false, 0}};
  nlohmann::json j = image.ToJson();
  EXPECT_EQ(j["chunks"], nlohmann::json({"zero", "0badf00d", "00000000"}));
  auto back = RamImage::FromJson(j, "/m.json");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(*back, image);

  auto refuse = [&](nlohmann::json bad, const std::string& why) {
    auto r = RamImage::FromJson(bad, "/m.json");
    ASSERT_FALSE(r.ok()) << bad.dump();
    EXPECT_THAT(r.status().message(), HasSubstr("/m.json"));
    EXPECT_THAT(r.status().message(), HasSubstr(why)) << bad.dump();
  };
  nlohmann::json bad = j;
  bad["chunks"][1] = "xyz";
  refuse(bad, "ram.chunks[1]");
  bad = j;
  bad["chunks"].erase(2);
  refuse(bad, "has 2 entries, the size needs 3");
  bad = j;
  bad["chunk_bytes"] = 1000;
  refuse(bad, "multiple of 4096");
  bad = j;
  bad.erase("size");
  refuse(bad, "ram.size");
  bad = j;
  bad["checksum"] = "crc64";
  refuse(bad, "upgrade ferry");
}

}  // namespace
}  // namespace ferry::snapshot
