// DHCP messages (RFC 2131, options RFC 2132) as ferry-guest's client sends and reads them: a
// DHCPDISCOVER or DHCPREQUEST out, a DHCPOFFER, DHCPACK or DHCPNAK back. Pure functions; the
// socket is in dhcp_client.h.
//
// A message is the fixed BOOTP header (236 bytes: op, htype 1 = Ethernet, hlen 6, hops, xid,
// secs, flags, ciaddr, yiaddr, siaddr, giaddr, chaddr[16], sname[64], file[128]), the magic
// cookie 99.130.83.99, then options: code, length, value; 0 is a pad byte, 255 the end.
//
// The bytes decoded come from the network: every length is checked against the buffer, and
// anything unexpected is refused with a reason, never asserted on.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "guest/dhcp_lease.h"
#include "guest/guest_system.h"

namespace ferry::guest {

// Option 53 values.
enum class DhcpMessageType : uint8_t {
  kDiscover = 1,
  kOffer = 2,
  kRequest = 3,
  kAck = 5,
  kNak = 6,
};

// The name of a message type for errors: "DHCPOFFER"; "DHCP message type 7" for others.
std::string DhcpMessageTypeName(uint8_t type);

// What the client sends. Encoded with the broadcast flag set (the client has no address to
// take a unicast reply at) and padded to 548 bytes, the size a minimal 576-byte IP datagram
// carries, which every server reads (QEMU's slirp drops shorter ones).
struct DhcpClientMessage {
  DhcpMessageType type = DhcpMessageType::kDiscover;  // kDiscover or kRequest
  uint32_t xid = 0;
  MacAddress mac{};                      // chaddr, and option 61 as 01 + MAC
  std::string hostname;                  // option 12 when 1..255 bytes
  std::optional<uint32_t> requested_ip;  // option 50
  std::optional<uint32_t> server_id;     // option 54 (a DHCPREQUEST answering an offer)
};

inline constexpr std::size_t kDhcpClientMessageBytes = 548;

std::string EncodeDhcpClientMessage(const DhcpClientMessage& message);

// A server's reply, checked. For an offer or an ack, lease.address is a usable unicast address
// and lease.server_id is set (an ack without option 54 gets 0). For a nak only
// lease.server_id (0 when absent) and `message` mean anything.
struct DhcpServerMessage {
  DhcpMessageType type = DhcpMessageType::kOffer;  // kOffer, kAck or kNak
  DhcpLease lease;
  std::string message;  // option 56, printable ASCII only, at most 200 characters
};

// Decodes a reply to the client with transaction `xid` and hardware address `mac`. Refuses, with
// the reason, anything else: too short, not a BOOTP reply for Ethernet, another xid or chaddr
// (a reply to another client), no magic cookie, an option that runs past the buffer or has the
// wrong length for its kind, no or an unknown message type, an offer or ack for an address that
// is not unicast, a mask that is not a prefix, a domain with characters a domain cannot have.
// When an option appears more than once, the first counts.
std::variant<DhcpServerMessage, std::string> DecodeDhcpServerMessage(std::string_view bytes,
                                                                     uint32_t xid,
                                                                     const MacAddress& mac);

// "10.0.2.15" for 0x0a00020f.
std::string FormatIpv4(uint32_t address);
// The address in "10.0.2.15" or "10.0.2.15/24" (the prefix is ignored), or nullopt.
std::optional<uint32_t> ParseIpv4(std::string_view text);

}  // namespace ferry::guest
