#include "core/guid.h"

#include "core/ids.h"

namespace ferry {
namespace {

constexpr size_t kTextLength = 36;

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsDash(size_t i) { return i == 8 || i == 13 || i == 18 || i == 23; }

}  // namespace

Result<Guid> Guid::Parse(std::string_view text, const std::string& what) {
  auto bad = [&] {
    std::string shown(text.substr(0, 40));
    for (char& c : shown) {
      if (c < ' ' || c > '~') c = '?';
    }
    return Status::InvalidArgument(what + " '" + shown + (text.size() > 40 ? "...'" : "'") +
                                   " is not a GUID; write 8-4-4-4-12 hex digits like "
                                   "6f1a7c1e-1111-2222-3333-444455556666");
  };
  if (text.size() != kTextLength) return bad();
  std::array<uint8_t, 16> bytes{};
  size_t nibble = 0;
  for (size_t i = 0; i < kTextLength; ++i) {
    if (IsDash(i)) {
      if (text[i] != '-') return bad();
      continue;
    }
    const int v = HexDigit(text[i]);
    if (v < 0) return bad();
    bytes[nibble / 2] = static_cast<uint8_t>(bytes[nibble / 2] * 16 + v);
    ++nibble;
  }
  return Guid(bytes);
}

Guid Guid::Random() {
  const std::string hex = RandomHex(16);
  std::array<uint8_t, 16> bytes{};
  for (size_t i = 0; i < 16; ++i) {
    bytes[i] = static_cast<uint8_t>(HexDigit(hex[2 * i]) * 16 + HexDigit(hex[2 * i + 1]));
  }
  bytes[6] = static_cast<uint8_t>((bytes[6] & 0x0f) | 0x40);  // version 4
  bytes[8] = static_cast<uint8_t>((bytes[8] & 0x3f) | 0x80);  // RFC 4122 variant
  return Guid(bytes);
}

std::string Guid::ToString() const {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(kTextLength);
  for (size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kDigits[bytes_[i] >> 4];
    out += kDigits[bytes_[i] & 15];
  }
  return out;
}

}  // namespace ferry
