#include "core/mac_address.h"

#include <cstdio>

#include "core/ids.h"

namespace ferry {
namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Result<MacAddress> MacAddress::Parse(std::string_view text, const std::string& what) {
  auto bad = [&](const std::string& why) {
    // At most 32 characters of the input: it may be anything a peer sent.
    std::string shown(text.substr(0, 32));
    for (char& c : shown) {
      if (c < ' ' || c > '~') c = '?';
    }
    return Status::InvalidArgument(what + " '" + shown + (text.size() > 32 ? "...'" : "'") + " " +
                                   why + "; write six hex octets like 52:54:00:12:34:56");
  };
  if (text.size() != 17) return bad("is not a MAC address");
  std::array<uint8_t, 6> octets{};
  const char separator = text[2];
  if (separator != ':' && separator != '-') return bad("is not a MAC address");
  for (size_t i = 0; i < 6; ++i) {
    const int hi = HexDigit(text[3 * i]), lo = HexDigit(text[3 * i + 1]);
    if (hi < 0 || lo < 0) return bad("has a character that is not a hex digit");
    if (i < 5 && text[3 * i + 2] != separator) return bad("is not a MAC address");
    octets[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  if (octets[0] & 1) return bad("is a multicast address, which no NIC can own");
  if (octets == std::array<uint8_t, 6>{}) return bad("is all zeros");
  return MacAddress(octets);
}

MacAddress MacAddress::Random() {
  const std::string hex = RandomHex(3);
  std::array<uint8_t, 6> octets = {0x52, 0x54, 0x00, 0, 0, 0};
  for (size_t i = 0; i < 3; ++i) {
    octets[3 + i] = static_cast<uint8_t>(HexDigit(hex[2 * i]) * 16 + HexDigit(hex[2 * i + 1]));
  }
  return MacAddress(octets);
}

std::string MacAddress::ToString() const {
  char out[18];
  std::snprintf(out, sizeof out, "%02x:%02x:%02x:%02x:%02x:%02x", octets_[0], octets_[1],
                octets_[2], octets_[3], octets_[4], octets_[5]);
  return out;
}

}  // namespace ferry
