#include "migrate/peer_connect.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "migrate/peer_address.h"

namespace ferry::migrate {

namespace {

using Clock = std::chrono::steady_clock;

struct AddrInfoFree {
  void operator()(addrinfo* info) const { freeaddrinfo(info); }
};

// A connected, non-blocking TCP socket to `address`; each address the name resolves to is tried
// in order until one answers or the deadline passes.
Result<int> ConnectTcp(const PeerAddress& address, Clock::time_point deadline,
                       std::string* remote) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* found = nullptr;
  std::string port = std::to_string(address.port);
  int gai = getaddrinfo(address.host.c_str(), port.c_str(), &hints, &found);
  if (gai != 0) {
    return Status::Unavailable("connect to peer " + address.ToString() + ": cannot resolve " +
                               address.host + ": " + gai_strerror(gai));
  }
  std::unique_ptr<addrinfo, AddrInfoFree> owned(found);

  std::string last_error = "no address";
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    std::string where = SocketAddressToString(ai->ai_addr);
    int fd =
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      last_error = where + ": socket(): " + std::strerror(errno);
      continue;
    }
    int err = 0;
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      err = errno;
      if (err == EINPROGRESS) {
        pollfd pfd{fd, POLLOUT, 0};
        int ready;
        do {
          ready = ::poll(&pfd, 1, PollMillisUntil(deadline));
        } while (ready < 0 && errno == EINTR);
        if (ready == 0) {
          ::close(fd);
          return Status::DeadlineExceeded("connect to peer " + address.ToString() + " (" + where +
                                          "): no answer in time; check the address and that "
                                          "ferryd runs there and its peer port is reachable");
        }
        socklen_t len = sizeof err;
        if (ready < 0 || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      }
    }
    if (err != 0) {
      ::close(fd);
      last_error = where + ": " + std::strerror(err);
      continue;
    }
    int one = 1;
    // Control messages are small and latency-bound; data frames are large anyway.
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    *remote = where;
    return fd;
  }
  return Status::Unavailable("connect to peer " + address.ToString() + ": " + last_error +
                             "; check the address and that ferryd runs there");
}

}  // namespace

Result<std::unique_ptr<PeerLink>> ConnectToPeer(const std::string& address,
                                                const PeerTlsContext& context,
                                                const std::string& expected_host_id,
                                                std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  FERRY_ASSIGN_OR_RETURN(PeerAddress parsed, ParsePeerAddress(address));
  if (parsed.port == 0) {
    return Status::InvalidArgument("connect to peer " + address + ": port 0 cannot be reached");
  }
  std::string remote;
  FERRY_ASSIGN_OR_RETURN(int fd, ConnectTcp(parsed, deadline, &remote));
  auto link =
      PeerLink::Establish(fd, context, PeerRole::kClient, expected_host_id, deadline, remote);
  if (!link.ok()) ::close(fd);
  return link;
}

Result<std::unique_ptr<PeerLink>> ConnectToPeer(const std::string& address,
                                                const crypto::HostCredentials& credentials,
                                                const std::string& expected_host_id,
                                                std::chrono::milliseconds timeout) {
  FERRY_ASSIGN_OR_RETURN(auto context, PeerTlsContext::Create(credentials));
  return ConnectToPeer(address, *context, expected_host_id, timeout);
}

}  // namespace ferry::migrate
