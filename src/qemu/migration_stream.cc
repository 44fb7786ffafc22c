#include "qemu/migration_stream.h"

#include <errno.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string_view>

namespace ferry::qemu {

namespace {

// Section types (QEMU_VM_* in migration/savevm.c).
constexpr uint8_t kVmEof = 0x00;
constexpr uint8_t kVmSectionStart = 0x01;
constexpr uint8_t kVmSectionPart = 0x02;
constexpr uint8_t kVmSectionEnd = 0x03;
constexpr uint8_t kVmSectionFull = 0x04;
constexpr uint8_t kVmSubsection = 0x05;
constexpr uint8_t kVmVmdesc = 0x06;
constexpr uint8_t kVmConfiguration = 0x07;
constexpr uint8_t kVmCommand = 0x08;
constexpr uint8_t kVmSectionFooter = 0x7e;

// RAM record flags (RAM_SAVE_FLAG_* in migration/ram.c).
constexpr uint64_t kFlagFull = 0x01;  // obsolete
constexpr uint64_t kFlagZero = 0x02;
constexpr uint64_t kFlagMemSize = 0x04;
constexpr uint64_t kFlagPage = 0x08;
constexpr uint64_t kFlagEos = 0x10;
constexpr uint64_t kFlagContinue = 0x20;
constexpr uint64_t kFlagXbzrle = 0x40;
constexpr uint64_t kFlagHook = 0x80;
constexpr uint64_t kFlagCompressPage = 0x100;
constexpr uint64_t kFlagMultifdFlush = 0x200;  // QEMU 8.0 on
constexpr uint64_t kFlagMask = kMigrationPageBytes - 1;

constexpr uint32_t kFileVersion = 3;
constexpr uint32_t kRamSectionVersion = 4;
constexpr uint32_t kTargetPageBits = 12;

constexpr char kSubsectionPageBits[] = "configuration/target-page-bits";
constexpr char kSubsectionCapabilities[] = "configuration/capabilities";
constexpr char kSubsectionUuid[] = "configuration/uuid";

uint32_t Be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
uint64_t Be64(const uint8_t* p) { return (uint64_t{Be32(p)} << 32) | Be32(p + 4); }

// A name from the stream, safe to put in a message: at most 64 bytes, non-printables as '?'.
std::string Printable(std::string_view name) {
  std::string s;
  for (size_t i = 0; i < name.size() && i < 64; ++i) {
    char c = name[i];
    s += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  return s;
}
std::string Printable(const uint8_t* p, size_t n) {
  return Printable(std::string_view(reinterpret_cast<const char*>(p), n));
}

std::string Hex(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "%#llx", static_cast<unsigned long long>(v));
  return b;
}

}  // namespace

enum class MigrationStreamReader::State {
  kHeader,                  // "QEVM" be32 version
  kConfigType,              // 0x07
  kConfigNameLength,        // be32
  kConfigName,              // n
  kAfterConfig,             // 0x05 (a subsection) or a section type
  kSubsectionNameLength,    // u8
  kSubsectionName,          // n
  kSubsectionVersion,       // be32
  kPageBits,                // be32
  kUuid,                    // 16
  kCapabilityCount,         // be32
  kCapabilityNameLength,    // u8
  kCapabilityName,          // n
  kSectionType,             // u8
  kSectionId,               // be32
  kSectionNameLength,       // u8
  kSectionName,             // n
  kSectionInstanceVersion,  // be32 be32
  kRamRecord,               // be64
  kBlockNameLength,         // u8
  kBlockName,               // n
  kBlockUsedBytes,          // be64
  kBlockGuestAddress,       // be64
  kPageBlockNameLength,     // u8
  kPageBlockName,           // n
  kZeroFill,                // u8
  kPageData,                // 4096
  kFooter,                  // 0x7e be32
  kDeviceState,             // the rest, passed through
};

const char* MigrationStreamReader::Describe(State state) const {
  switch (state) {
    case State::kHeader:
      return "the file header";
    case State::kConfigType:
    case State::kConfigNameLength:
    case State::kConfigName:
      return "the configuration section";
    case State::kAfterConfig:
      return "the section after the configuration";
    case State::kSubsectionNameLength:
    case State::kSubsectionName:
    case State::kSubsectionVersion:
    case State::kPageBits:
    case State::kUuid:
    case State::kCapabilityCount:
    case State::kCapabilityNameLength:
    case State::kCapabilityName:
      return "a configuration subsection";
    case State::kSectionType:
      return "the next section header";
    case State::kSectionId:
    case State::kSectionNameLength:
    case State::kSectionName:
    case State::kSectionInstanceVersion:
      return "a section header";
    case State::kRamRecord:
      return "a RAM record";
    case State::kBlockNameLength:
    case State::kBlockName:
    case State::kBlockUsedBytes:
    case State::kBlockGuestAddress:
      return "the RAM block list";
    case State::kPageBlockNameLength:
    case State::kPageBlockName:
    case State::kZeroFill:
    case State::kPageData:
      return "a RAM page record";
    case State::kFooter:
      return "a section footer";
    case State::kDeviceState:
      return "the device state";
  }
  return "?";
}

Status MigrationStreamReader::Refuse(uint64_t at, const std::string& what) const {
  return Status::Corruption("QEMU migration stream: at byte " + std::to_string(at) + ": " + what);
}

void MigrationStreamReader::Expect(State state, size_t bytes) {
  state_ = state;
  need_ = bytes;
}

Status MigrationStreamReader::FlushOtherBytes() {
  if (other_.empty()) return Status::Ok();
  Status st = visitor_.OnOtherBytes(other_);
  other_.clear();
  return st;
}

Status MigrationStreamReader::Feed(std::span<const uint8_t> bytes) {
  if (!status_.ok()) return status_;
  if (finished_) return Status::Internal("QEMU migration stream: Feed after Finish");
  size_t pos = 0;
  while (pos < bytes.size() && status_.ok()) {
    if (state_ == State::kDeviceState) {
      status_ = FlushOtherBytes();
      if (status_.ok()) status_ = ReadDeviceState(bytes.subspan(pos));
      pos = bytes.size();
      break;
    }
    const uint8_t* item;
    if (item_.empty() && bytes.size() - pos >= need_) {
      item = bytes.data() + pos;  // the common case: the whole item is in this piece
      pos += need_;
    } else {
      size_t take = std::min(need_ - item_.size(), bytes.size() - pos);
      item_.insert(item_.end(), bytes.data() + pos, bytes.data() + pos + take);
      pos += take;
      if (item_.size() < need_) break;
      item = item_.data();
    }
    item_offset_ = offset_;
    offset_ += need_;
    status_ = Step(item);
    item_.clear();
  }
  if (status_.ok()) status_ = FlushOtherBytes();
  return status_;
}

Status MigrationStreamReader::Step(const uint8_t* item) {
  switch (state_) {
    case State::kHeader:
      return StepHeader(item);
    case State::kConfigType:
    case State::kConfigNameLength:
    case State::kConfigName:
    case State::kAfterConfig:
    case State::kSubsectionNameLength:
    case State::kSubsectionName:
    case State::kSubsectionVersion:
      return StepConfiguration(item);
    case State::kPageBits:
    case State::kUuid:
    case State::kCapabilityCount:
    case State::kCapabilityNameLength:
    case State::kCapabilityName:
      return StepConfigurationValue(item);
    case State::kSectionType:
      return StepSectionType(item[0]);
    case State::kSectionId:
    case State::kSectionNameLength:
    case State::kSectionName:
    case State::kSectionInstanceVersion:
      return StepSectionHeader(item);
    case State::kRamRecord:
      record_offset_ = item_offset_;
      return StepRamRecord(Be64(item));
    case State::kBlockNameLength:
    case State::kBlockName:
    case State::kBlockUsedBytes:
    case State::kBlockGuestAddress:
      return StepBlockList(item);
    case State::kPageBlockNameLength:
      if (item[0] == 0) return Refuse(item_offset_, "a page record with an empty block name");
      Expect(State::kPageBlockName, item[0]);
      return Status::Ok();
    case State::kPageBlockName:
      return FinishBlockName(item, need_);
    case State::kZeroFill:
    case State::kPageData:
      return StepPage(item);
    case State::kFooter:
      return StepFooter(item);
    case State::kDeviceState:
      break;  // Feed passes the device state through without items
  }
  return Status::Internal("QEMU migration stream: an item in state " +
                          std::string(Describe(state_)));
}

Status MigrationStreamReader::StepHeader(const uint8_t* item) {
  other_.insert(other_.end(), item, item + need_);
  if (std::memcmp(item, "QEVM", 4) != 0) {
    return Refuse(0, "not a QEMU migration stream (no \"QEVM\" magic)");
  }
  if (Be32(item + 4) != kFileVersion) {
    return Refuse(
        4, "stream version " + std::to_string(Be32(item + 4)) + ", only version 3 is understood");
  }
  Expect(State::kConfigType, 1);
  return Status::Ok();
}

// The configuration section, up to each subsection's value.
Status MigrationStreamReader::StepConfiguration(const uint8_t* item) {
  const size_t n = need_;
  auto keep = [&] { other_.insert(other_.end(), item, item + n); };
  switch (state_) {
    case State::kConfigType:
      keep();
      if (item[0] != kVmConfiguration) {
        return Refuse(item_offset_,
                      "no configuration section after the header (type " + Hex(item[0]) + ")");
      }
      Expect(State::kConfigNameLength, 4);
      return Status::Ok();
    case State::kConfigNameLength: {
      keep();
      uint32_t len = Be32(item);
      if (len == 0 || len > kMaxMachineTypeBytes) {
        return Refuse(item_offset_, "machine type of " + std::to_string(len) + " bytes (1 to " +
                                        std::to_string(kMaxMachineTypeBytes) + " allowed)");
      }
      Expect(State::kConfigName, len);
      return Status::Ok();
    }
    case State::kConfigName:
      keep();
      machine_type_.assign(reinterpret_cast<const char*>(item), n);
      Expect(State::kAfterConfig, 1);
      return Status::Ok();
    case State::kAfterConfig:
      if (item[0] != kVmSubsection) return StepSectionType(item[0]);
      keep();
      Expect(State::kSubsectionNameLength, 1);
      return Status::Ok();
    case State::kSubsectionNameLength:
      keep();
      if (item[0] == 0) return Refuse(item_offset_, "configuration subsection without a name");
      Expect(State::kSubsectionName, item[0]);
      return Status::Ok();
    case State::kSubsectionName:
      keep();
      subsection_.assign(reinterpret_cast<const char*>(item), n);
      if (subsection_ != kSubsectionPageBits && subsection_ != kSubsectionCapabilities &&
          subsection_ != kSubsectionUuid) {
        return Refuse(item_offset_,
                      "unknown configuration subsection \"" + Printable(item, n) + "\"");
      }
      if (std::find(subsections_seen_.begin(), subsections_seen_.end(), subsection_) !=
          subsections_seen_.end()) {
        return Refuse(item_offset_, "configuration subsection \"" + subsection_ + "\" twice");
      }
      subsections_seen_.push_back(subsection_);
      Expect(State::kSubsectionVersion, 4);
      return Status::Ok();
    case State::kSubsectionVersion:
      keep();
      if (Be32(item) != 1) {
        return Refuse(item_offset_, "configuration subsection \"" + subsection_ + "\" of version " +
                                        std::to_string(Be32(item)) +
                                        ", only version 1 is understood");
      }
      if (subsection_ == kSubsectionPageBits)
        Expect(State::kPageBits, 4);
      else if (subsection_ == kSubsectionUuid)
        Expect(State::kUuid, 16);
      else
        Expect(State::kCapabilityCount, 4);
      return Status::Ok();
    default:
      break;
  }
  return Status::Internal("QEMU migration stream: StepConfiguration in state " +
                          std::string(Describe(state_)));
}

// A configuration subsection's value.
Status MigrationStreamReader::StepConfigurationValue(const uint8_t* item) {
  const size_t n = need_;
  auto keep = [&] { other_.insert(other_.end(), item, item + n); };
  switch (state_) {
    case State::kPageBits:
      keep();
      if (Be32(item) != kTargetPageBits) {
        return Refuse(item_offset_, "target page bits " + std::to_string(Be32(item)) +
                                        ", only 12 (4 KiB pages) is understood");
      }
      Expect(State::kAfterConfig, 1);
      return Status::Ok();
    case State::kUuid:
      keep();
      Expect(State::kAfterConfig, 1);
      return Status::Ok();
    case State::kCapabilityCount:
      keep();
      capabilities_left_ = Be32(item);
      if (capabilities_left_ > kMaxMigrationCapabilities) {
        return Refuse(item_offset_, std::to_string(capabilities_left_) +
                                        " migration capabilities (at most " +
                                        std::to_string(kMaxMigrationCapabilities) + ")");
      }
      Expect(capabilities_left_ ? State::kCapabilityNameLength : State::kAfterConfig, 1);
      return Status::Ok();
    case State::kCapabilityNameLength:
      keep();
      if (item[0] == 0) return Refuse(item_offset_, "migration capability without a name");
      Expect(State::kCapabilityName, item[0]);
      return Status::Ok();
    case State::kCapabilityName: {
      keep();
      std::string name(reinterpret_cast<const char*>(item), n);
      // x-ignore-shared is the only capability QEMU 7.2 sends, and the one that changes the
      // block list's layout; any other would change the stream in ways not understood here.
      if (name != "x-ignore-shared") {
        return Refuse(item_offset_,
                      "migration capability \"" + Printable(item, n) + "\" is not supported");
      }
      ignore_shared_ = true;
      --capabilities_left_;
      Expect(capabilities_left_ ? State::kCapabilityNameLength : State::kAfterConfig, 1);
      return Status::Ok();
    }
    default:
      break;
  }
  return Status::Internal("QEMU migration stream: StepConfigurationValue in state " +
                          std::string(Describe(state_)));
}

// A section's id, and for a START its name, instance and version.
Status MigrationStreamReader::StepSectionHeader(const uint8_t* item) {
  const size_t n = need_;
  auto keep = [&] { other_.insert(other_.end(), item, item + n); };
  switch (state_) {
    case State::kSectionId:
      keep();
      section_id_ = Be32(item);
      if (section_type_ == kVmSectionStart) {
        Expect(State::kSectionNameLength, 1);
        return Status::Ok();
      }
      if (!ram_section_id_ || *ram_section_id_ != section_id_) {
        return Refuse(record_offset_,
                      "a " + std::string(section_type_ == kVmSectionPart ? "PART" : "END") +
                          " section of section id " + std::to_string(section_id_) +
                          ", which is not RAM's (only RAM's are understood)");
      }
      Expect(State::kRamRecord, 8);
      return Status::Ok();
    case State::kSectionNameLength:
      keep();
      Expect(State::kSectionName, item[0]);
      if (item[0] == 0) return Refuse(item_offset_, "a START section without a name");
      return Status::Ok();
    case State::kSectionName: {
      keep();
      std::string name(reinterpret_cast<const char*>(item), n);
      if (name != "ram") {
        return Refuse(record_offset_,
                      "a START section of \"" + Printable(item, n) +
                          "\": RAM is the only iterable device understood (no block "
                          "migration, dirty bitmaps or VFIO), the end of any other is unknown");
      }
      if (ram_section_id_) return Refuse(record_offset_, "a second START section of \"ram\"");
      ram_section_id_ = section_id_;
      Expect(State::kSectionInstanceVersion, 8);
      return Status::Ok();
    }
    case State::kSectionInstanceVersion:
      keep();
      if (Be32(item) != 0 || Be32(item + 4) != kRamSectionVersion) {
        return Refuse(item_offset_, "the \"ram\" section has instance " +
                                        std::to_string(Be32(item)) + " and version " +
                                        std::to_string(Be32(item + 4)) +
                                        " (instance 0, version 4 understood)");
      }
      Expect(State::kRamRecord, 8);
      return Status::Ok();
    default:
      break;
  }
  return Status::Internal("QEMU migration stream: StepSectionHeader in state " +
                          std::string(Describe(state_)));
}

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

Status MigrationStreamReader::StepFooter(const uint8_t* item) {
  other_.insert(other_.end(), item, item + need_);
  if (item[0] != kVmSectionFooter || Be32(item + 1) != section_id_) {
    return Refuse(item_offset_, "expected the footer of section " + std::to_string(section_id_) +
                                    " (0x7e and its id)");
  }
  if (section_type_ == kVmSectionEnd) ram_complete_ = true;
  Expect(State::kSectionType, 1);
  return Status::Ok();
}

Status MigrationStreamReader::StepSectionType(uint8_t type) {
  record_offset_ = item_offset_;
  section_type_ = type;
  other_.push_back(type);
  switch (type) {
    case kVmSectionStart:
    case kVmSectionPart:
    case kVmSectionEnd:
      if (ram_complete_) {
        return Refuse(item_offset_, "a section after RAM's END that is neither FULL nor EOF");
      }
      if (type != kVmSectionStart && !ram_section_id_) {
        return Refuse(item_offset_, "a PART or END section before any START");
      }
      Expect(State::kSectionId, 4);
      return Status::Ok();
    case kVmSectionFull:
    case kVmEof:
      if (!ram_complete_) {
        return Refuse(item_offset_, std::string(type == kVmEof ? "EOF" : "a FULL section") +
                                        " before RAM's END section: RAM must come first and whole");
      }
      // The device state: opaque from here on (see the header).
      stats_.device_state_bytes = 1;
      device_state_tail_.push_back(static_cast<char>(type));
      Expect(State::kDeviceState, 0);
      return Status::Ok();
    case kVmCommand:
      return Refuse(item_offset_,
                    "a COMMAND section (postcopy, COLO or return path), which is not supported");
    case kVmSubsection:
      return Refuse(item_offset_, "a subsection outside the configuration");
    case kVmVmdesc:
      return Refuse(item_offset_, "a vmdesc before EOF");
    default:
      return Refuse(item_offset_, "unknown section type " + Hex(type));
  }
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

Status MigrationStreamReader::ReadDeviceState(std::span<const uint8_t> bytes) {
  if (stats_.device_state_bytes + bytes.size() > kMaxDeviceStateBytes) {
    return Refuse(offset_, "device state over " + std::to_string(kMaxDeviceStateBytes) + " bytes");
  }
  offset_ += bytes.size();
  stats_.device_state_bytes += bytes.size();
  // Only the last kMaxVmdescBytes + 6 bytes can hold EOF and the vmdesc; trimmed in halves so
  // the copying stays linear.
  constexpr size_t kKeep = size_t{kMaxVmdescBytes} + 6;
  device_state_tail_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  if (device_state_tail_.size() > 2 * kKeep) {
    device_state_tail_.erase(0, device_state_tail_.size() - kKeep);
  }
  return visitor_.OnOtherBytes(bytes);
}

Status MigrationStreamReader::Finish() {
  if (!status_.ok()) return status_;
  if (finished_) return Status::Ok();
  finished_ = true;
  if (state_ != State::kDeviceState) {
    status_ =
        Refuse(offset_, "the stream ends in " + std::string(Describe(state_)) +
                            (item_.empty() ? ""
                                           : " (" + std::to_string(item_.size()) + " of its " +
                                                 std::to_string(need_) + " bytes)") +
                            ": truncated");
    return status_;
  }
  // The end must be EOF, 0x06, be32 n and n bytes of JSON: QEMU's device state ends so for every
  // q35 machine (suppress-vmdesc is off). Find the one position where that holds.
  const std::string& t = device_state_tail_;
  for (size_t p = t.size() >= 6 ? t.size() - 6 : std::string::npos; p != std::string::npos;
       p = p == 0 ? std::string::npos : p - 1) {
    if (t[p] != kVmEof || t[p + 1] != kVmVmdesc) continue;
    uint32_t len = Be32(reinterpret_cast<const uint8_t*>(t.data()) + p + 2);
    if (len == 0 || len != t.size() - p - 6 || len > kMaxVmdescBytes) continue;
    if (t[p + 6] == '{' && t.back() == '}') return Status::Ok();
  }
  status_ = Refuse(offset_, "the device state does not end with EOF and a vmdesc: truncated");
  return status_;
}

Status ReadMigrationStream(int fd, MigrationStreamReader& reader, const std::string& what) {
  std::vector<uint8_t> buf(size_t{1} << 16);
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return Status::Unavailable(what + ": read failed after " +
                                 std::to_string(reader.bytes_read()) +
                                 " bytes: " + std::strerror(errno));
    }
    if (n == 0) return reader.Finish().WithContext(what);
    FERRY_RETURN_IF_ERROR(
        reader.Feed(std::span<const uint8_t>(buf.data(), size_t(n))).WithContext(what));
  }
}

}  // namespace ferry::qemu
