// A clone's migration stream split in two: the guest RAM block's pages written into a RAM image
// file, and everything else re-emitted as a stream without them (qemu/ram_stripped_stream.h).
// This is how the state of a clone is kept: a clone maps its snapshot's RAM file share=off, so
// QEMU 7.2 sends all of its RAM in the stream (x-ignore-shared skips only share=on RAM); split,
// the RAM image is what a VM of its own maps share=on, and the stripped stream loads into it with
// the x-ignore-shared setting the stream was saved with.
//
// The stream is untrusted (a guest may have subverted QEMU): the reader checks its syntax and
// bounds (qemu/migration_stream.h); this visitor adds what it knows of the VM. The guest RAM
// block must be listed, with exactly the VM's RAM size; the stripped stream may not pass
// `max_device_state_bytes`. Anything else is refused with Corruption (or ResourceExhausted for a
// full RAM directory), and the read stops.
//
// The RAM image is sparse: it is sized when the block list arrives and only pages that hold data
// are written, so pages never sent and ZERO records stay holes (QEMU 7.2 sends every page of a
// share=off block, most as ZERO records). A page sent again (a PAGE then a ZERO, or a second
// PAGE) ends as the last record said: a ZERO over a page written before writes zeros. Runs of
// consecutive pages are written with one pwrite (up to 256 KiB), in the stream's order; every
// pass's end and Finish() write what is pending. With
// `digest` set, the image's chunk table (ram_image.h) is kept as the pages go (ram_digest.h), so
// the written image needs no read back to be checksummed.
//
// Not thread-safe; one instance per stream.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "qemu/migration_stream.h"
#include "qemu/ram_stripped_stream.h"
#include "snapshot/ram_digest.h"

namespace ferry::snapshot {

// QEMU's name for the guest RAM backend of every ferry VM (`-object memory-backend-file,id=ram0`).
inline constexpr const char* kGuestRamBlock = "ram0";

struct StreamRamSplitLimits {
  uint64_t ram_bytes = 0;               // the guest RAM block's used length must be exactly this
  uint64_t max_device_state_bytes = 0;  // bytes of the stripped stream
  // The RAM image's file size, as a VM's own RAM file has it (QEMU maps the first ram_bytes of
  // it: under TCG ferry gives QEMU 8 KiB less than the VM's memory, see qemu::GuestRamKib).
  // 0: ram_bytes.
  uint64_t image_bytes = 0;
  // Keep the image's chunk table (Image()): a CRC of every data page as it is written.
  bool digest = false;
};

struct StreamRamSplitStats {
  uint64_t data_pages = 0;          // pages written into the image
  uint64_t zero_pages = 0;          // ZERO records (and all-zero PAGEs) of the guest RAM block
  uint64_t rewritten_pages = 0;     // pages sent more than once
  uint64_t device_state_bytes = 0;  // bytes of the stripped stream
};

class StreamRamSplit : public qemu::MigrationStreamVisitor {
 public:
  // `ram_fd`: an empty file open for writing, which becomes the RAM image (sized by
  // OnRamBlocks). `device_state`: receives the stripped stream, in order.
  // REQUIRES: limits.ram_bytes is a non-zero multiple of qemu::kMigrationPageBytes, and
  // limits.image_bytes is 0 or at least ram_bytes.
  StreamRamSplit(int ram_fd, const std::string& ram_path, StreamRamSplitLimits limits,
                 qemu::RamStrippedStream::Output device_state);

  Status OnRamBlocks(const std::vector<qemu::MigrationRamBlock>& blocks) override;
  Status OnRamPage(const qemu::MigrationRamPage& page) override;
  Status OnOtherBytes(std::span<const uint8_t> bytes) override;
  Status OnRamSectionEnd(qemu::RamSectionKind kind) override;

  // After the reader finished the stream: writes what is pending; OK when the stream listed the
  // guest RAM block. The image is complete only after it.
  Status Finish();
  const StreamRamSplitStats& stats() const { return stats_; }
  // The chunk table of the image as written so far, as VerifyRamFile will find it in the file.
  // FailedPrecondition without limits.digest or before the guest RAM block was listed.
  Result<RamImage> Image(uint64_t chunk_bytes = RamImage::kDefaultChunkBytes) const;

 private:
  // Queues one page for the image; consecutive pages are written together (Flush).
  Status WriteRam(uint64_t offset, const uint8_t* bytes);
  Status Flush();
  Status Emit(std::span<const uint8_t> bytes);

  const int ram_fd_;
  const std::string ram_path_;
  const StreamRamSplitLimits limits_;
  qemu::RamStrippedStream::Output device_state_;
  qemu::RamStrippedStream stripped_;
  std::optional<size_t> ram_block_;
  static constexpr size_t kPendingBytes = size_t{256} << 10;
  std::vector<uint8_t> pending_;  // consecutive pages not yet written, from pending_offset_
  uint64_t pending_offset_ = 0;
  // Per page of the image: written with data, and with limits.digest its CRC.
  std::optional<RamDigest> pages_;
  StreamRamSplitStats stats_;
};

}  // namespace ferry::snapshot
