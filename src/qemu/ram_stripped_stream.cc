#include "qemu/ram_stripped_stream.h"

namespace ferry::qemu {

namespace {
constexpr uint64_t kFlagZero = 0x02;
constexpr uint64_t kFlagPage = 0x08;
constexpr uint64_t kFlagContinue = 0x20;
}  // namespace

Status RamStrippedStream::OnRamBlocks(const std::vector<MigrationRamBlock>& blocks) {
  names_.clear();
  stripped_.clear();
  for (const auto& b : blocks) {
    names_.push_back(b.name);
    stripped_.push_back(strip_(b));
  }
  return Status::Ok();
}

Status RamStrippedStream::OnRamPage(const MigrationRamPage& page) {
  if (page.block >= stripped_.size()) {
    return Status::Internal("RamStrippedStream: a page of block " + std::to_string(page.block) +
                            " of " + std::to_string(stripped_.size()));
  }
  if (stripped_[page.block]) {
    ++pages_dropped_;
    return Status::Ok();
  }
  ++pages_kept_;
  const bool same_block = last_written_block_ == page.block;
  uint64_t header =
      page.offset | (page.zero() ? kFlagZero : kFlagPage) | (same_block ? kFlagContinue : 0);
  record_.clear();
  for (int shift = 56; shift >= 0; shift -= 8) record_.push_back(uint8_t(header >> shift));
  if (!same_block) {
    const std::string& name = names_[page.block];  // at most 255 bytes: it came in a u8 length
    record_.push_back(uint8_t(name.size()));
    record_.insert(record_.end(), name.begin(), name.end());
  }
  if (page.zero())
    record_.push_back(page.fill);
  else
    record_.insert(record_.end(), page.data.begin(), page.data.end());
  last_written_block_ = page.block;
  return output_(record_);
}

}  // namespace ferry::qemu
