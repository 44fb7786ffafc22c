#include "snapshot/verified_files.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace ferry::snapshot {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kMiB = uint64_t{1} << 20;

int64_t RealNowNs() {
  struct timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

class VerifiedFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* base : {"/dev/shm", "/tmp"}) {
      std::string tmpl = std::string(base) + "/ferry-verified-XXXXXX";
      if (::mkdtemp(tmpl.data()) != nullptr) {
        dir_ = tmpl;
        break;
      }
    }
    ASSERT_FALSE(dir_.empty());
    ram_ = dir_ + "/ram";
    image_ = MakeRam(ram_, 1);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A 4 MiB RAM image with some data, whose timestamps are set long in the past so that a later
  // write moves mtime on any kernel, whatever its timestamp granularity.
  RamImage MakeRam(const std::string& path, uint64_t seed) {
    const std::string src = path + ".src";
    int fd = ::open(src.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    EXPECT_EQ(::ftruncate(fd, static_cast<off_t>(4 * kMiB)), 0);
    std::mt19937_64 rng(seed);
    std::string data(64 * 1024, '\0');
    for (auto& c : data) c = static_cast<char>(rng() | 1);
    EXPECT_EQ(::pwrite(fd, data.data(), data.size(), static_cast<off_t>(kMiB)),
              static_cast<ssize_t>(data.size()));
    ::close(fd);
    auto image = CopyRamFile(src, path);
    EXPECT_TRUE(image.ok()) << image.status().message();
    ::unlink(src.c_str());
    struct timespec old[2] = {{1'000'000'000, 0}, {1'000'000'000, 0}};  // 2001
    EXPECT_EQ(::utimensat(AT_FDCWD, path.c_str(), old, 0), 0);
    return image.ok() ? *image : RamImage{};
  }

  // Counts full verifications while doing the real one; clock an hour ahead so that nothing
  // the test just wrote counts as racily recent, unless a test wants that.
  VerifiedFiles::Options Counting(int64_t clock_offset_ns = 3600'000'000'000) {
    VerifiedFiles::Options o;
    o.verify = [this](const std::string& path, const RamImage& expected) {
      ++reads_;
      return VerifyRamFile(path, expected);
    };
    o.now_ns = [clock_offset_ns] { return RealNowNs() + clock_offset_ns; };
    return o;
  }

  void Damage(const std::string& path) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0) << path;
    ASSERT_EQ(::pwrite(fd, "!", 1, static_cast<off_t>(kMiB + 10)), 1);
    ::close(fd);
  }

  std::string dir_, ram_;
  RamImage image_;
  std::atomic<int> reads_{0};
};

TEST_F(VerifiedFilesTest, AnUnchangedFileIsCheckedWithAStatOnly) {
  VerifiedFiles verified(Counting());
  EXPECT_TRUE(verified.Check(ram_, image_).ok());
  EXPECT_TRUE(verified.Check(ram_, image_).ok());
  EXPECT_TRUE(verified.Check(ram_, image_).ok());
  EXPECT_EQ(reads_, 1);
  EXPECT_EQ(verified.full_verifications(), 1u);
}

TEST_F(VerifiedFilesTest, AnUnchangedFileIsCheckedAgainstADifferentTable) {
  VerifiedFiles verified(Counting());
  ASSERT_TRUE(verified.Check(ram_, image_).ok());
  RamImage other = image_;
  other.chunks[1].crc32 ^= 1;
  Status st = verified.Check(ram_, other);
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  EXPECT_THAT(st.message(), HasSubstr("chunk 1"));
  EXPECT_EQ(reads_, 2);
}

TEST_F(VerifiedFilesTest, AWriteAfterVerificationIsCaught) {
  // Lets the test play the damaging writer as any user; moves ctime only, mtime stays in 2001.
  ASSERT_EQ(::chmod(ram_.c_str(), 0600), 0);
  VerifiedFiles verified(Counting());
  ASSERT_TRUE(verified.Check(ram_, image_).ok());
  Damage(ram_);
  Status st = verified.Check(ram_, image_);
  EXPECT_EQ(reads_, 2);
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  EXPECT_THAT(st.message(), HasSubstr("checksum mismatch at chunk 1"));
  // A file that failed is never remembered as good.
  EXPECT_FALSE(verified.Check(ram_, image_).ok());
  EXPECT_EQ(reads_, 3);
}

TEST_F(VerifiedFilesTest, ALinkMadeAndRemovedByFerrydKeepsTheFileVerifiedButAWriteDoesNot) {
  ASSERT_EQ(::chmod(ram_.c_str(), 0600), 0);
  VerifiedFiles verified(Counting());
  ASSERT_TRUE(verified.Check(ram_, image_).ok());
  const std::string link = dir_ + "/slot-ram";
  verified.AcrossLinkChange(ram_, [&] {
    ASSERT_EQ(::link(ram_.c_str(), link.c_str()), 0);
    ASSERT_EQ(::unlink(link.c_str()), 0);
  });
  EXPECT_TRUE(verified.Check(ram_, image_).ok());
  EXPECT_EQ(reads_, 1) << "a link change alone cost a full verification";
  verified.AcrossLinkChange(ram_, [&] { Damage(ram_); });
  EXPECT_EQ(verified.Check(ram_, image_).code(), Status::Code::kCorruption);
  EXPECT_EQ(reads_, 2);
}

TEST_F(VerifiedFilesTest, AReplacedFileOrAnotherTableIsVerifiedAgain) {
  VerifiedFiles verified(Counting());
  ASSERT_TRUE(verified.Check(ram_, image_).ok());
  RamImage other = MakeRam(dir_ + "/other", 2);
  ASSERT_EQ(::rename((dir_ + "/other").c_str(), ram_.c_str()), 0);  // same path, new inode
  EXPECT_EQ(verified.Check(ram_, image_).code(), Status::Code::kCorruption);
  EXPECT_EQ(reads_, 2);
  EXPECT_TRUE(verified.Check(ram_, other).ok());
  EXPECT_EQ(reads_, 3);
  EXPECT_TRUE(verified.Check(ram_, other).ok());
  EXPECT_EQ(reads_, 3);
  verified.Forget(ram_);
  EXPECT_TRUE(verified.Check(ram_, other).ok());
  EXPECT_EQ(reads_, 4);
}

TEST_F(VerifiedFilesTest, ARacilyRecentFileIsNotRemembered) {
  // The clock says the file changed within the racy window: a write in the same timestamp tick
  // could go unseen, so every check reads the file.
  struct timespec now[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
  ASSERT_EQ(::utimensat(AT_FDCWD, ram_.c_str(), now, 0), 0);
  VerifiedFiles verified(Counting(/*clock_offset_ns=*/0));
  EXPECT_TRUE(verified.Check(ram_, image_).ok());
  EXPECT_TRUE(verified.Check(ram_, image_).ok());
  EXPECT_EQ(reads_, 2);
}

TEST_F(VerifiedFilesTest, ConcurrentChecksOfOneFileReadItOnce) {
  VerifiedFiles verified(Counting());
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] { ok += verified.Check(ram_, image_).ok() ? 1 : 0; });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 8);
  EXPECT_EQ(reads_, 1);
}

}  // namespace
}  // namespace ferry::snapshot

namespace ferry::snapshot {
namespace {

// A device state or frozen disk: checked whole against its SHA-256, then by a stat while unchanged.
class VerifiedDigestTest : public VerifiedFilesTest {
 protected:
  Status CheckDigest(VerifiedFiles& verified, const std::string& sha256) {
    return verified.CheckDigest(ram_, sha256, [&]() -> Status {
      ++reads_;
      return sha256 == "good" ? Status::Ok() : Status::Corruption("checksum mismatch");
    });
  }
};

TEST_F(VerifiedDigestTest, AnUnchangedFileIsHashedOnce) {
  VerifiedFiles verified(Counting());
  EXPECT_TRUE(CheckDigest(verified, "good").ok());
  EXPECT_TRUE(CheckDigest(verified, "good").ok());
  EXPECT_EQ(reads_, 1);
}

TEST_F(VerifiedDigestTest, AWriteOrAnotherDigestIsCheckedAgain) {
  ASSERT_EQ(::chmod(ram_.c_str(), 0600), 0);
  VerifiedFiles verified(Counting());
  ASSERT_TRUE(CheckDigest(verified, "good").ok());
  EXPECT_EQ(CheckDigest(verified, "other").code(), Status::Code::kCorruption);
  EXPECT_EQ(reads_, 2);
  ASSERT_TRUE(CheckDigest(verified, "good").ok());
  EXPECT_EQ(reads_, 3);
  Damage(ram_);
  ASSERT_TRUE(CheckDigest(verified, "good").ok());
  EXPECT_EQ(reads_, 4) << "a write after the check must not pass on a stat";
}

TEST_F(VerifiedDigestTest, ASnapshotsFilesAreForgottenTogether) {
  VerifiedFiles verified(Counting());
  ASSERT_TRUE(CheckDigest(verified, "good").ok());
  ASSERT_TRUE(verified.Check(ram_, image_).ok());  // the RAM table replaces the digest's entry
  EXPECT_EQ(reads_, 2);
  verified.ForgetUnder(dir_ + "x");  // a sibling directory whose name extends this one's
  EXPECT_TRUE(verified.Check(ram_, image_).ok());
  EXPECT_EQ(reads_, 2);
  verified.ForgetUnder(dir_);
  EXPECT_TRUE(verified.Check(ram_, image_).ok());
  EXPECT_EQ(reads_, 3);
}

}  // namespace
}  // namespace ferry::snapshot
