#include "bench/drivers/redis_gaps.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>

namespace ferry::bench {

namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Result<std::unique_ptr<RedisPingGaps>> RedisPingGaps::Start(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::Unavailable("socket: " + std::string(std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    return Status::Unavailable("connecting to 127.0.0.1:" + std::to_string(port) + ": " + why);
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  std::unique_ptr<RedisPingGaps> gaps(new RedisPingGaps(fd));
  gaps->last_reply_ns_ = NowNs();
  gaps->thread_ = std::thread([g = gaps.get()] { g->Run(); });
  return gaps;
}

void RedisPingGaps::Run() {
  const char ping[] = "PING\r\n";
  while (!stop_) {
    if (::send(fd_, ping, sizeof ping - 1, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof ping - 1)) {
      failed_ = true;
      return;
    }
    std::string got;
    while (got.find("\r\n") == std::string::npos) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) {
        if (stop_) return;
        continue;
      }
      char buf[64];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        failed_ = true;
        return;
      }
      got.append(buf, static_cast<size_t>(n));
    }
    const int64_t now = NowNs();
    const int64_t gap = now - last_reply_ns_.exchange(now);
    if (gap > max_gap_ns_) max_gap_ns_ = gap;
  }
}

Result<double> RedisPingGaps::Stop() {
  if (thread_.joinable()) {
    stop_ = true;
    thread_.join();
    ::close(fd_);
    const int64_t tail = NowNs() - last_reply_ns_;
    if (tail > max_gap_ns_) max_gap_ns_ = tail;
  }
  if (failed_) return Status::Unavailable("the redis PING connection to the guest failed");
  return static_cast<double>(max_gap_ns_) / 1e6;
}

RedisPingGaps::~RedisPingGaps() { (void)Stop(); }

}  // namespace ferry::bench
