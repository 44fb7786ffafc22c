#include "snapshot/ram_digest.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "snapshot/ram_scan.h"

namespace ferry::snapshot {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kMiB = uint64_t{1} << 20;

// An image file written page by page the way a pre-copy writes one, with its RamDigest beside it.
class DigestedFile {
 public:
  explicit DigestedFile(uint64_t size) : digest_(size) {
    for (const char* base : {"/dev/shm", "/tmp"}) {  // tmpfs first: where RAM images live
      dir_ = std::string(base) + "/ferry-digest-XXXXXX";
      if (::mkdtemp(dir_.data()) != nullptr) break;
    }
    path_ = dir_ + "/ram";
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    EXPECT_GE(fd_, 0);
    EXPECT_EQ(::ftruncate(fd_, static_cast<off_t>(size)), 0);
  }
  ~DigestedFile() {
    ::close(fd_);
    std::filesystem::remove_all(dir_);
  }
  void Write(uint64_t page, const std::vector<uint8_t>& bytes) {
    ASSERT_EQ(::pwrite(fd_, bytes.data(), kPageBytes, static_cast<off_t>(page * kPageBytes)),
              static_cast<ssize_t>(kPageBytes));
    digest_.SetPage(page, bytes.data());
  }
  // A page zeroed again: written with zeros, as the stream split does.
  void Zero(uint64_t page) {
    const std::vector<uint8_t> zeros(kPageBytes, 0);
    ASSERT_EQ(::pwrite(fd_, zeros.data(), kPageBytes, static_cast<off_t>(page * kPageBytes)),
              static_cast<ssize_t>(kPageBytes));
    digest_.ClearPage(page);
  }
  RamImage Image(uint64_t chunk_bytes = RamImage::kDefaultChunkBytes) const {
    auto image = digest_.Image(chunk_bytes);
    EXPECT_TRUE(image.ok()) << image.status().message();
    return image.ok() ? *image : RamImage{};
  }
  // What the copy path computes from the file: CopyRamFile's digest of a copy of it.
  RamImage Scanned(uint64_t chunk_bytes = RamImage::kDefaultChunkBytes) const {
    RamCopyOptions options;
    options.chunk_bytes = chunk_bytes;
    const std::string copy = dir_ + "/copy-" + std::to_string(copies_++);
    auto image = CopyRamFile(path_, copy, options);
    EXPECT_TRUE(image.ok()) << image.status().message();
    return image.ok() ? *image : RamImage{};
  }
  const std::string& path() const { return path_; }

 private:
  std::string dir_, path_;
  int fd_ = -1;
  RamDigest digest_;
  mutable int copies_ = 0;
};

std::vector<uint8_t> RandomPage(std::mt19937_64& rng) {
  std::vector<uint8_t> page(kPageBytes);
  for (auto& b : page) b = static_cast<uint8_t>(rng());
  page[rng() % kPageBytes] |= 1;  // never all zero
  return page;
}

// The promise: the table kept as pages came, in any order, rewritten or zeroed again, is the one
// the file yields when read, so clones check it as they check a copied image.
TEST(RamDigestTest, TheTableKeptWhileWritingIsTheOneTheFileYields) {
  // 5 MiB and a half: the last chunk is short; chunks of 1 MiB and of 64 KiB.
  const uint64_t size = 5 * kMiB + kMiB / 2;
  DigestedFile file(size);
  std::mt19937_64 rng(14);
  const uint64_t pages = size / kPageBytes;
  for (int i = 0; i < 600; ++i) file.Write(rng() % pages, RandomPage(rng));
  for (int i = 0; i < 100; ++i) file.Zero(rng() % pages);
  for (int i = 0; i < 200; ++i) file.Write(rng() % pages, RandomPage(rng));  // sent again
  file.Write(pages - 1, RandomPage(rng));
  for (uint64_t chunk_bytes : {RamImage::kDefaultChunkBytes, uint64_t{64} << 10}) {
    const RamImage kept = file.Image(chunk_bytes);
    EXPECT_EQ(kept, file.Scanned(chunk_bytes)) << "chunk " << chunk_bytes;
    EXPECT_TRUE(VerifyRamFile(file.path(), kept).ok());
  }
  EXPECT_GT(file.Image().data_bytes, 0u);
}

TEST(RamDigestTest, UntouchedAndZeroedChunksAreZeroAndTheTailPastTheLastPageCounts) {
  // 3 MiB + 8 KiB: the image is longer than the guest's pages (under TCG QEMU maps 8 KiB less).
  DigestedFile file(3 * kMiB + 8192);
  std::mt19937_64 rng(1);
  file.Write(10, RandomPage(rng));
  file.Zero(10);  // chunk 0: data, then zero again
  file.Write(256 + 3, RandomPage(rng));
  const RamImage kept = file.Image();
  ASSERT_EQ(kept.chunks.size(), 4u);
  EXPECT_TRUE(kept.chunks[0].zero);
  EXPECT_FALSE(kept.chunks[1].zero);
  EXPECT_TRUE(kept.chunks[2].zero);
  EXPECT_TRUE(kept.chunks[3].zero);
  EXPECT_EQ(kept.data_bytes, kPageBytes);
  EXPECT_EQ(kept, file.Scanned());
}

// A damaged image fails the clone's check against the kept table, naming the chunk.
TEST(RamDigestTest, AByteChangedAfterTheCopyIsCaughtAtItsChunk) {
  DigestedFile file(4 * kMiB);
  std::mt19937_64 rng(2);
  for (uint64_t p = 0; p < 1024; p += 3) file.Write(p, RandomPage(rng));
  const RamImage kept = file.Image();
  ASSERT_TRUE(VerifyRamFile(file.path(), kept).ok());
  const int fd = ::open(file.path().c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  const char flipped = 0x55;
  ASSERT_EQ(::pwrite(fd, &flipped, 1, static_cast<off_t>(2 * kMiB + 3 * kPageBytes + 17)), 1);
  ::close(fd);
  Status st = VerifyRamFile(file.path(), kept);
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  EXPECT_THAT(st.message(), HasSubstr("checksum mismatch at chunk 2"));
}

TEST(RamDigestTest, ABadChunkSizeOrNoCrcsIsRefused) {
  RamDigest digest(kMiB);
  EXPECT_EQ(digest.Image(0).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(digest.Image(1000).status().code(), Status::Code::kInvalidArgument);
  RamDigest marks_only(kMiB, /*crcs=*/false);
  marks_only.MarkData(3);
  EXPECT_TRUE(marks_only.HoldsData(3));
  EXPECT_EQ(marks_only.Image().status().code(), Status::Code::kFailedPrecondition);
}

}  // namespace
}  // namespace ferry::snapshot
