#include "core/files.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

namespace ferry {
namespace {

class PrivateDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = "/tmp/ferry-files-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    base_ = tmpl;
  }
  void TearDown() override { (void)RemoveAll(base_); }
  std::string base_;
};

TEST_F(PrivateDirTest, CreatesItWithMode0700) {
  const std::string dir = base_ + "/a/ram";
  ASSERT_TRUE(EnsurePrivateDir(dir, "RAM directory").ok());
  struct stat st;
  ASSERT_EQ(::lstat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_TRUE(EnsurePrivateDir(dir, "RAM directory").ok());  // ours already: accepted
}

TEST_F(PrivateDirTest, RefusesASymlink) {
  const std::string dir = base_ + "/link";
  ASSERT_EQ(::symlink(base_.c_str(), dir.c_str()), 0);
  Status st = EnsurePrivateDir(dir, "RAM directory");
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("RAM directory " + dir + " is a symlink"), std::string::npos)
      << st.message();
}

TEST_F(PrivateDirTest, RefusesAWiderModeWithoutChangingIt) {
  const std::string dir = base_ + "/wide";
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(dir.c_str(), 0755), 0);
  Status st = EnsurePrivateDir(dir, "state directory");
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("has mode 0755"), std::string::npos) << st.message();
  struct stat s;
  ASSERT_EQ(::stat(dir.c_str(), &s), 0);
  EXPECT_EQ(s.st_mode & 07777, 0755u);
}

TEST_F(PrivateDirTest, RefusesAnotherOwner) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a directory away";
  const std::string dir = base_ + "/theirs";
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  ASSERT_EQ(::chown(dir.c_str(), 65534, 65534), 0);
  Status st = EnsurePrivateDir(dir, "RAM directory");
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("is owned by uid 65534"), std::string::npos) << st.message();
}

TEST_F(PrivateDirTest, CreateExclusiveNeverFollowsOrReuses) {
  const std::string target = base_ + "/target";
  const std::string link = base_ + "/link";
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  EXPECT_FALSE(CreateExclusive(link, O_RDWR, 0600).ok());
  EXPECT_FALSE(PathExists(target));
  auto fd = CreateExclusive(base_ + "/new", O_RDWR, 0600);
  ASSERT_TRUE(fd.ok());
  ::close(*fd);
  EXPECT_FALSE(CreateExclusive(base_ + "/new", O_RDWR, 0600).ok());
}

TEST_F(PrivateDirTest, HeadroomLeavesRoomForSparseWritableFilesToGrow) {
  const int fd = ::open((base_ + "/vm.ram").c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, 64 << 20), 0);
  ::close(fd);
  EXPECT_GE(UnallocatedBytesIn(base_), uint64_t{60} << 20);
  ASSERT_EQ(::chmod((base_ + "/vm.ram").c_str(), 0400), 0);  // a read-only image never grows
  EXPECT_LT(UnallocatedBytesIn(base_), uint64_t{1} << 20);
}

}  // namespace
}  // namespace ferry
