// A pack: many sealed chunks appended into one file, STORE/packs/<16 hex seq>.pack, with an index
// of where each is at its end. Written once, front to back, flushed once; never changed after
// (Collect rewrites a mostly dead pack into a new one and removes the old).
//
// Format 1.0, little-endian:
//   header (16 bytes)
//     0    4   magic "FRPK"
//     4    1   major version (1); a newer major is refused ("upgrade ferry")
//     5    1   minor version (0); a newer minor may only add what this reader can skip
//     6    2   reserved, 0
//     8    8   sequence number, equal to the file's name
//   records, from offset 16, back to back:
//     0    32  chunk id
//     32   4   sealed chunk bytes L (kSealedChunkOverhead+1 ... kMaxChunkBytes+overhead)
//     36   L   the sealed chunk (sealed_chunk.h: its own magic, lengths and CRC-32C)
//   index, at I:
//     N entries of 44 bytes: chunk id (32), record offset (8), sealed bytes L (4)
//   trailer (48 bytes, the file's last):
//     0    8   index offset I
//     8    4   entry count N
//     12   4   magic "FRPX"
//     16   32  SHA-256 of bytes I ... end-32 (the index and the trailer's first 16 bytes)
//
// Records are self-describing, so the index is only a shortcut: a pack whose trailer or index
// is damaged (or was never written) is read by scanning its records from the front, stopping at
// the first that does not check (ScanPackRecords); every chunk before a tear is kept.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "store/chunk_id.h"

namespace ferry::store {

inline constexpr size_t kPackHeaderBytes = 16;
inline constexpr size_t kPackRecordHeaderBytes = ChunkId::kBytes + 4;
inline constexpr size_t kPackIndexEntryBytes = ChunkId::kBytes + 8 + 4;
inline constexpr size_t kPackTrailerBytes = 48;

struct PackEntry {
  ChunkId id;
  uint64_t offset = 0;  // of the record (its 36-byte header)
  uint32_t sealed_bytes = 0;
  bool operator==(const PackEntry&) const = default;
};

// Reads `len` bytes at `offset` of the pack; fewer only at its end.
using PackReadAt = std::function<Result<std::string>(uint64_t offset, size_t len)>;

std::string EncodePackHeader(uint64_t seq);
std::string EncodePackRecordHeader(const ChunkId& id, uint32_t sealed_bytes);
// The index and trailer of a pack whose records end at `index_offset`.
std::string EncodePackIndex(const std::vector<PackEntry>& entries, uint64_t index_offset);

// Magic, version, reserved bytes and sequence number. `what` names the pack in errors; damage is
// Corruption, a newer major version FailedPrecondition.
Status CheckPackHeader(std::string_view header, uint64_t seq, const std::string& what);
// The index of a pack of `size` bytes, checked: trailer magic and checksum, and every entry's
// record inside the records area. Corruption naming `what` otherwise.
Result<std::vector<PackEntry>> ReadPackIndex(const PackReadAt& read, uint64_t size,
                                             const std::string& what);

struct PackScan {
  std::vector<PackEntry> entries;
  uint64_t end = 0;     // where the last good record ends
  std::string stopped;  // why the scan stopped before `size` ("" if at a clean end)
};
// Every record from the front whose sealed chunk checks (CheckSealedChunk), up to the first that
// does not. REQUIRES: the header was checked.
PackScan ScanPackRecords(const PackReadAt& read, uint64_t size);

// Parses a pack's record at `offset` for `id` as read (header and sealed bytes, `record`): the
// sealed chunk, or Corruption when the record names another chunk or another length.
Result<std::string_view> SealedBytesOfRecord(std::string_view record, const ChunkId& id,
                                             const std::string& what);

}  // namespace ferry::store
