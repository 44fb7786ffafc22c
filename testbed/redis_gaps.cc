#include "testbed/redis_gaps.h"

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

namespace ferry::testbed {

namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Result<std::unique_ptr<RedisReplyGaps>> RedisReplyGaps::Start(uint16_t port,
                                                              const std::string& command) {
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
  std::unique_ptr<RedisReplyGaps> gaps(new RedisReplyGaps(fd, command));
  gaps->last_reply_ns_ = NowNs();
  gaps->thread_ = std::thread([g = gaps.get()] { g->Run(); });
  return gaps;
}

void RedisReplyGaps::Run() {
  while (!stop_) {
    if (::send(fd_, request_.data(), request_.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(request_.size())) {
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
    if (got[0] == '-') {  // an error reply: the command is not what this client measures
      failed_ = true;
      return;
    }
    ++replies_;
    const int64_t now = NowNs();
    NoteGap(last_reply_ns_.exchange(now), now);
  }
}

void RedisReplyGaps::Restart() {
  max_gap_ns_ = 0;
  last_reply_ns_ = NowNs();
  std::lock_guard<std::mutex> lock(mu_);
  long_gaps_.clear();
}

void RedisReplyGaps::NoteGap(int64_t start_ns, int64_t end_ns) {
  using std::chrono::nanoseconds;
  using TimePoint = std::chrono::steady_clock::time_point;
  const int64_t gap = end_ns - start_ns;
  if (gap > max_gap_ns_) max_gap_ns_ = gap;
  if (gap <= nanoseconds(kLongGap).count()) return;
  std::lock_guard<std::mutex> lock(mu_);
  long_gaps_.push_back({TimePoint(nanoseconds(start_ns)), TimePoint(nanoseconds(end_ns))});
}

std::vector<ReplyGap> RedisReplyGaps::long_gaps() const {
  std::lock_guard<std::mutex> lock(mu_);
  return long_gaps_;
}

Result<double> RedisReplyGaps::Stop() {
  if (thread_.joinable()) {
    stop_ = true;
    thread_.join();
    ::close(fd_);
    NoteGap(last_reply_ns_, NowNs());  // the guest may have stopped answering
  }
  if (failed_) {
    return Status::Unavailable("the redis connection to the guest failed, or " +
                               request_.substr(0, request_.size() - 2) + " was refused");
  }
  return static_cast<double>(max_gap_ns_) / 1e6;
}

RedisReplyGaps::~RedisReplyGaps() { (void)Stop(); }

}  // namespace ferry::testbed
