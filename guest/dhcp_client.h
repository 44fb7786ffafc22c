// The DHCP client inside ferry-guest, so that renewing a clone's lease starts no program (under
// TCG emulation each fork+exec costs tens to hundreds of milliseconds).
//
// The exchange (RFC 2131, from the INIT state):
//
//   client                                  server
//   DHCPDISCOVER (requested IP: the current)  ->
//                                           <-  DHCPOFFER (yiaddr, server id)
//   DHCPREQUEST (requested IP: yiaddr,        ->
//                server id: the offer's)
//                                           <-  DHCPACK (the lease) or DHCPNAK (refused)
//
// Each message is broadcast to 255.255.255.255:67 from port 68, with the broadcast flag, and
// sent again after 0.5 s, then 1 s, ... while no answer comes, all within one deadline. Replies
// are read until one fits: another client's, another transaction's or a malformed one is
// skipped (the last reason is quoted when none fits). An offer is taken as it comes (the first).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "guest/dhcp_lease.h"
#include "guest/guest_system.h"

namespace ferry::guest {

// Where the client's messages go and its replies come from; a socket in the guest, a script in
// the tests.
class DhcpTransport {
 public:
  virtual ~DhcpTransport() = default;
  virtual std::chrono::steady_clock::time_point Now() = 0;
  // Broadcasts one message to the servers' port.
  virtual SystemError Send(std::string_view message) = 0;
  struct Received {
    std::optional<std::string> datagram;  // nullopt: none came before the deadline, or error
    std::string error;                    // set when the socket failed
  };
  // The next datagram that arrives before `deadline`.
  virtual Received Receive(std::chrono::steady_clock::time_point deadline) = 0;
};

struct DhcpExchangeConfig {
  std::string iface;  // for messages only
  MacAddress mac{};
  std::string hostname;
  std::optional<uint32_t> requested_ip;  // asked for in the DISCOVER
  uint32_t xid = 0;
  std::chrono::milliseconds timeout{3000};  // for the whole exchange
};

inline constexpr std::chrono::milliseconds kDhcpFirstRetransmit{500};

// DISCOVER, OFFER, REQUEST, ACK over `transport`. The lease, or why there is none, naming the
// interface: "no DHCP offer on eth0 within 3000 ms", "DHCP server 10.0.2.2 refused 10.0.2.16 on
// eth0 (DHCPNAK): ...".
std::variant<DhcpLease, std::string> ExchangeDhcp(DhcpTransport& transport,
                                                  const DhcpExchangeConfig& config);

// A UDP socket for DHCP on `iface`: bound to 0.0.0.0:68 (SO_REUSEADDR, so another client on the
// port does not stop it), tied to the interface (SO_BINDTODEVICE: the message leaves there even
// when the interface has no address and no route), allowed to broadcast. Replies to the client
// are broadcast (it asks so, and QEMU's user networking always does), which such a socket
// receives. REQUIRES: root (CAP_NET_RAW for SO_BINDTODEVICE, CAP_NET_BIND_SERVICE for port 68).
std::variant<std::unique_ptr<DhcpTransport>, std::string> OpenDhcpSocket(const std::string& iface);

}  // namespace ferry::guest
