// The RAM image of a snapshot: a sparse, read-only copy of a paused VM's RAM file, plus a table of
// per-chunk checksums that lets a clone check it before mapping it. Guest RAM is mostly zero, so
// the copy keeps holes as holes, turns zero pages into holes, and records all-zero chunks as
// "zero" instead of a checksum (verifying those is one lseek, not a read).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/status.h"

namespace ferry::snapshot {

// One chunk of the image: all zero, or the zlib crc32 of its bytes. The CRC detects damage; the
// table itself is protected by the manifest's SHA-256.
struct RamChunk {
  bool zero = true;
  uint32_t crc32 = 0;  // meaningful only when !zero
  bool operator==(const RamChunk&) const = default;
};

struct RamImage {
  static constexpr uint64_t kDefaultChunkBytes = uint64_t{1} << 20;
  static constexpr const char* kChecksum = "crc32";  // zlib's CRC-32 (ISO-HDLC polynomial)

  uint64_t size_bytes = 0;
  uint64_t chunk_bytes = kDefaultChunkBytes;  // the last chunk may be shorter
  std::vector<RamChunk> chunks;               // ceil(size_bytes / chunk_bytes) entries
  uint64_t data_bytes = 0;                    // bytes actually written (the rest are holes)
  int64_t copy_micros = 0;                    // how long CopyRamFile took; reported, not persisted

  // {"size": N, "chunk_bytes": N, "checksum": "crc32", "data_bytes": N,
  //  "chunks": ["zero", "1c291ca3", ...]}
  nlohmann::json ToJson() const;
  // Checks every field and that the table covers the size. `file` names the manifest in errors.
  static Result<RamImage> FromJson(const nlohmann::json& j, const std::string& file);
  bool operator==(const RamImage& o) const {  // copy_micros is not part of the image
    return size_bytes == o.size_bytes && chunk_bytes == o.chunk_bytes && chunks == o.chunks &&
           data_bytes == o.data_bytes;
  }
};

struct RamCopyOptions {
  // What the copy is for, at the start of error messages: "snapshot web-1@warm".
  std::string what = "RAM image copy";
  uint64_t chunk_bytes = RamImage::kDefaultChunkBytes;  // a non-zero multiple of 4 KiB
  // The pwrite(2) used on the destination; a seam for tests to inject ENOSPC or EIO.
  std::function<ssize_t(int fd, const void* buf, size_t count, off_t offset)> pwrite;
};

// Copies the RAM file `src` to a new file `dst` (which must not exist) and digests it on the way.
// Holes in `src` and all-zero 4 KiB pages become holes in `dst`; data is read once, in runs of up
// to one chunk. `dst` ends mode 0400: clones map it MAP_PRIVATE and it is never written again.
// Running out of space is ResourceExhausted naming the destination; on any failure `dst` is
// removed. REQUIRES: nothing writes `src` meanwhile (the VM is paused).
Result<RamImage> CopyRamFile(const std::string& src, const std::string& dst,
                             const RamCopyOptions& options = {});

// Checks that `path` holds exactly the bytes `expected` describes: its size, every chunk's CRC,
// and that "zero" chunks read as zero (a hole is zero by definition, so those usually cost one
// lseek). Damage is Corruption naming the file, the chunk and its offset. O(data in the file).
Status VerifyRamFile(const std::string& path, const RamImage& expected);

}  // namespace ferry::snapshot
