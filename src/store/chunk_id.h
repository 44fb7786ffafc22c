// The name of a chunk in the store: 32 bytes, HMAC-SHA256 of its plaintext under the owner's
// dedup secret (see dedup_scope.h), written as 64 lowercase hex characters in file names.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "core/status.h"

namespace ferry::store {

struct ChunkId {
  static constexpr size_t kBytes = 32;
  std::array<uint8_t, kBytes> bytes{};

  // REQUIRES: raw.size() == kBytes.
  static ChunkId FromBytes(std::string_view raw);
  // 64 lowercase hex characters; anything else is InvalidArgument.
  static Result<ChunkId> FromHex(std::string_view hex);

  std::string Hex() const;
  std::string_view View() const {
    return std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
  auto operator<=>(const ChunkId&) const = default;
};

struct ChunkIdHash {
  // The id is already a keyed hash: any 8 of its bytes are uniformly distributed.
  size_t operator()(const ChunkId& id) const {
    size_t h;
    std::memcpy(&h, id.bytes.data(), sizeof h);
    return h;
  }
};

}  // namespace ferry::store
