#include "snapshot/stream_ram_split.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/fault_point.h"

namespace ferry::snapshot {

using qemu::kMigrationPageBytes;

namespace {

bool AllZero(std::span<const uint8_t> bytes) {
  static const uint8_t kZeros[kMigrationPageBytes] = {};
  // A page: glibc's memcmp is vectorised, a byte loop is not.
  return bytes.size() == kMigrationPageBytes &&
         std::memcmp(bytes.data(), kZeros, bytes.size()) == 0;
}

}  // namespace

StreamRamSplit::StreamRamSplit(int ram_fd, const std::string& ram_path, StreamRamSplitLimits limits,
                               qemu::RamStrippedStream::Output device_state)
    : ram_fd_(ram_fd),
      ram_path_(ram_path),
      limits_(limits),
      device_state_(std::move(device_state)),
      stripped_([this](std::span<const uint8_t> bytes) { return Emit(bytes); },
                [](const qemu::MigrationRamBlock& b) { return b.name == kGuestRamBlock; }) {}

Status StreamRamSplit::Emit(std::span<const uint8_t> bytes) {
  if (bytes.size() > limits_.max_device_state_bytes - stats_.device_state_bytes) {
    return Status::Corruption("the stream without guest RAM passes " +
                              std::to_string(limits_.max_device_state_bytes >> 20) +
                              " MiB (ROM pages and device state of a ferry VM are a few MiB)");
  }
  stats_.device_state_bytes += bytes.size();
  return device_state_(bytes);
}

Status StreamRamSplit::OnRamBlocks(const std::vector<qemu::MigrationRamBlock>& blocks) {
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (blocks[i].name != kGuestRamBlock) continue;
    if (blocks[i].used_bytes != limits_.ram_bytes) {
      return Status::Corruption("the stream's guest RAM block " + std::string(kGuestRamBlock) +
                                " has " + std::to_string(blocks[i].used_bytes) +
                                " bytes, not the VM's " + std::to_string(limits_.ram_bytes));
    }
    ram_block_ = i;
  }
  if (!ram_block_) {
    return Status::Corruption(std::string("the stream lists no guest RAM block (") +
                              kGuestRamBlock + ")");
  }
  const uint64_t image_bytes = std::max(limits_.image_bytes, limits_.ram_bytes);
  if (::ftruncate(ram_fd_, static_cast<off_t>(image_bytes)) != 0) {
    return Status::ResourceExhausted("cannot size the RAM image " + ram_path_ + ": " +
                                     std::strerror(errno));
  }
  pages_.emplace(image_bytes, limits_.digest);
  pending_.reserve(kPendingBytes);
  return stripped_.OnRamBlocks(blocks);
}

Status StreamRamSplit::OnRamPage(const qemu::MigrationRamPage& page) {
  if (!ram_block_ || page.block != *ram_block_) return stripped_.OnRamPage(page);
  // The reader checked the offset against the block's used length, which is ram_bytes.
  const size_t index = page.offset / kMigrationPageBytes;
  const bool had_data = pages_->HoldsData(index);
  if (had_data) ++stats_.rewritten_pages;
  const bool zero = page.zero() ? page.fill == 0 : AllZero(page.data);
  if (zero) {
    ++stats_.zero_pages;
    if (!had_data) return Status::Ok();  // a hole already
    static const std::vector<uint8_t> kZeros(kMigrationPageBytes, 0);
    pages_->ClearPage(index);
    return WriteRam(page.offset, kZeros.data());
  }
  ++stats_.data_pages;
  std::vector<uint8_t> filled;
  if (page.zero()) filled.assign(kMigrationPageBytes, page.fill);
  const uint8_t* bytes = page.zero() ? filled.data() : page.data.data();
  if (limits_.digest) {
    pages_->SetPage(index, bytes);
  } else {
    pages_->MarkData(index);
  }
  return WriteRam(page.offset, bytes);
}

Status StreamRamSplit::OnOtherBytes(std::span<const uint8_t> bytes) {
  return stripped_.OnOtherBytes(bytes);
}

Status StreamRamSplit::WriteRam(uint64_t offset, const uint8_t* bytes) {
  // Pages mostly come in order: a run of them goes to the file in one pwrite, not one per page.
  if (!pending_.empty() &&
      (offset != pending_offset_ + pending_.size() || pending_.size() >= kPendingBytes)) {
    FERRY_RETURN_IF_ERROR(Flush());
  }
  if (pending_.empty()) pending_offset_ = offset;
  pending_.insert(pending_.end(), bytes, bytes + kMigrationPageBytes);
  return Status::Ok();
}

Status StreamRamSplit::Flush() {
  size_t done = 0;
  while (done < pending_.size()) {
    ssize_t n = ::pwrite(ram_fd_, pending_.data() + done, pending_.size() - done,
                         static_cast<off_t>(pending_offset_ + done));
    if (n < 0 && errno == EINTR) continue;
    if (FaultPointFails("snapshot.ram_image.write")) {  // a test's full RAM directory
      n = -1;
      errno = ENOSPC;
    }
    if (n <= 0) {
      const int err = n < 0 ? errno : ENOSPC;
      pending_.clear();
      if (err == ENOSPC) {
        return Status::ResourceExhausted("no space left for the RAM image " + ram_path_ +
                                         ": free memory or RAM directory space and retry");
      }
      return Status::Internal("cannot write the RAM image " + ram_path_ + ": " +
                              std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  pending_.clear();
  return Status::Ok();
}

Status StreamRamSplit::OnRamSectionEnd(qemu::RamSectionKind) {
  // Each pass ends with what it sent in the file, so a write error stops the read where it is.
  return Flush();
}

Result<RamImage> StreamRamSplit::Image(uint64_t chunk_bytes) const {
  if (!pages_) {
    return Status::FailedPrecondition("the RAM image " + ram_path_ + " has no pages yet");
  }
  auto image = pages_->Image(chunk_bytes);
  if (!image.ok()) return image.status().WithContext("the RAM image " + ram_path_);
  return image;
}

Status StreamRamSplit::Finish() {
  FERRY_RETURN_IF_ERROR(Flush());
  if (!ram_block_) {
    return Status::Corruption(std::string("the stream lists no guest RAM block (") +
                              kGuestRamBlock + ")");
  }
  return Status::Ok();
}

}  // namespace ferry::snapshot
