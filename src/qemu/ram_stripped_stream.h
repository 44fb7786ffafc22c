// Re-emits a QEMU migration stream without the pages of chosen RAM blocks: the stream of a VM whose
// RAM is a file becomes one that a QEMU, mapping a file that already holds those pages, can load.
// This is what a snapshot or hold of a clone needs: a clone maps its RAM share=off, QEMU 7.2's
// x-ignore-shared skips only share=on blocks, so the clone's stream carries all of its RAM.
//
// What QEMU 7.2's loader does with such a stream (migration/ram.c: ram_load_setup only sets up
// the received-page bitmap, ram_load_precopy writes exactly the pages it is sent, the MEM_SIZE
// record only checks (and resizes) each listed block, and nothing checks that every page came):
// the block list and the EOS of every RAM section are kept, so each section still parses and
// the block list still matches the destination's; a block without page records is left as the
// destination's mapping has it. The destination must use the same capabilities as the source
// (x-ignore-shared on exactly when the stream says so: it changes the block list's layout and is
// validated against the configuration section), and its stripped blocks must already hold the
// pages of the same instant: nothing in the stream can check that, the caller must (the
// snapshot's RAM image checksums). Checked with qemu-system-x86_64 7.2: see
// migration_stream_test.cc and the report of the branch that added this.
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
  // True for a block whose pages are dropped.
  using BlockFilter = std::function<bool(const MigrationRamBlock&)>;

  // Drops the pages of the blocks `strip` selects; with no filter, of every block.
  explicit RamStrippedStream(Output output, BlockFilter strip = nullptr)
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
