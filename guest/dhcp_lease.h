// DhcpLease: what a DHCP server granted, as ferry-guest applies it (address and prefix, default
// route, /etc/resolv.conf). IPv4 addresses are uint32_t in host byte order (10.0.2.15 is
// 0x0a00020f), so comparisons and masks need no byte swapping; FormatIpv4 in dhcp_message.h
// writes them as text.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ferry::guest {

struct DhcpLease {
  uint32_t address = 0;                   // yiaddr of the DHCPACK
  int prefix_length = 24;                 // from option 1; 24 when the server sends no mask
  std::optional<uint32_t> router;         // the first router of option 3
  std::vector<uint32_t> dns_servers;      // option 6, in the server's order
  std::string domain;                     // option 15, checked to be a domain name; may be empty
  uint32_t server_id = 0;                 // option 54: the server that granted it
  std::optional<uint32_t> lease_seconds;  // option 51
};

}  // namespace ferry::guest
