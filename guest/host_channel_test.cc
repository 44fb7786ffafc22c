#include "guest/host_channel.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

#include <string>

namespace ferry::guest {
namespace {

// A pseudo-terminal in raw mode stands in for the virtio port: the channel opens the slave
// path, the test plays the host on the master side.
class HostChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The channel asks for SIGIO; a test process must not die of it.
    signal(SIGIO, SIG_IGN);
    master_ = posix_openpt(O_RDWR | O_NOCTTY);
    ASSERT_GE(master_, 0);
    ASSERT_EQ(grantpt(master_), 0);
    ASSERT_EQ(unlockpt(master_), 0);
    slave_path_ = ptsname(master_);
    int slave = open(slave_path_.c_str(), O_RDWR | O_NOCTTY);
    ASSERT_GE(slave, 0);
    termios t{};
    tcgetattr(slave, &t);
    cfmakeraw(&t);
    tcsetattr(slave, TCSANOW, &t);
    close(slave);
  }
  void TearDown() override { close(master_); }

  void HostWrites(const std::string& data) {
    ASSERT_EQ(write(master_, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  }

  std::string HostReadsLine() {
    std::string line;
    char c;
    while (true) {
      pollfd p{master_, POLLIN, 0};
      if (poll(&p, 1, 2000) != 1 || read(master_, &c, 1) != 1) return "<timeout>";
      if (c == '\n') return line;
      line.push_back(c);
    }
  }

  std::vector<LineReader::Line> PollChannel(HostChannel& channel) {
    pollfd p = channel.PollRequest();
    EXPECT_GE(p.fd, 0);
    EXPECT_EQ(poll(&p, 1, 2000), 1);
    return channel.OnPollResult(p.revents);
  }

  int master_ = -1;
  std::string slave_path_;
};

TEST_F(HostChannelTest, ReadsRequestLinesAndWritesReplies) {
  HostChannel channel(slave_path_);
  ASSERT_EQ(channel.TryOpen(), std::nullopt);
  ASSERT_TRUE(channel.is_open());

  HostWrites("{\"id\":1,");
  auto lines = PollChannel(channel);
  EXPECT_TRUE(lines.empty());
  HostWrites("\"op\":\"ping\"}\n{\"id\":2}\n");
  lines = PollChannel(channel);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].text, "{\"id\":1,\"op\":\"ping\"}");
  EXPECT_EQ(lines[1].text, "{\"id\":2}");

  channel.Send("{\"id\":1,\"ok\":true}");
  channel.Send("{\"id\":2,\"ok\":false}");
  EXPECT_TRUE(channel.Flush(1000));
  EXPECT_EQ(HostReadsLine(), "{\"id\":1,\"ok\":true}");
  EXPECT_EQ(HostReadsLine(), "{\"id\":2,\"ok\":false}");
}

TEST_F(HostChannelTest, MissingDeviceIsReportedNotFatal) {
  HostChannel channel("/nonexistent/vport9p9");
  auto error = channel.TryOpen();
  ASSERT_TRUE(error.has_value());
  EXPECT_NE(error->find("/nonexistent/vport9p9"), std::string::npos);
  EXPECT_FALSE(channel.is_open());
  EXPECT_EQ(channel.PollRequest().fd, -1);
}

}  // namespace
}  // namespace ferry::guest
