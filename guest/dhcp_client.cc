#include "guest/dhcp_client.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>

#include "guest/dhcp_message.h"

namespace ferry::guest {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint16_t kServerPort = 67;
constexpr uint16_t kClientPort = 68;
constexpr std::size_t kMaxDatagramBytes = 4096;

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// The outcome of sending one message until a reply fits.
struct Transaction {
  std::optional<DhcpServerMessage> reply;  // nullopt: none fitted by the deadline (or error)
  std::string error;                       // the transport failed
  int skipped = 0;                         // replies that did not fit
  std::string last_skipped;                // why the last of them did not
};

// Why a decoded reply does not fit what the client waits for; nullopt when it does.
using Fits = std::function<std::optional<std::string>(const DhcpServerMessage&)>;

Transaction Transact(DhcpTransport& transport, const DhcpExchangeConfig& config,
                     const DhcpClientMessage& message, Clock::time_point deadline,
                     const Fits& fits) {
  const std::string bytes = EncodeDhcpClientMessage(message);
  const std::string name = DhcpMessageTypeName(static_cast<uint8_t>(message.type));
  Transaction transaction;
  std::chrono::milliseconds interval = kDhcpFirstRetransmit;
  while (true) {
    if (auto error = transport.Send(bytes)) {
      transaction.error = "sending a " + name + " on " + config.iface + ": " + *error;
      return transaction;
    }
    const Clock::time_point resend = std::min(transport.Now() + interval, deadline);
    interval *= 2;
    while (true) {
      DhcpTransport::Received received = transport.Receive(resend);
      if (!received.error.empty()) {
        transaction.error = "receiving DHCP replies on " + config.iface + ": " + received.error;
        return transaction;
      }
      if (!received.datagram) break;
      auto decoded = DecodeDhcpServerMessage(*received.datagram, message.xid, message.mac);
      std::optional<std::string> misfit;
      if (auto* error = std::get_if<std::string>(&decoded)) {
        misfit = *error;
      } else {
        misfit = fits(std::get<DhcpServerMessage>(decoded));
      }
      if (!misfit) {
        transaction.reply = std::get<DhcpServerMessage>(std::move(decoded));
        return transaction;
      }
      ++transaction.skipped;
      transaction.last_skipped = *misfit;
    }
    if (transport.Now() >= deadline) return transaction;
  }
}

std::string SkippedNote(const Transaction& transaction) {
  if (transaction.skipped == 0) return "";
  return " (" + std::to_string(transaction.skipped) + " other repl" +
         (transaction.skipped == 1 ? "y" : "ies") +
         " skipped, the last: " + transaction.last_skipped + ")";
}

class UdpDhcpTransport : public DhcpTransport {
 public:
  explicit UdpDhcpTransport(int fd) : fd_(fd) {}
  ~UdpDhcpTransport() override { close(fd_); }
  UdpDhcpTransport(const UdpDhcpTransport&) = delete;
  UdpDhcpTransport& operator=(const UdpDhcpTransport&) = delete;

  Clock::time_point Now() override { return Clock::now(); }

  SystemError Send(std::string_view message) override {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(kServerPort);
    to.sin_addr.s_addr = htonl(INADDR_BROADCAST);
    while (true) {
      ssize_t n = sendto(fd_, message.data(), message.size(), 0,
                         reinterpret_cast<const sockaddr*>(&to), sizeof(to));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Errno("sendto 255.255.255.255:67");
      if (static_cast<std::size_t>(n) != message.size()) return "sendto sent a part of a datagram";
      return std::nullopt;
    }
  }

  Received Receive(Clock::time_point deadline) override {
    Received received;
    std::string buffer(kMaxDatagramBytes, '\0');
    while (true) {
      // Checked before every read, so a flood of datagrams cannot hold the client past it.
      const Clock::time_point now = Clock::now();
      if (now >= deadline) return received;
      auto wait = std::chrono::ceil<std::chrono::milliseconds>(deadline - now);
      pollfd pfd{fd_, POLLIN, 0};
      int ready = poll(&pfd, 1, static_cast<int>(wait.count()));
      if (ready < 0 && errno == EINTR) continue;
      if (ready < 0) {
        received.error = Errno("poll");
        return received;
      }
      if (ready == 0) continue;
      ssize_t n = recv(fd_, buffer.data(), buffer.size(), MSG_DONTWAIT);
      if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
      if (n < 0) {
        received.error = Errno("recv");
        return received;
      }
      buffer.resize(static_cast<std::size_t>(n));
      received.datagram = std::move(buffer);
      return received;
    }
  }

 private:
  int fd_;
};

}  // namespace

std::variant<DhcpLease, std::string> ExchangeDhcp(DhcpTransport& transport,
                                                  const DhcpExchangeConfig& config) {
  const Clock::time_point deadline = transport.Now() + config.timeout;
  const std::string within = " within " + std::to_string(config.timeout.count()) + " ms";

  DhcpClientMessage discover;
  discover.type = DhcpMessageType::kDiscover;
  discover.xid = config.xid;
  discover.mac = config.mac;
  discover.hostname = config.hostname;
  discover.requested_ip = config.requested_ip;
  Transaction offered = Transact(transport, config, discover, deadline,
                                 [](const DhcpServerMessage& reply) -> std::optional<std::string> {
                                   if (reply.type == DhcpMessageType::kOffer) return std::nullopt;
                                   return "a " +
                                          DhcpMessageTypeName(static_cast<uint8_t>(reply.type)) +
                                          " while waiting for an offer";
                                 });
  if (!offered.error.empty()) return offered.error;
  if (!offered.reply) return "no DHCP offer on " + config.iface + within + SkippedNote(offered);
  const DhcpLease& offer = offered.reply->lease;

  DhcpClientMessage request = discover;
  request.type = DhcpMessageType::kRequest;
  request.requested_ip = offer.address;
  request.server_id = offer.server_id;
  const std::string server = FormatIpv4(offer.server_id);
  Transaction answered =
      Transact(transport, config, request, deadline,
               [&](const DhcpServerMessage& reply) -> std::optional<std::string> {
                 if (reply.type == DhcpMessageType::kOffer)
                   return "a DHCPOFFER after the offer was taken";
                 // Another server's answer is about another server's offer (RFC 2131 4.4.1).
                 if (reply.lease.server_id != 0 && reply.lease.server_id != offer.server_id) {
                   return "a " + DhcpMessageTypeName(static_cast<uint8_t>(reply.type)) + " from " +
                          FormatIpv4(reply.lease.server_id) + ", not from " + server;
                 }
                 return std::nullopt;
               });
  if (!answered.error.empty()) return answered.error;
  const std::string asked = FormatIpv4(offer.address) + " on " + config.iface;
  if (!answered.reply) {
    return "no DHCP answer from " + server + " to the request for " + asked + within +
           SkippedNote(answered);
  }
  if (answered.reply->type == DhcpMessageType::kNak) {
    std::string error = "DHCP server " + server + " refused " + asked + " (DHCPNAK)";
    if (!answered.reply->message.empty()) error += ": " + answered.reply->message;
    return error;
  }
  DhcpLease lease = answered.reply->lease;
  if (lease.server_id == 0) lease.server_id = offer.server_id;
  return lease;
}

std::variant<std::unique_ptr<DhcpTransport>, std::string> OpenDhcpSocket(const std::string& iface) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("UDP socket for DHCP on " + iface);
  auto transport = std::make_unique<UdpDhcpTransport>(fd);  // closes fd from here on
  const int on = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0) {
    return Errno("SO_REUSEADDR on the DHCP socket for " + iface);
  }
  if (setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &on, sizeof(on)) != 0) {
    return Errno("SO_BROADCAST on the DHCP socket for " + iface);
  }
  if (iface.empty() || iface.size() >= IFNAMSIZ) return "interface name '" + iface + "' is invalid";
  if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, iface.c_str(),
                 static_cast<socklen_t>(iface.size() + 1)) != 0) {
    return Errno("SO_BINDTODEVICE " + iface + " on the DHCP socket");
  }
  sockaddr_in local{};
  local.sin_family = AF_INET;
  local.sin_port = htons(kClientPort);
  local.sin_addr.s_addr = htonl(INADDR_ANY);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&local), sizeof(local)) != 0) {
    return Errno("bind 0.0.0.0:68 for DHCP on " + iface);
  }
  return std::unique_ptr<DhcpTransport>(std::move(transport));
}

}  // namespace ferry::guest
