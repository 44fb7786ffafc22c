// For DHCP unit tests: server replies built byte by byte (so a test can make them as wrong as it
// likes), and the client's messages read back field by field, independently of
// dhcp_message.cc.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "guest/guest_system.h"

namespace ferry::guest::dhcp_test {

inline std::string Ipv4Bytes(uint32_t address) {
  return {static_cast<char>(address >> 24), static_cast<char>(address >> 16),
          static_cast<char>(address >> 8), static_cast<char>(address)};
}

inline std::string Option(uint8_t code, std::string_view value) {
  return std::string{static_cast<char>(code), static_cast<char>(value.size())} + std::string(value);
}

inline std::string Ipv4Option(uint8_t code, uint32_t address) {
  return Option(code, Ipv4Bytes(address));
}

inline uint32_t GetU32(std::string_view bytes, std::size_t offset) {
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i) value = value << 8 | static_cast<uint8_t>(bytes.at(offset + i));
  return value;
}

inline constexpr uint32_t kServer = 0x0a000202;  // 10.0.2.2, QEMU user networking's
inline constexpr uint32_t kDns = 0x0a000203;     // 10.0.2.3
inline constexpr uint32_t kKept = 0x0a00020f;    // 10.0.2.15
inline constexpr uint32_t kLeased = 0x0a000210;  // 10.0.2.16

// A BOOTP reply (op 2, Ethernet) for `xid` and `mac` offering `yiaddr`, with the magic cookie,
// then `options` exactly as given (no end option added).
inline std::string RawReply(uint32_t xid, const MacAddress& mac, uint32_t yiaddr,
                            const std::string& options) {
  std::string bytes(240, '\0');
  bytes[0] = 2;
  bytes[1] = 1;
  bytes[2] = 6;
  bytes.replace(4, 4, Ipv4Bytes(xid));
  bytes.replace(16, 4, Ipv4Bytes(yiaddr));
  bytes.replace(20, 4, Ipv4Bytes(kServer));  // siaddr
  for (std::size_t i = 0; i < mac.size(); ++i) bytes[28 + i] = static_cast<char>(mac[i]);
  bytes.replace(236, 4, "\x63\x82\x53\x63");
  return bytes + options;
}

// What QEMU's user networking sends: type, server id, lease time, mask, router, DNS, end.
inline std::string SlirpReply(uint8_t type, uint32_t xid, const MacAddress& mac,
                              uint32_t yiaddr = kLeased) {
  std::string options = Option(53, std::string(1, static_cast<char>(type))) +
                        Ipv4Option(54, kServer) + Option(51, Ipv4Bytes(86400)) +
                        Ipv4Option(1, 0xffffff00) + Ipv4Option(3, kServer) + Ipv4Option(6, kDns);
  std::string bytes = RawReply(xid, mac, type == 6 ? 0 : yiaddr, options + "\xff");
  bytes.resize(548, '\0');
  return bytes;
}

// A client message read back.
struct ClientMessage {
  std::size_t size = 0;
  uint8_t op = 0, htype = 0, hlen = 0;
  uint32_t xid = 0;
  uint16_t flags = 0;
  MacAddress chaddr{};
  bool cookie = false;
  std::map<uint8_t, std::string> options;  // each option's value
  bool ended = false;                      // an end option was seen
};

inline ClientMessage ReadClientMessage(std::string_view bytes) {
  ClientMessage message;
  message.size = bytes.size();
  if (bytes.size() < 240) return message;
  auto byte = [&](std::size_t i) { return static_cast<uint8_t>(bytes[i]); };
  message.op = byte(0);
  message.htype = byte(1);
  message.hlen = byte(2);
  message.xid = GetU32(bytes, 4);
  message.flags = static_cast<uint16_t>(byte(10) << 8 | byte(11));
  for (std::size_t i = 0; i < 6; ++i) message.chaddr[i] = byte(28 + i);
  message.cookie = bytes.substr(236, 4) == "\x63\x82\x53\x63";
  for (std::size_t pos = 240; pos < bytes.size();) {
    uint8_t code = byte(pos);
    if (code == 0) {
      ++pos;
      continue;
    }
    if (code == 255) {
      message.ended = true;
      break;
    }
    if (pos + 1 >= bytes.size() || pos + 2 + byte(pos + 1) > bytes.size()) break;
    message.options[code] = std::string(bytes.substr(pos + 2, byte(pos + 1)));
    pos += 2 + byte(pos + 1);
  }
  return message;
}

}  // namespace ferry::guest::dhcp_test
