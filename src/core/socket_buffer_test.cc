#include "core/socket_buffer.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>

namespace ferry {
namespace {

int WmemMax() {
  std::ifstream in("/proc/sys/net/core/wmem_max");
  int v = 0;
  in >> v;
  return v;
}

// Whether this process holds CAP_NET_ADMIN (bit 12 of its effective set).
bool HasNetAdmin() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("CapEff:", 0) == 0) return (std::stoull(line.substr(7), nullptr, 16) >> 12) & 1;
  }
  return false;
}

TEST(SetSendBufferTest, GrowsTheBufferPastTheDefault) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  int before = 0;
  socklen_t len = sizeof before;
  ASSERT_EQ(::getsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &before, &len), 0);
  const int now = SetSendBuffer(sv[1], 16 << 20);
  // The kernel keeps twice what it is asked; without CAP_NET_ADMIN it stops at twice
  // net.core.wmem_max.
  const int expected = HasNetAdmin() ? (32 << 20) : std::min(32 << 20, 2 * WmemMax());
  EXPECT_EQ(now, expected);
  if (HasNetAdmin()) {
    EXPECT_GT(now, before);
  }
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST(SetSendBufferTest, ABadDescriptorSaysSo) { EXPECT_EQ(SetSendBuffer(-1, 1 << 20), -1); }

}  // namespace
}  // namespace ferry
