#include "core/service_notify.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "core/unique_fd.h"

namespace ferry {
namespace {

// A datagram socket the test holds, as systemd holds NOTIFY_SOCKET.
class NotifySocket {
 public:
  explicit NotifySocket(bool abstract) {
    fd_ = UniqueFd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    name_ = abstract ? "@ferry-notify-test-" + std::to_string(::getpid())
                     : std::string(::testing::TempDir()) + "notify-" + std::to_string(::getpid());
    if (!abstract) ::unlink(name_.c_str());
    std::memcpy(addr.sun_path, name_.data(), name_.size());
    if (abstract) addr.sun_path[0] = '\0';
    socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name_.size());
    bound_ = ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), len) == 0;
    ::setenv("NOTIFY_SOCKET", name_.c_str(), 1);
  }
  ~NotifySocket() {
    ::unsetenv("NOTIFY_SOCKET");
    if (name_[0] == '/') ::unlink(name_.c_str());
  }
  bool bound() const { return bound_; }
  std::string Receive() {
    char buf[4096];
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, MSG_DONTWAIT);
    return n < 0 ? "" : std::string(buf, static_cast<size_t>(n));
  }

 private:
  UniqueFd fd_;
  std::string name_;
  bool bound_ = false;
};

TEST(ServiceNotifyTest, SendsToAPathSocket) {
  NotifySocket s(/*abstract=*/false);
  ASSERT_TRUE(s.bound());
  ASSERT_TRUE(NotifyServiceManager("READY=1\nSTATUS=serving").ok());
  EXPECT_EQ(s.Receive(), "READY=1\nSTATUS=serving");
  ASSERT_TRUE(NotifyServiceManager("STOPPING=1").ok());
  EXPECT_EQ(s.Receive(), "STOPPING=1");
}

TEST(ServiceNotifyTest, SendsToAnAbstractSocket) {
  NotifySocket s(/*abstract=*/true);
  ASSERT_TRUE(s.bound());
  ASSERT_TRUE(NotifyServiceManager("WATCHDOG=1").ok());
  EXPECT_EQ(s.Receive(), "WATCHDOG=1");
}

TEST(ServiceNotifyTest, NothingToDoWithoutNotifySocket) {
  ::unsetenv("NOTIFY_SOCKET");
  EXPECT_TRUE(NotifyServiceManager("READY=1").ok());
}

TEST(ServiceNotifyTest, ABadSocketNameIsAnErrorNamingIt) {
  ::setenv("NOTIFY_SOCKET", "relative/path", 1);
  Status st = NotifyServiceManager("READY=1");
  ::unsetenv("NOTIFY_SOCKET");
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("relative/path"), std::string::npos);
  ::setenv("NOTIFY_SOCKET", "/nonexistent/ferry-notify", 1);
  st = NotifyServiceManager("READY=1");
  ::unsetenv("NOTIFY_SOCKET");
  EXPECT_FALSE(st.ok());
}

TEST(ServiceNotifyTest, WatchdogIntervalFromTheEnvironment) {
  ::unsetenv("WATCHDOG_USEC");
  ::unsetenv("WATCHDOG_PID");
  EXPECT_FALSE(WatchdogInterval());
  ::setenv("WATCHDOG_USEC", "30000000", 1);
  ASSERT_TRUE(WatchdogInterval());
  EXPECT_EQ(WatchdogInterval()->count(), 30000000);
  ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  EXPECT_TRUE(WatchdogInterval());
  ::setenv("WATCHDOG_PID", "1", 1);  // another process's watchdog
  EXPECT_FALSE(WatchdogInterval());
  ::unsetenv("WATCHDOG_PID");
  ::setenv("WATCHDOG_USEC", "soon", 1);
  EXPECT_FALSE(WatchdogInterval());
  ::unsetenv("WATCHDOG_USEC");
}

TEST(ServiceNotifyTest, JournalStreamMustNameStderr) {
  ::setenv("JOURNAL_STREAM", "1:1", 1);
  EXPECT_FALSE(StderrIsJournal());
  struct stat st;
  ASSERT_EQ(::fstat(STDERR_FILENO, &st), 0);
  std::string mine = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  ::setenv("JOURNAL_STREAM", mine.c_str(), 1);
  EXPECT_TRUE(StderrIsJournal());
  ::unsetenv("JOURNAL_STREAM");
  EXPECT_FALSE(StderrIsJournal());
}

}  // namespace
}  // namespace ferry
