#include "store/chunk_id.h"

#include <cassert>

#include "core/ids.h"

namespace ferry::store {

ChunkId ChunkId::FromBytes(std::string_view raw) {
  assert(raw.size() == kBytes);
  ChunkId id;
  std::memcpy(id.bytes.data(), raw.data(), kBytes);
  return id;
}

Result<ChunkId> ChunkId::FromHex(std::string_view hex) {
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  if (hex.size() != 2 * kBytes) {
    return Status::InvalidArgument("chunk id must be 64 lowercase hex characters");
  }
  ChunkId id;
  for (size_t i = 0; i < kBytes; ++i) {
    const int hi = digit(hex[2 * i]), lo = digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return Status::InvalidArgument("chunk id must be 64 lowercase hex characters");
    }
    id.bytes[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return id;
}

std::string ChunkId::Hex() const { return HexOf(View()); }

}  // namespace ferry::store
