// A guest NIC's MAC address: six octets, unicast. It exists only through Parse or Random, so a
// value of this type can be put on QEMU's command line as it prints: "52:54:00:ab:cd:ef", lower
// case, colons, nothing else (no room for a ",romfile=..." a peer might append).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace ferry {

class MacAddress {
 public:
  // "52:54:00:AB:cd:ef" (or '-' separated). Refused: any other length or separator, a non-hex
  // digit, a multicast address (the low bit of the first octet; a NIC cannot own one), and
  // 00:00:00:00:00:00. `what` names the field in the error ("the MAC of vm web-1").
  static Result<MacAddress> Parse(std::string_view text, const std::string& what = "MAC address");
  // 52:54:00:xx:xx:xx (QEMU's prefix), random.
  static MacAddress Random();

  std::string ToString() const;
  const std::array<uint8_t, 6>& octets() const { return octets_; }
  bool operator==(const MacAddress&) const = default;

 private:
  explicit MacAddress(std::array<uint8_t, 6> octets) : octets_(octets) {}
  std::array<uint8_t, 6> octets_;
};

}  // namespace ferry
