#include "core/files.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

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

std::atomic<int> interruptions{0};
void CountInterruption(int) { interruptions.fetch_add(1); }

// Feeds `write` a pipe one page deep and interrupts it with a signal (no SA_RESTART) after
// every read, so a blocked write returns early: short counts and EINTR. Returns what arrived.
std::string ThroughInterruptedPipe(const std::function<Status(int)>& write, size_t expect,
                                   Status& written) {
  struct sigaction on = {}, old = {};
  on.sa_handler = CountInterruption;
  sigemptyset(&on.sa_mask);
  EXPECT_EQ(::sigaction(SIGUSR1, &on, &old), 0);
  int p[2];
  EXPECT_EQ(::pipe(p), 0);
  (void)::fcntl(p[1], F_SETPIPE_SZ, 4096);
  std::thread writer([&] {
    written = write(p[1]);
    ::close(p[1]);
  });
  std::string got;
  char buf[1000];
  for (;;) {
    ssize_t n = ::read(p[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
    if (got.size() < expect) ::pthread_kill(writer.native_handle(), SIGUSR1);
  }
  writer.join();
  ::close(p[0]);
  ::sigaction(SIGUSR1, &old, nullptr);
  return got;
}

std::string Pattern(size_t n, int seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + seed) >> 3);
  return s;
}

TEST(WriteAllToTest, RetriesShortAndInterruptedWritesUntilEveryByteIsOut) {
  const std::string bytes = Pattern(1 << 20, 7);
  interruptions = 0;
  Status written;
  std::string got = ThroughInterruptedPipe(
      [&](int fd) { return WriteAllTo(fd, bytes, "the pipe"); }, bytes.size(), written);
  EXPECT_TRUE(written.ok()) << written.message();
  EXPECT_GT(interruptions.load(), 0);
  EXPECT_EQ(got.size(), bytes.size());
  EXPECT_TRUE(got == bytes);
}

TEST(WriteAllToTest, GathersBuffersInOrderAcrossShortWrites) {
  const std::vector<std::string> parts = {Pattern(70000, 1), "", Pattern(3, 2),
                                          Pattern(300000, 3), "", Pattern(4097, 4)};
  std::vector<struct iovec> iov;
  std::string whole;
  for (const std::string& part : parts) {
    iov.push_back({const_cast<char*>(part.data()), part.size()});
    whole += part;
  }
  interruptions = 0;
  Status written;
  std::string got = ThroughInterruptedPipe(
      [&](int fd) { return WriteAllTo(fd, std::span<const struct iovec>(iov), "the pipe"); },
      whole.size(), written);
  EXPECT_TRUE(written.ok()) << written.message();
  EXPECT_GT(interruptions.load(), 0);
  EXPECT_EQ(got.size(), whole.size());
  EXPECT_TRUE(got == whole);
}

TEST(WriteAllToTest, AFullDiskIsResourceExhaustedNamingWhatWasWritten) {
  const int fd = ::open("/dev/full", O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  Status st = WriteAllTo(fd, std::string(100, 'x'), "the device state /x/dev.state");
  EXPECT_EQ(st.code(), Status::Code::kResourceExhausted);
  EXPECT_EQ(st.message(), "cannot write the device state /x/dev.state: No space left on device");
  const std::string part = "abc";
  struct iovec iov[1] = {{const_cast<char*>(part.data()), part.size()}};
  st = WriteAllTo(fd, std::span<const struct iovec>(iov), "a pack");
  EXPECT_EQ(st.code(), Status::Code::kResourceExhausted);
  ::close(fd);
}

TEST(WriteAllToTest, AnyOtherFailureIsInternal) {
  const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  Status st = WriteAllTo(fd, std::string(10, 'x'), "a read-only descriptor");
  EXPECT_EQ(st.code(), Status::Code::kInternal);
  EXPECT_NE(st.message().find("cannot write a read-only descriptor: "), std::string::npos);
  ::close(fd);
}

TEST_F(PrivateDirTest, TailFileStartsAtALineAndHoldsAtMostWhatWasAsked) {
  const std::string path = base_ + "/log";
  ASSERT_TRUE(WriteFileAtomic(path, "first line\nsecond line\nthird\n").ok());
  EXPECT_EQ(TailFile(path, 1000), "first line\nsecond line\nthird\n");
  EXPECT_EQ(TailFile(path, 14), "third\n");  // "nd line\n" is cut: from the next line on
  EXPECT_EQ(TailFile(base_ + "/none", 10), "");
  ASSERT_EQ(::mkfifo((base_ + "/pipe").c_str(), 0600), 0);
  const int keep_open = ::open((base_ + "/pipe").c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(keep_open, 0);  // so that opening it to read does not wait for a writer
  EXPECT_EQ(TailFile(base_ + "/pipe", 10), "");
  ::close(keep_open);
}

// A guest flooding its console appends while `vm console` reads the log's tail: what is read
// stops where the file ended when it was opened, else the reply outgrows what was asked.
TEST_F(PrivateDirTest, TailFileOfAGrowingFileHoldsAtMostWhatWasAsked) {
  const std::string path = base_ + "/growing";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  const std::string line = std::string(99, 'x') + "\n";
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(WriteAllTo(fd, line, "the log").ok());
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    while (!stop) (void)WriteAllTo(fd, line, "the log");
  });
  size_t longest = 0;
  for (int i = 0; i < 2000; ++i) longest = std::max(longest, TailFile(path, 4096).size());
  stop = true;
  writer.join();
  ::close(fd);
  EXPECT_LE(longest, 4096u);
  EXPECT_GT(longest, 3900u);
}

}  // namespace
}  // namespace ferry
