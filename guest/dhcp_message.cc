#include "guest/dhcp_message.h"

#include <arpa/inet.h>

#include <array>
#include <cstdio>

#include "guest/identity_request.h"

namespace ferry::guest {
namespace {

constexpr std::size_t kHeaderBytes = 236;
constexpr std::size_t kOptionsStart = kHeaderBytes + 4;  // after the magic cookie
constexpr std::size_t kXidOffset = 4;
constexpr std::size_t kFlagsOffset = 10;
constexpr std::size_t kYiaddrOffset = 16;
constexpr std::size_t kChaddrOffset = 28;
constexpr std::array<uint8_t, 4> kMagicCookie = {99, 130, 83, 99};
constexpr uint16_t kBroadcastFlag = 0x8000;
constexpr std::size_t kMaxServerMessageChars = 200;

constexpr uint8_t kBootRequest = 1;
constexpr uint8_t kBootReply = 2;
constexpr uint8_t kHtypeEthernet = 1;
constexpr uint8_t kEthernetAddressBytes = 6;

// Option codes (RFC 2132).
constexpr uint8_t kOptPad = 0;
constexpr uint8_t kOptSubnetMask = 1;
constexpr uint8_t kOptRouter = 3;
constexpr uint8_t kOptDns = 6;
constexpr uint8_t kOptHostname = 12;
constexpr uint8_t kOptDomain = 15;
constexpr uint8_t kOptBroadcast = 28;
constexpr uint8_t kOptRequestedIp = 50;
constexpr uint8_t kOptLeaseTime = 51;
constexpr uint8_t kOptMessageType = 53;
constexpr uint8_t kOptServerId = 54;
constexpr uint8_t kOptParameterList = 55;
constexpr uint8_t kOptMessage = 56;
constexpr uint8_t kOptClientId = 61;
constexpr uint8_t kOptEnd = 255;

void PutU32(std::string& out, std::size_t offset, uint32_t value) {
  for (int i = 0; i < 4; ++i) out[offset + i] = static_cast<char>(value >> (24 - 8 * i));
}

uint32_t GetU32(std::string_view bytes, std::size_t offset) {
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i) value = value << 8 | static_cast<uint8_t>(bytes[offset + i]);
  return value;
}

void AddOption(std::string& options, uint8_t code, std::string_view value) {
  options.push_back(static_cast<char>(code));
  options.push_back(static_cast<char>(value.size()));
  options.append(value);
}

std::string Ipv4Bytes(uint32_t address) {
  std::string bytes(4, '\0');
  PutU32(bytes, 0, address);
  return bytes;
}

// An address a host can have or route through: not 0.0.0.0/8, loopback, multicast, class E or
// the limited broadcast.
bool IsUnicast(uint32_t address) {
  const uint32_t first = address >> 24;
  return first != 0 && first != 127 && first < 224;
}

std::optional<int> PrefixLength(uint32_t mask) {
  int prefix = __builtin_popcount(mask);
  uint32_t expected = prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
  if (mask != expected || prefix == 0) return std::nullopt;
  return prefix;
}

bool IsDomainName(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

std::string Printable(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, kMaxServerMessageChars)) {
    out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  }
  return out;
}

// The addresses of a list option (3, 6): one or more, each unicast.
std::variant<std::vector<uint32_t>, std::string> AddressList(std::string_view value,
                                                             const char* what) {
  if (value.empty() || value.size() % 4 != 0) {
    return std::string(what) + " option of " + std::to_string(value.size()) +
           " bytes is not a list of IPv4 addresses";
  }
  std::vector<uint32_t> addresses;
  for (std::size_t i = 0; i < value.size(); i += 4) {
    uint32_t address = GetU32(value, i);
    if (!IsUnicast(address)) {
      return std::string(what) + " " + FormatIpv4(address) + " is not a unicast address";
    }
    addresses.push_back(address);
  }
  return addresses;
}

}  // namespace

std::string DhcpMessageTypeName(uint8_t type) {
  switch (type) {
    case 1:
      return "DHCPDISCOVER";
    case 2:
      return "DHCPOFFER";
    case 3:
      return "DHCPREQUEST";
    case 4:
      return "DHCPDECLINE";
    case 5:
      return "DHCPACK";
    case 6:
      return "DHCPNAK";
    case 7:
      return "DHCPRELEASE";
    case 8:
      return "DHCPINFORM";
  }
  return "DHCP message type " + std::to_string(type);
}

std::string EncodeDhcpClientMessage(const DhcpClientMessage& message) {
  std::string out(kOptionsStart, '\0');
  out[0] = static_cast<char>(kBootRequest);
  out[1] = static_cast<char>(kHtypeEthernet);
  out[2] = static_cast<char>(kEthernetAddressBytes);
  PutU32(out, kXidOffset, message.xid);
  out[kFlagsOffset] = static_cast<char>(kBroadcastFlag >> 8);
  for (std::size_t i = 0; i < message.mac.size(); ++i) {
    out[kChaddrOffset + i] = static_cast<char>(message.mac[i]);
  }
  for (std::size_t i = 0; i < kMagicCookie.size(); ++i) {
    out[kHeaderBytes + i] = static_cast<char>(kMagicCookie[i]);
  }

  std::string options;
  AddOption(options, kOptMessageType, std::string(1, static_cast<char>(message.type)));
  std::string client_id(1, static_cast<char>(kHtypeEthernet));
  client_id.append(message.mac.begin(), message.mac.end());
  AddOption(options, kOptClientId, client_id);
  if (message.requested_ip) AddOption(options, kOptRequestedIp, Ipv4Bytes(*message.requested_ip));
  if (message.server_id) AddOption(options, kOptServerId, Ipv4Bytes(*message.server_id));
  if (!message.hostname.empty() && message.hostname.size() <= 255) {
    AddOption(options, kOptHostname, message.hostname);
  }
  const char parameters[] = {kOptSubnetMask, kOptRouter,    kOptDns,
                             kOptDomain,     kOptBroadcast, kOptLeaseTime};
  AddOption(options, kOptParameterList, std::string_view(parameters, sizeof(parameters)));
  options.push_back(static_cast<char>(kOptEnd));
  // At most 290 bytes of options (a 255-byte hostname included) fit the 308 there are.
  out += options;
  if (out.size() < kDhcpClientMessageBytes) out.resize(kDhcpClientMessageBytes, '\0');
  return out;
}

std::variant<DhcpServerMessage, std::string> DecodeDhcpServerMessage(std::string_view bytes,
                                                                     uint32_t xid,
                                                                     const MacAddress& mac) {
  if (bytes.size() < kOptionsStart) {
    return "message of " + std::to_string(bytes.size()) + " bytes is shorter than a DHCP header";
  }
  auto byte = [&](std::size_t i) { return static_cast<uint8_t>(bytes[i]); };
  if (byte(0) != kBootReply) return "not a BOOTP reply (op " + std::to_string(byte(0)) + ")";
  if (byte(1) != kHtypeEthernet || byte(2) != kEthernetAddressBytes) {
    return "not for an Ethernet address (htype " + std::to_string(byte(1)) + ", hlen " +
           std::to_string(byte(2)) + ")";
  }
  if (uint32_t got = GetU32(bytes, kXidOffset); got != xid) {
    char text[64];
    std::snprintf(text, sizeof(text), "for transaction 0x%08x, not ours (0x%08x)", got, xid);
    return std::string(text);
  }
  MacAddress chaddr{};
  for (std::size_t i = 0; i < chaddr.size(); ++i) chaddr[i] = byte(kChaddrOffset + i);
  if (chaddr != mac) return "for another client (" + FormatMac(chaddr) + ")";
  for (std::size_t i = 0; i < kMagicCookie.size(); ++i) {
    if (byte(kHeaderBytes + i) != kMagicCookie[i]) return "no DHCP magic cookie";
  }

  // Each option's value, the first time it appears.
  std::array<std::optional<std::string_view>, 256> options;
  std::size_t pos = kOptionsStart;
  while (pos < bytes.size()) {
    uint8_t code = byte(pos);
    if (code == kOptPad) {
      ++pos;
      continue;
    }
    if (code == kOptEnd) break;
    if (pos + 1 >= bytes.size()) {
      return "option " + std::to_string(code) + " has no length byte before the message ends";
    }
    std::size_t length = byte(pos + 1);
    if (pos + 2 + length > bytes.size()) {
      return "option " + std::to_string(code) + " of " + std::to_string(length) +
             " bytes runs past the end of the message";
    }
    if (!options[code]) options[code] = bytes.substr(pos + 2, length);
    pos += 2 + length;
  }

  auto sized = [&](uint8_t code, std::size_t size) -> std::optional<std::string> {
    if (options[code] && options[code]->size() != size) {
      return "option " + std::to_string(code) + " has " + std::to_string(options[code]->size()) +
             " bytes, not " + std::to_string(size);
    }
    return std::nullopt;
  };
  for (auto [code, size] : {std::pair<uint8_t, std::size_t>{kOptMessageType, 1},
                            {kOptSubnetMask, 4},
                            {kOptServerId, 4},
                            {kOptLeaseTime, 4}}) {
    if (auto error = sized(code, size)) return *error;
  }
  if (!options[kOptMessageType]) return "a BOOTP reply without a DHCP message type (option 53)";
  const uint8_t type = static_cast<uint8_t>((*options[kOptMessageType])[0]);
  DhcpServerMessage message;
  switch (type) {
    case static_cast<uint8_t>(DhcpMessageType::kOffer):
    case static_cast<uint8_t>(DhcpMessageType::kAck):
    case static_cast<uint8_t>(DhcpMessageType::kNak):
      message.type = static_cast<DhcpMessageType>(type);
      break;
    default:
      return "a " + DhcpMessageTypeName(type) + ", which is no reply to a client";
  }
  const std::string name = DhcpMessageTypeName(type);
  DhcpLease& lease = message.lease;
  if (options[kOptServerId]) lease.server_id = GetU32(*options[kOptServerId], 0);
  if (options[kOptMessage]) message.message = Printable(*options[kOptMessage]);
  if (message.type == DhcpMessageType::kNak) return message;

  lease.address = GetU32(bytes, kYiaddrOffset);
  if (!IsUnicast(lease.address)) {
    return "a " + name + " for " + FormatIpv4(lease.address) + ", which is not a unicast address";
  }
  if (message.type == DhcpMessageType::kOffer && !options[kOptServerId]) {
    return "a DHCPOFFER without a server identifier (option 54)";
  }
  if (options[kOptSubnetMask]) {
    uint32_t mask = GetU32(*options[kOptSubnetMask], 0);
    auto prefix = PrefixLength(mask);
    if (!prefix) return "subnet mask " + FormatIpv4(mask) + " is not a prefix";
    lease.prefix_length = *prefix;
  }
  if (options[kOptRouter]) {
    auto routers = AddressList(*options[kOptRouter], "router");
    if (auto* error = std::get_if<std::string>(&routers)) return *error;
    lease.router = std::get<std::vector<uint32_t>>(routers).front();
  }
  if (options[kOptDns]) {
    auto servers = AddressList(*options[kOptDns], "DNS server");
    if (auto* error = std::get_if<std::string>(&servers)) return *error;
    lease.dns_servers = std::get<std::vector<uint32_t>>(servers);
  }
  if (options[kOptDomain]) {
    // Some servers count a terminating NUL in the length.
    std::string_view domain = *options[kOptDomain];
    while (!domain.empty() && domain.back() == '\0') domain.remove_suffix(1);
    // It goes into /etc/resolv.conf, where a newline would add a line of the server's choosing.
    if (!IsDomainName(domain)) return "domain option has characters a domain name cannot have";
    lease.domain = std::string(domain);
  }
  if (options[kOptLeaseTime]) lease.lease_seconds = GetU32(*options[kOptLeaseTime], 0);
  return message;
}

std::string FormatIpv4(uint32_t address) {
  return std::to_string(address >> 24) + "." + std::to_string(address >> 16 & 0xff) + "." +
         std::to_string(address >> 8 & 0xff) + "." + std::to_string(address & 0xff);
}

std::optional<uint32_t> ParseIpv4(std::string_view text) {
  std::string address(text.substr(0, text.find('/')));
  in_addr parsed{};
  if (inet_pton(AF_INET, address.c_str(), &parsed) != 1) return std::nullopt;
  return ntohl(parsed.s_addr);
}

}  // namespace ferry::guest
