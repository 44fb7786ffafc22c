#include "snapshot/ram_digest.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <string>

#include "snapshot/crc32.h"
#include "snapshot/ram_scan.h"

namespace ferry::snapshot {

namespace {

// Carries an uninverted CRC register past one page of zero bytes: multiplication by
// x^(8 * kPageBytes) mod P, which is linear, so it splits into one table per byte of the register.
class PageShift {
 public:
  PageShift() {
    const uLong op = crc32_combine_gen(static_cast<z_off_t>(kPageBytes));
    for (uint32_t byte = 0; byte < 4; ++byte) {
      for (uint32_t v = 0; v < 256; ++v) {
        // crc32_combine_op(a, 0, op) is a times op, mod P: the register a carried on.
        table_[byte][v] = static_cast<uint32_t>(crc32_combine_op(v << (8 * byte), 0, op));
      }
    }
  }
  uint32_t operator()(uint32_t reg) const {
    return table_[0][reg & 0xff] ^ table_[1][(reg >> 8) & 0xff] ^ table_[2][(reg >> 16) & 0xff] ^
           table_[3][reg >> 24];
  }

 private:
  std::array<std::array<uint32_t, 256>, 4> table_;
};

const PageShift& Shift() {
  static const PageShift shift;
  return shift;
}

}  // namespace

RamDigest::RamDigest(uint64_t size_bytes, bool crcs)
    : size_bytes_(size_bytes),
      data_((size_bytes + kPageBytes - 1) / kPageBytes, false),
      crc_(crcs ? data_.size() : 0, 0) {}

void RamDigest::SetPage(uint64_t index, const uint8_t* bytes) {
  data_[index] = true;
  // zlib's crc32 of a message started from 0xffffffff is the inverted register started from 0.
  crc_[index] = ~Crc32(0xffffffffu, bytes, kPageBytes);
}

Result<RamImage> RamDigest::Image(uint64_t chunk_bytes) const {
  if (chunk_bytes == 0 || chunk_bytes % kPageBytes != 0) {
    return Status::InvalidArgument("chunk size " + std::to_string(chunk_bytes) +
                                   " is not a multiple of 4096");
  }
  if (crc_.size() != data_.size()) {
    return Status::FailedPrecondition("the RAM image's page CRCs were not kept");
  }
  RamImage image;
  image.size_bytes = size_bytes_;
  image.chunk_bytes = chunk_bytes;
  const uint64_t chunks = (size_bytes_ + chunk_bytes - 1) / chunk_bytes;
  const uint64_t pages_per_chunk = chunk_bytes / kPageBytes;
  const PageShift& shift = Shift();
  image.chunks.reserve(chunks);
  for (uint64_t c = 0; c < chunks; ++c) {
    const uint64_t first = c * pages_per_chunk;
    const uint64_t end = std::min<uint64_t>(first + pages_per_chunk, data_.size());
    bool zero = true;
    for (uint64_t p = first; p < end && zero; ++p) zero = !data_[p];
    if (zero) {
      image.chunks.push_back(RamChunk{});
      continue;
    }
    // zlib's crc32 starts from 0, an inverted register of all ones. A page past the image's
    // end (the last, partial one) cannot hold data; its bytes inside the image are zeros.
    uint32_t reg = 0xffffffffu;
    const uint64_t chunk_end = std::min(size_bytes_, (c + 1) * chunk_bytes);
    uint64_t p = first;
    for (; p < end && (p + 1) * kPageBytes <= chunk_end; ++p) {
      reg = shift(reg);
      if (data_[p]) {
        reg ^= crc_[p];
        image.data_bytes += kPageBytes;
      }
    }
    const uint32_t crc = Crc32AppendZeros(~reg, chunk_end - std::min(chunk_end, p * kPageBytes));
    image.chunks.push_back(RamChunk{false, crc});
  }
  return image;
}

}  // namespace ferry::snapshot
