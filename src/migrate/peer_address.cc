#include "migrate/peer_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>

namespace ferry::migrate {

std::string PeerAddress::ToString() const {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Result<PeerAddress> ParsePeerAddress(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("peer address \"" + text + "\": " + why +
                                   "; write it as host:port or [ipv6]:port");
  };
  PeerAddress out;
  std::string port;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos) return bad("missing ']'");
    out.host = text.substr(1, close - 1);
    if (close + 1 >= text.size() || text[close + 1] != ':') return bad("missing :port");
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos) return bad("missing :port");
    out.host = text.substr(0, colon);
    if (out.host.find(':') != std::string::npos) return bad("an IPv6 address needs brackets");
    port = text.substr(colon + 1);
  }
  if (out.host.empty()) return bad("missing host");
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535) {
    return bad("the port must be a number from 0 to 65535");
  }
  out.port = static_cast<uint16_t>(value);
  return out;
}

std::string SocketAddressToString(const sockaddr* address) {
  char text[INET6_ADDRSTRLEN] = {};
  if (address->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(address);
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    return std::string(text) + ":" + std::to_string(ntohs(in->sin_port));
  }
  if (address->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    return "[" + std::string(text) + "]:" + std::to_string(ntohs(in6->sin6_port));
  }
  return "address family " + std::to_string(address->sa_family);
}

}  // namespace ferry::migrate
