#include "guest/readiness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>

namespace ferry::guest {
namespace {

constexpr std::string_view kServicesParam = "ferry.services=";
constexpr int kConnectTimeoutMs = 100;  // loopback: it completes or is refused at once
constexpr int kReplyTimeoutMs = 200;    // a busy redis under TCG may be slow, not absent

bool ValidServiceName(std::string_view name) {
  if (name.empty() || name.size() > 32) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

// Closes the socket on every return path.
class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket() {
    if (fd_ >= 0) close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

bool WaitFor(int fd, short events, int timeout_ms) {
  pollfd p{fd, events, 0};
  int n;
  do {
    n = poll(&p, 1, timeout_ms);
  } while (n < 0 && errno == EINTR);
  return n == 1 && (p.revents & events) != 0;
}

bool RedisAnswersPing(int fd) {
  static constexpr std::string_view kPing = "PING\r\n";
  if (send(fd, kPing.data(), kPing.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(kPing.size())) {
    return false;
  }
  // "+PONG\r\n" is 7 bytes; loopback delivers it in one segment, but read until we have enough.
  std::string reply;
  char buf[64];
  while (reply.size() < 5) {
    if (!WaitFor(fd, POLLIN, kReplyTimeoutMs)) return false;
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return false;
    reply.append(buf, static_cast<std::size_t>(n));
  }
  // Anything else (-LOADING while it reads its data, -NOAUTH) means not ready for clients.
  return reply.compare(0, 5, "+PONG") == 0;
}

}  // namespace

ServiceList ParseServices(std::string_view cmdline) {
  ServiceList result;
  std::string_view value;
  bool found = false;
  std::size_t pos = 0;
  while (pos < cmdline.size()) {
    std::size_t end = cmdline.find_first_of(" \t\n", pos);
    if (end == std::string_view::npos) end = cmdline.size();
    std::string_view token = cmdline.substr(pos, end - pos);
    if (token.substr(0, kServicesParam.size()) == kServicesParam) {
      value = token.substr(kServicesParam.size());
      found = true;
    }
    pos = end + 1;
  }
  if (!found) return result;

  while (!value.empty()) {
    std::size_t comma = value.find(',');
    std::string_view entry = value.substr(0, comma);
    value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
    if (entry.empty()) continue;

    std::size_t colon = entry.find(':');
    std::string_view name = entry.substr(0, colon);
    std::string_view port_text =
        colon == std::string_view::npos ? std::string_view() : entry.substr(colon + 1);
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    bool port_ok = !port_text.empty() && ec == std::errc() &&
                   end == port_text.data() + port_text.size() && port >= 1 && port <= 65535;
    if (!ValidServiceName(name) || !port_ok) {
      result.errors.push_back("ignoring ferry.services entry '" + std::string(entry) +
                              "': expected name:port, e.g. redis:6379");
      continue;
    }
    result.services.push_back(ServiceSpec{std::string(name), static_cast<uint16_t>(port)});
  }
  return result;
}

bool ServiceAnswers(const ServiceSpec& service) {
  Socket sock(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (sock.fd() < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(service.port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(sock.fd(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (errno != EINPROGRESS) return false;
    if (!WaitFor(sock.fd(), POLLOUT, kConnectTimeoutMs)) return false;
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(sock.fd(), SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) return false;
  }
  if (service.name == "redis") return RedisAnswersPing(sock.fd());
  return true;
}

Readiness::Readiness(std::vector<ServiceSpec> services, Probe probe)
    : services_(std::move(services)), up_(services_.size(), false), probe_(std::move(probe)) {}

bool Readiness::Poll() {
  if (ready_) return false;
  bool all_up = true;
  for (std::size_t i = 0; i < services_.size(); ++i) {
    if (!up_[i]) up_[i] = probe_(services_[i]);
    all_up = all_up && up_[i];
  }
  ready_ = all_up;
  return ready_;
}

std::vector<std::string> Readiness::ServiceNames() const {
  std::vector<std::string> names;
  for (const ServiceSpec& s : services_) names.push_back(s.name);
  return names;
}

}  // namespace ferry::guest
