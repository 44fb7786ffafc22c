// The reader's steps over the RAM section: the block list, RAM records, block names, pages.
#include "qemu/migration_stream.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "qemu/migration_stream_format.h"

namespace ferry::qemu {

// The RAM block list of the setup section, a block at a time.
Status MigrationStreamReader::StepBlockList(const uint8_t* item) {
  const size_t n = need_;
  auto keep = [&] { other_.insert(other_.end(), item, item + n); };
  switch (state_) {
    case State::kBlockNameLength:
      keep();
      if (item[0] == 0) return Refuse(item_offset_, "a RAM block without a name");
      Expect(State::kBlockName, item[0]);
      return Status::Ok();
    case State::kBlockName: {
      keep();
      std::string name(reinterpret_cast<const char*>(item), n);
      for (const auto& b : blocks_) {
        if (b.name == name)
          return Refuse(item_offset_, "RAM block \"" + Printable(item, n) + "\" listed twice");
      }
      if (blocks_.size() == kMaxMigrationRamBlocks) {
        return Refuse(item_offset_,
                      "more than " + std::to_string(kMaxMigrationRamBlocks) + " RAM blocks");
      }
      MigrationRamBlock block;
      block.name = std::move(name);
      blocks_.push_back(std::move(block));
      Expect(State::kBlockUsedBytes, 8);
      return Status::Ok();
    }
    case State::kBlockUsedBytes: {
      keep();
      uint64_t used = Be64(item);
      MigrationRamBlock& block = blocks_.back();
      if (used == 0 || used % kMigrationPageBytes != 0 || used > blocks_left_bytes_) {
        return Refuse(item_offset_,
                      "RAM block \"" + Printable(block.name) + "\" of " + std::to_string(used) +
                          " bytes: not a non-zero multiple of 4096 within the " +
                          std::to_string(blocks_left_bytes_) + " bytes the list has left");
      }
      block.used_bytes = used;
      blocks_left_bytes_ -= used;
      if (ignore_shared_) {
        Expect(State::kBlockGuestAddress, 8);
        return Status::Ok();
      }
      break;
    }
    case State::kBlockGuestAddress:
      keep();
      blocks_.back().guest_address = Be64(item);
      break;
    default:
      return Status::Internal("QEMU migration stream: StepBlockList in state " +
                              std::string(Describe(state_)));
  }
  // The end of one block of the list (kBlockUsedBytes without, kBlockGuestAddress with the
  // guest address): the next block, or the end of the list.
  if (blocks_left_bytes_ > 0) {
    Expect(State::kBlockNameLength, 1);
    return Status::Ok();
  }
  blocks_known_ = true;
  Expect(State::kRamRecord, 8);
  FERRY_RETURN_IF_ERROR(FlushOtherBytes());
  return visitor_.OnRamBlocks(blocks_);
}

Status MigrationStreamReader::StepRamRecord(uint64_t value) {
  const uint64_t flags = value & kFlagMask;
  const uint64_t offset = value & ~kFlagMask;
  const uint64_t known = kFlagZero | kFlagMemSize | kFlagPage | kFlagEos | kFlagContinue;
  if (flags & ~known) {
    std::string what;
    if (flags & kFlagCompressPage)
      what = "a compressed page (compress capability)";
    else if (flags & kFlagXbzrle)
      what = "an XBZRLE page (xbzrle capability)";
    else if (flags & kFlagHook)
      what = "an RDMA hook";
    else if (flags & kFlagMultifdFlush)
      what = "a multifd flush (QEMU 8.0 or later)";
    else if (flags & kFlagFull)
      what = "the obsolete FULL flag";
    else
      what = "unknown flags " + Hex(flags & ~known);
    return Refuse(item_offset_, "RAM record with " + what + ", which is not supported");
  }
  const uint64_t kind = flags & ~kFlagContinue;
  if (kind == kFlagMemSize && !(flags & kFlagContinue)) {
    other_.insert(other_.end(), {uint8_t(value >> 56), uint8_t(value >> 48), uint8_t(value >> 40),
                                 uint8_t(value >> 32), uint8_t(value >> 24), uint8_t(value >> 16),
                                 uint8_t(value >> 8), uint8_t(value)});
    if (blocks_known_ || !blocks_.empty()) {
      return Refuse(item_offset_, "the RAM block list is sent again (QEMU sends it once)");
    }
    if (section_type_ != kVmSectionStart) {
      return Refuse(item_offset_, "the RAM block list outside RAM's START section");
    }
    if (offset == 0 || offset > kMaxMigrationRamBytes) {
      return Refuse(item_offset_, "RAM of " + std::to_string(offset) + " bytes in total (1 to " +
                                      std::to_string(kMaxMigrationRamBytes) + " allowed)");
    }
    blocks_left_bytes_ = offset;
    Expect(State::kBlockNameLength, 1);
    return Status::Ok();
  }
  if (kind == kFlagEos && flags == kFlagEos) {
    other_.insert(other_.end(), {0, 0, 0, 0, 0, 0, 0, uint8_t(kFlagEos)});
    if (offset != 0) return Refuse(item_offset_, "an EOS record with offset " + Hex(offset));
    if (!blocks_known_) return Refuse(item_offset_, "a RAM section ends before the block list");
    ++stats_.ram_sections;
    Expect(State::kFooter, 5);
    FERRY_RETURN_IF_ERROR(FlushOtherBytes());
    return visitor_.OnRamSectionEnd(section_type_ == kVmSectionStart  ? RamSectionKind::kSetup
                                    : section_type_ == kVmSectionPart ? RamSectionKind::kIteration
                                                                      : RamSectionKind::kComplete);
  }
  if (kind == kFlagZero || kind == kFlagPage) {
    if (!blocks_known_) return Refuse(item_offset_, "a page before the RAM block list");
    page_offset_ = offset;
    page_flags_ = static_cast<uint8_t>(flags);
    if (flags & kFlagContinue) {
      if (!page_block_) {
        return Refuse(item_offset_, "a CONTINUE page record with no page record before it");
      }
      return FinishBlockName(nullptr, 0);
    }
    Expect(State::kPageBlockNameLength, 1);
    return Status::Ok();
  }
  return Refuse(item_offset_, "RAM record with an unknown combination of flags " + Hex(flags));
}

Status MigrationStreamReader::FinishBlockName(const uint8_t* name, size_t length) {
  if (name != nullptr) {
    std::string_view wanted(reinterpret_cast<const char*>(name), length);
    page_block_.reset();
    for (size_t i = 0; i < blocks_.size(); ++i) {
      if (blocks_[i].name == wanted) page_block_ = i;
    }
    if (!page_block_) {
      return Refuse(record_offset_, "a page of RAM block \"" + Printable(name, length) +
                                        "\", which is not in the block list");
    }
  }
  const MigrationRamBlock& block = blocks_[*page_block_];
  if (page_offset_ >= block.used_bytes) {
    return Refuse(record_offset_, "a page at offset " + Hex(page_offset_) + " of RAM block \"" +
                                      Printable(block.name) + "\", which has " +
                                      std::to_string(block.used_bytes) + " bytes");
  }
  if (page_flags_ & kFlagZero)
    Expect(State::kZeroFill, 1);
  else
    Expect(State::kPageData, kMigrationPageBytes);
  return Status::Ok();
}

Status MigrationStreamReader::StepPage(const uint8_t* item) {
  MigrationRamPage page;
  page.block = *page_block_;
  page.offset = page_offset_;
  if (state_ == State::kZeroFill) {
    page.fill = item[0];
    ++stats_.zero_pages;
  } else {
    page.data = std::span<const uint8_t>(item, kMigrationPageBytes);
    ++stats_.pages;
  }
  Expect(State::kRamRecord, 8);
  FERRY_RETURN_IF_ERROR(FlushOtherBytes());
  return visitor_.OnRamPage(page);
}

}  // namespace ferry::qemu
