#include "migrate/peer_listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <system_error>

#include "core/guarded_thread.h"
#include "core/metrics.h"
#include "migrate/peer_address.h"

namespace ferry::migrate {

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kListenBacklog = 128;
// After accept() fails for lack of file descriptors, wait this long before trying again, so the
// accept loop does not spin on a listening socket that stays readable.
constexpr int kOutOfFilesPauseMs = 100;

struct AddrInfoFree {
  void operator()(addrinfo* info) const { freeaddrinfo(info); }
};

Result<int> BindAndListen(const PeerAddress& address, std::string* bound, uint16_t* port) {
  const std::string what = "listen on " + address.ToString();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  std::string port_text = std::to_string(address.port);
  int gai = getaddrinfo(address.host.c_str(), port_text.c_str(), &hints, &found);
  if (gai != 0) {
    return Status::InvalidArgument(what + ": cannot resolve " + address.host + ": " +
                                   gai_strerror(gai));
  }
  std::unique_ptr<addrinfo, AddrInfoFree> owned(found);
  // The first address that works; a peer port is one address, not every one of a name.
  std::string last_error;
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    int fd =
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) {
      last_error = std::string("socket(): ") + std::strerror(errno);
      continue;
    }
    int one = 1;
    (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd, kListenBacklog) != 0) {
      last_error = std::strerror(errno);
      ::close(fd);
      continue;
    }
    sockaddr_storage local{};
    socklen_t len = sizeof local;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) {
      last_error = std::string("getsockname(): ") + std::strerror(errno);
      ::close(fd);
      continue;
    }
    *bound = SocketAddressToString(reinterpret_cast<sockaddr*>(&local));
    *port = ntohs(local.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&local)->sin6_port
                                              : reinterpret_cast<sockaddr_in*>(&local)->sin_port);
    return fd;
  }
  return Status::ResourceExhausted(what + ": " + last_error +
                                   "; pick another port or stop what is using it");
}

// The IP address of `address` without its port: the key of the per-address handshake limit.
std::string HostOf(const sockaddr* address) {
  char text[INET6_ADDRSTRLEN] = "";
  if (address->sa_family == AF_INET6) {
    (void)::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr, text,
                      sizeof text);
  } else if (address->sa_family == AF_INET) {
    (void)::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(address)->sin_addr, text,
                      sizeof text);
  }
  return text;
}

// Waits until `fd` has a byte to read (or is closed), at most `timeout`; false on timeout.
bool WaitForFirstByte(int fd, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    pollfd pfd{fd, POLLIN, 0};
    int ready = ::poll(&pfd, 1, PollMillisUntil(deadline));
    if (ready > 0) return true;  // a byte, an error or a hang-up: the handshake reports which
    if (ready == 0) return false;
    if (errno != EINTR) return true;
  }
}

}  // namespace

Result<std::unique_ptr<PeerListener>> PeerListener::Start(
    const std::string& address, std::shared_ptr<const PeerTlsContext> context, LinkHandler on_link,
    Options options, RejectHandler on_reject) {
  if (context == nullptr || on_link == nullptr) {
    return Status::InvalidArgument("listen on " + address + ": a TLS context and a link handler " +
                                   "are required");
  }
  FERRY_ASSIGN_OR_RETURN(PeerAddress parsed, ParsePeerAddress(address));
  std::string bound;
  uint16_t port = 0;
  FERRY_ASSIGN_OR_RETURN(int listen_fd, BindAndListen(parsed, &bound, &port));
  int wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd < 0) {
    int err = errno;
    ::close(listen_fd);
    return Status::ResourceExhausted("listen on " + address + ": eventfd(): " + std::strerror(err));
  }
  std::unique_ptr<PeerListener> listener(new PeerListener(listen_fd, wake_fd, bound, port,
                                                          std::move(context), std::move(on_link),
                                                          options, std::move(on_reject)));
  FERRY_ASSIGN_OR_RETURN(listener->accept_thread_,
                         StartGuardedThread("peer listener " + bound + " accept loop",
                                            [raw = listener.get()] { raw->AcceptLoop(); }));
  return listener;
}

PeerListener::PeerListener(int listen_fd, int wake_fd, std::string address, uint16_t port,
                           std::shared_ptr<const PeerTlsContext> context, LinkHandler on_link,
                           Options options, RejectHandler on_reject)
    : listen_fd_(listen_fd),
      wake_fd_(wake_fd),
      address_(std::move(address)),
      port_(port),
      context_(std::move(context)),
      on_link_(std::move(on_link)),
      options_(options),
      on_reject_(std::move(on_reject)) {}

PeerListener::~PeerListener() {
  Stop();
  ::close(listen_fd_);
  ::close(wake_fd_);
}

void PeerListener::Stop() {
  std::lock_guard<std::mutex> stop_lock(stop_mu_);
  stopping_.store(true);
  uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
  if (accept_thread_.joinable()) accept_thread_.join();
  // The accept thread is gone, so the list no longer grows or shrinks; connection threads still
  // update their own fd/link under mu_.
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (Connection& c : connections_) {
      if (c.fd >= 0) ::shutdown(c.fd, SHUT_RDWR);  // fails the handshake at once
      if (auto link = c.link.lock()) link->Close();
    }
  }
  for (Connection& c : connections_) {
    if (c.thread.joinable()) c.thread.join();
  }
  connections_.clear();
}

void PeerListener::AcceptLoop() {
  while (!stopping_.load()) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int ready = ::poll(fds, 2, -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      spdlog::error("peer listener {}: poll: {}", address_, std::strerror(errno));
      return;
    }
    if (fds[1].revents != 0) return;

    sockaddr_storage from{};
    socklen_t len = sizeof from;
    int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&from), &len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        spdlog::error("peer listener {}: accept: {}; pausing", address_, std::strerror(err));
        pollfd wake{wake_fd_, POLLIN, 0};
        (void)::poll(&wake, 1, kOutOfFilesPauseMs);
      }
      continue;  // EAGAIN, ECONNABORTED, EINTR: nothing to accept after all
    }
    ReapFinished();
    std::string remote = SocketAddressToString(reinterpret_cast<sockaddr*>(&from));
    int one = 1;
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    std::string host = HostOf(reinterpret_cast<sockaddr*>(&from));

    std::unique_lock<std::mutex> lock(mu_);
    std::string full;
    if (handshakes_running_ >= options_.max_handshakes) {
      full = std::to_string(options_.max_handshakes) +
             " handshakes already in progress (a flood of connections?)";
    } else if (handshakes_by_address_[host] >= options_.max_handshakes_per_address) {
      full = std::to_string(options_.max_handshakes_per_address) + " handshakes from " + host +
             " already in progress (a flood of connections from one address?)";
    }
    if (!full.empty()) {
      if (handshakes_by_address_[host] == 0) handshakes_by_address_.erase(host);
      lock.unlock();
      ::close(fd);
      Reject(remote, Status::ResourceExhausted("dropped: " + full));
      continue;
    }
    ++handshakes_running_;
    ++handshakes_by_address_[host];
    Connection& c = connections_.emplace_back();
    c.remote = remote;
    c.remote_host = host;
    c.fd = fd;
    try {
      c.thread = options_.start_thread([this, &c, remote] {
        RunGuarded("peer connection from " + remote, [this, &c] { Serve(&c); });
      });
    } catch (const std::system_error& e) {
      EndHandshakeLocked(c);
      connections_.pop_back();
      lock.unlock();
      ::close(fd);
      Reject(remote, Status::ResourceExhausted(std::string("dropped: cannot start a thread for "
                                                           "the connection: ") +
                                               e.what()));
    }
  }
}

void PeerListener::Serve(Connection* c) {
  int fd;
  {
    std::lock_guard<std::mutex> lock(mu_);
    fd = c->fd;
  }
  const auto deadline = Clock::now() + options_.handshake_timeout;
  const auto first_byte = std::min(options_.first_byte_timeout, options_.handshake_timeout);
  Result<std::unique_ptr<PeerLink>> established =
      Status::DeadlineExceeded("dropped: sent nothing in " + std::to_string(first_byte.count()) +
                               " ms (a client that opens connections and stays silent?)");
  bool reserved = false;
  if (WaitForFirstByte(fd, first_byte)) {
    std::string refusal;
    {
      std::lock_guard<std::mutex> lock(mu_);
      refusal = ReserveLinkLocked();
      reserved = refusal.empty();
    }
    established = PeerLink::Establish(fd, *context_, PeerRole::kServer, /*expected_host_id=*/"",
                                      deadline, c->remote, refusal);
  }
  std::shared_ptr<PeerLink> link;
  bool stopping;
  {
    std::lock_guard<std::mutex> lock(mu_);
    c->fd = -1;  // from here Stop() reaches the connection through its link, if any
    EndHandshakeLocked(*c);
    if (reserved) --links_reserved_;
    if (established.ok()) {
      link = std::move(established).value();
      c->link = link;
      links_.push_back(link);
    }
    stopping = stopping_.load();
  }
  if (!established.ok()) {
    ::close(fd);  // Establish leaves the socket to us when it fails
    if (!stopping) Reject(c->remote, established.status());
  } else if (stopping) {
    link->Close();
  } else {
    // Whatever the peer's messages make the handler do, a throw ends this link, not ferryd.
    Status handled = RunGuarded("peer link from " + c->remote, [&] { on_link_(std::move(link)); });
    if (!handled.ok()) spdlog::error("{}; closed the link", handled.message());
  }
  link.reset();
  c->done.store(true);  // last touch: ReapFinished may join and erase `c` from now on
}

void PeerListener::Reject(const std::string& remote, const Status& why) {
  static auto& refused = metrics::Default().AddCounter(
      "ferry_peer_connections_refused_total",
      "Peer connections refused before a link was established, by the refusal's status code",
      {"reason"});
  refused.With({why.CodeName()}).Inc();
  if (on_reject_) {
    on_reject_(remote, why);
  } else {
    spdlog::warn("peer listener {}: refused connection from {}: {}", address_, remote,
                 why.message());
  }
}

std::string PeerListener::ReserveLinkLocked() {
  if (OpenLinksLocked() + links_reserved_ >= options_.max_links) {
    return "host " + context_->self().host_id + " has " + std::to_string(options_.max_links) +
           " peer links open, its limit; try again when a migration has finished";
  }
  ++links_reserved_;
  return "";
}

size_t PeerListener::OpenLinksLocked() {
  std::erase_if(links_, [](const std::weak_ptr<PeerLink>& weak) {
    auto link = weak.lock();
    return link == nullptr || !link->open();
  });
  return links_.size();
}

void PeerListener::EndHandshakeLocked(const Connection& c) {
  --handshakes_running_;
  auto it = handshakes_by_address_.find(c.remote_host);
  if (it != handshakes_by_address_.end() && --it->second == 0) handshakes_by_address_.erase(it);
}

void PeerListener::ReapFinished() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = connections_.begin(); it != connections_.end();) {
    if (it->done.load()) {
      it->thread.join();  // its thread has finished its work; this returns at once
      it = connections_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace ferry::migrate
