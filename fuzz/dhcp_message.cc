// Fuzzes ferry-guest's DHCP reply decoder (guest/dhcp_message.h DecodeDhcpServerMessage): a
// datagram from the network. Each input is decoded as a reply to a fixed client, and again as a
// reply to the transaction and hardware address it names itself, so that the checks behind
// the xid and chaddr match are reached too.
#include "guest/dhcp_message.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <variant>

namespace {

using namespace ferry::guest;

void Check(const std::variant<DhcpServerMessage, std::string>& decoded) {
  const auto* message = std::get_if<DhcpServerMessage>(&decoded);
  if (message == nullptr) return;
  for (char c : message->message) {
    if (c < 0x20 || c > 0x7e) {
      std::fprintf(stderr, "dhcp_message: a non-printable byte in the server's message\n");
      std::abort();
    }
  }
  if (message->message.size() > 200) {
    std::fprintf(stderr, "dhcp_message: server message over 200 characters\n");
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const MacAddress fixed_mac{0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
  Check(DecodeDhcpServerMessage(bytes, 0x12345678, fixed_mac));
  if (size < 34) return 0;
  const uint32_t xid = uint32_t{data[4]} << 24 | uint32_t{data[5]} << 16 | uint32_t{data[6]} << 8 |
                       uint32_t{data[7]};
  MacAddress mac{};
  for (size_t i = 0; i < mac.size(); ++i) mac[i] = data[28 + i];
  Check(DecodeDhcpServerMessage(bytes, xid, mac));
  return 0;
}
