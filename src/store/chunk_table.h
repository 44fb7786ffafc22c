// A hold's chunk table: for every blob, every chunk's id and key, or a hole for a zero chunk.
// It is the only way to a hold's plaintext, so it never lies on disk in the clear: the manifest
// carries it sealed under the hold's data key (SealChunkTable), and crypto-shredding the hold
// destroys that key.
//
// Encoding (inside the seal), little-endian:
//   4   chunk bytes (a multiple of 4096, 4 KiB .. 1 MiB)
//   4   blob count (at most kMaxBlobs)
//   per blob: name (u32 length, 1..64 bytes of [a-z0-9._-]), 8 size in bytes, 8 chunk count
//             (must be ceil(size / chunk bytes)), then per chunk 1 kind byte (0 hole, 1 data)
//             and, for data, 32 id bytes and 32 key bytes
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "store/chunk_id.h"

namespace ferry::store {

inline constexpr size_t kMaxBlobs = 64;
inline constexpr uint32_t kMinChunkBytes = 4096;
// 1 TiB at 64 KiB chunks; about 1 GiB of table in memory at most.
inline constexpr uint64_t kMaxTableChunks = uint64_t{1} << 24;

struct ChunkRef {
  bool hole = true;  // a zero chunk: not stored, a hole when reconstituted
  ChunkId id;
  std::array<uint8_t, 32> key{};
  std::string_view KeyView() const {
    return std::string_view(reinterpret_cast<const char*>(key.data()), key.size());
  }
};

struct BlobTable {
  std::string name;
  uint64_t size = 0;
  std::vector<ChunkRef> chunks;
};

struct ChunkTable {
  uint32_t chunk_bytes = 0;
  std::vector<BlobTable> blobs;
};

// Blob names are what callers pass ("ram", "device-state", "disk"); the same rule at seal and
// at load.
Status ValidateBlobName(const std::string& name);
// A multiple of 4096 between 4 KiB and kMaxChunkBytes.
Status ValidateChunkBytes(uint32_t chunk_bytes);

std::string EncodeChunkTable(const ChunkTable& table);
// Refuses anything inconsistent (counts, sizes, names, kinds, trailing bytes) with Corruption
// naming `what`; never allocates more than the input's size justifies.
Result<ChunkTable> DecodeChunkTable(std::string_view bytes, const std::string& what);

// The table sealed under `data_key` (random nonce), bound to the hold's id.
Result<std::string> SealChunkTable(const ChunkTable& table, const std::string& data_key,
                                   const std::string& hold_id);
Result<ChunkTable> OpenChunkTable(std::string_view sealed, const std::string& data_key,
                                  const std::string& hold_id, const std::string& what);

}  // namespace ferry::store
