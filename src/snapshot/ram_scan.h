// Reads a RAM file chunk by chunk the way mostly-zero guest memory wants: holes are skipped with
// SEEK_DATA/SEEK_HOLE and never read, and data is judged one 4 KiB page at a time, so pages the
// guest never touched or zeroed cost neither checksum work nor space in a copy. CopyRamFile and
// VerifyRamFile share this walk, so a copy and its later check compute digests the same way.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"

namespace ferry::snapshot {

inline constexpr uint64_t kPageBytes = 4096;

// The zlib crc32 of (the message whose crc32 is `crc`) followed by `n` zero bytes, in O(log n)
// without touching n bytes: CRC is linear, so appending zeros multiplies the register by
// x^(8n) mod P (zlib's crc32_combine_op).
uint32_t Crc32AppendZeros(uint32_t crc, uint64_t n);

struct ChunkDigest {
  bool zero = true;    // every byte of the chunk is zero (holes count as zero)
  uint32_t crc32 = 0;  // zlib crc32 of the chunk's bytes; 0 when `zero`
};

// One pass over an open RAM file, chunk by chunk. Not thread-safe: one scanner per scan.
// REQUIRES: the file does not change during the scan (the VM is paused, or the file is a
// read-only snapshot). If it does, the digests describe a mix that a later check reports as damage.
class RamScanner {
 public:
  // A run of consecutive non-zero pages, in file-offset order; `data` is valid during the call.
  using DataRunFn = std::function<Status(uint64_t offset, const char* data, size_t size)>;

  // `fd` stays owned by the caller. `path` is only used in error messages.
  // REQUIRES: chunk_bytes is a non-zero multiple of kPageBytes.
  RamScanner(int fd, std::string path, uint64_t size_bytes, uint64_t chunk_bytes);

  uint64_t chunk_count() const { return (size_ + chunk_bytes_ - 1) / chunk_bytes_; }
  uint64_t chunk_offset(uint64_t index) const { return index * chunk_bytes_; }

  // Digests chunk `index`; calls `on_data` (if set) for each run of non-zero pages, and stops at
  // the first error it returns. Holes cost one cached lseek; only data extents are read.
  Result<ChunkDigest> ScanChunk(uint64_t index, const DataRunFn& on_data = nullptr);

  // Bytes read from the file so far: only its data extents, never its holes.
  uint64_t bytes_read() const { return bytes_read_; }

 private:
  struct Extent {
    bool data = false;
    uint64_t end = 0;  // where this run of data or hole ends (capped at the file size)
  };
  // The run containing `pos`. Runs can span many chunks, so the last answer is cached.
  Result<Extent> ExtentAt(uint64_t pos);
  Status ReadFully(char* buf, size_t size, uint64_t offset);

  int fd_;
  std::string path_;
  uint64_t size_;
  uint64_t chunk_bytes_;
  uint64_t cached_start_ = 0;
  uint64_t cached_end_ = 0;  // empty cache while cached_end_ <= cached_start_
  bool cached_data_ = false;
  std::vector<char> buf_;  // one chunk
  uint64_t bytes_read_ = 0;
};

}  // namespace ferry::snapshot
