#include "guest/ssh_host_key.h"

#include <cstdint>

#include "guest/encoding.h"
#include "guest/sha256.h"

namespace ferry::guest {
namespace {

bool ValidKeyType(std::string_view type) {
  if (type.empty() || type.size() > 64) return false;
  for (char c : type) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '@' || c == '.';
    if (!ok) return false;
  }
  return true;
}

// The SSH wire format begins with the key type as a string: a 32-bit big-endian length, then
// the bytes (RFC 4253 section 6.6).
bool BlobNamesType(std::string_view blob, std::string_view type) {
  if (blob.size() < 4 + type.size()) return false;
  uint32_t len = (uint32_t{static_cast<uint8_t>(blob[0])} << 24) |
                 (uint32_t{static_cast<uint8_t>(blob[1])} << 16) |
                 (uint32_t{static_cast<uint8_t>(blob[2])} << 8) |
                 uint32_t{static_cast<uint8_t>(blob[3])};
  return len == type.size() && blob.substr(4, len) == type;
}

std::optional<SshPublicKey> ParseLine(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::size_t space = line.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  std::string_view type = line.substr(0, space);
  std::string_view rest = line.substr(space + 1);
  std::string_view encoded = rest.substr(0, rest.find(' '));
  if (!ValidKeyType(type)) return std::nullopt;
  auto blob = Base64Decode(encoded);
  if (!blob || !BlobNamesType(*blob, type)) return std::nullopt;
  return SshPublicKey{std::string(type), std::move(*blob)};
}

}  // namespace

std::optional<SshPublicKey> FindPublicKeyLine(std::string_view text) {
  while (!text.empty()) {
    std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    if (auto key = ParseLine(line)) return key;
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return std::nullopt;
}

std::string Sha256Fingerprint(std::string_view blob) {
  Sha256::Digest digest = Sha256::Of(blob);
  return "SHA256:" +
         Base64Encode(std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()),
                      /*pad=*/false);
}

}  // namespace ferry::guest
