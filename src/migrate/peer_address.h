// Addresses of peer agents as users write them: "host:port", "10.0.0.2:7700", "[::1]:7700".
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "core/status.h"

namespace ferry::migrate {

struct PeerAddress {
  std::string host;  // a name or a literal address, without brackets
  uint16_t port = 0;

  // "host:port", with brackets around an IPv6 literal.
  std::string ToString() const;
};

// Parses "host:port" or "[ipv6]:port". Port 0 is accepted (a listener picks one).
Result<PeerAddress> ParsePeerAddress(const std::string& text);

// "10.0.0.2:7700" / "[::1]:7700" for an AF_INET or AF_INET6 socket address.
std::string SocketAddressToString(const sockaddr* address);

}  // namespace ferry::migrate
