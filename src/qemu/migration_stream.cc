#include "qemu/migration_stream.h"

#include <errno.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "qemu/migration_stream_format.h"

namespace ferry::qemu {

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
    case State::kCommand:
      return "a COMMAND section";
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
    case State::kCommand:
      return StepCommandHeader(item);
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
      if (switchover_started_ && type != kVmSectionEnd) {
        return Refuse(item_offset_, "a START or PART section after SWITCHOVER_START");
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
      return StepCommand();
    case kVmSubsection:
      return Refuse(item_offset_, "a subsection outside the configuration");
    case kVmVmdesc:
      return Refuse(item_offset_, "a vmdesc before EOF");
    default:
      return Refuse(item_offset_, "unknown section type " + Hex(type));
  }
}

// A COMMAND: only QEMU 10's SWITCHOVER_START, where and when QEMU sends it.
Status MigrationStreamReader::StepCommand() {
  if (!MachineSendsSwitchoverStart(machine_type_)) {
    return Refuse(item_offset_,
                  "a COMMAND section (postcopy, COLO or return path), which is "
                  "not supported (machine type \"" +
                      Printable(machine_type_) + "\" sends none)");
  }
  if (!ram_section_id_ || ram_complete_) {
    return Refuse(item_offset_, "a COMMAND section outside RAM's START to END");
  }
  if (switchover_started_) return Refuse(item_offset_, "a second SWITCHOVER_START");
  Expect(State::kCommand, 4);
  return Status::Ok();
}

Status MigrationStreamReader::StepCommandHeader(const uint8_t* item) {
  other_.insert(other_.end(), item, item + need_);
  const uint16_t command = static_cast<uint16_t>((item[0] << 8) | item[1]);
  const uint16_t length = static_cast<uint16_t>((item[2] << 8) | item[3]);
  if (command != kCmdSwitchoverStart || length != 0) {
    return Refuse(record_offset_, "COMMAND " + std::to_string(command) + " with " +
                                      std::to_string(length) +
                                      " bytes: only SWITCHOVER_START (11, no data) is understood");
  }
  switchover_started_ = true;
  Expect(State::kSectionType, 1);
  return Status::Ok();
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
