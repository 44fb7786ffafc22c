// Re-emits a QEMU migration stream without the pages of chosen RAM blocks: the stream of a VM whose
// RAM is a file becomes one that a QEMU, mapping a file that already holds those pages, can load.
// This is what a snapshot or hold of a clone needs: a clone maps its RAM share=off, QEMU 7.2's
// x-ignore-shared skips only share=on blocks, so the clone's stream carries all of its RAM.
//
// What QEMU 7.2's loader does with such a stream (migration/ram.c): ram_load_setup only sets up the
// received-page bitmap; ram_load_precopy writes exactly the pages it is sent, takes the MEM_SIZE
// record only to check (and resize) each listed block, and nothing checks that every page came.
// So the block list and the EOS of every RAM section are kept (each section still parses, the
// list still matches the destination's), and a block without page records is left as the
// destination's mapping has it. Tried with qemu-system-x86_64 7.2.22 (Debian), q35, 64 MiB in a
// file holding a pattern, paused:
//   - saved with the file mapped share=off, x-ignore-shared off, ram0's 16384 records stripped
//     (1.1 MB to 286 kB), loaded by a QEMU with -incoming mapping a copy of the file share=on,
//     x-ignore-shared off: completed, the file unchanged; saved again from that QEMU, every page
//     equal to the original's, the device state equal but for the RTC (it follows the host
//     clock);
//   - the clone's case, share=off with x-ignore-shared on at both ends (ram0 is not skipped, as
//     it is not share=on, and the block list carries guest addresses): the same, equal;
//   - a destination with x-ignore-shared on loading a stream saved with it off: refused by QEMU
//     ("Capability x-ignore-shared is on, but received capability is off"). The destination must
//     use the source's x-ignore-shared: it changes the block list's layout;
//   - ROM blocks stripped too: loaded, but pc.bios then differs: a QEMU waiting for an incoming
//     migration does not fill its ROMs, it expects them from the stream (hw/core/loader.c,
//     rom_reset, RUN_STATE_INMIGRATE). Strip only the guest RAM backend;
//   - a destination file without the pages (zeros): loads, and the guest's RAM is zeros. Nothing
//     in the stream can check the pages: the caller must (the snapshot's RAM image checksums).
//
// Kept pages are written back as PAGE or ZERO records, with the block name or CONTINUE chosen
// anew from what was written before, so dropping one block's records never leaves a CONTINUE
// pointing at the wrong block.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "qemu/migration_stream.h"

namespace ferry::qemu {

class RamStrippedStream : public MigrationStreamVisitor {
 public:
  // Receives the stripped stream, in order, in pieces; a non-OK Status stops the read.
  using Output = std::function<Status(std::span<const uint8_t>)>;
  // True for a block whose pages are dropped: the guest RAM backend ("ram0"), never a ROM.
  using BlockFilter = std::function<bool(const MigrationRamBlock&)>;

  // Drops the pages of the blocks `strip` selects. REQUIRES: `output` and `strip` are callable.
  RamStrippedStream(Output output, BlockFilter strip)
      : output_(std::move(output)), strip_(std::move(strip)) {}

  Status OnRamBlocks(const std::vector<MigrationRamBlock>& blocks) override;
  Status OnRamPage(const MigrationRamPage& page) override;
  Status OnOtherBytes(std::span<const uint8_t> bytes) override { return output_(bytes); }

  uint64_t pages_dropped() const { return pages_dropped_; }
  uint64_t pages_kept() const { return pages_kept_; }

 private:
  Output output_;
  BlockFilter strip_;
  std::vector<std::string> names_;
  std::vector<bool> stripped_;
  std::optional<size_t> last_written_block_;  // for CONTINUE in what is written
  std::vector<uint8_t> record_;
  uint64_t pages_dropped_ = 0;
  uint64_t pages_kept_ = 0;
};

}  // namespace ferry::qemu
