// The chunk table of a RAM image (ram_image.h), kept while the image is written page by page in
// any order, pages written again included, so that an image filled from a stream needs no read
// back to be checksummed. A pre-copied snapshot (ram_precopy.h) is digested this way as QEMU's
// stream arrives: at 1 GiB that read back was ~0.7 s of the snapshot's total time.
//
// Per 4 KiB page it keeps whether the page holds data and the CRC of its bytes alone; Image()
// folds them into each chunk's crc32. CRC is linear, so crc(A then B) is crc(A) carried past
// |B| zero bytes, xor crc(B), in zlib's uninverted register: one page is carried by four table
// look-ups. The table is what RamScanner computes over the written file, bit for bit (the tests
// hold it to VerifyRamFile), so clones check it as before.
//
// Memory: 4 bytes and a bit per page (1 MiB per GiB of RAM). Not thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"
#include "snapshot/ram_image.h"

namespace ferry::snapshot {

class RamDigest {
 public:
  // An image of `size_bytes`, all zero (a hole) until pages are set. Without `crcs`, only which
  // pages hold data is kept (MarkData), and there is no Image().
  explicit RamDigest(uint64_t size_bytes, bool crcs = true);

  uint64_t page_count() const { return data_.size(); }
  // Page `index` now holds these kPageBytes bytes, which are not all zero.
  // REQUIRES: index < page_count(), and the page lies wholly inside the image.
  void SetPage(uint64_t index, const uint8_t* bytes);
  // Page `index` holds data whose CRC is not kept. REQUIRES: constructed without `crcs`.
  void MarkData(uint64_t index) { data_[index] = true; }
  // Page `index` is zero again (written with zeros or punched).
  void ClearPage(uint64_t index) { data_[index] = false; }
  bool HoldsData(uint64_t index) const { return data_[index]; }

  // The image's chunk table, as CopyRamFile and VerifyRamFile compute it from the file.
  // InvalidArgument for a chunk size that is not a non-zero multiple of kPageBytes;
  // FailedPrecondition when constructed without `crcs`.
  Result<RamImage> Image(uint64_t chunk_bytes = RamImage::kDefaultChunkBytes) const;

 private:
  uint64_t size_bytes_;
  std::vector<bool> data_;     // per page: holds non-zero bytes
  std::vector<uint32_t> crc_;  // per page: the uninverted CRC register of its bytes from 0
};

}  // namespace ferry::snapshot
