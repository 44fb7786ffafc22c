#include "snapshot/ram_scan.h"

#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "snapshot/crc32.h"

namespace ferry::snapshot {

namespace {

bool IsZero(const char* p, size_t n) {
  static const char kZeros[kPageBytes] = {};
  return std::memcmp(p, kZeros, n) == 0;  // n <= kPageBytes; glibc's memcmp is vectorised
}

// Bytes from `offset` to the next page boundary, at most `left`: pages are judged on file
// offsets, so a run that starts mid-page (possible off tmpfs) still lines up with the guest's.
size_t PageAt(uint64_t offset, size_t left) {
  return static_cast<size_t>(std::min<uint64_t>(kPageBytes - offset % kPageBytes, left));
}

}  // namespace

uint32_t Crc32AppendZeros(uint32_t crc, uint64_t n) {
  if (n == 0) return crc;
  // zlib's crc32 inverts the register before and after; undo that, shift, redo it.
  const uLong op = crc32_combine_gen(static_cast<z_off_t>(n));
  return static_cast<uint32_t>(crc32_combine_op(crc ^ 0xffffffffUL, 0xffffffffUL, op));
}

RamScanner::RamScanner(int fd, std::string path, uint64_t size_bytes, uint64_t chunk_bytes)
    : fd_(fd),
      path_(std::move(path)),
      size_(size_bytes),
      chunk_bytes_(chunk_bytes),
      buf_(static_cast<size_t>(std::min(chunk_bytes, size_bytes))) {}

Result<RamScanner::Extent> RamScanner::ExtentAt(uint64_t pos) {
  if (pos >= cached_start_ && pos < cached_end_) return Extent{cached_data_, cached_end_};
  off_t data = ::lseek(fd_, static_cast<off_t>(pos), SEEK_DATA);
  if (data < 0 && errno != ENXIO) {
    return Status::Internal("cannot seek in " + path_ + ": " + std::strerror(errno));
  }
  cached_start_ = pos;
  if (data < 0 || static_cast<uint64_t>(data) > pos) {  // ENXIO: only a hole up to the end
    cached_data_ = false;
    cached_end_ = data < 0 ? size_ : std::min<uint64_t>(data, size_);
  } else {
    off_t hole = ::lseek(fd_, static_cast<off_t>(pos), SEEK_HOLE);
    if (hole < 0) return Status::Internal("cannot seek in " + path_ + ": " + std::strerror(errno));
    cached_data_ = true;
    cached_end_ = std::min<uint64_t>(hole, size_);
  }
  if (cached_end_ <= pos) cached_end_ = size_;  // the file changed under us; read it as data
  return Extent{cached_data_, cached_end_};
}

Status RamScanner::ReadFully(char* buf, size_t size, uint64_t offset) {
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::pread(fd_, buf + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return Status::Internal("cannot read " + path_ + " at offset " +
                              std::to_string(offset + done) + ": " + std::strerror(errno));
    }
    if (n == 0) {
      return Status::Corruption("RAM file " + path_ + " ended at offset " +
                                std::to_string(offset + done) + " while being read; expected " +
                                std::to_string(size_) + " bytes");
    }
    done += static_cast<size_t>(n);
    bytes_read_ += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

Result<ChunkDigest> RamScanner::ScanChunk(uint64_t index, const DataRunFn& on_data) {
  const uint64_t start = chunk_offset(index);
  const uint64_t end = std::min(start + chunk_bytes_, size_);
  uint32_t crc = 0;  // crc32 of the empty message
  bool zero = true;
  uint64_t zeros_pending = 0;  // zero bytes seen but not yet folded into crc
  uint64_t pos = start;
  while (pos < end) {
    FERRY_ASSIGN_OR_RETURN(Extent extent, ExtentAt(pos));
    const uint64_t run_end = std::min(extent.end, end);
    if (!extent.data) {
      zeros_pending += run_end - pos;
      pos = run_end;
      continue;
    }
    const size_t n = static_cast<size_t>(run_end - pos);
    FERRY_RETURN_IF_ERROR(ReadFully(buf_.data(), n, pos));
    const char* buf = buf_.data();
    size_t p = 0;
    while (p < n) {
      size_t page = PageAt(pos + p, n - p);
      if (IsZero(buf + p, page)) {
        zeros_pending += page;
        p += page;
        continue;
      }
      size_t q = p + page;
      while (q < n) {
        size_t next = PageAt(pos + q, n - q);
        if (IsZero(buf + q, next)) break;
        q += next;
      }
      crc = Crc32AppendZeros(crc, zeros_pending);
      zeros_pending = 0;
      crc = Crc32(crc, buf + p, q - p);
      zero = false;
      if (on_data) FERRY_RETURN_IF_ERROR(on_data(pos + p, buf + p, q - p));
      p = q;
    }
    pos = run_end;
  }
  if (zero) return ChunkDigest{true, 0};
  return ChunkDigest{false, Crc32AppendZeros(crc, zeros_pending)};
}

}  // namespace ferry::snapshot
